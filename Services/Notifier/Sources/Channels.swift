import AsyncHTTPClient
import Contracts
import Foundation
import Logging
import NIOCore
import ServiceKit

/// Delivers one notification on one channel; throws with a reason when it did not arrive.
protocol NotificationChannel: Sendable {
    /// Whether each recipient gets a delivery of their own (email, Slack: each carries the
    /// recipient's own links), or the notification is delivered once (webhook, log).
    var perRecipient: Bool { get }
    /// - Parameter recipient: the recipient, for a per-recipient channel; nil otherwise.
    func deliver(_ notification: NotificationRequested, to recipient: String?, attempt: Int) async throws
}

/// Posts the notification as JSON to a URL, signed (see `Signing.webhookSignature`).
/// A 2xx answer is a delivery; anything else, or no answer in 10 s, is a failed attempt.
/// One webhook receives every approver's notifications, so it gets their personal links
/// (credentials) only when the deployment says so (`includeLinks`).
struct WebhookChannel: NotificationChannel {
    let url: URL
    let secret: String
    let includeLinks: Bool
    let egress: EgressClient
    var perRecipient: Bool { false }

    /// What is posted: the notification, without personal links unless `includeLinks`.
    func payload(_ notification: NotificationRequested) -> NotificationRequested {
        var shown = notification
        shown.sealedLinks = nil
        if !includeLinks { shown.links = notification.sharedLinks }
        return shown
    }

    func deliver(_ notification: NotificationRequested, to recipient: String?, attempt: Int) async throws {
        let body = try WireCoding.encode(payload(notification))
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "hitl-notifier")
        for header in Signing.webhookHeaders(secret: secret, body: body) { request.headers.add(name: header.name, value: header.value) }
        request.headers.add(name: "X-HITL-Delivery-Attempt", value: "\(attempt)")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await egress.execute(request, within: .seconds(10))
        guard (200..<300).contains(response.status) else {
            throw DeliveryFailure("webhook answered \(response.status)")
        }
    }
}

/// Writes the notification to the service log, for stacks without any other channel.
struct LogChannel: NotificationChannel {
    let logger: Logger
    var perRecipient: Bool { false }

    func deliver(_ notification: NotificationRequested, to recipient: String?, attempt: Int) async throws {
        logger.notice(
            "Notification",
            metadata: [
                "notification.id": "\(notification.notificationId)", "workflow.id": "\(notification.workflowId)",
                "notification.recipients": "\(notification.recipients.joined(separator: ","))",
                "notification.subject": "\(notification.subject)", "notification.text": "\(notification.text)",
            ])
    }
}

/// Why an attempt failed; a permanent failure (an address that does not exist, a request
/// the channel will never take) is not retried.
struct DeliveryFailure: Error, CustomStringConvertible {
    let description: String
    var permanent = false
    /// When the channel said how long to wait (Slack's `Retry-After`), instead of the backoff.
    var retryAfter: Duration?

    init(_ description: String, permanent: Bool = false, retryAfter: Duration? = nil) {
        self.description = description
        self.permanent = permanent
        self.retryAfter = retryAfter
    }
}

extension NotificationRequested {
    /// The links meant for one recipient, by what they do: `approve`, `reject` (signed
    /// decision links) and `web` (their sign-in link to the approval page).
    func links(for recipient: String) -> [String: String] {
        var personal: [String: String] = [:]
        for (key, url) in links {
            let parts = key.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[1] == recipient { personal[String(parts[0])] = url }
        }
        return personal
    }
}
