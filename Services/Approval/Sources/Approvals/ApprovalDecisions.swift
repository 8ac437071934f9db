import Contracts
import Forms
import Foundation
import Logging
import Metrics
import ServiceKit

/// How a human decides: a vote is checked against the approval as it stands (`take`, on
/// plain values), recorded under the approval's row lock, and when the votes add up under
/// its policy the approval is decided, with a signed receipt, exactly once.
extension ApprovalStore {
    /// Records a vote on a pending approval and decides it when the votes add up under its
    /// policy (with quorum `any`, the first vote decides). The row lock serialises votes, so
    /// exactly one vote decides and exactly one decision event is published; every later
    /// vote is refused with who decided, how and when. A refusal is a `DecisionRefusal`,
    /// whichever channel the request came from.
    func decide(id: ApprovalID, _ asked: DecisionRequest, logger: Logger) async throws -> ApprovalView {
        let request = try asked.checked()
        return try await runtime.database.transaction(logger: logger) { transaction -> ApprovalView in
            // The approval's row lock comes first: taking it after the link's insert (whose
            // foreign key share-locks the row) would let concurrent decisions deadlock.
            guard var current = try await repository.load(id: id, lock: true, in: transaction) else {
                throw DecisionRefusal.noSuchApproval(id.description)
            }
            if let linkTokenID = request.linkTokenID {
                guard try await repository.useDecisionLink(linkTokenID, of: id, in: transaction) else { throw DecisionRefusal.linkUsed }
            }
            let taken = try current.take(request, now: Date())
            current.votes.append(taken.vote)
            guard let outcome = taken.outcome else {
                try await repository.add(taken.vote, fields: taken.fields, changes: request.changes, to: id, in: transaction)
                return current
            }
            Counter(label: "hitl_approval_decisions_total", dimensions: [("decided_by", "human")]).increment()

            let decidedAt = Date()
            let decided = ApprovalRepository.Decided(
                status: ApprovalStatus(after: outcome), decision: outcome, changes: request.changes, fields: taken.fields, decidedBy: request.approver,
                comment: request.comment, channel: request.channel, decidedAt: decidedAt,
                receipt: try receipt(
                    for: current, outcome: outcome, by: request.approver, onBehalfOf: taken.vote.onBehalfOf, channel: request.channel, at: decidedAt,
                    changes: request.changes))
            try transaction.publish(
                ApprovalDecided(
                    approvalId: current.id, workflowId: current.workflowId, step: current.step, decision: outcome, approver: request.approver,
                    comment: request.comment, channel: request.channel, decidedAt: decided.decidedAt, changes: request.changes,
                    onBehalfOf: taken.vote.onBehalfOf, fields: taken.fields, receipt: decided.receipt),
                to: .approvalDecisions, subject: current.workflowId)
            // The approval's timers (deadline, escalations, next reminder) are left to fire:
            // each firing finds the approval closed and changes nothing. Cancelling them here
            // would cost every decision a record and a transaction in the timeout service,
            // for timers that nearly always lie hours ahead.
            try transaction.publish(
                notices.decided(current, status: decided.status, by: request.approver, channel: request.channel, at: decided.decidedAt),
                to: .notifications, subject: current.workflowId)
            // The vote, the decision and both events in one statement.
            try await repository.record(deciding: taken.vote, decided, of: id, in: transaction)
            current.apply(decided)
            return current
        }
    }

    /// The signed receipt of `current` decided `outcome`: who, how, when, the gate, and the
    /// hashes of what the approvers were shown and of the input as approved.
    func receipt(
        for current: ApprovalView, outcome: Decision, by decider: String, onBehalfOf: String?, channel: String, at decidedAt: Date, changes: JSONObject?
    ) throws -> String {
        try settings.receiptKeys.sign(
            DecisionReceipt.Claims(
                approvalId: current.id, workflowId: current.workflowId, step: current.step, outcome: outcome, decidedBy: decider, onBehalfOf: onBehalfOf,
                channel: channel, decidedAt: decidedAt, rule: current.rule, shown: current.context, changes: outcome == .approveWithChanges ? changes : nil))
    }
}

extension ApprovalView {
    /// What a vote does to the approval as it stands: refused (a `DecisionRefusal`), or
    /// recorded, with the form's fields checked and the outcome when the votes now add up.
    /// - Parameter request: a request that passed `DecisionRequest.checked()`.
    func take(_ request: DecisionRequest, now: Date) throws(DecisionRefusal) -> (vote: Vote, fields: JSONObject?, outcome: Decision?) {
        if status != .pending {
            throw DecisionRefusal.closed(status, decidedBy: decidedBy, channel: channel, at: decidedAt, deadline: deadline)
        }
        // Expiry before status: a late decision does not win even if the timer is slow.
        if deadline <= now { throw DecisionRefusal.expired(deadline: deadline) }
        switch policy.refusal(of: request.decision, by: request.approver, requester: requester) {
        case .notAnApprover?: throw DecisionRefusal.notAnApprover(request.approver)
        case .ownRequest?: throw DecisionRefusal.ownRequest(request.approver)
        case .outcomeNotAllowed(let allowed)?: throw DecisionRefusal.outcomeNotAllowed(request.decision, allowed: allowed)
        case nil: break
        }
        if votes.contains(where: { $0.approver == request.approver }) { throw DecisionRefusal.alreadyVoted(request.approver) }
        // The form's fields, checked whatever the channel; a rejection or a request for
        // changes need not fill them in.
        var fields: JSONObject?
        if let form, request.decision == .approve || request.decision == .approveWithChanges || request.fields != nil {
            switch FormValidation.check(request.fields ?? [:], against: form) {
            case .success(let values): fields = values.isEmpty ? nil : values
            case .failure(let problems): throw DecisionRefusal.invalidFields(problems)
            }
        }
        let vote = Vote(
            approver: request.approver, decision: request.decision.rawValue, comment: request.comment, channel: request.channel, votedAt: now,
            onBehalfOf: policy.onBehalfOf?[request.approver])
        let all = (votes + [vote]).compactMap { vote in Decision(rawValue: vote.decision).map { (approver: vote.approver, decision: $0) } }
        return (vote, fields, policy.outcome(of: all))
    }

    /// The approval as `decided` left it.
    mutating func apply(_ decided: ApprovalRepository.Decided) {
        status = decided.status
        decision = decided.decision.rawValue
        changes = decided.changes
        fields = decided.fields
        decidedBy = decided.decidedBy
        comment = decided.comment
        channel = decided.channel
        decidedAt = decided.decidedAt
        receipt = decided.receipt
    }
}
