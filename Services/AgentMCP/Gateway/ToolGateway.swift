import Contracts
import Foundation
import HITLClient
import MCP

/// `hitl mcp gate`: an MCP server in front of another one. It lists the upstream's tools as
/// its own and passes calls straight through, except those its policy gates: such a call
/// becomes a HITL workflow whose approval shows the tool, the arguments and the agent's
/// reason, and is made upstream only once a human approved it, exactly once, with the
/// approved (or the approver's changed) arguments and the decision's signed receipt.
///
/// A held call answers within `hold` (under common client timeouts, with progress
/// notifications); undecided by then it answers "pending", and the same call again (same
/// tool, arguments and caller) picks up where it was, after a restart too (`GateLedger`).
public struct ToolGateway: Sendable {
    /// The argument a gated tool gains in the listing: the agent's reason, for the approver.
    static let reasonArgument = "hitl_reason"
    /// Input keys the approval shows besides the arguments.
    static let toolKey = "mcp_tool", reasonKey = "mcp_reason", grantKey = "mcp_grant"

    let upstream: GateUpstream
    let policy: GatePolicy
    let ledger: GateLedger
    let api: APIClient
    /// The agent the token names: the requester of every approval and the caller grants are for.
    let caller: String
    var pollInterval: Duration = .seconds(1)

    public init(upstream: GateUpstream, policy: GatePolicy, statePath: String, api: APIClient) throws {
        guard let caller = api.subject else { throw ToolFailure("the token is not a JWT with a sub claim") }
        self.upstream = upstream
        self.policy = policy
        self.ledger = try GateLedger(path: statePath)
        self.api = api
        self.caller = caller
    }

    static func holdsInexactInteger(_ value: Value) -> Bool {
        switch value {
        case .int(let number): abs(number) > 1 << 53
        case .array(let items): items.contains(where: holdsInexactInteger)
        case .object(let members): members.values.contains(where: holdsInexactInteger)
        default: false
        }
    }

    private var hold: Duration { .seconds(policy.holdSeconds ?? 45) }
    private var replayWindow: TimeInterval { TimeInterval((policy.replayMinutes ?? 10) * 60) }

