import Foundation

/// One step of a workflow definition.
public struct StepDefinition: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case approval, task }

    /// Options of an approval step.
    public struct Approval: Codable, Sendable, Equatable {
        public var approvers: [String]
        /// Seconds until the approval expires; the approval service's default when absent.
        public var timeoutSeconds: Int?
        public init(approvers: [String], timeoutSeconds: Int? = nil) {
            self.approvers = approvers
            self.timeoutSeconds = timeoutSeconds
        }
    }

    /// Options of a task step.
    public struct Task: Codable, Sendable, Equatable {
        public var type: String
        public init(type: String) { self.type = type }
    }

    public var name: String
    public var kind: Kind
    public var approval: Approval?
    public var task: Task?

    public init(name: String, kind: Kind, approval: Approval? = nil, task: Task? = nil) {
        self.name = name
        self.kind = kind
        self.approval = approval
        self.task = task
    }
}

/// An agent asks for a workflow to run (`hitl.workflow.requests`, or `POST /v1/workflows`).
public struct WorkflowSubmitted: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.workflowSubmitted]
    public var eventType: EventType { .workflowSubmitted }

    /// Makes a resubmission return the first workflow instead of starting another.
    public var idempotencyKey: String
    public var type: String
    public var requester: String
    public var input: JSONObject
    public var steps: [StepDefinition]

    public init(idempotencyKey: String, type: String, requester: String, input: JSONObject, steps: [StepDefinition]) {
        self.idempotencyKey = idempotencyKey
        self.type = type
        self.requester = requester
        self.input = input
        self.steps = steps
    }
}

/// An agent or an operator asks to pause, resume or cancel a workflow.
public struct WorkflowControlRequested: EventPayload {
    public enum Action: String, Codable, Sendable { case pause, resume, cancel }
    public static let acceptedTypes: Set<EventType> = [.workflowControlRequested]
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

    /// Whether the workflow has ended and will never change again.
    public var isFinal: Bool {
        switch self {
        case .completed, .rejected, .failed, .timedOut, .cancelled: true
        case .running, .waitingApproval, .paused: false
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
        }
    }
}
