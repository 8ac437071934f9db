import Contracts
import Foundation
import Hummingbird
import Logging
import Metrics
import PostgresNIO
import ServiceKit
import ServiceLifecycle

/// Feeds every live event stream from one reader: each `pollInterval`, one query fetches
/// the new history entries of all the workflows somebody is watching (each from its own
/// cursor, since entries of different workflows may commit out of id order), and hands
/// them to their subscribers. However many streams are open, the database sees one poll.
///
/// Streams are bounded: at most `perPrincipal` at a time for one token subject, and
/// `total` in all; past either, a new one is refused (429) rather than degrading the rest.
/// Every 15 s a subscriber gets an empty batch, its cue to send a keep-alive.
actor HistoryFeed {
    struct Limits: Sendable {
        var perPrincipal = 10
        var total = 1000
    }

    private struct Subscriber {
        let workflow: WorkflowID
        let principal: String
        let continuation: AsyncStream<[HistoryEntry]>.Continuation
    }

    private let workflows: WorkflowRoutes
    private let limits: Limits
    private let pollInterval: Duration
    private var subscribers: [UUID: Subscriber] = [:]
    /// The last entry fetched, per watched workflow.
    private var cursors: [WorkflowID: Int64] = [:]

    init(workflows: WorkflowRoutes, limits: Limits = Limits(), pollInterval: Duration = .milliseconds(200)) {
        self.workflows = workflows
        self.limits = limits
        self.pollInterval = pollInterval
    }

    /// Registers a stream of `workflow`'s entries after `after`; the caller reads the backlog
    /// itself after subscribing (and skips what it already sent), so nothing falls between.
    func subscribe(_ workflow: WorkflowID, principal: String, after: Int64) throws -> (id: UUID, entries: AsyncStream<[HistoryEntry]>) {
        guard subscribers.count < limits.total else {
            throw APIError(.tooManyRequests, "too_many_streams", "this service has \(limits.total) event streams open; try again later")
        }
        guard subscribers.values.filter({ $0.principal == principal }).count < limits.perPrincipal else {
            throw APIError(.tooManyRequests, "too_many_streams", "you have \(limits.perPrincipal) event streams open; close one first")
        }
        let (stream, continuation) = AsyncStream<[HistoryEntry]>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id = UUID()
        subscribers[id] = Subscriber(workflow: workflow, principal: principal, continuation: continuation)
        Self.open.record(subscribers.count)
        cursors[workflow] = max(cursors[workflow] ?? after, after)
        return (id, stream)
    }

    func unsubscribe(_ id: UUID) {
        guard let gone = subscribers.removeValue(forKey: id) else { return }
        Self.open.record(subscribers.count)
        gone.continuation.finish()
        if !subscribers.values.contains(where: { $0.workflow == gone.workflow }) { cursors[gone.workflow] = nil }
    }

    var openStreams: Int { subscribers.count }

    /// `hitl_event_streams_open`: the streams being served now.
    private static let open = Gauge(label: "hitl_event_streams_open")

    /// Polls while the service runs, beating `heartbeat` on every tick.
    func run(logger: Logger, heartbeat: LoopWatchdog.Heartbeat) async {
        var ticks = 0
        let keepAliveTicks = max(1, Int(Duration.seconds(15) / pollInterval))
        while !Task.isCancelled {
            await heartbeat.beat()
            try? await Task.sleep(for: pollInterval)
            ticks += 1
            if !cursors.isEmpty {
                do {
                    try await poll()
                } catch {
                    logger.warning("Event streams' poll failed; trying again", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
                }
            }
            if ticks % keepAliveTicks == 0 {
                for subscriber in subscribers.values { subscriber.continuation.yield([]) }
            }
        }
        for subscriber in subscribers.values { subscriber.continuation.finish() }
    }

    private func poll() async throws {
        let watched = Array(cursors)
        let fetched = try await workflows.reads.entries(of: watched.map(\.key), after: watched.map(\.value))
        for (workflow, entries) in fetched where !entries.isEmpty {
            cursors[workflow] = max(cursors[workflow] ?? 0, entries.last?.sequence ?? 0)
            for subscriber in subscribers.values where subscriber.workflow == workflow {
                subscriber.continuation.yield(entries)
            }
        }
    }
}

/// The feed's poll, as a supervised loop of the orchestrator.
struct HistoryFeedLoop: SupervisedLoop {
    let feed: HistoryFeed
    let logger: Logger

    var name: String { "event streams" }
    var stallAfter: Duration { .seconds(60) }

    func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        await cancelWhenGracefulShutdown { await feed.run(logger: logger, heartbeat: heartbeat) }
    }
}
