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
    /// that is not configured. Separation of duties holds through delegation: a delegation
    /// that would hand the approval to the requester, or to someone who is already one of
    /// its approvers (one person casting two votes of a quorum), is not followed; that
    /// assignee stays.
    init(policy: ApprovalPolicy?, approvers: [String], groups: [String: [String]], delegations: [String: String] = [:], requester: String? = nil) throws {
        self.policy = policy ?? ApprovalPolicy()
        func expand(_ names: [String]) throws -> [String] {
            try names.flatMap { name -> [String] in
                guard name.hasPrefix("group:") else { return [name] }
                let group = String(name.dropFirst("group:".count))
                guard let members = groups[group] else { throw PolicyError("there is no group \(group) (HITL_APPROVAL_GROUPS or /v1/groups)") }
                return members
            }
        }
        func delegate(of user: String) -> String {
            var current = user
            var seen: Set<String> = [user]
            while let next = delegations[current], seen.insert(next).inserted { current = next }
            return current
        }
        let users = try expand(approvers)
        let named = Set(users)
        var standIns: [String: String] = [:]  // assignee → who decides for them
        var resolved: [String] = []
        for user in users where standIns[user] == nil {
            let standIn = delegate(of: user)
            let person = standIn == user || named.contains(standIn) || resolved.contains(standIn) || standIn == requester ? user : standIn
            standIns[user] = person
            if !resolved.contains(person) { resolved.append(person) }
        }
        assignees = resolved
        var seenVetoers = Set<String>()
        vetoers = try expand(self.policy.veto ?? []).map { standIns[$0] ?? $0 }.filter { seenVetoers.insert($0).inserted }
        let onBehalfOf = Dictionary(standIns.filter { $0.key != $0.value }.map { ($0.value, $0.key) }) { first, _ in first }
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
