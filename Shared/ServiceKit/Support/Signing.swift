import Crypto
import Foundation

/// Hashes and HMAC signatures used across services.
public enum Signing {
    /// Lower-case hex SHA-256 of `bytes`.
    public static func sha256Hex(_ bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Lower-case hex HMAC-SHA256 of `message` under `secret`.
    public static func hmacSHA256Hex(secret: String, message: some DataProtocol) -> String {
        let key = SymmetricKey(data: Data(secret.utf8))
        return HMAC<SHA256>.authenticationCode(for: message, using: key).map { String(format: "%02x", $0) }.joined()
    }

    /// Compares two signatures in constant time (for equal lengths).
    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// The signed webhook scheme: `X-HITL-Signature: v1=<hex HMAC-SHA256 of "v1:<timestamp>:<body>">`
    /// with the Unix time in `X-HITL-Timestamp`; receivers should refuse timestamps older
    /// than five minutes, which makes a captured request useless later.
    public static func webhookSignature(secret: String, timestamp: Int, body: [UInt8]) -> String {
        "v1=" + hmacSHA256Hex(secret: secret, message: Array("v1:\(timestamp):".utf8) + body)
    }

    /// The header that carries the signature.
    public static let webhookSignatureHeader = "X-HITL-Signature"
    /// The header that carries the signed Unix time.
    public static let webhookTimestampHeader = "X-HITL-Timestamp"
    /// How far a receiver lets the signed time stray from its clock, in seconds.
    public static let webhookWindowSeconds = 300

    /// The two headers that sign `body` now: the timestamp and the signature over it.
    public static func webhookHeaders(secret: String, body: [UInt8], now: Date = Date()) -> [(name: String, value: String)] {
        let timestamp = Int(now.timeIntervalSince1970)
        return [
            (webhookTimestampHeader, "\(timestamp)"),
            (webhookSignatureHeader, webhookSignature(secret: secret, timestamp: timestamp, body: body)),
        ]
    }

    /// What a receiver checks: a timestamp within the window and a signature that matches
    /// the body, compared in constant time. Nil headers (missing) fail.
    public static func verifyWebhook(secret: String, timestamp: String?, signature: String?, body: [UInt8], now: Date = Date()) -> Bool {
        guard let timestamp = timestamp.flatMap(Int.init), let signature,
            abs(Int(now.timeIntervalSince1970) - timestamp) <= webhookWindowSeconds
        else { return false }
        return constantTimeEquals(signature, webhookSignature(secret: secret, timestamp: timestamp, body: body))
    }

    /// Base64 with the URL alphabet and no padding (RFC 4648 §5), as in JWTs and links.
    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
