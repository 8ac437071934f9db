import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit

/// The workflow API: submit, list, show, history, control, task results.
struct WorkflowRoutes: Sendable {
    let runtime: ServiceRuntime
    let engine: WorkflowEngine
    let submissions: Submissions
    let tokens: TaskTokens
    let reads: WorkflowReads

    func register(on router: Router<ServiceRequestContext>) {
        router.post("/v1/workflows") { request, context in try await submit(request, context: context) }
        router.get("/v1/workflows") { request, context in try await list(request, context: context) }
        router.get("/v1/workflows/{id}") { _, context in try await show(context.parameters.require("id"), context: context) }
        router.get("/v1/workflows/{id}/history") { _, context in
            let id = try parseID(context.parameters.require("id"))
            try await authorize(id, context: context)
            return try JSONResponse.make(ItemList(items: try await history(of: id)))
        }
        for action in [WorkflowControlRequested.Action.pause, .resume, .cancel] {
            router.post("/v1/workflows/{id}/\(action.rawValue)") { request, context in
                try await control(action, request, context: context)
            }
        }
        router.post("/v1/workflows/{id}/steps/{name}/result") { request, context in
            try await taskResult(request, context: context)
        }
        router.get("/v1/ops/waiting") { _, context in try await waiting(context: context) }
    }

    /// For `hitl doctor`: the approval steps workflows wait on, and since when.
    private func waiting(context: ServiceRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        return try JSONResponse.make(ItemList(items: try await reads.waiting()))
    }

    // MARK: - Submission

    private func submit(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let principal = try context.require(.agent, .admin)
        var request = request
        let submission = try await request.decodeJSON(WorkflowSubmitted.self)
        if principal.role == .agent, submission.requester != principal.subject {
            throw APIError(.forbidden, "not_yourself", "an agent submits as itself: requester must be \(principal.subject)")
        }
        let outcome: WorkflowEngine.SubmitOutcome
        do {
            outcome = try await runtime.database.transaction(logger: context.logger) { transaction in
                try await submissions.submit(submission, byAdmin: principal.role == .admin, in: transaction)
            }
        } catch let invalid as Submissions.Invalid {
            throw APIError(.unprocessableContent, "invalid_workflow", invalid.description)
        } catch let refused as GateApplication.Refused {
            throw APIError(.forbidden, "weakens_gate", refused.description, details: ["option": .string(refused.option)])
        }
        switch outcome {
        case .created(let id, let status):
            return try JSONResponse.make(status: .created, SubmitAnswer(id: id.description, status: status))
        case .existing(let id, let status):
            return try JSONResponse.make(status: .ok, SubmitAnswer(id: id.description, status: status))
        case .conflict(let id):
            throw APIError(
                .conflict, "idempotency_conflict",
                "idempotency_key \(submission.idempotencyKey) was already used with a different body",
                details: ["workflow_id": .string(id.description)])
        }
    }

    // MARK: - Reading

