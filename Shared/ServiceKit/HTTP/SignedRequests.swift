import Foundation
import HTTPTypes

extension Signing {
    /// `verifyWebhook` on a received request's headers.
    public static func verifyWebhook(secret: String, headers: HTTPFields, body: [UInt8], now: Date = Date()) -> Bool {
        verifyWebhook(
            secret: secret, timestamp: headers[HTTPField.Name(webhookTimestampHeader)!],
            signature: headers[HTTPField.Name(webhookSignatureHeader)!], body: body, now: now)
    }

    /// What a receiver of an http task call checks: the `v2` signature over the request as it
    /// arrived (`method`, the full `url` it was called at) and the call's headers, within the
    /// five-minute window. Answers the call's claims, or nil when anything does not match.
    public static func verifyTaskCall(secret: String, method: String, url: String, headers: HTTPFields, body: [UInt8], now: Date = Date()) -> TaskCall? {
        func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
        guard let timestamp = header(webhookTimestampHeader).flatMap(Int.init), abs(Int(now.timeIntervalSince1970) - timestamp) <= webhookWindowSeconds,
            let signature = header(webhookSignatureHeader), let delivery = header(taskDeliveryHeader), let workflow = header(taskWorkflowHeader),
            let step = header(taskStepHeader)?.removingPercentEncoding, let attempt = header(taskAttemptHeader).flatMap(Int.init)
        else { return nil }
        let call = TaskCall(method: method, url: url, workflowID: workflow, step: step, attempt: attempt, deliveryID: delivery)
        return constantTimeEquals(signature, taskCallSignature(secret: secret, timestamp: timestamp, call: call, body: body)) ? call : nil
    }
}
