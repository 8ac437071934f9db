import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceKit

/// Durable timers: rows with a due time, an owner, a key and a payload. Scheduling and
/// cancelling are idempotent by (owner, key); a cancel that arrives before its schedule
/// leaves a tombstone, so the late schedule changes nothing.
enum TimerMigrations {
    static let all: [Migration] = [
        Migration(
            version: 2, name: "timers",
            statements: [
                """
                CREATE TABLE timers (
                    owner text NOT NULL,
                    key text NOT NULL,
                    workflow_id text NOT NULL,
                    due_at timestamptz NOT NULL,
                    payload jsonb NOT NULL,
                    status text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'fired', 'cancelled')),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    closed_at timestamptz,
                    PRIMARY KEY (owner, key))
                """,
                "CREATE INDEX timers_due ON timers (due_at) WHERE status = 'scheduled'",
            ])
    ]
}

struct TimerStore: Sendable {
    /// Wakes the firing loop when a timer may be due earlier than it planned to sleep.
    let wakeup: Wakeup

    /// Schedules `timer` with the others of the transaction, in one statement at commit (a
    /// consumer's batch of schedules is one insert). A cancel applied earlier in the same
    /// transaction left a tombstone, which the insert leaves alone; one applied later marks
    /// the row it finds, or leaves the tombstone: either way the timer stays cancelled.
    func schedule(_ timer: TimerScheduled, in transaction: Transaction) async throws {
        try transaction.batch(timer, into: ScheduleTimers.self)
        transaction.afterCommit { [wakeup] in wakeup.signal() }
    }

    func cancel(_ timer: TimerCancelled, in transaction: Transaction) async throws {
        try await transaction.query(
            """
            INSERT INTO timers (owner, key, workflow_id, due_at, payload, status, closed_at)
            VALUES (\(timer.owner.rawValue), \(timer.key), \(timer.workflowId), now(), '{}'::jsonb, 'cancelled', now())
            ON CONFLICT (owner, key) DO UPDATE SET status = 'cancelled', closed_at = now()
            WHERE timers.status = 'scheduled'
            """)
    }
}

/// The timers a transaction schedules, inserted together; one already there (scheduled,
/// fired, or cancelled before its schedule arrived) is left as it is.
struct ScheduleTimers: BatchedWrite, PostgresPreparedStatement {
    static let sql = """
        INSERT INTO timers (owner, key, workflow_id, due_at, payload)
        SELECT owner, key, workflow_id, due_at, payload::jsonb
        FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS t(owner, key, workflow_id, due_at, payload)
        ON CONFLICT (owner, key) DO NOTHING
        """
    static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray, .textArray, .timestamptzArray, .textArray]
    typealias Row = Void

    let timers: [TimerScheduled]
    let payloads: [String]

    static func write(_ timers: [TimerScheduled], in transaction: Transaction) async throws {
        let statement = ScheduleTimers(timers: timers, payloads: try timers.map { try JSONColumn.text($0.payload) })
        _ = try await transaction.execute(statement)
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(timers.map(\.owner.rawValue))
        bindings.append(timers.map(\.key))
        bindings.append(timers.map(\.workflowId))
        bindings.append(timers.map(\.dueAt))
        bindings.append(payloads)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}
