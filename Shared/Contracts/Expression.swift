/// The small, safe condition language of `when` and `auto_approve_when`.
///
///     input.amount < 5000 and input.currency in ["EUR", "USD"]
///     not (outputs.check.risk == "high") or input.override == true
///
/// - Values: numbers, 'single' or "double" quoted strings, `true`, `false`, `null`,
///   lists `[a, b]`, and paths rooted at `input` (the workflow's input) or `outputs`
///   (earlier steps' outputs by step name): `outputs.check.score`, `input.items[0]`. Other
///   users name their own roots (the MCP gateway's policies: `args`, `tool`, `caller`).
/// - Operators: `==`, `!=`, `<`, `<=`, `>`, `>=`, `in` (list membership or substring),
///   `not in`, `and`, `or`, `not`, parentheses.
/// - A path that leads nowhere is `null`; ordering comparisons hold only between two numbers
///   or two strings; `and`, `or`, `not` treat anything but `true` as false. Evaluation never
///   fails and never runs code.
/// - Hostile input is refused at parse time: at most `maxLength` characters, `maxDepth`
///   levels of nesting, `maxListItems` list items, and finite numbers.
public struct Expression: Sendable, Equatable {
    static let maxLength = 2000
    static let maxDepth = 32
    static let maxListItems = 100
    /// The roots of a workflow definition's conditions.
    public static let workflowRoots: Set<String> = ["input", "outputs"]

    indirect enum Node: Sendable, Equatable {
        case literal(JSONValue)
        case path([PathElement])
        case list([Node])
        case not(Node)
        case and(Node, Node)
        case or(Node, Node)
        case compare(Comparison, Node, Node)
    }

    enum PathElement: Sendable, Equatable {
        case member(String)
        case index(Int)
    }

    enum Comparison: String, Sendable {
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case contains = "in", notContains = "not in"
    }

    public let source: String
    let root: Node

    /// Parses `source`, whose paths may start with the names in `roots`; throws
    /// `ExpressionError` saying what is wrong and where.
    public init(_ source: String, roots: Set<String> = Expression.workflowRoots) throws {
        guard source.count <= Self.maxLength else {
            throw ExpressionError("is longer than \(Self.maxLength) characters")
        }
        var parser = Parser(tokens: try Lexer.tokens(of: source), roots: roots)
        self.source = source
        self.root = try parser.parseAll()
    }

    /// Whether the expression holds for `scope` (`input` and `outputs`).
    public func holds(in scope: JSONObject) -> Bool {
        Self.evaluate(root, in: scope) == .bool(true)
    }

    /// The value of the expression in `scope`.
    public func value(in scope: JSONObject) -> JSONValue {
        Self.evaluate(root, in: scope)
    }

    /// Whether the expression surely does not hold in `scope`. Unlike `holds`, an answer that
    /// rests on something unknown is not "no": a path that leads nowhere, or an ordering of
    /// values that are not both numbers or both strings, makes the comparison unknown, and
    /// unknown propagates through `and`, `or` and `not` (Kleene's logic). A gate applies
    /// unless its condition surely fails, so `"amount": "900000"` or a missing amount cannot
    /// slip under `input.amount > 5000`.
    public func surelyFails(in scope: JSONObject) -> Bool {
        Self.decide(root, in: scope) == false
    }

    /// true, false, or nil for unknown.
    private static func decide(_ node: Node, in scope: JSONObject) -> Bool? {
        switch node {
        case .not(let operand):
            return decide(operand, in: scope).map { !$0 }
        case .and(let left, let right):
            let (a, b) = (decide(left, in: scope), decide(right, in: scope))
            if a == false || b == false { return false }
            return a == true && b == true ? true : nil
        case .or(let left, let right):
            let (a, b) = (decide(left, in: scope), decide(right, in: scope))
            if a == true || b == true { return true }
            return a == false && b == false ? false : nil
        case .compare(let comparison, let left, let right):
            let (a, b) = (evaluate(left, in: scope), evaluate(right, in: scope))
            if case .path = left, a == .null { return nil }
            if case .path = right, b == .null { return nil }
            switch (comparison, a, b) {
            case (.less, .number, .number), (.lessOrEqual, .number, .number), (.greater, .number, .number), (.greaterOrEqual, .number, .number),
                (.less, .string, .string), (.lessOrEqual, .string, .string), (.greater, .string, .string), (.greaterOrEqual, .string, .string):
                break
            case (.less, _, _), (.lessOrEqual, _, _), (.greater, _, _), (.greaterOrEqual, _, _):
                return nil
            case (.contains, _, .array(let items)), (.notContains, _, .array(let items)):
                // Membership among values of another kind says nothing (a "true" among booleans).
                if !items.isEmpty, !items.contains(where: { kind(of: $0) == kind(of: a) }) { return nil }
            case (.contains, .string, .string), (.notContains, .string, .string):
                break
            case (.contains, _, _), (.notContains, _, _):
                return nil
            case (.equal, _, _), (.notEqual, _, _):
                // `args.force == true` does not surely fail for "true" or 1, which a lax
                // reader of the value may still take as true.
                if kind(of: a) != kind(of: b) { return nil }
            }
            return compare(comparison, a, b)
        case .literal, .path, .list:
            switch evaluate(node, in: scope) {
            case .bool(let value): return value
            default: return nil
            }
        }
    }

