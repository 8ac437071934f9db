import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit
import ServiceKitTesting

/// The far end of an http task or a callback: answers 500 to the first `failures` calls, then 200 with a
/// receipt; checks each call's signature the way a real receiver would, and counts calls.
final class SignedReceiver: Sendable {
    let url: String
    let calls = Collected<JSONValue>()
    let unsigned = Collected<String>()
    private let server: LocalHTTPServer

    init(secret: String, failures: Int) {
        let calls = self.calls
        let unsigned = self.unsigned
        server = LocalHTTPServer(label: "test.receiver") { router in
            router.post("/pay") { request, _ -> Response in
                var request = request
                let body = Array(buffer: try await request.collectBody(upTo: 1 << 20))
                guard Signing.verifyWebhook(secret: secret, headers: request.headers, body: body)
                else {
                    await unsigned.append(String(decoding: body, as: UTF8.self))
                    return Response(status: .unauthorized)
                }
                await calls.append((try? WireCoding.decode(JSONValue.self, from: body)) ?? .null)
                if await calls.count <= failures { return Response(status: .internalServerError) }
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"receipt":"r-\#(await calls.count)"}"#)))
            }
        }
        url = server.url("/pay")
    }

    func stop() async {
        await server.stop()
    }
}
