import Foundation

/// One step of a workflow definition.
///
/// Steps run in order; `next` names the step to run after this one instead of the
/// following one (a forward jump; a cycle is refused at submission).
public struct StepDefinition: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case approval, task }

    /// Options of an approval step.
    public struct Approval: Codable, Sendable, Equatable {
        public var approvers: [String]
        /// Seconds until the approval expires; the approval service's default when absent.
        public var timeoutSeconds: Int?
        /// An expression; when it holds, the step is approved by this rule without asking anyone.
        public var autoApproveWhen: String?
        /// The earlier task step a `request_changes` decision sends the workflow back to.
        public var reviseStep: String?
        /// How many times approvers may be asked in all (rounds of `request_changes`); 3 when absent.
        public var maxRounds: Int?
        /// Quorum, veto, separation of duties, allowed outcomes and priority.
        public var policy: ApprovalPolicy?
        /// What the approvers see and fill in, on every channel.
        public var form: ApprovalForm?
        /// Set by the orchestrator on the approval an admin's gate requires (`name@version`);
        /// no definition may set it.
        public var gate: String?
        /// Set by the orchestrator on the approval steps an agent wrote: every approver must be
        /// someone the system knows (a member of an approver group, or a group), not any
        /// address the agent names.
        public var knownApproversOnly: Bool?

        public init(
            approvers: [String], timeoutSeconds: Int? = nil, autoApproveWhen: String? = nil, reviseStep: String? = nil, maxRounds: Int? = nil,
            policy: ApprovalPolicy? = nil, form: ApprovalForm? = nil
        ) {
            self.policy = policy
            self.form = form
            self.approvers = approvers
            self.timeoutSeconds = timeoutSeconds
            self.autoApproveWhen = autoApproveWhen
            self.reviseStep = reviseStep
            self.maxRounds = maxRounds
        }
    }

    /// What a task step (or a compensation) does.
    public struct Task: Codable, Sendable, Equatable {
        /// `noop`, `agent` or `http`.
        public var type: String
        /// `agent`: which agent should do it; agents filter `hitl.tasks` by it.
        public var agent: String?
        /// `http`: the URL the orchestrator calls.
        public var url: String?
        /// `http`: the method; POST when absent.
        public var method: String?
        /// `http`: extra request headers.
        public var headers: [String: String]?
        /// `http`: the JSON body; strings of the form `{{input.amount}}` are replaced by that value.
        public var body: JSONValue?

        public init(type: String, agent: String? = nil, url: String? = nil, method: String? = nil, headers: [String: String]? = nil, body: JSONValue? = nil) {
            self.type = type
            self.agent = agent
            self.url = url
            self.method = method
            self.headers = headers
            self.body = body
        }
    }

    /// How often and how patiently a task is tried.
    public struct Retry: Codable, Sendable, Equatable {
        /// Attempts in all, the first included.
        public var maxAttempts: Int
        /// The wait before the second attempt; it doubles for each later one.
        public var backoffSeconds: Double?
        /// The longest wait between two attempts.
        public var maxBackoffSeconds: Double?

        public init(maxAttempts: Int, backoffSeconds: Double? = nil, maxBackoffSeconds: Double? = nil) {
            self.maxAttempts = maxAttempts
            self.backoffSeconds = backoffSeconds
            self.maxBackoffSeconds = maxBackoffSeconds
        }
    }

    public var name: String
    public var kind: Kind
    /// An expression over `input` and `outputs`; when it does not hold the step is skipped.
    public var when: String?
    public var approval: Approval?
    public var task: Task?
    public var retry: Retry?
    /// Seconds one task attempt may take before it counts as failed.
    public var timeoutSeconds: Int?
    /// The task that undoes this step when the workflow is rolled back.
    public var compensate: Task?
    public var next: String?

    public init(
        name: String, kind: Kind, when: String? = nil, approval: Approval? = nil, task: Task? = nil, retry: Retry? = nil,
        timeoutSeconds: Int? = nil, compensate: Task? = nil, next: String? = nil
    ) {
        self.name = name
        self.kind = kind
        self.when = when
        self.approval = approval
        self.task = task
        self.retry = retry
        self.timeoutSeconds = timeoutSeconds
        self.compensate = compensate
        self.next = next
    }
}

