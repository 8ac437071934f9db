import Contracts
import Foundation
import PostgresNIO
import ServiceKit

/// The SQL of a running workflow: `workflows` and `workflow_steps` with the rows a change
/// adds (`workflow_history`, `workflow_messages`, `approval_receipts`, queued `http_calls`).
/// It loads a `WorkflowSession` locked in the caller's transaction and saves what the
/// session collected in one statement, so the engine itself holds no SQL.
struct WorkflowRepository: Sendable {
    /// Wakes the http worker once calls a save queued committed.
    let httpWakeup: Wakeup

    /// What storing a submission led to.
    enum Created {
        /// A new workflow, stored as starting it left it.
        case created
        /// The same idempotency key with the same body: the first workflow.
        case existing(id: WorkflowID, status: WorkflowStatus)
        /// The same idempotency key with a different body.
        case conflict(id: WorkflowID)
    }

    /// A session for `submission` as a new workflow, every step pending, not stored yet: the
    /// engine starts it and `create` stores it as it then stands. A new workflow has no
    /// receipts.
    func newSession(for submission: WorkflowSubmitted, in transaction: Transaction) -> WorkflowSession {
        let workflow = WorkflowRow(
            id: WorkflowID(), type: submission.type, requester: submission.requester, input: submission.input, status: .running, currentStep: 0,
            version: 1, callbackURL: submission.callbackUrl)
        let steps = submission.steps.enumerated().map {
            StepRow(position: $0.offset, name: $0.element.name, definition: $0.element, status: StepStatus.pending)
        }
        return WorkflowSession(workflow: workflow, steps: steps, envelopes: envelopes(of: transaction), httpWakeup: httpWakeup)
    }

    /// Stores the new workflow of `session` with everything starting it changed, in one
    /// statement; nothing when the requester used the idempotency key before (then the
    /// start's events and rows are dropped with it).
    func create(
        _ session: WorkflowSession, from submission: WorkflowSubmitted, requestHash: String, template: (name: String, version: Int)?,
        in transaction: Transaction
    ) async throws -> Created {
        let changes = session.takeChanges()
        let statement = StartWorkflow(
            workflow: session.workflow, submission: submission, requestHash: requestHash, template: template, steps: try Self.columns(of: session.steps),
            changes: changes, names: session.steps.map(\.name),
            kinds: session.steps.map(\.definition.kind.rawValue),
            definitions: try session.steps.map { try JSONColumn.text($0.definition) }, input: try JSONColumn.text(session.workflow.input),
            events: try transaction.outboxRows(for: changes.events))
        if try await transaction.returnsRow(statement) {
            for action in changes.afterCommit { transaction.afterCommit(action) }
            return .created
        }
        let rows = try await transaction.query(
            "SELECT id, request_hash, status FROM workflows WHERE requester = \(submission.requester) AND idempotency_key = \(submission.idempotencyKey)")
        for try await (existingID, existingHash, status) in rows.decode((WorkflowID, String, String).self) {
            guard existingHash == requestHash else { return .conflict(id: existingID) }
            return .existing(id: existingID, status: try WorkflowStatus(stored: status, column: "workflows.status"))
        }
        throw PermanentFailure("idempotency key vanished during submission")
    }

    /// Locks and loads workflow `id` with its steps, or nil when there is none.
    func load(id: WorkflowID, in transaction: Transaction) async throws -> WorkflowSession? {
        let rows = try await transaction.execute(LockWorkflow(id: id))
        var workflow: WorkflowRow?
        for try await row in rows {
            let (id, type, requester, input, status, current, version, outcome, reason, callback) = try row.decode(
                (WorkflowID, String, String, String, String, Int, Int, String?, String?, String?).self)
            workflow = WorkflowRow(
                id: id, type: type, requester: requester, input: JSONColumn.object(input),
                status: try WorkflowStatus(stored: status, column: "workflows.status"), currentStep: current, version: version,
                outcome: try outcome.map { try WorkflowStatus(stored: $0, column: "workflows.outcome") }, reason: reason, callbackURL: callback)
        }
        guard let workflow else { return nil }
        let stepRows = try await transaction.execute(WorkflowSteps(id: id))
        var steps: [StepRow] = []
        for try await row in stepRows {
            let (
                position, name, definition, status, approval, output, attempt, tries, round, held, feedback, error, compensation, compensationAttempt,
                compensationTries
            ) =
                try row.decode((Int, String, String, String, ApprovalID?, String?, Int, Int, Int, String?, String?, String?, String?, Int, Int).self)
            steps.append(
                StepRow(
                    position: position, name: name, definition: try WireCoding.decode(StepDefinition.self, from: Array(definition.utf8)),
                    status: try StepStatus(stored: status, column: "workflow_steps.status"), approvalID: approval, output: output.map(JSONColumn.object),
                    forward: AttemptCount(attempt: attempt, tries: tries), round: round, held: try held.map { try HeldDecision(stored: JSONColumn.object($0)) },
                    feedback: feedback, error: error,
                    compensationStatus: try compensation.map { try CompensationStatus(stored: $0, column: "workflow_steps.compensation_status") },
                    compensation: AttemptCount(attempt: compensationAttempt, tries: compensationTries)))
        }
        return WorkflowSession(
            workflow: workflow, steps: steps, envelopes: envelopes(of: transaction), httpWakeup: httpWakeup,
            receipts: { try await Self.receipts(of: id, in: transaction) })
    }

