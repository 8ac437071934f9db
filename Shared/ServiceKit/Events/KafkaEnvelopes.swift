import Contracts
import Kafka

extension EventEnvelope {
    /// The event a Kafka record carries (CloudEvents binary mode).
    public init(_ message: KafkaMessage) throws {
        try self.init(headers: message.headers.map { ($0.name, $0.text) }, value: message.value)
    }
}

extension KafkaRecord {
    /// A record carrying `envelope` on `topic`, keyed by the envelope's subject.
    public init(_ envelope: EventEnvelope, topic: Topic) {
        self.init(
            topic: topic.rawValue, key: Array(envelope.subject.utf8), value: envelope.data,
            headers: envelope.headers.map { KafkaHeader(name: $0.0, text: $0.1) })
    }
}

extension KafkaProducer {
    /// Sends one event on `topic` and waits for its delivery report.
    public func send(_ envelope: EventEnvelope, to topic: Topic) async throws {
        if let error = await send([KafkaRecord(envelope, topic: topic)])[0] { throw error }
    }
}
