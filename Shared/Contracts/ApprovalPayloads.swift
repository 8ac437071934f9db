import Crypto
import Foundation

/// Who must agree, and how, for an approval to be decided. Copied into the approval when
/// it is created, so a later change of a definition never alters an open or past one.
public struct ApprovalPolicy: Codable, Sendable, Equatable {
    public enum Quorum: String, Codable, Sendable { case any, all, nOfM = "n_of_m" }
    public enum Priority: String, Codable, Sendable, CaseIterable { case high, normal, low }
    /// What happens when the deadline passes with no decision: `expire` (the workflow times
    /// out), a decision by the policy itself, or the fallback decider (an LLM endpoint, its
    /// answer recorded as the fallback's, never as a human; `safe_default` when it fails).
    public enum OnExpiry: String, Codable, Sendable { case expire, reject, approve, fallback }

    /// One escalation level: `after_seconds` from the request, its approvers are added
    /// (the earlier ones may still decide) and notified.
    public struct Escalation: Codable, Sendable, Equatable {
        public var afterSeconds: Int
        public var approvers: [String]
        public init(afterSeconds: Int, approvers: [String]) {
            self.afterSeconds = afterSeconds
            self.approvers = approvers
        }
    }

    /// `any`: the first decision decides; `all`: every assignee approves (one rejection
    /// rejects); `n_of_m`: `required` approvals approve, and enough rejections that
    /// `required` can no longer be reached reject.
    public var quorum: Quorum?
    public var required: Int?
    /// Assignees (users or `group:<name>`) whose rejection rejects at once, whatever the quorum.
    public var veto: [String]?
    /// Whether the requester may decide their own request (separation of duties: no by default).
    public var allowSelfApproval: Bool?
    /// The outcomes approvers may choose; all four when absent (`any` quorum), approve and
    /// reject otherwise.
    public var outcomes: [Decision]?
    /// Sets the deadline when the step names none (configured per priority).
    public var priority: Priority?
    public var escalation: [Escalation]?
    /// Reminds the approvers every so many seconds until a decision or the deadline.
    public var reminderSeconds: Int?
    public var onExpiry: OnExpiry?
    /// What applies when the fallback decider fails or answers badly (`expire` when absent).
    public var safeDefault: OnExpiry?

    public init(
        quorum: Quorum? = nil, required: Int? = nil, veto: [String]? = nil, allowSelfApproval: Bool? = nil, outcomes: [Decision]? = nil,
        priority: Priority? = nil, escalation: [Escalation]? = nil, reminderSeconds: Int? = nil, onExpiry: OnExpiry? = nil,
        safeDefault: OnExpiry? = nil
    ) {
        self.safeDefault = safeDefault
        self.escalation = escalation
        self.reminderSeconds = reminderSeconds
        self.onExpiry = onExpiry
        self.quorum = quorum
        self.required = required
        self.veto = veto
        self.allowSelfApproval = allowSelfApproval
        self.outcomes = outcomes
        self.priority = priority
    }

    /// The outcomes allowed under this policy.
    public var allowedOutcomes: [Decision] {
        if let outcomes { return outcomes }
        return (quorum ?? .any) == .any ? Decision.allCases : [.approve, .reject]
    }
}

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
    /// Quorum, veto, separation of duties, outcomes and priority; `any` of the approvers when absent.
    public var policy: ApprovalPolicy?
    /// The form the approvers see; a default one (the facts, approve and reject) when absent.
    public var form: ApprovalForm?
    /// The admin's gate that requires this approval (`name@version`), named in its receipt.
    public var rule: String?
    /// The approvers were named by an agent: each must be a member of an approver group (or
    /// a group); otherwise the approval service rejects the request with the reason.
    public var knownApproversOnly: Bool?

    public init(
        approvalId: String, workflowId: String, workflowType: String, step: String, requester: String, approvers: [String], timeoutSeconds: Int?,
        context: JSONObject, policy: ApprovalPolicy? = nil, form: ApprovalForm? = nil, rule: String? = nil, knownApproversOnly: Bool? = nil
    ) {
        self.rule = rule
        self.knownApproversOnly = knownApproversOnly
        self.policy = policy
        self.form = form
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
    /// How the decision arrived: `api`, `web`, `slack`, `email`; `policy` when no human
    /// decided (the policy's `on_expiry`), with the rule in `approver`.
    public var channel: String
    public static let policyChannel = "policy"
    public var decidedAt: Date
    /// `approve_with_changes`: the input fields the approver changed, with their new values.
    public var changes: JSONObject?
    /// The assignee the approver stood in for, by delegation.
    public var onBehalfOf: String?
    /// The form's fields as the deciding approver filled them in (checked against the form).
    public var fields: JSONObject?
    /// The signed decision receipt (`DecisionReceipt`), a compact JWS.
    public var receipt: String?

    public init(
        approvalId: String, workflowId: String, step: String, decision: Decision, approver: String, comment: String?, channel: String, decidedAt: Date,
        changes: JSONObject? = nil, onBehalfOf: String? = nil, fields: JSONObject? = nil, receipt: String? = nil
    ) {
        self.receipt = receipt
        self.onBehalfOf = onBehalfOf
        self.fields = fields
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

/// A message in a workflow's conversation thread, passed to the approval service
/// (`hitl.approval.requests`) so that approvers see it with the request on the web page.
public struct ApprovalThreadMessage: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.approvalThreadMessage]
    public var eventType: EventType { .approvalThreadMessage }

    public var workflowId: String
    /// The message's number in the workflow's thread (orders it, makes a repeat harmless).
    public var sequence: Int64
    /// `agent` or `approver`.
    public var kind: String
    public var author: String
    public var step: String?
    public var text: String
    public var at: Date

    public init(workflowId: String, sequence: Int64, kind: String, author: String, step: String?, text: String, at: Date) {
        self.workflowId = workflowId
        self.sequence = sequence
        self.kind = kind
        self.author = author
        self.step = step
        self.text = text
        self.at = at
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
        let hex = Digest.hex(digest.prefix(16))
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.joined(separator: "-")
    }
}
