import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// Deletes what a service keeps only for a while: inbox ids, fired timers, finished
/// deliveries. Each rule names a table, which rows are finished, and the time column; rows
/// finished longer than the retention ago are deleted, ten thousand per statement so no
/// transaction grows large. Runs at start and then hourly; replicas may run it at the same
/// time (deleting twice is harmless).
///
/// The inbox is what makes a redelivered or replayed event a no-op, so the retention
/// (`HITL_RETENTION_DAYS`, 30 by default) must be longer than Kafka keeps records and than
/// ops would replay a dead letter; business records (workflows, history, approvals, votes)
/// are never pruned here.
public struct Pruner: SupervisedLoop {
    public struct Rule: Sendable {
        let table: String
        let timeColumn: String
        let finished: String

        /// - Parameters:
        ///   - finished: SQL condition of rows that may go (`"true"` for all of them).
        public init(table: String, timeColumn: String, finished: String = "true") {
            self.table = table
            self.timeColumn = timeColumn
            self.finished = finished
        }

        /// The inbox of every service.
        public static let inbox = Rule(table: "inbox", timeColumn: "processed_at")
    }

    let database: Database
    let rules: [Rule]
    let retention: TimeInterval
    let logger: Logger
    var interval: Duration = .seconds(3600)
    var chunk = 10_000

    public init(database: Database, rules: [Rule], retentionDays: Int, logger: Logger) {
        self.database = database
        self.rules = [.inbox] + rules
        self.retention = TimeInterval(retentionDays) * 86_400
        self.logger = logger
    }

    public var name: String { "pruner" }
    /// A pass beats after each chunk and between passes, so it is late only when stuck.
    public var stallAfter: Duration { interval + .seconds(600) }

    public func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await heartbeat.beat()
                do {
                    let deleted = try await pruneOnce(heartbeat: heartbeat)
                    Counter(label: "hitl_prune_runs_total", dimensions: [("result", "ok")]).increment()
                    if deleted > 0 { logger.info("Pruned finished rows", metadata: ["rows": "\(deleted)"]) }
                } catch {
                    if Task.isCancelled { break }
                    Counter(label: "hitl_prune_runs_total", dimensions: [("result", "failed")]).increment()
                    logger.warning("Pruning failed; trying again later", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
                }
                await heartbeat.beat()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One pass over every rule; returns how many rows were deleted.
    @discardableResult
    public func pruneOnce(now: Date = Date(), heartbeat: LoopWatchdog.Heartbeat? = nil) async throws -> Int {
        var total = 0
        for rule in rules {
            while !Task.isCancelled {
                var binds = PostgresBindings()
                binds.append(now.addingTimeInterval(-retention))
                // Identifiers and conditions come from code, never from input.
                let sql = """
                    DELETE FROM \(rule.table) WHERE ctid IN (
                        SELECT ctid FROM \(rule.table) WHERE (\(rule.finished)) AND \(rule.timeColumn) < $1 LIMIT \(chunk))
                    """
                var deleted = 0
                for try await _ in try await database.query(PostgresQuery(unsafeSQL: sql + " RETURNING 1", binds: binds)) { deleted += 1 }
                total += deleted
                await heartbeat?.beat()
                if deleted < chunk { break }
            }
        }
        Counter(label: "hitl_pruned_rows_total").increment(by: total)
        return total
    }
}
