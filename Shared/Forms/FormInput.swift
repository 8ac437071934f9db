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
}
