import Contracts
import Foundation
import ServiceKit

/// One workflow as the engine works on it, and every change made to it until it is saved.
/// Each change goes through `change(...)`: the status through the transition table, the
/// step's status, its history entry and its lifecycle event, together.
///
/// The session holds plain values and touches no database: `WorkflowRepository` loads it
/// (locked, in the caller's transaction) and saves what it collected (`changes`) in one
/// statement, with its events, so the engine runs the same without Postgres (the engine's
/// unit tests drive workflows through it offline).
final class WorkflowSession {
    private(set) var workflow: WorkflowRow
    var steps: [StepRow]
    /// The version the workflow row had when loaded; the save is guarded by it.
    let loadedVersion: Int
    /// What the session changed since it was loaded (or last saved).
    private(set) var changes = WorkflowChanges()
    /// Makes the envelopes of the events it publishes (service name and cause).
    private let envelopes: EnvelopeMaker
    /// The decision receipts kept for the workflow before this session, read on first use.
    private let loadReceipts: @Sendable () async throws -> [KeptReceipt]
    private var loadedReceipts: [KeptReceipt]?
    /// Wakes the http worker once queued calls committed.
    private let httpWakeup: Wakeup

    init(
        workflow: WorkflowRow, steps: [StepRow], envelopes: EnvelopeMaker, httpWakeup: Wakeup,
        receipts: @escaping @Sendable () async throws -> [KeptReceipt] = { [] }
    ) {
        self.workflow = workflow
        self.steps = steps
        self.loadedVersion = workflow.version
        self.envelopes = envelopes
        self.httpWakeup = httpWakeup
        self.loadReceipts = receipts
    }

    var status: WorkflowStatus { workflow.status }
    var id: String { workflow.id.description }

    /// What expressions see: the input as it stands and the outputs of completed steps.
    var scope: JSONObject {
        ["input": .object(workflow.input), "outputs": .object(outputs)]
    }

    var outputs: JSONObject {
        var outputs: JSONObject = [:]
        for step in steps where step.status == .completed || (step.status == .approved && step.output != nil) {
            outputs[step.name] = .object(step.output ?? [:])
        }
        return outputs
    }

    func position(of name: String) -> Int? {
        steps.firstIndex { $0.name == name }
    }

    // MARK: - Changes

    /// Records one change: optionally a new workflow status (checked against the
    /// transition table) and a new step status, as one history entry, and writes the
    /// step's row as it stands; announces a status
    /// change on `hitl.workflow.events` and notes it in the conversation.
    func change(
        _ event: String, actor: String, step position: Int? = nil, stepStatus: StepStatus? = nil,
        status newStatus: WorkflowStatus? = nil, detail: JSONObject = [:], reason: String? = nil
    ) async throws {
        let from = workflow.status
        if let newStatus, newStatus != from {
            try WorkflowTransitions.check(from: from, to: newStatus)
            workflow.status = newStatus
        }
        var detail = detail
        if let reason { detail["reason"] = .string(reason) }
        let stepName = position.map { steps[$0].name }
        if let position {
            if let stepStatus {
                steps[position].status = stepStatus
                detail["step_status"] = .string(stepStatus.rawValue)
            }
            saveStep(position)
        }
        let statusChanged = newStatus != nil && newStatus != from
        changes.history.append(
            WorkflowChanges.History(
                event: event, from: statusChanged ? from : nil, to: statusChanged ? workflow.status : nil, step: stepName, actor: actor,
                detail: try JSONColumn.text(detail)))
        guard statusChanged else { return }
        let lifecycle = WorkflowLifecycle(
            change: event == "resumed" ? .workflowResumed : WorkflowLifecycle.type(for: workflow.status),
            workflowId: id, workflowType: workflow.type, status: workflow.status, step: stepName, reason: reason, at: Date())
        try await announce(lifecycle)
        let note = "Status \(workflow.status.rawValue)" + (stepName.map { " at step \($0)" } ?? "") + (reason.map { ": \($0)" } ?? "")
        try await addMessage(kind: "note", author: "hitl", step: stepName, text: note)
    }

    /// Publishes a lifecycle event on `hitl.workflow.events` and, when the workflow has a
    /// `callback_url`, queues it for the signed callback.
    func announce(_ lifecycle: WorkflowLifecycle) async throws {
        try await publish(lifecycle, to: .workflowEvents)
        if let callbackURL = workflow.callbackURL {
            var body = try WireCoding.decode(JSONObject.self, from: WireCoding.encode(lifecycle))
            body["type"] = .string(lifecycle.change.rawValue)
            queue(
                WorkflowChanges.HTTPCall(
                    kind: .callback, step: "", attempt: 0, compensation: false,
                    request: HTTPTaskRequest(url: callbackURL, method: "POST", headers: [:], body: .object(body), timeoutSeconds: 10)))
        }
    }

