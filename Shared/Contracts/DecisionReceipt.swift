import Crypto
import Foundation

/// Evidence of a decided approval that anyone can check offline: a compact JWS (`ES256`)
/// signed by the approval service over who decided what, how and when, and the SHA-256 of
/// exactly what the approvers were shown. The approval service publishes its public keys at
/// `GET /.well-known/jwks.json`; a downstream system that acts on an approval (the step after
/// it gets the receipt in `HITL-Approval-Receipt` or `TaskRequested.receipt`) verifies the
/// signature with that key set and compares `input_sha256` with the input it is asked to act on.
public enum DecisionReceipt {
    /// The signed claims.
    public struct Claims: Codable, Sendable, Equatable {
        /// Always `hitl-approval`.
        public var iss: String
        public var approvalId: String
        public var workflowId: String
        public var step: String
        /// The outcome: `approve`, `reject`, `approve_with_changes` or `request_changes`.
        public var outcome: Decision
        /// The person who decided, or the rule (`policy` and `fallback` channels).
        public var decidedBy: String
        public var onBehalfOf: String?
        /// `api`, `web`, `slack`, `link`, `policy`, `fallback`.
        public var channel: String
        public var decidedAt: Date
        /// The admin's gate that required the approval (`name@version`), when one did.
        public var rule: String?
        /// SHA-256 (hex) of the canonical JSON of the input the approvers were shown.
        public var shownSha256: String
        /// SHA-256 (hex) of the canonical JSON of the input as approved: the shown input with
        /// the approver's `changes` applied (equal to `shown_sha256` without changes).
        public var inputSha256: String
        /// Unix time of signing.
        public var iat: Int

        public init(
            approvalId: String, workflowId: String, step: String, outcome: Decision, decidedBy: String, onBehalfOf: String?, channel: String,
            decidedAt: Date, rule: String?, shown: JSONObject, changes: JSONObject?, now: Date = Date()
        ) {
            iss = DecisionReceipt.issuer
            self.approvalId = approvalId
            self.workflowId = workflowId
            self.step = step
            self.outcome = outcome
            self.decidedBy = decidedBy
            self.onBehalfOf = onBehalfOf
            self.channel = channel
            self.decidedAt = decidedAt
            self.rule = rule
            shownSha256 = DecisionReceipt.sha256(of: shown)
            inputSha256 = DecisionReceipt.sha256(of: shown.merging(changes ?? [:]) { _, new in new })
            iat = Int(now.timeIntervalSince1970)
        }
    }

    public static let issuer = "hitl-approval"
    static let type = "hitl-receipt+jwt"

    /// The hex SHA-256 of `object`'s canonical JSON: keys sorted, no whitespace, UTF-8,
    /// slashes unescaped, as `WireCoding` writes it. Python's `json.dumps(value,
    /// sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes the same for
    /// strings, booleans, null and integers below 2^53; not for fractions written with a
    /// trailing `.0` or larger numbers (Swift writes `1` and `1e+20`).
    public static func sha256(of object: JSONObject) -> String {
        let bytes = (try? WireCoding.encode(JSONValue.object(object))) ?? []
        return Digest.sha256Hex(bytes)
    }

    /// Why a receipt does not verify.
    public struct Refusal: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Signs `claims` with `key` under key id `kid`.
    public static func sign(_ claims: Claims, key: P256.Signing.PrivateKey, kid: String) throws -> String {
        let header = try WireCoding.encode(["alg": "ES256", "kid": kid, "typ": type])
        let input = Base64URL.encode(header) + "." + Base64URL.encode(try WireCoding.encode(claims))
        let signature = try key.signature(for: Array(input.utf8))
        return input + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }

    /// The claims of `receipt` when its signature verifies under the key of `keys` its
    /// header names (ES256 only; any other algorithm, an unknown key id or one changed byte
    /// is refused). Signatures are not canonicalised (base64url variants, high-S), so a
    /// receipt's text is evidence, never an identifier: use its `approval_id`.
    /// The claims of `receipt` without checking its signature, for a holder that verified
    /// it before (the orchestrator, when the decision arrived).
    public static func unverifiedClaims(of receipt: String) -> Claims? {
        let parts = receipt.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]) else { return nil }
        return try? WireCoding.decode(Claims.self, from: payload)
    }

    public static func verify(_ receipt: String, keys: JWKSet) throws(Refusal) -> Claims {
        let parts = receipt.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let payload = Base64URL.decode(parts[1]),
            let signatureBytes = Base64URL.decode(parts[2])
        else { throw Refusal("not a compact JWS") }
        guard let header = try? WireCoding.decode([String: String].self, from: headerBytes) else { throw Refusal("the header is not JSON") }
        guard header["alg"] == "ES256" else { throw Refusal("the algorithm must be ES256") }
        guard let kid = header["kid"], let jwk = keys.keys.first(where: { $0.kid == kid }) else {
            throw Refusal("no published key has the id \(header["kid"] ?? "(none)")")
        }
        guard let key = jwk.publicKey else { throw Refusal("key \(kid) is not a P-256 key") }
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes),
            key.isValidSignature(signature, for: Array("\(parts[0]).\(parts[1])".utf8))
        else { throw Refusal("the signature does not match") }
        guard let claims = try? WireCoding.decode(Claims.self, from: payload), claims.iss == issuer else {
            throw Refusal("the claims are not a HITL decision receipt")
        }
        return claims
    }
}

/// A JSON Web Key Set of P-256 signing keys (RFC 7517), as `/.well-known/jwks.json` serves it.
public struct JWKSet: Codable, Sendable, Equatable {
    public struct Key: Codable, Sendable, Equatable {
        public var kty: String
        public var crv: String
        public var x: String
        public var y: String
        public var kid: String
        public var use: String?
        public var alg: String?

        public init(kid: String, publicKey: P256.Signing.PublicKey) {
            let raw = Array(publicKey.rawRepresentation)  // x ‖ y, 32 bytes each
            kty = "EC"
            crv = "P-256"
            x = Base64URL.encode(Array(raw.prefix(32)))
            y = Base64URL.encode(Array(raw.suffix(32)))
            self.kid = kid
            use = "sig"
            alg = "ES256"
        }

        var publicKey: P256.Signing.PublicKey? {
            guard kty == "EC", crv == "P-256", let x = Base64URL.decode(Substring(x)), let y = Base64URL.decode(Substring(y)),
                x.count == 32, y.count == 32
            else { return nil }
            return try? P256.Signing.PublicKey(rawRepresentation: x + y)
        }
    }

    public var keys: [Key]

    public init(keys: [Key]) {
        self.keys = keys
    }
}
