/// Why a message does not fit the wire contract. These errors are never retried: the
/// message goes straight to the dead-letter topic with this reason.
public struct ContractError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case missingAttribute = "missing_attribute"
        case unsupportedVersion = "unsupported_version"
        case unexpectedType = "unexpected_type"
        case invalidPayload = "invalid_payload"
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { "\(code.rawValue): \(reason)" }

    /// A one-line reason for a decoding failure, naming the field at fault.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "the body" : keys.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            let name = key.stringValue.snakeCased
            return parent == "the body" ? "missing field \(name)" : "missing field \(name) in \(parent)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(path(context)): \(context.debugDescription)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "malformed JSON" : "invalid value at \(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

extension String {
    /// `idempotencyKey` → `idempotency_key`, to name fields as they appear on the wire.
    var snakeCased: String {
        var result = ""
        for character in self {
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}
