import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceKit

/// Moves workflows through their steps. Every function runs inside the caller's
/// transaction and writes the state change, its history entry and the events it causes
/// together, so they commit or vanish as one.
struct WorkflowEngine: Sendable {
    let outbox: Outbox

    /// What a submission led to.
    enum SubmitOutcome: Sendable {
        case created(id: UUID, status: WorkflowStatus)
        /// The same idempotency key with the same body: the first workflow.
        case existing(id: UUID, status: WorkflowStatus)
        /// The same idempotency key with a different body.
        case conflict(id: UUID)
    }

    // MARK: - Submission

    func submit(_ submission: WorkflowSubmitted, actor: String, cause: EventEnvelope?, on connection: PostgresConnection, logger: Logger) async throws -> SubmitOutcome {
        let requestHash = Signing.sha256Hex(try WireCoding.encode(submission))
        let id = UUID()
        let input = try JSONColumn.text(submission.input)
        let inserted = try await connection.query(
            """
            INSERT INTO workflows (id, idempotency_key, request_hash, type, requester, input, status)
            VALUES (\(id), \(submission.idempotencyKey), \(requestHash), \(submission.type), \(submission.requester),
                    \(input)::jsonb, \(WorkflowStatus.running.rawValue))
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
            """, logger: logger)
        var created = false
        for try await _ in inserted { created = true }
        guard created else {
            let rows = try await connection.query(
                "SELECT id, request_hash, status FROM workflows WHERE idempotency_key = \(submission.idempotencyKey)",
                logger: logger)
            for try await (existingID, existingHash, status) in rows.decode((UUID, String, String).self) {
                guard existingHash == requestHash else { return .conflict(id: existingID) }
                return .existing(id: existingID, status: WorkflowStatus(rawValue: status) ?? .running)
            }
            throw PermanentFailure("idempotency key vanished during submission")
        }
        for (position, step) in submission.steps.enumerated() {
            let definition = try JSONColumn.text(step)
            try await connection.query(
                """
                INSERT INTO workflow_steps (workflow_id, position, name, kind, definition)
                VALUES (\(id), \(position), \(step.name), \(step.kind.rawValue), \(definition)::jsonb)
                """, logger: logger)
        }
        var workflow = WorkflowRow(id: id, type: submission.type, requester: submission.requester, input: submission.input, status: .running, currentStep: 0, version: 1)
        try await record(workflow, event: "submitted", from: nil, to: .running, step: nil, actor: actor, detail: ["idempotency_key": .string(submission.idempotencyKey)], on: connection, logger: logger)
        try await announce(workflow, change: .workflowStarted, step: nil, reason: nil, cause: cause, on: connection, logger: logger)
        let steps = submission.steps.enumerated().map { StepRow(position: $0.offset, name: $0.element.name, definition: $0.element, status: "pending", approvalID: nil) }
        try await advance(&workflow, steps: steps, from: 0, cause: cause, on: connection, logger: logger)
        return .created(id: id, status: workflow.status)
    }

    // MARK: - Decisions

    /// Applies a human decision to the step that waits for it. A repeat is a no-op.
    func applyDecision(_ decision: ApprovalDecided, cause: EventEnvelope, on connection: PostgresConnection, logger: Logger) async throws {
        guard let approvalID = UUID(uuidString: decision.approvalId),
            let loaded = try await loadWaiting(approvalID: approvalID, on: connection, logger: logger)
        else {
            throw PermanentFailure("no workflow step waits for approval \(decision.approvalId)")
        }
        var (workflow, steps) = (loaded.0, loaded.1)
        let position = loaded.2
        let step = steps[position]
        guard step.status == "waiting", workflow.status == .waitingApproval else {
            logger.info("Decision for a step that no longer waits; ignored", metadata: ["approval.id": "\(decision.approvalId)"])
            return
        }
        let actor = "approver:\(decision.approver) via \(decision.channel)"
        var detail: JSONObject = ["approval_id": .string(decision.approvalId), "decision": .string(decision.decision.rawValue)]
        if let comment = decision.comment { detail["comment"] = .string(comment) }
        switch decision.decision {
        case .approve:
            try await setStep(workflow.id, position: position, status: "approved", on: connection, logger: logger)
            try await transition(&workflow, to: .running, event: "approved", step: step.name, actor: actor, detail: detail, cause: cause, change: .workflowResumed, on: connection, logger: logger)
            steps[position].status = "approved"
            try await advance(&workflow, steps: steps, from: position + 1, cause: cause, on: connection, logger: logger)
        case .reject:
            try await setStep(workflow.id, position: position, status: "rejected", on: connection, logger: logger)
            try await transition(&workflow, to: .rejected, event: "rejected", step: step.name, actor: actor, detail: detail, reason: decision.comment ?? "rejected by \(decision.approver)", cause: cause, on: connection, logger: logger)
        }
    }

