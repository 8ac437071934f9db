import Contracts
import Crypto
import Foundation
import ServiceKit

@testable import OrchestratorService

/// A workflow driven through the engine on plain values, with no Postgres and no Kafka.
/// Each `apply` does what an event handler does around the engine: the session is
/// "loaded" from the state the last save left, changed, and "saved" (its changes taken and
/// kept here for the test to read).
final class OfflineWorkflow {
    static let tokens = TaskTokens(key: "offline-test-key")

    let engine = WorkflowEngine(tasks: TaskDispatcher(tokens: OfflineWorkflow.tokens), repository: WorkflowRepository(httpWakeup: Wakeup()))
    private(set) var session: WorkflowSession
    /// Everything published so far, in order.
    private(set) var events: [(envelope: EventEnvelope, topic: Topic)] = []
    /// Every history entry so far, in order.
    private(set) var history: [WorkflowChanges.History] = []
    /// Every http call queued so far, and the steps whose queued calls were dropped.
    private(set) var calls: [WorkflowChanges.HTTPCall] = []
    private(set) var droppedCalls: [String] = []
    private var receipts: [KeptReceipt] = []

    init(steps json: String, input: JSONObject, callbackURL: String? = nil) async throws {
        let definitions = try WireCoding.decode([StepDefinition].self, from: Array(json.utf8))
        if let problem = DefinitionValidation.problem(in: definitions) { throw OfflineFailure("invalid steps: \(problem)") }
        let workflow = WorkflowRow(
            id: WorkflowID(), type: "payment", requester: "agent@bank.example", input: input, status: .running, currentStep: 0, version: 1,
            callbackURL: callbackURL)
        session = WorkflowSession(
            workflow: workflow,
            steps: definitions.enumerated().map { StepRow(position: $0.offset, name: $0.element.name, definition: $0.element, status: .pending) },
            envelopes: EnvelopeMaker(source: "orchestrator", cause: nil), httpWakeup: Wakeup())
        try await engine.start(session, idempotencyKey: "offline", template: nil, gates: [], actor: "agent:agent@bank.example")
        save()
    }

    /// Applies one change to the workflow, then saves it.
    func apply(_ body: (WorkflowEngine, WorkflowSession) async throws -> Void) async throws {
        try await body(engine, session)
        save()
    }

    private func save() {
        let changes = session.takeChanges()
        events += changes.events
        history += changes.history
        calls += changes.httpCalls
        droppedCalls += changes.droppedCallSteps
        for receipt in changes.receipts where !receipts.contains(where: { $0.step == receipt.step && $0.round == receipt.round }) {
            receipts.append(receipt)
        }
        var workflow = session.workflow
        workflow.version += 1
        let kept = receipts
        session = WorkflowSession(
            workflow: workflow, steps: session.steps, envelopes: EnvelopeMaker(source: "orchestrator", cause: nil), httpWakeup: Wakeup(),
            receipts: { kept })
    }

    // MARK: - Reading

    var id: String { session.id }
    var status: WorkflowStatus { session.status }

    func step(_ name: String) throws -> StepRow {
        guard let position = session.position(of: name) else { throw OfflineFailure("no step \(name)") }
        return session.steps[position]
    }

    /// The history's event names, in order.
    var eventNames: [String] { history.map(\.event) }

    /// The payloads of type `Payload` published so far, in order.
    func published<Payload: EventPayload>(_: Payload.Type) throws -> [Payload] {
        try events.filter { Payload.acceptedTypes.contains($0.envelope.type) }.map { try $0.envelope.decode(Payload.self) }
    }

    /// The task requested last for `step`.
    func lastTask(_ step: String) throws -> TaskRequested {
        guard let task = try published(TaskRequested.self).last(where: { $0.step == step }) else { throw OfflineFailure("no task for \(step)") }
        return task
    }

    /// The approval asked last for `step`.
    func lastApproval(_ step: String) throws -> ApprovalRequested {
        guard let asked = try published(ApprovalRequested.self).last(where: { $0.step == step }) else { throw OfflineFailure("no approval for \(step)") }
        return asked
    }

    // MARK: - Answers

    /// An agent's answer to the attempt of `step` (the latest by default), with its token.
    func answer(
        _ step: String, attempt: Int? = nil, compensation: Bool = false, outcome: TaskResult.Outcome = .succeeded, output: JSONObject = [:],
        error: String? = nil
    ) async throws {
        let row = try self.step(step)
        let attempt = attempt ?? row[Track(compensation: compensation)].attempt
        let result = TaskResult(
            workflowId: id, step: step, attempt: attempt, compensation: compensation, outcome: outcome, output: output, error: error, worker: "worker-1",
            token: Self.tokens.token(workflowID: id, step: step, attempt: attempt, compensation: compensation))
        try await apply { engine, session in try await engine.applyTaskResult(result, actor: "agent:worker-1", session: session) }
    }

    /// A human's decision on the approval asked last for `step`, with a signed receipt.
    func decide(_ step: String, _ decision: Decision, changes: JSONObject? = nil, comment: String? = nil, approver: String = "manager@bank.example")
        async throws
    {
        let asked = try lastApproval(step)
        let decidedAt = Date()
        let receipt = try DecisionReceipt.sign(
            DecisionReceipt.Claims(
                approvalId: asked.approvalId, workflowId: id, step: step, outcome: decision, decidedBy: approver, onBehalfOf: nil, channel: "api",
                decidedAt: decidedAt, rule: nil, shown: asked.context, changes: decision == .approveWithChanges ? changes : nil),
            key: P256.Signing.PrivateKey(), kid: "test")
        let decided = ApprovalDecided(
            approvalId: asked.approvalId, workflowId: id, step: step, decision: decision, approver: approver, comment: comment, channel: "api",
            decidedAt: decidedAt, changes: changes, receipt: receipt)
        try await apply { engine, session in try await engine.applyDecision(decided, session: session) }
    }
}

struct OfflineFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
