import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceKit

/// Named, versioned workflow definitions. Each `put` stores the next version; versions are
/// never changed, so a workflow started from one keeps exactly what it started with (its
/// steps are copied into the workflow when it is submitted).
struct TemplateStore: Sendable {
    struct Template: Codable, Sendable {
        var name: String
        var version: Int
        var description: String?
        var steps: [StepDefinition]
        var createdAt: Date
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }
    }

    /// Stores `steps` as the next version of `name`, in the caller's transaction; the caller
    /// validated them.
    func put(name: String, description: String?, steps: [StepDefinition], in transaction: Transaction) async throws -> Template {
        let json = try JSONColumn.text(steps)
        // Puts of one name wait for each other (a lock held to the end of the caller's
        // transaction), so each reads the version the previous one wrote.
        try await transaction.query("SELECT pg_advisory_xact_lock(hashtext('hitl.templates'), hashtext(\(name)))")
        let rows = try await transaction.query(
            """
            INSERT INTO templates (name, version, steps, description)
            SELECT \(name), coalesce(max(version), 0) + 1, \(json)::jsonb, \(description) FROM templates WHERE name = \(name)
            RETURNING version, created_at
            """)
        for try await (version, created) in rows.decode((Int, Date).self) {
            return Template(name: name, version: version, description: description, steps: steps, createdAt: created)
        }
        throw PermanentFailure("template \(name) was not stored")
    }

    /// Version `version` of `name`, or its latest version when `version` is nil.
    func get(name: String, version: Int?, in transaction: Transaction) async throws -> Template? {
        let rows = try await transaction.query(
            """
            SELECT version, description, steps::text, created_at FROM templates
            WHERE name = \(name) AND (\(version)::int IS NULL OR version = \(version))
            ORDER BY version DESC LIMIT 1
            """)
        for try await (found, description, steps, created) in rows.decode((Int, String?, String, Date).self) {
            return Template(
                name: name, version: found, description: description,
                steps: try WireCoding.decode([StepDefinition].self, from: Array(steps.utf8)), createdAt: created)
        }
        return nil
    }
}

/// Whether agents may submit their own step lists (`HITL_AGENT_DEFINITIONS`).
enum AgentDefinitions: String, Sendable {
    /// Agents list steps or name a template; gates apply either way.
    case inline
    /// Agents may only name an admin's template.
    case templates
}

/// Turns a request into a stored, running workflow: resolves its template, validates the
/// definition, applies the admins' gates, and hands it to the engine, all in the caller's
/// transaction.
struct Submissions: Sendable {
    let engine: WorkflowEngine
    let templates: TemplateStore
    let gates: GateStore
    let agentDefinitions: AgentDefinitions

    /// Why a submission was refused; nothing was stored.
    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// Submits `submission`. `byAdmin` is true only for an admin's HTTP request: its inline
    /// steps are trusted like a template's. Kafka records and agents' requests are not.
    func submit(
        _ submission: WorkflowSubmitted, byAdmin: Bool = false, in transaction: Transaction
    ) async throws -> WorkflowEngine.SubmitOutcome {
        let requestHash = Digest.sha256Hex(try WireCoding.encode(submission))
        var resolved = submission
        var template: (name: String, version: Int)?
        if let name = submission.template {
            guard submission.steps.isEmpty else { throw Invalid(description: "name a template or list steps, not both") }
            if let version = submission.templateVersion, version < 1 { throw Invalid(description: "template_version must be 1 or more") }
            guard let found = try await templates.get(name: name, version: submission.templateVersion, in: transaction) else {
                throw Invalid(description: "template \(name)\(submission.templateVersion.map { " version \($0)" } ?? "") does not exist")
            }
            resolved.steps = found.steps
            template = (found.name, found.version)
        } else if submission.templateVersion != nil {
            throw Invalid(description: "template_version needs a template")
        } else if !byAdmin, agentDefinitions == .templates, !submission.steps.isEmpty {
            throw GateApplication.Refused(option: "steps", description: "this deployment takes agents' workflows from admins' templates only: name a template")
        }
        if let problem = DefinitionValidation.problem(in: resolved) { throw Invalid(description: problem) }
        let inForce = try await gates.current(type: resolved.type, in: transaction)
        let gated = try GateApplication.apply(inForce, to: resolved.steps, input: resolved.input, trusted: byAdmin || template != nil)
        resolved.steps = gated.steps
        if let problem = DefinitionValidation.problem(in: resolved.steps) { throw Invalid(description: "with the gates applied: \(problem)") }
        return try await engine.submit(
            resolved, requestHash: requestHash, template: template, gates: gated.applied, actor: "agent:\(submission.requester)", in: transaction)
    }
}
