import Contracts
import Foundation

/// Checks submitted field values against the form, whatever the channel they came from.
public enum FormValidation {
    /// The values with defaults filled in, or the problems found (one per field).
    public static func check(_ values: JSONObject, against form: ApprovalForm) -> Result<JSONObject, FormProblems> {
        var problems = FormProblems()
        var accepted: JSONObject = [:]
        let fields = form.fields ?? []
        let known = Set(fields.map(\.name))
        for name in values.keys.sorted() where !known.contains(name) {
            problems.add("\(name) is not a field of this form")
        }
        for field in fields {
            let value = values[field.name] ?? field.default
            guard let value, value != .null, value != .string("") else {
                if field.required == true { problems.add("\(field.name) is required", field: field.name) }
                continue
            }
            if let problem = problem(with: value, for: field) {
                problems.add("\(field.name) \(problem)", field: field.name)
            } else {
                accepted[field.name] = value
            }
        }
        return problems.problems.isEmpty ? .success(accepted) : .failure(problems)
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

/// Why submitted values do not fit the form: each problem in words, and for the problems
/// about one of the form's fields, which (so a channel can show it beside the field).
public struct FormProblems: Error, Equatable, CustomStringConvertible {
    public private(set) var problems: [String] = []
    /// The problem with each field that has one.
    public private(set) var byField: [String: String] = [:]

    public init(problems: [String] = []) {
        self.problems = problems
    }

    mutating func add(_ problem: String, field: String? = nil) {
        problems.append(problem)
        if let field { byField[field] = problem }
    }

    public var description: String { problems.joined(separator: "; ") }
}
