import Contracts
import Crypto
import Foundation
import ServiceKit

/// Signed, single-use decision links: one per approver and outcome, put into notifications
/// so a click (after a confirmation page) decides without a login.
///
/// A token is `base64url(claims).base64url(HMAC-SHA256(key, claims))` where the claims are
/// the canonical line `v1|<key id>|<token id>|<approval id>|<approver>|<decision>|<expiry>`.
/// Several keys may be valid at once (`HITL_DECISION_KEYS`, newest first: new links are
/// signed with the first, the others still verify during a rotation); a link signed by a
/// key no longer listed is refused. The signature is compared in constant time, expiry is
/// checked before the approval's status, and single use is enforced by the database
/// (`used_decision_tokens`). No read API returns a token.
struct DecisionTokens: Sendable {
    struct Claims: Equatable, Sendable {
        var keyID: String
        var tokenID: String
        var approvalID: String
        var approver: String
        var decision: Decision
        var expiresAt: Date
    }

    enum Refusal: Error, Equatable {
        case malformed, unknownKey, badSignature, expired
        var reason: String {
            switch self {
            case .malformed: "the link is not a decision link"
            case .unknownKey: "the link was signed with a key that is no longer valid"
            case .badSignature: "the link's signature is not valid"
            case .expired: "the link expired"
            }
        }
    }

    /// Key id → secret, and the id new tokens are signed with.
    private let keys: [String: [UInt8]]
    let currentKeyID: String

    init(keys: [(id: String, secret: String)]) {
        self.keys = Dictionary(keys.map { ($0.id, Array($0.secret.utf8)) }) { first, _ in first }
        currentKeyID = keys.first?.id ?? ""
    }

    /// Reads `HITL_DECISION_KEYS`: `id:secret` pairs, comma-separated, newest first.
    init(environment env: EnvironmentReader) throws {
        let text = try env.string("HITL_DECISION_KEYS")
        var keys: [(String, String)] = []
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[0].contains("|"), parts[1].count >= 32 else {
                throw ConfigurationError(variable: "HITL_DECISION_KEYS", reason: "must be id:secret pairs, newest first, each secret at least 32 characters")
            }
            keys.append((parts[0], parts[1]))
        }
        guard !keys.isEmpty else { throw ConfigurationError(variable: "HITL_DECISION_KEYS", reason: "must list at least one key") }
        self.init(keys: keys.map { (id: $0.0, secret: $0.1) })
    }

    func issue(approvalID: String, approver: String, decision: Decision, expiresAt: Date) -> String {
        seal(
            Self.canonical(
                Claims(
                    keyID: currentKeyID, tokenID: UUID().uuidString.lowercased(), approvalID: approvalID, approver: approver,
                    decision: decision, expiresAt: expiresAt)))
    }

    /// The claims of a genuine, unexpired token.
    func verify(_ token: String, now: Date = Date()) throws(Refusal) -> Claims {
        let (fields, expiresAt) = try open(token, kind: "v1", count: 7, now: now)
        guard let decision = Decision(rawValue: fields[5]) else { throw .malformed }
        return Claims(keyID: fields[1], tokenID: fields[2], approvalID: fields[3], approver: fields[4], decision: decision, expiresAt: expiresAt)
    }

    /// `verify` for an HTTP request: 410 for an expired link, 401 for any other refusal.
    func checked(_ token: String) throws(APIError) -> Claims {
        do {
            return try verify(token)
        } catch .expired {
            throw APIError(.gone, "link_expired", Refusal.expired.reason)
        } catch {
            throw APIError(.unauthorized, "invalid_link", error.reason)
        }
    }

    // MARK: - Signed lines

    /// `base64url(line).base64url(HMAC-SHA256(key, line))`, signed with the key the line names
    /// in its second field (the current key for new lines).
    func seal(_ line: String) -> String {
        let fields = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        let key = fields.count > 1 ? keys[String(fields[1])] ?? [] : []
        return Signing.base64URL(Array(line.utf8)) + "." + Signing.base64URL(Array(mac(line, key: key)))
    }

    /// The fields of a genuine, unexpired sealed line of `kind` with `count` fields (kind and
    /// key id first, the expiry in Unix seconds last); its key must still be listed and its
    /// signature must match (constant time); the expiry is checked after the signature.
    func open(_ token: String, kind: String, count: Int, now: Date) throws(Refusal) -> (fields: [String], expiresAt: Date) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let lineBytes = Signing.decodeBase64URL(parts[0]), let signature = Signing.decodeBase64URL(parts[1]),
            let line = String(bytes: lineBytes, encoding: .utf8)
        else { throw .malformed }
        let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == count, fields[0] == kind else { throw .malformed }
        guard let key = keys[fields[1]] else { throw .unknownKey }
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: lineBytes, using: SymmetricKey(data: key)) else {
            throw .badSignature
        }
        guard let expiry = Int(fields[count - 1]) else { throw .malformed }
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(expiry))
        guard expiresAt > now else { throw .expired }
        return (fields, expiresAt)
    }

    /// A MAC of `message` under the key `keyID` (nil when the key is no longer listed).
    func mac(_ message: String, keyID: String) -> [UInt8]? {
        keys[keyID].map { mac(message, key: $0) }
    }

    private func mac(_ message: String, key: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
    }

    static func canonical(_ claims: Claims) -> String {
        ["v1", claims.keyID, claims.tokenID, claims.approvalID, claims.approver, claims.decision.rawValue, "\(Int(claims.expiresAt.timeIntervalSince1970))"]
            .joined(separator: "|")
    }
}
