import Contracts
import Foundation
import Logging
import PostgresNIO

/// Writes events into the service's outbox table inside the caller's transaction, so an
/// event is published if and only if the state change that caused it committed.
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
        try await append(envelope, to: topic, on: connection, logger: logger)
        return envelope
    }

    /// Adds an already built event (a replay keeps the original id and headers).
    public func append(_ envelope: EventEnvelope, to topic: Topic, extraHeaders: [(String, String)] = [], on connection: PostgresConnection, logger: Logger) async throws {
        try await appendRaw(
            topic: topic.rawValue, key: envelope.subject, headers: envelope.headers + extraHeaders,
            value: envelope.data, on: connection, logger: logger)
    }

    /// Adds several events in one statement, in order (each keyed by its subject).
    public func append(_ events: [(envelope: EventEnvelope, topic: Topic)], on connection: PostgresConnection, logger: Logger) async throws {
        guard events.count > 1 else {
            if let only = events.first { try await append(only.envelope, to: only.topic, on: connection, logger: logger) }
            return
        }
        let headers = try events.map { try JSONColumn.text($0.envelope.headers.map { [$0.0, $0.1] }) }
        try await connection.query(
            """
            INSERT INTO outbox (topic, key, headers, value)
            SELECT topic, key, headers::jsonb, value
            FROM unnest(\(events.map(\.topic.rawValue))::text[], \(events.map(\.envelope.subject))::text[], \(headers)::text[],
                        \(events.map { ByteBuffer(bytes: $0.envelope.data) })::bytea[])
                 WITH ORDINALITY AS e(topic, key, headers, value, position)
            ORDER BY position
            """, logger: logger)
    }

    /// Adds a record as raw bytes with the given headers.
    public func appendRaw(topic: String, key: String, headers: [(String, String)], value: [UInt8], on connection: PostgresConnection, logger: Logger) async throws {
        let headerJSON = try JSONColumn.text(headers.map { [$0.0, $0.1] })
        let bytes = ByteBuffer(bytes: value)
        try await connection.query(
            "INSERT INTO outbox (topic, key, headers, value) VALUES (\(topic), \(key), \(headerJSON)::jsonb, \(bytes))",
            logger: logger)
    }
}
