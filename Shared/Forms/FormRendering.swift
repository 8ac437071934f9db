import Contracts
import Foundation

/// Renders one approval form for every channel: HTML for the web, Block Kit for Slack
/// (within Slack's limits), plain text and HTML for email, markdown for chat webhooks.
public struct FormRendering: Sendable {
    public let form: ApprovalForm
    /// The workflow's input; the form's `facts` choose which to show.
    public let facts: JSONObject

    public init(form: ApprovalForm, facts: JSONObject) {
        self.form = form
        self.facts = facts
    }

    /// The form an approval gets when its step names none: the facts, approve and reject.
    public static func defaultForm(title: String, outcomes: [Decision]) -> ApprovalForm {
        let labels: [Decision: (String, ApprovalForm.ButtonStyle)] = [.approve: ("Approve", .primary), .reject: ("Reject", .danger)]
        return ApprovalForm(
            title: title, buttons: outcomes.compactMap { decision in labels[decision].map { .init(decision: decision, label: $0.0, style: $0.1) } })
    }

    /// The facts to show, in order, as label and text.
    public var shownFacts: [(String, String)] {
        let names = form.facts ?? facts.keys.sorted()
        return names.compactMap { name in facts[name].map { (name, Self.text(of: $0)) } }
    }

    public var buttons: [ApprovalForm.Button] {
        form.buttons ?? Self.defaultForm(title: form.title, outcomes: [.approve, .reject]).buttons ?? []
    }

    /// What a button says: the decision it makes, always, then the form's label when that
    /// says something else ("Approve: pay now"). The label is the agent's; a button whose
    /// label reads "Reject" but approves must not look like a rejection.
    public static func text(of button: ApprovalForm.Button) -> String {
        let name = decisionName(button.decision)
        let label = button.label.trimmingCharacters(in: .whitespacesAndNewlines)
        return label.isEmpty || label.caseInsensitiveCompare(name) == .orderedSame ? name : "\(name): \(label)"
    }

    /// How each decision's button looks, whatever the form asks: approving is primary,
    /// rejecting is danger, the others plain.
    public static func style(of decision: Decision) -> ApprovalForm.ButtonStyle {
        switch decision {
        case .approve, .approveWithChanges: .primary
        case .reject: .danger
        case .requestChanges: .plain
        }
    }

    public static func decisionName(_ decision: Decision) -> String {
        switch decision {
        case .approve: "Approve"
        case .reject: "Reject"
        case .approveWithChanges: "Approve with changes"
        case .requestChanges: "Request changes"
        }
    }

    // MARK: - Markdown (chat webhooks)

    public func markdown(links: [String: String] = [:]) -> String {
        var lines = ["**\(Self.escapeMarkdown(form.title))**"]
        if let description = form.description { lines.append(Self.escapeMarkdown(description)) }
        lines.append("")
        lines += shownFacts.map { "- **\(Self.escapeMarkdown($0.0))**: \(Self.escapeMarkdown($0.1))" }
        let actions = buttons.compactMap { button in links[button.decision.rawValue].map { "[\(Self.escapeMarkdown(Self.text(of: button)))](\($0))" } }
        if !actions.isEmpty { lines += ["", actions.joined(separator: " · ")] }
        return lines.joined(separator: "\n")
    }

    // MARK: - Email

    public func plainText(links: [String: String] = [:]) -> String {
        var lines = [form.title]
        if let description = form.description { lines.append(description) }
        lines.append("")
        lines += shownFacts.map { "\($0.0): \($0.1)" }
        for button in buttons {
            if let link = links[button.decision.rawValue] { lines += ["", "\(Self.text(of: button)): \(link)"] }
        }
        return lines.joined(separator: "\n")
    }

    /// An email body: facts and one link per button (each link opens a confirmation page).
    public func emailHTML(links: [String: String] = [:]) -> String {
        var html = "<h1>\(Self.escapeHTML(form.title))</h1>"
        if let description = form.description { html += "<p>\(Self.escapeHTML(description))</p>" }
        html += factsHTML()
        html +=
            "<p>"
            + buttons.compactMap { button in
                links[button.decision.rawValue].map { "<a href=\"\(Self.escapeHTML($0))\">\(Self.escapeHTML(Self.text(of: button)))</a>" }
            }.joined(separator: " ") + "</p>"
        return html
    }

    // MARK: - Web

