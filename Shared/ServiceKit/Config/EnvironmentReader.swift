import Foundation

/// Reads typed settings from an environment dictionary handed in by `@main`.
/// Shared modules never look at the process environment themselves.
public struct EnvironmentReader: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String]) {
        self.values = values
    }

    /// A non-empty string, or `defaultValue`; throws naming the variable when neither.
    public func string(_ name: String, default defaultValue: String? = nil) throws -> String {
        if let text = values[name], !text.isEmpty { return text }
        if let defaultValue { return defaultValue }
        throw ConfigurationError(variable: name, reason: "is required")
    }

    /// An optional string: nil when unset or empty.
    public func optionalString(_ name: String) -> String? {
        guard let text = values[name], !text.isEmpty else { return nil }
        return text
    }

    /// An integer within `range`.
    public func int(_ name: String, default defaultValue: Int, in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let text = optionalString(name) else { return defaultValue }
        guard let value = Int(text) else {
            throw ConfigurationError(variable: name, reason: "must be an integer")
        }
        guard range.contains(value) else {
            throw ConfigurationError(variable: name, reason: "must be in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// A URL with a scheme and a host.
    public func url(_ name: String, default defaultValue: String? = nil) throws -> URL {
        let text = try string(name, default: defaultValue)
        guard let url = URL(string: text), url.scheme != nil, url.host != nil else {
            throw ConfigurationError(variable: name, reason: "must be a URL with a scheme and host")
        }
        return url
    }
}

/// A setting is missing or malformed. The message names the variable; it never
/// contains the value of a secret.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let variable: String
    public let reason: String

    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }

    public var description: String { "configuration: \(variable) \(reason)" }
}
