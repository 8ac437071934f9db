import Contracts
import Foundation
import ServiceKit
import Slack
import Testing

@testable import NotifierService

/// What the channels put on the wire, checked without a server: the MIME message, SMTP's
/// dot-stuffing and reply parsing, Slack's request signatures, each recipient's own links.
@Suite struct ChannelFormattingTests {
    static let notification = NotificationRequested(
        reason: "approval_requested", notificationId: "approval-requested:a-1", workflowId: "wf-1", approvalId: "a-1",
        recipients: ["ann@bank.example", "bob@bank.example"], subject: "Approval needed: wire_transfer — 6 000 €",
        text: "agent asks for approval.\n.hidden line\nDecide before tomorrow.",
        links: [
            "approval": "http://x/v1/approvals/a-1", "web:ann@bank.example": "http://x/ui/sign-in/ann", "approve:ann@bank.example": "http://x/ui/links/ann-yes",
            "reject:ann@bank.example": "http://x/ui/links/ann-no", "web:bob@bank.example": "http://x/ui/sign-in/bob",
        ],
        form: ApprovalForm(title: "Wire transfer", facts: ["amount"]), facts: ["amount": 6000])

    @Test func eachRecipientGetsOnlyTheirOwnLinks() {
        #expect(
            Self.notification.links(for: "ann@bank.example") == [
                "web": "http://x/ui/sign-in/ann", "approve": "http://x/ui/links/ann-yes", "reject": "http://x/ui/links/ann-no",
            ])
        #expect(Self.notification.links(for: "bob@bank.example") == ["web": "http://x/ui/sign-in/bob"])
        #expect(Self.notification.links(for: "mallory@bank.example").isEmpty)
    }

    @Test func theMailIsMultipartWithBase64PartsAndAnEncodedSubject() throws {
        let message = EmailChannel.message(for: Self.notification, to: "ann@bank.example", from: "hitl@bank.example")
        #expect(message.text.contains("Approve: http://x/ui/links/ann-yes") && message.text.contains("Open it in your browser: http://x/ui/sign-in/ann"))
        #expect(message.html.contains("<a href=\"http://x/ui/links/ann-no\">Reject</a>") && !message.text.contains("bob"))
        let rendered = message.rendered()
        let lines = rendered.components(separatedBy: "\r\n")
        #expect(lines.contains("Subject: =?UTF-8?B?\(Data("Approval needed: wire_transfer — 6 000 €".utf8).base64EncodedString())?="))
        #expect(lines.contains { $0.hasPrefix("Content-Type: multipart/alternative; boundary=") })
        #expect(lines.filter { $0.hasPrefix("Content-Transfer-Encoding: base64") }.count == 2)
        #expect(lines.allSatisfy { $0.utf8.count <= 998 })  // RFC 5322's line limit
        // The body parts are base64 lines of at most 76 characters that decode to the text.
        let textPart = try #require(
            rendered.components(separatedBy: "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n").last?
                .components(separatedBy: "\r\n--").first)
        #expect(textPart.components(separatedBy: "\r\n").allSatisfy { $0.count <= 76 })
        #expect(Data(base64Encoded: textPart.replacingOccurrences(of: "\r\n", with: "")).map { String(decoding: $0, as: UTF8.self) } == message.text)
        #expect(EmailMessage.encodedHeader("line\r\nBcc: evil@x") == "line  Bcc: evil@x")  // no header injection
    }

    @Test func smtpDataIsDotStuffedAndRepliesSpanLines() {
        #expect(SMTPClient.dotStuffed("a\n.b\r\n..c\nd") == "a\r\n..b\r\n...c\r\nd")
        #expect(EmailChannel.isAddress("ann@bank.example") && !EmailChannel.isAddress("ann") && !EmailChannel.isAddress("a b@x.y"))
    }

    @Test func slackSignaturesAreCheckedForTimeAndBody() throws {
        let body = Array("payload=%7B%7D".utf8)
        let now = Date()
        let stamp = Int(now.timeIntervalSince1970)
        let signature = SlackSignature.sign(secret: "slack-signing-secret-0123", timestamp: stamp, body: body)
        #expect(signature.hasPrefix("v0=") && signature.count == 67)
        try SlackSignature.verify(secret: "slack-signing-secret-0123", timestamp: "\(stamp)", signature: signature, body: body, now: now)
        #expect(throws: SlackSignature.Refusal.mismatch) {
            try SlackSignature.verify(secret: "slack-signing-secret-0123", timestamp: "\(stamp)", signature: signature, body: body + [0x20], now: now)
        }
        #expect(throws: SlackSignature.Refusal.stale) {
            try SlackSignature.verify(
                secret: "slack-signing-secret-0123", timestamp: "\(stamp)", signature: signature, body: body, now: now.addingTimeInterval(301))
        }
        #expect(throws: SlackSignature.Refusal.missing) { try SlackSignature.verify(secret: "s", timestamp: nil, signature: signature, body: body) }
    }

    @Test func slackMessagesCarryTheButtonsAndTheRecipientsWebLink() throws {
        let blocks = SlackChannel.blocks(for: Self.notification, links: Self.notification.links(for: "ann@bank.example"))
        let text = String(describing: blocks)
        #expect(text.contains("a-1:approve") && text.contains("a-1:reject"))
        #expect(text.contains("<http://x/ui/sign-in/ann|Open in the browser>"))
        let closed = SlackChannel.closedMessage(channel: "D1", ts: "1.2", text: "Approved by bob via slack")
        #expect(closed["ts"] == "1.2" && String(describing: closed["blocks"]).contains("Approved by bob via slack"))
    }
}

