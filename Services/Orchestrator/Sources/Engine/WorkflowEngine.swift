import Contracts
import Forms
import Foundation
import ServiceKit

/// Moves workflows through their steps. Every entry point runs inside the caller's
/// transaction on a locked workflow (`WorkflowSession`), and writes the state change, its
/// history and the events it causes together, so they commit or vanish as one.
struct WorkflowEngine: Sendable {
    let tasks: TaskDispatcher

    /// The workflows' tables; the engine itself works on sessions and holds no SQL.
    let repository: WorkflowRepository

    /// What a submission led to.
    enum SubmitOutcome: Sendable {
        case created(id: WorkflowID, status: WorkflowStatus)
        /// The same idempotency key with the same body: the first workflow.
        case existing(id: WorkflowID, status: WorkflowStatus)
        /// The same idempotency key with a different body.
        case conflict(id: WorkflowID)
    }

    // MARK: - Submission

    /// Records a workflow whose steps are resolved and valid, and runs it as far as it goes.
    func submit(
        _ submission: WorkflowSubmitted, requestHash: String, template: (name: String, version: Int)?, gates: [GateApplication.Applied] = [],
        actor: String, in transaction: Transaction
    ) async throws -> SubmitOutcome {
        // Started before it is stored, then stored as it stands in one statement: a
        // resubmission's start is thrown away, a new workflow's rows are written once.
        let session = repository.newSession(for: submission, in: transaction)
        try await start(session, idempotencyKey: submission.idempotencyKey, template: template, gates: gates, actor: actor)
        switch try await repository.create(session, from: submission, requestHash: requestHash, template: template, in: transaction) {
        case .created: return .created(id: session.workflow.id, status: session.status)
        case .existing(let id, let status): return .existing(id: id, status: status)
        case .conflict(let id): return .conflict(id: id)
        }
    }

    /// Starts a new workflow: records its submission and runs it as far as it goes.
    func start(
        _ session: WorkflowSession, idempotencyKey: String, template: (name: String, version: Int)?, gates: [GateApplication.Applied], actor: String
    ) async throws {
        var detail: JSONObject = ["idempotency_key": .string(idempotencyKey), "input": .object(session.workflow.input)]
        if let template { detail["template"] = .string(template.name); detail["template_version"] = .number(Double(template.version)) }
        if !gates.isEmpty { detail["gates"] = .array(gates.map(\.json)) }
        try await session.change("submitted", actor: actor, detail: detail)
        try await session.announce(
            WorkflowLifecycle(change: .workflowStarted, workflowId: session.id, workflowType: session.workflow.type, status: .running, at: Date()))
        try await drive(session)
    }

    /// Loads and locks workflow `id`, runs `body` on it and saves it; nil when there is no
    /// such workflow.
    func with<T>(workflow id: WorkflowID, in transaction: Transaction, _ body: (WorkflowSession) async throws -> T) async throws -> T? {
        guard let session = try await repository.load(id: id, in: transaction) else { return nil }
        let result = try await body(session)
        try await repository.save(session, in: transaction)
        return result
    }

    // MARK: - Running

    /// Runs steps from the current one until one must wait, the workflow pauses, or it ends.
    func drive(_ session: WorkflowSession) async throws {
        while true {
            switch session.status {
            case .paused, .compensationFailed, .completed, .rejected, .failed, .timedOut, .cancelled:
                return
            case .compensating:
                try await compensate(session)
                return
            case .running, .waitingApproval:
                break
            }
            let position = session.workflow.currentStep
            guard position < session.steps.count else {
                try await session.change("completed", actor: "orchestrator", status: .completed)
                return
            }
            let step = session.steps[position]
            switch step.status {
            case StepStatus.pending:
                if let when = step.definition.when, !(try Expression(when)).holds(in: session.scope) {
                    try await session.change("step_skipped", actor: "rule", step: position, stepStatus: StepStatus.skipped, detail: ["rule": .string(when)])
                    moveOn(session, from: position)
                    continue
                }
                switch step.definition.kind {
                case .approval:
                    if let rule = step.definition.approval?.autoApproveWhen, try Expression(rule).holds(in: session.scope) {
                        try await session.change(
                            "auto_approved", actor: "rule", step: position, stepStatus: StepStatus.approved, status: .running,
                            detail: ["rule": .string(rule)])
                        moveOn(session, from: position)
                        continue
                    }
                    try await requestApproval(session, at: position)
                    if session.steps[position].status != StepStatus.waiting { continue }
                    return
                case .task:
                    guard let receipt = try await evidence(session, before: position) else { continue }
                    try await tasks.start(session, at: position, compensation: false, receipt: receipt.receipt)
                    if session.steps[position].status == StepStatus.completed {
                        moveOn(session, from: position)
                        continue
                    }
                    return
                }
            case StepStatus.retryDue:
                guard let receipt = try await evidence(session, before: position) else { continue }
                try await tasks.start(session, at: position, compensation: false, receipt: receipt.receipt)
                if session.steps[position].status == StepStatus.completed {
                    moveOn(session, from: position)
                    continue
                }
                return
            case StepStatus.completed, StepStatus.skipped, StepStatus.approved:
                moveOn(session, from: position)
            case StepStatus.waiting:
                if session.steps[position].held != nil {
                    try await applyHeld(session, at: position)
                    continue
                }
                if session.status != .waitingApproval {
                    try await session.change("waiting_approval", actor: "orchestrator", step: position, status: .waitingApproval)
                }
                return
            default:
                // A task attempt in flight or waiting for its retry: the answer or the timer moves on.
                if session.status != .running {
                    try await session.change("running", actor: "orchestrator", step: position, status: .running)
                }
                return
            }
        }
    }

