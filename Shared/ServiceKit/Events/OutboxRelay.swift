import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Publishes outbox rows to Kafka in insertion order and deletes each row once its
/// delivery report arrived. A crash after the publish and before the delete publishes
/// that row again on restart; consumers' inboxes make the repeat a no-op.
///
/// A row Kafka refuses for what it is (too large, malformed) would block every row behind
/// it forever: after `refusalsBeforeParking` refusals it is replaced, in one statement, by
/// a dead letter that says why (without the value, which is what Kafka refused).
///
/// One relay per service is active at a time (a session advisory lock); the others wait
/// as standbys. The active one wakes when a `Database.transaction` of its own process wrote
/// outbox rows (or on `wake()`, after rows written outside one) and polls every
/// `pollInterval` for rows written by other replicas.
public final class OutboxRelay: Service, Sendable {
    private let database: Database
    private let producer: KafkaProducer
    private let pollInterval: Duration
    private let batchSize: Int
    private let logger: Logger
    private let published: Counter
    /// Refusals per outbox row while this relay leads.
    private let refusals = Mutex<[Int64: Int]>([:])
    static let refusalsBeforeParking = 3

    public init(database: Database, producer: KafkaProducer, pollInterval: Duration = .seconds(1), batchSize: Int = 500, logger: Logger) {
        self.database = database
        self.producer = producer
        self.pollInterval = pollInterval
        self.batchSize = batchSize
        self.logger = logger
        self.published = Counter(label: "hitl_outbox_published_total", dimensions: [("schema", database.schema)])
    }

    /// Tells the relay that rows were committed outside a `Database.transaction`.
    public func wake() {
        database.outboxWritten.signal()
    }

    public func run() async throws {
        try await run(heartbeat: nil)
    }

