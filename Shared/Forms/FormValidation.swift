import Contracts
import Foundation

/// Checks submitted field values against the form, whatever the channel they came from.
public enum FormValidation {
    /// The values with defaults filled in, or the problems found (one per field).
    public static func check(_ values: JSONObject, against form: ApprovalForm) -> Result<JSONObject, FormProblems> {
        var problems: [String] = []
        var accepted: JSONObject = [:]
        let fields = form.fields ?? []
        let known = Set(fields.map(\.name))
        for name in values.keys.sorted() where !known.contains(name) {
            problems.append("\(name) is not a field of this form")
        }
        for field in fields {
            let value = values[field.name] ?? field.default
            guard let value, value != .null, value != .string("") else {
                if field.required == true { problems.append("\(field.name) is required") }
                continue
            }
            if let problem = problem(with: value, for: field) {
                problems.append("\(field.name) \(problem)")
            } else {
                accepted[field.name] = value
            }
        }
        return problems.isEmpty ? .success(accepted) : .failure(FormProblems(problems: problems))
    }

    private static func problem(with value: JSONValue, for field: ApprovalForm.Field) -> String? {
        switch (field.type, value) {
        case (.number, .number(let number)):
            if let min = field.min, number < min { return "must be at least \(display(min))" }
            if let max = field.max, number > max { return "must be at most \(display(max))" }
            return nil
        case (.text, .string(let text)), (.textarea, .string(let text)):
            if let min = field.min, Double(text.count) < min { return "must be at least \(display(min)) characters" }
            if text.count > Int(field.max ?? 4000) { return "must be at most \(display(field.max ?? 4000)) characters" }
            return nil
        case (.boolean, .bool):
            return nil
        case (.select, .string(let choice)):
            return (field.options ?? []).contains(choice) ? nil : "must be one of \((field.options ?? []).joined(separator: ", "))"
        case (.date, .string(let text)):
            return text.wholeMatch(of: /\d{4}-\d{2}-\d{2}/) != nil ? nil : "must be a date (YYYY-MM-DD)"
        default:
            return "must be a \(field.type.rawValue)"
        }
    }

    static func display(_ number: Double) -> String {
        number.rounded() == number ? String(Int(number)) : String(number)
    }
}

/// Why submitted values do not fit the form.
public struct FormProblems: Error, Equatable, CustomStringConvertible {
    public let problems: [String]
    public var description: String { problems.joined(separator: "; ") }
}
