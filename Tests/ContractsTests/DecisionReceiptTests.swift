import Contracts
import Crypto
import Foundation
import Testing

/// Decision receipts verify with the published key and nothing else: not with one byte
/// changed, not under another key, not for another input.
@Suite struct DecisionReceiptTests {
    // The key types are not Sendable: keep the raw bytes.
    static let raw = Array(P256.Signing.PrivateKey().rawRepresentation)
    static var key: P256.Signing.PrivateKey { try! P256.Signing.PrivateKey(rawRepresentation: raw) }
    static var keys: JWKSet { JWKSet(keys: [.init(kid: "r1", publicKey: key.publicKey)]) }
    static let shown: JSONObject = ["amount": 900_000, "to": "ACME GmbH"]

    static func claims(changes: JSONObject? = nil) -> DecisionReceipt.Claims {
        DecisionReceipt.Claims(
            approvalId: "a-1", workflowId: "w-1", step: "gate.big-transfers", outcome: changes == nil ? .approve : .approveWithChanges,
            decidedBy: "cfo@bank.example", onBehalfOf: nil, channel: "web", decidedAt: Date(timeIntervalSince1970: 1_790_000_000),
            rule: "big-transfers@1", shown: shown, changes: changes)
    }

    @Test func aReceiptVerifiesWithThePublishedKeyAndNamesWhatWasApproved() throws {
        let receipt = try DecisionReceipt.sign(Self.claims(), key: Self.key, kid: "r1")
        let claims = try DecisionReceipt.verify(receipt, keys: Self.keys)
        #expect(claims == Self.claims() && claims.rule == "big-transfers@1")
        #expect(claims.inputSha256 == DecisionReceipt.sha256(of: Self.shown) && claims.shownSha256 == claims.inputSha256)
        // The key set serialises as a JWKS and reads back.
        let published = try WireCoding.decode(JWKSet.self, from: WireCoding.encode(Self.keys))
        #expect(try DecisionReceipt.verify(receipt, keys: published) == claims)
        // With changes, the approved input is the shown one with the changes applied.
        let changed = try DecisionReceipt.verify(DecisionReceipt.sign(Self.claims(changes: ["amount": 500]), key: Self.key, kid: "r1"), keys: Self.keys)
        #expect(changed.inputSha256 == DecisionReceipt.sha256(of: ["amount": 500, "to": "ACME GmbH"]) && changed.shownSha256 != changed.inputSha256)
    }

    @Test func oneChangedByteAnotherKeyOrAnotherAlgorithmIsRefused() throws {
        let receipt = try DecisionReceipt.sign(Self.claims(), key: Self.key, kid: "r1")
        let bytes = Array(receipt.utf8)
        for index in [10, receipt.count / 2, receipt.count - 5] {
            var tampered = bytes
            tampered[index] = tampered[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(throws: DecisionReceipt.Refusal.self) { try DecisionReceipt.verify(String(decoding: tampered, as: UTF8.self), keys: Self.keys) }
        }
        let other = try DecisionReceipt.sign(Self.claims(), key: P256.Signing.PrivateKey(), kid: "r1")
        #expect { try DecisionReceipt.verify(other, keys: Self.keys) } throws: { "\($0)" == "the signature does not match" }
        let unknown = try DecisionReceipt.sign(Self.claims(), key: Self.key, kid: "r0")
        #expect { try DecisionReceipt.verify(unknown, keys: Self.keys) } throws: { "\($0)".contains("no published key") }
        // alg: none with the payload kept.
        let parts = receipt.split(separator: ".")
        let none = Data(#"{"alg":"none","kid":"r1"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        #expect(throws: DecisionReceipt.Refusal.self) { try DecisionReceipt.verify("\(none).\(parts[1]).", keys: Self.keys) }
    }

    @Test func theInputHashIsCanonical() {
        // Key order does not matter; a changed value does.
        #expect(DecisionReceipt.sha256(of: ["b": 1, "a": "x"]) == DecisionReceipt.sha256(of: ["a": "x", "b": 1]))
        #expect(DecisionReceipt.sha256(of: ["amount": 900_000]) != DecisionReceipt.sha256(of: ["amount": 900_001]))
        // As Python's json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes it.
        #expect(
            DecisionReceipt.sha256(of: ["amount": 6000, "to": "ACME/ü"])
                == "\(SHA256.hash(data: Array(#"{"amount":6000,"to":"ACME/ü"}"#.utf8)).map { String(format: "%02x", $0) }.joined())")
    }
}
