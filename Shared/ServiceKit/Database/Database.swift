import Contracts
import Logging
import PostgresNIO
import ServiceLifecycle

/// A service's Postgres: a connection pool pinned to the service's own schema.
/// As a `Service`, it runs the pool until shutdown.
public struct Database: Service {
    public let client: PostgresClient
    public let schema: String
    /// The service the database belongs to: the source of the events its transactions publish.
    public let source: String
    /// Signalled when a transaction that wrote outbox rows committed; the relay waits on it.
    public let outboxWritten = Wakeup()
    public let logger: Logger

    public init(configuration: DatabaseConfiguration, source: String, logger: Logger) {
        client = PostgresClient(configuration: configuration.clientConfiguration, backgroundLogger: logger)
        schema = configuration.schema
        self.source = source
        self.logger = logger
    }

    public func run() async throws {
        await client.run()
    }

    /// Runs `body` in one transaction and commits it; errors thrown by `body` come out as
    /// they were thrown. A serialization failure or deadlock is retried a few times (so
    /// `body` may run more than once; only the attempt that commits has effects).
    ///
    /// The writes `body` batched, then the events it publishes are written just before
    /// COMMIT; after it, the relay is woken and the transaction's after-commit work runs.
    ///
    /// `BEGIN`/`COMMIT` are written here rather than through PostgresNIO's `withTransaction`:
    /// that one sends `ROLLBACK` on a connection the server has cut, a statement PostgresNIO
    /// never answers, so a Postgres restart would hang the caller; and it wraps every error
    /// in `PostgresTransactionError`, which would hide the domain errors `body` throws.
    /// - Parameters:
    ///   - cause: the event the transaction applies, named as the cause of what it publishes.
    ///   - logger: the logger of the work at hand; the database's own by default.
    @discardableResult
    public func transaction<Result: Sendable>(
        cause: EventEnvelope? = nil, logger: Logger? = nil, _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        let logger = logger ?? self.logger
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withConnection { connection in
                    try await connection.query("BEGIN", logger: logger)
                    do {
                        let transaction = Transaction(connection: connection, source: source, cause: cause, logger: logger)
                        let result = try await body(transaction)
                        try await transaction.pending.writeBatches(in: transaction)
                        let wroteEvents = try await transaction.pending.flush(on: connection, logger: logger)
                        try Self.checkOpen(connection)
                        try await connection.query("COMMIT", logger: logger)
                        if wroteEvents { outboxWritten.signal() }
                        transaction.pending.runHooks()
                        return result
                    } catch {
                        // Never a statement on a connection the server cut: PostgresNIO would
                        // wait for its answer forever (the write never reaches the handler).
                        if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                        throw error
                    }
                }
            } catch let error as PSQLError where attempt < 5 && Self.isTransient(error) {
                try await Task.sleep(for: Backoff.default.delay(attempt: attempt))
            } catch is DatabaseUnavailable where attempt < 3 {
                // A connection the server had cut before we used it: the pool replaces it.
                try await Task.sleep(for: Backoff.default.delay(attempt: attempt))
            }
        }
    }

    /// Runs `body` on a connection of the pool that the server has not cut (see `checkOpen`).
    public func withConnection<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await client.withConnection { connection in
            try Self.checkOpen(connection)
            return try await body(connection)
        }
    }

    /// Whether the server answers a trivial statement within `timeout` (for readiness and the
    /// watchdog: a pool waiting for a server that is gone must not hold them).
    public func isReachable(within timeout: Duration = .seconds(2)) async -> Bool {
        let answer = await Deadline.value(within: timeout) { [self] in try await query("SELECT 1") }
        if case .success = answer { return true }
        return false
    }

    /// Runs one statement outside a transaction.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try await client.query(query, logger: logger, file: file, line: line)
    }

    /// Runs a prepared statement outside a transaction.
    public func execute<Statement: PostgresPreparedStatement>(
        _ statement: Statement, file: String = #fileID, line: Int = #line
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, Statement.Row> {
        try await client.execute(statement, logger: logger, file: file, line: line)
    }

    /// Whether one statement, run outside a transaction, returned at least one row.
    public func returnsRow(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> Bool {
        for try await _ in try await self.query(query, file: file, line: line) { return true }
        return false
    }

    /// Throws `DatabaseUnavailable` when the server has cut `connection`. Check before every
    /// statement that follows an await other than a statement (a wait, a Kafka send): on a
    /// closed connection PostgresNIO never answers a new statement.
    public static func checkOpen(_ connection: PostgresConnection) throws {
        if connection.isClosed { throw DatabaseUnavailable(reason: "the server closed the connection") }
    }

    /// Serialization failures and deadlocks succeed when tried again.
    static func isTransient(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// Whether `error` is a unique-constraint violation.
    public static func isUniqueViolation(_ error: any Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "23505"
    }
}

/// Postgres cannot be reached, or cut the connection: not the work's fault, and it succeeds
/// once the server is back.
public struct DatabaseUnavailable: Error, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "database unavailable: \(reason)" }
}
