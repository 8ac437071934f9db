import Contracts
import Foundation
import Testing

/// `WireCoding.encode` writes exactly what Foundation's encoder with the wire settings
/// writes: for every contract sample, and for random free-form values that reach the corners
/// (escapes, non-ASCII keys, numbers, nesting), so no stored or signed byte changes with it.
@Suite struct WireEncoderTests {
    static func foundation(_ value: some Encodable) throws -> String {
        String(decoding: try WireCoding.encoder().encode(value), as: UTF8.self)
    }

    static func wire(_ value: some Encodable) throws -> String {
        String(decoding: try WireCoding.encode(value), as: UTF8.self)
    }

    @Test func everyContractSampleIsWrittenAsFoundationWritesIt() throws {
        for sample in ContractSamples.all {
            #expect(try sample.encode() == sample.reference(), "\(sample.fixture)")
        }
    }

    /// Values Foundation writes in a form of its own, keys it converts and keys it keeps,
    /// and the escapes of every control character.
    @Test func theCornersMatchFoundation() throws {
        struct Corners: Encodable {
            var approvalId = "a"
            var myURLString = "https://example.com/a/b"
            var HTTPStatus = 200
            var a1B2: Double = 3
            var small: Double = 1e-7
            var large: Double = 1e21
            var negativeZero: Double = -0.0
            var third: Double = 1.0 / 3
            var float: Float = 0.1
            var link = URL(string: "https://example.com/x?y=1")!
            var bytes = Data([0, 1, 2, 250])
            var when = Date(timeIntervalSince1970: 1_790_000_000.123)
            var none: String? = nil
            var nested: [String: [String: Int]] = ["camelKey": ["Z": 1, "a": 2, "B": 3]]
            var controls = String((0..<0x80).map { Character(Unicode.Scalar(UInt8($0))) })
            var unicode = "é e\u{301} 😀 \u{2028} /"
            var optionals: [Int?] = [1, nil, 3]
            var flags = [true, false]
            var big = UInt64.max
            var smallest = Int64.min
        }
        #expect(try Self.wire(Corners()) == Self.foundation(Corners()))
        #expect(try Self.wire([String: Int]()) == Self.foundation([String: Int]()))
        #expect(try Self.wire([Int]()) == Self.foundation([Int]()))
        #expect(throws: EncodingError.self) { try WireCoding.encode(["x": Double.nan]) }
        #expect(throws: EncodingError.self) { try WireCoding.encode([Double.infinity]) }
    }

    /// Foundation refuses values nested 512 deep; so does the encoder, or a workflow whose
    /// input Foundation could not have written would be stored and its events poison.
    @Test func nestingIsRefusedWhereFoundationRefusesIt() throws {
        for depth in [1, 2, 510, 511, 512, 513] {
            var value = JSONValue.string("x")
            for level in 0..<depth { value = level.isMultiple(of: 2) ? .array([value]) : .object(["k": value]) }
            let foundation = Result { try Self.foundation(value) }
            let wire = Result { try Self.wire(value) }
            switch (foundation, wire) {
            case (.success(let theirs), .success(let ours)): #expect(ours == theirs)
            case (.failure, .failure): #expect(throws: EncodingError.self, "depth \(depth)") { try WireCoding.encode(value) }
            default: Issue.record("depth \(depth): Foundation \(foundation), wire \(wire)")
            }
        }
    }

    @Test func randomFreeFormValuesMatchFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let value = Self.randomValue(depth: 0, using: &generator)
            let (wire, foundation) = (try Self.wire(value), try Self.foundation(value))
            let same = zip(wire.unicodeScalars, foundation.unicodeScalars).prefix { $0 == $1 }.count
            let (ours, theirs) = (wire.unicodeScalars.dropFirst(same).prefix(60), foundation.unicodeScalars.dropFirst(same).prefix(60))
            #expect(wire == foundation, "from \(same): \(String(ours)) ≠ \(String(theirs))")
        }
    }

    static let alphabet: [Character] = Array("aZ_09 \"\\/\u{0}\u{1f}\u{7f}éẞ😀") + ["e\u{301}", "\r\n"]

    static func randomText(using generator: inout SystemRandomNumberGenerator) -> String {
        String((0..<Int.random(in: 0...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
    }

    static func randomValue(depth: Int, using generator: inout SystemRandomNumberGenerator) -> JSONValue {
        switch Int.random(in: depth > 3 ? 0...3 : 0...5, using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2:
            let numbers: [Double] = [0, -1, 5000, 0.5, 1e-9, 123_456.789, 2e15, 9_007_199_254_740_992, -3.25e300, .random(in: -1e6...1e6, using: &generator)]
            return .number(numbers.randomElement(using: &generator)!)
        case 3: return .string(randomText(using: &generator))
        case 4: return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...5, using: &generator) {
                members[randomText(using: &generator)] = randomValue(depth: depth + 1, using: &generator)
            }
            return .object(members)
        }
    }
}
