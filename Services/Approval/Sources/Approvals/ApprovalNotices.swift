import Contracts
import Forms
import Foundation
import ServiceKit

/// What the approvers are told, and when: asked, decided, expired, cancelled, escalated to
/// them, reminded. Each notice is a `NotificationRequested` with an id the notifier keeps
/// once; prompts carry the personal links, sealed for the notifier.
struct ApprovalNotices: Sendable {
    let links: ApprovalLinks

    /// The prompt of a new approval: what is asked, the form, and how long they have.
    func requested(_ request: ApprovalRequested, recipients: [String], form: ApprovalForm, policy: ApprovalPolicy, deadline: Date) throws
        -> NotificationRequested
    {
        let links = try self.links.sealed(approvalID: request.approvalId, recipients: recipients, form: form, policy: policy, deadline: deadline)
        let rendering = FormRendering(form: form, facts: request.context)
        let intro = "\(request.requester) asks for approval of \(request.workflowType) (step \(request.step))."
        let due = "Decide before \(WireCoding.formatTime(deadline))."
        return NotificationRequested(
            reason: "approval_requested", notificationId: "approval-requested:\(request.approvalId)",
            workflowId: request.workflowId, approvalId: request.approvalId, recipients: recipients,
            subject: "Approval needed: \(request.workflowType)", text: intro + "\n" + rendering.plainText() + "\n" + due, links: links.clear,
            sealedLinks: links.sealed, form: form, facts: request.context,
            markdown: FormRendering.escapeMarkdown(intro) + "\n\n" + rendering.markdown() + "\n\n" + FormRendering.escapeMarkdown(due))
    }

    /// Every prompt that went out is moot: who decided, how and when, so channels can
    /// replace their message and nobody answers in vain.
    func decided(_ approval: ApprovalView, status: ApprovalStatus, by approver: String, channel: String, at decidedAt: Date) -> NotificationRequested {
        NotificationRequested(
            reason: "approval_decided", notificationId: "approval-decided:\(approval.id)", workflowId: approval.workflowId,
            approvalId: approval.id, recipients: approval.approvers, subject: "Decided: \(approval.workflowType)",
            text: "\(status.rawValue.capitalized) by \(approver) via \(channel) at \(WireCoding.formatTime(decidedAt)); no action is needed any more.",
            links: [:])
    }

    /// Nobody decided in time; `ending` says what the policy made of it.
    func expired(_ approval: ApprovalView, ending: String) -> NotificationRequested {
        NotificationRequested(
            reason: "approval_expired", notificationId: "approval-expired:\(approval.id)", workflowId: approval.workflowId,
            approvalId: approval.id, recipients: approval.approvers, subject: "Approval expired: \(approval.workflowType)",
            text: "Nobody decided before \(WireCoding.formatTime(approval.deadline)); \(ending)", links: [:])
    }

    /// The workflow no longer needs the approval.
    func cancelled(_ approvalID: String, _ cancelled: ApprovalRepository.Cancelled, reason: String) -> NotificationRequested {
        NotificationRequested(
            reason: "approval_cancelled", notificationId: "approval-cancelled:\(approvalID)", workflowId: cancelled.workflowID,
            approvalId: approvalID, recipients: cancelled.approvers, subject: "No longer needed: \(cancelled.workflowType)",
            text: "\(reason); no action is needed any more.", links: [:])
    }

    /// An escalation level added `newcomers`.
    func escalated(_ approval: ApprovalView, level: Int, to newcomers: [String]) throws -> NotificationRequested {
        try prompt(
            approval, reason: "approval_escalated", id: "approval-escalated:\(approval.id):\(level)", to: newcomers,
            subject: "Escalated to you: \(approval.workflowType)",
            text:
                "\(approval.requester) is still waiting for a decision on \(approval.workflowType) (step \(approval.step)); it was escalated to you. Decide before \(WireCoding.formatTime(approval.deadline))."
        )
    }

    /// Reminder `number` to every assignee.
    func reminder(_ approval: ApprovalView, number: Int) throws -> NotificationRequested {
        try prompt(
            approval, reason: "approval_reminder", id: "approval-reminder:\(approval.id):\(number)", to: approval.approvers,
            subject: "Reminder: approval needed: \(approval.workflowType)",
            text:
                "\(approval.requester) is still waiting for a decision on \(approval.workflowType) (step \(approval.step)). Decide before \(WireCoding.formatTime(approval.deadline))."
        )
    }

    /// A prompt about an open approval, with the recipients' links.
    private func prompt(_ approval: ApprovalView, reason: String, id: String, to recipients: [String], subject: String, text: String) throws
        -> NotificationRequested
    {
        let links = try self.links.sealed(
            approvalID: approval.id, recipients: recipients, form: approval.form, policy: approval.policy.policy, deadline: approval.deadline)
        return NotificationRequested(
            reason: reason, notificationId: id, workflowId: approval.workflowId, approvalId: approval.id, recipients: recipients,
            subject: subject, text: text, links: links.clear, sealedLinks: links.sealed, form: approval.form, facts: approval.context)
    }
}
