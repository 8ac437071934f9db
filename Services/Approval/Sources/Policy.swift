import Contracts
import Foundation

/// An approval's policy as it applies: the assignees and veto holders resolved from users
/// and groups when the approval was created, and how votes add up to a decision.
struct AppliedPolicy: Codable, Sendable, Equatable {
    var policy: ApprovalPolicy
    /// Every user who may decide.
    var assignees: [String]
    /// Users whose rejection rejects at once.
    var vetoers: [String]
    /// Delegates standing in for assignees away when the approval was created: delegate → assignee.
    var onBehalfOf: [String: String]?

    var quorum: ApprovalPolicy.Quorum { policy.quorum ?? .any }

    /// Resolves `group:<name>` entries, then replaces each user away in `delegations`
    /// (user → delegate, followed along a chain) by their delegate; throws naming a group
    /// that is not configured.
    init(policy: ApprovalPolicy?, approvers: [String], groups: [String: [String]], delegations: [String: String] = [:]) throws {
        self.policy = policy ?? ApprovalPolicy()
        var onBehalfOf: [String: String] = [:]
        func standIn(for user: String) -> String {
            var current = user
            var seen: Set<String> = [user]
            while let next = delegations[current], seen.insert(next).inserted { current = next }
            if current != user { onBehalfOf[current] = user }
            return current
        }
        func resolve(_ names: [String]) throws -> [String] {
            var users: [String] = []
            for name in names {
                if name.hasPrefix("group:") {
                    let group = String(name.dropFirst("group:".count))
                    guard let members = groups[group] else { throw PolicyError("there is no group \(group) (HITL_APPROVAL_GROUPS or /v1/groups)") }
                    users += members
                } else {
                    users.append(name)
                }
            }
            var seen = Set<String>()
            return users.map(standIn(for:)).filter { seen.insert($0).inserted }
        }
        assignees = try resolve(approvers)
        vetoers = try resolve(self.policy.veto ?? [])
        self.onBehalfOf = onBehalfOf.isEmpty ? nil : onBehalfOf
        if case .nOfM = quorum, let required = self.policy.required, required > assignees.count {
            throw PolicyError("quorum needs \(required) approvals but only \(assignees.count) approvers were resolved")
        }
    }

    /// Why `approver` may not cast `decision` on a request by `requester`, or nil.
    func refusal(of decision: Decision, by approver: String, requester: String) -> PolicyRefusal? {
        guard assignees.contains(approver) else { return .notAnApprover }
        if approver == requester, policy.allowSelfApproval != true { return .ownRequest }
        guard policy.allowedOutcomes.contains(decision) else { return .outcomeNotAllowed(policy.allowedOutcomes) }
        return nil
    }

    /// The decision the votes so far add up to, or nil while it is still open. The last
    /// vote is the one just cast.
    func outcome(of votes: [(approver: String, decision: Decision)]) -> Decision? {
        guard let last = votes.last else { return nil }
        if last.decision == .reject, vetoers.contains(last.approver) { return .reject }
        let approvals = votes.filter { $0.decision == .approve || $0.decision == .approveWithChanges }.count
        let rejections = votes.filter { $0.decision == .reject }.count
        switch quorum {
        case .any:
            return last.decision
        case .all:
            if rejections > 0 { return .reject }
            return approvals >= assignees.count ? .approve : nil
        case .nOfM:
            let required = policy.required ?? 1
            if approvals >= required { return .approve }
            return rejections > assignees.count - required ? .reject : nil
        }
    }
}

enum PolicyRefusal: Equatable {
    case notAnApprover, ownRequest, outcomeNotAllowed([Decision])
}

struct PolicyError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
