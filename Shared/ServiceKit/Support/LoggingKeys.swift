import Logging

/// The metadata keys of the services' log lines, in one place, so that a search for one
/// workflow (`workflow.id`) or one event finds every line about it, whichever service wrote
/// it. Every line logged while an event is handled carries the event's workflow.
public enum LoggingKeys {
    /// The workflow a line is about (an event's subject).
    public static let workflowID = "workflow.id"
    public static let approvalID = "approval.id"
    public static let eventID = "event.id"
    public static let eventType = "event.type"
    public static let kafkaTopic = "kafka.topic"
    public static let kafkaOffset = "kafka.offset"
    public static let outboxID = "outbox.id"
    public static let deadLetterID = "dead_letter.id"
    /// The error, described.
    public static let error = "error"
}

extension Logger {
    /// This logger with the lines it writes tagged with `workflowID`.
    public func about(workflow workflowID: String) -> Logger {
        var logger = self
        logger[metadataKey: LoggingKeys.workflowID] = "\(workflowID)"
        return logger
    }
}
