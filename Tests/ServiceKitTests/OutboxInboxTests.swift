import Contracts
import Foundation
import Kafka
import Logging
import PostgresNIO
import ServiceKitTesting
import Synchronization
import Testing

@testable import ServiceKit

/// The outbox, the inbox and the dead-letter path against real Postgres and the mock cluster.
@Suite(.timeLimit(.minutes(5))) struct OutboxInboxTests {
    static let sample = TimerCancelled(owner: .approval, key: "deadline:x", workflowId: "wf-1")

    @Test func eventCommittedBeforeACrashIsPublishedOnceAfterRestart() async throws {
        // The relay is not running: the process "crashed" right after the commit.
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            let envelope = try await kit.database.transaction { transaction in
                try transaction.publish(Self.sample, to: Topic(rawValue: "hitl.test.out"), subject: "wf-1")
            }
            #expect(try await kit.count("SELECT count(*)::int FROM outbox") == 1)
            // A rolled-back transaction leaves nothing to publish.
            await #expect(throws: PermanentFailure.self) {
                try await kit.database.transaction { transaction in
                    try transaction.publish(Self.sample, to: Topic(rawValue: "hitl.test.out"), subject: "wf-2")
                    throw PermanentFailure("roll back")
                }
            }
            #expect(try await kit.count("SELECT count(*)::int FROM outbox") == 1)

            // Restart: the relay finds the row and publishes it.
            let messages = try await kit.running(kit.relay) { try await kit.read("hitl.test.out") { !$0.isEmpty } }
            #expect(messages.count == 1)
            let read = try EventEnvelope(headers: messages[0].headers.map { ($0.name, $0.text) }, value: messages[0].value)
            #expect(read.id == envelope.id)
            #expect(messages[0].key == Array("wf-1".utf8))
            #expect(try await kit.count("SELECT count(*)::int FROM outbox") == 0)
        }
    }

    /// A failing record too large to travel whole in a dead letter is dead-lettered without
    /// its value, and the partition moves on (it used to wait forever on that dead letter).
    @Test func aHugePoisonRecordIsDeadLetteredWithoutItsValueAndTheNextIsApplied() async throws {
        try await ServiceKitHarness.with { kit in
            let consumer = try makeConsumer(
                kit,
                handlers: [
                    .timerCancelled: { event, transaction in
                        let payload = try event.decode(TimerCancelled.self)
                        if payload.key.count > 1000 { throw PermanentFailure("too much") }
                        try await transaction.query("INSERT INTO applied (event_id, note) VALUES (\(event.id), 'ok')")
                    }
                ])
            try await kit.running(consumer) {
                let huge = try EventEnvelope(
                    TimerCancelled(owner: .approval, key: String(repeating: "k", count: 800_000), workflowId: "wf-h"), source: "test", subject: "wf-h")
                let good = try EventEnvelope(TimerCancelled(owner: .approval, key: "good", workflowId: "wf-h"), source: "test", subject: "wf-h")
                try await kit.produce(huge)
                try await kit.produce(good)
                try await waitUntil("the event behind it") { try await kit.count("SELECT count(*)::int FROM applied WHERE event_id = \(good.id)") == 1 }
                let letters = try await kit.read(Topic.deadLetter.rawValue) { !$0.isEmpty }
                let letter = try EventEnvelope(letters[0]).decode(DeadLettered.self)
                #expect(letter.eventId == huge.id && letter.valueBase64.isEmpty && letter.error.contains("are not kept"), "\(letter.error)")
            }
        }
    }

    /// An event too large for Kafka is refused before commit; a row Kafka refuses anyway (one
    /// written before the check) is parked on the dead-letter topic, and the rows behind it go.
    @Test func aRecordKafkaRefusesIsParkedAndDoesNotBlockTheRowsBehindIt() async throws {
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            let huge = TimerCancelled(owner: .approval, key: String(repeating: "k", count: 1_000_000), workflowId: "wf-huge")
            await #expect(throws: PermanentFailure.self) {
                try await kit.database.transaction { transaction in
                    try transaction.publish(huge, to: Topic(rawValue: "hitl.test.out"), subject: "wf-huge")
                }
            }
            #expect(try await kit.count("SELECT count(*)::int FROM outbox") == 0)

            let tooLarge = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1_200_000)
            _ = try await kit.database.query(
                "INSERT INTO outbox (topic, key, headers, value) VALUES ('hitl.test.out', 'wf-1', ARRAY['ce_id', 'big-1'], \(tooLarge))")
            let behind = try await kit.database.transaction { transaction in
                try transaction.publish(Self.sample, to: Topic(rawValue: "hitl.test.out"), subject: "wf-1")
            }
            try await kit.running(kit.relay) {
                let out = try await kit.read("hitl.test.out") { !$0.isEmpty }
                #expect(out.count == 1 && out.first?.headers.first { $0.name == "ce_id" }?.text == behind.id)
                let letters = try await kit.read(Topic.deadLetter.rawValue) { !$0.isEmpty }
                let letter = try EventEnvelope(letters[0]).decode(DeadLettered.self)
                #expect(letter.originalTopic == "hitl.test.out" && letter.eventId == "big-1" && letter.valueBase64.isEmpty)
                #expect(letter.error.contains("Kafka refused the record (1200000 bytes)"), "\(letter.error)")
                try await waitUntil("the outbox empty") { try await kit.count("SELECT count(*)::int FROM outbox") == 0 }
            }
        }
    }

    /// A row whose headers cannot be read is never published bare: it is parked, its value
    /// kept for ops, and the rows behind it go.
    @Test func aRowWithUnreadableHeadersIsParkedNotPublishedBare() async throws {
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            _ = try await kit.database.query(
                "INSERT INTO outbox (topic, key, headers, value) VALUES ('hitl.test.out', 'wf-1', ARRAY['ce_id', '1', 'ce_type'], \(ByteBuffer(string: "{}")))")
            let behind = try await kit.database.transaction { transaction in
                try transaction.publish(Self.sample, to: Topic(rawValue: "hitl.test.out"), subject: "wf-1")
            }
            try await kit.running(kit.relay) {
                let out = try await kit.read("hitl.test.out") { !$0.isEmpty }
                #expect(out.count == 1 && out.first?.headers.first { $0.name == "ce_id" }?.text == behind.id, "a bare record was published")
                let letters = try await kit.read(Topic.deadLetter.rawValue) { !$0.isEmpty }
                let letter = try EventEnvelope(letters[0]).decode(DeadLettered.self)
                #expect(letter.originalTopic == "hitl.test.out" && letter.error.contains("headers cannot be read") && letter.valueBase64 == "e30=")
                try await waitUntil("the outbox empty") { try await kit.count("SELECT count(*)::int FROM outbox") == 0 }
            }
        }
    }

    @Test func aTransactionsEventsAreInsertedTogetherAtCommitInOrder() async throws {
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            let topic = Topic(rawValue: "hitl.test.out")
            let keys = ["deadline:a", "deadline:b", "deadline:c"]
            let seenInside = try await kit.database.transaction { transaction in
                for key in keys {
                    try transaction.publish(
                        TimerCancelled(owner: .approval, key: key, workflowId: "wf-1"), to: topic, subject: "wf-1")
                }
                // Held until the transaction commits: one statement for all of them.
                let rows = try await transaction.query("SELECT count(*)::int FROM outbox")
                return try await rows.decode(Int.self).reduce(0, +)
            }
            #expect(seenInside == 0)
            let rows = try await kit.database.query("SELECT value FROM outbox ORDER BY id")
            var written: [String] = []
            for try await value in rows.decode(ByteBuffer.self) {
                written.append(try WireCoding.decode(TimerCancelled.self, from: Array(buffer: value)).key)
            }
            #expect(written == keys)

            // After-commit work runs once the transaction committed, never when it rolled back;
            // and nothing can publish into a transaction that ended.
            let ran = Mutex<[String]>([])
            let leftBehind = try await kit.database.transaction { transaction in
                transaction.afterCommit { ran.withLock { $0.append("committed") } }
                return transaction
            }
            await #expect(throws: KitTestFailure.self) {
                try await kit.database.transaction { transaction in
                    transaction.afterCommit { ran.withLock { $0.append("rolled back") } }
                    try transaction.publish(Self.sample, to: topic, subject: "wf-3")
                    throw KitTestFailure("roll back")
                }
            }
            #expect(ran.withLock { $0 } == ["committed"])
            #expect(throws: PermanentFailure.self) { try leftBehind.publish(Self.sample, to: topic, subject: "wf-4") }
            #expect(try await kit.count("SELECT count(*)::int FROM outbox") == 3)
        }
    }

    /// A statement that writes the events taken so far writes them in the order published,
    /// before those published after it; the relay is woken for them at commit, and a
    /// rollback takes them back like any other write.
    @Test func eventsTakenByAStatementAreWrittenInOrderAndRolledBackWithIt() async throws {
        struct Carrying: PostgresPreparedStatement {
            static let sql = "WITH events AS (\(OutboxRow.insertStatement(boundFrom: 1))) SELECT 1"
            static let bindingDataTypes = OutboxRow.bindingDataTypes
            let events: [OutboxRow]
            func makeBindings() throws -> PostgresBindings {
                var bindings = PostgresBindings()
                OutboxRow.bind(events, into: &bindings)
                return bindings
            }
            func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
        }
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            let topic = Topic(rawValue: "hitl.test.out")
            let publish = { (key: String, transaction: Transaction) in
                _ = try transaction.publish(TimerCancelled(owner: .approval, key: key, workflowId: "wf-1"), to: topic, subject: "wf-1")
            }
            await #expect(throws: KitTestFailure.self) {
                try await kit.database.transaction { transaction in
                    try publish("gone", transaction)
                    _ = try await transaction.returnsRow(Carrying(events: transaction.takeEvents()))
                    throw KitTestFailure("roll back")
                }
            }
            #expect(try await kit.count("SELECT count(*)::int FROM outbox") == 0)
            try await kit.database.transaction { transaction in
                try publish("a", transaction)
                try publish("b", transaction)
                let taken = transaction.takeEvents()
                #expect(taken.count == 2 && transaction.takeEvents().isEmpty)
                _ = try await transaction.returnsRow(Carrying(events: taken))
                try publish("c", transaction)
            }
            let messages = try await kit.running(kit.relay) { try await kit.read(topic.rawValue) { $0.count >= 3 } }
            let keys = try messages.map { try EventEnvelope($0).decode(TimerCancelled.self).key }
            #expect(keys == ["a", "b", "c"])
        }
    }

    /// Notes written together at commit, counting the statements.
    enum BatchedNotes: BatchedWrite {
        static let statements = Mutex(0)
        static func write(_ items: [String], in transaction: Transaction) async throws {
            statements.withLock { $0 += 1 }
            try await transaction.query("INSERT INTO applied (event_id, note) SELECT 'batched', note FROM unnest(\(items)::text[]) AS n(note)")
        }
    }

    /// Batched rows are written in one statement just before commit, in the order they were
    /// added, not at all when the transaction rolls back, and never after it ended.
    @Test func batchedWritesGoInOneStatementAtCommitAndRollBackWithIt() async throws {
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            let count: PostgresQuery = "SELECT count(*)::int FROM applied WHERE event_id = 'batched'"
            await #expect(throws: KitTestFailure.self) {
                try await kit.database.transaction { transaction in
                    try transaction.batch("gone", into: BatchedNotes.self)
                    throw KitTestFailure("roll back")
                }
            }
            let (seenInside, ended) = try await kit.database.transaction { transaction in
                for note in ["a", "b", "c"] { try transaction.batch(note, into: BatchedNotes.self) }
                return (try await transaction.query(count).decode(Int.self).reduce(0, +), transaction)
            }
            #expect(seenInside == 0)
            #expect(BatchedNotes.statements.withLock { $0 } == 1)
            var notes: [String] = []
            for try await note in try await kit.database.query("SELECT note FROM applied WHERE event_id = 'batched' ORDER BY ctid").decode(String.self) {
                notes.append(note)
            }
            #expect(notes == ["a", "b", "c"])
            #expect(throws: PermanentFailure.self) { try ended.batch("late", into: BatchedNotes.self) }
        }
    }

    /// A read the events of a batch share is made once per transaction, by every event applied
    /// in it, and afresh in the next transaction.
    @Test func aSharedReadIsMadeOncePerTransaction() async throws {
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            let reads = Mutex(0)
            let read: @Sendable (Transaction) async throws -> Int = { transaction in
                reads.withLock { $0 += 1 }
                return try await transaction.query("SELECT count(*)::int FROM outbox").decode(Int.self).reduce(0, +)
            }
            let first = try await kit.database.transaction { transaction in
                let event = try EventEnvelope(Self.sample, source: "test", subject: "wf-1")
                let a = try await transaction.shared("outbox.count", read)
                let b = try await transaction.applying(event, logger: transaction.logger).shared("outbox.count", read)
                return [a, b]
            }
            #expect(first == [0, 0])
            #expect(reads.withLock { $0 } == 1)
            try await kit.database.transaction { transaction in
                try transaction.publish(Self.sample, to: Topic(rawValue: "hitl.test.out"), subject: "wf-1")
            }
            let second = try await kit.database.transaction { transaction in try await transaction.shared("outbox.count", read) }
            #expect(second == 1)
            #expect(reads.withLock { $0 } == 2)
        }
    }

    @Test func duplicateDeliveryChangesNothing() async throws {
        try await ServiceKitHarness.with { kit in
            let consumer = try makeConsumer(
                kit,
                handlers: [
                    .timerCancelled: { event, transaction in
                        try await transaction.query("INSERT INTO applied (event_id, note) VALUES (\(event.id), 'x')")
                    }
                ])
            try await kit.running(consumer) {
                let envelope = try EventEnvelope(Self.sample, source: "test", subject: "wf-1")
                for _ in 0..<3 { try await kit.produce(envelope) }
                let other = try EventEnvelope(Self.sample, source: "test", subject: "wf-1")
                try await kit.produce(other)
                try await waitUntil("both events to be applied") { try await kit.count("SELECT count(*)::int FROM inbox") == 2 }
                try await Task.sleep(for: .seconds(1))
                #expect(try await kit.count("SELECT count(*)::int FROM applied WHERE event_id = \(envelope.id)") == 1)
                #expect(try await kit.count("SELECT count(*)::int FROM applied") == 2)
            }
        }
    }

    @Test func messageThatAlwaysFailsIsDeadLetteredWithContextAndTheNextIsProcessed() async throws {
        try await ServiceKitHarness.with { kit in
            let consumer = try makeConsumer(
                kit,
                handlers: [
                    .timerCancelled: { event, transaction in
                        let payload = try event.decode(TimerCancelled.self)
                        if payload.key == "poison" { throw KitTestFailure("this one never works") }
                        try await transaction.query("INSERT INTO applied (event_id, note) VALUES (\(event.id), 'ok')")
                    }
                ])
            try await kit.running(consumer) {
                // Same key, same partition: the good event waits behind the poison one.
                let poison = try EventEnvelope(TimerCancelled(owner: .approval, key: "poison", workflowId: "wf-p"), source: "test", subject: "wf-p")
                let good = try EventEnvelope(TimerCancelled(owner: .approval, key: "good", workflowId: "wf-p"), source: "test", subject: "wf-p")
                let unknown = EventEnvelope(type: EventType(rawValue: "hitl.timer.cancelled.v2"), source: "test", subject: "wf-p", data: Array("{}".utf8))
                try await kit.produce(poison)
                try await kit.produce(unknown)
                try await kit.produce(good)
                try await waitUntil("the good event") { try await kit.count("SELECT count(*)::int FROM applied WHERE event_id = \(good.id)") == 1 }

                let letters = try await kit.read(Topic.deadLetter.rawValue) { $0.count >= 2 }
                #expect(letters.count == 2)
                let records = try letters.map { message in
                    try EventEnvelope(message).decode(DeadLettered.self)
                }
                let poisoned = try #require(records.first { $0.eventId == poison.id })
                #expect(poisoned.service == "kit-test")
                #expect(poisoned.originalTopic == "hitl.test.in")
                #expect(poisoned.attempts == 3)
                #expect(poisoned.error.contains("this one never works"))
                #expect(poisoned.key == "wf-p")
                #expect(poisoned.headers.contains(["ce_id", poison.id]))
                #expect(Data(base64Encoded: poisoned.valueBase64) == Data(poison.data))
                #expect(poisoned.offset >= 0 && poisoned.firstAttemptAt <= poisoned.deadLetteredAt)
                let versioned = try #require(records.first { $0.eventId == unknown.id })
                #expect(versioned.attempts == 1)  // an unknown major version is not retried
                #expect(versioned.error.contains("unsupported_version"))
                // Dead-lettered events are not in the inbox, so a replay can still apply them.
                #expect(try await kit.count("SELECT count(*)::int FROM inbox WHERE event_id = \(poison.id)") == 0)
            }
        }
    }

    @Test func waitingEventsAreAppliedInOneTransactionAndAFailingBatchFallsBackToOneByOne() async throws {
        try await ServiceKitHarness.with { kit in
            let handlers: [EventType: EventHandler] = [
                .timerCancelled: { event, transaction in
                    if try event.decode(TimerCancelled.self).key == "poison" { throw KitTestFailure("this one never works") }
                    try await transaction.query(
                        "INSERT INTO applied (event_id, note) VALUES (\(event.id), txid_current()::text)")
                }
            ]
            func event(_ key: String) throws -> EventEnvelope {
                try EventEnvelope(TimerCancelled(owner: .approval, key: key, workflowId: "wf-b"), source: "test", subject: "wf-b")
            }
            // Waiting before the consumer starts: they are applied in batches, fewer commits than events.
            let first = try (0..<10).map { try event("first-\($0)") }
            for envelope in first { try await kit.produce(envelope) }
            let group = "kit-\(UUID().uuidString)"
            try await kit.running(try makeConsumer(kit, handlers: handlers, groupID: group)) {
                try await waitUntil("the first ten") { try await kit.count("SELECT count(*)::int FROM applied") == 10 }
            }
            #expect(try await kit.count("SELECT count(DISTINCT note)::int FROM applied") < 10)

            // A batch with a poison event and a redelivered one: rolled back, then each on its own.
            let second = try (0..<4).map { try event("second-\($0)") }
            for envelope in [second[0], second[1], try event("poison"), first[3], second[2], second[3]] { try await kit.produce(envelope) }
            try await kit.running(try makeConsumer(kit, handlers: handlers, groupID: group)) {
                try await waitUntil("the second four") { try await kit.count("SELECT count(*)::int FROM applied") == 14 }
                let letters = try await kit.read(Topic.deadLetter.rawValue) { $0.count >= 1 }
                #expect(letters.count == 1)
            }
            // Each event applied exactly once, the redelivered one not again.
            #expect(try await kit.count("SELECT count(DISTINCT event_id)::int FROM applied") == 14)

            // A batch claims its events in the inbox in one statement: an event already
            // applied, or repeated within the batch, is applied no more.
            let third = try (0..<3).map { try event("third-\($0)") }
            for envelope in [third[0], first[5], third[1], third[1], second[2], third[2]] { try await kit.produce(envelope) }
            try await kit.running(try makeConsumer(kit, handlers: handlers, groupID: group)) {
                try await waitUntil("the third three") { try await kit.count("SELECT count(*)::int FROM applied") == 17 }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(try await kit.count("SELECT count(*)::int FROM applied") == 17)
            #expect(try await kit.count("SELECT count(DISTINCT event_id)::int FROM applied") == 17)
        }
    }

    /// The batches of several partitions that wait while a transaction runs share the next
    /// one (where before each partition had transactions of its own).
    @Test func batchesOfDifferentPartitionsShareATransaction() async throws {
        try await ServiceKitHarness.with { kit in
            let wide = "hitl.test.wide"
            try kit.cluster.createTopic(wide, partitions: 4)
            let calls = Calls()
            let handlers: [EventType: EventHandler] = [
                .timerCancelled: { event, transaction in
                    // The first transaction is held open a moment, so the other partitions' batches wait.
                    if await calls.next() == 1 { try await Task.sleep(for: .seconds(1)) }
                    try await transaction.query("INSERT INTO applied (event_id, note) VALUES (\(event.id), txid_current()::text)")
                }
            ]
            for index in 0..<40 {
                let subject = "wf-wide-\(index)"
                try await kit.produce(
                    try EventEnvelope(TimerCancelled(owner: .approval, key: subject, workflowId: subject), source: "test", subject: subject), topic: wide)
            }
            try await kit.running(try makeConsumer(kit, handlers: handlers, topic: wide)) {
                try await waitUntil("all forty applied") { try await kit.count("SELECT count(*)::int FROM applied") == 40 }
            }
            var partitionOf: [String: Int32] = [:]
            for message in try await kit.read(wide, until: { $0.count >= 40 }) {
                partitionOf[try EventEnvelope(message).id] = message.partition
            }
            var partitionsOfTransaction: [String: Set<Int32>] = [:]
            for try await (id, transaction) in try await kit.database.query("SELECT event_id, note FROM applied").decode((String, String).self) {
                partitionsOfTransaction[transaction, default: []].insert(partitionOf[id] ?? -1)
            }
            #expect(partitionsOfTransaction.values.contains { $0.count >= 2 })
            #expect(partitionsOfTransaction.count < 40)
        }
    }

    @Test func prunerDeletesFinishedRowsPastTheRetentionInChunksAndKeepsTheRest() async throws {
        try await ServiceKitHarness.with(relayRunning: false) { kit in
            for (id, age) in [("old-1", 40), ("old-2", 31), ("old-3", 35), ("recent", 29), ("today", 0)] {
                _ = try await kit.database.query(
                    "INSERT INTO inbox (event_id, event_type, processed_at) VALUES (\(id), 'x', now() - \(age) * interval '1 day')")
                _ = try await kit.database.query("INSERT INTO applied (event_id, note) VALUES (\(id), \(age < 30 ? "open" : "done"))")
            }
            var pruner = Pruner(
                database: kit.database, rules: [.init(table: "applied", timeColumn: "now() - interval '40 days'", finished: "note = 'done'")],
                retentionDays: 30, logger: kit.logger)
            pruner.chunk = 2  // several statements per rule
            #expect(try await pruner.pruneOnce() == 6)
            #expect(try await kit.count("SELECT count(*)::int FROM inbox") == 2)
            #expect(try await kit.count("SELECT count(*)::int FROM inbox WHERE event_id IN ('recent', 'today')") == 2)
            // The rule's condition decides which rows are finished.
            #expect(try await kit.count("SELECT count(*)::int FROM applied") == 2)
            #expect(try await pruner.pruneOnce() == 0)
        }
    }

    func makeConsumer(
        _ kit: ServiceKitHarness, handlers: [EventType: EventHandler], groupID: String = "kit-\(UUID().uuidString)",
        transactionDeadline: Duration = .seconds(20), stallAfter: Duration = .seconds(120), topic: String = "hitl.test.in"
    ) throws -> EventConsumer {
        try EventConsumer(
            service: "kit-test", kafka: KafkaConfiguration(bootstrapServers: kit.cluster.bootstrapServers, properties: ["statistics.interval.ms": "500"]),
            groupID: groupID, topics: [Topic(rawValue: topic)], database: kit.database,
            handlers: handlers, maxAttempts: 3, backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(50)),
            transactionDeadline: transactionDeadline, stallAfter: stallAfter, logger: kit.logger)
    }

    /// A handler that never answers (past any transaction deadline) holds its partition: the
    /// watchdog sees records waiting and no progress, and a fresh group member applies them.
    @Test func aConsumerStuckInAHandlerIsRestartedAndItsRecordsApplied() async throws {
        // The server ends the stuck transaction soon, which frees the inbox row it locked.
        var configuration = try await TestPostgres.freshDatabase(schema: "kit")
        configuration.idleTransactionTimeoutSeconds = 2
        try await ServiceKitHarness.with(configuration: configuration) { kit in
            let calls = Calls()
            let consumer = try makeConsumer(
                kit,
                handlers: [
                    .timerCancelled: { event, transaction in
                        if await calls.next() == 1 { try? await Task.sleep(for: .seconds(600)) }
                        try await transaction.query("INSERT INTO applied (event_id, note) VALUES (\(event.id), 'x')")
                    }
                ], transactionDeadline: .seconds(600), stallAfter: .seconds(2))
            let watchdog = LoopWatchdog()
            try await kit.running(consumer, watchdog: watchdog) {
                let envelope = try EventEnvelope(Self.sample, source: "test", subject: "wf-stuck")
                try await kit.produce(envelope)
                try await waitUntil("the consumer reported stalled") { await watchdog.stalledLoops() == [consumer.name] }
                try await waitUntil("the event applied by the restarted member", timeout: .seconds(90)) {
                    try await kit.count("SELECT count(*)::int FROM applied WHERE event_id = \(envelope.id)") == 1
                }
                try await waitUntil("the consumer healthy again") { await watchdog.stalledLoops().isEmpty }
            }
        }
    }

    actor Calls {
        var count = 0
        func next() -> Int {
            count += 1
            return count
        }
    }
}

struct KitTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ServiceKitHarness {
    func produce(_ envelope: EventEnvelope, topic: String = "hitl.test.in") async throws {
        try await producer.send(envelope, to: Topic(rawValue: topic))
    }
}
