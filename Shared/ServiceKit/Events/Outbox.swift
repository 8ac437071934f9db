import Contracts
import Foundation
import Logging
import PostgresNIO

/// One record in the service's outbox table: written by a `Transaction` just before it
/// commits, read back and published by the `OutboxRelay`.
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

    /// Binds `rows` as four arrays (topics, keys, headers, values), for a statement that
    /// inserts them with `unnest` (`text[]`, `text[]`, `text[]`, `bytea[]`).
    public static func bind(_ rows: [OutboxRow], into bindings: inout PostgresBindings) {
        bindings.append(rows.map(\.topic))
        bindings.append(rows.map(\.key))
        bindings.append(rows.map(\.headers))
        bindings.append(rows.map(\.value))
    }

    /// Inserts `rows` in one statement, in order.
    static func insert(_ rows: [OutboxRow], on connection: PostgresConnection, logger: Logger) async throws {
        guard !rows.isEmpty else { return }
        _ = try await connection.execute(Insert(rows: rows), logger: logger)
    }

    /// Nearly every transaction ends with it: prepared, so Postgres parses and plans it once
    /// per connection.
    struct Insert: PostgresPreparedStatement {
        static let sql = """
            INSERT INTO outbox (topic, key, headers, value)
            SELECT topic, key, headers::jsonb, value
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS e(topic, key, headers, value, position)
            ORDER BY position
            """
        static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray, .textArray, .byteaArray]
        typealias Row = Void
        let rows: [OutboxRow]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            OutboxRow.bind(rows, into: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }
}
