import Contracts
import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceKit
import ServiceLifecycle

/// Fires due timers: sleeps until the earliest due time (woken early when a timer due
/// sooner is scheduled, `FiringPlan`), then claims due rows with `FOR UPDATE SKIP LOCKED`, so replicas share
/// the work and none fires a timer twice, and writes each firing to the owner's topic
/// through the outbox in the same transaction that marks the timer fired. Only one batch
/// is in memory at a time, whatever the number of pending timers.
struct TimerFiringService: SupervisedLoop {
    let runtime: ServiceRuntime
    let wakeup: Wakeup
    let plan: FiringPlan
    var batchSize = 500
    /// The longest sleep, which bounds how late a timer scheduled by another replica fires.
    var maxSleep: Duration = .seconds(1)

    var name: String { "timer firing" }
    /// It beats on every pass, and a pass sleeps `maxSleep` at most: late means stuck.
    var stallAfter: Duration { .seconds(60) }

    func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        let lag = Timer(label: "hitl_timer_fire_lag_seconds")
        let fired = Counter(label: "hitl_timers_fired_total")
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await heartbeat.beat()
                plan.passing()
                do {
                    let count = try await fireDue(lag: lag)
                    fired.increment(by: count)
                    if count == batchSize { continue }
                    let sleep = try await sleepUntilNextDue()
                    plan.sleeping(until: Date().addingTimeInterval(sleep.timeInterval))
                    await wakeup.wait(timeout: sleep)
                } catch {
                    if Task.isCancelled { break }
                    runtime.logger.warning("Firing timers failed; retrying", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Fires one batch of due timers; returns how many.
    func fireDue(lag: Timer) async throws -> Int {
        let count = try await runtime.database.transaction { transaction -> Int in
            let rows = try await transaction.query(
                """
                SELECT owner, key, workflow_id, due_at, payload::text FROM timers
                WHERE status = 'scheduled' AND due_at <= now()
                ORDER BY due_at LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
                """)
            var due: [(String, String, String, Date, String)] = []
            for try await row in rows.decode((String, String, String, Date, String).self) { due.append(row) }
            guard !due.isEmpty else { return 0 }
            let now = Date()
            for (owner, key, workflowID, dueAt, payload) in due {
                guard let owner = TimerOwner(rawValue: owner) else { continue }
                let firing = TimerFired(
                    owner: owner, key: key, workflowId: workflowID, dueAt: dueAt, firedAt: now,
                    payload: JSONColumn.object(payload))
                try transaction.publish(firing, to: .timerFirings(for: owner), subject: workflowID)
                lag.record(duration: .milliseconds(Int64(max(0, now.timeIntervalSince(dueAt)) * 1000)))
            }
            try await transaction.query(
                """
                UPDATE timers SET status = 'fired', closed_at = now()
                FROM unnest(\(due.map(\.0)), \(due.map(\.1))) AS fired(owner, key)
                WHERE timers.owner = fired.owner AND timers.key = fired.key
                """)
            return due.count
        }
        return count
    }

    /// How long until the earliest scheduled timer, capped at `maxSleep`.
    private func sleepUntilNextDue() async throws -> Duration {
        var next: Date?
        for try await due in try await runtime.database.query("SELECT min(due_at) FROM timers WHERE status = 'scheduled'").decode(Date?.self) {
            next = due
        }
        guard let next else { return maxSleep }
        let milliseconds = Int64(max(0, next.timeIntervalSinceNow) * 1000) + 1
        return min(.milliseconds(milliseconds), maxSleep)
    }
}