    /// Points the workflow at the step that follows `position`.
    private func moveOn(_ session: WorkflowSession, from position: Int) {
        let next = DefinitionValidation.successor(
            of: position, next: session.steps[position].definition.next, count: session.steps.count, position: session.position(of:))
        session.setCurrentStep(next ?? session.steps.count)
    }

    // MARK: - Approvals

    private func requestApproval(_ session: WorkflowSession, at position: Int) async throws {
        let step = session.steps[position]
        let approval = step.definition.approval ?? .init(approvers: [])
        let approvalID = ApprovalIdentity.derive(workflowId: session.id, step: step.name, round: step.round)
        session.steps[position].approvalID = ApprovalID(approvalID)
        let early = step.held != nil
        try await session.change(
            "approval_requested", actor: "orchestrator", step: position, stepStatus: StepStatus.waiting, status: .waitingApproval,
            detail: [
                "approval_id": .string(approvalID), "approvers": .array(approval.approvers.map(JSONValue.string)),
                "round": .number(Double(step.round)),
            ])
        if early {
            // The decision came before the wait was registered: apply it, ask nobody.
            try await applyHeld(session, at: position)
            return
        }
        try await session.publish(
            ApprovalRequested(
                approvalId: approvalID, workflowId: session.id, workflowType: session.workflow.type, step: step.name,
                requester: session.workflow.requester, approvers: approval.approvers, timeoutSeconds: approval.timeoutSeconds,
                context: session.workflow.input, policy: approval.policy, form: approval.form, rule: approval.gate,
                knownApproversOnly: approval.knownApproversOnly),
            to: .approvalRequests)
    }

    /// Applies a decision to the step that waits for it, keeps it when it cannot apply yet
    /// (the workflow is paused, or the wait is not registered yet), or records it as stale.
    func applyDecision(_ decision: ApprovalDecided, session: WorkflowSession) async throws {
        guard let position = session.position(of: decision.step) else {
            throw PermanentFailure("workflow \(decision.workflowId) has no step \(decision.step)")
        }
        let step = session.steps[position]
        if step.status == StepStatus.waiting, step.approvalID != nil, step.approvalID == ApprovalID(decision.approvalId) {
            if session.status == .paused {
                try await hold(decision, session: session, at: position, why: "paused")
                return
            }
            try await applyNow(decision, session: session, at: position)
            try await drive(session)
        } else if step.status == StepStatus.pending,
            ApprovalIdentity.derive(workflowId: session.id, step: step.name, round: step.round) == decision.approvalId.lowercased()
        {
            try await hold(decision, session: session, at: position, why: "before the wait")
        } else {
            try await session.note(
                "decision_ignored", actor: actor(of: decision), step: position,
                detail: ["approval_id": .string(decision.approvalId), "why": .string("the step does not wait for this approval (it is \(step.status))")])
        }
    }

    /// Keeps a decision on its step until the step can take it.
    private func hold(_ decision: ApprovalDecided, session: WorkflowSession, at position: Int, why: String) async throws {
        session.steps[position].held = .decided(decision)
        try await session.note(
            "decision_held", actor: actor(of: decision), step: position, detail: ["decision": .string(decision.decision.rawValue), "why": .string(why)])
    }

