import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// `PUT|GET|DELETE /v1/gates/{name}`, `GET /v1/gates`, `GET /v1/gates/{name}/versions`:
/// admins' approval rules. Admins only, every request: a gate says which workflows need whose
/// approval, so agents may neither change nor read it (reading would show them the
/// threshold to stay under). Each put and delete stores a version with who made it.
struct GateRoutes: Sendable {
    let runtime: ServiceRuntime
    let gates: GateStore

    func register(on router: Router<ServiceRequestContext>) {
        router.get("/v1/gates") { _, context in
            _ = try context.require(.admin)
            let current = try await runtime.database.transaction(logger: context.logger) { transaction in
                try await gates.current(type: nil, in: transaction)
            }
            return try JSONResponse.make(ItemList(items: current))
        }
        router.put("/v1/gates/{name}") { request, context in
            let admin = try context.require(.admin)
            let name = try Self.name(context)
            var request = request
            let gate = try await request.decodeJSON(Gate.self)
            if let problem = Self.problem(in: gate) { throw APIError(.unprocessableContent, "invalid_gate", problem) }
            let stored = try await runtime.database.transaction(logger: context.logger) { transaction in
                try await gates.put(name: name, gate: gate, by: admin.subject, in: transaction)
            }
            return try JSONResponse.make(status: .created, stored)
        }
        router.get("/v1/gates/{name}") { _, context in
            _ = try context.require(.admin)
            let name = try Self.name(context)
            let versions = try await runtime.database.transaction(logger: context.logger) { transaction in
                try await gates.versions(of: name, in: transaction)
            }
            guard let latest = versions.last, latest.gate != nil else { throw APIError.notFound("no gate \(name)") }
            return try JSONResponse.make(latest)
        }
        router.get("/v1/gates/{name}/versions") { _, context in
            _ = try context.require(.admin)
            let name = try Self.name(context)
            let versions = try await runtime.database.transaction(logger: context.logger) { transaction in
                try await gates.versions(of: name, in: transaction)
            }
            guard !versions.isEmpty else { throw APIError.notFound("no gate \(name)") }
            return try JSONResponse.make(ItemList(items: versions))
        }
        router.delete("/v1/gates/{name}") { _, context in
            let admin = try context.require(.admin)
            let name = try Self.name(context)
            let stored = try await runtime.database.transaction(logger: context.logger) { transaction -> GateStore.Version? in
                let versions = try await gates.versions(of: name, in: transaction)
                guard versions.last?.gate != nil else { return nil }
                return try await gates.put(name: name, gate: nil, by: admin.subject, in: transaction)
            }
            guard let stored else { throw APIError.notFound("no gate \(name)") }
            return try JSONResponse.make(stored)
        }
    }

    private static func name(_ context: ServiceRequestContext) throws -> String {
        let name = try context.parameters.require("name")
        guard GateStore.isValidName(name) else { throw APIError.badRequest("a gate name is 1 to 64 letters, digits, '-' or '_'") }
        return name
    }

    /// The first problem with `gate`, or nil.
    static func problem(in gate: Gate) -> String? {
        if gate.type.isEmpty || gate.type.count > 200 { return "type must be 1 to 200 characters, or * for every type" }
        if let when = gate.when {
            do { _ = try Expression(when) } catch { return "when is not a valid expression: \(error)" }
        }
        if let agents = gate.agents, agents.isEmpty || agents.contains(where: { $0.isEmpty || $0.count > 200 }) {
            return "agents must name 1 or more agents of 1 to 200 characters"
        }
        if gate.approval.autoApproveWhen != nil { return "approval.auto_approve_when: a gate's condition is its when" }
        if gate.approval.reviseStep != nil { return "approval.revise_step: a gate knows no steps to send back to" }
        if (gate.description?.count ?? 0) > 2000 { return "description may be at most 2000 characters" }
        let step = StepDefinition(name: "gate", kind: .approval, approval: gate.approval)
        return DefinitionValidation.problem(in: [step]).map { $0.replacingOccurrences(of: "steps[0] (gate): ", with: "") }
    }
}
