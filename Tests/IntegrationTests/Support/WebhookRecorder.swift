import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import ServiceKitTesting

/// A webhook receiver that checks what a real receiver must (the HMAC signature over
/// timestamp and body, and the five-minute window) and records what it accepted.
final class WebhookRecorder: Sendable {
    let url: String
    let accepted = Collected<NotificationRequested>()
    let refused = Collected<String>()
    private let server: LocalHTTPServer

    init(secret: String) {
        let accepted = self.accepted
        let refused = self.refused
        server = LocalHTTPServer(label: "test.webhook") { router in
            router.post("/hook") { request, _ -> HTTPResponse.Status in
                var request = request
                let body = Array(buffer: try await request.collectBody(upTo: 1 << 20))
                guard Signing.verifyWebhook(secret: secret, headers: request.headers, body: body),
                    let notification = try? WireCoding.decode(NotificationRequested.self, from: body)
                else {
                    await refused.append(String(decoding: body, as: UTF8.self))
                    return .unauthorized
                }
                await accepted.append(notification)
                return .noContent
            }
        }
        url = server.url("/hook")
    }

    func stop() async {
        await server.stop()
    }
}