    /// Ends the wait of the expired approval: the workflow is rolled back and ends `timed_out`.
    func applyExpiry(_ expiry: ApprovalExpired, session: WorkflowSession) async throws {
        guard let position = session.position(of: expiry.step) else {
            throw PermanentFailure("workflow \(expiry.workflowId) has no step \(expiry.step)")
        }
        let step = session.steps[position]
        guard step.status == StepStatus.waiting, step.approvalID != nil, step.approvalID == ApprovalID(expiry.approvalId) else {
            try await session.note("expiry_ignored", actor: "timer", step: position, detail: ["approval_id": .string(expiry.approvalId)])
            return
        }
        if session.status == .paused {
            session.steps[position].held = .expired(deadline: expiry.deadline)
            try await session.note("expiry_held", actor: "timer", step: position, detail: ["why": "paused"])
            return
        }
        try await expire(session, at: position, deadline: expiry.deadline)
        try await drive(session)
    }

    private func expire(_ session: WorkflowSession, at position: Int, deadline: Date) async throws {
        session.steps[position].held = nil
        let time = WireCoding.formatTime(deadline)
        try await session.change("approval_expired", actor: "timer", step: position, stepStatus: .expired, detail: ["deadline": .string(time)])
        try await startRollback(session, outcome: .timedOut, reason: "no decision on \(session.steps[position].name) before \(time)", actor: "timer")
    }

    private func applyHeld(_ session: WorkflowSession, at position: Int) async throws {
        guard let held = session.steps[position].held else { return }
        session.steps[position].held = nil
        guard case .decided(var decision) = held else {
            if case .expired(let deadline) = held { try await expire(session, at: position, deadline: deadline) }
            return
        }
        decision.approvalId = session.steps[position].approvalID?.description ?? decision.approvalId
        try await applyNow(decision, session: session, at: position)
    }

    private func actor(of decision: ApprovalDecided) -> String {
        if decision.channel == ApprovalDecided.policyChannel { return "policy:\(decision.approver)" }
        return "approver:\(decision.approver) via \(decision.channel)" + (decision.onBehalfOf.map { " on behalf of \($0)" } ?? "")
    }

    /// The decision's effect on a waiting step.
    private func applyNow(_ decision: ApprovalDecided, session: WorkflowSession, at position: Int) async throws {
        let step = session.steps[position]
        let actor = actor(of: decision)
        var detail: JSONObject = ["approval_id": .string(decision.approvalId), "decision": .string(decision.decision.rawValue)]
        // The signed receipt goes with the decision into the history, where the requester
        // (an agent following its workflow, over HTTP or MCP) can pass it on to be verified.
        if let receipt = decision.receipt { detail["receipt"] = .string(receipt) }
        if let comment = decision.comment {
            detail["comment"] = .string(comment)
            try await session.addMessage(kind: "approver", author: decision.approver, step: step.name, text: comment)
        }
        if let fields = decision.fields {
            // What the approver filled in is the approval step's output for later steps.
            session.steps[position].output = fields
            detail["fields"] = .object(fields)
        }
        switch decision.decision {
        case .approve:
            keepReceipt(decision, session: session, at: position)
            try await session.change("approved", actor: actor, step: position, stepStatus: StepStatus.approved, status: .running, detail: detail)
            moveOn(session, from: position)
        case .approveWithChanges:
            var input = session.workflow.input
            var diff: JSONObject = [:]
            for (field, value) in decision.changes ?? [:] where input[field] != value {
                diff[field] = .object(["from": input[field] ?? .null, "to": value])
                input[field] = value
            }
            session.setInput(input)
            keepReceipt(decision, session: session, at: position)
            detail["changes"] = .object(diff)
            try await session.change("approved_with_changes", actor: actor, step: position, stepStatus: StepStatus.approved, status: .running, detail: detail)
            moveOn(session, from: position)
        case .requestChanges:
            let approval = step.definition.approval
            let maxRounds = approval?.maxRounds ?? 3
            guard let revise = approval?.reviseStep, let target = session.position(of: revise) else {
                try await reject(session, at: position, actor: actor, detail: detail, reason: "changes requested, but the step names no revise_step")
                return
            }
            guard step.round < maxRounds else {
                try await reject(session, at: position, actor: actor, detail: detail, reason: "still not approved after \(maxRounds) rounds")
                return
            }
            detail["round"] = .number(Double(step.round))
            detail["back_to"] = .string(revise)
            try await session.change("changes_requested", actor: actor, step: position, status: .running, detail: detail)
            // Everything from the revised step up to this approval runs again.
            session.steps[position].round += 1
            session.steps[position].approvalID = nil
            session.steps[target].feedback = decision.comment ?? "changes requested by \(decision.approver)"
            for index in target...position {
                session.steps[index].forward.tries = 0
                if index != position, session.steps[index].definition.kind == .approval {
                    // An approval in the range is asked anew: a new round, so a new approval id.
                    session.steps[index].round += 1
                    session.steps[index].approvalID = nil
                }
                try await session.change("step_reset", actor: actor, step: index, stepStatus: StepStatus.pending)
            }
            session.setCurrentStep(target)
        case .reject:
            try await reject(
                session, at: position, actor: actor, detail: detail,
                reason: decision.comment.map { "rejected by \(decision.approver): \($0)" } ?? "rejected by \(decision.approver)")
        }
    }

