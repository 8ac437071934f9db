import Contracts
import Foundation
import Logging
import PostgresNIO

/// One record in the service's outbox table: written by a `Transaction` just before it
/// commits, read back and published by the `OutboxRelay`.
public struct OutboxRow: Sendable {
    public let topic: String
    public let key: String
    /// The headers as name, value, name, value…
    public let headers: [String]
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
        self.headers = headers.flatMap { [$0.0, $0.1] }
        self.value = ByteBuffer(bytes: value)
    }

    /// `envelope` for `topic`, keyed by its subject.
    public init(_ envelope: EventEnvelope, to topic: Topic) throws {
        try self.init(topic: topic.rawValue, key: envelope.subject, headers: envelope.headers, value: envelope.data)
    }

    /// Binds `rows` as five arrays (topics, keys, header counts, headers, values), for a
    /// statement that inserts them with `unnest` (`text[]`, `text[]`, `int4[]`, `text[]`,
    /// `bytea[]`); see `insertStatement(boundFrom:)`. Postgres has no arrays of arrays of different lengths, so
    /// the headers of all rows go as one flat array, cut by their counts.
    public static func bind(_ rows: [OutboxRow], into bindings: inout PostgresBindings) {
        bindings.append(rows.map(\.topic))
        bindings.append(rows.map(\.key))
        bindings.append(rows.map { Int32($0.headers.count) })
        bindings.append(rows.flatMap(\.headers))
        bindings.append(rows.map(\.value))
    }

    /// The types of the arrays `bind` binds.
    public static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray, .int4Array, .textArray, .byteaArray]

    /// The `INSERT` of the rows `bind` binds as parameters `$first` to `$first + 4`, in
    /// order: the outbox statement of a transaction, or a CTE of the statement that takes the
    /// transaction's events (`Transaction.takeEvents`) or writes its own
    /// (`Transaction.outboxRows(for:)`), then perhaps only when `condition` holds.
    public static func insertStatement(boundFrom first: Int, onlyIf condition: String? = nil) -> String {
        let (topics, keys, counts, headers, values) = (first, first + 1, first + 2, first + 3, first + 4)
        return """
            INSERT INTO outbox (topic, key, headers, value)
            SELECT e.topic, e.key, ($\(headers)::text[])[e.start + 1 : e.start + e.count] AS headers, e.value
            FROM (SELECT r.topic, r.key, r.count, r.value, r.position,
                         coalesce(sum(r.count) OVER (ORDER BY r.position ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::int AS start
                  FROM unnest($\(topics)::text[], $\(keys)::text[], $\(counts)::int4[], $\(values)::bytea[])
                       WITH ORDINALITY AS r(topic, key, count, value, position)) AS e
            \(condition.map { "WHERE \($0)" } ?? "") ORDER BY e.position
            """
    }

    /// Inserts `rows` in one statement, in order.
    static func insert(_ rows: [OutboxRow], on connection: PostgresConnection, logger: Logger) async throws {
        guard !rows.isEmpty else { return }
        _ = try await connection.execute(Insert(rows: rows), logger: logger)
    }

    /// Nearly every transaction ends with it: prepared, so Postgres parses and plans it once
    /// per connection.
    struct Insert: PostgresPreparedStatement {
        static let sql = OutboxRow.insertStatement(boundFrom: 1)
        static let bindingDataTypes = OutboxRow.bindingDataTypes
        typealias Row = Void
        let rows: [OutboxRow]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            OutboxRow.bind(rows, into: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }
}
