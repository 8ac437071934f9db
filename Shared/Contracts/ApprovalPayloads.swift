import Crypto
import Foundation

/// The orchestrator asks for a human approval (`hitl.approval.requests`). The orchestrator
/// chooses the approval id, so it knows what it waits for before anyone can answer.
public struct ApprovalRequested: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.approvalRequested]
    public var eventType: EventType { .approvalRequested }

    public var approvalId: String
    public var workflowId: String
    public var workflowType: String
    public var step: String
    public var requester: String
    public var approvers: [String]
    /// Seconds until expiry; the approval service's configured default when absent.
    public var timeoutSeconds: Int?
    /// The facts to show the approvers (the workflow's input).
    public var context: JSONObject

    public init(approvalId: String, workflowId: String, workflowType: String, step: String, requester: String, approvers: [String], timeoutSeconds: Int?, context: JSONObject) {
        self.approvalId = approvalId
        self.workflowId = workflowId
        self.workflowType = workflowType
        self.step = step
        self.requester = requester
        self.approvers = approvers
        self.timeoutSeconds = timeoutSeconds
        self.context = context
    }
}

/// The outcome a human chose.
public enum Decision: String, Codable, Sendable, CaseIterable {
    case approve, reject
    /// Approve, with some input fields changed (`changes`) for the steps that follow.
    case approveWithChanges = "approve_with_changes"
    /// Send the work back to an earlier task step with the comment as feedback, then ask again.
    case requestChanges = "request_changes"
}

/// A human decided an approval (`hitl.approval.decisions`). Published exactly once per approval.
public struct ApprovalDecided: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.approvalDecided]
    public var eventType: EventType { .approvalDecided }

    public var approvalId: String
    public var workflowId: String
    public var step: String
    public var decision: Decision
    public var approver: String
    public var comment: String?
    /// How the decision arrived: `api`, `web`, `slack`, `email`.
    public var channel: String
    public var decidedAt: Date
    /// `approve_with_changes`: the input fields the approver changed, with their new values.
    public var changes: JSONObject?

    public init(approvalId: String, workflowId: String, step: String, decision: Decision, approver: String, comment: String?, channel: String, decidedAt: Date, changes: JSONObject? = nil) {
        self.approvalId = approvalId
        self.workflowId = workflowId
        self.step = step
        self.decision = decision
        self.approver = approver
        self.comment = comment
        self.channel = channel
        self.decidedAt = decidedAt
        self.changes = changes
    }
}

/// Nobody decided before the deadline (`hitl.approval.decisions`).
public struct ApprovalExpired: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.approvalExpired]
    public var eventType: EventType { .approvalExpired }

    public var approvalId: String
    public var workflowId: String
    public var step: String
    public var deadline: Date
    public var expiredAt: Date

    public init(approvalId: String, workflowId: String, step: String, deadline: Date, expiredAt: Date) {
        self.approvalId = approvalId
        self.workflowId = workflowId
        self.step = step
        self.deadline = deadline
        self.expiredAt = expiredAt
    }
}

/// The orchestrator no longer needs an approval (the workflow was cancelled)
/// (`hitl.approval.requests`). A pending approval ends `cancelled`; a decided one stays.
public struct ApprovalCancelRequested: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.approvalCancelRequested]
    public var eventType: EventType { .approvalCancelRequested }

    public var approvalId: String
    public var workflowId: String
    public var reason: String

    public init(approvalId: String, workflowId: String, reason: String) {
        self.approvalId = approvalId
        self.workflowId = workflowId
        self.reason = reason
    }
}

/// Approval ids are derived from the workflow, the step and the round, so the id of an
/// approval is known before it is requested: a decision that arrives before the
/// orchestrator registered the wait can be recognised and kept.
public enum ApprovalIdentity {
    public static func derive(workflowId: String, step: String, round: Int) -> String {
        var digest = Array(SHA256.hash(data: Array("hitl-approval\u{0}\(workflowId.lowercased())\u{0}\(step)\u{0}\(round)".utf8)))
        digest[6] = (digest[6] & 0x0F) | 0x80  // version 8: custom, name-based
        digest[8] = (digest[8] & 0x3F) | 0x80  // RFC 9562 variant
        let hex = digest.prefix(16).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.joined(separator: "-")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
