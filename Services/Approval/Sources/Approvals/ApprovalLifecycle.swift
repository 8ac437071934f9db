import Contracts
import Foundation
import Metrics
import ServiceKit

/// What happens to an approval without a decision: its timers (all kept by the timeout
/// service: the deadline, one per escalation level that falls before it, and the next
/// reminder), escalation and reminders, the end at the deadline by its policy, and the
/// cancellation by its workflow.
extension ApprovalStore {
    // MARK: - Timers

    func scheduleTimers(for request: ApprovalRequested, id: ApprovalID, policy: ApprovalPolicy, deadline: Date, in transaction: Transaction) throws {
        let created = Date()
        try schedule(ApprovalTimer(approvalID: id, kind: .deadline), request.workflowId, at: deadline, transaction)
        for (level, escalation) in (policy.escalation ?? []).enumerated() {
            let due = created.addingTimeInterval(TimeInterval(escalation.afterSeconds))
            guard due < deadline else { break }
            try schedule(ApprovalTimer(approvalID: id, kind: .escalation(level: level)), request.workflowId, at: due, transaction)
        }
        if let every = policy.reminderSeconds {
            try scheduleReminder(id, request.workflowId, number: 1, at: created.addingTimeInterval(TimeInterval(every)), before: deadline, transaction)
        }
    }

    /// Cancels the timers a cancelled approval still has coming: its deadline, its escalation
    /// levels and its next reminder (cancelling one that already fired changes nothing). A
    /// decided approval leaves them to fire: each firing finds it closed and changes nothing.
    func cancelTimers(approvalID: ApprovalID, workflowID: String, policy: ApprovalPolicy, remindersSent: Int, in transaction: Transaction) throws {
        var timers = [ApprovalTimer(approvalID: approvalID, kind: .deadline)]
        timers += (policy.escalation ?? []).indices.map { ApprovalTimer(approvalID: approvalID, kind: .escalation(level: $0)) }
        if policy.reminderSeconds != nil { timers.append(ApprovalTimer(approvalID: approvalID, kind: .reminder(number: remindersSent + 1))) }
        for timer in timers {
            try transaction.publish(TimerCancelled(owner: .approval, key: timer.key, workflowId: workflowID), to: .timerRequests, subject: workflowID)
        }
    }

    /// Routes a fired timer by its kind.
    func onTimer(_ fired: TimerFired, in transaction: Transaction) async throws {
        let timer = try ApprovalTimer(fired)
        switch timer.kind {
        case .deadline: try await expire(id: timer.approvalID, in: transaction)
        case .escalation(let level): try await escalate(id: timer.approvalID, level: level, in: transaction)
        case .reminder(let number): try await remind(id: timer.approvalID, number: number, in: transaction)
        }
    }

    /// Adds the level's approvers (groups and delegations resolved now) to a pending
    /// approval and notifies them; the earlier assignees may still decide.
    private func escalate(id: ApprovalID, level: Int, in transaction: Transaction) async throws {
        guard let current = try await repository.load(id: id, lock: true, in: transaction), current.status == .pending,
            let escalation = current.policy.policy.escalation?[safe: level]
        else { return }
        let added = try await resolve(nil, approvers: escalation.approvers, requester: current.requester, in: transaction)
        let newcomers = added.assignees.filter { !current.approvers.contains($0) }
        var policy = current.policy
        policy.assignees += newcomers
        policy.onBehalfOf = (policy.onBehalfOf ?? [:]).merging(added.onBehalfOf ?? [:]) { old, _ in old }
        try await repository.reassign(id, policy: policy, in: transaction)
        guard !newcomers.isEmpty else { return }
        try transaction.publish(notices.escalated(current, level: level, to: newcomers), to: .notifications, subject: current.workflowId)
    }

    /// Reminds every assignee of a pending approval, and plans the next reminder.
    private func remind(id: ApprovalID, number: Int, in transaction: Transaction) async throws {
        guard let current = try await repository.load(id: id, in: transaction), current.status == .pending, current.deadline > Date() else { return }
        guard try await repository.countReminder(number, of: id, in: transaction) else { return }
        try transaction.publish(notices.reminder(current, number: number), to: .notifications, subject: current.workflowId)
        if let every = current.policy.policy.reminderSeconds {
            try scheduleReminder(
                id, current.workflowId, number: number + 1, at: Date().addingTimeInterval(TimeInterval(every)), before: current.deadline, transaction)
        }
    }

    private func scheduleReminder(_ id: ApprovalID, _ workflowID: String, number: Int, at due: Date, before deadline: Date, _ transaction: Transaction)
        throws
    {
        guard due < deadline else { return }
        try schedule(ApprovalTimer(approvalID: id, kind: .reminder(number: number)), workflowID, at: due, transaction)
    }

