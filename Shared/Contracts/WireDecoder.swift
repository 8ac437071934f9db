import Foundation

/// Reads wire JSON the common way fast, and leaves everything else to Foundation: plain
/// RFC 8259 JSON whose objects have simple snake_case keys (`approval_id`) is parsed and
/// decoded here, about twice as fast as Foundation's `JSONDecoder`; anything else (other
/// keys, a duplicate key, a lone surrogate, numbers near the edges, `Data`, `URL`,
/// `Decimal`, any error at all) makes `decode` hand the bytes to `WireCoding.decoder()`,
/// which then decides, with its own errors. So a value read here is the value Foundation
/// would read, and a refusal is Foundation's refusal. `WireDecoderTests` hold it to
/// Foundation.
///
/// The one refusal of its own: a document nested deeper than the limit the caller gives
/// (`WireCoding.maximumDepth` unless it says less) is refused before anything reads it
/// (`WireCoding.TooDeep`). Foundation's decoder takes seconds of CPU for free-form values
/// nested a few hundred levels deep (`JSONValue` tries each type at every level), and
/// such a document is no workflow's business.
enum WireDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>, nestedAtMost limit: Int) throws -> T {
        if let fast = fastValue(type, from: bytes, nestedAtMost: limit) { return fast }
        try WireCoding.checkReadable(bytes, nestedAtMost: limit)
        return try WireCoding.decoder().decode(type, from: Data(bytes))
    }

    /// What the fast path reads, or nil when it leaves the bytes to Foundation (or to the
    /// depth check).
    static func fastValue<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>, nestedAtMost limit: Int = WireCoding.maximumDepth) -> T? {
        let read = { (buffer: UnsafeBufferPointer<UInt8>) -> T? in
            var parser = Parser(bytes: buffer, maximumDepth: limit)
            guard let node = parser.document() else { return nil }
            return try? value(T.self, from: node, at: [])
        }
        if let fast = bytes.withContiguousStorageIfAvailable(read) { return fast }
        return Array(bytes).withUnsafeBufferPointer(read)
    }

    /// Whether `bytes` open more than `limit` arrays and objects inside one another, strings
    /// skipped. One pass, no tree; malformed input is not judged here. Counts UTF-8 only
    /// (`WireCoding.checkReadable` refuses the rest first).
    static func nests(_ bytes: UnsafeBufferPointer<UInt8>, deeperThan limit: Int) -> Bool {
        var depth = 0
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                // Past the string, escapes and all.
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > limit { return true }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            default:
                break
            }
            index += 1
        }
        return false
    }

    // MARK: - The tree

    fileprivate enum Node {
        case null
        case bool(Bool)
        /// A number's literal, checked against JSON's grammar.
        case number(Substring)
        case string(String)
        case array([Node])
        case object([(key: String, value: Node)])
    }

    /// Reads one JSON document; nil for anything but plain JSON (see `WireDecoder`).
    fileprivate struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        /// The caller's limit: the fast path recurses once per level, and never further.
        let maximumDepth: Int
        var index = 0
        var depth = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
            self.bytes = bytes
            self.maximumDepth = maximumDepth
        }

        mutating func document() -> Node? {
            skipSpace()
            guard let node = value() else { return nil }
            skipSpace()
            return index == bytes.count ? node : nil
        }

        private mutating func skipSpace() {
            while index < bytes.count {
                let byte = bytes[index]
                guard byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D else { return }
                index += 1
            }
        }

        private mutating func value() -> Node? {
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"): return object()
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "\""): return string().map(Node.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        private mutating func literal(_ text: StaticString, _ node: Node) -> Node? {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count else { return nil }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return nil }
            index += count
            return node
        }

        private mutating func nested() -> Bool {
            depth += 1
            index += 1
            return depth <= maximumDepth
        }

        /// Past `close` when it comes next (after space): the container ends, one level up.
        private mutating func closes(with close: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == close else { return false }
            index += 1
            depth -= 1
            return true
        }

        /// After a member or an item: true past a `,` (another follows), false past `close`
        /// (the container ended), nil for anything else.
        private mutating func another(before close: UInt8) -> Bool? {
            skipSpace()
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                return true
            }
            return closes(with: close) ? false : nil
        }

        private mutating func object() -> Node? {
            guard nested() else { return nil }
            var members: [(key: String, value: Node)] = []
            if closes(with: UInt8(ascii: "}")) { return .object(members) }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let key = string() else { return nil }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                skipSpace()
                guard let member = value() else { return nil }
                members.append((key, member))
                guard let more = another(before: UInt8(ascii: "}")) else { return nil }
                if more { continue }
                // A key twice: Foundation's choice of one, not ours.
                // (Swift's string equality also takes "é" and "e\u{301}" for one key: that
                // too is left to Foundation.)
                if members.count > 1, Set(members.map(\.key)).count != members.count { return nil }
                return .object(members)
            }
        }

        private mutating func array() -> Node? {
            guard nested() else { return nil }
            var items: [Node] = []
            if closes(with: UInt8(ascii: "]")) { return .array(items) }
            while true {
                skipSpace()
                guard let item = value() else { return nil }
                items.append(item)
                guard let more = another(before: UInt8(ascii: "]")) else { return nil }
                if !more { return .array(items) }
            }
        }

        /// A string with the escapes JSON has; nil for a control character, a lone surrogate
        /// (left to Foundation, with its rules) or bytes that are not UTF-8.
        private mutating func string() -> String? {
            index += 1
            let start = index
            var plain = true
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") { break }
                if byte < 0x20 { return nil }
                if byte == UInt8(ascii: "\\") {
                    plain = false
                    index += 2
                    continue
                }
                index += 1
            }
            guard index < bytes.count else { return nil }
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
            index += 1
            guard plain else { return unescaped(raw) }
            return String(validating: raw, as: UTF8.self)
        }

        private func unescaped(_ raw: UnsafeBufferPointer<UInt8>) -> String? {
            var out: [UInt8] = []
            out.reserveCapacity(raw.count)
            var position = 0
            while position < raw.count {
                let byte = raw[position]
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    position += 1
                    continue
                }
                guard position + 1 < raw.count else { return nil }
                switch raw[position + 1] {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    // A code point, or a surrogate pair; a lone surrogate is Foundation's to refuse.
                    guard let unit = hex(raw, at: position + 2) else { return nil }
                    position += 6
                    var scalar = Unicode.Scalar(unit)
                    if (0xD800...0xDBFF).contains(unit) {
                        guard position + 1 < raw.count, raw[position] == UInt8(ascii: "\\"), raw[position + 1] == UInt8(ascii: "u"),
                            let low = hex(raw, at: position + 2), (0xDC00...0xDFFF).contains(low)
                        else { return nil }
                        position += 6
                        scalar = Unicode.Scalar(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00))
                    }
                    guard let scalar else { return nil }
                    out.append(contentsOf: String(scalar).utf8)
                    continue
                default: return nil
                }
                position += 2
            }
            return String(validating: out, as: UTF8.self)
        }

        /// The four hex digits at `start`, or nil.
        private func hex(_ raw: UnsafeBufferPointer<UInt8>, at start: Int) -> UInt16? {
            guard start + 4 <= raw.count else { return nil }
            var value: UInt16 = 0
            for byte in raw[start..<start + 4] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt16(digit)
            }
            return value
        }

        /// A number as JSON writes it: `-`, no leading zero, optional fraction and exponent.
        private mutating func number() -> Node? {
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { return nil }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
                if index < bytes.count, isDigit(bytes[index]) { return nil }
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { return nil }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { return nil }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            return .number(Substring(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }

        private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    }

    // MARK: - Values

    fileprivate static func mismatch<T>(_ type: T.Type, at path: [any CodingKey]) -> DecodingError {
        DecodingError.typeMismatch(type, .init(codingPath: path, debugDescription: "not read by the fast path"))
    }

    /// `node` as a `T`: the types Foundation reads in a form of its own first, then whatever
    /// `init(from:)` reads.
    fileprivate static func value<T: Decodable>(_ type: T.Type, from node: Node, at path: [any CodingKey]) throws -> T {
        if T.self == String.self {
            guard case .string(let text) = node else { throw mismatch(type, at: path) }
            return text as! T
        }
        if T.self == Date.self {
            guard case .string(let text) = node, let date = WireCoding.parseTime(text) else { throw mismatch(type, at: path) }
            return date as! T
        }
        if T.self == Data.self || T.self == URL.self || T.self == Decimal.self { throw mismatch(type, at: path) }
        if let dictionary = T.self as? any StringKeyedDecodable.Type { return try dictionary.init(wire: node, at: path) as! T }
        return try T(from: NodeDecoder(node: node, codingPath: path))
    }

    /// A snake_case key as Foundation converts it (`approval_id` → `approvalId`), or nil
    /// when the key is not simple: words of lowercase letters, maybe ending in digits,
    /// joined by single underscores (where capitalising a word cannot mean anything else).
    fileprivate static func camelCased(_ key: String) -> String? {
        var result: [UInt8] = []
        result.reserveCapacity(key.utf8.count)
        var upperNext = false
        var atWordStart = true
        var inDigits = false
        for byte in key.utf8 {
            if byte == UInt8(ascii: "_") {
                guard !atWordStart else { return nil }
                upperNext = true
                atWordStart = true
                inDigits = false
                continue
            }
            let isLetter = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
            let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            guard (isLetter && !inDigits) || (isDigit && !atWordStart) else { return nil }
            inDigits = isDigit
            result.append(upperNext ? byte - 32 : byte)
            upperNext = false
            atWordStart = false
        }
        return atWordStart ? nil : String(decoding: result, as: UTF8.self)
    }
}

