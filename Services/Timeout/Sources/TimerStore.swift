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

    func schedule(_ timer: TimerScheduled, in transaction: Transaction) async throws {
        let payload = try JSONColumn.text(timer.payload)
        try await transaction.query(
            """
            INSERT INTO timers (owner, key, workflow_id, due_at, payload)
            VALUES (\(timer.owner.rawValue), \(timer.key), \(timer.workflowId), \(timer.dueAt), \(payload)::jsonb)
            ON CONFLICT (owner, key) DO NOTHING
            """)
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
