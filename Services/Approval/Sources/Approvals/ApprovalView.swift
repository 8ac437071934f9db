import Contracts
import Forms
import Foundation
import ServiceKit

/// An approval as the API shows it.
struct ApprovalView: Codable, Sendable {
    var id: String
    var workflowId: String
    var workflowType: String
    var step: String
    var requester: String
    var approvers: [String]
    var context: JSONObject
    var status: ApprovalStatus
    var deadline: Date
    var createdAt: Date
    var decidedBy: String?
    var comment: String?
    var channel: String?
    var decidedAt: Date?
    var decision: String?
    var changes: JSONObject?
    /// The policy as it applied when the approval was created.
    var policy: AppliedPolicy
    /// The form every channel shows; submitted fields are checked against it.
    var form: ApprovalForm?
    var fields: JSONObject?
    var votes: [Vote]
    /// The admin's gate that required the approval (`name@version`).
    var rule: String?
    /// The signed receipt of the decision (`DecisionReceipt`), once decided.
    var receipt: String?
}

extension ApprovalView {
    /// Admins see every approval, approvers those assigned to them, agents those of their requests.
    func isVisible(to principal: Principal) -> Bool {
        switch principal.role {
        case .admin: true
        case .approver: approvers.contains(principal.subject)
        case .agent: requester == principal.subject
        }
    }
}

/// One approver's vote; with quorum `any` the first vote is the decision.
struct Vote: Codable, Sendable {
    var approver: String
    var decision: String
    var comment: String?
    var channel: String
    var votedAt: Date
    /// The assignee the voter stood in for, by delegation.
    var onBehalfOf: String?
}
