import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceKit

/// One workflow, locked for the length of the caller's transaction, and every change made
/// to it there. Each change goes through `change(...)`: the status through the transition
/// table, the step's status, its history entry and its lifecycle event, together.
/// The writes are collected and `save()` makes them, with the workflow row guarded by its
/// version, in one statement (one round trip); the events go with the transaction's outbox.
final class WorkflowSession {
    let transaction: Transaction
    private(set) var workflow: WorkflowRow
    var steps: [StepRow]
    private let loadedVersion: Int
    // Writes collected until `save()` (nil is written as an empty string and turned back
    // into NULL in SQL: step names and statuses are never empty).
    private var changedSteps: Set<Int> = []
    private var historyRows: [(event: String, from: String?, to: String?, step: String?, actor: String, detail: String)] = []
    private var messageRows: [(kind: String, author: String, step: String?, text: String)] = []
    private var events: [(envelope: EventEnvelope, topic: Topic)] = []
    /// Wakes the http worker for lifecycle callbacks.
    private let callbackWakeup: Wakeup

    init(workflow: WorkflowRow, steps: [StepRow], in transaction: Transaction, callbackWakeup: Wakeup) {
        self.callbackWakeup = callbackWakeup
        self.workflow = workflow
        self.steps = steps
        self.loadedVersion = workflow.version
        self.transaction = transaction.logging(to: transaction.logger.about(workflow: workflow.idText))
    }

    var status: WorkflowStatus { workflow.status }
    var id: String { workflow.idText }

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
        historyRows.append(
            (
                event, statusChanged ? from.rawValue : nil, statusChanged ? workflow.status.rawValue : nil, stepName, actor,
                try JSONColumn.text(detail)
            ))
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
            try await HTTPTaskWorker.enqueueCallback(lifecycle, to: callbackURL, workflowID: workflow.id, in: transaction)
            transaction.afterCommit { [callbackWakeup] in callbackWakeup.signal() }
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

    /// Publishes `payload` through the outbox, caused by the event being handled.
    func publish<Payload: EventPayload>(_ payload: Payload, to topic: Topic) async throws {
        events.append((try transaction.envelope(payload, subject: id), topic))
    }

    func addMessage(kind: String, author: String, step: String?, text: String) async throws {
        messageRows.append((kind, author, step, text))
    }

    func onCommit(_ action: @escaping @Sendable () -> Void) {
        transaction.afterCommit(action)
    }

    // MARK: - Persistence

    /// Marks the step row to be written, as it then stands, by `save()`.
    func saveStep(_ position: Int) {
        changedSteps.insert(position)
    }

    /// The changed steps as a JSON array of their columns, for `jsonb_to_recordset`.
    private func changedStepColumns() throws -> String {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func number(_ value: Int) -> JSONValue { .number(Double(value)) }
        let rows: [JSONValue] = try changedSteps.sorted().map { position in
            let step = steps[position]
            return .object([
                "position": number(position), "status": .string(step.status.rawValue),
                "approval_id": text(step.approvalID?.uuidString.lowercased()),
                "output": step.output.map(JSONValue.object) ?? .null, "held": try step.held.map { .object(try $0.stored) } ?? .null,
                "attempt": number(step.forward.attempt), "tries": number(step.forward.tries), "round": number(step.round),
                "feedback": text(step.feedback), "error": text(step.error), "compensation_status": text(step.compensationStatus?.rawValue),
                "compensation_attempt": number(step.compensation.attempt), "compensation_tries": number(step.compensation.tries),
            ])
        }
        return try JSONColumn.text(rows)
    }

