import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceKit
import Synchronization

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
    /// When the firing loop plans to wake.
    let plan: FiringPlan

    /// Schedules `timer` with the others of the transaction, in one statement at commit (a
    /// consumer's batch of schedules is one insert). A cancel applied earlier in the same
    /// transaction left a tombstone, which the insert leaves alone; one applied later marks
    /// the row it finds, or leaves the tombstone: either way the timer stays cancelled.
    func schedule(_ timer: TimerScheduled, in transaction: Transaction) async throws {
        try transaction.batch(timer, into: ScheduleTimers.self)
        // Nearly every timer (an approval's deadline) lies far beyond the loop's next pass:
        // waking it for those would cost a pass per schedule.
        transaction.afterCommit { [wakeup, plan] in
            if plan.wakesAfter(timer.dueAt) { wakeup.signal() }
        }
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

/// When the firing loop will next look for due timers, so that a schedule wakes it only
/// for a timer due before then.
final class FiringPlan: Sendable {
    /// Milliseconds since 1970 of the planned wake; `Int64.max` while the loop is between
    /// sleeps (it may have read the earliest due time before a new timer committed, so every
    /// schedule then wakes it).
    private let wake = Atomic<Int64>(.max)

    /// The loop is about to look for due timers.
    func passing() { wake.store(.max, ordering: .sequentiallyConsistent) }

    /// The loop will sleep until `date` unless woken.
    func sleeping(until date: Date) { wake.store(Int64(date.timeIntervalSince1970 * 1000), ordering: .sequentiallyConsistent) }

    /// Whether a timer due at `due` is due before the loop's next pass.
    func wakesAfter(_ due: Date) -> Bool { Int64(due.timeIntervalSince1970 * 1000) < wake.load(ordering: .sequentiallyConsistent) }
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
