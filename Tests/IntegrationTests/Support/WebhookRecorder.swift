import Contracts
import DevStack
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
    /// How many more genuine deliveries to answer 503, as a receiver that is down.
    let outage = Outage()
    /// While closed, genuine deliveries wait for their answer, as at a receiver that stalls.
    let gate = Gate()
    private let server: LocalHTTPServer

    actor Outage {
        var remaining = 0
        func set(_ count: Int) { remaining = count }
        func take() -> Bool {
            guard remaining > 0 else { return false }
            remaining -= 1
            return true
        }
    }

    actor Gate {
        private var closed = false
        private var waiting: [CheckedContinuation<Void, Never>] = []
        /// Deliveries waiting at the closed gate.
        var count: Int { waiting.count }
        func close() { closed = true }
        func open() {
            closed = false
            for continuation in waiting { continuation.resume() }
            waiting = []
        }
        func pass() async {
            guard closed else { return }
            await withCheckedContinuation { waiting.append($0) }
        }
    }

    init(secret: String) {
        let accepted = self.accepted
        let refused = self.refused
        let outage = self.outage
        let gate = self.gate
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
                await gate.pass()
                if await outage.take() { return .serviceUnavailable }
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