/// An agent asks for a workflow to run (`hitl.workflow.requests`, or `POST /v1/workflows`).
/// The steps are listed, or taken from a stored template (`template`, and `template_version`
/// or else the latest).
public struct WorkflowSubmitted: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.workflowSubmitted]
    /// Agents write these: held to the inbound depth.
    public static let maximumDepth = WireCoding.inboundDepth
    public var eventType: EventType { .workflowSubmitted }

    /// Makes a resubmission return the first workflow instead of starting another.
    public var idempotencyKey: String
    public var type: String
    public var requester: String
    public var input: JSONObject
    public var steps: [StepDefinition]
    public var template: String?
    public var templateVersion: Int?
    /// Receives each lifecycle event of the workflow as a signed webhook.
    public var callbackUrl: String?

    public init(
        idempotencyKey: String, type: String, requester: String, input: JSONObject, steps: [StepDefinition],
        template: String? = nil, templateVersion: Int? = nil, callbackUrl: String? = nil
    ) {
        self.idempotencyKey = idempotencyKey
        self.type = type
        self.requester = requester
        self.input = input
        self.steps = steps
        self.template = template
        self.templateVersion = templateVersion
        self.callbackUrl = callbackUrl
    }

    enum CodingKeys: String, CodingKey {
        case idempotencyKey, type, requester, input, steps, template, templateVersion, callbackUrl
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        idempotencyKey = try container.decode(String.self, forKey: .idempotencyKey)
        type = try container.decode(String.self, forKey: .type)
        requester = try container.decode(String.self, forKey: .requester)
        input = try container.decodeIfPresent(JSONObject.self, forKey: .input) ?? [:]
        // A template request lists no steps.
        steps = try container.decodeIfPresent([StepDefinition].self, forKey: .steps) ?? []
        template = try container.decodeIfPresent(String.self, forKey: .template)
        templateVersion = try container.decodeIfPresent(Int.self, forKey: .templateVersion)
        callbackUrl = try container.decodeIfPresent(String.self, forKey: .callbackUrl)
    }
}

/// An agent or an operator asks to pause, resume or cancel a workflow.
public struct WorkflowControlRequested: EventPayload {
    public enum Action: String, Codable, Sendable { case pause, resume, cancel }
    public static let acceptedTypes: Set<EventType> = [.workflowControlRequested]
    /// Agents write these: held to the inbound depth.
    public static let maximumDepth = WireCoding.inboundDepth
    public var eventType: EventType { .workflowControlRequested }

    public var workflowId: String
    public var action: Action
    public var requestedBy: String
    public var reason: String?

    public init(workflowId: String, action: Action, requestedBy: String, reason: String? = nil) {
        self.workflowId = workflowId
        self.action = action
        self.requestedBy = requestedBy
        self.reason = reason
    }
}

/// The statuses a workflow moves through.
public enum WorkflowStatus: String, Codable, Sendable, CaseIterable {
    case running
    case waitingApproval = "waiting_approval"
    case paused
    case completed, rejected, failed
    case timedOut = "timed_out"
    case cancelled
    /// Undoing completed steps before ending `rejected`, `timed_out`, `failed` or `cancelled`.
    case compensating
    /// A compensation failed for good; an operator must look (resume retries it).
    case compensationFailed = "compensation_failed"

    /// Whether the workflow has ended and will never change again.
    public var isFinal: Bool {
        switch self {
        case .completed, .rejected, .failed, .timedOut, .cancelled: true
        case .running, .waitingApproval, .paused, .compensating, .compensationFailed: false
        }
    }
}

/// A workflow changed status (`hitl.workflow.events`). One payload for every lifecycle type;
/// the event type says which change it was.
public struct WorkflowLifecycle: EventPayload {
    public static let acceptedTypes: Set<EventType> = Set(WorkflowStatus.allCases.map(Self.type(for:)))
        .union([.workflowStarted, .workflowResumed])
    public var eventType: EventType { change }

    public var change: EventType
    public var workflowId: String
    public var workflowType: String
    public var status: WorkflowStatus
    public var step: String?
    public var reason: String?
    public var at: Date

    public init(change: EventType, workflowId: String, workflowType: String, status: WorkflowStatus, step: String? = nil, reason: String? = nil, at: Date) {
        self.change = change
        self.workflowId = workflowId
        self.workflowType = workflowType
        self.status = status
        self.step = step
        self.reason = reason
        self.at = at
    }

    /// The event type announcing that a workflow entered `status`.
    public static func type(for status: WorkflowStatus) -> EventType {
        switch status {
        case .running: .workflowStarted
        case .waitingApproval: .workflowWaitingApproval
        case .paused: .workflowPaused
        case .completed: .workflowCompleted
        case .rejected: .workflowRejected
        case .failed: .workflowFailed
        case .timedOut: .workflowTimedOut
        case .cancelled: .workflowCancelled
        case .compensating: .workflowCompensating
        case .compensationFailed: .workflowCompensationFailed
        }
    }
}