    /// Relays until graceful shutdown, beating `heartbeat` after every pass (leader or standby).
    public func run(heartbeat: LoopWatchdog.Heartbeat?) async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.relayWhileLeader(heartbeat: heartbeat)
                } catch {
                    if Task.isCancelled { break }
                    self.logger.warning("Outbox relay failed; retrying", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    private func relayWhileLeader(heartbeat: LoopWatchdog.Heartbeat?) async throws {
        let lockKey = "hitl.outbox.\(database.schema)"
        try await database.withConnection { connection in
            // A standby asks for the lock every poll interval rather than blocking on it: it
            // stays alive to the watchdog, and it takes over once the leader's session ends
            // (a crash, or a server restart that cut it).
            while !Task.isCancelled {
                try Database.checkOpen(connection)
                var acquired = false
                for try await granted in try await connection.query("SELECT pg_try_advisory_lock(hashtext(\(lockKey)))", logger: logger).decode(Bool.self) {
                    acquired = granted
                }
                if acquired { break }
                await heartbeat?.beat()
                try await Task.sleep(for: pollInterval)
            }
            do {
                while !Task.isCancelled {
                    let count = try await relayBatch(on: connection)
                    await heartbeat?.beat()
                    if count < batchSize {
                        await database.outboxWritten.wait(timeout: pollInterval)
                    }
                }
            } catch {
                // The connection goes back to the pool: it must not keep the leadership. A
                // connection the server cut has lost it already (and must not be used).
                if !connection.isClosed { _ = try? await connection.query("SELECT pg_advisory_unlock_all()", logger: logger) }
                throw error
            }
            if !connection.isClosed { _ = try? await connection.query("SELECT pg_advisory_unlock_all()", logger: logger) }
        }
    }

    /// Seconds since the oldest row waiting in the outbox was written; 0 when it is empty.
    public func oldestAge() async throws -> Double {
        for try await age in try await database.query(
            "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM outbox"
        ).decode(Double.self) {
            return age
        }
        return 0
    }

    /// Publishes one batch; returns how many rows it published.
    func relayBatch(on connection: PostgresConnection) async throws -> Int {
        var ids: [Int64] = []
        var records: [KafkaRecord] = []
        var unreadable: [(id: Int64, record: KafkaRecord, headers: String)] = []
        try Database.checkOpen(connection)  // after the wait for work
        // Headers are pairs: a row whose array is not (none, a NULL in it, an odd count) comes
        // with its text instead.
        let rows = try await connection.query(
            """
            SELECT o.id, o.topic, o.key, r.pairs, CASE WHEN r.pairs THEN o.headers ELSE ARRAY[o.headers::text] END, o.value
            FROM outbox AS o, LATERAL (SELECT cardinality(o.headers) > 0 AND cardinality(o.headers) % 2 = 0 AND array_position(o.headers, NULL) IS NULL AS pairs) AS r
            ORDER BY o.id LIMIT \(batchSize)
            """, logger: logger)
        for try await (id, topic, key, pairs, texts, value) in rows.decode((Int64, String, String, Bool, [String], ByteBuffer).self) {
            // A record without its headers (its CloudEvents attributes) is no event: a row
            // whose headers cannot be read is parked for ops, never published bare.
            guard pairs else {
                unreadable.append((id, KafkaRecord(topic: topic, key: Array(key.utf8), value: Array(buffer: value), headers: []), texts.first ?? ""))
                continue
            }
            let headers = stride(from: 0, to: texts.count, by: 2).map { KafkaHeader(name: texts[$0], text: texts[$0 + 1]) }
            ids.append(id)
            records.append(KafkaRecord(topic: topic, key: Array(key.utf8), value: Array(buffer: value), headers: headers))
        }
        for row in unreadable {
            try await park(row.id, row.record, reason: "its headers cannot be read (\(row.headers.prefix(200)))", keepValue: true, attempts: 1, on: connection)
        }
        guard !records.isEmpty else { return unreadable.count }
        let results = await producer.send(records)
        var delivered: [Int64] = []
        for (index, (id, error)) in zip(ids, results).enumerated() {
            if let error {
                logger.warning("Outbox record not delivered; will retry", metadata: [LoggingKeys.outboxID: "\(id)", LoggingKeys.error: "\(error)"])
                if error.isRecordRefused, refused(id) >= Self.refusalsBeforeParking {
                    try await park(
                        id, records[index], reason: "Kafka refused the record (\(records[index].value.count) bytes): \(error.reason); its value is not kept",
                        keepValue: false, attempts: Self.refusalsBeforeParking, on: connection)
                }
            } else {
                delivered.append(id)
            }
        }
        if !delivered.isEmpty {
            try Database.checkOpen(connection)  // after the wait for delivery reports
            try await connection.query("DELETE FROM outbox WHERE id = ANY(\(delivered))", logger: logger)
            published.increment(by: delivered.count)
        }
        if delivered.count < ids.count {
            try await Task.sleep(for: .milliseconds(200))
        }
        return delivered.count
    }

    /// Counts a refusal of row `id`; how many so far.
    private func refused(_ id: Int64) -> Int {
        refusals.withLock { counts in
            counts[id, default: 0] += 1
            return counts[id]!
        }
    }

    /// Replaces row `id` by a dead letter saying why it cannot be published, in one statement.
    private func park(_ id: Int64, _ record: KafkaRecord, reason: String, keepValue: Bool, attempts: Int, on connection: PostgresConnection) async throws {
        let header = { (name: String) in record.headers.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) } }
        let key = String(decoding: record.key ?? [], as: UTF8.self)
        let letter = DeadLettered(
            deadLetterId: UUID().uuidString.lowercased(), service: database.schema, originalTopic: record.topic, partition: -1, offset: -1,
            key: key, headers: record.headers.map { [$0.name, String(decoding: $0.value, as: UTF8.self)] },
            valueBase64: keepValue ? Data(record.value).base64EncodedString() : "",
            eventId: header(EventEnvelope.Header.id), originalEventType: header(EventEnvelope.Header.type),
            error: reason, attempts: attempts, firstAttemptAt: Date(), deadLetteredAt: Date())
        let row = try OutboxRow(EventEnvelope(letter, source: database.schema, subject: key.isEmpty ? letter.deadLetterId : key), to: .deadLetter)
        try Database.checkOpen(connection)
        try await connection.query(
            """
            WITH gone AS (DELETE FROM outbox WHERE id = \(id) RETURNING id)
            INSERT INTO outbox (topic, key, headers, value) SELECT \(row.topic), \(row.key), \(row.headers), \(row.value) FROM gone
            """, logger: logger)
        refusals.withLock { _ = $0.removeValue(forKey: id) }
        logger.error("Outbox record cannot be published; parked on the dead-letter topic", metadata: [LoggingKeys.outboxID: "\(id)", "reason": "\(reason)"])
        Counter(label: "hitl_outbox_parked_total", dimensions: [("schema", database.schema)]).increment()
    }
}

/// The relay under the watchdog: it beats on every pass, leader or standby, and counts as
/// stalled when late while the outbox holds a row older than `stallAfter`.
struct RelayLoop: SupervisedLoop {
    let relay: OutboxRelay
    let stallAfter: Duration

    var name: String { "outbox relay" }

    func isWorkWaiting() async -> Bool {
        let age = await Deadline.value(within: .seconds(2)) { [relay] in try await relay.oldestAge() }
        guard case .success(let age) = age else { return false }
        return age > Double(stallAfter.components.seconds)
    }

    func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        try await relay.run(heartbeat: heartbeat)
    }
}
