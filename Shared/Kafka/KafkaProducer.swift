import CRdKafka
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// An idempotent Kafka producer whose `send` returns when the broker acknowledged the
/// record (its delivery report), or throws the delivery error.
///
/// Delivery reports are served by a dedicated poll thread, so no librdkafka call blocks
/// Swift's cooperative pool. As a `Service`, `run()` lasts until graceful shutdown and then
/// flushes what is still queued.
public final class KafkaProducer: Service, Sendable {
    private let client: RDKafkaClient
    private let poller: BlockingLoopThread
    private let logger: Logger

    /// Settings the delivery guarantee depends on; they override the configuration.
    static let fixedProperties: [String: String] = [
        "enable.idempotence": "true",
        "acks": "all",
    ]

    public init(configuration: KafkaConfiguration, logger: Logger) throws {
        var configuration = configuration
        // Low latency by default: a workflow resumes as soon as its event is out.
        if configuration.properties["linger.ms"] == nil { configuration.properties["linger.ms"] = "2" }
        let conf = try configuration.makeConf(overriding: Self.fixedProperties)
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
            guard let message, let opaque = message.pointee._private else { return }
            let report = Unmanaged<DeliveryReport>.fromOpaque(opaque).takeRetainedValue()
            let error = message.pointee.err
            report.complete(error == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(error))
        }
        let client = try RDKafkaClient(type: RD_KAFKA_PRODUCER, conf: conf)
        self.client = client
        self.logger = logger
        self.poller = BlockingLoopThread(name: "kafka-producer-poll") { shouldStop in
            while !shouldStop() {
                rd_kafka_poll(client.pointer, 50)
            }
        }
    }

    /// Sends one record and waits for its delivery report.
    public func send(topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader]) async throws {
        if let error = await send([KafkaRecord(topic: topic, key: key, value: value, headers: headers)])[0] {
            throw error
        }
    }

    /// Enqueues `records` in order (so records of one partition keep their order) and
    /// waits for every delivery report; returns each record's error, nil when delivered.
    public func send(_ records: [KafkaRecord]) async -> [KafkaError?] {
        guard !records.isEmpty else { return [] }
        let batch = BatchReports(count: records.count)
        for (index, record) in records.enumerated() {
            await enqueue(record, report: DeliveryReport { batch.complete(index, $0) })
        }
        return await batch.results()
    }

    private func enqueue(_ record: KafkaRecord, report: DeliveryReport) async {
        while true {
            let cHeaders = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                header.value.withUnsafeBytes { bytes in
                    _ = rd_kafka_header_add(cHeaders, header.name, -1, bytes.baseAddress, bytes.count)
                }
            }
            let opaque = Unmanaged.passRetained(report).toOpaque()
            let result = record.value.withUnsafeBytes { valueBytes in
                withOptionalBytes(record.key) { keyBytes in
                    hitl_produce(
                        client.pointer, record.topic, keyBytes.baseAddress, keyBytes.count,
                        valueBytes.baseAddress, valueBytes.count, cHeaders, opaque)
                }
            }
            if result == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            // Not enqueued: librdkafka took neither the headers nor our reference.
            rd_kafka_headers_destroy(cHeaders)
            Unmanaged<DeliveryReport>.fromOpaque(opaque).release()
            guard result == RD_KAFKA_RESP_ERR__QUEUE_FULL, !Task.isCancelled else {
                report.complete(KafkaError(result))
                return
            }
            // The local queue is full (broker away): wait for it to drain, as backpressure,
            // without holding a thread of the cooperative pool.
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits up to `timeout` for every queued record to be delivered.
    public func flush(timeout: Duration = .seconds(10)) async {
        let milliseconds = Int32(timeout.components.seconds * 1000)
        let client = self.client
        let result = await offPool { rd_kafka_flush(client.pointer, milliseconds) }
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("Kafka producer flush did not finish", metadata: ["error": "\(KafkaError(result))"])
        }
    }

    /// Lasts until graceful shutdown, then flushes and stops the poll thread.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Flushes and stops serving delivery reports. Later sends fail.
    public func shutdown() async {
        await flush()
        poller.requestStop()
        await poller.join()
    }
}

/// One record to produce.
public struct KafkaRecord: Sendable {
    public var topic: String
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader]) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Completes one record exactly once, from its delivery report or from an enqueue failure.
private final class DeliveryReport: Sendable {
    let complete: @Sendable (KafkaError?) -> Void

    init(_ complete: @escaping @Sendable (KafkaError?) -> Void) {
        self.complete = complete
    }
}

/// Collects the reports of one batch and resumes its caller when the last one arrived.
private final class BatchReports: Sendable {
    private struct State {
        var reports: [KafkaError?]
        var remaining: Int
        var waiter: CheckedContinuation<[KafkaError?], Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(reports: Array(repeating: nil, count: count), remaining: count))
    }

    func complete(_ index: Int, _ error: KafkaError?) {
        let done = state.withLock { state -> (CheckedContinuation<[KafkaError?], Never>, [KafkaError?])? in
            state.reports[index] = error
            state.remaining -= 1
            guard state.remaining == 0, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return (waiter, state.reports)
        }
        if let (waiter, reports) = done { waiter.resume(returning: reports) }
    }

    /// Every record's report, once all arrived.
    func results() async -> [KafkaError?] {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [KafkaError?]? in
                if state.remaining == 0 { return state.reports }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    return bytes.withUnsafeBytes(body)
}

extension KafkaProducer {
    /// Whether a broker answers a metadata request within `timeout` (for readiness checks).
    public func isBrokerReachable(timeout: Duration = .seconds(1)) async -> Bool {
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let client = self.client
        return await offPool {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let result = rd_kafka_metadata(client.pointer, 0, nil, &metadata, milliseconds)
            if let metadata { rd_kafka_metadata_destroy(metadata) }
            return result == RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }
}