// MARK: - Dictionaries

/// Dictionaries with string keys read their keys as they are (Foundation converts only
/// types' own keys).
private protocol StringKeyedDecodable {
    init(wire node: WireDecoder.Node, at path: [any CodingKey]) throws
}

extension Dictionary: StringKeyedDecodable where Key == String, Value: Decodable {
    fileprivate init(wire node: WireDecoder.Node, at path: [any CodingKey]) throws {
        guard case .object(let members) = node else { throw WireDecoder.mismatch(Self.self, at: path) }
        self.init(minimumCapacity: members.count)
        for (key, member) in members {
            self[key] = try WireDecoder.value(Value.self, from: member, at: path + [WireKey(key)])
        }
    }
}

// MARK: - The Decoder

private struct NodeDecoder: Decoder {
    let node: WireDecoder.Node
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = node else { throw WireDecoder.mismatch([String: Any].self, at: codingPath) }
        var byName: [String: WireDecoder.Node] = [:]
        byName.reserveCapacity(members.count)
        for (key, value) in members {
            guard let name = WireDecoder.camelCased(key) else { throw WireDecoder.mismatch([String: Any].self, at: codingPath) }
            byName[name] = value
        }
        return KeyedDecodingContainer(KeyedNodeContainer<Key>(members: byName, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = node else { throw WireDecoder.mismatch([Any].self, at: codingPath) }
        return UnkeyedNodeContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleNodeContainer(node: node, codingPath: codingPath) }
}

/// Reads one value of a node, as every container does.
private protocol NodeReading {
    var codingPath: [any CodingKey] { get }
}

extension NodeReading {
    func bool(_ node: WireDecoder.Node, at path: @autoclosure () -> [any CodingKey]) throws -> Bool {
        guard case .bool(let value) = node else { throw WireDecoder.mismatch(Bool.self, at: path()) }
        return value
    }

