import Contracts
import Foundation
import Hummingbird
import PostgresNIO
import ServiceKit

/// `POST /v1/workflows`, `GET /v1/workflows/{id}`, `GET /v1/workflows/{id}/history`.
struct WorkflowRoutes: Sendable {
    let runtime: ServiceRuntime
    let engine: WorkflowEngine

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/workflows") { request, context in try await submit(request, context: context) }
        router.get("/v1/workflows/{id}") { _, context in try await show(context.parameters.require("id")) }
        router.get("/v1/workflows/{id}/history") { _, context in try await history(context.parameters.require("id")) }
    }

    private func submit(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let submission = try await request.decodeJSON(WorkflowSubmitted.self)
        if let problem = WorkflowValidation.problem(in: submission) {
            throw APIError(.unprocessableContent, "invalid_workflow", problem)
        }
        let outcome = try await runtime.database.transaction { connection in
            try await engine.submit(submission, actor: "agent:\(submission.requester)", cause: nil, on: connection, logger: context.logger)
        }
        switch outcome {
        case .created(let id, let status):
            runtime.relay.wake()
            return try JSONResponse.make(status: .created, SubmitAnswer(id: id.uuidString.lowercased(), status: status))
        case .existing(let id, let status):
            return try JSONResponse.make(status: .ok, SubmitAnswer(id: id.uuidString.lowercased(), status: status))
        case .conflict(let id):
            throw APIError(
                .conflict, "idempotency_conflict",
                "idempotency_key \(submission.idempotencyKey) was already used with a different body",
                details: ["workflow_id": .string(id.uuidString.lowercased())])
        }
    }

    private func show(_ idText: String) async throws -> Response {
        let id = try parseID(idText)
        let rows = try await runtime.database.query(
            """
            SELECT type, requester, input::text, status, created_at, updated_at
            FROM workflows WHERE id = \(id)
            """)
        var view: WorkflowView?
        for try await (type, requester, input, status, created, updated) in rows.decode((String, String, String, String, Date, Date).self) {
            view = WorkflowView(
                id: id.uuidString.lowercased(), type: type, requester: requester, status: status,
                input: JSONColumn.object(input),
                steps: [], createdAt: created, updatedAt: updated)
        }
        guard var view else { throw APIError.notFound("no workflow \(idText)") }
        let steps = try await runtime.database.query(
            "SELECT name, kind, status, approval_id, updated_at FROM workflow_steps WHERE workflow_id = \(id) ORDER BY position")
        for try await (name, kind, status, approval, updated) in steps.decode((String, String, String, UUID?, Date).self) {
            view.steps.append(StepView(name: name, kind: kind, status: status, approvalId: approval?.uuidString.lowercased(), updatedAt: updated))
        }
        return try JSONResponse.make(view)
    }

    private func history(_ idText: String) async throws -> Response {
        let id = try parseID(idText)
        var exists = false
        for try await _ in try await runtime.database.query("SELECT 1 FROM workflows WHERE id = \(id)") { exists = true }
        guard exists else { throw APIError.notFound("no workflow \(idText)") }
        let rows = try await runtime.database.query(
            """
            SELECT id, at, event, from_status, to_status, step, actor, detail::text
            FROM workflow_history WHERE workflow_id = \(id) ORDER BY id
            """)
        var items: [HistoryEntry] = []
        for try await (seq, at, event, from, to, step, actor, detail) in rows.decode((Int64, Date, String, String?, String?, String?, String, String).self) {
            items.append(HistoryEntry(
                sequence: seq, at: at, event: event, fromStatus: from, toStatus: to, step: step, actor: actor,
                detail: JSONColumn.object(detail)))
        }
        return try JSONResponse.make(ItemList(items: items))
    }

    private func parseID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw APIError.notFound("no workflow \(text): not a workflow id") }
        return id
    }
}

struct SubmitAnswer: Encodable {
    let id: String
    let status: WorkflowStatus
}

struct WorkflowView: Encodable {
    let id: String
    let type: String
    let requester: String
    let status: String
    let input: JSONObject
    var steps: [StepView]
    let createdAt: Date
    let updatedAt: Date
}

struct StepView: Encodable {
    let name: String
    let kind: String
    let status: String
    let approvalId: String?
    let updatedAt: Date
}

struct HistoryEntry: Encodable {
    let sequence: Int64
    let at: Date
    let event: String
    let fromStatus: String?
    let toStatus: String?
    let step: String?
    let actor: String
    let detail: JSONObject
}

/// `{"items": […]}`, the shape of every list answer.
struct ItemList<Item: Encodable>: Encodable {
    let items: [Item]
}
