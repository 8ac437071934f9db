import Foundation
import ServiceKit
import Slack

/// The notifier's own settings. Every channel that is configured gets every notification;
/// with none configured, notifications go to the `log` channel (the service log).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HITL_WEBHOOK_URL` | — | where the signed webhook channel posts |
/// | `HITL_WEBHOOK_SECRET` | — (required with a URL) | HMAC-SHA256 key of the `X-HITL-Signature` header |
/// | `HITL_WEBHOOK_LINKS` | `0` | `1`: the webhook gets the approvers' personal sign-in and decision links too (only for a receiver that delivers to each approver privately) |
/// | `HITL_NOTIFICATION_KEY` | — | opens the approvers' links the approval service sealed (the same key); without it, notifications carrying links fail |
/// | `HITL_SMTP_HOST` | — | the mail server; turns the email channel on (recipients are addresses) |
/// | `HITL_SMTP_PORT` | `587` | its submission port |
/// | `HITL_SMTP_FROM` | — (required with a host) | the sender address |
/// | `HITL_SMTP_USERNAME`, `HITL_SMTP_PASSWORD` | — | AUTH PLAIN credentials, sent only over TLS |
/// | `HITL_SMTP_TLS` | `starttls` | `starttls` (required, certificate verified) or `none` (a relay on a trusted network; no AUTH) |
/// | `HITL_SMTP_CA_FILE` | — | PEM file of the CA that signed the server's certificate, instead of the system's roots |
/// | `HITL_SLACK_BOT_TOKEN`, `HITL_SLACK_API_URL`, `HITL_SLACK_USERS` | — | the Slack channel (see `SlackSettings`); recipients are mapped to Slack users |
/// | `HITL_REPORT_DELIVERED` | `0` | `1`: every successful delivery is reported on `hitl.notification.outcomes` too; failures always are |
/// | `HITL_DELIVERY_MAX_ATTEMPTS` | `6` | attempts before a delivery is given up, reported failed and dead-lettered |
/// | `HITL_DELIVERY_RETRY_BASE_MS` | `2000` | backoff of the first retry (doubling, capped at 10 minutes, full jitter) |
/// | `HITL_DELIVERY_BREAKER_THRESHOLD` | `5` | failures in a row that open a channel's circuit breaker |
/// | `HITL_DELIVERY_BREAKER_COOLDOWN_SECONDS` | `30` | how long an open breaker holds the channel's deliveries before one probe |
public struct NotifierSettings: Sendable {
    public var webhookURL: URL?
    public var webhookSecret: String?
    var webhookLinks: Bool
    var linkSeal: LinkSeal?
    var smtp: SMTPClient.Settings?
    var mailFrom: String?
    var slack: SlackSettings?
    public var maxAttempts: Int
    /// Whether successful deliveries are reported on `hitl.notification.outcomes`. No service
    /// reads them (`TopicAccess`), and they were two records of every workflow; a failure,
    /// which ops act on, is always reported (and dead-lettered for a retry).
    public var reportDelivered: Bool
    var retryBackoff: Backoff
    var breakerThreshold: Int
    var breakerCooldown: Duration

    public init(environment env: EnvironmentReader) throws {
        linkSeal = try LinkSeal(environment: env)
        webhookLinks = env.optionalString("HITL_WEBHOOK_LINKS") == "1"
        if env.optionalString("HITL_WEBHOOK_URL") != nil {
            webhookURL = try env.url("HITL_WEBHOOK_URL")
            webhookSecret = try env.string("HITL_WEBHOOK_SECRET")
            if (webhookSecret?.count ?? 0) < 16 {
                throw ConfigurationError(variable: "HITL_WEBHOOK_SECRET", reason: "must be at least 16 characters")
            }
        }
        if let host = env.optionalString("HITL_SMTP_HOST") {
            var smtp = SMTPClient.Settings(host: host, port: try env.int("HITL_SMTP_PORT", default: 587, in: 1...65535))
            smtp.username = env.optionalString("HITL_SMTP_USERNAME")
            smtp.password = env.optionalString("HITL_SMTP_PASSWORD")
            if (smtp.username == nil) != (smtp.password == nil) {
                throw ConfigurationError(
                    variable: smtp.username == nil ? "HITL_SMTP_USERNAME" : "HITL_SMTP_PASSWORD",
                    reason: "is needed with the other of HITL_SMTP_USERNAME and HITL_SMTP_PASSWORD")
            }
            switch try env.string("HITL_SMTP_TLS", default: "starttls") {
            case "starttls": smtp.startTLS = true
            case "none":
                guard smtp.username == nil else {
                    throw ConfigurationError(variable: "HITL_SMTP_TLS", reason: "none would send the SMTP password in clear; use starttls")
                }
                smtp.startTLS = false
            default: throw ConfigurationError(variable: "HITL_SMTP_TLS", reason: "must be starttls or none")
            }
            if let caFile = env.optionalString("HITL_SMTP_CA_FILE") {
                guard FileManager.default.isReadableFile(atPath: caFile) else {
                    throw ConfigurationError(variable: "HITL_SMTP_CA_FILE", reason: "is not a readable file")
                }
                smtp.caFile = caFile
            }
            let from = try env.string("HITL_SMTP_FROM")
            guard EmailChannel.isAddress(from) else { throw ConfigurationError(variable: "HITL_SMTP_FROM", reason: "must be an email address") }
            self.smtp = smtp
            mailFrom = from
        }
        slack = try SlackSettings(environment: env)
        maxAttempts = try env.int("HITL_DELIVERY_MAX_ATTEMPTS", default: 6, in: 1...50)
        switch env.optionalString("HITL_REPORT_DELIVERED") ?? "0" {
        case "0": reportDelivered = false
        case "1": reportDelivered = true
        default: throw ConfigurationError(variable: "HITL_REPORT_DELIVERED", reason: "must be 0 or 1")
        }
        retryBackoff = Backoff(base: .milliseconds(try env.int("HITL_DELIVERY_RETRY_BASE_MS", default: 2000, in: 10...3_600_000)), cap: .seconds(600))
        breakerThreshold = try env.int("HITL_DELIVERY_BREAKER_THRESHOLD", default: 5, in: 1...1000)
        breakerCooldown = .seconds(try env.int("HITL_DELIVERY_BREAKER_COOLDOWN_SECONDS", default: 30, in: 1...86_400))
    }
}
