import Contracts
import Foundation
import HITLClient
import MCP

/// The tools `hitl mcp` offers an agent. Each one is a call of the HTTP API made with the
/// agent's own bearer token, so MCP can do exactly what the token may over HTTP and refuses
/// what it refuses, with the same reason; there is no tool that decides an approval.
struct AgentTools: Sendable {
    let api: APIClient
    /// The token's subject: the requester of what the agent submits.
    let subject: String
    /// How often `wait_for_decision` looks at the workflow.
    var pollInterval: Duration = .seconds(1)

    static let tools: [Tool] = [
        Tool(
            name: "request_approval",
            description: """
                Ask a human to approve an action before you take it. Returns at once with the workflow id and the \
                approval id; then call wait_for_decision. Do not take the action unless wait_for_decision says approved.
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "action": .object(["type": "string", "description": "What you want to do, in one line (e.g. \"Wire 6000 EUR to ACME GmbH\")."]),
                    "summary": .object(["type": "string", "description": "Why, in a few sentences, for the approver."]),
                    "facts": .object(["type": "object", "description": "The facts the approver should see, as flat key/value pairs (e.g. amount, payee)."]),
                    "approvers": .object(["type": "array", "items": .object(["type": "string"]), "description": "Who may approve (their ids or group:<name>)."]
                    ),
                    "template": .object(["type": "string", "description": "An admin's template to run instead of a one-step approval; facts become its input."]
                    ),
                    "type": .object(["type": "string", "description": "The workflow type, which admins' gates match on (default agent_action)."]),
                    "idempotency_key": .object([
                        "type": "string", "description": "Repeat a request with the same key to get the same workflow (default: derived from the arguments).",
                    ]),
                ]),
                "required": .array(["action"]),
            ])),
        Tool(
            name: "wait_for_decision",
            description: """
                Wait for the human decision on a workflow's approval, up to timeout_seconds (default 60, at most 600). \
                Answers approved, approved_with_changes, rejected, expired, changes_requested or cancelled with who decided, their comment \
                and the decision's signed receipt (a JWS the approval service's /.well-known/jwks.json verifies); \
                "pending" when nobody decided yet (never treat pending as approval: wait again).
                """,
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "workflow_id": .object(["type": "string"]),
                    "approval_id": .object(["type": "string", "description": "Which approval (default: the workflow's latest)."]),
                    "timeout_seconds": .object(["type": "integer", "minimum": 1, "maximum": 600]),
                ]),
                "required": .array(["workflow_id"]),
            ])),
        Tool(
            name: "get_workflow",
            description: "The workflow's status, steps and input.",
            inputSchema: .object(["type": "object", "properties": .object(["workflow_id": .object(["type": "string"])]), "required": .array(["workflow_id"])])),
        Tool(
            name: "list_my_workflows",
            description: "Your workflows, newest first (optionally only those with a status: running, waiting_approval, completed, rejected, …).",
            inputSchema: .object([
                "type": "object",
                "properties": .object(["status": .object(["type": "string"]), "limit": .object(["type": "integer", "minimum": 1, "maximum": 500])]),
            ])),
        Tool(
            name: "post_message",
            description: "Post a message to the approvers' conversation on a workflow (an explanation, an answer to their question).",
            inputSchema: .object([
                "type": "object",
                "properties": .object(["workflow_id": .object(["type": "string"]), "text": .object(["type": "string"]), "step": .object(["type": "string"])]),
                "required": .array(["workflow_id", "text"]),
            ])),
        Tool(
            name: "submit_task_result",
            description: "Report the result of a task the workflow gave you, with the attempt's token from the task.",
            inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "workflow_id": .object(["type": "string"]), "step": .object(["type": "string"]), "attempt": .object(["type": "integer"]),
                    "token": .object(["type": "string"]), "outcome": .object(["type": "string", "enum": .array(["succeeded", "failed"])]),
                    "output": .object(["type": "object"]), "error": .object(["type": "string"]),
                ]),
                "required": .array(["workflow_id", "step", "attempt", "token", "outcome"]),
            ])),
    ]

    /// Runs tool `name`; a refusal of the API comes back as the tool's error with its reason.
    func call(_ name: String, _ arguments: [String: Value], progress: @escaping @Sendable (Double, String) async -> Void) async -> CallTool.Result {
        do {
            let answer: JSONObject
            switch name {
            case "request_approval": answer = try await requestApproval(arguments)
            case "wait_for_decision": answer = try await waitForDecision(arguments, progress: progress)
            case "get_workflow": answer = try await api.workflow(try Self.id(arguments["workflow_id"]))
            case "list_my_workflows":
                var status: Components.Schemas.Status?
                if let text = arguments["status"]?.stringValue {
                    guard let known = Components.Schemas.Status(rawValue: text) else { throw ToolFailure("status \(text) is not a workflow status") }
                    status = known
                }
                let page = try await api.orchestrator.listWorkflows(query: .init(status: status, limit: arguments["limit"]?.intValue ?? 50))
                answer = try JSONBridge.object(try page.ok.body.json)
            case "post_message":
                var body: JSONObject = ["text": .string(arguments["text"]?.stringValue ?? "")]
                if let step = arguments["step"]?.stringValue { body["step"] = .string(step) }
                let posted = try await api.orchestrator.postMessage(path: .init(id: try Self.id(arguments["workflow_id"])), body: .json(JSONBridge.typed(body)))
                answer = try JSONBridge.object(try posted.created.body.json)
            case "submit_task_result": answer = try await submitTaskResult(arguments)
            default: return Self.result("there is no tool \(name)", isError: true)
            }
            return Self.result(String(decoding: try WireCoding.encode(answer), as: UTF8.self), isError: false)
        } catch {
            return Self.result(HITLClient.describe(error), isError: true)
        }
    }

    static func result(_ text: String, isError: Bool) -> CallTool.Result {
        .init(content: [.text(text: text, annotations: nil, _meta: nil)], isError: isError)
    }

    static func id(_ value: Value?) throws -> String {
        guard let text = value?.stringValue, let id = UUID(uuidString: text) else { throw ToolFailure("workflow_id must be a workflow id (a UUID)") }
        return id.uuidString.lowercased()
    }

    private func requestApproval(_ arguments: [String: Value]) async throws -> JSONObject {
        guard let action = arguments["action"]?.stringValue, !action.isEmpty else { throw ToolFailure("action is required") }
        var input: JSONObject = [:]
        if case .object(let facts)? = arguments["facts"] {
            for (key, value) in facts { input[key] = try JSONBridge.json(value) }
        }
        input["action"] = .string(action)
        if let summary = arguments["summary"]?.stringValue { input["summary"] = .string(summary) }
        // Asking again with the same arguments is the same request (the API answers the first workflow).
        let digest = Digest.sha256Hex(try WireCoding.encode(input))
        let key = arguments["idempotency_key"]?.stringValue ?? "mcp-" + digest.prefix(32)
        var body: JSONObject = [
            "idempotency_key": .string(key), "type": .string(arguments["type"]?.stringValue ?? "agent_action"),
            "requester": .string(subject), "input": .object(input),
        ]
        if let template = arguments["template"]?.stringValue {
            body["template"] = .string(template)
        } else {
            guard case .array(let approvers)? = arguments["approvers"], !approvers.isEmpty else {
                throw ToolFailure("approvers is required without a template: who may approve?")
            }
            let facts = input.keys.sorted().filter { $0 != "action" && $0 != "summary" }
            var form: JSONObject = ["title": .string(String(action.prefix(200))), "facts": .array(facts.map(JSONValue.string))]
            if let summary = arguments["summary"]?.stringValue { form["description"] = .string(String(summary.prefix(2000))) }
            body["steps"] = .array([
                .object([
                    "name": "approve", "kind": "approval",
                    "approval": .object(["approvers": .array(approvers.compactMap(\.stringValue).map(JSONValue.string)), "form": .object(form)]),
                ])
            ])
        }
        let (workflowID, status) = try await api.submit(body)
        var answer: JSONObject = ["workflow_id": .string(workflowID), "status": status.map(JSONValue.string) ?? .null]
        // The approval is asked within moments of the submission; its id lets the agent follow it.
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let approval = try await latestApproval(workflowID) {
                answer["approval_id"] = .string(approval)
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        answer["next"] = "call wait_for_decision with this workflow_id"
        return answer
    }

    private func latestApproval(_ workflowID: String) async throws -> String? {
        try await api.history(workflowID).last { $0["event"] == "approval_requested" }?["detail"]?.objectValue?["approval_id"]?.stringValue
    }

    /// History events that end an approval, and what the agent is told.
    static let outcomes: [String: String] = [
        "approved": "approved", "approved_with_changes": "approved_with_changes", "rejected_step": "rejected",
        "approval_expired": "expired", "changes_requested": "changes_requested", "step_cancelled": "cancelled",
    ]

    /// The history entry that ended approval `id`: a decision naming it, or the expiry or
    /// cancellation of its step after it was asked.
    static func outcome(of id: String, in entries: [JSONObject]) -> JSONObject? {
        func approvalID(_ entry: JSONObject) -> String? { entry["detail"]?.objectValue?["approval_id"]?.stringValue }
        guard let asked = entries.lastIndex(where: { $0["event"] == "approval_requested" && approvalID($0) == id }) else { return nil }
        let step = entries[asked]["step"]
        return entries[(asked + 1)...].first { entry in
            guard let event = entry["event"]?.stringValue, outcomes[event] != nil else { return false }
            return approvalID(entry) == id || ((event == "approval_expired" || event == "step_cancelled") && entry["step"] == step)
        }
    }

    private func waitForDecision(_ arguments: [String: Value], progress: @escaping @Sendable (Double, String) async -> Void) async throws -> JSONObject {
        let timeout = min(600, max(1, arguments["timeout_seconds"]?.intValue ?? 60))
        return try await decision(
            workflowID: try Self.id(arguments["workflow_id"]), approvalID: arguments["approval_id"]?.stringValue, timeout: .seconds(timeout), progress: progress
        )
    }

    /// Waits up to `timeout` for approval `approvalID` of the workflow (its latest when nil)
    /// to end. Answers its status (`outcomes`), who decided, when, and what the decision
    /// carried; or status "pending", which is never an approval.
    func decision(
        workflowID: String, approvalID: String?, timeout: Duration, progress: @escaping @Sendable (Double, String) async -> Void
    ) async throws -> JSONObject {
        let started = ContinuousClock.now
        var wanted = approvalID
        while true {
            let entries = try await api.history(workflowID)
            if wanted == nil {
                wanted = entries.last { $0["event"] == "approval_requested" }?["detail"]?.objectValue?["approval_id"]?.stringValue
            }
            if let wanted, let decided = Self.outcome(of: wanted, in: entries) {
                let detail = decided["detail"]?.objectValue ?? [:]
                var answer: JSONObject = [
                    "status": .string(Self.outcomes[decided["event"]?.stringValue ?? ""] ?? "decided"), "workflow_id": .string(workflowID),
                    "approval_id": .string(wanted), "decided_by": decided["actor"] ?? .null, "at": decided["at"] ?? .null,
                ]
                for key in ["comment", "changes", "fields", "reason", "receipt"] where detail[key] != nil { answer[key] = detail[key] }
                return answer
            }
            let waited = ContinuousClock.now - started
            if waited >= timeout {
                return [
                    "status": "pending", "workflow_id": .string(workflowID), "approval_id": wanted.map(JSONValue.string) ?? .null,
                    "note": .string("nobody decided within \(timeout.components.seconds) s; this is not an approval: wait again"),
                ]
            }
            await progress(Double(waited.components.seconds), "waiting for a human decision")
            try await Task.sleep(for: pollInterval)
        }
    }

    private func submitTaskResult(_ arguments: [String: Value]) async throws -> JSONObject {
        let workflowID = try Self.id(arguments["workflow_id"])
        guard let step = arguments["step"]?.stringValue, let attempt = arguments["attempt"]?.intValue, let token = arguments["token"]?.stringValue,
            let outcome = arguments["outcome"]?.stringValue
        else { throw ToolFailure("step, attempt, token and outcome are required") }
        var body: JSONObject = ["attempt": .number(Double(attempt)), "outcome": .string(outcome), "token": .string(token)]
        if let output = arguments["output"] { body["output"] = try JSONBridge.json(output) }
        if let error = arguments["error"]?.stringValue { body["error"] = .string(error) }
        let answer = try await api.orchestrator.submitTaskResult(path: .init(id: workflowID, name: step), body: .json(JSONBridge.typed(body)))
        return try JSONBridge.object(try answer.ok.body.json)
    }
}

/// A tool call that cannot be made as asked; the reason goes back to the agent.
public struct ToolFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
