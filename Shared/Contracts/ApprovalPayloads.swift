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

    public init(approvalId: String, workflowId: String, step: String, decision: Decision, approver: String, comment: String?, channel: String, decidedAt: Date) {
        self.approvalId = approvalId
        self.workflowId = workflowId
        self.step = step
        self.decision = decision
        self.approver = approver
        self.comment = comment
        self.channel = channel
        self.decidedAt = decidedAt
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