    // MARK: - Receipts

    /// Keeps the decision's signed receipt with the input it approved (after the changes):
    /// the hash the approval service signed, so that what the step is checked against is
    /// the approvers' word, not a recomputation.
    private func keepReceipt(_ decision: ApprovalDecided, session: WorkflowSession, at position: Int) {
        guard let receipt = decision.receipt else { return }
        let step = session.steps[position]
        let approved = DecisionReceipt.unverifiedClaims(of: receipt)?.inputSha256 ?? DecisionReceipt.sha256(of: session.workflow.input)
        session.keep(KeptReceipt(step: step.name, round: step.round, receipt: receipt, inputSha256: approved, at: Date()))
    }

    /// The approval evidence a task step acts on.
    struct Evidence: Sendable {
        /// The receipt of the approval before the step decided last, if one was signed.
        var receipt: String?
    }

    /// What the task at `position` may act on: the receipt of the approval before it that
    /// was decided last. When the input no longer hashes to what an approval before it approved (a
    /// later approver changed it), the first such approval is asked again and this answers
    /// nil: the step does not run on an input its approvers did not see. `noop` tasks act on
    /// nothing and need no lookup.
    private func evidence(_ session: WorkflowSession, before position: Int) async throws -> Evidence? {
        let approved = session.steps[..<position].indices.filter {
            session.steps[$0].definition.kind == .approval && session.steps[$0].status == StepStatus.approved
        }
        guard session.steps[position].definition.task?.type != "noop", !approved.isEmpty else { return Evidence() }
        // The latest round's receipt of each step.
        var receipts: [String: KeptReceipt] = [:]
        for kept in try await session.receipts() {
            receipts[kept.step] = receipts[kept.step].map { $0.round > kept.round ? $0 : kept } ?? kept
        }
        let currentHash = DecisionReceipt.sha256(of: session.workflow.input)
        var last: (receipt: String, at: Date)?
        for index in approved {
            // Decided before receipts existed, or approved by the definition's own rule: nothing to check.
            guard let kept = receipts[session.steps[index].name], kept.round == session.steps[index].round else { continue }
            guard kept.inputSha256 == currentHash else {
                session.steps[index].round += 1
                session.steps[index].approvalID = nil
                try await session.change(
                    "approval_stale", actor: "orchestrator", step: index, stepStatus: StepStatus.pending,
                    detail: [
                        "before": .string(session.steps[position].name), "approved_input_sha256": .string(kept.inputSha256),
                        "input_sha256": .string(currentHash),
                    ])
                session.setCurrentStep(index)
                return nil
            }
            if last.map({ $0.at <= kept.at }) ?? true { last = (kept.receipt, kept.at) }
        }
        return Evidence(receipt: last?.receipt)
    }

    private func reject(_ session: WorkflowSession, at position: Int, actor: String, detail: JSONObject, reason: String) async throws {
        try await session.change("rejected_step", actor: actor, step: position, stepStatus: StepStatus.rejected, detail: detail)
        try await startRollback(session, outcome: .rejected, reason: reason, actor: actor)
    }

    // MARK: - Tasks

    /// Applies an agent's (or the http worker's) answer to the attempt it belongs to.
    /// A failed answer is retried per the step's policy unless `retryable` is false.
    /// The largest output a step may give: it is carried on to later steps' events and shown
    /// in the history, so it is bounded like the input (`FormLimits.maxInputBytes`).
    static let maxOutputBytes = FormLimits.maxInputBytes

