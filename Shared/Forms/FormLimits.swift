import Contracts
import Foundation

/// What an approval form and the facts it shows may hold. The form and the facts come from
/// the agent that asks for approval, so every part of them is hostile data: a name becomes
/// an HTML `name` attribute on the approver's page, so names are restricted to
/// `[A-Za-z0-9_.-]{1,64}` (nothing an attribute or a markup parser reads specially); every
/// part is bounded, so one request cannot make a notification larger than Slack, a mail
/// server or a Kafka record takes. The orchestrator refuses a definition that breaks these
/// (422 naming the part), and the approval service refuses such a request again before it
/// renders anything, whoever wrote the record.
public enum FormLimits {
    public static let maxNameLength = 64
    public static let maxTitle = 200
    public static let maxDescription = 2000
    public static let maxFacts = 50
    public static let maxFields = 50
    public static let maxLabel = 200
    public static let maxOptions = 100
    public static let maxOption = 200
    public static let maxButtonLabel = 75
    /// Top-level keys of a workflow's input (each one is a fact an approver may be shown).
    public static let maxInputKeys = 100
    /// The input as JSON: every fact together, well inside a Kafka record and a Slack message.
    public static let maxInputBytes = 64 * 1024

    /// Whether `name` may be used as a field name, a fact key or a `change.` key.
    public static func isValidName(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard (1...maxNameLength).contains(scalars.count) else { return false }
        return scalars.allSatisfy { scalar in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", "_", ".", "-": true
            default: false
            }
        }
    }

    static let nameRule = "1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'"

    /// The first problem with a workflow input shown to approvers, or nil.
    public static func problem(inInput input: JSONObject) -> String? {
        if input.count > maxInputKeys { return "input may have at most \(maxInputKeys) top-level keys" }
        if let key = input.keys.sorted().first(where: { !isValidName($0) }) {
            return "input key \(quoted(key)) is not a valid name (\(nameRule))"
        }
        let size = (try? WireCoding.encode(input).count) ?? 0
        if size > maxInputBytes { return "input is \(size) bytes as JSON; at most \(maxInputBytes)" }
        return nil
    }

    /// The first problem with `form`, whose buttons must be among `outcomes`, or nil.
    public static func problem(in form: ApprovalForm, outcomes: [Decision]) -> String? {
        if !(1...maxTitle).contains(form.title.count) { return "title must be 1 to \(maxTitle) characters" }
        if let description = form.description, description.count > maxDescription {
            return "description may be at most \(maxDescription) characters"
        }
        if let facts = form.facts {
            if facts.count > maxFacts { return "facts may list at most \(maxFacts) input keys" }
            var seen = Set<String>()
            for (index, key) in facts.enumerated() {
                if !isValidName(key) { return "facts[\(index)] \(quoted(key)) is not a valid name (\(nameRule))" }
                if !seen.insert(key).inserted { return "facts[\(index)]: \(key) is listed twice" }
            }
        }
        let fields = form.fields ?? []
        if fields.count > maxFields { return "fields may list at most \(maxFields) fields" }
        var names = Set<String>()
        for (index, field) in fields.enumerated() {
            if !isValidName(field.name) { return "fields[\(index)].name \(quoted(field.name)) is not a valid name (\(nameRule))" }
            if ApprovalForm.reservedFieldNames.contains(field.name) {
                return "fields[\(index)]: the name \(field.name) is reserved (\(ApprovalForm.reservedFieldNames.sorted().joined(separator: ", ")))"
            }
            if field.name.hasPrefix(ApprovalForm.changeFieldPrefix) {
                return "fields[\(index)]: the name \(field.name) starts with \(ApprovalForm.changeFieldPrefix), which the web form uses for changes"
            }
            if !names.insert(field.name).inserted { return "fields[\(index)]: the name \(field.name) is used twice" }
            if !(1...maxLabel).contains(field.label.count) { return "fields[\(index)] (\(field.name)): label must be 1 to \(maxLabel) characters" }
            let options = field.options ?? []
            if field.type == .select, options.isEmpty { return "fields[\(index)] (\(field.name)): a select needs options" }
            if options.count > maxOptions { return "fields[\(index)] (\(field.name)): options may list at most \(maxOptions)" }
            if options.contains(where: { !(1...maxOption).contains($0.count) }) {
                return "fields[\(index)] (\(field.name)): each option must be 1 to \(maxOption) characters"
            }
            if case .string(let text)? = field.default, text.count > 4000 {
                return "fields[\(index)] (\(field.name)): default may be at most 4000 characters"
            }
            if let min = field.min, let max = field.max, min > max { return "fields[\(index)] (\(field.name)): min is above max" }
        }
        var decisions = Set<Decision>()
        for (index, button) in (form.buttons ?? []).enumerated() {
            if !outcomes.contains(button.decision) { return "buttons: \(button.decision.rawValue) is not an outcome the policy allows" }
            if !decisions.insert(button.decision).inserted { return "buttons[\(index)]: \(button.decision.rawValue) has two buttons" }
            if !(1...maxButtonLabel).contains(button.label.count) { return "buttons[\(index)].label must be 1 to \(maxButtonLabel) characters" }
        }
        return nil
    }

    /// `text` in quotes with every scalar outside printable ASCII written as `\u{…}`, so an
    /// error names a hostile string without reproducing it.
    static func quoted(_ text: String) -> String {
        var shown = ""
        for scalar in text.unicodeScalars.prefix(80) {
            if scalar.isASCII, scalar.value >= 0x20, scalar.value < 0x7F, scalar != "\"", scalar != "\\" {
                shown.unicodeScalars.append(scalar)
            } else {
                shown += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return "\"\(shown)\(text.unicodeScalars.count > 80 ? "…" : "")\""
    }
}
