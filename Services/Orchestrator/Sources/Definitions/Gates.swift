import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceKit

/// An admin's approval rule: workflows of `type` (and, with `when`, only those whose input
/// satisfies it) need `approval` before their first step that acts. Agents neither see nor
/// change gates; the orchestrator applies them to every submission, inline or from a
/// template, over HTTP or Kafka.
struct Gate: Codable, Sendable, Equatable {
    /// The workflow type the rule is about, or `*` for every type (the type is the agent's
    /// word: a catch-all gate on what acts holds whatever type an agent claims).
    var type: String
    /// A condition on `input` in the expression language; every workflow of the type when absent.
    var when: String?
    /// The approval the rule requires: approvers and groups, deadline, policy, form.
    var approval: StepDefinition.Approval
    /// Agents (`task.agent`) whose tasks act, like every `http` task does: the approval comes
    /// before the first of them.
    var agents: [String]?
    /// Options an agent's own definition may use although they weaken a gate
    /// (`GateOption`); none when absent.
    var agentMay: [GateOption]?
    var description: String?

    /// The step name the rule's approval takes when it is inserted.
    static func stepName(of name: String) -> String { stepPrefix + name }
    /// Step names starting with this belong to gates; no definition may use it.
    static let stepPrefix = "gate."

    /// Whether a step acts on the world: an `http` task or compensation, or an agent task of
    /// an agent the rule names.
    func acts(_ step: StepDefinition) -> Bool {
        [step.task, step.compensate].contains { task in
            guard let task else { return false }
            return task.type == "http" || (task.type == "agent" && task.agent.map { (agents ?? []).contains($0) } == true)
        }
    }
}

/// The options of an agent's approval step that weaken a gate. An agent's definition that
/// uses one is refused (403 naming it) unless it comes from an admin's template or a gate
/// that applies lists it in `agent_may`.
enum GateOption: String, Codable, Sendable, CaseIterable {
    /// `auto_approve_when`: approved by a rule the agent wrote.
    case autoApproveWhen = "auto_approve_when"
    /// `policy.on_expiry: approve` (or `safe_default: approve`): approved by silence.
    case approveOnExpiry = "on_expiry_approve"
    /// `policy.on_expiry: fallback`: decided by the fallback decider, not a human.
    case fallbackOnExpiry = "on_expiry_fallback"
    /// `policy.allow_self_approval`: the requester decides its own request.
    case selfApproval = "allow_self_approval"

    /// The options `approval` uses.
    static func used(by approval: StepDefinition.Approval) -> [GateOption] {
        var used: [GateOption] = []
        if approval.autoApproveWhen != nil { used.append(.autoApproveWhen) }
        if approval.policy?.onExpiry == .approve || approval.policy?.safeDefault == .approve { used.append(.approveOnExpiry) }
        if approval.policy?.onExpiry == .fallback { used.append(.fallbackOnExpiry) }
        if approval.policy?.allowSelfApproval == true { used.append(.selfApproval) }
        return used
    }
}

/// Gates, versioned: each `put` or `delete` stores the next version with who made it, so
/// the history of a rule is never lost; the latest version is the rule in force (a delete
/// stores a version without a rule).
struct GateStore: Sendable {
    struct Version: Encodable, Sendable {
        var name: String
        var version: Int
        var gate: Gate?
        var changedBy: String
        var changedAt: Date
    }

    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.unicodeScalars.count)
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_".unicodeScalars.contains($0)) }
    }

    /// Stores `gate` (nil: the rule is deleted) as the next version of `name`.
    func put(name: String, gate: Gate?, by actor: String, in transaction: Transaction) async throws -> Version {
        let json = try gate.map { try JSONColumn.text($0) }
        try await transaction.query("SELECT pg_advisory_xact_lock(hashtext('hitl.gates'), hashtext(\(name)))")
        let rows = try await transaction.query(
            """
            INSERT INTO gates (name, version, gate, changed_by)
            SELECT \(name), coalesce(max(version), 0) + 1, \(json)::jsonb, \(actor) FROM gates WHERE name = \(name)
            RETURNING version, changed_at
            """)
        for try await (version, changed) in rows.decode((Int, Date).self) {
            return Version(name: name, version: version, gate: gate, changedBy: actor, changedAt: changed)
        }
        throw PermanentFailure("gate \(name) was not stored")
    }

    /// Every version of `name`, oldest first.
    func versions(of name: String, in transaction: Transaction) async throws -> [Version] {
        let rows = try await transaction.query(
            "SELECT version, gate::text, changed_by, changed_at FROM gates WHERE name = \(name) ORDER BY version")
        var versions: [Version] = []
        for try await (version, gate, actor, changed) in rows.decode((Int, String?, String, Date).self) {
            versions.append(
                Version(
                    name: name, version: version, gate: try gate.map { try WireCoding.decode(Gate.self, from: Array($0.utf8)) }, changedBy: actor,
                    changedAt: changed))
        }
        return versions
    }

    /// The rules in force (the latest version of each name, unless it deleted the rule),
    /// for workflows of `type` (with the `*` rules), or all of them when `type` is nil; by name.
    func current(type: String?, in transaction: Transaction) async throws -> [Version] {
        let rows = try await transaction.execute(CurrentGates(type: type))
        var versions: [Version] = []
        for try await (name, version, gate, actor, changed) in rows {
            versions.append(
                Version(
                    name: name, version: version, gate: try WireCoding.decode(Gate.self, from: Array(gate.utf8)), changedBy: actor, changedAt: changed))
        }
        return versions
    }
}

/// The gates in force for a workflow type (or all): read for every submission, so prepared.
struct CurrentGates: PostgresPreparedStatement {
    static let sql = """
        SELECT name, version, gate::text, changed_by, changed_at FROM (
            SELECT DISTINCT ON (name) name, version, gate, changed_by, changed_at FROM gates ORDER BY name, version DESC) AS latest
        WHERE gate IS NOT NULL AND ($1::text IS NULL OR gate->>'type' = $1 OR gate->>'type' = '*')
        ORDER BY name
        """
    static let bindingDataTypes: [PostgresDataType] = [.text]
    let type: String?

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(type)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (String, Int, String, String, Date) {
        try row.decode((String, Int, String, String, Date).self)
    }
}
