import Contracts
import Forms
import Foundation
import Logging
import PostgresNIO
import ServiceKit
import Slack

/// Slack: each recipient gets a direct message from the bot (`chat.postMessage` to their
/// user ID), with the form's facts and buttons (Block Kit) and a button to their web page.
/// The message's channel and timestamp are kept (`slack_messages`), so when the approval is
/// decided, expires or is cancelled each message is replaced (`chat.update`) by who decided,
/// how and when. A request whose approval was already closed is not posted; one posted
/// while it closed is replaced at once. Slack's 429 answers delay the delivery by their
/// `Retry-After`.
struct SlackChannel: NotificationChannel {
    let client: SlackClient
    let users: SlackUsers
    let database: Database
    let logger: Logger
    var perRecipient: Bool { true }

    static let closingReasons: Set<String> = ["approval_decided", "approval_expired", "approval_cancelled"]

    func deliver(_ notification: NotificationRequested, to recipient: String?, attempt: Int) async throws {
        guard let recipient, let user = users.userID(of: recipient) else {
            throw DeliveryFailure("\(recipient ?? "nobody") has no Slack user (HITL_SLACK_USERS)", permanent: true)
        }
        do {
            if let approvalID = notification.approvalId, Self.closingReasons.contains(notification.reason) {
                try await close(approvalID: approvalID, recipient: recipient, text: notification.text)
            } else {
                try await post(notification, to: recipient, user: user)
            }
        } catch let failure as SlackClient.Failure {
            if case .rateLimited(let seconds) = failure {
                throw DeliveryFailure(failure.description, retryAfter: .seconds(seconds))
            }
            throw DeliveryFailure(failure.description, permanent: failure.permanent)
        }
    }

    private func post(_ notification: NotificationRequested, to recipient: String, user: String) async throws {
        if let approvalID = notification.approvalId, try await closedText(of: approvalID) != nil { return }
        let answer = try await client.call(
            "chat.postMessage",
            [
                "channel": .string(user), "text": .string(Self.fallbackText(notification.subject)),
                "blocks": .array(Self.blocks(for: notification, links: notification.links(for: recipient))),
                "unfurl_links": false,
            ])
        guard let approvalID = notification.approvalId, let channel = answer["channel"]?.stringValue, let ts = answer["ts"]?.stringValue else { return }
        _ = try await database.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO slack_messages (approval_id, recipient, notification_id, channel, ts)
                VALUES (\(approvalID), \(recipient), \(notification.notificationId), \(channel), \(ts)) ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        // Closed while this was being posted: replace it now, the closing delivery may have missed it.
        if let text = try await closedText(of: approvalID) {
            try await client.call("chat.update", Self.closedMessage(channel: channel, ts: ts, text: text))
        }
    }

    private func close(approvalID: String, recipient: String, text: String) async throws {
        let messages = try await database.withConnection { connection in
            try await connection.query(
                "INSERT INTO slack_closed (approval_id, text) VALUES (\(approvalID), \(text)) ON CONFLICT DO NOTHING", logger: logger)
            var messages: [(String, String)] = []
            let rows = try await connection.query(
                "SELECT channel, ts FROM slack_messages WHERE approval_id = \(approvalID) AND recipient = \(recipient) ORDER BY ts", logger: logger)
            for try await message in rows.decode((String, String).self) { messages.append(message) }
            return messages
        }
        for (channel, ts) in messages {
            try await client.call("chat.update", Self.closedMessage(channel: channel, ts: ts, text: text))
        }
    }

    private func closedText(of approvalID: String) async throws -> String? {
        try await database.withConnection { connection in
            let rows = try await connection.query("SELECT text FROM slack_closed WHERE approval_id = \(approvalID)", logger: logger)
            for try await text in rows.decode(String.self) { return text }
            return nil
        }
    }

    // MARK: - Messages

    static func blocks(for notification: NotificationRequested, links: [String: String]) -> [JSONValue] {
        var blocks: [JSONValue]
        if let form = notification.form, let approvalID = notification.approvalId {
            blocks = FormRendering(form: form, facts: notification.facts ?? [:]).slackBlocks(approvalID: approvalID)
        } else {
            blocks = [section(notification.text)]
        }
        if let web = links["web"], blocks.count < FormRendering.SlackLimits.blocks {
            blocks.append(
                .object([
                    "type": "context",
                    "elements": .array([.object(["type": "mrkdwn", "text": .string("<\(web)|Open in the browser> · from HITL")])]),
                ]))
        }
        return blocks
    }

    static func closedMessage(channel: String, ts: String, text: String) -> JSONObject {
        ["channel": .string(channel), "ts": .string(ts), "text": .string(fallbackText(text)), "blocks": .array([section(text)])]
    }

    /// The text as mrkdwn, escaped (it carries what the agent wrote).
    private static func section(_ text: String) -> JSONValue {
        .object([
            "type": "section",
            "text": .object(["type": "mrkdwn", "text": .string(FormRendering.slackMrkdwn(text, limit: FormRendering.SlackLimits.sectionText))]),
        ])
    }

    /// The notification text of a message (`text`), which Slack caps at 40,000 characters.
    private static func fallbackText(_ text: String) -> String { String(text.prefix(4000)) }
}
