import Contracts
import Crypto
import Foundation

/// Hashes and HMAC signatures used across services.
public enum Signing {
    /// Lower-case hex HMAC-SHA256 of `message` under `secret`.
    public static func hmacSHA256Hex(secret: String, message: some DataProtocol) -> String {
        let key = SymmetricKey(data: Data(secret.utf8))
        return Digest.hex(HMAC<SHA256>.authenticationCode(for: message, using: key))
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

    // MARK: - http task calls

    /// What an http task call's signature covers besides its body: the request line and
    /// which attempt of which step of which workflow it is, and a delivery id that stays the
    /// same when the same call is made again (so a receiver can make it idempotent).
    public struct TaskCall: Sendable, Equatable {
        public var method: String
        public var url: String
        public var workflowID: String
        public var step: String
        public var attempt: Int
        public var deliveryID: String

        public init(method: String, url: String, workflowID: String, step: String, attempt: Int, deliveryID: String) {
            self.method = method
            self.url = url
            self.workflowID = workflowID
            self.step = step
            self.attempt = attempt
            self.deliveryID = deliveryID
        }
    }

    public static let taskWorkflowHeader = "X-HITL-Workflow"
    public static let taskStepHeader = "X-HITL-Step"
    public static let taskAttemptHeader = "X-HITL-Attempt"
    public static let taskDeliveryHeader = "X-HITL-Delivery"

    /// `v2=<hex HMAC-SHA256>` over `v2`, the timestamp, delivery id, method, full URL,
    /// workflow, step (percent-encoded, as in its header) and attempt, one per line, then the
    /// body. Unlike `v1`, a captured call cannot be replayed to another URL, method, step or
    /// attempt. Task calls use their own key (`HITL_TASK_SIGNING_SECRET`), never the
    /// callbacks' one.
    public static func taskCallSignature(secret: String, timestamp: Int, call: TaskCall, body: [UInt8]) -> String {
        let lines = ["v2", "\(timestamp)", call.deliveryID, call.method.uppercased(), call.url, call.workflowID, encodedStep(call.step), "\(call.attempt)"]
        return "v2=" + hmacSHA256Hex(secret: secret, message: Array((lines.joined(separator: "\n") + "\n").utf8) + body)
    }

    /// The headers that sign a task call now.
    public static func taskCallHeaders(secret: String, call: TaskCall, body: [UInt8], now: Date = Date()) -> [(name: String, value: String)] {
        let timestamp = Int(now.timeIntervalSince1970)
        return [
            (webhookTimestampHeader, "\(timestamp)"), (taskDeliveryHeader, call.deliveryID), (taskWorkflowHeader, call.workflowID),
            (taskStepHeader, encodedStep(call.step)), (taskAttemptHeader, "\(call.attempt)"),
            (webhookSignatureHeader, taskCallSignature(secret: secret, timestamp: timestamp, call: call, body: body)),
        ]
    }

    /// A step name as its header carries it: percent-encoded outside the unreserved characters.
    public static func encodedStep(_ step: String) -> String {
        step.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"))
            ?? ""
    }

    /// Base64 with the URL alphabet and no padding (`Base64URL`).
    public static func base64URL(_ bytes: [UInt8]) -> String {
        Base64URL.encode(bytes)
    }

    public static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        Base64URL.decode(text)
    }
}
