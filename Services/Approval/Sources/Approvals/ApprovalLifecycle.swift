import Contracts
import Foundation
import Metrics
import ServiceKit

/// What happens to an approval without a decision: its timers (all kept by the timeout
/// service: the deadline, one per escalation level that falls before it, and the next
/// reminder), escalation and reminders, the end at the deadline by its policy, and the
/// cancellation by its workflow.
extension ApprovalStore {
    static let deadlineTimerPrefix = "deadline:"
    static let escalationTimerPrefix = "escalate:"
    static let reminderTimerPrefix = "remind:"

    // MARK: - Timers

    func scheduleTimers(for request: ApprovalRequested, policy: ApprovalPolicy, deadline: Date, in transaction: Transaction) throws {
        let created = Date()
        try schedule(
            Self.deadlineTimerPrefix + request.approvalId, request.workflowId, at: deadline, ["approval_id": .string(request.approvalId)], transaction)
        for (level, escalation) in (policy.escalation ?? []).enumerated() {
            let due = created.addingTimeInterval(TimeInterval(escalation.afterSeconds))
            guard due < deadline else { break }
            try schedule(
                "\(Self.escalationTimerPrefix)\(request.approvalId):\(level)", request.workflowId, at: due,
                ["approval_id": .string(request.approvalId), "level": .number(Double(level))], transaction)
        }
        if let every = policy.reminderSeconds {
            try scheduleReminder(
                request.approvalId, request.workflowId, number: 1, at: created.addingTimeInterval(TimeInterval(every)), before: deadline, transaction)
        }
    }

    /// Cancels the timers a cancelled approval still has coming: its deadline, its escalation
    /// levels and its next reminder (cancelling one that already fired changes nothing). A
    /// decided approval leaves them to fire: each firing finds it closed and changes nothing.
    func cancelTimers(approvalID: String, workflowID: String, policy: ApprovalPolicy, remindersSent: Int, in transaction: Transaction) throws {
        var keys = [Self.deadlineTimerPrefix + approvalID]
        keys += (policy.escalation ?? []).indices.map { "\(Self.escalationTimerPrefix)\(approvalID):\($0)" }
        if policy.reminderSeconds != nil { keys.append("\(Self.reminderTimerPrefix)\(approvalID):\(remindersSent + 1)") }
        for key in keys {
            try transaction.publish(TimerCancelled(owner: .approval, key: key, workflowId: workflowID), to: .timerRequests, subject: workflowID)
        }
    }

    /// Routes a fired timer by its key.
    func onTimer(_ fired: TimerFired, in transaction: Transaction) async throws {
        guard case .string(let idText)? = fired.payload["approval_id"], let id = ApprovalID(idText) else {
            throw PermanentFailure("timer \(fired.key) carries no approval_id")
        }
        if fired.key.hasPrefix(Self.deadlineTimerPrefix) {
            try await expire(id: id, in: transaction)
        } else if fired.key.hasPrefix(Self.escalationTimerPrefix), case .number(let level)? = fired.payload["level"] {
            // Whoever wrote the record: a level that is not a small whole number is refused, not trapped on.
            guard let level = Int(exactly: level), (0...1000).contains(level) else { throw PermanentFailure("timer \(fired.key): level is not a level") }
            try await escalate(id: id, level: level, in: transaction)
        } else if fired.key.hasPrefix(Self.reminderTimerPrefix), case .number(let number)? = fired.payload["number"] {
            guard let number = Int(exactly: number), (1...1_000_000).contains(number) else {
                throw PermanentFailure("timer \(fired.key): number is not a reminder's number")
            }
            try await remind(id: id, number: number, in: transaction)
        } else {
            throw PermanentFailure("unknown approval timer \(fired.key)")
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
                current.id, current.workflowId, number: number + 1, at: Date().addingTimeInterval(TimeInterval(every)), before: current.deadline,
                transaction)
        }
    }

    private func scheduleReminder(_ approvalID: String, _ workflowID: String, number: Int, at due: Date, before deadline: Date, _ transaction: Transaction)
        throws
    {
        guard due < deadline else { return }
        try schedule(
            "\(Self.reminderTimerPrefix)\(approvalID):\(number)", workflowID, at: due,
            ["approval_id": .string(approvalID), "number": .number(Double(number))], transaction)
    }

    private func schedule(_ key: String, _ workflowID: String, at due: Date, _ payload: JSONObject, _ transaction: Transaction) throws {
        try transaction.publish(
            TimerScheduled(owner: .approval, key: key, workflowId: workflowID, dueAt: due, payload: payload), to: .timerRequests, subject: workflowID)
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
            approvalID: request.approvalId, workflowID: cancelled.workflowID, policy: cancelled.policy.policy, remindersSent: cancelled.remindersSent,
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
