import DevStack
import Foundation
import Kafka
import Logging
import ServiceKitTesting
import Testing

/// The librdkafka wrapper against the mock cluster over TCP.
@Suite(.timeLimit(.minutes(5))) struct KafkaClientTests {
    let logger = Logger(label: "test.kafka")

    func cluster(partitions: Int = 4, topic: String) throws -> KafkaMockCluster {
        let cluster = try KafkaMockCluster(brokers: 1)
        try cluster.createTopic(topic, partitions: partitions)
        return cluster
    }

    /// The mock cluster's "down" broker keeps some connections open without answering; a
    /// short socket timeout makes the clients drop them soon after it is back.
    static let properties = ["socket.timeout.ms": "5000", "session.timeout.ms": "3000"]

    func producer(_ cluster: KafkaMockCluster) throws -> KafkaProducer {
        try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: Self.properties), logger: logger)
    }

    /// Runs a consumer in the background, collecting "partition:value" strings.
    func startConsumer(_ cluster: KafkaMockCluster, group: String, topic: String, into collected: Collected<KafkaMessage>) throws -> Task<Void, any Error> {
        let consumer = try KafkaConsumer(
            configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: Self.properties),
            groupID: group, topics: [topic], logger: logger)
        return Task {
            try await consumer.run { message in
                await collected.append(message); return true
            }
        }
    }

    func values(_ collected: Collected<KafkaMessage>) async -> [String] {
        await collected.items.map { String(decoding: $0.value, as: UTF8.self) }
    }

    @Test func producesAndConsumesWithHeadersAndKeys() async throws {
        let cluster = try cluster(topic: "t.headers")
        let producer = try producer(cluster)
        for index in 0..<10 {
            try await producer.send(
                topic: "t.headers", key: Array("key-\(index % 3)".utf8), value: Array("value-\(index)".utf8),
                headers: [KafkaHeader(name: "ce_id", text: "id-\(index)"), KafkaHeader(name: "empty", value: [])])
        }
        let collected = Collected<KafkaMessage>()
        let consumer = try startConsumer(cluster, group: "g", topic: "t.headers", into: collected)
        try await waitUntil("10 messages") { await collected.count >= 10 }
        consumer.cancel()
        _ = try? await consumer.value
        let messages = await collected.items
        #expect(Set(messages.map { String(decoding: $0.value, as: UTF8.self) }) == Set((0..<10).map { "value-\($0)" }))
        for message in messages {
            let index = Int(String(decoding: message.value, as: UTF8.self).dropFirst(6))!
            #expect(message.headers == [KafkaHeader(name: "ce_id", text: "id-\(index)"), KafkaHeader(name: "empty", value: [])])
            #expect(message.key.map { String(decoding: $0, as: UTF8.self) } == "key-\(index % 3)")
        }
        // One key, one partition: the order of one key's records is kept.
        let keyZero = messages.filter { $0.key == Array("key-0".utf8) }.map(\.offset)
        #expect(keyZero == keyZero.sorted())
        await producer.shutdown()
    }

    @Test func twoConsumersSplitPartitionsAndOneTakesOverWithoutLoss() async throws {
        let cluster = try cluster(topic: "t.split")
        let producer = try producer(cluster)
        let first = Collected<KafkaMessage>()
        let second = Collected<KafkaMessage>()
        let a = try startConsumer(cluster, group: "split", topic: "t.split", into: first)
        let b = try startConsumer(cluster, group: "split", topic: "t.split", into: second)
        var sent = 0
        // Keep producing until both members have received records: the partitions are split.
        try await waitUntil("both consumers to own partitions", timeout: .seconds(60)) {
            let batch = (sent..<(sent + 20)).map { KafkaRecord(topic: "t.split", key: Array("k\($0)".utf8), value: Array("v\($0)".utf8), headers: []) }
            sent += 20
            #expect(await producer.send(batch).allSatisfy { $0 == nil })
            let firstCount = await first.count
            let secondCount = await second.count
            return firstCount > 0 && secondCount > 0
        }
        // Both are members now (the first may have held every partition before the second
        // joined): the records sent from here on are split, no partition read by both.
        let (firstSeen, secondSeen) = (await first.count, await second.count)
        let split = (sent..<(sent + 40)).map { KafkaRecord(topic: "t.split", key: Array("k\($0)".utf8), value: Array("v\($0)".utf8), headers: []) }
        sent += 40
        #expect(await producer.send(split).allSatisfy { $0 == nil })
        try await waitUntil("the split records to arrive", timeout: .seconds(60)) {
            Set(await values(first) + values(second)).isSuperset(of: Set(split.map { String(decoding: $0.value, as: UTF8.self) }))
        }
        let firstPartitions = Set(await first.items.dropFirst(firstSeen).map(\.partition))
        let secondPartitions = Set(await second.items.dropFirst(secondSeen).map(\.partition))
        #expect(firstPartitions.isDisjoint(with: secondPartitions))
        #expect(!firstPartitions.isEmpty && !secondPartitions.isEmpty)
        // The second member leaves; the first takes over its partitions.
        b.cancel()
        _ = try? await b.value
        let batch = (sent..<(sent + 100)).map { KafkaRecord(topic: "t.split", key: Array("k\($0)".utf8), value: Array("v\($0)".utf8), headers: []) }
        sent += 100
        #expect(await producer.send(batch).allSatisfy { $0 == nil })
        let expected = Set((0..<sent).map { "v\($0)" })
        try await waitUntil("every record to arrive", timeout: .seconds(60)) {
            Set(await values(first) + values(second)).isSuperset(of: expected)
        }
        a.cancel()
        _ = try? await a.value
        await producer.shutdown()
    }

    @Test func restartedConsumerResumesAfterTheLastCommittedOffset() async throws {
        let cluster = try cluster(topic: "t.resume")
        let producer = try producer(cluster)
        let batch1 = (0..<20).map { KafkaRecord(topic: "t.resume", key: Array("k\($0)".utf8), value: Array("first-\($0)".utf8), headers: []) }
        #expect(await producer.send(batch1).allSatisfy { $0 == nil })
        let before = Collected<KafkaMessage>()
        let consumer = try startConsumer(cluster, group: "resume", topic: "t.resume", into: before)
        try await waitUntil("the first batch") { await before.count >= 20 }
        consumer.cancel()  // graceful: drains, commits, leaves the group
        _ = try? await consumer.value

        let batch2 = (0..<20).map { KafkaRecord(topic: "t.resume", key: Array("k\($0)".utf8), value: Array("second-\($0)".utf8), headers: []) }
        #expect(await producer.send(batch2).allSatisfy { $0 == nil })
        let after = Collected<KafkaMessage>()
        let restarted = try startConsumer(cluster, group: "resume", topic: "t.resume", into: after)
        try await waitUntil("the second batch") { await after.count >= 20 }
        try await Task.sleep(for: .seconds(1))
        restarted.cancel()
        _ = try? await restarted.value
        #expect(Set(await values(after)) == Set((0..<20).map { "second-\($0)" }))
        await producer.shutdown()
    }

    @Test func lagCountsTheRecordsNotYetHandledPerTopic() async throws {
        let cluster = try cluster(partitions: 2, topic: "t.lag")
        let producer = try producer(cluster)
        let records = (0..<12).map { KafkaRecord(topic: "t.lag", key: Array("k\($0)".utf8), value: Array("v\($0)".utf8), headers: []) }
        #expect(await producer.send(records).allSatisfy { $0 == nil })
        let consumer = try KafkaConsumer(
            configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["statistics.interval.ms": "200"]),
            groupID: "lag", topics: ["t.lag"], logger: logger)
        // A handler held back: nothing is handled, so every record counts, on both partitions.
        let held = Held()
        let run = Task {
            try await consumer.run { _ in
                while await held.isHeld, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                return !Task.isCancelled
            }
        }
        try await waitUntil("a lag of 12") { consumer.lag()?["t.lag"] == 12 }
        await held.release()
        try await waitUntil("a lag of 0 once handled") { consumer.lag()?["t.lag"] == 0 }
        run.cancel()
        _ = try? await run.value
        await producer.shutdown()
    }

    actor Held {
        var isHeld = true
        func release() { isHeld = false }
    }

    @Test func brokerDownDelaysButLosesNothing() async throws {
        let cluster = try cluster(topic: "t.down")
        let producer = try producer(cluster)
        let collected = Collected<KafkaMessage>()
        let consumer = try startConsumer(cluster, group: "down", topic: "t.down", into: collected)
        try await producer.send(topic: "t.down", key: nil, value: Array("warm-up".utf8), headers: [])
        try await waitUntil("the warm-up record") { await collected.count >= 1 }

        try cluster.setBrokerDown(cluster.brokerIDs[0])
        let sending = Task {
            await producer.send((0..<50).map { KafkaRecord(topic: "t.down", key: Array("k\($0)".utf8), value: Array("v\($0)".utf8), headers: []) })
        }
        try await Task.sleep(for: .seconds(2))
        let countWhileDown = await collected.count
        #expect(countWhileDown == 1)  // nothing gets through while the broker is down
        try cluster.setBrokerUp(cluster.brokerIDs[0])
        let errors = await sending.value
        #expect(errors.allSatisfy { $0 == nil })
        try await waitUntil("every record after the broker came back", timeout: .seconds(60)) {
            Set(await values(collected)).isSuperset(of: Set((0..<50).map { "v\($0)" }))
        }
        consumer.cancel()
        _ = try? await consumer.value
        await producer.shutdown()
    }

    @Test func aFullLocalQueueWaitsWithoutHoldingTheCooperativePool() async throws {
        let cluster = try cluster(topic: "t.full")
        let producer = try KafkaProducer(
            configuration: KafkaConfiguration(
                bootstrapServers: cluster.bootstrapServers, properties: Self.properties.merging(["queue.buffering.max.messages": "5"]) { $1 }),
            logger: logger)
        try await producer.send(topic: "t.full", key: nil, value: Array("warm-up".utf8), headers: [])
        let broker = cluster.brokerIDs[0]
        try cluster.setBrokerDown(broker)
        // As many senders as the pool has threads, each with more records than the queue holds.
        let senders = (0..<max(2, ProcessInfo.processInfo.activeProcessorCount)).map { sender in
            Task {
                await producer.send(
                    (0..<20).map { KafkaRecord(topic: "t.full", key: Array("s\(sender)".utf8), value: Array("s\(sender)-\($0)".utf8), headers: []) })
            }
        }
        // The broker comes back from a plain thread, whatever the pool is doing.
        let back = Collected<ContinuousClock.Instant>()
        Thread {
            Thread.sleep(forTimeInterval: 3)
            try? cluster.setBrokerUp(broker)
            let now = ContinuousClock.now
            Task { await back.append(now) }
        }.start()
        try await Task.sleep(for: .milliseconds(500))
        let ranAt = ContinuousClock.now
        for sender in senders { #expect(await sender.value.allSatisfy { $0 == nil }) }
        // This test's own code ran while the senders waited for room, not only once they could go on.
        let brokerBack = try #require(await back.items.first)
        #expect(ranAt < brokerBack)
        let collected = Collected<KafkaMessage>()
        let consumer = try startConsumer(cluster, group: "full", topic: "t.full", into: collected)
        try await waitUntil("every record", timeout: .seconds(60)) { await collected.count == 1 + senders.count * 20 }
        consumer.cancel()
        _ = try? await consumer.value
        await producer.shutdown()
    }
}