    /// Makes the collected writes (changed steps, history, messages) and the workflow row,
    /// guarded by its version, in one statement; throws `StaleWorkflow` when another
    /// transaction changed the workflow. Events go to the outbox with the transaction.
    func save() async throws {
        let changed = try changedStepColumns()
        let input = try JSONColumn.text(workflow.input)
        let rows = try await transaction.query(
            """
            WITH changed_steps AS (
                UPDATE workflow_steps s
                SET status = c.status, approval_id = c.approval_id, output = c.output, attempt = c.attempt, tries = c.tries,
                    round = c.round, held = c.held, feedback = c.feedback, error = c.error, compensation_status = c.compensation_status,
                    compensation_attempt = c.compensation_attempt, compensation_tries = c.compensation_tries, updated_at = now()
                FROM jsonb_to_recordset(\(changed)::jsonb) AS c(
                    position integer, status text, approval_id uuid, output jsonb, attempt integer, tries integer, round integer,
                    held jsonb, feedback text, error text, compensation_status text, compensation_attempt integer, compensation_tries integer)
                WHERE s.workflow_id = \(workflow.id) AND s.position = c.position),
            history AS (
                INSERT INTO workflow_history (workflow_id, event, from_status, to_status, step, actor, detail)
                SELECT \(workflow.id), event, nullif(from_status, ''), nullif(to_status, ''), nullif(step, ''), actor, detail::jsonb
                FROM unnest(\(historyRows.map(\.event))::text[], \(historyRows.map { $0.from ?? "" })::text[], \(historyRows.map { $0.to ?? "" })::text[],
                            \(historyRows.map { $0.step ?? "" })::text[], \(historyRows.map(\.actor))::text[], \(historyRows.map(\.detail))::text[])
                     WITH ORDINALITY AS h(event, from_status, to_status, step, actor, detail, position)
                ORDER BY position),
            messages AS (
                INSERT INTO workflow_messages (workflow_id, kind, author, step, text)
                SELECT \(workflow.id), kind, author, nullif(step, ''), text
                FROM unnest(\(messageRows.map(\.kind))::text[], \(messageRows.map(\.author))::text[], \(messageRows.map { $0.step ?? "" })::text[],
                            \(messageRows.map(\.text))::text[])
                     WITH ORDINALITY AS m(kind, author, step, text, position)
                ORDER BY position)
            UPDATE workflows SET status = \(workflow.status.rawValue), current_step = \(workflow.currentStep),
                   input = \(input)::jsonb, outcome = \(workflow.outcome?.rawValue), reason = \(workflow.reason),
                   version = version + 1, updated_at = now()
            WHERE id = \(workflow.id) AND version = \(loadedVersion) RETURNING version
            """)
        var saved = false
        for try await version in rows.decode(Int.self) {
            workflow.version = version
            saved = true
        }
        guard saved else { throw StaleWorkflow(id: workflow.id) }
        changedSteps = []
        historyRows = []
        messageRows = []
        try transaction.publish(events)
        events = []
    }

    // MARK: - Loading

    /// Locks and loads workflow `id` with its steps, or nil when there is none.
    static func load(id: UUID, in transaction: Transaction, callbackWakeup: Wakeup) async throws -> WorkflowSession? {
        let rows = try await transaction.query(
            """
            SELECT id, type, requester, input::text, status, current_step, version, outcome, reason, callback_url
            FROM workflows WHERE id = \(id) FOR UPDATE
            """)
        var workflow: WorkflowRow?
        for try await (id, type, requester, input, status, current, version, outcome, reason, callback) in rows.decode(
            (UUID, String, String, String, String, Int, Int, String?, String?, String?).self)
        {
            workflow = WorkflowRow(
                id: id, type: type, requester: requester, input: JSONColumn.object(input),
                status: try WorkflowStatus(stored: status, column: "workflows.status"), currentStep: current, version: version,
                outcome: try outcome.map { try WorkflowStatus(stored: $0, column: "workflows.outcome") }, reason: reason, callbackURL: callback)
        }
        guard let workflow else { return nil }
        let stepRows = try await transaction.query(
            """
            SELECT position, name, definition::text, status, approval_id, output::text, attempt, tries, round, held::text,
                   feedback, error, compensation_status, compensation_attempt, compensation_tries
            FROM workflow_steps WHERE workflow_id = \(id) ORDER BY position
            """)
        var steps: [StepRow] = []
        for try await row in stepRows {
            let (
                position, name, definition, status, approval, output, attempt, tries, round, held, feedback, error, compensation, compensationAttempt,
                compensationTries
            ) =
                try row.decode((Int, String, String, String, UUID?, String?, Int, Int, Int, String?, String?, String?, String?, Int, Int).self)
            steps.append(
                StepRow(
                    position: position, name: name, definition: try WireCoding.decode(StepDefinition.self, from: Array(definition.utf8)),
                    status: try StepStatus(stored: status, column: "workflow_steps.status"), approvalID: approval, output: output.map(JSONColumn.object),
                    forward: AttemptCount(attempt: attempt, tries: tries), round: round, held: try held.map { try HeldDecision(stored: JSONColumn.object($0)) },
                    feedback: feedback, error: error,
                    compensationStatus: try compensation.map { try CompensationStatus(stored: $0, column: "workflow_steps.compensation_status") },
                    compensation: AttemptCount(attempt: compensationAttempt, tries: compensationTries)))
        }
        return WorkflowSession(workflow: workflow, steps: steps, in: transaction, callbackWakeup: callbackWakeup)
    }
}

