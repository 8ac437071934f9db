import CRdKafka

/// An error from librdkafka or from this wrapper's use of it.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// A configuration property was rejected; the reason names it.
        case configuration
        /// A client handle could not be created.
        case clientCreation
        /// librdkafka answered with this error code (`rd_kafka_resp_err_t`).
        case broker(Int32)
        /// The client was already shut down.
        case closed
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    init(_ error: rd_kafka_resp_err_t, file: String = #fileID, line: Int = #line) {
        self.init(.broker(error.rawValue), String(cString: rd_kafka_err2str(error)), file: file, line: line)
    }

    public var description: String { "kafka: \(reason)" }

    /// Whether the record itself is at fault (too large, malformed), so that sending it
    /// again can never succeed; a broker away or a full queue is not.
    public var isRecordRefused: Bool {
        guard case .broker(let raw) = code else { return false }
        return [
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
            RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR__BAD_MSG,
        ].map(\.rawValue).contains(raw)
    }
}
