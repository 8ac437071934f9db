import CRdKafka

/// librdkafka properties for one client. Only the bootstrap servers are required; the
/// producer and consumer add the settings their guarantees depend on and refuse overrides
/// of those (see `KafkaProducer` and `KafkaConsumer`).
public struct KafkaConfiguration: Sendable {
    public var bootstrapServers: String
    /// Any other librdkafka property (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md).
    public var properties: [String: String]

    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    /// Builds an `rd_kafka_conf_t`; the caller owns it until `rd_kafka_new` takes it.
    func makeConf(overriding fixed: [String: String]) throws -> OpaquePointer {
        var all = properties
        all["bootstrap.servers"] = bootstrapServers
        for (name, value) in fixed { all[name] = value }
        // Connection-close chatter from the mock cluster and idle brokers is not an error.
        if all["log.connection.close"] == nil { all["log.connection.close"] = "false" }
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(.configuration, "rd_kafka_conf_new failed")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in all.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, name, value, &errorText, errorText.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                // librdkafka's reason may quote the value; a secret's is not repeated.
                let reason = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let secret = name.contains("password") || name.contains("secret") || name.contains("key")
                throw KafkaError(.configuration, secret ? "property \(name) was refused" : "property \(name): \(reason)")
            }
        }
        return conf
    }
}
