import Contracts
import Forms
import Foundation
import ServiceKit

/// How an approval comes to be: the request checked, its approvers resolved (groups to
/// members, people away to their delegates), the approval stored, the approvers asked and
/// its timers set; or, when nobody may be asked, a rejection by the directory.
extension ApprovalStore {
    /// Creates the pending approval, asks the notifier to tell the approvers and the
    /// timeout service for the deadline. A repeat of the same request changes nothing.
    func create(_ request: ApprovalRequested, in transaction: Transaction) async throws {
        guard let id = ApprovalID(request.approvalId) else { throw PermanentFailure("approval_id is not a UUID") }
        guard !request.approvers.isEmpty else { throw PermanentFailure("an approval needs at least one approver") }
        // Whoever wrote the record, nothing reaches an approver that the orchestrator would refuse.
        if let problem = FormLimits.problem(inInput: request.context) { throw PermanentFailure("context: \(problem)") }
        if let form = request.form, let problem = FormLimits.problem(in: form, outcomes: (request.policy ?? ApprovalPolicy()).allowedOutcomes) {
            throw PermanentFailure("form.\(problem)")
        }
        // The directory is read once per transaction: the check and the resolution share it.
        let groups = try await directory.groups(in: transaction)
        if request.knownApproversOnly == true, let stranger = Self.stranger(in: request, groups: groups) {
            try refuse(request, reason: "\(stranger) is not a known approver: an agent may name members of approver groups, or groups", in: transaction)
            return
        }
        let applied = try await resolve(request.policy, approvers: request.approvers, requester: request.requester, in: transaction)
        let deadline = Date().addingTimeInterval(TimeInterval(settings.timeoutSeconds(for: request)))
        let form =
            request.form
            ?? FormRendering.defaultForm(
                title: "\(request.workflowType): \(request.step)", outcomes: applied.policy.allowedOutcomes.filter { $0 == .approve || $0 == .reject })
        let new = ApprovalRepository.NewApproval(id: id, request: request, applied: applied, form: form, deadline: deadline)
        guard try await repository.insert(new, in: transaction) else { return }
        try transaction.publish(
            notices.requested(request, recipients: applied.assignees, form: form, policy: applied.policy, deadline: deadline), to: .notifications,
            subject: request.workflowId)
        try scheduleTimers(for: request, id: id, policy: applied.policy, deadline: deadline, in: transaction)
    }

    /// The first person `request` names (as an approver, a vetoer or at an escalation level)
    /// who is not a member of any approver group, or nil. Groups are checked when resolved.
    private static func stranger(in request: ApprovalRequested, groups: [String: [String]]) -> String? {
        let known = Set(groups.values.joined())
        let named = request.approvers + (request.policy?.veto ?? []) + (request.policy?.escalation ?? []).flatMap(\.approvers)
        return named.first { !$0.hasPrefix("group:") && !known.contains($0) }
    }

    /// Answers a request that cannot be put to anyone with a rejection by the directory,
    /// with the reason and a signed receipt: the workflow rolls back and says why.
    private func refuse(_ request: ApprovalRequested, reason: String, in transaction: Transaction) throws {
        let decidedAt = Date()
        let receipt = try settings.receiptKeys.sign(
            DecisionReceipt.Claims(
                approvalId: request.approvalId, workflowId: request.workflowId, step: request.step, outcome: .reject, decidedBy: "directory",
                onBehalfOf: nil, channel: ApprovalDecided.policyChannel, decidedAt: decidedAt, rule: request.rule, shown: request.context, changes: nil))
        try transaction.publish(
            ApprovalDecided(
                approvalId: request.approvalId, workflowId: request.workflowId, step: request.step, decision: .reject, approver: "directory",
                comment: reason, channel: ApprovalDecided.policyChannel, decidedAt: decidedAt, receipt: receipt),
            to: .approvalDecisions, subject: request.workflowId)
    }

    /// `policy` with `approvers` resolved as of now: groups (configured and from the API) to
    /// their members, people away to their delegates. A group that does not exist is the
    /// request's fault, not a passing one.
    func resolve(_ policy: ApprovalPolicy?, approvers: [String], requester: String?, in transaction: Transaction) async throws -> AppliedPolicy {
        let delegations = try await directory.activeDelegations(in: transaction)
        let groups = try await directory.groups(in: transaction)
        do {
            return try AppliedPolicy(policy: policy, approvers: approvers, groups: groups, delegations: delegations, requester: requester)
        } catch let error as PolicyError {
            throw PermanentFailure(error.description)
        }
    }
}
