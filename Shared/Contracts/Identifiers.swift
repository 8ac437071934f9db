import Foundation

/// The id of a workflow or an approval: a UUID with its kind in the type, so the one cannot
/// be passed for the other, written lowercase wherever it travels (events, URLs, answers,
/// logs) so that each has exactly one spelling. Payloads carry ids as strings (the wire
/// contract); services parse them here, once, at the edge.
public struct Identifier<Kind: IdentifierKind>: Hashable, Sendable, Codable, CustomStringConvertible {
    public let uuid: UUID

    /// A new, random id.
    public init() {
        uuid = UUID()
    }

    public init(_ uuid: UUID) {
        self.uuid = uuid
    }

    /// The id `text` spells (in any case), or nil when it is not a UUID.
    public init?(_ text: String) {
        guard let uuid = UUID(uuidString: text) else { return nil }
        self.uuid = uuid
    }

    /// The id as it is written: lowercase.
    public var description: String { uuid.uuidString.lowercased() }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = Self(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(text) is not a \(Kind.noun) id (a UUID)")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// What an `Identifier` names.
public protocol IdentifierKind: Sendable {
    /// As messages name it: "workflow", "approval".
    static var noun: String { get }
}

public enum WorkflowKind: IdentifierKind {
    public static let noun = "workflow"
}

public enum ApprovalKind: IdentifierKind {
    public static let noun = "approval"
}

public typealias WorkflowID = Identifier<WorkflowKind>
public typealias ApprovalID = Identifier<ApprovalKind>
