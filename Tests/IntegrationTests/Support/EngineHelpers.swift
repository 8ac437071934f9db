import Contracts
import Crypto
import DevStack
import Foundation
import Kafka
import Logging
import ServiceKitTesting
import Testing

@testable import OrchestratorService

/// What the engine flow tests do to a stack: submit definitions, answer tasks like an
/// agent, read the history and check that it rebuilds the current state.
extension Stack {
    func submit(key: String, input: String, steps: String, extra: String = "") async throws -> String {
        let answer = try await submit(
            #"{"idempotency_key":"\#(key)","type":"wire_transfer","requester":"agent@bank.example","input":\#(input),"steps":\#(steps)\#(extra)}"#)
        guard answer.status == 201, let id = answer.string("id") else { throw StackError("submission refused: \(answer.status) \(answer.text)") }
        return id
    }

    /// The step's status, attempt and round as the API shows them.
    func step(_ id: String, _ name: String) async throws -> JSONObject {
        let shown = try await workflow(id)
        guard case .array(let steps)? = shown["steps"] else { return [:] }
        return steps.compactMap(\.objectValue).first { $0["name"] == .string(name) } ?? [:]
    }

    func waitForStep(_ id: String, _ name: String, _ status: String, timeout: Duration = .seconds(30)) async throws -> JSONObject {
        var found: JSONObject = [:]
        try await waitUntil("step \(name) of \(id) to be \(status)", timeout: timeout) {
            found = try await step(id, name)
            return found["status"] == .string(status)
        }
        return found
    }

    /// The token the orchestrator hands out with that attempt (as the assigned worker holds it).
    func taskToken(_ id: String, step: String, attempt: Int, compensation: Bool = false) -> String {
        TaskTokens(key: local.options.taskTokenKey).token(workflowID: id, step: step, attempt: attempt, compensation: compensation)
    }

    /// Answers the step's current attempt over HTTP, as the agent it was handed to would
    /// (with the attempt's token, unless `token` names another).
    @discardableResult
    func answer(
        _ id: String, step name: String, attempt: Int? = nil, compensation: Bool = false, outcome: String = "succeeded", output: String = "{}",
        error: String? = nil, token: String? = nil, as bearer: String = TestTokens.admin
    ) async throws -> Answer {
        var number = attempt ?? 0
        if attempt == nil {
            let step = try await step(id, name)
            if case .number(let value)? = step["attempt"] { number = Int(value) }
        }
        let errorJSON = error.map { #","error":"\#($0)""# } ?? ""
        let token = token ?? taskToken(id, step: name, attempt: number, compensation: compensation)
        return try await API.post(
            "\(orchestrator)/v1/workflows/\(id)/steps/\(name)/result",
            #"{"attempt":\#(number),"compensation":\#(compensation),"outcome":"\#(outcome)","output":\#(output),"worker":"test-agent","token":"\#(token)"\#(errorJSON)}"#,
            token: bearer)
    }

    func history(_ id: String) async throws -> [HistoryEntry] {
        let answer = try await API.get("\(orchestrator)/v1/workflows/\(id)/history")
        guard case .array(let items)? = answer["items"] else { return [] }
        return try items.map { try WireCoding.decode(HistoryEntry.self, from: WireCoding.encode($0)) }
    }

    func events(_ id: String) async throws -> [String] {
        try await history(id).map(\.event)
    }

    /// Checks that the history alone rebuilds the workflow's status, step statuses and input.
    func expectHistoryRebuildsState(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let shown = try await workflow(id)
        let rebuilt = try #require(HistoryReplay.rebuild(try await history(id)), sourceLocation: sourceLocation)
        #expect(shown.string("status") == rebuilt.status.rawValue, sourceLocation: sourceLocation)
        #expect(shown["input"] == .object(rebuilt.input), sourceLocation: sourceLocation)
        guard case .array(let steps)? = shown["steps"] else { return }
        for step in steps.compactMap(\.objectValue) {
            guard case .string(let name)? = step["name"], case .string(let status)? = step["status"] else { continue }
            #expect(rebuilt.steps[name] ?? "pending" == status, "step \(name)", sourceLocation: sourceLocation)
        }
    }

    /// The task requests published for workflow `id`, once they match `until`.
    func taskRequests(of id: String, until: @escaping @Sendable ([TaskRequested]) -> Bool = { !$0.isEmpty }) async throws -> [TaskRequested] {
        @Sendable func requests(_ envelopes: [EventEnvelope]) -> [TaskRequested] {
            envelopes.compactMap { try? $0.decode(TaskRequested.self) }.filter { $0.workflowId == id }
        }
        let envelopes = try await reading(.tasks) { collected in
            try await waitUntil("task requests of \(id)") { until(requests(await collected.items)) }
        }
        return requests(envelopes)
    }

    /// `decision` with a receipt signed by this stack's approval-service key (or `key`), as
    /// the approval service would publish it.
    func signed(_ decision: ApprovalDecided, shown: JSONObject, key: String? = nil) throws -> ApprovalDecided {
        let pair = (key ?? local.options.receiptKeys).split(separator: ",")[0].split(separator: ":", maxSplits: 1)
        let privateKey = try P256.Signing.PrivateKey(rawRepresentation: Data(base64Encoded: String(pair[1]))!)
        var signed = decision
        signed.receipt = try DecisionReceipt.sign(
            DecisionReceipt.Claims(
                approvalId: decision.approvalId, workflowId: decision.workflowId, step: decision.step, outcome: decision.decision,
                decidedBy: decision.approver, onBehalfOf: decision.onBehalfOf, channel: decision.channel, decidedAt: decision.decidedAt, rule: nil,
                shown: shown, changes: decision.changes),
            key: privateKey, kid: String(pair[0]))
        return signed
    }

    /// The web sign-in link the approver got for `approval`, once its notification arrived.
    func webLink(_ approval: String, approver: String = "manager@bank.example") async throws -> String {
        var link: String?
        try await waitUntil("the notification with the web link") {
            link = await webhook.accepted.items.first { $0.approvalId == approval }?.links["web:\(approver)"]
            return link != nil
        }
        return link!
    }

    /// Decides with a body as given, with the token of the approver it names.
    func decide(_ approvalID: String, json: String) async throws -> Answer {
        let approver = (try? WireCoding.decode(JSONObject.self, from: Array(json.utf8)))?["approver"]
        guard case .string(let name)? = approver else { return try await API.post("\(approval)/v1/approvals/\(approvalID)/decision", json) }
        return try await API.post("\(approval)/v1/approvals/\(approvalID)/decision", json, token: TestTokens.approver(name))
    }
}

/// Approval, then a no-op: the banking transfer of the seeds, with its threshold rule.
enum Definitions {
    static let threshold = #"""
        [{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"timeout_seconds":3600,"auto_approve_when":"input.amount < 5000"}},
         {"name":"execute","kind":"task","task":{"type":"noop"}}]
        """#
    static let draftApproveExecute = #"""
        [{"name":"draft","kind":"task","task":{"type":"agent","agent":"writer"}},
         {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"timeout_seconds":3600,"revise_step":"draft","max_rounds":2}},
         {"name":"execute","kind":"task","task":{"type":"agent","agent":"payer"}}]
        """#
}