    /// Ends the workflow `timed_out` when the approval it waits for expired.
    func applyExpiry(_ expiry: ApprovalExpired, cause: EventEnvelope, on connection: PostgresConnection, logger: Logger) async throws {
        guard let approvalID = UUID(uuidString: expiry.approvalId),
            let (loadedWorkflow, steps, position) = try await loadWaiting(approvalID: approvalID, on: connection, logger: logger)
        else {
            throw PermanentFailure("no workflow step waits for approval \(expiry.approvalId)")
        }
        var workflow = loadedWorkflow
        guard steps[position].status == "waiting", workflow.status == .waitingApproval else { return }
        try await setStep(workflow.id, position: position, status: "expired", on: connection, logger: logger)
        try await transition(
            &workflow, to: .timedOut, event: "approval_expired", step: steps[position].name, actor: "timer",
            detail: ["approval_id": .string(expiry.approvalId), "deadline": .string(WireCoding.formatTime(expiry.deadline))],
            reason: "no decision before \(WireCoding.formatTime(expiry.deadline))", cause: cause, on: connection, logger: logger)
    }

    // MARK: - Steps

    /// Runs steps from `position` until one must wait or none is left.
    private func advance(_ workflow: inout WorkflowRow, steps: [StepRow], from position: Int, cause: EventEnvelope?, on connection: PostgresConnection, logger: Logger) async throws {
        var position = position
        while position < steps.count {
            let step = steps[position]
            switch step.definition.kind {
            case .approval:
                let approval = step.definition.approval ?? .init(approvers: [])
                let approvalID = UUID()
                try await connection.query(
                    """
                    UPDATE workflow_steps SET status = 'waiting', approval_id = \(approvalID), updated_at = now()
                    WHERE workflow_id = \(workflow.id) AND position = \(position)
                    """, logger: logger)
                workflow.currentStep = position
                try await transition(
                    &workflow, to: .waitingApproval, event: "approval_requested", step: step.name, actor: "orchestrator",
                    detail: ["approval_id": .string(approvalID.uuidString.lowercased()), "approvers": .array(approval.approvers.map(JSONValue.string))],
                    cause: cause, on: connection, logger: logger)
                let request = ApprovalRequested(
                    approvalId: approvalID.uuidString.lowercased(), workflowId: workflow.idText, workflowType: workflow.type,
                    step: step.name, requester: workflow.requester, approvers: approval.approvers,
                    timeoutSeconds: approval.timeoutSeconds, context: workflow.input)
                try await outbox.publish(request, to: .approvalRequests, subject: workflow.idText, causedBy: cause, on: connection, logger: logger)
                return
            case .task:
                // `noop` is the only task type so far: it completes at once.
                try await connection.query(
                    """
                    UPDATE workflow_steps SET status = 'completed', output = '{}'::jsonb, updated_at = now()
                    WHERE workflow_id = \(workflow.id) AND position = \(position)
                    """, logger: logger)
                try await record(workflow, event: "step_completed", from: workflow.status, to: workflow.status, step: step.name, actor: "orchestrator", detail: ["task_type": .string(step.definition.task?.type ?? "")], on: connection, logger: logger)
                position += 1
            }
        }
        workflow.currentStep = steps.count
        try await transition(&workflow, to: .completed, event: "completed", step: nil, actor: "orchestrator", detail: [:], cause: cause, on: connection, logger: logger)
    }

