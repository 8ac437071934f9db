import Contracts
import Foundation

/// The workflow condition language (Foundation has a type of the same name).
typealias Expression = Contracts.Expression

/// Which tool calls `hitl mcp gate` holds for a human, read from the operator's policy file:
///
///     {
///       "approvers": ["ops@bank.example"],
///       "hold_seconds": 45,
///       "rules": [
///         {"tool": "transfer", "when": "args.amount > 1000", "approvers": ["cfo@bank.example"],
///          "timeout_seconds": 86400},
///         {"tool": "refund", "grant": {"minutes": 30, "when": "args.amount <= 100"}}
///       ]
///     }
///
/// A call is gated by the first rule that names its tool and whose `when` (the workflow
/// condition language, over `args`, `tool` and `caller`) does not surely fail: as with the
/// admins' gates, a condition that cannot be decided (a missing argument) gates. Tools no
/// rule names pass straight through.
///
/// The policy is the operator's, not the agent's, but it runs where the agent does: the
/// orchestrator's gates on the workflow type (`mcp_tool_call` unless a rule says otherwise)
/// are what an agent cannot edit.
public struct GatePolicy: Decodable, Sendable {
    public struct Rule: Decodable, Sendable {
        /// The tool's name as the upstream lists it.
        public var tool: String
        public var when: String?
        /// Who may approve; the policy's `approvers` when absent.
        public var approvers: [String]?
        /// An admin's template to run instead of a one-step approval (the call becomes its input).
        public var template: String?
        /// The workflow type, which the orchestrator's gates match on.
        public var type: String?
        /// The approval's deadline; the call is refused as expired after it.
        public var timeoutSeconds: Int?
        public var grant: Grant?

        var condition: Expression? { get throws { try when.map { try Expression($0, roots: GatePolicy.roots) } } }
    }

    /// An approval that also lets later calls through: calls of the same tool by the same
    /// caller for `minutes` after the decision, with the same arguments (`same_arguments`)
    /// or where `when` holds. The approver sees the window before deciding.
    public struct Grant: Decodable, Sendable {
        public var minutes: Int
        public var sameArguments: Bool?
        public var when: String?

        var condition: Expression? { get throws { try when.map { try Expression($0, roots: GatePolicy.roots) } } }

        /// What the approver is told the approval allows besides this call.
        func describe(tool: String, caller: String) -> String {
            var text = "approving also lets \(caller) call \(tool) for \(minutes) minutes"
            if let when { text += " where \(when)" } else { text += " with the same arguments" }
            return text
        }
    }

    public var approvers: [String]?
    /// How long a call is held waiting for the decision before the client is told "pending":
    /// under the 60 s most MCP clients give a tool call.
    public var holdSeconds: Int?
    /// How long an identical call after a finished one gets that call's answer again (the
    /// client retrying after a lost answer) instead of asking for a new approval.
    public var replayMinutes: Int?
    /// How long after the decision an approved call may still be made (a day): an agent
    /// that comes back later asks again.
    public var executeWithinMinutes: Int?
    public var rules: [Rule]

    /// The rule that gates a call, with what identifies it: a grant serves only calls its
    /// own rule gates, and none after the rule was edited.
    struct MatchedRule {
        let rule: Rule
        let fingerprint: String
    }

    static let roots: Set<String> = ["args", "tool", "caller"]

    public static func load(from path: String) throws -> GatePolicy {
        guard let data = FileManager.default.contents(atPath: path) else { throw ToolFailure("cannot read the policy file \(path)") }
        let policy: GatePolicy
        do {
            try refuseUnknownKeys(try WireCoding.decode(JSONObject.self, from: Array(data)))
            policy = try WireCoding.decode(GatePolicy.self, from: Array(data))
        } catch let failure as ToolFailure {
            throw ToolFailure("the policy file \(path): \(failure)")
        } catch {
            throw ToolFailure("the policy file \(path): \(ContractError.describe(error))")
        }
        try policy.validate()
        return policy
    }

    /// A misspelt key would quietly widen a rule (`approver` falling back to the policy's
    /// approvers, a grant's `When` becoming a same-arguments grant): every key must be known.
    private static func refuseUnknownKeys(_ object: JSONObject) throws {
        func check(_ object: JSONObject, _ known: Set<String>, _ place: String) throws {
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw ToolFailure("\(place) has an unknown key \(unknown) (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        try check(object, ["approvers", "hold_seconds", "replay_minutes", "execute_within_minutes", "rules"], "the policy")
        guard case .array(let rules)? = object["rules"] else { return }
        for (index, rule) in rules.enumerated() {
            guard case .object(let rule) = rule else { continue }
            try check(rule, ["tool", "when", "approvers", "template", "type", "timeout_seconds", "grant"], "rule \(index + 1)")
            if case .object(let grant)? = rule["grant"] { try check(grant, ["minutes", "same_arguments", "when"], "rule \(index + 1)'s grant") }
        }
    }

    /// Refuses a policy that would fail later, with the reason.
    func validate() throws {
        if let hold = holdSeconds, !(1...300).contains(hold) { throw ToolFailure("hold_seconds must be 1 to 300") }
        if let replay = replayMinutes, !(0...10_080).contains(replay) { throw ToolFailure("replay_minutes must be 0 to 10080") }
        if let within = executeWithinMinutes, !(1...43_200).contains(within) { throw ToolFailure("execute_within_minutes must be 1 to 43200") }
        for (index, rule) in rules.enumerated() {
            let name = "rule \(index + 1) (\(rule.tool))"
            do { _ = try rule.condition } catch { throw ToolFailure("\(name): when \(error)") }
            if rule.template == nil, (rule.approvers ?? approvers ?? []).isEmpty {
                throw ToolFailure("\(name) names no approvers and the policy has none")
            }
            if let grant = rule.grant {
                guard (1...10_080).contains(grant.minutes) else { throw ToolFailure("\(name): grant.minutes must be 1 to 10080") }
                if grant.when != nil, grant.sameArguments == true {
                    throw ToolFailure("\(name): a grant is scoped to the same arguments or to a condition, not both")
                }
                do { _ = try grant.condition } catch { throw ToolFailure("\(name): grant.when \(error)") }
            }
        }
    }

    /// Whether some rule names `tool` (its listing then offers `hitl_reason`).
    func names(_ tool: String) -> Bool { rules.contains { $0.tool == tool } }

    /// The rule that gates this call, if any.
    func rule(for tool: String, arguments: JSONObject, caller: String) -> MatchedRule? {
        let scope = Self.scope(tool: tool, arguments: arguments, caller: caller)
        guard
            let index = rules.firstIndex(where: { rule in
                guard rule.tool == tool else { return false }
                guard let condition = try? rule.condition else { return true }
                return !condition.surelyFails(in: scope)
            })
        else { return nil }
        let rule = rules[index]
        let grant = rule.grant.map { "\($0.minutes)|\($0.sameArguments ?? false)|\($0.when ?? "")" } ?? ""
        let identity = [
            String(index), rule.tool, rule.when ?? "", (rule.approvers ?? approvers ?? []).joined(separator: ","), rule.template ?? "", rule.type ?? "", grant,
        ]
        return MatchedRule(rule: rule, fingerprint: String(Digest.sha256Hex(Array(identity.joined(separator: "\u{0}").utf8)).prefix(32)))
    }

    static func scope(tool: String, arguments: JSONObject, caller: String) -> JSONObject {
        ["args": .object(arguments), "tool": .string(tool), "caller": .string(caller)]
    }
}