    private enum Kind { case null, bool, number, string, array, object }

    private static func kind(of value: JSONValue) -> Kind {
        switch value {
        case .null: .null
        case .bool: .bool
        case .number: .number
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }

    // MARK: - Evaluation

    private static func evaluate(_ node: Node, in scope: JSONObject) -> JSONValue {
        switch node {
        case .literal(let value): return value
        case .path(let elements): return resolve(elements, in: .object(scope))
        case .list(let items): return .array(items.map { evaluate($0, in: scope) })
        case .not(let operand): return .bool(evaluate(operand, in: scope) != .bool(true))
        case .and(let left, let right):
            return .bool(evaluate(left, in: scope) == .bool(true) && evaluate(right, in: scope) == .bool(true))
        case .or(let left, let right):
            return .bool(evaluate(left, in: scope) == .bool(true) || evaluate(right, in: scope) == .bool(true))
        case .compare(let comparison, let left, let right):
            return .bool(compare(comparison, evaluate(left, in: scope), evaluate(right, in: scope)))
        }
    }

    /// Follows a path; nil members and out-of-range indexes lead to `null`.
    static func resolve(_ elements: [PathElement], in value: JSONValue) -> JSONValue {
        var current = value
        for element in elements {
            switch (element, current) {
            case (.member(let name), .object(let members)): current = members[name] ?? .null
            case (.index(let index), .array(let items)) where items.indices.contains(index): current = items[index]
            default: return .null
            }
        }
        return current
    }

    private static func compare(_ comparison: Comparison, _ left: JSONValue, _ right: JSONValue) -> Bool {
        switch comparison {
        case .equal: return left == right
        case .notEqual: return left != right
        case .contains: return contains(right, left)
        case .notContains: return !contains(right, left)
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order: Int
            switch (left, right) {
            case (.number(let a), .number(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
            case (.string(let a), .string(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
            default: return false
            }
            switch comparison {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }

    private static func contains(_ container: JSONValue, _ element: JSONValue) -> Bool {
        switch (container, element) {
        case (.array(let items), _): return items.contains(element)
        case (.string(let text), .string(let part)): return text.contains(part)
        default: return false
        }
    }
}

/// Why an expression was refused.
public struct ExpressionError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Lexer

private enum Token: Equatable {
    case number(Double)
    case string(String)
    case word(String)
    case symbol(String)
}

private enum Lexer {
    static let maxLiteralLength = 500

    static func tokens(of source: String) throws -> [(token: Token, at: Int)] {
        let characters = Array(source.unicodeScalars)
        var tokens: [(Token, Int)] = []
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let start = index
            if character.properties.isWhitespace {
                index += 1
            } else if ("0"..."9").contains(character) {
                while index < characters.count, ("0"..."9").contains(characters[index]) || characters[index] == "." {
                    index += 1
                }
                let text = String(String.UnicodeScalarView(characters[start..<index]))
                guard text.count <= 30, let number = Double(text), number.isFinite else {
                    throw ExpressionError("the number at character \(start + 1) is not a plain number of at most 30 digits")
                }
                tokens.append((.number(number), start))
            } else if character == "\"" || character == "'" {
                index += 1
                var text = String.UnicodeScalarView()
                while index < characters.count, characters[index] != character {
                    text.append(characters[index])
                    index += 1
                }
                guard index < characters.count else { throw ExpressionError("the string at character \(start + 1) is not closed") }
                guard text.count <= maxLiteralLength else {
                    throw ExpressionError("the string at character \(start + 1) is longer than \(maxLiteralLength) characters")
                }
                index += 1
                tokens.append((.string(String(text)), start))
            } else if character.properties.isAlphabetic || character == "_" {
                while index < characters.count,
                    characters[index].properties.isAlphabetic || characters[index] == "_" || ("0"..."9").contains(characters[index])
                {
                    index += 1
                }
                let word = String(String.UnicodeScalarView(characters[start..<index]))
                guard word.count <= 100 else { throw ExpressionError("the name at character \(start + 1) is too long") }
                tokens.append((.word(word), start))
            } else {
                let pair = index + 1 < characters.count ? String(String.UnicodeScalarView([character, characters[index + 1]])) : ""
                if ["==", "!=", "<=", ">="].contains(pair) {
                    tokens.append((.symbol(pair), start))
                    index += 2
                } else if "<>()[].,-".unicodeScalars.contains(character) {
                    tokens.append((.symbol(String(character)), start))
                    index += 1
                } else {
                    throw ExpressionError("unexpected '\(character)' at character \(start + 1)")
                }
            }
        }
        return tokens
    }
}

// MARK: - Parser

private struct Parser {
    let tokens: [(token: Token, at: Int)]
    let roots: Set<String>
    var position = 0
    var depth = 0

    init(tokens: [(token: Token, at: Int)], roots: Set<String>) {
        self.tokens = tokens
        self.roots = roots
    }

    mutating func parseAll() throws -> Expression.Node {
        guard !tokens.isEmpty else { throw ExpressionError("is empty") }
        let node = try parseOr()
        if position < tokens.count { throw unexpected() }
        return node
    }

    private var current: Token? { position < tokens.count ? tokens[position].token : nil }

    private func unexpected() -> ExpressionError {
        guard position < tokens.count else { return ExpressionError("ends too early") }
        let (token, at) = tokens[position]
        let text: String
        switch token {
        case .number(let value): text = "\(value)"
        case .string(let value): text = "'\(value)'"
        case .word(let value), .symbol(let value): text = value
        }
        return ExpressionError("unexpected \(text) at character \(at + 1)")
    }

    private mutating func take(_ token: Token) -> Bool {
        guard current == token else { return false }
        position += 1
        return true
    }

    private mutating func nested<T>(_ body: (inout Parser) throws -> T) throws -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Expression.maxDepth else {
            throw ExpressionError("nests deeper than \(Expression.maxDepth) levels")
        }
        return try body(&self)
    }

    private mutating func parseOr() throws -> Expression.Node {
        try nested { parser in
            var node = try parser.parseAnd()
            while parser.take(.word("or")) { node = .or(node, try parser.parseAnd()) }
            return node
        }
    }

    private mutating func parseAnd() throws -> Expression.Node {
        var node = try parseNot()
        while take(.word("and")) { node = .and(node, try parseNot()) }
        return node
    }

    private mutating func parseNot() throws -> Expression.Node {
        if take(.word("not")) {
            return try nested { parser in .not(try parser.parseNot()) }
        }
        return try parseComparison()
    }

    private mutating func parseComparison() throws -> Expression.Node {
        let left = try parsePrimary()
        if case .symbol(let symbol)? = current, let comparison = Expression.Comparison(rawValue: symbol) {
            position += 1
            return .compare(comparison, left, try parsePrimary())
        }
        if take(.word("in")) { return .compare(.contains, left, try parsePrimary()) }
        if current == .word("not"), position + 1 < tokens.count, tokens[position + 1].token == .word("in") {
            position += 2
            return .compare(.notContains, left, try parsePrimary())
        }
        return left
    }

    private mutating func parsePrimary() throws -> Expression.Node {
        guard let token = current else { throw unexpected() }
        switch token {
        case .number(let value):
            position += 1
            return .literal(.number(value))
        case .string(let value):
            position += 1
            return .literal(.string(value))
        case .symbol("-"):
            position += 1
            guard case .number(let value)? = current else { throw unexpected() }
            position += 1
            return .literal(.number(-value))
        case .symbol("("):
            position += 1
            let node = try parseOr()
            guard take(.symbol(")")) else { throw unexpected() }
            return node
        case .symbol("["):
            position += 1
            return try nested { parser in
                var items: [Expression.Node] = []
                if parser.take(.symbol("]")) { return .list(items) }
                repeat {
                    items.append(try parser.parsePrimary())
                    guard items.count <= Expression.maxListItems else {
                        throw ExpressionError("a list has more than \(Expression.maxListItems) items")
                    }
                } while parser.take(.symbol(","))
                guard parser.take(.symbol("]")) else { throw parser.unexpected() }
                return .list(items)
            }
        case .word("true"):
            position += 1
            return .literal(.bool(true))
        case .word("false"):
            position += 1
            return .literal(.bool(false))
        case .word("null"):
            position += 1
            return .literal(.null)
        case .word(let name) where !["and", "or", "not", "in"].contains(name):
            guard roots.contains(name) else {
                throw ExpressionError(
                    "unknown name \(name) at character \(tokens[position].at + 1) (paths start with \(roots.sorted().joined(separator: " or ")))")
            }
            position += 1
            var elements: [Expression.PathElement] = [.member(name)]
            while true {
                if take(.symbol(".")) {
                    guard case .word(let member)? = current else { throw unexpected() }
                    position += 1
                    elements.append(.member(member))
                } else if take(.symbol("[")) {
                    guard case .number(let value)? = current, value >= 0, value < 1_000_000, value.rounded() == value else {
                        throw unexpected()
                    }
                    position += 1
                    guard take(.symbol("]")) else { throw unexpected() }
                    elements.append(.index(Int(value)))
                } else {
                    break
                }
                guard elements.count <= Expression.maxDepth else {
                    throw ExpressionError("a path is longer than \(Expression.maxDepth) parts")
                }
            }
            return .path(elements)
        default:
            throw unexpected()
        }
    }
}
