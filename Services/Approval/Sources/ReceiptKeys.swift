import Contracts
import Crypto
import Foundation
import ServiceKit

/// The keys that sign decision receipts (`HITL_RECEIPT_KEYS`): `kid:key` pairs, newest
/// first, each key the base64 of a raw P-256 private key (32 bytes; `hitl receipt keygen`
/// makes one). The newest signs; all are published in the key set, so receipts signed before
/// a rotation keep verifying until their key is removed.
struct ReceiptKeys: Sendable {
    /// (key id, raw private key); the key types themselves are not `Sendable`.
    let keys: [(id: String, raw: [UInt8])]

    init(keys: [(id: String, raw: [UInt8])]) {
        self.keys = keys
    }

    init(environment env: EnvironmentReader) throws {
        let text = try env.string("HITL_RECEIPT_KEYS")
        var keys: [(String, [UInt8])] = []
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let raw = Data(base64Encoded: parts[1]).map(Array.init),
                (try? P256.Signing.PrivateKey(rawRepresentation: raw)) != nil
            else {
                throw ConfigurationError(
                    variable: "HITL_RECEIPT_KEYS", reason: "must be kid:key pairs, newest first, each key the base64 of a raw P-256 private key")
            }
            keys.append((parts[0], raw))
        }
        guard !keys.isEmpty else { throw ConfigurationError(variable: "HITL_RECEIPT_KEYS", reason: "must list at least one key") }
        self.keys = keys
    }

    /// Signs `claims` with the newest key.
    func sign(_ claims: DecisionReceipt.Claims) throws -> String {
        let newest = keys[0]
        return try DecisionReceipt.sign(claims, key: try P256.Signing.PrivateKey(rawRepresentation: newest.raw), kid: newest.id)
    }

    /// The public keys, as `/.well-known/jwks.json` serves them.
    var jwks: JWKSet {
        JWKSet(
            keys: keys.compactMap { key in
                (try? P256.Signing.PrivateKey(rawRepresentation: key.raw)).map { JWKSet.Key(kid: key.id, publicKey: $0.publicKey) }
            })
    }
}
