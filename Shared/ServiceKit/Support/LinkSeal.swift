import Contracts
import Crypto
import Foundation

/// Seals the personal links of a notification (sign-in and decision links: credentials) for
/// the notifier, so that nothing readable on `hitl.notifications` (or in a dead letter made
/// of it) lets anyone act as an approver. AES-256-GCM under a key derived from
/// `HITL_NOTIFICATION_KEY`, which the approval service and the notifier share; the text is
/// `v1.` and the base64url of nonce, ciphertext and tag.
public struct LinkSeal: Sendable {
    /// The key's bytes (`SymmetricKey` is not `Sendable`).
    private let keyBytes: [UInt8]

    /// - Parameter secret: at least 32 characters.
    public init(secret: String) {
        keyBytes = Array(SHA256.hash(data: Array("hitl-notification-links|\(secret)".utf8)))
    }

    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// Reads `HITL_NOTIFICATION_KEY`; nil when it is not set.
    public init?(environment env: EnvironmentReader) throws {
        guard let secret = env.optionalString("HITL_NOTIFICATION_KEY") else { return nil }
        guard secret.count >= 32 else { throw ConfigurationError(variable: "HITL_NOTIFICATION_KEY", reason: "must be at least 32 characters") }
        self.init(secret: secret)
    }

    public func seal(_ links: [String: String]) throws -> String {
        let box = try AES.GCM.seal(WireCoding.encode(links), using: key)
        guard let combined = box.combined else { throw ContractError(.invalidPayload, "the links could not be sealed") }
        return "v1." + Base64URL.encode(Array(combined))
    }

    /// The links `sealed` holds; throws when it was not sealed under this key or was changed.
    public func open(_ sealed: String) throws -> [String: String] {
        guard sealed.hasPrefix("v1."), let bytes = Base64URL.decode(sealed.dropFirst(3)) else {
            throw ContractError(.invalidPayload, "sealed_links is not a v1 seal")
        }
        let plain = try AES.GCM.open(AES.GCM.SealedBox(combined: bytes), using: key)
        return try WireCoding.decode([String: String].self, from: Array(plain))
    }
}
