import Foundation

/// One event on the wire: CloudEvents 1.0 in Kafka binary mode. The attributes travel as
/// `ce_*` headers, the value is the JSON payload, and the Kafka key is the subject
/// (the workflow id).
public struct EventEnvelope: Sendable, Equatable {
    public var id: String
    public var type: EventType
    public var source: String
    public var time: Date
    /// The workflow id; also the Kafka key.
    public var subject: String
    /// W3C trace context, carried from the cause to every event it causes.
    public var traceparent: String
    /// The JSON payload.
    public var data: [UInt8]

    public init(
        id: String = UUID().uuidString.lowercased(), type: EventType, source: String,
        time: Date = Date(), subject: String, traceparent: String = TraceParent.random(), data: [UInt8]
    ) {
        self.id = id
        self.type = type
        self.source = source
        self.time = time
        self.subject = subject
        self.traceparent = traceparent
        self.data = data
    }

    /// Wraps a typed payload. `cause` passes its trace on, so one workflow is one trace.
    public init<Payload: EventPayload>(
        _ payload: Payload, source: String, subject: String, causedBy cause: EventEnvelope? = nil,
        id: String = UUID().uuidString.lowercased(), time: Date = Date()
    ) throws {
        self.init(
            id: id, type: payload.eventType, source: source, time: time, subject: subject,
            traceparent: cause.map { TraceParent.child(of: $0.traceparent) } ?? TraceParent.random(),
            data: try WireCoding.encode(payload))
    }

    /// Decodes the payload, checking that the type is one the payload accepts.
    public func decode<Payload: EventPayload>(_: Payload.Type) throws -> Payload {
        guard Payload.acceptedTypes.contains(type) else {
            throw ContractError(.unexpectedType, "\(type) is not a \(Payload.self)")
        }
        do {
            return try WireCoding.decode(Payload.self, from: data, nestedAtMost: Payload.maximumDepth)
        } catch {
            throw ContractError(.invalidPayload, "\(type): \(ContractError.describe(error))")
        }
    }

    // MARK: - Kafka binary mode

    /// Header names of the binary content mode.
    public enum Header {
        public static let specVersion = "ce_specversion"
        public static let id = "ce_id"
        public static let type = "ce_type"
        public static let source = "ce_source"
        public static let time = "ce_time"
        public static let subject = "ce_subject"
        public static let contentType = "content-type"
        public static let traceparent = "traceparent"
        /// Set on a replayed dead letter: the dead letter's id.
        public static let replayOf = "hitl_replay_of"
    }

    /// The Kafka headers that carry this event's attributes.
    public var headers: [(String, String)] {
        [
            (Header.specVersion, "1.0"), (Header.id, id), (Header.type, type.rawValue),
            (Header.source, source), (Header.time, WireCoding.formatTime(time)),
            (Header.subject, subject), (Header.contentType, "application/json"),
            (Header.traceparent, traceparent),
        ]
    }

    /// Reads an event from Kafka headers and value. Fails with a reason when an attribute is
    /// missing or the spec version or content type is not ours.
    public init(headers: [(String, String)], value: [UInt8]) throws {
        var lookup: [String: String] = [:]
        for (name, text) in headers where lookup[name] == nil { lookup[name] = text }
        func required(_ name: String) throws -> String {
            guard let text = lookup[name], !text.isEmpty else {
                throw ContractError(.missingAttribute, "header \(name) is missing")
            }
            return text
        }
        guard try required(Header.specVersion) == "1.0" else {
            throw ContractError(.unsupportedVersion, "ce_specversion \(lookup[Header.specVersion] ?? "") is not 1.0")
        }
        if let contentType = lookup[Header.contentType], !contentType.hasPrefix("application/json") {
            throw ContractError(.invalidPayload, "content-type \(contentType) is not application/json")
        }
        let timeText = try required(Header.time)
        guard let time = WireCoding.parseTime(timeText) else {
            throw ContractError(.missingAttribute, "ce_time \(timeText) is not an RFC 3339 time")
        }
        self.init(
            id: try required(Header.id), type: EventType(rawValue: try required(Header.type)),
            source: try required(Header.source), time: time, subject: try required(Header.subject),
            traceparent: lookup[Header.traceparent] ?? TraceParent.random(), data: value)
    }
}

/// A payload type of the wire contract.
public protocol EventPayload: Codable, Sendable, Equatable {
    /// The type this value is published as.
    var eventType: EventType { get }
    /// The types this payload decodes from.
    static var acceptedTypes: Set<EventType> { get }
    /// How deeply a record of this payload may nest: `WireCoding.inboundDepth` for what
    /// agents write, `WireCoding.maximumDepth` (the default) for the services' own events.
    static var maximumDepth: Int { get }
}

extension EventPayload {
    public static var maximumDepth: Int { WireCoding.maximumDepth }
}

/// W3C `traceparent` values.
public enum TraceParent {
    /// A new trace with a new root span.
    public static func random() -> String {
        "00-\(hex(bytes: 16))-\(hex(bytes: 8))-01"
    }

    /// A new span in the same trace as `parent` (or a new trace when `parent` is malformed).
    public static func child(of parent: String) -> String {
        let parts = parent.split(separator: "-")
        guard parts.count == 4, parts[1].count == 32 else { return random() }
        return "00-\(parts[1])-\(hex(bytes: 8))-\(parts[3])"
    }

    private static func hex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Digest.hex((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