    func applyTaskResult(_ result: TaskResult, actor: String, retryable: Bool = true, session: WorkflowSession) async throws {
        var result = result
        var retryable = retryable
        if result.outcome == .succeeded, let output = result.output, let size = try? WireCoding.encode(output).count, size > Self.maxOutputBytes {
            // Kept whole, it would make later events too large to leave; the attempt fails, for good.
            result.outcome = .failed
            result.output = nil
            result.error = "the output is \(size) bytes as JSON; a step's output is at most \(Self.maxOutputBytes)"
            retryable = false
        }
        guard let position = session.position(of: result.step) else {
            throw PermanentFailure("workflow \(result.workflowId) has no step \(result.step)")
        }
        let step = session.steps[position]
        let track = Track(compensation: result.compensation)
        guard step.isRunning(on: track), step[track].attempt == result.attempt else {
            try await session.note(
                "stale_result_ignored", actor: actor, step: position,
                detail: [
                    "attempt": .number(Double(result.attempt)), "compensation": .bool(result.compensation),
                    "current_attempt": .number(Double(step[track].attempt)),
                ])
            return
        }
        try await tasks.cancelTimeout(session, at: position, compensation: result.compensation)
        switch result.outcome {
        case .succeeded:
            if result.compensation {
                session.steps[position].compensationStatus = .compensated
                try await session.change("compensated", actor: actor, step: position, detail: ["attempt": .number(Double(result.attempt))])
            } else {
                session.steps[position].output = result.output ?? [:]
                session.steps[position].error = nil
                try await session.change(
                    "step_completed", actor: actor, step: position, stepStatus: StepStatus.completed,
                    detail: ["attempt": .number(Double(result.attempt)), "output": .object(result.output ?? [:])])
                if session.status == .running { moveOn(session, from: position) }
            }
        case .failed:
            try await attemptFailed(
                session, at: position, compensation: result.compensation, error: result.error ?? "the task failed", retryable: retryable, actor: actor)
        }
        try await drive(session)
    }

    /// Counts a failed attempt: schedules the next one, or gives up on the step.
    func attemptFailed(_ session: WorkflowSession, at position: Int, compensation: Bool, error: String, retryable: Bool, actor: String) async throws {
        let step = session.steps[position]
        let policy = RetryPolicy(step.definition.retry)
        let track = Track(compensation: compensation)
        let tries = step[track].tries
        var detail: JSONObject = ["error": .string(error), "attempt": .number(Double(step[track].attempt)), "compensation": .bool(compensation)]
        session.steps[position].error = error
        if retryable, tries < policy.maxAttempts {
            let due = Date().addingTimeInterval(policy.delay(afterTry: tries))
            detail["retry_at"] = .string(WireCoding.formatTime(due))
            if compensation {
                session.steps[position].compensationStatus = .retryWait
                try await session.change("compensation_attempt_failed", actor: actor, step: position, detail: detail)
            } else {
                try await session.change("attempt_failed", actor: actor, step: position, stepStatus: StepStatus.retryWait, detail: detail)
            }
            try await tasks.scheduleRetry(session, at: position, compensation: compensation, due: due)
            return
        }
        if compensation {
            session.steps[position].compensationStatus = .failed
            try await session.change(
                "compensation_failed", actor: actor, step: position, status: .compensationFailed, detail: detail,
                reason: "compensation of \(step.name) failed: \(error)")
            try await tasks.reportCompensationFailure(session, at: position, error: error)
        } else {
            try await session.change("step_failed", actor: actor, step: position, stepStatus: StepStatus.failed, detail: detail)
            try await startRollback(session, outcome: .failed, reason: "step \(step.name) failed: \(error)", actor: actor)
        }
    }

    /// A retry or timeout timer of the orchestrator fell due.
    func applyTimer(_ timer: TaskTimer, session: WorkflowSession) async throws {
        guard let position = session.position(of: timer.step) else { return }
        let step = session.steps[position]
        let track = Track(compensation: timer.compensation)
        let waitingForRetry = step.isWaitingForRetry(on: track)
        let running = step.isRunning(on: track)
        guard step[track].attempt == timer.attempt else { return }
        switch timer.kind {
        case .retry where waitingForRetry:
            if timer.compensation {
                session.steps[position].compensationStatus = .retryDue
                session.saveStep(position)
            } else {
                try await session.change("retry_due", actor: "timer", step: position, stepStatus: StepStatus.retryDue)
            }
            try await drive(session)
        case .timeout where running:
            try await tasks.abandon(session, at: position, compensation: timer.compensation)
            try await attemptFailed(
                session, at: position, compensation: timer.compensation,
                error: "no answer within \(step.definition.timeoutSeconds ?? 0) s", retryable: true, actor: "timer")
            try await drive(session)
        default:
            return
        }
    }

