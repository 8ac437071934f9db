import CRdKafka
import Foundation

/// librdkafka's in-process Kafka mock cluster (`rdkafka_mock.h`), listening on loopback.
/// Other processes connect to `bootstrapServers` as to any broker. Used by the tests and
/// the local stack; the containers use Apache Kafka.
public final class KafkaMockCluster: Sendable {
    private let cluster: MockClusterPointer
    /// The brokers' `host:port` list.
    public let bootstrapServers: String
    /// Broker ids, 1 through the broker count.
    public let brokerIDs: [Int32]

    public init(brokers: Int = 1) throws {
        // The host client talks to no broker: keep it from warning that it has none.
        let conf = try KafkaConfiguration(bootstrapServers: "", properties: ["log_level": "3"]).makeConf(overriding: [:])
        let host = try RDKafkaClient(type: RD_KAFKA_PRODUCER, conf: conf)
        guard let pointer = rd_kafka_mock_cluster_new(host.pointer, Int32(brokers)) else {
            throw KafkaError(.clientCreation, "rd_kafka_mock_cluster_new failed")
        }
        cluster = MockClusterPointer(pointer, host: host)
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(pointer))
        brokerIDs = (1...Int32(brokers)).map { $0 }
    }

    /// Creates a topic (the mock cluster does not answer the admin API's CreateTopics).
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        let result = rd_kafka_mock_topic_create(cluster.pointer, name, Int32(partitions), Int32(replicationFactor))
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Takes a broker down: its connections close and new ones are refused.
    public func setBrokerDown(_ id: Int32) throws {
        let result = rd_kafka_mock_broker_set_down(cluster.pointer, id)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }

    /// Brings a broker back up.
    public func setBrokerUp(_ id: Int32) throws {
        let result = rd_kafka_mock_broker_set_up(cluster.pointer, id)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result) }
    }
}

private final class MockClusterPointer: @unchecked Sendable {
    // The mock cluster is thread-safe; it lives until `deinit`.
    let pointer: OpaquePointer
    /// The client the cluster runs in; released only after the cluster is destroyed.
    private let host: RDKafkaClient
    init(_ pointer: OpaquePointer, host: RDKafkaClient) {
        self.pointer = pointer
        self.host = host
    }
    deinit {
        // Off the caller's thread (it joins the mock's threads), and before the host client
        // goes, which the closure holds until then.
        let handle = UnsafeHandle(pointer)
        let host = self.host
        Thread.detachNewThread {
            rd_kafka_mock_cluster_destroy(handle.pointer)
            _ = host
        }
    }
}
