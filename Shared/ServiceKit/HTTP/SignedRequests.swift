import Foundation
import HTTPTypes

extension Signing {
    /// `verifyWebhook` on a received request's headers.
    public static func verifyWebhook(secret: String, headers: HTTPFields, body: [UInt8], now: Date = Date()) -> Bool {
        verifyWebhook(
            secret: secret, timestamp: headers[HTTPField.Name(webhookTimestampHeader)!],
            signature: headers[HTTPField.Name(webhookSignatureHeader)!], body: body, now: now)
    }
}
