import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Keeps long-running loops going. A supervised loop beats after each pass; when its last
/// beat is older than `stallAfter` and `isWorkWaiting` says there is work it should have
/// done, the loop is reported (error log, `hitl_loop_restarts_total{loop}`), its task is
/// cancelled and a fresh one started without waiting for the old one (a call that never
/// answers cannot hold the loop), and `/health/ready` names it until it beats again.
///
/// The cause found so far (a statement sent on a connection Postgres had cut, which
/// PostgresNIO never answers) is fixed where it happened; the watchdog is for the next one.
public final class LoopWatchdog: Sendable {
    private let beats = Beats()

    public init() {}

    /// The loops whose last beat is older than their `stallAfter` while work waits.
    public func stalledLoops() async -> [String] {
        await beats.stalled()
    }

    /// Runs `body` until graceful shutdown, restarting it when it stalls.
    public func supervise(
        _ name: String, stallAfter: Duration, logger: Logger, isWorkWaiting: @escaping @Sendable () async -> Bool,
        _ body: @escaping @Sendable (Heartbeat) async throws -> Void
    ) async {
        let restarts = Counter(label: "hitl_loop_restarts_total", dimensions: [("loop", name)])
        let heartbeat = Heartbeat(name: name, beats: beats)
        await beats.register(name, stallAfter: stallAfter)
        var task = Task { try await body(heartbeat) }
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            guard await beats.isLate(name), await isWorkWaiting() else { continue }
            await beats.markStalled(name)
            logger.error("Loop stalled while work waits; restarting it", metadata: ["loop": "\(name)"])
            restarts.increment()
            task.cancel()
            await heartbeat.beat()
            task = Task { try await body(heartbeat) }
        }
        task.cancel()
        // A stuck body may never end: wait for it a few seconds at most, without a task group
        // (which would wait for it forever); ServiceMain's deadline bounds the rest.
        let last = task
        _ = await Deadline.value(within: .seconds(5)) { try await last.value }
    }

    /// What a supervised loop calls after each pass.
    public struct Heartbeat: Sendable {
        let name: String
        fileprivate let beats: Beats

        public func beat() async {
            await beats.beat(name)
        }
    }
}

private actor Beats {
    struct Entry {
        var last: ContinuousClock.Instant
        var stallAfter: Duration
        var stalled: Bool
    }

    private var entries: [String: Entry] = [:]

    func register(_ name: String, stallAfter: Duration) {
        entries[name] = Entry(last: .now, stallAfter: stallAfter, stalled: false)
    }

    func beat(_ name: String) {
        entries[name]?.last = .now
        entries[name]?.stalled = false
    }

    func isLate(_ name: String) -> Bool {
        guard let entry = entries[name] else { return false }
        return ContinuousClock.now - entry.last > entry.stallAfter
    }

    func markStalled(_ name: String) {
        entries[name]?.stalled = true
    }

    func stalled() -> [String] {
        entries.filter { $0.value.stalled || ContinuousClock.now - $0.value.last > $0.value.stallAfter * 2 }.keys.sorted()
    }
}
