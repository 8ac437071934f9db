import Contracts
import Foundation
import PostgresNIO
import ServiceKit

// The two statements every notification's deliveries run (a batch of notifications shares
// the first, and successes that finish together share the second), prepared so that
// Postgres parses and plans them once per connection: planning them cost more than running them.

/// Inserts the deliveries of a transaction's notifications in one statement; those of a
/// notification seen before are left out (none inserted). Those `leased` are leased to this
/// process and handed to its worker once the transaction commits (`DeliveryHandOff`).
struct EnqueueDeliveries: BatchedWrite, PostgresPreparedStatement {
    static let sql = """
        INSERT INTO deliveries (id, notification_id, channel, recipient, workflow_id, notification, attempts, next_attempt_at)
        SELECT id, notification_id, channel, recipient, workflow_id, notification::jsonb,
               CASE WHEN leased THEN 1 ELSE 0 END,
               CASE WHEN leased THEN clock_timestamp() + make_interval(secs => $1) ELSE now() END
        FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[])
             AS r(id, notification_id, channel, recipient, workflow_id, notification, leased)
        ON CONFLICT (notification_id, channel, recipient) DO NOTHING
        RETURNING id
        """
    static let bindingDataTypes: [PostgresDataType] = [.float8, .uuidArray, .textArray, .textArray, .textArray, .textArray, .textArray, .boolArray]

    /// One delivery of a notification.
    struct Delivery: Sendable {
        let id: UUID
        let channel: String
        /// Empty for a channel that delivers once for all recipients.
        let recipient: String
        let leased: Bool
    }

    /// A notification consumed, with its deliveries.
    struct Notification: Sendable {
        let notification: NotificationRequested
        /// The notification as JSON text.
        let json: String
        let deliveries: [Delivery]
        let handOff: DeliveryHandOff
        let wakeup: Wakeup
    }

    let notifications: [Notification]

    static func write(_ notifications: [Notification], in transaction: Transaction) async throws {
        var fresh: Set<UUID> = []
        for try await id in try await transaction.execute(EnqueueDeliveries(notifications: notifications)) { fresh.insert(id) }
        guard let first = notifications.first else { return }
        let handed = notifications.flatMap { notification in
            notification.deliveries.filter { $0.leased && fresh.contains($0.id) }.map {
                DeliveryWorker.Claimed(id: $0.id, channel: $0.channel, recipient: $0.recipient, attempt: 1, notification: notification.notification)
            }
        }
        transaction.afterCommit {
            first.handOff.hand(handed)
            first.wakeup.signal()
        }
    }

    func makeBindings() -> PostgresBindings {
        let rows = notifications.flatMap { notification in notification.deliveries.map { (notification, $0) } }
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(Double((notifications.first?.handOff.lease ?? .zero).components.seconds))
        bindings.append(rows.map(\.1.id))
        bindings.append(rows.map(\.0.notification.notificationId))
        bindings.append(rows.map(\.1.channel))
        bindings.append(rows.map(\.1.recipient))
        bindings.append(rows.map(\.0.notification.workflowId))
        bindings.append(rows.map(\.0.json))
        bindings.append(rows.map(\.1.leased))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> UUID { try row.decode(UUID.self) }
}

/// Records successful attempts in one statement, however many: each attempt, each
/// delivery's status, the channels' breakers closed, and the `events` (when successes are
/// reported).
struct RecordDelivered: PostgresPreparedStatement {
    static let sql = """
        WITH attempt AS (INSERT INTO delivery_attempts (delivery_id, attempt, succeeded)
                         SELECT id, attempt, true FROM unnest($1::uuid[], $2::int8[]) AS d(id, attempt) ON CONFLICT DO NOTHING),
             closed AS (DELETE FROM channel_state WHERE channel = ANY($3)),
             event AS (\(OutboxRow.insertStatement(boundFrom: 4)))
        UPDATE deliveries SET status = 'delivered', closed_at = now(), last_error = NULL WHERE id = ANY($1)
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuidArray, .int8Array, .textArray] + OutboxRow.bindingDataTypes
    typealias Row = Void

    /// One delivery that succeeded.
    struct Success: Sendable {
        let delivery: UUID
        let attempt: Int
        let channel: String
        let events: [OutboxRow]
    }

    let successes: [Success]

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(successes.map(\.delivery))
        bindings.append(successes.map(\.attempt))
        bindings.append(Array(Set(successes.map(\.channel))).sorted())
        OutboxRow.bind(successes.flatMap(\.events), into: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}