    /// The form as HTML, posting to `action` with a CSRF token field, a comment box and one
    /// submit button per outcome. When `approve_with_changes` is offered, the shown facts
    /// that are plain values (text, numbers, true/false) can be edited before approving,
    /// as `change.<key>` inputs (`FormInput.changes`).
    public func html(action: String, csrfToken: String) -> String {
        var html = "<form method=\"post\" action=\"\(Self.escapeHTML(action))\">"
        html += "<h1>\(Self.escapeHTML(form.title))</h1>"
        if let description = form.description { html += "<p>\(Self.escapeHTML(description))</p>" }
        html += factsHTML()
        html += "<input type=\"hidden\" name=\"csrf_token\" value=\"\(Self.escapeHTML(csrfToken))\">"
        // A name outside `FormLimits` never reaches the page (the services refuse such
        // forms; this keeps an old or forged one harmless too).
        for field in form.fields ?? [] where FormLimits.isValidName(field.name) {
            let name = Self.escapeHTML(field.name)
            let required = field.required == true ? " required" : ""
            let value = field.default.map { Self.escapeHTML(Self.text(of: $0)) } ?? ""
            html += "<label for=\"\(name)\">\(Self.escapeHTML(field.label))</label>"
            switch field.type {
            case .textarea:
                html += "<textarea id=\"\(name)\" name=\"\(name)\"\(required)>\(value)</textarea>"
            case .select:
                html += "<select id=\"\(name)\" name=\"\(name)\"\(required)>"
                for option in field.options ?? [] {
                    let selected = field.default == .string(option) ? " selected" : ""
                    html += "<option value=\"\(Self.escapeHTML(option))\"\(selected)>\(Self.escapeHTML(option))</option>"
                }
                html += "</select>"
            case .boolean:
                html += "<input type=\"checkbox\" id=\"\(name)\" name=\"\(name)\" value=\"true\"\(field.default == .bool(true) ? " checked" : "")>"
            case .number, .text, .date:
                let type = field.type == .text ? "text" : field.type.rawValue
                let bounds = [
                    field.min.map { field.type == .number ? " min=\"\(FormValidation.display($0))\"" : " minlength=\"\(Int($0))\"" },
                    field.max.map { field.type == .number ? " max=\"\(FormValidation.display($0))\"" : " maxlength=\"\(Int($0))\"" },
                ]
                .compactMap { $0 }.joined()
                html += "<input type=\"\(type)\" id=\"\(name)\" name=\"\(name)\" value=\"\(value)\"\(bounds)\(required)>"
            }
        }
        if buttons.contains(where: { $0.decision == .approveWithChanges }) { html += changesHTML() }
        html += "<label for=\"comment\">Comment</label><textarea id=\"comment\" name=\"comment\" maxlength=\"4000\"></textarea>"
        for button in buttons {
            // Rejecting needs no fields filled in; sending back needs only the comment.
            let skipChecks = button.decision == .reject || button.decision == .requestChanges ? " formnovalidate" : ""
            html +=
                "<button type=\"submit\" name=\"decision\" value=\"\(button.decision.rawValue)\" class=\"\(Self.style(of: button.decision).rawValue)\"\(skipChecks)>\(Self.escapeHTML(Self.text(of: button)))</button>"
        }
        return html + "</form>"
    }

    /// Inputs holding the changeable facts' current values, for `approve_with_changes`.
    private func changesHTML() -> String {
        let names = form.facts ?? facts.keys.sorted()
        let inputs = names.compactMap { key -> String? in
            guard FormLimits.isValidName(key) else { return nil }
            let name = Self.escapeHTML(ApprovalForm.changeFieldPrefix + key)
            let input: String
            switch facts[key] {
            case .string(let text)?:
                input = "<input type=\"text\" id=\"\(name)\" name=\"\(name)\" value=\"\(Self.escapeHTML(text))\">"
            case .number(let number)?:
                input = "<input type=\"number\" step=\"any\" id=\"\(name)\" name=\"\(name)\" value=\"\(FormValidation.display(number))\">"
            case .bool(let flag)?:
                input =
                    "<select id=\"\(name)\" name=\"\(name)\">"
                    + [true, false].map { "<option value=\"\($0)\"\($0 == flag ? " selected" : "")>\($0)</option>" }.joined() + "</select>"
            default:
                return nil
            }
            return "<label for=\"\(name)\">\(Self.escapeHTML(key))</label>" + input
        }
        guard !inputs.isEmpty else { return "" }
        return "<fieldset><legend>Approve with changes: edit what should change</legend>" + inputs.joined() + "</fieldset>"
    }

    // MARK: - Slack

    /// Slack's limits the Block Kit rendering keeps to.
    public enum SlackLimits {
        public static let blocks = 50
        public static let headerText = 150
        public static let sectionText = 3000
        public static let sectionFields = 10
        public static let fieldText = 2000
        public static let buttonText = 75
        public static let buttonValue = 2000
        public static let actionElements = 25
    }

