import Contracts
import Logging
import PostgresNIO
import Synchronization

/// One open transaction in a service's database, handed explicitly to whatever changes
/// state in it: the connection, the logger of the work at hand, the event being applied
/// (named as the cause of every event published here), the events to publish and the work
/// to do once it committed. `Database.transaction` opens one, commits it and only then runs
/// the after-commit work; nothing here outlives it.
///
/// Events are collected and written to the outbox in one statement just before COMMIT (one
/// round trip however many events the transaction, or a consumer's batch, publishes), so an
/// event is published if and only if the state change that caused it committed.
public struct Transaction: Sendable {
    public let connection: PostgresConnection
    public let logger: Logger
    /// The event this transaction applies, if it applies one.
    public let cause: EventEnvelope?
    /// The service name, every event's `ce_source`.
    public let source: String
    let pending: Pending

    init(connection: PostgresConnection, source: String, cause: EventEnvelope?, logger: Logger) {
        self.connection = connection
        self.source = source
        self.cause = cause
        self.logger = logger
        pending = Pending()
    }

    private init(_ base: Transaction, cause: EventEnvelope?, logger: Logger) {
        connection = base.connection
        source = base.source
        pending = base.pending
        self.cause = cause
        self.logger = logger
    }

    /// The same transaction applying `event` (a consumer's batch applies several in one).
    public func applying(_ event: EventEnvelope, logger: Logger) -> Transaction {
        Transaction(self, cause: event, logger: logger)
    }

    /// The same transaction logging to `logger`.
    public func logging(to logger: Logger) -> Transaction {
        Transaction(self, cause: cause, logger: logger)
    }

