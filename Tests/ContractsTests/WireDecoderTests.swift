import Foundation
import Testing

@testable import Contracts

/// `WireCoding.decode` reads what Foundation's decoder with the wire settings reads, and
/// refuses what it refuses: on every contract fixture (through the fast path, which must
/// then be taken), on random free-form values and on input built to sit on the edges.
@Suite struct WireDecoderTests {
    static func foundation<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> Result<T, any Error> {
        Result { try WireCoding.decoder().decode(type, from: Data(bytes)) }
    }

    /// The value the fast path reads, or nil when it leaves the bytes to Foundation.
    static func fast<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        WireDecoder.fastValue(type, from: bytes)
    }

    @Test(arguments: ContractSamples.all.map(\.fixture))
    func everyFixtureIsReadByTheFastPathAsFoundationReadsIt(name: String) throws {
        let sample = try #require(ContractSamples.all.first { $0.fixture == name })
        let golden = try WireContractTests.fixture(name)
        #expect(try sample.fastPathMatchesFoundation(golden), "\(name)")
    }

    /// Whatever the fast path reads, it reads as Foundation does, and it reads nearly all.
    @Test func randomFreeFormValuesAreReadAsFoundationReadsThem() throws {
        var generator = SystemRandomNumberGenerator()
        var readFast = 0
        for _ in 0..<300 {
            let value = WireEncoderTests.randomValue(depth: 0, using: &generator)
            let bytes = Array(try WireCoding.encoder().encode(value))
            let theirs = try Self.foundation(JSONValue.self, bytes).get()
            #expect(try WireCoding.decode(JSONValue.self, from: bytes) == theirs)
            if let fast = Self.fast(JSONValue.self, bytes) {
                readFast += 1
                #expect(fast == theirs, "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        // Only a key twice after normalisation ("é" and "e\u{301}") is left to Foundation.
        #expect(readFast > 250)
    }

    struct Snake: Codable, Equatable {
        var approvalId: String
        var timeoutSeconds2: Int?
        var amount: Double?
        var context: [String: Int]?
    }

    /// Input on the edges: either both read the same value or both refuse.
    @Test func edgesAreReadOrRefusedAsFoundationDoes() {
        func same<T: Decodable & Equatable>(_ type: T.Type, _ text: String, fast expectFast: Bool? = nil) {
            let bytes = Array(text.utf8)
            let ours = Result { try WireCoding.decode(type, from: bytes) }
            let theirs = Self.foundation(type, bytes)
            switch (ours, theirs) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(text)")
            case (.failure, .failure): break
            default: Issue.record("\(T.self) from \(text): ours \(ours), Foundation's \(theirs)")
            }
            if let expectFast { #expect((Self.fast(type, bytes) != nil) == expectFast, "fast path for \(text)") }
        }
        for text in [
            "01", "1.", ".5", "-", "+1", "1e", "1e400", "-0", "1.0", "1E2", "9007199254740993", "123456789012345678901234567890", "1e-320", "[1,]",
            "{\"a\":1,}", "{\"a\" 1}", "nul", "tru", "\"\\u0041\"", "\"\\ud800\"", "\"\t\"", "\"\\x\"", "[1] x", " [1] ", "\u{FEFF}[1]",
            "\"\\u00e9\\u00C9\\u0000\"", "\"\\ud83d\\ude00\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud83d\"", "\"\\u12\"",
            "\"\\u00G1\"", "{\"\\u0061_b\":1}", "{\"a\":1,\"a\":2}", "{\"é\":1,\"e\u{301}\":2}", "\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"", "[]", "{}", "null", "true",
        ] {
            same(JSONValue.self, text)
        }
        for text in ["1", "-5", "1.0", "1e2", "-0", "9223372036854775807", "9223372036854775808", "\"1\"", "true", "null"] {
            same(Int.self, text)
            same(Int64.self, text)
            same(UInt8.self, text)
        }
        for text in ["1", "0.1", "1e-7", "-3.25e300", "1e400", "1e-400", "-1e-400", "0.0000001e-400", "0e-400", "-0.0", "9007199254740993", "\"1\""] {
            same(Double.self, text)
            same(JSONValue.self, "{\"x\":\(text)}")
        }
        same(Double.self, "0e-400", fast: true)
        same(Double.self, "1e-400", fast: false)
        same(String.self, #""\ud83d\ude00 \u00e9""#, fast: true)
        same(String.self, #""\ud800""#, fast: false)
        same(Snake.self, #"{"approval_id":"a","timeout_seconds2":5,"amount":1.5,"context":{"fooBar":1,"x_y":2}}"#, fast: true)
        same(Snake.self, #"{"approvalId":"a"}"#, fast: false)
        same(Snake.self, #"{"approval_id":"a","APPROVAL_ID":"b"}"#, fast: false)
        same(Snake.self, #"{"approval_id":"a","approvalId":"b"}"#, fast: false)
        same(Snake.self, #"{"approval_id":"a","unknown_2x":1}"#, fast: false)
        same(Snake.self, #"{"approval_id":"a","timeout_seconds2":null}"#, fast: true)
        same(Snake.self, #"{"timeout_seconds2":5}"#, fast: false)
        same(Snake.self, #"{"approval_id":5}"#, fast: false)
        for depth in [64, 100] {
            same(JSONValue.self, String(repeating: "[", count: depth) + String(repeating: "]", count: depth), fast: true)
        }
        same(JSONValue.self, String(decoding: [0x22, 0xFF, 0x22], as: UTF8.self))
        let invalid: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect((try? WireCoding.decode(String.self, from: invalid)) == (try? WireCoding.decoder().decode(String.self, from: Data(invalid))))
    }

    /// Deep nesting is refused unread, whichever path would have read it: Foundation spends
    /// seconds on free-form values a few hundred levels deep. Brackets inside strings do not
    /// count.
    @Test func documentsNestedDeeperThanTheLimitAreRefusedUnread() throws {
        func nested(_ depth: Int, key: String = "k") -> [UInt8] {
            Array((String(repeating: "{\"\(key)\":", count: depth) + "1" + String(repeating: "}", count: depth)).utf8)
        }
        for limit in [WireCoding.maximumDepth, WireCoding.inboundDepth] {
            #expect(throws: Never.self) { try WireCoding.decode(JSONValue.self, from: nested(limit), nestedAtMost: limit) }
            // Past the limit: refused, through the fast path's keys and through Foundation's.
            for key in ["k", "camelKey"] {
                let error = #expect(throws: WireCoding.TooDeep.self) {
                    try WireCoding.decode(JSONValue.self, from: nested(limit + 1, key: key), nestedAtMost: limit)
                }
                #expect(error?.limit == limit)
                #expect(ContractError.describe(try #require(error)) == "the JSON nests arrays and objects more than \(limit) levels deep")
            }
        }
        #expect(throws: WireCoding.TooDeep.self) { try WireCoding.decode(JSONValue.self, from: nested(510)) }
        let brackets = Array(#"{"text":"[[[[\"{{{{","n":[1]}"#.utf8)
        #expect(!WireCoding.nests(brackets, deeperThan: 2))
        #expect(WireCoding.nests(brackets, deeperThan: 1))
        #expect(try WireCoding.decode(JSONValue.self, from: brackets, nestedAtMost: 2) == .object(["text": .string(#"[[[["{{{{"#), "n": .array([.number(1)])]))
    }

    /// Foundation would read UTF-16 and UTF-32 after converting them, past a depth count
    /// made on UTF-8 (a UTF-16 `\u{5C41}` holds a backslash byte): they are refused, with or
    /// without a byte-order mark. UTF-8's own mark is read as Foundation reads it.
    @Test func documentsInUTF16OrUTF32AreRefused() throws {
        func utf16LittleEndian(_ text: String) -> [UInt8] {
            var bytes: [UInt8] = []
            for unit in text.utf16 { bytes += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
            return bytes
        }
        let brackets = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        let deep: String = "{\"a\":\"\u{5C41}\",\"b\":" + brackets + "}"
        let marked: [UInt8] = [0xFF, 0xFE] + utf16LittleEndian(#"{"a":1}"#)
        for bytes in [utf16LittleEndian(deep), marked] {
            #expect(throws: WireCoding.NotUTF8.self) { try WireCoding.decode(JSONValue.self, from: bytes) }
        }
        #expect(try WireCoding.decode(JSONValue.self, from: [0xEF, 0xBB, 0xBF] + Array(#"{"a":1}"#.utf8)) == .object(["a": .number(1)]))
    }

    /// What agents write on Kafka is held to the inbound depth; the services' own events,
    /// which carry agents' values further inside, to the full one.
    @Test func agentsRecordsAreHeldToTheInboundDepth() throws {
        #expect(WorkflowSubmitted.maximumDepth == WireCoding.inboundDepth)
        #expect(WorkflowControlRequested.maximumDepth == WireCoding.inboundDepth)
        #expect(TaskResult.maximumDepth == WireCoding.inboundDepth)
        #expect(ApprovalRequested.maximumDepth == WireCoding.maximumDepth)
        var input: JSONValue = .number(1)
        for _ in 0..<WireCoding.inboundDepth { input = .object(["k": input]) }
        let submitted = WorkflowSubmitted(
            idempotencyKey: "k", type: "t", requester: "agent@example.com", input: ["deep": input],
            steps: [StepDefinition(name: "s", kind: .task, task: StepDefinition.Task(type: "noop"))])
        let envelope = try EventEnvelope(submitted, source: "test", subject: "s")
        let error = #expect(throws: ContractError.self) { try envelope.decode(WorkflowSubmitted.self) }
        #expect(error?.reason.contains("more than \(WireCoding.inboundDepth) levels deep") == true)
    }
}