/// Step statuses, as stored (`workflow_steps.status`) and shown.
enum StepStatus: String, Sendable, CaseIterable {
    case pending, running
    case retryWait = "retry_wait"
    case retryDue = "retry_due"
    case waiting, completed, skipped, approved, rejected, expired, failed, cancelled

    /// Steps done with, whose successor may run.
    var hasPassed: Bool { self == .completed || self == .skipped || self == .approved }
}

/// Where a completed step's compensation stands (`workflow_steps.compensation_status`; nil
/// until it starts).
enum CompensationStatus: String, Sendable, CaseIterable {
    case running
    case retryWait = "retry_wait"
    case retryDue = "retry_due"
    case failed, compensated
}

/// A decision or expiry that reached a step before it could take it (paused, or the
/// approval not yet recorded as asked), kept in `workflow_steps.held` until it can.
enum HeldDecision: Sendable {
    case decided(ApprovalDecided)
    case expired(deadline: Date)

    /// Stored as `{"decided": <ApprovalDecided>}` or `{"expired": "<RFC 3339 time>"}`.
    init(stored object: JSONObject) throws {
        if case .string(let text)? = object["expired"], let deadline = WireCoding.parseTime(text) {
            self = .expired(deadline: deadline)
        } else if case .object(let decided)? = object["decided"] {
            self = .decided(try WireCoding.decode(ApprovalDecided.self, from: WireCoding.encode(decided)))
        } else {
            throw CorruptRow(column: "workflow_steps.held", value: (try? JSONColumn.text(object)) ?? "?")
        }
    }

    var stored: JSONObject {
        get throws {
            switch self {
            case .decided(let decision): ["decided": .object(try WireCoding.decode(JSONObject.self, from: WireCoding.encode(decision)))]
            case .expired(let deadline): ["expired": .string(WireCoding.formatTime(deadline))]
            }
        }
    }
}

/// A workflow row as the engine works on it.
struct WorkflowRow: Sendable {
    var id: UUID
    var type: String
    var requester: String
    var input: JSONObject
    var status: WorkflowStatus
    var currentStep: Int
    var version: Int
    /// While compensating: the status the workflow ends in, and why.
    var outcome: WorkflowStatus?
    var reason: String?
    /// Receives each lifecycle event as a signed webhook.
    var callbackURL: String?

    var idText: String { id.uuidString.lowercased() }
}

/// A step row as the engine works on it.
struct StepRow: Sendable {
    var position: Int
    var name: String
    var definition: StepDefinition
    var status: StepStatus
    var approvalID: UUID?
    var output: JSONObject?
    /// The forward task's attempts.
    var forward = AttemptCount()
    /// Approval rounds (a `request_changes` starts another).
    var round: Int = 1
    /// A decision or expiry kept until the step can take it.
    var held: HeldDecision?
    var feedback: String?
    var error: String?
    var compensationStatus: CompensationStatus?
    /// The compensation's attempts.
    var compensation = AttemptCount()

    /// One track's attempts.
    subscript(track: Track) -> AttemptCount {
        get { track == .forward ? forward : compensation }
        set {
            if track == .forward { forward = newValue } else { compensation = newValue }
        }
    }

    /// The task a track runs: the step's own, or its compensation.
    func task(on track: Track) -> StepDefinition.Task? {
        track == .forward ? definition.task : definition.compensate
    }

    /// Whether the track's attempt is in flight, or waits for its retry timer.
    func isRunning(on track: Track) -> Bool { track == .forward ? status == .running : compensationStatus == .running }
    func isWaitingForRetry(on track: Track) -> Bool { track == .forward ? status == .retryWait : compensationStatus == .retryWait }
}

/// The two tracks of a step: its task going forward, and the compensation that undoes it
/// once the workflow rolls back. Each keeps its own attempts; what differs between them is
/// chosen through the track, in one place.
enum Track: Sendable {
    case forward, compensation

    init(compensation: Bool) { self = compensation ? .compensation : .forward }

    var isCompensation: Bool { self == .compensation }
}

/// One track's attempt counters.
struct AttemptCount: Sendable, Equatable {
    /// The number of the latest attempt; it only grows, so each attempt is told apart.
    var attempt = 0
    /// Attempts in the current round, counted against the retry policy.
    var tries = 0
}

/// The workflow changed between read and write; the event is retried on fresh state.
struct StaleWorkflow: Error, CustomStringConvertible {
    let id: UUID
    var description: String { "workflow \(id) changed concurrently" }
}