    /// The server the agent's client talks to.
    public func server() async -> Server {
        let server = Server(name: "hitl-gate", version: "1.0.0", capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: try await tools()) }
        await server.withMethodHandler(CallTool.self) { [server] params in
            let progressToken = params._meta?.progressToken
            return await call(params.name, params.arguments ?? [:]) { progress, message in
                guard let progressToken else { return }
                try? await server.notify(ProgressNotification.message(.init(progressToken: progressToken, progress: progress, message: message)))
            }
        }
        return server
    }

    /// The upstream's tools; those the policy names take the agent's reason too.
    func tools() async throws -> [Tool] {
        try await upstream.tools().map { tool in
            guard policy.names(tool.name), case .object(var schema) = tool.inputSchema else { return tool }
            var properties = schema["properties"]?.objectValue ?? [:]
            properties[Self.reasonArgument] = .object([
                "type": "string",
                "description": "Why you make this call, for the human who may have to approve it first.",
            ])
            schema["properties"] = .object(properties)
            return Tool(
                name: tool.name, title: tool.title,
                description: (tool.description ?? "")
                    + " (Some calls need a human's approval first; they answer \"pending\" until then: call again with the same arguments.)",
                inputSchema: .object(schema), annotations: tool.annotations, outputSchema: tool.outputSchema, icons: tool.icons, _meta: tool._meta)
        }
    }

    /// Handles one call: straight through, or held for a human.
    func call(_ name: String, _ given: [String: Value], progress: @escaping @Sendable (Double, String) async -> Void) async -> CallTool.Result {
        var arguments = given
        let reason = arguments.removeValue(forKey: Self.reasonArgument)?.stringValue
        do {
            let json = try arguments.mapValues(JSONBridge.json)
            guard let rule = policy.rule(for: name, arguments: json, caller: caller) else {
                return try await upstream.call(name, arguments: arguments, meta: nil)
            }
            // Numbers become doubles on the way to the approval: a larger integer would not be shown, or told apart, as it is.
            if let key = arguments.first(where: { Self.holdsInexactInteger($0.value) })?.key {
                throw ToolFailure("argument \(key) holds an integer beyond ±2^53, which cannot be shown to an approver exactly; pass it as a string")
            }
            let id = try callID(name, json)
            await ledger.acquire(id)
            do {
                let result = try await gated(id: id, tool: name, arguments: arguments, json: json, reason: reason, rule: rule, progress: progress)
                await ledger.release(id)
                return result
            } catch {
                await ledger.release(id)
                throw error
            }
        } catch {
            return AgentTools.result(HITLClient.describe(error), isError: true)
        }
    }

    /// Same tool, same arguments, same caller: the same call.
    func callID(_ tool: String, _ arguments: JSONObject) throws -> String {
        Digest.sha256Hex(Array(caller.utf8) + [0] + Array(tool.utf8) + [0] + (try WireCoding.encode(JSONValue.object(arguments))))
    }

    private func gated(
        id: String, tool: String, arguments: [String: Value], json: JSONObject, reason: String?, rule: GatePolicy.MatchedRule,
        progress: @escaping @Sendable (Double, String) async -> Void
    ) async throws -> CallTool.Result {
        let now = Date()
        try await ledger.prune(finishedBefore: now.addingTimeInterval(-replayWindow), now: now)
        var call: GateLedger.Call
        if let known = await ledger.call(id) {
            call = known
            switch call.state {
            case .done, .refused:
                // The client asking again for an answer it lost.
                return Self.adding(["hitl/replayed": true], to: call.result ?? AgentTools.result("no answer was kept", isError: true))
            case .executing:
                throw ToolFailure(
                    "the gateway stopped while it was making this call upstream (workflow \(call.workflowId ?? "?")); whether it happened is unknown, so it is not made again: check with the upstream"
                )
            case .requested, .waiting: break
            }
        } else {
            call = GateLedger.Call(
                id: id, tool: tool, caller: caller, arguments: arguments, submission: Data(), workflowId: nil, state: .requested, result: nil, finishedAt: nil)
            if let grant = await liveGrant(for: id, tool: tool, json: json, rule: rule, now: now) {
                // Recorded like an approved call, so a retry is answered, not made again.
                call.workflowId = grant.workflowId
                return try await execute(&call, arguments: arguments, meta: ["hitl/granted_by": .string(grant.workflowId), "hitl/call_id": .string(id)])
            }
            call.submission = Data(try WireCoding.encode(JSONValue.object(submission(id: id, tool: tool, json: json, reason: reason, rule: rule.rule))))
            try await ledger.save(call)
        }
        if call.state == .requested {
            let body = try WireCoding.decode(JSONObject.self, from: Array(call.submission))
            call.workflowId = try await api.submit(body).id
            call.state = .waiting
            try await ledger.save(call)
        }
        let workflowID = call.workflowId ?? ""
        guard let workflow = try await finished(workflowID, progress: progress) else {
            return try pending(call)
        }
        switch try await verdict(on: workflow, of: call, json: json) {
        case .refused(let why):
            call.result = AgentTools.result("the call of \(tool) was not made: \(why)", isError: true)
            call.state = .refused
            call.finishedAt = Date()
            try await ledger.save(call)
            return call.result!
        case .approved(let approved, let decidedAt, var meta, let grantKept):
            meta["hitl/workflow_id"] = .string(workflowID)
            meta["hitl/call_id"] = .string(id)
            let result = try await execute(&call, arguments: approved, meta: meta)
            if let grant = rule.rule.grant, grantKept {
                // A same-arguments grant covers the arguments the approver approved.
                let approvedID = try callID(tool, try approved.mapValues(JSONBridge.json))
                try await ledger.addGrant(
                    .init(
                        tool: tool, caller: caller, rule: rule.fingerprint, callId: grant.when == nil ? approvedID : nil, when: grant.when,
                        until: decidedAt.addingTimeInterval(TimeInterval(grant.minutes * 60)), workflowId: workflowID))
            }
            return result
        }
    }

    /// Makes the call upstream, once: the ledger says "executing" on disk before the call
    /// is begun and "done", with the answer, after it.
    private func execute(_ call: inout GateLedger.Call, arguments: [String: Value], meta: [String: Value]) async throws -> CallTool.Result {
        call.state = .executing
        try await ledger.save(call)
        var result: CallTool.Result
        do {
            result = try await upstream.call(call.tool, arguments: arguments, meta: Metadata(additionalFields: meta))
        } catch {
            result = AgentTools.result("the upstream call of \(call.tool) failed after approval (\(error)); it is not made again", isError: true)
        }
        result = Self.adding(meta, to: result)
        call.result = result
        call.state = .done
        call.finishedAt = Date()
        try await ledger.save(call)
        return result
    }

    enum Verdict {
        /// The arguments as approved, when the decision was taken, what the upstream is told,
        /// and whether the grant the approver was shown stands.
        case approved([String: Value], decidedAt: Date, meta: [String: Value], grantKept: Bool)
        case refused(String)
    }

    /// What the ended workflow says of the call. Only a human's approval of this very call
    /// counts: a workflow that completed on a rule, a policy or without an approval step
    /// (an admin's template may) is a refusal, and so is one that is not this call's.
    func verdict(on workflow: JSONObject, of call: GateLedger.Call, json: JSONObject) async throws -> Verdict {
        let workflowID = call.workflowId ?? ""
        let history = try await api.history(workflowID)
        let decision = history.last { AgentTools.outcomes[$0["event"]?.stringValue ?? ""] != nil }
        let decidedBy = decision?["actor"]?.stringValue ?? "nobody"
        let detail = decision?["detail"]?.objectValue ?? [:]
        let input = workflow["input"]?.objectValue ?? [:]
        guard workflow["status"] == "completed" else {
            let why = detail["comment"]?.stringValue ?? detail["reason"]?.stringValue ?? "no reason given"
            return .refused("the approval workflow \(workflowID) ended \(workflow["status"]?.stringValue ?? "?") (decided by \(decidedBy): \(why))")
        }
        guard input[Self.toolKey] == .string(call.tool), workflow["requester"] == .string(caller) else {
            return .refused("workflow \(workflowID) is not an approval of this call")
        }
        guard let event = decision?["event"]?.stringValue, event == "approved" || event == "approved_with_changes", decidedBy.hasPrefix("approver:") else {
            return .refused("workflow \(workflowID) completed without a human's approval (last decision: \(decidedBy))")
        }
        let decidedAt = decision?["at"]?.stringValue.flatMap(WireCoding.parseTime) ?? Date()
        if Date().timeIntervalSince(decidedAt) > TimeInterval((policy.executeWithinMinutes ?? 1440) * 60) {
            return .refused("it was approved at \(WireCoding.formatTime(decidedAt)), longer ago than the policy lets an approval be used; ask again")
        }
        // The arguments as the approver left them; every difference from the call must be a change they made.
        let changed = detail["changes"]?.objectValue ?? [:]
        var approved = call.arguments
        for (key, original) in json where input[key] != original {
            guard changed[key] != nil, let value = input[key] else { return .refused("argument \(key) differs from the call and no approver changed it") }
            approved[key] = try JSONBridge.value(value)
        }
        var meta: [String: Value] = ["hitl/approved_by": .string(decidedBy)]
        if let receipt = detail["receipt"]?.stringValue { meta["hitl/receipt"] = .string(receipt) }
        let submitted = (try? WireCoding.decode(JSONObject.self, from: Array(call.submission)))?["input"]?.objectValue?[Self.grantKey]
        return .approved(approved, decidedAt: decidedAt, meta: meta, grantKept: changed[Self.grantKey] == nil && input[Self.grantKey] == submitted)
    }

    static func adding(_ meta: [String: Value], to result: CallTool.Result) -> CallTool.Result {
        var result = result
        result._meta = Metadata(additionalFields: (result._meta?.fields ?? [:]).merging(meta) { $1 })
        return result
    }

    /// A grant from the same rule that covers this call, if any.
    private func liveGrant(for id: String, tool: String, json: JSONObject, rule: GatePolicy.MatchedRule, now: Date) async -> GateLedger.Grant? {
        let scope = GatePolicy.scope(tool: tool, arguments: json, caller: caller)
        return await ledger.grants(tool: tool, caller: caller, at: now).first { grant in
            guard grant.rule == rule.fingerprint else { return false }
            if let when = grant.when { return (try? Expression(when, roots: GatePolicy.roots))?.holds(in: scope) == true }
            return grant.callId == id
        }
    }

    /// The workflow that asks the approvers: the call's arguments as its input, beside the
    /// tool, the agent's reason and any grant the approval would give.
    private func submission(id: String, tool: String, json: JSONObject, reason: String?, rule: GatePolicy.Rule) throws -> JSONObject {
        var input = json
        for key in [Self.toolKey, Self.reasonKey, Self.grantKey] where input[key] != nil {
            throw ToolFailure("an argument is named \(key), which the approval uses itself; the call cannot be gated")
        }
        input[Self.toolKey] = .string(tool)
        input[Self.reasonKey] = .string(reason ?? "(the agent gave no reason)")
        if let grant = rule.grant { input[Self.grantKey] = .string(grant.describe(tool: tool, caller: caller)) }
        // A new key for each approval asked: an identical call after this one finished is a new request.
        var body: JSONObject = [
            "idempotency_key": .string("mcp-gate-\(id.prefix(24))-\(UUID().uuidString.lowercased())"),
            "type": .string(rule.type ?? "mcp_tool_call"), "requester": .string(caller), "input": .object(input),
        ]
        if let template = rule.template {
            body["template"] = .string(template)
            return body
        }
        var approval: JSONObject = [
            "approvers": .array((rule.approvers ?? policy.approvers ?? []).map(JSONValue.string)),
            "form": .object([
                "title": .string(String("\(caller) asks to call \(tool)".prefix(200))),
                "description": .string(String((reason ?? "The agent gave no reason.").prefix(2000))),
                "buttons": .array([
                    .object(["decision": "approve", "label": "make the call"]),
                    .object(["decision": "approve_with_changes", "label": "make it with my changes"]),
                    .object(["decision": "reject", "label": "do not make it"]),
                ]),
            ]),
        ]
        if let timeout = rule.timeoutSeconds { approval["timeout_seconds"] = .number(Double(timeout)) }
        body["steps"] = .array([.object(["name": "approve", "kind": "approval", "approval": .object(approval)])])
        return body
    }

    /// The workflow once it has ended, or nil if it is still going after `hold`.
    private func finished(_ workflowID: String, progress: @escaping @Sendable (Double, String) async -> Void) async throws -> JSONObject? {
        let started = ContinuousClock.now
        while true {
            let workflow = try await api.workflow(workflowID)
            if let status = workflow["status"]?.stringValue.flatMap(WorkflowStatus.init(rawValue:)), status.isFinal { return workflow }
            let waited = ContinuousClock.now - started
            if waited >= hold { return nil }
            await progress(Double(waited.components.seconds), "waiting for a human to approve the call")
            try await Task.sleep(for: pollInterval)
        }
    }

    private func pending(_ call: GateLedger.Call) throws -> CallTool.Result {
        let answer: JSONObject = [
            "status": "pending", "call_id": .string(call.id), "workflow_id": .string(call.workflowId ?? ""),
            "note": .string(
                "nothing was called yet: a human must approve this call first and has been asked (their HITL inbox, Slack or email). "
                    + "Call \(call.tool) again with the same arguments to get its result once approved; do not treat this as success."),
        ]
        return AgentTools.result(String(decoding: try WireCoding.encode(answer), as: UTF8.self), isError: true)
    }
}
