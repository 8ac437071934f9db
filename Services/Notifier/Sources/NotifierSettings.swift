import Foundation
import ServiceKit

/// The notifier's own settings.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HITL_WEBHOOK_URL` | — | where the signed webhook channel posts; without it, notifications go to the `log` channel (the service log) |
/// | `HITL_WEBHOOK_SECRET` | — (required with a URL) | HMAC-SHA256 key of the `X-HITL-Signature` header |
/// | `HITL_DELIVERY_MAX_ATTEMPTS` | `6` | attempts before a delivery is given up and reported failed |
public struct NotifierSettings: Sendable {
    public var webhookURL: URL?
    public var webhookSecret: String?
    public var maxAttempts: Int

    public init(environment env: EnvironmentReader) throws {
        if env.optionalString("HITL_WEBHOOK_URL") != nil {
            webhookURL = try env.url("HITL_WEBHOOK_URL")
            webhookSecret = try env.string("HITL_WEBHOOK_SECRET")
            if (webhookSecret?.count ?? 0) < 16 {
                throw ConfigurationError(variable: "HITL_WEBHOOK_SECRET", reason: "must be at least 16 characters")
            }
        }
        maxAttempts = try env.int("HITL_DELIVERY_MAX_ATTEMPTS", default: 6, in: 1...50)
    }

    /// The channels every notification is delivered on.
    var channels: [String] { webhookURL == nil ? ["log"] : ["webhook"] }
}