    /// Block Kit blocks: a header, the description, the facts (ten to a section), and the
    /// buttons; each button's value names the approval and the decision. Fields that must
    /// be filled in are asked in a modal (`views.open`), not here.
    public func slackBlocks(approvalID: String) -> [JSONValue] {
        var blocks: [JSONValue] = [
            .object(["type": "header", "text": .object(["type": "plain_text", "text": .string(Self.cut(form.title, SlackLimits.headerText))])])
        ]
        if let description = form.description {
            blocks.append(
                .object([
                    "type": "section", "text": .object(["type": "mrkdwn", "text": .string(Self.slackMrkdwn(description, limit: SlackLimits.sectionText))]),
                ]))
        }
        let facts = shownFacts.map { label, text -> JSONValue in
            .object([
                "type": "mrkdwn",
                "text": .string("*" + Self.slackMrkdwn(label, limit: 200) + "*\n" + Self.slackMrkdwn(text, limit: SlackLimits.fieldText - 210)),
            ])
        }
        // Room for the header, the description and the actions.
        let factSections = SlackLimits.blocks - blocks.count - 1
        for start in stride(from: 0, to: facts.count, by: SlackLimits.sectionFields).prefix(factSections) {
            blocks.append(.object(["type": "section", "fields": .array(Array(facts[start..<min(start + SlackLimits.sectionFields, facts.count)]))]))
        }
        let elements = buttons.prefix(SlackLimits.actionElements).map { button -> JSONValue in
            var element: JSONObject = [
                "type": "button", "action_id": .string("hitl_\(button.decision.rawValue)"),
                "text": .object(["type": "plain_text", "text": .string(Self.cut(Self.text(of: button), SlackLimits.buttonText))]),
                "value": .string(Self.cut("\(approvalID):\(button.decision.rawValue)", SlackLimits.buttonValue)),
            ]
            switch Self.style(of: button.decision) {
            case .primary: element["style"] = "primary"
            case .danger: element["style"] = "danger"
            case .plain: break
            }
            return .object(element)
        }
        if !elements.isEmpty { blocks.append(.object(["type": "actions", "block_id": .string("hitl_decision"), "elements": .array(elements)])) }
        return blocks
    }

    // MARK: - Text helpers

    static func text(of value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .null: ""
        default: (try? String(decoding: WireCoding.encode(value), as: UTF8.self)) ?? ""
        }
    }

    static func cut(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    /// `text` safe inside HTML text and quoted attribute values. Works per Unicode scalar,
    /// not per `Character`: a quote followed by a combining mark is one `Character` that is
    /// not equal to `"`, yet the browser's parser still sees the quote.
    public static func escapeHTML(_ text: String) -> String {
        escape(text) { scalar in
            switch scalar {
            case "\"": "&quot;"
            case "'": "&#39;"
            default: markupEntity(scalar)
            }
        }
    }

    /// `text` as literal markdown: every character markdown reads specially gets a
    /// backslash, per Unicode scalar (see `escapeHTML`).
    public static func escapeMarkdown(_ text: String) -> String {
        escape(text) { scalar in markdownSpecials.contains(scalar) ? "\\" + String(scalar) : nil }
    }

    /// `text` as literal Slack mrkdwn: Slack reads `&`, `<` and `>` as control characters
    /// (links, mentions), so they become entities, per Unicode scalar.
    public static func escapeSlack(_ text: String) -> String {
        escape(text, markupEntity)
    }

    private static let markdownSpecials = Set("\\`*_[]()#<>|!~&".unicodeScalars)

    private static func markupEntity(_ scalar: Unicode.Scalar) -> String? {
        switch scalar {
        case "&": "&amp;"
        case "<": "&lt;"
        case ">": "&gt;"
        default: nil
        }
    }

    /// `text` with each Unicode scalar for which `replacement` answers replaced by its answer.
    private static func escape(_ text: String, _ replacement: (Unicode.Scalar) -> String?) -> String {
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if let replaced = replacement(scalar) {
                escaped.append(contentsOf: replaced.unicodeScalars)
            } else {
                escaped.append(scalar)
            }
        }
        return String(escaped)
    }

    /// Escaped mrkdwn of at most `limit` characters: the text is shortened before it is
    /// escaped, so an entity is never cut in half.
    public static func slackMrkdwn(_ text: String, limit: Int) -> String {
        var kept = text.count
        while true {
            let shortened = kept < text.count
            let escaped = escapeSlack(String(text.prefix(kept))) + (shortened ? "…" : "")
            if escaped.count <= limit || kept == 0 { return escaped }
            kept -= max(1, escaped.count - limit + 1)
            kept = max(0, kept)
        }
    }

    /// The shown facts as an HTML table, escaped.
    public func factsHTML() -> String {
        "<table>" + shownFacts.map { "<tr><th>\(Self.escapeHTML($0.0))</th><td>\(Self.escapeHTML($0.1))</td></tr>" }.joined() + "</table>"
    }
}