    /// Records something that changed no status (a stale answer, a held decision).
    func note(_ event: String, actor: String, step position: Int?, detail: JSONObject) async throws {
        try await change(event, actor: actor, step: position, detail: detail)
    }

    func setInput(_ input: JSONObject) {
        workflow.input = input
    }

    func setCurrentStep(_ position: Int) {
        workflow.currentStep = position
    }

    func setOutcome(_ outcome: WorkflowStatus, reason: String) {
        workflow.outcome = outcome
        workflow.reason = reason
    }

    /// Publishes `payload` with the save, caused by the event being handled.
    func publish<Payload: EventPayload>(_ payload: Payload, to topic: Topic) async throws {
        changes.events.append((try envelope(payload), topic))
    }

    /// The envelope `publish` would write for `payload`.
    func envelope<Payload: EventPayload>(_ payload: Payload) throws -> EventEnvelope {
        try envelopes.make(payload, subject: id)
    }

    func addMessage(kind: String, author: String, step: String?, text: String) async throws {
        changes.messages.append(WorkflowChanges.Message(kind: kind, author: author, step: step, text: text))
    }

    func onCommit(_ action: @escaping @Sendable () -> Void) {
        changes.afterCommit.append(action)
    }

    /// Marks the step row to be written, as it then stands, with the save.
    func saveStep(_ position: Int) {
        changes.changedSteps.insert(position)
    }

    // MARK: - Http calls

    /// Queues an http call (a task attempt or a lifecycle callback) for `HTTPTaskWorker`,
    /// which makes it once the save committed.
    func queue(_ call: WorkflowChanges.HTTPCall) {
        if changes.httpCalls.isEmpty { onCommit { [httpWakeup] in httpWakeup.signal() } }
        changes.httpCalls.append(call)
    }

    /// Drops the task calls of `step` that no worker has taken yet: queued before this
    /// session (deleted with the save) or in it.
    func dropQueuedCalls(of step: String) {
        changes.httpCalls.removeAll { $0.kind == .task && $0.step == step }
        changes.droppedCallSteps.append(step)
    }

    // MARK: - Receipts

    /// Keeps a decision's signed receipt with the hash of the input it approved.
    func keep(_ receipt: KeptReceipt) {
        changes.receipts.append(receipt)
    }

    /// Every receipt kept for the workflow, the ones of this session included; for a step
    /// and round kept twice, the first.
    func receipts() async throws -> [KeptReceipt] {
        if loadedReceipts == nil { loadedReceipts = try await loadReceipts() }
        var all = loadedReceipts ?? []
        for receipt in changes.receipts where !all.contains(where: { $0.step == receipt.step && $0.round == receipt.round }) {
            all.append(receipt)
        }
        return all
    }

    // MARK: - Saving

    /// Hands over what was collected, once it is written; the session then counts as saved
    /// at `version`.
    func takeChanges() -> WorkflowChanges {
        defer { changes = WorkflowChanges() }
        return changes
    }

    /// Records that the save wrote version `version` of the workflow row.
    func saved(version: Int) {
        workflow.version = version
    }
}

/// What a session changed, as the repository writes it: step rows, history, messages,
/// events, queued http calls and receipts, and what to do once it all committed.
struct WorkflowChanges {
    struct History {
        var event: String
        var from: WorkflowStatus?
        var to: WorkflowStatus?
        var step: String?
        var actor: String
        /// The detail object as JSON text.
        var detail: String
    }

    struct Message {
        var kind: String
        var author: String
        var step: String?
        var text: String
    }

    struct HTTPCall {
        enum Kind: String { case task, callback }
        var kind: Kind
        /// The step the call is an attempt of; empty for a callback.
        var step: String
        var attempt: Int
        var compensation: Bool
        var request: HTTPTaskRequest
    }

    var changedSteps: Set<Int> = []
    var history: [History] = []
    var messages: [Message] = []
    var events: [(envelope: EventEnvelope, topic: Topic)] = []
    var httpCalls: [HTTPCall] = []
    /// Steps whose untaken task calls, queued before the session, are dropped.
    var droppedCallSteps: [String] = []
    var receipts: [KeptReceipt] = []
    var afterCommit: [@Sendable () -> Void] = []
}

/// A decision's signed receipt as the workflow keeps it: the input it approved is the hash
/// the approval service signed, so what a step is checked against is the approvers' word.
struct KeptReceipt: Sendable, Equatable {
    var step: String
    var round: Int
    var receipt: String
    var inputSha256: String
    var at: Date
}

/// Makes the envelopes of a session's events: its service as source, its cause.
struct EnvelopeMaker: Sendable {
    var source: String
    var cause: EventEnvelope?

    func make<Payload: EventPayload>(_ payload: Payload, subject: String) throws -> EventEnvelope {
        try EventEnvelope(payload, source: source, subject: subject, causedBy: cause)
    }
}