    private func setStep(_ workflowID: UUID, position: Int, status: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE workflow_steps SET status = \(status), updated_at = now() WHERE workflow_id = \(workflowID) AND position = \(position)",
            logger: logger)
    }

    // MARK: - State and history

    /// Changes the status through the transition table, records it and announces it.
    private func transition(
        _ workflow: inout WorkflowRow, to status: WorkflowStatus, event: String, step: String?, actor: String,
        detail: JSONObject, reason: String? = nil, cause: EventEnvelope?, change: EventType? = nil,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        try WorkflowTransitions.check(from: workflow.status, to: status)
        let from = workflow.status
        let updated = try await connection.query(
            """
            UPDATE workflows SET status = \(status.rawValue), current_step = \(workflow.currentStep),
                   version = version + 1, updated_at = now()
            WHERE id = \(workflow.id) AND version = \(workflow.version) RETURNING version
            """, logger: logger)
        var newVersion: Int?
        for try await version in updated.decode(Int.self) { newVersion = version }
        guard let newVersion else {
            // Optimistic lock: the row changed under us; the transaction retries on fresh state.
            throw StaleWorkflow(id: workflow.id)
        }
        workflow.version = newVersion
        workflow.status = status
        var detail = detail
        if let reason { detail["reason"] = .string(reason) }
        try await record(workflow, event: event, from: from, to: status, step: step, actor: actor, detail: detail, on: connection, logger: logger)
        try await announce(workflow, change: change ?? WorkflowLifecycle.type(for: status), step: step, reason: reason, cause: cause, on: connection, logger: logger)
    }

    private func record(_ workflow: WorkflowRow, event: String, from: WorkflowStatus?, to: WorkflowStatus?, step: String?, actor: String, detail: JSONObject, on connection: PostgresConnection, logger: Logger) async throws {
        let detailJSON = try JSONColumn.text(detail)
        try await connection.query(
            """
            INSERT INTO workflow_history (workflow_id, event, from_status, to_status, step, actor, detail)
            VALUES (\(workflow.id), \(event), \(from?.rawValue), \(to?.rawValue), \(step), \(actor), \(detailJSON)::jsonb)
            """, logger: logger)
    }

    private func announce(_ workflow: WorkflowRow, change: EventType, step: String?, reason: String?, cause: EventEnvelope?, on connection: PostgresConnection, logger: Logger) async throws {
        let event = WorkflowLifecycle(change: change, workflowId: workflow.idText, workflowType: workflow.type, status: workflow.status, step: step, reason: reason, at: Date())
        try await outbox.publish(event, to: .workflowEvents, subject: workflow.idText, causedBy: cause, on: connection, logger: logger)
    }

    /// Locks the workflow whose step waits for `approvalID` and loads its steps.
    private func loadWaiting(approvalID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> (WorkflowRow, [StepRow], Int)? {
        let owner = try await connection.query(
            "SELECT workflow_id, position FROM workflow_steps WHERE approval_id = \(approvalID)", logger: logger)
        var found: (UUID, Int)?
        for try await row in owner.decode((UUID, Int).self) { found = row }
        guard let (workflowID, position) = found else { return nil }
        let rows = try await connection.query(
            """
            SELECT id, type, requester, input::text, status, current_step, version
            FROM workflows WHERE id = \(workflowID) FOR UPDATE
            """, logger: logger)
        var workflow: WorkflowRow?
        for try await (id, type, requester, input, status, current, version) in rows.decode((UUID, String, String, String, String, Int, Int).self) {
            workflow = WorkflowRow(
                id: id, type: type, requester: requester,
                input: JSONColumn.object(input),
                status: WorkflowStatus(rawValue: status) ?? .failed, currentStep: current, version: version)
        }
        guard let workflow else { return nil }
        var steps: [StepRow] = []
        let stepRows = try await connection.query(
            "SELECT position, name, definition::text, status, approval_id FROM workflow_steps WHERE workflow_id = \(workflowID) ORDER BY position",
            logger: logger)
        for try await (position, name, definition, status, approval) in stepRows.decode((Int, String, String, String, UUID?).self) {
            steps.append(StepRow(position: position, name: name, definition: try WireCoding.decode(StepDefinition.self, from: Array(definition.utf8)), status: status, approvalID: approval))
        }
        return (workflow, steps, position)
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

    var idText: String { id.uuidString.lowercased() }
}

/// A step row as the engine works on it.
struct StepRow: Sendable {
    var position: Int
    var name: String
    var definition: StepDefinition
    var status: String
    var approvalID: UUID?
}

/// The workflow changed between read and write; the event is retried on fresh state.
struct StaleWorkflow: Error, CustomStringConvertible {
    let id: UUID
    var description: String { "workflow \(id) changed concurrently" }
}
