import CRdKafka
import Foundation
import Logging
import ServiceLifecycle

/// A consumer-group member that hands each record to a handler and stores the record's
/// offset only after the handler returned, i.e. after the caller's work committed.
///
/// - Records of one partition are handled one at a time and in order; partitions are
///   handled concurrently.
/// - At most `maxInFlight` records are polled but not yet handled (bounded memory).
/// - On a rebalance, revoked partitions are drained and their offsets committed before
///   they are given up, so the next owner starts right after the last handled record.
/// - `enable.auto.offset.store` is off; stored offsets are committed every second and on close.
/// - All blocking librdkafka calls run on a dedicated thread.
public final class KafkaConsumer: Sendable {
    private let client: RDKafkaClient
    private let state: ConsumerState
    private let topics: [String]
    private let logger: Logger

    /// Settings the delivery guarantee depends on; they override the configuration.
    static let fixedProperties: [String: String] = [
        "enable.auto.offset.store": "false",
        "enable.auto.commit": "true",
    ]

    /// - Parameters:
    ///   - groupID: the consumer group; members share the partitions of `topics`.
    public init(configuration: KafkaConfiguration, groupID: String, topics: [String], maxInFlight: Int = 512, logger: Logger) throws {
        var configuration = configuration
        configuration.properties["group.id"] = groupID
        for (name, value) in [
            "auto.offset.reset": "earliest", "auto.commit.interval.ms": "1000",
            "session.timeout.ms": "6000", "heartbeat.interval.ms": "500",
            "topic.metadata.refresh.interval.ms": "5000",
            // A workflow resumes one consume after its decision: do not let an idle fetch
            // sit on the broker for librdkafka's default 500 ms.
            "fetch.wait.max.ms": "10",
            // How often `lag()` is brought up to date.
            "statistics.interval.ms": "2000",
        ] where configuration.properties[name] == nil {
            configuration.properties[name] = value
        }
        let conf = try configuration.makeConf(overriding: Self.fixedProperties)
        let state = ConsumerState(maxInFlight: maxInFlight, logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(state).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, error, partitions, opaque in
            guard let rk, let opaque else { return }
            Unmanaged<ConsumerState>.fromOpaque(opaque).takeUnretainedValue()
                .rebalance(rk, error: error, partitions: partitions)
        }
        rd_kafka_conf_set_stats_cb(conf) { _, json, length, opaque in
            guard let json, let opaque else { return 0 }
            Unmanaged<ConsumerState>.fromOpaque(opaque).takeUnretainedValue()
                .recordStatistics(Data(bytes: json, count: length))
            return 0  // librdkafka frees the JSON
        }
        self.client = try RDKafkaClient(type: RD_KAFKA_CONSUMER, conf: conf)
        // The client holds `state` by an unretained pointer; we keep it alive as long.
        self.state = state
        self.topics = topics
        self.logger = logger
        rd_kafka_poll_set_consumer(client.pointer)
    }

    /// Handles records until graceful shutdown or cancellation, then drains what was
    /// polled, commits, leaves the group and returns.
    ///
    /// `handler` answers whether the record is done: true stores its offset; false (it was
    /// interrupted by cancellation) leaves the offset alone, so the group sees it again.
    public func run(_ handler: @escaping @Sendable (KafkaMessage) async -> Bool) async throws {
        try await run(batchSize: 1) { batch in
            var done: [Bool] = []
            for message in batch { done.append(await handler(message)) }
            return done
        }
    }

