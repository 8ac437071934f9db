import Contracts
import Foundation

/// The form's fields as a Slack modal (`views.open`), for a decision that needs them, and
/// the submitted modal's values back as text for `FormInput`. Each field is an input block
/// whose `block_id` is the field's name, so Slack can show a problem under its field.
extension FormRendering {
    public enum SlackModalLimits {
        public static let title = 24
        public static let blocks = 100
        public static let label = 2000
        public static let optionText = 75
        public static let optionValue = 150
        public static let options = 100
        public static let privateMetadata = 3000
    }

    public static let slackModalCallbackID = "hitl_decision_form"

    public func slackModal(approvalID: String, decision: Decision, submitLabel: String) -> JSONValue {
        var blocks: [JSONValue] = []
        if let description = form.description {
            blocks.append(
                .object([
                    "type": "section", "text": .object(["type": "mrkdwn", "text": .string(Self.slackMrkdwn(description, limit: SlackLimits.sectionText))]),
                ]))
        }
        for field in (form.fields ?? []).filter({ FormLimits.isValidName($0.name) }).prefix(SlackModalLimits.blocks - 2) {
            blocks.append(
                .object([
                    "type": "input", "block_id": .string(field.name), "optional": .bool(field.required != true),
                    "label": .object(["type": "plain_text", "text": .string(Self.cut(field.label, SlackModalLimits.label))]),
                    "element": Self.slackElement(for: field),
                ]))
        }
        blocks.append(
            .object([
                "type": "input", "block_id": "comment", "optional": true,
                "label": .object(["type": "plain_text", "text": "Comment"]),
                "element": .object(["type": "plain_text_input", "action_id": "value", "multiline": true, "max_length": 3000]),
            ]))
        return .object([
            "type": "modal", "callback_id": .string(Self.slackModalCallbackID),
            "title": .object(["type": "plain_text", "text": .string(Self.cut(form.title, SlackModalLimits.title))]),
            "submit": .object(["type": "plain_text", "text": .string(Self.cut(submitLabel, SlackModalLimits.title))]),
            "close": .object(["type": "plain_text", "text": "Cancel"]),
            "private_metadata": .string("\(approvalID):\(decision.rawValue)"),
            "blocks": .array(blocks),
        ])
    }

    private static func slackElement(for field: ApprovalForm.Field) -> JSONValue {
        var element: JSONObject = ["action_id": "value"]
        let initial = field.default.map(text(of:))
        switch field.type {
        case .text, .textarea:
            element["type"] = "plain_text_input"
            element["multiline"] = .bool(field.type == .textarea)
            if let min = field.min { element["min_length"] = .number(min) }
            element["max_length"] = .number(field.max ?? 3000)
            if let initial { element["initial_value"] = .string(initial) }
        case .number:
            element["type"] = "number_input"
            element["is_decimal_allowed"] = true
            if let min = field.min { element["min_value"] = .string(FormValidation.display(min)) }
            if let max = field.max { element["max_value"] = .string(FormValidation.display(max)) }
            if let initial { element["initial_value"] = .string(initial) }
        case .select:
            element["type"] = "static_select"
            let options = (field.options ?? []).prefix(SlackModalLimits.options).map(option)
            element["options"] = .array(options)
            if let initial, (field.options ?? []).contains(initial) { element["initial_option"] = option(initial) }
        case .boolean:
            element["type"] = "checkboxes"
            element["options"] = .array([option("true", label: "Yes")])
            if field.default == .bool(true) { element["initial_options"] = .array([option("true", label: "Yes")]) }
        case .date:
            element["type"] = "datepicker"
            if let initial { element["initial_date"] = .string(initial) }
        }
        return .object(element)
    }

    private static func option(_ value: String) -> JSONValue { option(value, label: value) }

    private static func option(_ value: String, label: String) -> JSONValue {
        .object([
            "text": .object(["type": "plain_text", "text": .string(cut(label, SlackModalLimits.optionText))]),
            "value": .string(cut(value, SlackModalLimits.optionValue)),
        ])
    }

    /// The submitted values (`view.state.values`) as text by block id: a text or number
    /// input's value, a select's option, a date, a checked box as `true`. Unset inputs are absent.
    public static func slackModalValues(_ state: JSONObject) -> [String: String] {
        var values: [String: String] = [:]
        for (blockID, actions) in state {
            guard let input = actions.objectValue?["value"]?.objectValue else { continue }
            if let text = input["value"]?.stringValue {
                values[blockID] = text
            } else if let option = input["selected_option"]?.objectValue?["value"]?.stringValue {
                values[blockID] = option
            } else if let date = input["selected_date"]?.stringValue {
                values[blockID] = date
            } else if case .array(let selected)? = input["selected_options"], !selected.isEmpty {
                values[blockID] = "true"
            }
        }
        return values
    }
}
