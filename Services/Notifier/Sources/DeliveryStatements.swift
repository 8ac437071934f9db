import Foundation
import PostgresNIO
import ServiceKit

// The two statements every notification runs (twice, in the benchmark's two-channel
// setup), prepared so that Postgres parses and plans them once per connection: planning
// them cost more than running them.

/// Inserts a notification's deliveries; answers the ids inserted now (none for a
/// notification seen before). Those `leased` are leased to this process (`DeliveryHandOff`).
struct EnqueueDeliveries: PostgresPreparedStatement {
    static let sql = """
        INSERT INTO deliveries (id, notification_id, channel, recipient, workflow_id, notification, attempts, next_attempt_at)
        SELECT id, $1, channel, recipient, $2, $3::jsonb,
               CASE WHEN leased THEN 1 ELSE 0 END,
               CASE WHEN leased THEN clock_timestamp() + make_interval(secs => $4) ELSE now() END
        FROM unnest($5::uuid[], $6::text[], $7::text[], $8::boolean[]) AS r(id, channel, recipient, leased)
        ON CONFLICT (notification_id, channel, recipient) DO NOTHING
        RETURNING id
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .float8, .uuidArray, .textArray, .textArray, .boolArray]

    let notificationID: String
    let workflowID: String
    /// The notification as JSON text.
    let notification: String
    let leaseSeconds: Double
    let rows: [(id: UUID, channel: String, recipient: String, leased: Bool)]

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(notificationID)
        bindings.append(workflowID)
        bindings.append(notification)
        bindings.append(leaseSeconds)
        bindings.append(rows.map(\.id))
        bindings.append(rows.map(\.channel))
        bindings.append(rows.map(\.recipient))
        bindings.append(rows.map(\.leased))
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
             event AS (INSERT INTO outbox (topic, key, headers, value) \(OutboxRow.select(boundFrom: 4)))
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
