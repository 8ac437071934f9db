import AsyncHTTPClient
import Contracts
import Foundation
import Logging
import NIOCore
import ServiceKit

/// Delivers one notification on one channel; throws with a reason when it did not arrive.
protocol NotificationChannel: Sendable {
    func deliver(_ notification: NotificationRequested, attempt: Int) async throws
}

/// Posts the notification as JSON to a URL, signed (see `Signing.webhookSignature`).
/// A 2xx answer is a delivery; anything else, or no answer in 10 s, is a failed attempt.
struct WebhookChannel: NotificationChannel {
    let url: URL
    let secret: String
    let client: HTTPClient

    func deliver(_ notification: NotificationRequested, attempt: Int) async throws {
        let body = try WireCoding.encode(notification)
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "hitl-notifier")
        for header in Signing.webhookHeaders(secret: secret, body: body) { request.headers.add(name: header.name, value: header.value) }
        request.headers.add(name: "X-HITL-Delivery-Attempt", value: "\(attempt)")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(10))
        guard (200..<300).contains(response.status.code) else {
            throw DeliveryFailure("webhook answered \(response.status.code)")
        }
    }
}

/// Writes the notification to the service log, for stacks without any other channel.
struct LogChannel: NotificationChannel {
    let logger: Logger

    func deliver(_ notification: NotificationRequested, attempt: Int) async throws {
        logger.notice("Notification", metadata: [
            "notification.id": "\(notification.notificationId)", "workflow.id": "\(notification.workflowId)",
            "notification.recipients": "\(notification.recipients.joined(separator: ","))",
            "notification.subject": "\(notification.subject)", "notification.text": "\(notification.text)",
        ])
    }
}

struct DeliveryFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
