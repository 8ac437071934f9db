import Contracts
import Foundation
import Testing

@Suite struct TextEncodingTests {
    /// Foundation's base64 with the URL alphabet and no padding: what the encoder replaced.
    static func reference(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func encodesAsFoundationDoesAndDecodesBackForEveryLength() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64URL.encode(bytes)
            #expect(encoded == Self.reference(bytes))
            #expect(Base64URL.decode(Substring(encoded)) == bytes)
        }
        // Every character of the alphabet, and the two that differ from standard base64.
        let all = [UInt8](0...255)
        #expect(Base64URL.decode(Substring(Base64URL.encode(all))) == all)
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test func acceptsPaddingAndTheStandardAlphabetAndRefusesAnythingElse() {
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("+/8=") == [0xFB, 0xFF])
        #expect(Base64URL.decode("aGk") == Array("hi".utf8))
        #expect(Base64URL.decode("") == [])
        for bad in ["a", "aGk.", "aG k", "a===", "aGk==", "aGk=x", "AAAA====", "====", "é", "aGk\u{0}"] {
            #expect(Base64URL.decode(Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func hexIsLowerCaseTwoDigitsPerByte() {
        #expect(Digest.hex([0x00, 0x0F, 0xA0, 0xFF]) == "000fa0ff")
        #expect(Digest.hex([]) == "")
        #expect(Digest.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Derived approval ids never change (stored ones must still match): computed apart,
        // with Python's hashlib, for this workflow, step and round.
        #expect(ApprovalIdentity.derive(workflowId: "wf-1", step: "approve", round: 1) == "f0ce2bea-f757-88eb-80b5-51e6cfd32c0a")
    }
}