    /// `GET /v1/workflows?status=&type=&requester=&created_after=&limit=&after=`, newest
    /// last, paged by keyset: `next` is the cursor for the following page.
    private func list(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let principal = try context.require(.agent, .admin)
        let query = request.uri.queryParameters
        let known = ["status", "type", "requester", "created_after", "limit", "after"]
        for (key, _) in query where !known.contains(String(key)) {
            throw APIError.badRequest("unknown filter \(key) (known: \(known.joined(separator: ", ")))")
        }
        var status: WorkflowStatus?
        if let text = query["status"] {
            guard let parsed = WorkflowStatus(rawValue: String(text)) else {
                throw APIError.badRequest("status must be one of \(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = parsed
        }
        var createdAfter: Date?
        if let text = query["created_after"] {
            guard let date = WireCoding.parseTime(String(text)) else { throw APIError.badRequest("created_after must be an RFC 3339 time") }
            createdAfter = date
        }
        var limit = 50
        if let text = query["limit"] {
            guard let number = Int(text), (1...500).contains(number) else { throw APIError.badRequest("limit must be 1 to 500") }
            limit = number
        }
        var cursor: (Int64, WorkflowID)?
        if let text = query["after"] {
            guard let decoded = ListCursor.decode(String(text)) else { throw APIError.badRequest("after is not a cursor from a previous page") }
            cursor = decoded
        }
        // Agents list their own workflows.
        var requester = query["requester"].map(String.init)
        if principal.role == .agent {
            if let requester, requester != principal.subject { throw APIError(.forbidden, "not_yourself", "agents list their own workflows") }
            requester = principal.subject
        }
        let page = try await reads.list(
            WorkflowReads.Filter(
                status: status, type: query["type"].map(String.init), requester: requester,
                createdAfter: createdAfter, after: cursor, limit: limit))
        return try JSONResponse.make(WorkflowPage(items: page.items, next: page.next.map(ListCursor.encode)))
    }

    private func show(_ idText: String, context: ServiceRequestContext) async throws -> Response {
        let id = try parseID(idText)
        try await authorize(id, context: context)
        guard let view = try await reads.view(of: id) else { throw APIError.notFound("no workflow \(idText)") }
        return try JSONResponse.make(view)
    }

    /// The workflow's complete, ordered history; 404 when there is no such workflow.
    func history(of id: WorkflowID, after sequence: Int64 = 0) async throws -> [HistoryEntry] {
        try await requireWorkflow(id)
        return try await reads.entries(of: id, after: sequence)
    }

    /// 404 unless workflow `id` exists.
    func requireWorkflow(_ id: WorkflowID) async throws {
        guard try await reads.exists(id) else { throw APIError.notFound("no workflow \(id.description)") }
    }

    // MARK: - Control and answers

    struct ControlBody: Decodable {
        let requestedBy: String?
        let reason: String?
    }

    private func control(_ action: WorkflowControlRequested.Action, _ request: Request, context: ServiceRequestContext) async throws -> Response {
        let id = try parseID(context.parameters.require("id"))
        // Agents pause and resume their own workflows; cancelling is an admin's (DESIGN.md, Security).
        if action == .cancel {
            try await authorize(id, .admin, context: context)
        } else {
            try await authorize(id, .agent, .admin, context: context)
        }
        var request = request
        let body =
            request.head.headerFields[.contentLength] == "0" || request.head.headerFields[.contentType] == nil
            ? ControlBody(requestedBy: nil, reason: nil) : try await request.decodeJSON(ControlBody.self)
        let caller = try context.require(.agent, .admin)
        let actor = caller.role == .agent ? "agent:\(caller.subject)" : "ops:\(body.requestedBy ?? caller.subject)"
        let outcome: WorkflowEngine.ControlOutcome?
        do {
            outcome = try await runtime.database.transaction(logger: context.logger) { transaction in
                try await engine.with(workflow: id, in: transaction) { session in
                    try await engine.control(action, by: actor, reason: body.reason, session: session)
                }
            }
        } catch let refused as PermanentFailure {
            throw APIError(.conflict, "invalid_transition", refused.reason)
        }
        guard let outcome else { throw APIError.notFound("no workflow \(id.description)") }
        switch outcome {
        case .applied(let status): return try JSONResponse.make(ControlAnswer(id: id.description, status: status, changed: true))
        case .unchanged(let status): return try JSONResponse.make(ControlAnswer(id: id.description, status: status, changed: false))
        }
    }

    struct ResultBody: Decodable {
        let attempt: Int
        let compensation: Bool?
        let outcome: TaskResult.Outcome
        let output: JSONObject?
        let error: String?
        let worker: String?
        let token: String?
    }

    /// An agent's answer over HTTP; the same rules as on `hitl.task.results`. Only the worker
    /// that holds the attempt's token (`token`, or the `HITL-Task-Token` header) may answer:
    /// the token is checked before anything is read or written, so a forged answer for any
    /// workflow is a 403 that changes nothing.
    private func taskResult(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let principal = try context.require(.agent, .admin)
        let id = try parseID(context.parameters.require("id"))
        let step = try context.parameters.require("name")
        var request = request
        let header = request.headers[HTTPField.Name(TaskTokens.header)!]
        let body = try await request.decodeJSON(ResultBody.self)
        let result = TaskResult(
            workflowId: id.description, step: step, attempt: body.attempt, compensation: body.compensation ?? false,
            outcome: body.outcome, output: body.output, error: body.error, worker: body.worker ?? "api", token: body.token ?? header)
        guard tokens.isValid(result) else {
            throw APIError(
                .forbidden, "invalid_task_token",
                "a result needs the token of its attempt (TaskRequested.token or the HITL-Task-Token header of the call); this one is missing or not attempt \(body.attempt)'s"
            )
        }
        if body.outcome == .failed, (body.error ?? "").isEmpty { throw APIError.badRequest("a failed result needs an error") }
        let found: Bool? = try await runtime.database.transaction(logger: context.logger) { transaction in
            try await engine.with(workflow: id, in: transaction) { session in
                guard let position = session.position(of: step) else { return false }
                // The token may have been read by another agent on hitl.tasks: a task that names
                // its agent is answered by that agent's token (or an admin's). Throwing here
                // rolls back; nothing is written.
                let definition = session.steps[position].definition
                if let agent = (result.compensation ? definition.compensate : definition.task)?.agent, principal.role == .agent, principal.subject != agent {
                    throw APIError(.forbidden, "not_the_worker", "step \(step) is \(agent)'s task; this token is \(principal.subject)'s")
                }
                try await engine.applyTaskResult(result, actor: "agent:\(result.worker)", session: session)
                return true
            }
        }
        guard let found else { throw APIError.notFound("no workflow \(id.description)") }
        guard found else { throw APIError.notFound("workflow \(id.description) has no step \(step)") }
        return try JSONResponse.make(ResultAnswer(workflowId: id.description, step: step, attempt: body.attempt))
    }

    struct ResultAnswer: Encodable {
        let workflowId: String
        let step: String
        let attempt: Int
    }

    /// Lets the caller at workflow `id` when its role is one of `roles`: an agent only at
    /// its own workflows, an approver only at those with an approval step that names them
    /// (as an approver or at an escalation level); others answer 404, so their existence
    /// does not leak. Admins see everything.
    func authorize(_ id: WorkflowID, _ roles: Role..., context: ServiceRequestContext) async throws {
        let principal = try context.require(roles.isEmpty ? Role.allCases : roles)
        guard try await reads.isVisible(id, to: principal) else { throw APIError.notFound("no workflow \(id.description)") }
    }

    func parseID(_ text: String) throws -> WorkflowID {
        guard let id = WorkflowID(text) else { throw APIError.notFound("no workflow \(text): not a workflow id") }
        return id
    }
}

/// An opaque keyset cursor: the last row's creation time (microseconds) and id.
enum ListCursor {
    static func encode(_ last: (Int64, WorkflowID)) -> String {
        Data("\(last.0):\(last.1)".utf8).base64EncodedString()
    }

    static func decode(_ cursor: String) -> (Int64, WorkflowID)? {
        guard let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let micros = Int64(parts[0]), let id = WorkflowID(String(parts[1])) else { return nil }
        return (micros, id)
    }
}

struct SubmitAnswer: Encodable {
    let id: String
    let status: WorkflowStatus
}

struct ControlAnswer: Encodable {
    let id: String
    let status: WorkflowStatus
    let changed: Bool
}

/// An approval step a workflow waits on, and since when.
struct WaitingStep: Encodable {
    let workflowId: String
    let step: String
    let approvalId: String
    let since: Date
}

struct WorkflowSummary: Encodable {
    let id: String
    let type: String
    let requester: String
    let status: String
    let createdAt: Date
    let updatedAt: Date

    init(id: WorkflowID, type: String, requester: String, status: String, createdAt: Date, updatedAt: Date) {
        self.id = id.description
        self.type = type
        self.requester = requester
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

struct WorkflowPage: Encodable {
    let items: [WorkflowSummary]
    let next: String?
}

struct WorkflowView: Encodable {
    let id: String
    let type: String
    let requester: String
    let status: String
    let outcome: String?
    let reason: String?
    let template: String?
    let templateVersion: Int?
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
    let attempt: Int
    let round: Int
    let output: JSONObject?
    let error: String?
    let compensation: String?
    let updatedAt: Date
}

struct HistoryEntry: Codable, Sendable {
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