    /// Hands the records of each partition to `handler` in order, in batches of up to
    /// `batchSize` of those already polled (so a batch forms only under load and waits for
    /// nothing). `handler` answers, per record, whether it is done; offsets are stored up to
    /// the first record not done, never past it.
    public func run(batchSize: Int, _ handler: @escaping @Sendable ([KafkaMessage]) async -> [Bool]) async throws {
        try subscribe()
        let incoming = MessageQueue()
        let client = self.client
        let state = self.state
        let poller = BlockingLoopThread(name: "kafka-consumer-poll") { shouldStop in
            state.pollLoop(client.pointer, shouldStop: shouldStop, deliver: { incoming.push($0) })
            incoming.finish()
            // Records that cancellation kept from their handler have no stored offset and are
            // seen again by the group; the bound only guards against a handler that hangs.
            state.waitUntilDrained(timeout: 30)
            state.closing()
            // Commits the stored offsets (auto commit) and leaves the group.
            rd_kafka_consumer_close(client.pointer)
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await handle(incoming, batchSize: batchSize, handler)
            } onGracefulShutdown: {
                poller.requestStop()
            }
        } onCancel: {
            // Cancelled (a restart, or a shutdown past its deadline): the handlers are cancelled
            // too, and one that does not return soon is left behind, its record not committed.
            state.abandonInFlight(after: 2)
            poller.requestStop()
        }
        await poller.join()
    }

    /// Hands each polled record to the worker of its partition, until the queue finishes.
    private func handle(_ incoming: MessageQueue, batchSize: Int, _ handler: @escaping @Sendable ([KafkaMessage]) async -> [Bool]) async {
        let client = self.client
        let state = self.state
        await withDiscardingTaskGroup { group in
            var partitions: [String: MessageQueue] = [:]
            // Every polled record reaches a worker and is answered for, cancelled or not:
            // a cancelled handler reports it not done and its offset is left alone.
            while let message = await incoming.next() {
                let key = "\(message.topic)/\(message.partition)"
                if let worker = partitions[key] {
                    worker.push(message)
                    continue
                }
                let queue = MessageQueue()
                partitions[key] = queue
                queue.push(message)
                group.addTask {
                    while case let batch = await queue.nextBatch(max: batchSize), !batch.isEmpty {
                        let done = await handler(batch)
                        var inOrder = true
                        for (index, message) in batch.enumerated() {
                            inOrder = inOrder && index < done.count && done[index]
                            state.finished(message, storeOffset: inOrder, client: client.pointer)
                        }
                    }
                }
            }
            for worker in partitions.values { worker.finish() }
        }
    }

    /// Records not yet handled, per topic, over the partitions this member is assigned: each
    /// partition's high watermark minus its stored offset (or the committed one, before this
    /// member stored any). From librdkafka's statistics, so up to `statistics.interval.ms`
    /// old; nil before the first statistics arrived.
    public func lag() -> [String: Int64]? {
        state.lag
    }

    private func subscribe() throws {
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        }
        let result = rd_kafka_subscribe(client.pointer, list)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }
}

/// What the poll thread, the rebalance callback and the handlers share, behind one lock.
private final class ConsumerState: @unchecked Sendable {
    private let condition = NSCondition()
    private var inFlight = 0
    private var lagByTopic: [String: Int64]?
    /// Set once the run drained what it could: a revoke while closing does not wait again.
    private var isClosing = false
    /// Set on cancellation: when drains give up on handlers that have not returned.
    private var abandonAt: Date?
    private let maxInFlight: Int
    private let logger: Logger

    init(maxInFlight: Int, logger: Logger) {
        self.maxInFlight = maxInFlight
        self.logger = logger
    }

