import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceKit
import ServiceKitTesting
import ServiceLifecycle

/// A webhook receiver that checks what a real receiver must (the HMAC signature over
/// timestamp and body, and the five-minute window) and records what it accepted.
final class WebhookRecorder: Sendable {
    let url: String
    let accepted = Collected<NotificationRequested>()
    let refused = Collected<String>()
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(secret: String) {
        let port = FreePort.find()
        url = "http://127.0.0.1:\(port)/hook"
        let router = Router()
        let accepted = self.accepted
        let refused = self.refused
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            var request = request
            let body = Array(buffer: try await request.collectBody(upTo: 1 << 20))
            guard Signing.verifyWebhook(
                    secret: secret, timestamp: request.headers[HTTPField.Name(Signing.webhookTimestampHeader)!],
                    signature: request.headers[HTTPField.Name(Signing.webhookSignatureHeader)!], body: body),
                let notification = try? WireCoding.decode(NotificationRequested.self, from: body)
            else {
                await refused.append(String(decoding: body, as: UTF8.self))
                return .unauthorized
            }
            await accepted.append(notification)
            return .noContent
        }
        let logger = Logger(label: "test.webhook")
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let group = self.group
        task = Task { try await group.run() }
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
