import Contracts
import Foundation

/// Values as browsers and Slack modals submit them (text only), typed by the form's fields
/// so that `FormValidation` checks them like JSON from the API: numbers become numbers, a
/// checkbox becomes `true` (an unchecked one, absent, becomes `false`), empty text is absent.
/// Text that is not a number stays text, so validation names the field and the problem.
public enum FormInput {
    public static func typed(_ submitted: [String: String], for form: ApprovalForm) -> JSONObject {
        var values: JSONObject = [:]
        let fields = Dictionary((form.fields ?? []).map { ($0.name, $0) }) { first, _ in first }
        for (name, text) in submitted {
            guard let field = fields[name] else {
                values[name] = .string(text)
                continue
            }
            switch field.type {
            case .number:
                values[name] = text.isEmpty ? nil : Double(text.trimmingCharacters(in: .whitespaces)).map(JSONValue.number) ?? .string(text)
            case .boolean:
                values[name] = .bool(text == "true" || text == "on")
            case .text, .textarea, .select, .date:
                values[name] = text.isEmpty ? nil : .string(text)
            }
        }
        for field in form.fields ?? [] where field.type == .boolean && submitted[field.name] == nil {
            values[field.name] = .bool(false)
        }
        return values
    }

    /// The changes an `approve_with_changes` from the web form asks for: each submitted
    /// `change.<key>` input of a key of `input` whose value it replaces, typed like that value
    /// (a number stays a number); inputs left as they were are no change.
    public static func changes(_ submitted: [String: String], to input: JSONObject) -> Result<JSONObject, FormProblems> {
        var changes: JSONObject = [:]
        var problems: [String] = []
        for (name, text) in submitted where name.hasPrefix(ApprovalForm.changeFieldPrefix) {
            let key = String(name.dropFirst(ApprovalForm.changeFieldPrefix.count))
            let text = text.trimmingCharacters(in: .whitespaces)
            let value: JSONValue
            switch input[key] {
            case .number(let current)?:
                guard let number = Double(text) else {
                    problems.append("\(key) must be a number")
                    continue
                }
                value = .number(number)
                if number == current { continue }
            case .bool(let current)?:
                guard text == "true" || text == "false" else {
                    problems.append("\(key) must be true or false")
                    continue
                }
                value = .bool(text == "true")
                if value == .bool(current) { continue }
            case .string(let current)?:
                value = .string(text)
                if text == current { continue }
            default:
                problems.append("\(key) is not an input this form can change")
                continue
            }
            changes[key] = value
        }
        if !problems.isEmpty { return .failure(FormProblems(problems: problems.sorted())) }
        return .success(changes)
    }
}
