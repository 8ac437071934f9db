import Contracts
import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceKit
import ServiceLifecycle

/// Durable deliveries. A notification becomes one `deliveries` row per channel in the
/// transaction that consumes it; this worker claims due rows (leasing them for a minute,
/// so a crashed worker's rows come back), delivers them concurrently, and records each
/// attempt. A failed attempt is retried with exponential backoff and jitter; after the
/// last one the delivery is `failed` and `hitl.notification.failed.v1` is published. One
/// slow or failing channel delays only its own rows.
struct DeliveryWorker: Service {
    let runtime: ServiceRuntime
    let settings: NotifierSettings
    let channels: [String: any NotificationChannel]
    let wakeup: Wakeup
    var batchSize = 64
    var lease: Duration = .seconds(60)
    var backoff = Backoff(base: .seconds(1), cap: .seconds(300))

    /// Records the deliveries of a new notification (inside the consuming transaction): one
    /// per channel, or one per recipient on channels that address each recipient.
    static func enqueue(_ notification: NotificationRequested, channels: [String: any NotificationChannel], context: EventContext, wakeup: Wakeup) async throws {
        let json = try JSONColumn.text(notification)
        for (name, channel) in channels.sorted(by: { $0.key < $1.key }) {
            for recipient in channel.perRecipient ? notification.recipients : [""] {
                try await context.connection.query(
                    """
                    INSERT INTO deliveries (id, notification_id, channel, recipient, workflow_id, notification)
                    VALUES (\(UUID()), \(notification.notificationId), \(name), \(recipient), \(notification.workflowId), \(json)::jsonb)
                    ON CONFLICT (notification_id, channel, recipient) DO NOTHING
                    """, logger: context.logger)
            }
        }
        context.afterCommit.add { wakeup.signal() }
    }

    func run() async throws {
        await LeasedWorkLoop.run(
            "Delivery", wakeup: wakeup, idle: .milliseconds(500), logger: runtime.logger, claim: claim, handle: attempt)
    }

    struct Claimed: Sendable {
        let id: UUID
        let channel: String
        /// Empty for a channel that delivers once for all recipients.
        let recipient: String
        let attempt: Int
        let notification: NotificationRequested
    }

    private func claim() async throws -> [Claimed] {
        let leaseSeconds = Double(lease.components.seconds)
        return try await runtime.database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE deliveries SET attempts = attempts + 1,
                       next_attempt_at = now() + make_interval(secs => \(leaseSeconds))
                WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()
                             ORDER BY next_attempt_at LIMIT \(batchSize) FOR UPDATE SKIP LOCKED)
                RETURNING id, channel, recipient, attempts, notification::text
                """, logger: runtime.logger)
            var claimed: [Claimed] = []
            for try await (id, channel, recipient, attempt, json) in rows.decode((UUID, String, String, Int, String).self) {
                claimed.append(Claimed(
                    id: id, channel: channel, recipient: recipient, attempt: attempt,
                    notification: try WireCoding.decode(NotificationRequested.self, from: Array(json.utf8))))
            }
            return claimed
        }
    }

    private func attempt(_ delivery: Claimed) async {
        var failure: DeliveryFailure?
        if let channel = channels[delivery.channel] {
            do {
                try await channel.deliver(delivery.notification, to: delivery.recipient.isEmpty ? nil : delivery.recipient, attempt: delivery.attempt)
            } catch let error as DeliveryFailure {
                failure = error
            } catch {
                failure = DeliveryFailure(ErrorText.describe(error))
            }
        } else {
            failure = DeliveryFailure("channel \(delivery.channel) is not configured")
        }
        Counter(label: "hitl_delivery_attempts_total", dimensions: [("channel", delivery.channel), ("result", failure == nil ? "delivered" : "failed")]).increment()
        do {
            try await record(delivery, failure: failure)
            runtime.relay.wake()
        } catch {
            // The lease expires and the delivery is attempted again: at least once, never lost.
            runtime.logger.warning("Delivery outcome not recorded", metadata: ["error": "\(ErrorText.describe(error))"])
        }
    }

    private func record(_ delivery: Claimed, failure: DeliveryFailure?) async throws {
        let logger = runtime.logger
        let outbox = runtime.outbox
        let notification = delivery.notification
        let giveUp = failure.map { $0.permanent || delivery.attempt >= settings.maxAttempts } ?? false
        let detail = failure.map { delivery.recipient.isEmpty ? $0.description : "\(delivery.recipient): \($0.description)" }
        let retryIn = failure?.retryAfter ?? backoff.delay(attempt: delivery.attempt)
        let retrySeconds = Double(retryIn.components.seconds) + Double(retryIn.components.attoseconds) / 1e18
        try await runtime.database.transaction { connection in
            try await connection.query(
                """
                INSERT INTO delivery_attempts (delivery_id, attempt, succeeded, detail)
                VALUES (\(delivery.id), \(delivery.attempt), \(failure == nil), \(detail))
                ON CONFLICT DO NOTHING
                """, logger: logger)
            if failure == nil {
                try await connection.query(
                    "UPDATE deliveries SET status = 'delivered', closed_at = now(), last_error = NULL WHERE id = \(delivery.id)",
                    logger: logger)
                try await outbox.publish(
                    NotificationDelivered(notificationId: notification.notificationId, workflowId: notification.workflowId, channel: delivery.channel, attempts: delivery.attempt, deliveredAt: Date()),
                    to: .notificationOutcomes, subject: notification.workflowId, on: connection, logger: logger)
            } else if giveUp {
                try await connection.query(
                    "UPDATE deliveries SET status = 'failed', closed_at = now(), last_error = \(detail) WHERE id = \(delivery.id)",
                    logger: logger)
                try await outbox.publish(
                    NotificationFailed(notificationId: notification.notificationId, workflowId: notification.workflowId, channel: delivery.channel, attempts: delivery.attempt, error: detail ?? "", failedAt: Date()),
                    to: .notificationOutcomes, subject: notification.workflowId, on: connection, logger: logger)
            } else {
                try await connection.query(
                    """
                    UPDATE deliveries SET last_error = \(detail), next_attempt_at = now() + make_interval(secs => \(retrySeconds))
                    WHERE id = \(delivery.id)
                    """, logger: logger)
            }
        }
    }
}