    private func schedule(_ timer: ApprovalTimer, _ workflowID: String, at due: Date, _ transaction: Transaction) throws {
        try transaction.publish(
            TimerScheduled(owner: .approval, key: timer.key, workflowId: workflowID, dueAt: due, payload: timer.payload), to: .timerRequests,
            subject: workflowID)
    }

    // MARK: - Expiry

    /// At the deadline of a pending approval: the policy decides (`on_expiry` approve or
    /// reject, recorded as the policy's decision), hands it to the fallback decider, or the
    /// approval expires.
    func expire(id: ApprovalID, in transaction: Transaction) async throws {
        guard let current = try await repository.load(id: id, lock: true, in: transaction), current.status == .pending, current.deadline <= Date()
        else { return }
        switch current.policy.policy.onExpiry ?? .expire {
        case .fallback:
            // The call happens outside this transaction (FallbackDecider); the approval stays
            // pending, and past its deadline no human decision is taken any more.
            try await repository.queueFallback(id, in: transaction)
            transaction.afterCommit { [fallbackWakeup] in fallbackWakeup.signal() }
        case let action:
            try await endWithoutHuman(current, action: action, by: "on_expiry", reason: nil, in: transaction)
        }
    }

    /// Ends a pending approval past its deadline by `action`: a decision recorded as made by
    /// `by` (channel `policy`), or expiry; tells the approvers.
    func endWithoutHuman(_ current: ApprovalView, action: ApprovalPolicy.OnExpiry, by: String, reason: String?, in transaction: Transaction) async throws {
        let decision: Decision? =
            switch action {
            case .approve: .approve
            case .reject: .reject
            case .expire, .fallback: nil
            }
        let ending: String
        guard let id = ApprovalID(current.id) else { throw PermanentFailure("approval id \(current.id) is not a UUID") }
        if let decision {
            let decidedAt = Date()
            let decided = ApprovalRepository.Decided(
                status: ApprovalStatus(after: decision), decision: decision, decidedBy: by,
                comment: reason ?? "no decision before \(WireCoding.formatTime(current.deadline)); the policy decided: \(decision.rawValue)",
                channel: ApprovalDecided.policyChannel, decidedAt: decidedAt,
                receipt: try receipt(
                    for: current, outcome: decision, by: by, onBehalfOf: nil, channel: ApprovalDecided.policyChannel, at: decidedAt, changes: nil))
            try await repository.record(decided, of: id, in: transaction)
            try transaction.publish(
                ApprovalDecided(
                    approvalId: current.id, workflowId: current.workflowId, step: current.step, decision: decision, approver: by,
                    comment: decided.comment, channel: ApprovalDecided.policyChannel, decidedAt: decidedAt, receipt: decided.receipt),
                to: .approvalDecisions, subject: current.workflowId)
            ending = "the request was \(decided.status.rawValue) by \(by). No action is needed any more."
        } else {
            try await repository.expire(id, reason: reason, in: transaction)
            try transaction.publish(
                ApprovalExpired(approvalId: current.id, workflowId: current.workflowId, step: current.step, deadline: current.deadline, expiredAt: Date()),
                to: .approvalDecisions, subject: current.workflowId)
            ending = "no action is needed any more."
        }
        Counter(label: "hitl_approval_decisions_total", dimensions: [("decided_by", by == "fallback" ? "fallback" : "policy")]).increment()
        try transaction.publish(notices.expired(current, ending: ending), to: .notifications, subject: current.workflowId)
    }

    // MARK: - Cancellation

    /// Ends a pending approval that its workflow no longer needs, cancels its deadline and
    /// tells the approvers that no action is needed any more. A decided one stays decided.
    func cancel(_ request: ApprovalCancelRequested, in transaction: Transaction) async throws {
        guard let id = ApprovalID(request.approvalId) else { throw PermanentFailure("approval_id is not a UUID") }
        guard let cancelled = try await repository.cancel(id, reason: request.reason, in: transaction) else { return }
        try cancelTimers(
            approvalID: id, workflowID: cancelled.workflowID, policy: cancelled.policy.policy, remindersSent: cancelled.remindersSent,
            in: transaction)
        try transaction.publish(notices.cancelled(request.approvalId, cancelled, reason: request.reason), to: .notifications, subject: cancelled.workflowID)
    }

    /// Keeps a message of a workflow's conversation for the web pages (a repeat is a no-op).
    func record(_ message: ApprovalThreadMessage, in transaction: Transaction) async throws {
        try await repository.record(message, in: transaction)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