    /// Polls until asked to stop, never holding more than `maxInFlight` unhandled records.
    func pollLoop(_ rk: OpaquePointer, shouldStop: () -> Bool, deliver: (KafkaMessage) -> Void) {
        while !shouldStop() {
            guard waitForCapacity() else { continue }
            guard let raw = rd_kafka_consumer_poll(rk, 100) else { continue }
            defer { rd_kafka_message_destroy(raw) }
            let error = raw.pointee.err
            if error == RD_KAFKA_RESP_ERR_NO_ERROR {
                condition.withLock { inFlight += 1 }
                deliver(KafkaMessage(copying: raw))
            } else if error != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                logger.warning("Kafka consumer error", metadata: ["error": "\(KafkaError(error))"])
            }
        }
    }

    /// Waits (up to 100 ms) for a free slot; false when there is still none.
    private func waitForCapacity() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if inFlight >= maxInFlight {
            _ = condition.wait(until: Date().addingTimeInterval(0.1))
        }
        return inFlight < maxInFlight
    }

    /// Called after the handler returned: stores offset + 1 when the record is done, then
    /// frees the slot.
    func finished(_ message: KafkaMessage, storeOffset: Bool, client: OpaquePointer) {
        defer {
            condition.withLock {
                inFlight -= 1
                condition.broadcast()
            }
        }
        guard storeOffset else { return }
        let list = rd_kafka_topic_partition_list_new(1)
        if let entry = rd_kafka_topic_partition_list_add(list, message.topic, message.partition) {
            entry.pointee.offset = message.offset + 1
        }
        let result = rd_kafka_offsets_store(client, list)
        rd_kafka_topic_partition_list_destroy(list)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            // The partition was revoked meanwhile; its next owner sees the record again and
            // the handler's idempotence makes that harmless.
            logger.debug("Kafka offset not stored", metadata: ["kafka.topic": "\(message.topic)", "error": "\(KafkaError(result))"])
        }
    }

    /// Drains wait no later than `seconds` from now.
    func abandonInFlight(after seconds: TimeInterval) {
        condition.withLock {
            abandonAt = Date().addingTimeInterval(seconds)
            condition.broadcast()
        }
    }

    func closing() {
        condition.withLock { isClosing = true }
    }

    var lag: [String: Int64]? {
        condition.withLock { lagByTopic }
    }

    /// Reads the lag per topic out of a statistics report (runs on the poll thread).
    func recordStatistics(_ json: Data) {
        guard let report = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
            let topics = report["topics"] as? [String: Any]
        else { return }
        var lag: [String: Int64] = [:]
        for (topic, value) in topics {
            guard let partitions = (value as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            var total: Int64 = 0
            for case let partition as [String: Any] in partitions.values {
                // -1 is the "unassigned" pseudo-partition; only fetched partitions are this member's.
                guard let id = partition["partition"] as? Int, id >= 0,
                    let state = partition["fetch_state"] as? String, ["active", "offset-query", "offset-wait"].contains(state)
                else { continue }
                func number(_ key: String) -> Int64 { (partition[key] as? NSNumber)?.int64Value ?? -1 }
                let stored = number("consumer_lag_stored"), committed = number("consumer_lag")
                // A group that never committed starts at the earliest record (auto.offset.reset).
                let fromStart = number("hi_offset") >= 0 && number("lo_offset") >= 0 ? number("hi_offset") - number("lo_offset") : 0
                total += max(0, stored >= 0 ? stored : committed >= 0 ? committed : fromStart)
            }
            lag[topic] = total
        }
        condition.withLock { lagByTopic = lag }
    }

    /// Blocks the poll thread until every delivered record was handled, or `timeout` seconds.
    func waitUntilDrained(timeout: TimeInterval) {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        while inFlight > 0 && condition.wait(until: min(deadline, abandonAt ?? deadline)) {}
        let left = inFlight
        condition.unlock()
        if left > 0 {
            logger.warning("Kafka records still in flight; going on without them", metadata: ["kafka.in_flight": "\(left)"])
        }
    }

    /// Runs on the poll thread, inside `rd_kafka_consumer_poll` or `rd_kafka_consumer_close`.
    func rebalance(_ rk: OpaquePointer, error: rd_kafka_resp_err_t, partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            logger.info("Kafka partitions assigned", metadata: ["kafka.partitions": "\(partitions?.pointee.cnt ?? 0)"])
            rd_kafka_assign(rk, partitions)
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            // Finish what was polled from these partitions and commit it before letting go,
            // so the next owner does not redo it. The commit is asynchronous: with the
            // coordinator away (the usual cause of a revoke) a synchronous one would hold the
            // poll thread until it came back; a record committed late is only redone, and the
            // inbox makes that harmless.
            waitUntilDrained(timeout: condition.withLock { isClosing } ? 0 : 60)
            _ = rd_kafka_commit(rk, nil, 1)
            logger.info("Kafka partitions revoked", metadata: ["kafka.partitions": "\(partitions?.pointee.cnt ?? 0)"])
            rd_kafka_assign(rk, nil)
        default:
            logger.warning("Kafka rebalance failed", metadata: ["error": "\(KafkaError(error))"])
            rd_kafka_assign(rk, nil)
        }
    }
}
