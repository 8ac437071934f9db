import Contracts
import Foundation
import PostgresNIO
import ServiceKit

/// An approval's timers, all kept by the timeout service: the deadline, one per escalation
/// level that falls before it, and the next reminder.
extension ApprovalStore {
    static let escalationTimerPrefix = "escalate:"
    static let reminderTimerPrefix = "remind:"

    func scheduleTimers(for request: ApprovalRequested, policy: ApprovalPolicy, deadline: Date, in transaction: Transaction) async throws {
        let created = Date()
        try await schedule(
            Self.deadlineTimerPrefix + request.approvalId, request.workflowId, at: deadline, ["approval_id": .string(request.approvalId)], transaction)
        for (level, escalation) in (policy.escalation ?? []).enumerated() {
            let due = created.addingTimeInterval(TimeInterval(escalation.afterSeconds))
            guard due < deadline else { break }
            try await schedule(
                "\(Self.escalationTimerPrefix)\(request.approvalId):\(level)", request.workflowId, at: due,
                ["approval_id": .string(request.approvalId), "level": .number(Double(level))], transaction)
        }
        if let every = policy.reminderSeconds {
            try await scheduleReminder(
                request.approvalId, request.workflowId, number: 1, at: created.addingTimeInterval(TimeInterval(every)), before: deadline, transaction)
        }
    }

    /// Cancels the timers a closed approval still has coming: its deadline, its escalation
    /// levels and its next reminder (cancelling one that already fired changes nothing).
    func cancelTimers(
        approvalID: String, workflowID: String, policy: ApprovalPolicy, remindersSent: Int, in transaction: Transaction
    ) async throws {
        var keys = [Self.deadlineTimerPrefix + approvalID]
        keys += (policy.escalation ?? []).indices.map { "\(Self.escalationTimerPrefix)\(approvalID):\($0)" }
        if policy.reminderSeconds != nil { keys.append("\(Self.reminderTimerPrefix)\(approvalID):\(remindersSent + 1)") }
        for key in keys {
            try transaction.publish(TimerCancelled(owner: .approval, key: key, workflowId: workflowID), to: .timerRequests, subject: workflowID)
        }
    }

    /// Routes a fired timer by its key.
    func onTimer(_ fired: TimerFired, in transaction: Transaction) async throws {
        guard case .string(let idText)? = fired.payload["approval_id"], let id = UUID(uuidString: idText) else {
            throw PermanentFailure("timer \(fired.key) carries no approval_id")
        }
        if fired.key.hasPrefix(Self.deadlineTimerPrefix) {
            try await expire(id: id, in: transaction)
        } else if fired.key.hasPrefix(Self.escalationTimerPrefix), case .number(let level)? = fired.payload["level"] {
            try await escalate(id: id, level: Int(level), in: transaction)
        } else if fired.key.hasPrefix(Self.reminderTimerPrefix), case .number(let number)? = fired.payload["number"] {
            try await remind(id: id, number: Int(number), in: transaction)
        } else {
            throw PermanentFailure("unknown approval timer \(fired.key)")
        }
    }

    /// Adds the level's approvers (groups and delegations resolved now) to a pending
    /// approval and notifies them; the earlier assignees may still decide.
    private func escalate(id: UUID, level: Int, in transaction: Transaction) async throws {
        guard let current = try await load(id: id, lock: true, in: transaction), current.status == .pending,
            let escalation = current.policy.policy.escalation?[safe: level]
        else { return }
        let added = try await resolve(nil, approvers: escalation.approvers, requester: current.requester, in: transaction)
        let newcomers = added.assignees.filter { !current.approvers.contains($0) }
        var policy = current.policy
        policy.assignees += newcomers
        policy.onBehalfOf = (policy.onBehalfOf ?? [:]).merging(added.onBehalfOf ?? [:]) { old, _ in old }
        try await transaction.query(
            "UPDATE approvals SET approvers = \(try JSONColumn.text(policy.assignees))::jsonb, policy = \(try JSONColumn.text(policy))::jsonb WHERE id = \(id)")
        guard !newcomers.isEmpty else { return }
        try await notify(
            current, reason: "approval_escalated", id: "approval-escalated:\(current.id):\(level)", to: newcomers,
            subject: "Escalated to you: \(current.workflowType)",
            text:
                "\(current.requester) is still waiting for a decision on \(current.workflowType) (step \(current.step)); it was escalated to you. Decide before \(WireCoding.formatTime(current.deadline)).",
            in: transaction)
    }

    /// Reminds every assignee of a pending approval, and plans the next reminder.
    private func remind(id: UUID, number: Int, in transaction: Transaction) async throws {
        guard let current = try await load(id: id, in: transaction), current.status == .pending,
            current.deadline > Date()
        else { return }
        // Counted under the row lock, so a decision in between sees it (and cancels the next one).
        guard
            try await transaction.returnsRow(
                "UPDATE approvals SET reminders_sent = \(number) WHERE id = \(id) AND status = 'pending' AND reminders_sent < \(number) RETURNING 1")
        else { return }
        try await notify(
            current, reason: "approval_reminder", id: "approval-reminder:\(current.id):\(number)", to: current.approvers,
            subject: "Reminder: approval needed: \(current.workflowType)",
            text:
                "\(current.requester) is still waiting for a decision on \(current.workflowType) (step \(current.step)). Decide before \(WireCoding.formatTime(current.deadline)).",
            in: transaction)
        if let every = current.policy.policy.reminderSeconds {
            try await scheduleReminder(
                current.id, current.workflowId, number: number + 1, at: Date().addingTimeInterval(TimeInterval(every)), before: current.deadline, transaction)
        }
    }

    private func notify(
        _ approval: ApprovalView, reason: String, id: String, to recipients: [String], subject: String, text: String, in transaction: Transaction
    )
        async throws
    {
        let links = try self.links.sealed(
            approvalID: approval.id, recipients: recipients, form: approval.form, policy: approval.policy.policy, deadline: approval.deadline)
        try transaction.publish(
            NotificationRequested(
                reason: reason, notificationId: id, workflowId: approval.workflowId, approvalId: approval.id, recipients: recipients,
                subject: subject, text: text, links: links.clear, sealedLinks: links.sealed, form: approval.form, facts: approval.context),
            to: .notifications, subject: approval.workflowId)
    }

    private func scheduleReminder(_ approvalID: String, _ workflowID: String, number: Int, at due: Date, before deadline: Date, _ transaction: Transaction)
        async throws
    {
        guard due < deadline else { return }
        try await schedule(
            "\(Self.reminderTimerPrefix)\(approvalID):\(number)", workflowID, at: due,
            ["approval_id": .string(approvalID), "number": .number(Double(number))], transaction)
    }

    private func schedule(_ key: String, _ workflowID: String, at due: Date, _ payload: JSONObject, _ transaction: Transaction) async throws {
        try transaction.publish(
            TimerScheduled(owner: .approval, key: key, workflowId: workflowID, dueAt: due, payload: payload), to: .timerRequests, subject: workflowID)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