    /// Writes what `session` changed, with the workflow row guarded by the version it was
    /// loaded at, in one statement (one round trip) that also writes the transaction's
    /// events so far, these among them. Throws `StaleWorkflow` when another transaction
    /// changed the workflow (which rolls the events back with the rest).
    func save(_ session: WorkflowSession, in transaction: Transaction) async throws {
        let workflow = session.workflow
        let changes = session.takeChanges()
        try transaction.publish(changes.events)
        let statement = SaveWorkflow(
            id: workflow.id, steps: try Self.columns(of: changes.changedSteps.sorted().map { session.steps[$0] }), changes: changes,
            status: workflow.status.rawValue, currentStep: workflow.currentStep, input: try JSONColumn.text(workflow.input),
            outcome: workflow.outcome?.rawValue, reason: workflow.reason, loadedVersion: session.loadedVersion, events: transaction.takeEvents())
        var version: Int?
        for try await saved in try await transaction.execute(statement) { version = saved }
        guard let version else { throw StaleWorkflow(id: workflow.id) }
        session.saved(version: version)
        for action in changes.afterCommit { transaction.afterCommit(action) }
    }

    /// Adds `message` to the conversation of workflow `id` (a message posted through the
    /// API); answers it as stored, with its sequence and time, or nil when there is no such
    /// workflow.
    func post(_ message: WorkflowMessage, to id: WorkflowID, in transaction: Transaction) async throws -> WorkflowMessage? {
        let rows = try await transaction.query(
            """
            INSERT INTO workflow_messages (workflow_id, kind, author, step, text)
            SELECT id, \(message.kind), \(message.author), \(message.step), \(message.text) FROM workflows WHERE id = \(id)
            RETURNING id, at
            """)
        for try await (sequence, at) in rows.decode((Int64, Date).self) {
            var stored = message
            stored.sequence = sequence
            stored.at = at
            return stored
        }
        return nil
    }

    /// The receipts kept for workflow `id`.
    static func receipts(of id: WorkflowID, in transaction: Transaction) async throws -> [KeptReceipt] {
        let rows = try await transaction.query("SELECT step, round, receipt, input_sha256, at FROM approval_receipts WHERE workflow_id = \(id)")
        var receipts: [KeptReceipt] = []
        for try await (step, round, receipt, hash, at) in rows.decode((String, Int, String, String, Date).self) {
            receipts.append(KeptReceipt(step: step, round: round, receipt: receipt, inputSha256: hash, at: at))
        }
        return receipts
    }

    /// The steps' columns as a JSON array, for `jsonb_to_recordset`.
    private static func columns(of steps: [StepRow]) throws -> String {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func number(_ value: Int) -> JSONValue { .number(Double(value)) }
        let rows: [JSONValue] = try steps.map { step in
            .object([
                "position": number(step.position), "status": .string(step.status.rawValue),
                "approval_id": text(step.approvalID?.description),
                "output": step.output.map(JSONValue.object) ?? .null, "held": try step.held.map { .object(try $0.stored) } ?? .null,
                "attempt": number(step.forward.attempt), "tries": number(step.forward.tries), "round": number(step.round),
                "feedback": text(step.feedback), "error": text(step.error), "compensation_status": text(step.compensationStatus?.rawValue),
                "compensation_attempt": number(step.compensation.attempt), "compensation_tries": number(step.compensation.tries),
            ])
        }
        return try JSONColumn.text(rows)
    }

    private func envelopes(of transaction: Transaction) -> EnvelopeMaker {
        EnvelopeMaker(source: transaction.source, cause: transaction.cause)
    }
}
