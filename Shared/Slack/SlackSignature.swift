import Foundation
import ServiceKit

/// Slack's request signatures: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`
/// under the app's signing secret, with the Unix time in `X-Slack-Request-Timestamp`.
/// A timestamp more than five minutes from now is refused (a replayed request).
public enum SlackSignature {
    public static let window = 300

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case missing, stale, mismatch
        public var description: String {
            switch self {
            case .missing: "the request is not signed (X-Slack-Signature, X-Slack-Request-Timestamp)"
            case .stale: "the request's timestamp is more than five minutes from now"
            case .mismatch: "the request's signature does not match"
            }
        }
    }

    public static func sign(secret: String, timestamp: Int, body: [UInt8]) -> String {
        "v0=" + Signing.hmacSHA256Hex(secret: secret, message: Array("v0:\(timestamp):".utf8) + body)
    }

    public static func verify(secret: String, timestamp: String?, signature: String?, body: [UInt8], now: Date = Date()) throws(Refusal) {
        guard let timestamp, let signature, let seconds = Int(timestamp) else { throw .missing }
        guard abs(Int(now.timeIntervalSince1970) - seconds) <= window else { throw .stale }
        guard Signing.constantTimeEquals(signature, sign(secret: secret, timestamp: seconds, body: body)) else { throw .mismatch }
    }
}
