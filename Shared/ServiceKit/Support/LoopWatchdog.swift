import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Keeps long-running loops going. A supervised loop beats after each pass; when its last
/// beat is older than `stallAfter` and `isWorkWaiting` says there is work it should have
/// done, the loop is reported (error log, `hitl_loop_restarts_total{loop}`), its task is
/// cancelled and a fresh one started without waiting for the old one (a call that never
/// answers cannot hold the loop), and `/health/ready` names it until it beats again. Each
/// restart without a beat since doubles the time the next start is given.
///
/// Loops that beat on every pass, idle or not, are stuck when late: they conform to
/// `SupervisedLoop` with the default `isWorkWaiting`. A loop whose progress is the work
/// itself (a consumer) answers whether work waits and its dependencies are there.
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
            logger.error("Loop stalled while work waits; restarting it", metadata: ["loop": "\(name)"])
            restarts.increment()
            task.cancel()
            await beats.restarted(name)
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

/// A long-running loop of a service, run under the runtime's watchdog
/// (`ServiceRuntime.supervised`).
public protocol SupervisedLoop: Sendable {
    /// Its name in logs, in `hitl_loop_restarts_total{loop}` and in readiness.
    var name: String { get }
    /// How long it may go without a beat before it counts as stalled.
    var stallAfter: Duration { get }
    /// Whether work waits that it should be doing; only then is a late loop restarted.
    func isWorkWaiting() async -> Bool
    /// Runs until graceful shutdown or cancellation, beating `heartbeat` as it goes.
    func run(heartbeat: LoopWatchdog.Heartbeat) async throws
}

extension SupervisedLoop {
    /// A loop that beats on every pass, idle or not, is stuck whenever it is late.
    public func isWorkWaiting() async -> Bool { true }
}

/// Runs a `SupervisedLoop` under a watchdog, as a service.
public struct SupervisedService<Loop: SupervisedLoop>: Service {
    let loop: Loop
    let watchdog: LoopWatchdog
    let logger: Logger

    public init(loop: Loop, watchdog: LoopWatchdog, logger: Logger) {
        self.loop = loop
        self.watchdog = watchdog
        self.logger = logger
    }

    public func run() async throws {
        await watchdog.supervise(
            loop.name, stallAfter: loop.stallAfter, logger: logger, isWorkWaiting: { [loop] in await loop.isWorkWaiting() },
            { [loop] heartbeat in try await loop.run(heartbeat: heartbeat) })
    }
}

private actor Beats {
    struct Entry {
        var last: ContinuousClock.Instant
        var stallAfter: Duration
        var stalled = false
        /// Restarts since the last beat: each doubles the time the next start is given
        /// (up to 32 times), so a loop that needs longer to recover is not restarted in a storm.
        var restarts = 0

        var allowed: Duration { stallAfter * (1 << min(restarts, 5)) }
    }

    private var entries: [String: Entry] = [:]

    func register(_ name: String, stallAfter: Duration) {
        entries[name] = Entry(last: .now, stallAfter: stallAfter)
    }

    func beat(_ name: String) {
        entries[name]?.last = .now
        entries[name]?.stalled = false
        entries[name]?.restarts = 0
    }

    func isLate(_ name: String) -> Bool {
        guard let entry = entries[name] else { return false }
        return ContinuousClock.now - entry.last > entry.allowed
    }

    /// A fresh start after a stall: it stays stalled until it beats.
    func restarted(_ name: String) {
        entries[name]?.last = .now
        entries[name]?.stalled = true
        entries[name]?.restarts += 1
    }

    func stalled() -> [String] {
        entries.filter { $0.value.stalled || ContinuousClock.now - $0.value.last > $0.value.allowed * 2 }.keys.sorted()
    }
}
