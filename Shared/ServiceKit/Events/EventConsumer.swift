import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Handles one event inside the transaction that also records it in the inbox; what it
/// publishes there names the event as its cause.
public typealias EventHandler = @Sendable (EventEnvelope, Transaction) async throws -> Void

/// An error the handler knows retrying cannot fix (the message is dead-lettered at once).
public struct PermanentFailure: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Consumes a service's topics and applies each event exactly once:
/// inbox claim, handler and outbox writes commit in one transaction, and only then is the
/// Kafka offset stored. Under load, the records already waiting on a partition (up to
/// `batchSize`) form a batch, and the batches of all partitions that wait while a
/// transaction runs are applied together in the next one (`GroupCommit`, up to
/// `4 × batchSize` records), each partition's in order, with one inbox statement and one
/// outbox statement for all of them: that saves round trips and a commit (a WAL flush) per
/// event, and an idle consumer applies a record at once. If any of them fails, the shared
/// transaction is rolled back and each batch's records are applied on their own, with
/// their own retries and dead letter. A failing event is retried with exponential
/// backoff and jitter up to `maxAttempts`, then written to `hitl.dead-letter` with its full
/// context, and the partition moves on. While Postgres itself is unreachable, nothing is
/// dead-lettered: the consumer waits for it.
///
/// Under the watchdog, the consumer beats after each batch it finished and whenever it has
/// nothing left to read; it counts as stalled when it has not beaten for `stallAfter` while
/// its partitions hold records and `dependenciesReachable` (Postgres and Kafka answer), and
/// is then restarted as a fresh group member. `hitl_consumer_lag{group,topic}` exports
/// what it has still to read.
public final class EventConsumer: SupervisedLoop {
    private let service: String
    private let groupID: String
    private let topics: [Topic]
    private let kafka: KafkaConfiguration
    /// The group member made by `init` (so bad settings fail at start), for the first run;
    /// a restarted run makes a fresh one.
    private let first: Mutex<KafkaConsumer?>
    /// The member of the current run, whose lag the watchdog reads.
    private let current: Mutex<KafkaConsumer?>
    private let dependenciesReachable: @Sendable () async -> Bool
    public let stallAfter: Duration
    private let database: Database
    private let handlers: [EventType: EventHandler]
    private let maxAttempts: Int
    private let backoff: Backoff
    private let batchSize: Int
    private let logger: Logger
    /// How long one transaction may take before it counts as the database being away.
    private let transactionDeadline: Duration

    /// A record read and routed to its handler.
    typealias Event = (envelope: EventEnvelope, handler: EventHandler)