    // MARK: - Rollback

    /// Starts undoing the completed steps (their `compensate` tasks, last first); the
    /// workflow ends in `outcome` once they are done, at once when there are none.
    func startRollback(_ session: WorkflowSession, outcome: WorkflowStatus, reason: String, actor: String) async throws {
        session.setOutcome(outcome, reason: reason)
        let pending = session.steps.contains { $0.status == StepStatus.completed && $0.definition.compensate != nil && $0.compensationStatus == nil }
        if pending {
            try await session.change("compensation_started", actor: actor, status: .compensating, reason: reason)
            try await compensate(session)
        } else {
            try await session.change(outcome.rawValue, actor: actor, status: outcome, reason: reason)
        }
    }

    /// Runs the next compensation, last completed step first; ends the workflow when none is left.
    private func compensate(_ session: WorkflowSession) async throws {
        while session.status == .compensating {
            let next = session.steps.lastIndex { step in
                step.status == StepStatus.completed && step.definition.compensate != nil && step.compensationStatus != .compensated
            }
            guard let position = next else {
                let outcome = session.workflow.outcome ?? .failed
                try await session.change(outcome.rawValue, actor: "orchestrator", status: outcome, reason: session.workflow.reason)
                return
            }
            switch session.steps[position].compensationStatus {
            case nil, .retryDue?:
                try await tasks.start(session, at: position, compensation: true)
                if session.steps[position].compensationStatus != .compensated { return }
            default:
                return  // in flight, or waiting for its retry
            }
        }
    }

    // MARK: - Control

    enum ControlOutcome: Sendable, Equatable { case applied(WorkflowStatus), unchanged(WorkflowStatus) }

    /// Pauses, resumes or cancels; refuses what the transition table does not allow.
    func control(_ action: WorkflowControlRequested.Action, by actor: String, reason: String?, session: WorkflowSession) async throws -> ControlOutcome {
        switch action {
        case .pause:
            if session.status == .paused { return .unchanged(.paused) }
            try await session.change("paused", actor: actor, status: .paused, reason: reason)
        case .resume:
            switch session.status {
            case .paused:
                try await session.change("resumed", actor: actor, status: .running, reason: reason)
            case .compensationFailed:
                guard let position = session.steps.lastIndex(where: { $0.compensationStatus == .failed }) else {
                    return .unchanged(session.status)
                }
                session.steps[position].compensationStatus = .retryDue
                session.steps[position].compensation.tries = 0
                try await session.change("compensation_retried", actor: actor, step: position, status: .compensating, reason: reason)
            case .running, .waitingApproval:
                return .unchanged(session.status)
            default:
                try WorkflowTransitions.check(from: session.status, to: .running)
            }
            try await drive(session)
        case .cancel:
            if session.status == .cancelled { return .unchanged(.cancelled) }
            try WorkflowTransitions.check(from: session.status, to: .cancelled)
            try await stopOpenWork(session, actor: actor)
            try await startRollback(session, outcome: .cancelled, reason: reason ?? "cancelled by \(actor)", actor: actor)
        }
        return .applied(session.status)
    }

    /// Cancels the open approval and the task attempt in flight, with their timers.
    private func stopOpenWork(_ session: WorkflowSession, actor: String) async throws {
        for position in session.steps.indices {
            let step = session.steps[position]
            switch step.status {
            case StepStatus.waiting:
                if let approvalID = step.approvalID {
                    try await session.publish(
                        ApprovalCancelRequested(
                            approvalId: approvalID.description, workflowId: session.id, reason: "workflow cancelled by \(actor)"),
                        to: .approvalRequests)
                }
                session.steps[position].held = nil
                try await session.change("step_cancelled", actor: actor, step: position, stepStatus: StepStatus.cancelled)
            case StepStatus.running, StepStatus.retryWait, StepStatus.retryDue:
                try await tasks.abandon(session, at: position, compensation: false)
                try await session.change("step_cancelled", actor: actor, step: position, stepStatus: StepStatus.cancelled)
            default:
                continue
            }
        }
    }
}
