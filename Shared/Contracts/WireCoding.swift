import Foundation

/// The one JSON dialect on the wire: snake_case keys, sorted for byte-stable output,
/// and RFC 3339 times with milliseconds. Every service and test encodes through here.
public enum WireCoding {
    /// A fresh Foundation encoder for wire payloads, the reference `encode` is held to
    /// (encoders are cheap and not `Sendable`).
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatTime(date))
        }
        return encoder
    }

    /// A fresh Foundation decoder for wire payloads, which `decode` falls back to.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTime(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "expected an RFC 3339 time, got \(text)")
            }
            return date
        }
        return decoder
    }

    /// Encodes a value as wire JSON bytes: what `encoder()` writes, through `WireEncoder`.
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        try WireEncoder.encode(value)
    }

    /// Decodes wire JSON bytes: what `decoder()` reads, through `WireDecoder`, refusing a
    /// document nested deeper than `limit` (`TooDeep`).
    public static func decode<T: Decodable>(
        _ type: T.Type, from bytes: some Collection<UInt8>, nestedAtMost limit: Int = maximumDepth
    ) throws -> T {
        try WireDecoder.decode(type, from: bytes, nestedAtMost: limit)
    }

    /// How deeply any wire JSON may nest arrays and objects inside one another. Deeper
    /// documents are refused unread: Foundation's decoder spends seconds on free-form values
    /// nested a few hundred levels deep.
    public static let maximumDepth = 100

    /// How deeply what agents and outside systems send may nest: request bodies, workflow
    /// requests and task results on Kafka, task answers over HTTP. Less than `maximumDepth`,
    /// so that their values, carried further inside events and stored state, stay readable.
    public static let inboundDepth = 64

    /// Whether `bytes` open more than `limit` arrays and objects inside one another (strings
    /// skipped; one pass, malformed input not judged).
    static func nests(_ bytes: some Collection<UInt8>, deeperThan limit: Int) -> Bool {
        if let deep = bytes.withContiguousStorageIfAvailable({ WireDecoder.nests($0, deeperThan: limit) }) { return deep }
        return Array(bytes).withUnsafeBufferPointer { WireDecoder.nests($0, deeperThan: limit) }
    }

    /// Throws `NotUTF8` for a document in UTF-16 or UTF-32 (which Foundation's decoder would
    /// read after converting it, past a depth count made on UTF-8), `TooDeep` for one nested
    /// deeper than `limit`: what every reader checks before Foundation's decoder sees a byte.
    public static func checkReadable(_ bytes: some Collection<UInt8>, nestedAtMost limit: Int) throws {
        // Foundation takes a document for UTF-16 or UTF-32 by its byte-order mark or by a NUL
        // among its first four bytes; UTF-8 JSON has neither (RFC 8259 §8.1).
        let head = Array(bytes.prefix(4))
        guard head.first.map({ $0 != 0xFE && $0 != 0xFF }) ?? true, !head.contains(0) else { throw NotUTF8() }
        guard !nests(bytes, deeperThan: limit) else { throw TooDeep(limit: limit) }
    }

    /// A document that is not UTF-8.
    public struct NotUTF8: Error, CustomStringConvertible, Sendable {
        public init() {}
        public var description: String { "the JSON is not UTF-8 (RFC 8259 asks for UTF-8 between systems)" }
    }

    /// A document nested deeper than the reader accepts.
    public struct TooDeep: Error, CustomStringConvertible, Sendable {
        public let limit: Int
        public init(limit: Int) { self.limit = limit }
        public var description: String { "the JSON nests arrays and objects more than \(limit) levels deep" }
    }

    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// Formats a time as RFC 3339 UTC with milliseconds, e.g. `2026-11-22T04:05:06.789Z`.
    public static func formatTime(_ date: Date) -> String {
        withFraction.format(date)
    }

    /// Parses an RFC 3339 time with or without fractional seconds.
    public static func parseTime(_ text: String) -> Date? {
        (try? withFraction.parse(text)) ?? (try? withoutFraction.parse(text))
    }
}
