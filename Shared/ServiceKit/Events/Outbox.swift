import Contracts
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Writes events into the service's outbox table inside the caller's transaction, so an
/// event is published if and only if the state change that caused it committed.
///
/// Inside `Database.transaction` the rows are collected and inserted in one statement
/// just before COMMIT (one round trip however many events the transaction, or a consumer's
/// batch of events, publishes), and the relay is woken after the commit; elsewhere each
/// call inserts at once and the caller wakes the relay (`OutboxRelay.wake()`).
public struct Outbox: Sendable {
    /// The service name, used as every event's `ce_source`.
    public let source: String

    public init(source: String) {
        self.source = source
    }

    /// Adds a typed event for `topic`, keyed by `subject` (the workflow id).
    @discardableResult
    public func publish<Payload: EventPayload>(
        _ payload: Payload, to topic: Topic, subject: String, causedBy cause: EventEnvelope? = nil,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> EventEnvelope {
        let envelope = try EventEnvelope(payload, source: source, subject: subject, causedBy: cause)
        try await insert([OutboxRow(envelope, to: topic)], on: connection, logger: logger)
        return envelope
    }

    /// Adds several events, in order (each keyed by its subject).
    public func append(_ events: [(envelope: EventEnvelope, topic: Topic)], on connection: PostgresConnection, logger: Logger) async throws {
        try await insert(events.map { try OutboxRow($0.envelope, to: $0.topic) }, on: connection, logger: logger)
    }

    /// Adds a record as raw bytes with the given headers.
    public func appendRaw(topic: String, key: String, headers: [(String, String)], value: [UInt8], on connection: PostgresConnection, logger: Logger)
        async throws
    {
        try await insert([OutboxRow(topic: topic, key: key, headers: headers, value: value)], on: connection, logger: logger)
    }

    private func insert(_ rows: [OutboxRow], on connection: PostgresConnection, logger: Logger) async throws {
        // The broker's ACLs would refuse the record after commit; refuse it before.
        for row in rows where !TopicAccess.may(source, write: row.topic) {
            throw PermanentFailure("the \(source) service may not publish to \(row.topic)")
        }
        if let pending = PendingOutbox.current, pending.connection === connection {
            try pending.add(rows)
        } else {
            try await OutboxRow.insert(rows, on: connection, logger: logger)
        }
    }
}

/// One outbox row as the relay reads it back.
public struct OutboxRow: Sendable {
    public let topic: String
    public let key: String
    /// The headers as a JSON array of `[name, value]` pairs.
    public let headers: String
    public let value: ByteBuffer

    /// The largest record an event may become: under the producer's `message.max.bytes`
    /// (1,000,000) with room for the record's framing. A larger one could never leave.
    public static let maxRecordBytes = 900_000

    public init(topic: String, key: String, headers: [(String, String)], value: [UInt8]) throws {
        let size = value.count + key.utf8.count + headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count }
        guard size <= Self.maxRecordBytes else {
            // Refused before commit: a consumer dead-letters its cause at once, nothing jams the relay.
            throw PermanentFailure("the event for \(topic) would be \(size) bytes; Kafka records are at most \(Self.maxRecordBytes)")
        }
        self.topic = topic
        self.key = key
        self.headers = try JSONColumn.text(headers.map { [$0.0, $0.1] })
        self.value = ByteBuffer(bytes: value)
    }

    /// `envelope` for `topic`, keyed by its subject.
    public init(_ envelope: EventEnvelope, to topic: Topic) throws {
        try self.init(topic: topic.rawValue, key: envelope.subject, headers: envelope.headers, value: envelope.data)
    }

    /// Inserts `rows` in one statement, in order.
    static func insert(_ rows: [OutboxRow], on connection: PostgresConnection, logger: Logger) async throws {
        guard rows.count > 1 else {
            guard let row = rows.first else { return }
            try await connection.query(
                "INSERT INTO outbox (topic, key, headers, value) VALUES (\(row.topic), \(row.key), \(row.headers)::jsonb, \(row.value))",
                logger: logger)
            return
        }
        try await connection.query(
            """
            INSERT INTO outbox (topic, key, headers, value)
            SELECT topic, key, headers::jsonb, value
            FROM unnest(\(rows.map(\.topic))::text[], \(rows.map(\.key))::text[], \(rows.map(\.headers))::text[], \(rows.map(\.value))::bytea[])
                 WITH ORDINALITY AS e(topic, key, headers, value, position)
            ORDER BY position
            """, logger: logger)
    }
}

/// The outbox rows of the transaction `Database.transaction` runs on `connection`, written
/// by `flush` just before it commits.
final class PendingOutbox: Sendable {
    @TaskLocal static var current: PendingOutbox?

    let connection: PostgresConnection
    /// The rows so far; nil once flushed.
    private let rows = Mutex<[OutboxRow]?>([])

    init(connection: PostgresConnection) {
        self.connection = connection
    }

    func add(_ new: [OutboxRow]) throws {
        try rows.withLock { rows in
            // A task the transaction left behind must not publish into a finished one.
            guard rows != nil else { throw PermanentFailure("an event was published after its transaction ended") }
            rows! += new
        }
    }

    /// Inserts the rows; answers whether there were any.
    func flush(logger: Logger) async throws -> Bool {
        let rows = self.rows.withLock { rows in
            defer { rows = nil }
            return rows ?? []
        }
        try await OutboxRow.insert(rows, on: connection, logger: logger)
        return !rows.isEmpty
    }
}