    public init(
        service: String, kafka: KafkaConfiguration, groupID: String, topics: [Topic],
        database: Database, handlers: [EventType: EventHandler],
        maxAttempts: Int = 5, backoff: Backoff = .default, batchSize: Int = 32, transactionDeadline: Duration = .seconds(20),
        stallAfter: Duration = .seconds(120), dependenciesReachable: @escaping @Sendable () async -> Bool = { true }, logger: Logger
    ) throws {
        for topic in topics where !TopicAccess.may(service, read: topic) {
            throw PermanentFailure("the \(service) service may not consume \(topic) (Contracts' TopicAccess)")
        }
        self.transactionDeadline = transactionDeadline
        self.service = service
        self.groupID = groupID
        self.topics = topics
        self.kafka = kafka
        self.first = Mutex(try KafkaConsumer(configuration: kafka, groupID: groupID, topics: topics.map(\.rawValue), logger: logger))
        self.current = Mutex(nil)
        self.stallAfter = stallAfter
        self.dependenciesReachable = dependenciesReachable
        self.database = database
        self.handlers = handlers
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    public var name: String { "consumer \(groupID)" }

    /// The transactions the partitions' batches share, one for each run: a round stuck past
    /// the deadline of a run the watchdog gave up on must not hold up the next run's.
    private func sharedTransactions() -> GroupCommit<Event, Bool> {
        GroupCommit(maxItems: 4 * batchSize) { [database, transactionDeadline, logger, groupID] events in
            do {
                return try await Self.boundedTransaction(events, on: database, within: transactionDeadline, logger: logger)
            } catch {
                // How often a round falls back: each costs its batches a second attempt.
                Counter(label: "hitl_consumer_shared_fallbacks_total", dimensions: [("group", groupID)]).increment()
                logger.debug(
                    "Shared transaction failed; applying its batches one event at a time",
                    metadata: [LoggingKeys.error: "\(ErrorText.describe(error))", "batch.size": "\(events.count)"])
                return nil
            }
        }
    }

    public func isWorkWaiting() async -> Bool {
        guard let lag = current.withLock({ $0 })?.lag(), lag.values.contains(where: { $0 > 0 }) else { return false }
        return await dependenciesReachable()
    }

    public func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        let consumer =
            try first.withLock { $0.take() }
            ?? KafkaConsumer(configuration: kafka, groupID: groupID, topics: topics.map(\.rawValue), logger: logger)
        current.withLock { $0 = consumer }
        let gauges = Dictionary(
            uniqueKeysWithValues: topics.map {
                ($0.rawValue, Gauge(label: "hitl_consumer_lag", dimensions: [("group", groupID), ("topic", $0.rawValue)]))
            })
        let shared = sharedTransactions()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await consumer.run(batchSize: self.batchSize) { batch in
                    let done = await self.process(batch: batch, sharing: shared)
                    await heartbeat.beat()
                    return done
                }
            }
            // Exports the lag, and beats while there is nothing to read (idle is not stuck).
            group.addTask {
                while !Task.isCancelled {
                    if let lag = consumer.lag() {
                        for (topic, gauge) in gauges { gauge.record(lag[topic] ?? 0) }
                        if lag.values.allSatisfy({ $0 == 0 }) { await heartbeat.beat() }
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Applies a partition's batch in a transaction it shares with the batches of other
    /// partitions; falls back to one by one when any record cannot be read or routed, or the
    /// transaction fails.
    func process(batch: [KafkaMessage], sharing shared: GroupCommit<Event, Bool>) async -> [Bool] {
        guard !batch.isEmpty else { return [] }
        let started = ContinuousClock.now
        var events: [Event] = []
        for message in batch {
            guard let envelope = try? EventEnvelope(message), let handler = try? route(envelope, on: message.topic) else { return await sequentially(batch) }
            events.append((envelope, handler))
        }
        guard let applied = await shared.run(events) else { return await sequentially(batch) }
        let share = (ContinuousClock.now - started) / batch.count
        for (index, event) in events.enumerated() { Self.count(event.envelope, applied: applied[index], took: share) }
        return Array(repeating: true, count: batch.count)
    }

    /// `apply` in one transaction that must answer within `deadline`. A statement
    /// written to a connection Postgres cut a moment before is never answered (PostgresNIO),
    /// and `Database.checkOpen` cannot close that window between two statements of a handler:
    /// past the deadline the attempt counts as the database being away and the events are
    /// tried again on a fresh connection. The stuck attempt can never commit (its connection
    /// is gone); a slow one that does commit first makes the retry a no-op through the inbox.
    private static func boundedTransaction(
        _ events: [Event], on database: Database, within deadline: Duration, logger: Logger
    ) async throws -> [Bool] {
        let outcome = await Deadline.value(within: deadline) {
            try await database.transaction(logger: logger) { transaction in
                try await apply(events, in: transaction)
            }
        }
        guard let outcome else {
            throw DatabaseUnavailable(reason: "a transaction did not answer within \(deadline)")
        }
        return try outcome.get()
    }

    /// Claims `events` in the inbox (one statement) and runs each claimed one's handler, in
    /// order, in the caller's transaction; answers per event whether it was applied (not when
    /// it was applied before, a redelivery or a replay, or repeats one earlier in `events`).
    private static func apply(_ events: [Event], in transaction: Transaction) async throws -> [Bool] {
        var claimed = try await Inbox.claim(events.map(\.envelope), in: transaction)
        var applied: [Bool] = []
        for (envelope, handler) in events {
            guard claimed.remove(envelope.id) != nil else {
                applied.append(false)
                continue
            }
            var logger = transaction.logger.about(workflow: envelope.subject)
            logger[metadataKey: LoggingKeys.eventID] = "\(envelope.id)"
            logger[metadataKey: LoggingKeys.eventType] = "\(envelope.type)"
            try await handler(envelope, transaction.applying(envelope, logger: logger))
            applied.append(true)
        }
        return applied
    }

    private static func count(_ envelope: EventEnvelope, applied: Bool, took duration: Duration) {
        Counter(label: "hitl_events_processed_total", dimensions: [("type", envelope.type.rawValue), ("result", applied ? "applied" : "duplicate")]).increment()
        Timer(label: "hitl_event_processing_seconds", dimensions: [("type", envelope.type.rawValue)]).record(duration: duration)
    }

    /// Each record on its own, in order; stops at the first one cancellation interrupted.
    private func sequentially(_ batch: [KafkaMessage]) async -> [Bool] {
        var done: [Bool] = []
        for message in batch {
            guard done.allSatisfy({ $0 }) else {
                done.append(false)
                continue
            }
            done.append(await process(message))
        }
        return done
    }

    /// Processes one message to the end: applied, found to be a duplicate, or dead-lettered.
    /// Returns false only when cancellation interrupted it: then nothing was committed and
    /// the record is left for the next owner of the partition.
    func process(_ message: KafkaMessage) async -> Bool {
        let started = ContinuousClock.now
        let firstAttemptAt = Date()
        var logger = self.logger
        logger[metadataKey: LoggingKeys.kafkaTopic] = "\(message.topic)"
        logger[metadataKey: LoggingKeys.kafkaOffset] = "\(message.offset)"
        let envelope: EventEnvelope
        let handler: EventHandler
        do {
            envelope = try EventEnvelope(message)
        } catch {
            return await deadLetter(message, envelope: nil, error: "\(error)", attempts: 1, firstAttemptAt: firstAttemptAt, logger: logger)
        }
        do {
            handler = try route(envelope, on: message.topic)
        } catch {
            return await deadLetter(message, envelope: envelope, error: "\(error)", attempts: 1, firstAttemptAt: firstAttemptAt, logger: logger)
        }
        logger = logger.about(workflow: envelope.subject)
        logger[metadataKey: LoggingKeys.eventID] = "\(envelope.id)"
        logger[metadataKey: LoggingKeys.eventType] = "\(envelope.type)"
        var attempt = 0
        while true {
            if Task.isCancelled { return false }
            attempt += 1
            do {
                let applied = try await Self.boundedTransaction([(envelope, handler)], on: database, within: transactionDeadline, logger: logger)[0]
                Self.count(envelope, applied: applied, took: ContinuousClock.now - started)
                return true
            } catch let error where Self.isInfrastructure(error) {
                // Postgres is away: not the message's fault, so it is not dead-lettered.
                logger.warning("Database unavailable; retrying event", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
                attempt -= 1
                try? await Task.sleep(for: .seconds(1))
            } catch {
                let permanent = error is PermanentFailure || error is ContractError
                if Task.isCancelled { return false }
                if permanent || attempt >= maxAttempts {
                    return await deadLetter(
                        message, envelope: envelope, error: ErrorText.describe(error), attempts: attempt, firstAttemptAt: firstAttemptAt, logger: logger)
                }
                logger.info("Event failed; retrying", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))", "attempt": "\(attempt)"])
                try? await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
    }

    private func route(_ envelope: EventEnvelope, on topic: String) throws -> EventHandler {
        if Topic(rawValue: topic).carries(envelope.type) == false {
            throw ContractError(.unexpectedType, "\(envelope.type) does not belong on \(topic)")
        }
        if let handler = handlers[envelope.type] { return handler }
        if handlers.keys.contains(where: { $0.name == envelope.type.name }) {
            throw ContractError(.unsupportedVersion, "\(envelope.type) is a version this service does not read")
        }
        throw ContractError(.unexpectedType, "\(service) has no handler for \(envelope.type)")
    }

    /// Writes the dead letter; false when cancellation interrupted it.
    private func deadLetter(_ message: KafkaMessage, envelope: EventEnvelope?, error: String, attempts: Int, firstAttemptAt: Date, logger: Logger) async -> Bool
    {
        guard message.topic != Topic.deadLetter.rawValue else {
            // A dead letter about a dead letter would loop forever; the log is its last stop.
            logger.error("Dead letter could not be processed; dropped", metadata: [LoggingKeys.error: "\(error)"])
            return true
        }
        // The value goes along base64-encoded (a third larger): one too large to make a
        // dead letter Kafka takes is left out, and the error says so, or the partition
        // would wait forever on a dead letter that can never be written.
        let keepsValue = message.value.count * 4 / 3 + 64 * 1024 < OutboxRow.maxRecordBytes
        let record = DeadLettered(
            deadLetterId: UUID().uuidString.lowercased(), service: service, originalTopic: message.topic,
            partition: Int(message.partition), offset: message.offset,
            key: message.key.map { String(decoding: $0, as: UTF8.self) },
            headers: message.headers.map { [$0.name, $0.text] },
            valueBase64: keepsValue ? Data(message.value).base64EncodedString() : "", eventId: envelope?.id,
            originalEventType: envelope?.type.rawValue,
            error: keepsValue ? error : error + " (the record's \(message.value.count) bytes are not kept: too large for a dead letter)", attempts: attempts,
            firstAttemptAt: firstAttemptAt, deadLetteredAt: Date())
        let subject = envelope?.subject ?? record.key ?? record.deadLetterId
        while !Task.isCancelled {
            do {
                try await database.transaction(cause: envelope, logger: logger) { transaction in
                    try transaction.publish(record, to: .deadLetter, subject: subject)
                }
                logger.warning("Event dead-lettered", metadata: [LoggingKeys.error: "\(error)", LoggingKeys.deadLetterID: "\(record.deadLetterId)"])
                Counter(label: "hitl_events_dead_lettered_total", dimensions: [("topic", message.topic)]).increment()
                return true
            } catch {
                // Never drop the message: wait for the database to take the dead letter.
                logger.warning("Dead letter not written; retrying", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        return false
    }

    /// Whether `error` means Postgres could not be reached, rather than that it refused.
    static func isInfrastructure(_ error: any Error) -> Bool {
        if error is DatabaseUnavailable { return true }
        guard let error = error as? PSQLError else { return false }
        return error.serverInfo == nil && error.code != .queryCancelled
    }
}