    func string(_ node: WireDecoder.Node, at path: @autoclosure () -> [any CodingKey]) throws -> String {
        guard case .string(let value) = node else { throw WireDecoder.mismatch(String.self, at: path()) }
        return value
    }

    /// An integer from a literal of digits only; anything else (a fraction, an exponent, `-0`,
    /// out of range) is Foundation's to judge.
    func integer<I: FixedWidthInteger>(_ node: WireDecoder.Node, at path: @autoclosure () -> [any CodingKey]) throws -> I {
        guard case .number(let literal) = node, !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), literal != "-0",
            let value = I(literal)
        else { throw WireDecoder.mismatch(I.self, at: path()) }
        return value
    }

    /// A double from a literal of at most 17 significant digits and a modest exponent, where
    /// Swift's and Foundation's parsing agree; others are Foundation's. Zero only from a
    /// literal of zeros: Swift rounds `1e-400` to 0, where Foundation refuses it.
    func double(_ node: WireDecoder.Node, at path: @autoclosure () -> [any CodingKey]) throws -> Double {
        guard case .number(let literal) = node, literal.count <= 24, literal.filter(\.isNumber).count <= 17, let value = Double(literal),
            value.isFinite, value == 0 ? !literal.prefix(while: { $0 != "e" && $0 != "E" }).contains(where: { ("1"..."9").contains($0) }) : abs(value) > 1e-300
        else { throw WireDecoder.mismatch(Double.self, at: path()) }
        return value
    }
}