/// The personal links are credentials: sealed on Kafka, and on the shared webhook only when
/// the deployment asks for them.
@Suite struct LinkSealTests {
    @Test func sealedLinksOpenOnlyUnderTheSameKeyAndUnchanged() throws {
        let links = ["web:ann@bank.example": "https://hitl.example/ui/sign-in/abc", "approve:ann@bank.example": "https://hitl.example/ui/links/def"]
        let seal = LinkSeal(secret: String(repeating: "k", count: 32))
        let sealed = try seal.seal(links)
        #expect(sealed.hasPrefix("v1.") && !sealed.contains("sign-in") && !sealed.contains("hitl.example"))
        #expect(try seal.open(sealed) == links)
        #expect(throws: (any Error).self) { try LinkSeal(secret: String(repeating: "x", count: 32)).open(sealed) }
        var tampered = Array(sealed)
        tampered[10] = tampered[10] == "A" ? "B" : "A"
        #expect(throws: (any Error).self) { try seal.open(String(tampered)) }
    }

    @Test func theSharedWebhookGetsPersonalLinksOnlyWhenAskedTo() throws {
        let notification = NotificationRequested(
            reason: "approval_requested", notificationId: "n", workflowId: "w", approvalId: "a", recipients: ["ann@bank.example"], subject: "s", text: "t",
            links: ["decision": "https://hitl.example/v1/approvals/a/decision", "web:ann@bank.example": "https://hitl.example/ui/sign-in/abc"],
            sealedLinks: "v1.xyz")
        let url = try #require(URL(string: "http://127.0.0.1:1/hook"))
        let egress = EgressClient(policy: .denyAll)
        let plain = WebhookChannel(url: url, secret: "secret-0123456789", includeLinks: false, egress: egress).payload(notification)
        #expect(plain.links == ["decision": "https://hitl.example/v1/approvals/a/decision"] && plain.sealedLinks == nil)
        let asked = WebhookChannel(url: url, secret: "secret-0123456789", includeLinks: true, egress: egress).payload(notification)
        #expect(asked.links["web:ann@bank.example"] != nil && asked.sealedLinks == nil)
    }
}
