import Foundation

/// A message that a service gave up on (`hitl.dead-letter`), with everything needed to
/// understand and replay it.
public struct DeadLettered: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.deadLettered]
    public var eventType: EventType { .deadLettered }

    public var deadLetterId: String
    /// The service whose consumer gave up.
    public var service: String
    public var originalTopic: String
    public var partition: Int
    public var offset: Int64
    public var key: String?
    /// The original headers, in order (a name may repeat).
    public var headers: [[String]]
    /// The original value, base64 so that any bytes survive.
    public var valueBase64: String
    /// The original event's id and type when its envelope could be read.
    public var eventId: String?
    public var originalEventType: String?
    public var error: String
    public var attempts: Int
    public var firstAttemptAt: Date
    public var deadLetteredAt: Date

    public init(
        deadLetterId: String, service: String, originalTopic: String, partition: Int, offset: Int64, key: String?, headers: [[String]], valueBase64: String,
        eventId: String?, originalEventType: String?, error: String, attempts: Int, firstAttemptAt: Date, deadLetteredAt: Date
    ) {
        self.deadLetterId = deadLetterId
        self.service = service
        self.originalTopic = originalTopic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.headers = headers
        self.valueBase64 = valueBase64
        self.eventId = eventId
        self.originalEventType = originalEventType
        self.error = error
        self.attempts = attempts
        self.firstAttemptAt = firstAttemptAt
        self.deadLetteredAt = deadLetteredAt
    }
}

extension DeadLettered {
    /// A dead letter that holds a request for ops rather than a failed message: replaying
    /// it publishes `request` to `topic` (e.g. a resume request, a delivery retry), so ops
    /// use the one dead-letter tool for everything a service gave up on.
    public static func replayable(
        _ request: EventEnvelope, to topic: Topic, service: String, error: String, attempts: Int, firstAttemptAt: Date, now: Date = Date()
    ) -> DeadLettered {
        DeadLettered(
            deadLetterId: UUID().uuidString.lowercased(), service: service, originalTopic: topic.rawValue, partition: -1, offset: -1,
            key: request.subject, headers: request.headers.map { [$0.0, $0.1] }, valueBase64: Data(request.data).base64EncodedString(),
            eventId: request.id, originalEventType: request.type.rawValue, error: error, attempts: attempts, firstAttemptAt: firstAttemptAt,
            deadLetteredAt: now)
    }
}
