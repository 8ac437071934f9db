import Contracts
import Forms
import Foundation
import ServiceKit

/// Sends each recipient their own message: the notification's text and the form's facts,
/// with that recipient's signed links (each opens a confirmation page; only its button
/// decides) and their link to the approval's web page; plain text and HTML.
struct EmailChannel: NotificationChannel {
    let client: SMTPClient
    let from: String
    var perRecipient: Bool { true }

    func deliver(_ notification: NotificationRequested, to recipient: String?, attempt: Int) async throws {
        guard let recipient, Self.isAddress(recipient) else {
            throw DeliveryFailure("\(recipient ?? "nobody") is not an email address", permanent: true)
        }
        let message = Self.message(for: notification, to: recipient, from: from)
        do {
            try await client.send(from: from, to: [recipient], message: message.rendered())
        } catch let refusal as SMTPClient.Refusal {
            throw DeliveryFailure(refusal.description, permanent: refusal.permanent)
        }
    }

    static func message(for notification: NotificationRequested, to recipient: String, from: String) -> EmailMessage {
        let links = notification.links(for: recipient)
        let rendering = notification.form.map { FormRendering(form: $0, facts: notification.facts ?? [:]) }
        var text = notification.text
        var html = "<p>" + FormRendering.escapeHTML(notification.text.split(separator: "\n").first.map(String.init) ?? "") + "</p>"
        if let rendering {
            let actions = rendering.buttons.compactMap { button in links[button.decision.rawValue].map { "\(FormRendering.text(of: button)): \($0)" } }
            if !actions.isEmpty { text += "\n\n" + actions.joined(separator: "\n") }
            html += rendering.emailHTML(links: links)
        } else {
            html = "<p>" + notification.text.split(separator: "\n").map { FormRendering.escapeHTML(String($0)) }.joined(separator: "<br>") + "</p>"
        }
        if let web = links["web"] {
            text += "\n\nOpen it in your browser: \(web)"
            html += "<p><a href=\"\(FormRendering.escapeHTML(web))\">Open it in your browser</a></p>"
        }
        if !links.isEmpty {
            let note = "These links are yours alone and work until the deadline; each decision link asks you to confirm."
            text += "\n\n" + note
            html += "<p style=\"color:#667\">\(note)</p>"
        }
        let id = Digest.sha256Hex(Array("\(notification.notificationId)|\(recipient)".utf8)).prefix(32)
        return EmailMessage(from: from, to: recipient, subject: notification.subject, text: text, html: html, messageID: String(id))
    }

    static func isAddress(_ text: String) -> Bool {
        text.wholeMatch(of: /[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+/) != nil
    }
}
