import Contracts
import DevStack
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit
import ServiceKitTesting

/// The far end of an http task or a callback: answers 500 to the first `failures` calls, then 200 with a
/// receipt; checks each call's signature the way a real receiver would, and counts calls.
final class SignedReceiver: Sendable {
    /// What the receiver stands for, and so which signature it checks.
    enum Role: Sendable {
        /// An http task's server: the `v2` task-call signature, under the task key.
        case taskServer(secret: String)
        /// A callback URL: the `v1` webhook signature, under the callback key.
        case callbackReceiver(secret: String)
    }

    let url: String
    let calls = Collected<JSONValue>()
    let unsigned = Collected<String>()
    /// The claims of each verified task call (method, URL, workflow, step, attempt, delivery id).
    let taskCalls = Collected<Signing.TaskCall>()
    private let server: LocalHTTPServer

    init(_ role: Role, failures: Int) {
        let calls = self.calls
        let unsigned = self.unsigned
        let taskCalls = self.taskCalls
        let port = FreePort.find()
        let url = "http://127.0.0.1:\(port)/pay"
        server = LocalHTTPServer(label: "test.receiver", port: port) { router in
            router.post("/pay") { request, _ -> Response in
                var request = request
                let body = Array(buffer: try await request.collectBody(upTo: 1 << 20))
                let verified: Bool
                switch role {
                case .taskServer(let secret):
                    let call = Signing.verifyTaskCall(secret: secret, method: request.method.rawValue, url: url, headers: request.headers, body: body)
                    if let call { await taskCalls.append(call) }
                    verified = call != nil
                case .callbackReceiver(let secret):
                    verified = Signing.verifyWebhook(secret: secret, headers: request.headers, body: body)
                }
                guard verified else {
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
        self.url = url
    }

    func stop() async {
        await server.stop()
    }
}