    /// Runs one statement in the transaction.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try await connection.query(query, logger: logger, file: file, line: line)
    }

    /// Whether `query` returned at least one row.
    public func returnsRow(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> Bool {
        for try await _ in try await connection.query(query, logger: logger, file: file, line: line) { return true }
        return false
    }

    /// Runs a prepared statement (one of the hot ones, which Postgres parses and plans once
    /// per connection) in the transaction; its rows as the statement reads them.
    public func execute<Statement: PostgresPreparedStatement>(
        _ statement: Statement, file: String = #fileID, line: Int = #line
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, Statement.Row> {
        try await connection.execute(statement, logger: logger, file: file, line: line)
    }

    /// Whether the prepared `statement` returned at least one row.
    public func returnsRow<Statement: PostgresPreparedStatement>(_ statement: Statement, file: String = #fileID, line: Int = #line) async throws -> Bool {
        for try await _ in try await execute(statement, file: file, line: line) { return true }
        return false
    }

    // MARK: - Events

    /// Publishes `payload` on `topic`, keyed by `subject` (the workflow id), caused by the
    /// event being applied.
    @discardableResult
    public func publish<Payload: EventPayload>(_ payload: Payload, to topic: Topic, subject: String) throws -> EventEnvelope {
        let envelope = try envelope(payload, subject: subject)
        try pending.add([OutboxRow(envelope, to: topic)], from: source)
        return envelope
    }

    /// The envelope `publish` would write for `payload`, for callers that collect events
    /// and publish them later in the same transaction.
    public func envelope<Payload: EventPayload>(_ payload: Payload, subject: String) throws -> EventEnvelope {
        try EventEnvelope(payload, source: source, subject: subject, causedBy: cause)
    }

    /// Publishes events built before, in order (each keyed by its subject).
    public func publish(_ events: [(envelope: EventEnvelope, topic: Topic)]) throws {
        try pending.add(events.map { try OutboxRow($0.envelope, to: $0.topic) }, from: source)
    }

    /// The events published so far, taken for the statement about to run, which writes them
    /// to the outbox itself (an `OutboxRow.insertStatement` CTE): one round trip less than their own
    /// statement at commit. Take them only for a statement that runs next; a statement that
    /// fails fails the transaction, and with it whatever it was to write.
    public func takeEvents() -> [OutboxRow] {
        pending.take()
    }

    /// The outbox rows of `events`, for a statement that writes them itself and only when
    /// it writes anything else (an `OutboxRow.insertStatement(boundFrom:onlyIf:)` CTE).
    /// Unlike `takeEvents`, the events published so far stay for the statements after it.
    public func outboxRows(for events: [(envelope: EventEnvelope, topic: Topic)]) throws -> [OutboxRow] {
        let rows = try events.map { try OutboxRow($0.envelope, to: $0.topic) }
        try Pending.checkAccess(rows, from: source)
        if !rows.isEmpty { pending.markTaken() }
        return rows
    }

    /// Publishes a record as raw bytes with the given headers (a dead letter's replay).
    public func publishRaw(topic: String, key: String, headers: [(String, String)], value: [UInt8]) throws {
        try pending.add([OutboxRow(topic: topic, key: key, headers: headers, value: value)], from: source)
    }

    /// The value of `read`, made once per transaction under `key`: a read that each event of
    /// a consumer's batch would otherwise repeat (the approval directory), so a batch pays it
    /// once. Later events see the value as of the first read, which is what they would have
    /// seen had they been applied a moment earlier; a transaction that changes what `read`
    /// reads must not use it.
    public func shared<Value: Sendable>(_ key: String, _ read: (Transaction) async throws -> Value) async throws -> Value {
        if let value = pending.shared.withLock({ $0[key] }) as? Value { return value }
        let value = try await read(self)
        pending.shared.withLock { $0[key] = value }
        return value
    }

    // MARK: - Writes batched until commit

    /// Adds `item` to the items of `Write` that the transaction writes together just before it
    /// commits (before its events go to the outbox): the events of a consumer's batch then
    /// add rows to a table in one statement instead of one each. Only for writes that nothing
    /// in the transaction reads back and whose order among its other statements does not
    /// matter (inserts that ignore conflicts).
    public func batch<Write: BatchedWrite>(_ item: Write.Item, into write: Write.Type) throws {
        try pending.batch(item, into: write)
    }

    /// Runs `action` once the transaction committed (e.g. wakes a loop that reads the new
    /// rows); never when it rolled back.
    public func afterCommit(_ action: @escaping @Sendable () -> Void) {
        pending.hooks.withLock { $0.append(action) }
    }

    // MARK: - Commit

    /// What the transaction collected until it commits.
    final class Pending: Sendable {
        /// The outbox rows so far; nil once written.
        private let rows = Mutex<[OutboxRow]?>([])
        let hooks = Mutex<[@Sendable () -> Void]>([])
        /// What `shared` read, by key.
        let shared = Mutex<[String: any Sendable]>([:])
        /// The batched writes, in the order of their first row; nil once written.
        private let batches = Mutex<[Batch]?>([])

        private struct Batch {
            let write: ObjectIdentifier
            var items: [any Sendable]
            let run: @Sendable ([any Sendable], Transaction) async throws -> Void
        }

        func batch<Write: BatchedWrite>(_ item: Write.Item, into write: Write.Type) throws {
            try batches.withLock { batches in
                guard batches != nil else { throw PermanentFailure("a write was batched after its transaction ended") }
                if let index = batches!.firstIndex(where: { $0.write == ObjectIdentifier(write) }) {
                    batches![index].items.append(item)
                } else {
                    batches!.append(
                        Batch(write: ObjectIdentifier(write), items: [item]) { items, transaction in
                            try await Write.write(items.map { $0 as! Write.Item }, in: transaction)
                        })
                }
            }
        }

        /// Runs the batched writes, each in one go.
        func writeBatches(in transaction: Transaction) async throws {
            let batches = self.batches.withLock { batches in
                defer { batches = nil }
                return batches ?? []
            }
            for batch in batches { try await batch.run(batch.items, transaction) }
        }

        /// The broker's ACLs would refuse the record after commit; refuse it before.
        static func checkAccess(_ rows: [OutboxRow], from source: String) throws {
            for row in rows where !TopicAccess.may(source, write: row.topic) {
                throw PermanentFailure("the \(source) service may not publish to \(row.topic)")
            }
        }

        func add(_ new: [OutboxRow], from source: String) throws {
            try Self.checkAccess(new, from: source)
            try rows.withLock { rows in
                // A task the transaction left behind must not publish into a finished one.
                guard rows != nil else { throw PermanentFailure("an event was published after its transaction ended") }
                rows! += new
            }
        }

        /// Whether a statement took rows to write them itself.
        private let taken = Mutex(false)

        /// The rows so far, for a statement that writes them (see `takeEvents`).
        func take() -> [OutboxRow] {
            let rows = self.rows.withLock { rows in
                defer { if rows != nil { rows = [] } }
                return rows ?? []
            }
            if !rows.isEmpty { markTaken() }
            return rows
        }

        /// Notes that a statement wrote outbox rows itself: the relay is woken after commit.
        func markTaken() {
            taken.withLock { $0 = true }
        }

        /// Writes the rows left to the outbox; answers whether the transaction wrote any,
        /// here or through a statement that took them.
        func flush(on connection: PostgresConnection, logger: Logger) async throws -> Bool {
            let rows = self.rows.withLock { rows in
                defer { rows = nil }
                return rows ?? []
            }
            try await OutboxRow.insert(rows, on: connection, logger: logger)
            return !rows.isEmpty || taken.withLock { $0 }
        }

        func runHooks() {
            for action in hooks.withLock({ $0 }) { action() }
        }
    }
}

/// Rows that a transaction collects (`Transaction.batch`) and writes in one statement just
/// before it commits.
public protocol BatchedWrite: SendableMetatype {
    associatedtype Item: Sendable
    /// Writes `items` (at least one) in `transaction`.
    static func write(_ items: [Item], in transaction: Transaction) async throws
}
