import Contracts
import DevStack
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceKit
import ServiceLifecycle

/// The local stack's stand-in for a chat frontend: receives the notifier's signed
/// webhooks, checks the signature and the five-minute window the way a receiver must, and
/// prints each notification with the approvers' web links and the command that answers it.
struct WebhookSink: Sendable {
    let url: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// - Parameter quiet: verify and answer, but print nothing (for the benchmark).
    /// - Parameter tokens: mints the approver's token for the printed command.
    static func start(secret: String, quiet: Bool = false, tokens: AccessTokens? = nil) async throws -> WebhookSink {
        let port = FreePort.find()
        let router = Router()
        router.post("/webhook") { request, _ -> HTTPResponse.Status in
            var request = request
            let body = Array(buffer: try await request.collectBody(upTo: 1 << 20))
            guard Signing.verifyWebhook(secret: secret, headers: request.headers, body: body)
            else {
                Console.line("webhook sink: refused a request with a missing, stale or wrong signature")
                return .unauthorized
            }
            if quiet { return .ok }
            if let notification = try? WireCoding.decode(NotificationRequested.self, from: body) {
                Console.line("\n── \(notification.subject) → \(notification.recipients.joined(separator: ", "))\n\(notification.text)")
                for recipient in notification.recipients {
                    if let web = notification.links["web:\(recipient)"] { Console.line("Open it in a browser as \(recipient):\n  \(web)") }
                }
                if let decision = notification.links["decision"], let approver = notification.recipients.first {
                    let token = tokens?.issue(subject: approver, role: .approver) ?? "<an approver token of \(approver)>"
                    Console.line(
                        "Approve as \(approver) with:\n  curl -s -X POST \(decision) -H 'Content-Type: application/json' -H 'Authorization: Bearer \(token)' -d '{\"decision\":\"approve\"}'"
                    )
                }
            }
            return .ok
        }
        let logger = Logger(label: "hitl.webhook-sink")
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let task = Task { try await group.run() }
        return WebhookSink(url: "http://127.0.0.1:\(port)/webhook", group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
