import Foundation
import Synchronization

/// Writes wire JSON: byte for byte what `WireCoding.encoder()` (Foundation's `JSONEncoder`
/// with snake_case keys, sorted keys, unescaped slashes and RFC 3339 times) writes, at a
/// fraction of the cost. Foundation's encoder converted every key to snake_case on every
/// encode and cast every value to find the few it treats specially; encoding was about a
/// seventh of the services' CPU. Here keys are converted once per process (by Foundation's
/// own rule, so they cannot differ) and the values Foundation treats specially are found by
/// their type. `WireEncoderTests` holds it to Foundation's output.
enum WireEncoder {
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        try write(try node(for: value, at: []), depth: 0, into: &bytes)
        return bytes
    }

    /// Foundation refuses to write arrays and objects nested this deep (and its decoder to
    /// read them): what could not be written before must not be written now.
    static let maximumDepth = 512

    // MARK: - The tree

    /// An encoded value; objects and arrays are filled in place by their containers.
    fileprivate enum Node {
        case null
        case literal(String)  // true, false, a number
        case string(String)
        case array(ArrayBox)
        case object(ObjectBox)
        /// A superclass's part: whatever its encoder holds when the tree is written.
        case deferred(NodeEncoder)
    }

    fileprivate final class ArrayBox {
        var items: [Node] = []
    }

    /// Members in the order they were encoded; sorted (and a key encoded twice kept once,
    /// its last value, as Foundation does) when written.
    fileprivate final class ObjectBox {
        var members: [(key: String, node: Node)] = []
    }

    /// `value` as a node: the types Foundation writes in a form of their own first, then
    /// whatever `encode(to:)` writes.
    fileprivate static func node<T: Encodable>(for value: T, at path: [any CodingKey]) throws -> Node {
        if T.self == String.self { return .string(value as! String) }
        if T.self == Date.self { return .string(WireCoding.formatTime(value as! Date)) }
        if T.self == Data.self { return .string((value as! Data).base64EncodedString()) }
        if T.self == URL.self { return .string((value as! URL).absoluteString) }
        if T.self == Decimal.self { return .literal((value as! Decimal).description) }
        if let dictionary = value as? any StringKeyedEncodable { return try dictionary.wireNode(at: path) }
        let encoder = NodeEncoder(codingPath: path)
        try value.encode(to: encoder)
        return encoder.result ?? .object(ObjectBox())
    }

    fileprivate static func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F, at path: [any CodingKey]) throws -> Node {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "Unable to encode \(value) directly in JSON."))
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return .literal(text)
    }

    // MARK: - Keys

    /// CodingKey name → its snake_case form, as Foundation converts it. Only types' own keys
    /// reach it (dictionary keys are not converted), so it stays small; the cap keeps a
    /// type with keys made at run time from growing it without end.
    private static let snakeCase = Mutex<[String: String]>([:])
    private static let snakeCaseCap = 4096

    static func snakeCased(_ key: String) -> String {
        if let known = snakeCase.withLock({ $0[key] }) { return known }
        let converted = foundationSnakeCase(key)
        snakeCase.withLock { cache in
            if cache.count < snakeCaseCap { cache[key] = converted }
        }
        return converted
    }

    /// Foundation's conversion of `key`, read off an object with that one key.
    private static func foundationSnakeCase(_ key: String) -> String {
        struct Key: CodingKey {
            let stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        struct One: Encodable {
            let key: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Key.self)
                try container.encodeNil(forKey: Key(stringValue: key))
            }
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let bytes = try? encoder.encode(One(key: key)),
            let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any], let converted = object.keys.first
        else { return key }
        return converted
    }

    // MARK: - Writing

    private static func write(_ node: Node, depth: Int, into bytes: inout [UInt8]) throws {
        switch node {
        case .array, .object:
            guard depth + 1 < maximumDepth else {
                throw EncodingError.invalidValue(
                    "", .init(codingPath: [], debugDescription: "Too many nested arrays or dictionaries (at most \(maximumDepth - 1))."))
            }
        default: break
        }
        switch node {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .literal(let text): bytes.append(contentsOf: text.utf8)
        case .string(let text): writeString(text, into: &bytes)
        case .array(let box):
            bytes.append(UInt8(ascii: "["))
            for (index, item) in box.items.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                try write(item, depth: depth + 1, into: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let box):
            bytes.append(UInt8(ascii: "{"))
            // Foundation sorts keys by their UTF-8 bytes, not as Swift compares strings
            // (which would put a decomposed "é" with the precomposed one).
            let order = box.members.indices.sorted { a, b in
                let byBytes = compareBytes(box.members[a].key, box.members[b].key)
                return byBytes == 0 ? a < b : byBytes < 0
            }
            var first = true
            for (position, index) in order.enumerated() {
                let member = box.members[index]
                if position + 1 < order.count, compareBytes(box.members[order[position + 1]].key, member.key) == 0 { continue }
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                writeString(member.key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                try write(member.node, depth: depth + 1, into: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        case .deferred(let encoder): try write(encoder.result ?? .object(ObjectBox()), depth: depth, into: &bytes)
        }
    }

    /// The order of two strings' UTF-8 bytes: negative, zero or positive.
    private static func compareBytes(_ left: String, _ right: String) -> Int32 {
        var (left, right) = (left, right)
        return left.withUTF8 { a in
            right.withUTF8 { b in
                let shared = min(a.count, b.count)
                let order = shared == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, shared)
                return order != 0 ? order : Int32(a.count) - Int32(b.count)
            }
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A JSON string as Foundation writes it: quote, backslash and control characters
    /// escaped (the usual short forms, else `\u00XX`), everything else as it is.
    private static func writeString(_ text: String, into bytes: inout [UInt8]) {
        var text = text
        text.withUTF8 { writeString(utf8: $0, into: &bytes) }
    }

    private static func writeString(utf8: UnsafeBufferPointer<UInt8>, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case ..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

// MARK: - Dictionaries

/// Dictionaries with string keys are objects whose keys are written as they are (Foundation
/// converts only types' own keys).
private protocol StringKeyedEncodable {
    func wireNode(at path: [any CodingKey]) throws -> WireEncoder.Node
}

extension Dictionary: StringKeyedEncodable where Key == String, Value: Encodable {
    fileprivate func wireNode(at path: [any CodingKey]) throws -> WireEncoder.Node {
        let box = WireEncoder.ObjectBox()
        box.members.reserveCapacity(count)
        for (key, value) in self {
            box.members.append((key, try WireEncoder.node(for: value, at: path + [WireKey(key)])))
        }
        return .object(box)
    }
}

/// A key of a coding path that names a dictionary member or an array index (encoding and
/// decoding).
struct WireKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(_ string: String) {
        stringValue = string
        intValue = nil
    }
    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { self.init(index: intValue) }
}

// MARK: - The Encoder

fileprivate final class NodeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// What the value encoded: a container's node, or a single value.
    var result: WireEncoder.Node?

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: WireEncoder.ObjectBox
        if case .object(let existing) = result {
            box = existing
        } else {
            box = WireEncoder.ObjectBox()
            result = .object(box)
        }
        return KeyedEncodingContainer(KeyedNodeContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: WireEncoder.ArrayBox
        if case .array(let existing) = result {
            box = existing
        } else {
            box = WireEncoder.ArrayBox()
            result = .array(box)
        }
        return UnkeyedNodeContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleNodeContainer(encoder: self)
    }
}

private struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: WireEncoder.ObjectBox
    let codingPath: [any CodingKey]

    private func set(_ node: WireEncoder.Node, _ key: Key) {
        box.members.append((WireEncoder.snakeCased(key.stringValue), node))
    }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.literal(value ? "true" : "false"), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(try WireEncoder.number(value, at: codingPath + [key]), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(try WireEncoder.number(value, at: codingPath + [key]), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.literal(String(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(.literal(String(value)), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        set(try WireEncoder.node(for: value, at: codingPath + [key]), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = WireEncoder.ObjectBox()
        set(.object(nested), key)
        return KeyedEncodingContainer(KeyedNodeContainer<NestedKey>(box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = WireEncoder.ArrayBox()
        set(.array(nested), key)
        return UnkeyedNodeContainer(box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { superEncoder(named: "super") }

    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(named: key.stringValue) }

    private func superEncoder(named name: String) -> any Encoder {
        let encoder = NodeEncoder(codingPath: codingPath + [WireKey(name)])
        box.members.append((WireEncoder.snakeCased(name), .deferred(encoder)))
        return encoder
    }
}

private struct UnkeyedNodeContainer: UnkeyedEncodingContainer {
    let box: WireEncoder.ArrayBox
    let codingPath: [any CodingKey]
    var count: Int { box.items.count }

    private var nextPath: [any CodingKey] { codingPath + [WireKey(index: box.items.count)] }

    mutating func encodeNil() throws { box.items.append(.null) }
    mutating func encode(_ value: Bool) throws { box.items.append(.literal(value ? "true" : "false")) }
    mutating func encode(_ value: String) throws { box.items.append(.string(value)) }
    mutating func encode(_ value: Double) throws { box.items.append(try WireEncoder.number(value, at: nextPath)) }
    mutating func encode(_ value: Float) throws { box.items.append(try WireEncoder.number(value, at: nextPath)) }
    mutating func encode(_ value: Int) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int8) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int16) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int32) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int64) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt8) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt16) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt32) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt64) throws { box.items.append(.literal(String(value))) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        box.items.append(try WireEncoder.node(for: value, at: nextPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = nextPath
        let nested = WireEncoder.ObjectBox()
        box.items.append(.object(nested))
        return KeyedEncodingContainer(KeyedNodeContainer<NestedKey>(box: nested, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        let nested = WireEncoder.ArrayBox()
        box.items.append(.array(nested))
        return UnkeyedNodeContainer(box: nested, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = NodeEncoder(codingPath: nextPath)
        box.items.append(.deferred(encoder))
        return encoder
    }
}

private struct SingleNodeContainer: SingleValueEncodingContainer {
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ node: WireEncoder.Node) { encoder.result = node }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.literal(value ? "true" : "false")) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(try WireEncoder.number(value, at: codingPath)) }
    mutating func encode(_ value: Float) throws { set(try WireEncoder.number(value, at: codingPath)) }
    mutating func encode(_ value: Int) throws { set(.literal(String(value))) }
    mutating func encode(_ value: Int8) throws { set(.literal(String(value))) }
    mutating func encode(_ value: Int16) throws { set(.literal(String(value))) }
    mutating func encode(_ value: Int32) throws { set(.literal(String(value))) }
    mutating func encode(_ value: Int64) throws { set(.literal(String(value))) }
    mutating func encode(_ value: UInt) throws { set(.literal(String(value))) }
    mutating func encode(_ value: UInt8) throws { set(.literal(String(value))) }
    mutating func encode(_ value: UInt16) throws { set(.literal(String(value))) }
    mutating func encode(_ value: UInt32) throws { set(.literal(String(value))) }
    mutating func encode(_ value: UInt64) throws { set(.literal(String(value))) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        set(try WireEncoder.node(for: value, at: codingPath))
    }
}