private struct KeyedNodeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol, NodeReading {
    let members: [String: WireDecoder.Node]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> WireDecoder.Node {
        guard let node = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "not read by the fast path"))
        }
        return node
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try member(key) { return true }
        return false
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try bool(member(key), at: codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try string(member(key), at: codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try double(member(key), at: codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw WireDecoder.mismatch(type, at: codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(member(key), at: codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(member(key), at: codingPath + [key]) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try WireDecoder.value(type, from: member(key), at: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try NodeDecoder(node: member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try NodeDecoder(node: member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { throw WireDecoder.mismatch(Any.self, at: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw WireDecoder.mismatch(Any.self, at: codingPath) }
}

private struct UnkeyedNodeContainer: UnkeyedDecodingContainer, NodeReading {
    let items: [WireDecoder.Node]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [WireDecoder.Node], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }
    private var path: [any CodingKey] { codingPath + [WireKey(index: currentIndex)] }

    private mutating func next<T>(_ read: (WireDecoder.Node, @autoclosure () -> [any CodingKey]) throws -> T) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: path, debugDescription: "not read by the fast path"))
        }
        let value = try read(items[currentIndex], path)
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { throw DecodingError.valueNotFound(Any?.self, .init(codingPath: path, debugDescription: "not read by the fast path")) }
        guard case .null = items[currentIndex] else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(bool) }
    mutating func decode(_ type: String.Type) throws -> String { try next(string) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(double) }
    mutating func decode(_ type: Float.Type) throws -> Float { throw WireDecoder.mismatch(type, at: path) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(integer) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(integer) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(integer) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(integer) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(integer) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(integer) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(integer) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(integer) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(integer) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(integer) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try next { node, path in try WireDecoder.value(type, from: node, at: path()) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next { node, path in try NodeDecoder(node: node, codingPath: path()).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next { node, path in try NodeDecoder(node: node, codingPath: path()).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder { throw WireDecoder.mismatch(Any.self, at: path) }
}

private struct SingleNodeContainer: SingleValueDecodingContainer, NodeReading {
    let node: WireDecoder.Node
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool {
        if case .null = node { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool { try bool(node, at: codingPath) }
    func decode(_ type: String.Type) throws -> String { try string(node, at: codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try double(node, at: codingPath) }
    func decode(_ type: Float.Type) throws -> Float { throw WireDecoder.mismatch(type, at: codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try integer(node, at: codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(node, at: codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(node, at: codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(node, at: codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(node, at: codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(node, at: codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(node, at: codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(node, at: codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(node, at: codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(node, at: codingPath) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try WireDecoder.value(type, from: node, at: codingPath) }
}
