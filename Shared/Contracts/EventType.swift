/// A versioned event type name such as `hitl.approval.requested.v1`.
public struct EventType: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The name without its version suffix, e.g. `hitl.approval.requested`.
    public var name: Substring {
        guard let dot = rawValue.lastIndex(of: "."), majorVersion != nil else { return rawValue[...] }
        return rawValue[..<dot]
    }

    /// The major version from the `.vN` suffix, or nil when the name has none.
    public var majorVersion: Int? {
        guard let dot = rawValue.lastIndex(of: ".") else { return nil }
        let suffix = rawValue[rawValue.index(after: dot)...]
        guard suffix.first == "v" else { return nil }
        return Int(suffix.dropFirst())
    }

    // MARK: - v1 types

    public static let workflowSubmitted = EventType(rawValue: "hitl.workflow.submitted.v1")
    public static let workflowControlRequested = EventType(rawValue: "hitl.workflow.control_requested.v1")
    public static let workflowStarted = EventType(rawValue: "hitl.workflow.started.v1")
    public static let workflowWaitingApproval = EventType(rawValue: "hitl.workflow.waiting_approval.v1")
    public static let workflowResumed = EventType(rawValue: "hitl.workflow.resumed.v1")
    public static let workflowPaused = EventType(rawValue: "hitl.workflow.paused.v1")
    public static let workflowCompleted = EventType(rawValue: "hitl.workflow.completed.v1")
    public static let workflowRejected = EventType(rawValue: "hitl.workflow.rejected.v1")
    public static let workflowTimedOut = EventType(rawValue: "hitl.workflow.timed_out.v1")
    public static let workflowFailed = EventType(rawValue: "hitl.workflow.failed.v1")
    public static let workflowCancelled = EventType(rawValue: "hitl.workflow.cancelled.v1")
    public static let workflowCompensating = EventType(rawValue: "hitl.workflow.compensating.v1")
    public static let workflowCompensationFailed = EventType(rawValue: "hitl.workflow.compensation_failed.v1")

    public static let approvalRequested = EventType(rawValue: "hitl.approval.requested.v1")
    public static let approvalDecided = EventType(rawValue: "hitl.approval.decided.v1")
    public static let approvalExpired = EventType(rawValue: "hitl.approval.expired.v1")
    public static let approvalCancelRequested = EventType(rawValue: "hitl.approval.cancel_requested.v1")
    public static let approvalThreadMessage = EventType(rawValue: "hitl.approval.thread_message.v1")

    public static let taskRequested = EventType(rawValue: "hitl.task.requested.v1")
    public static let taskResult = EventType(rawValue: "hitl.task.result.v1")

    public static let notificationRequested = EventType(rawValue: "hitl.notification.requested.v1")
    public static let notificationDelivered = EventType(rawValue: "hitl.notification.delivered.v1")
    public static let notificationFailed = EventType(rawValue: "hitl.notification.failed.v1")
    public static let notificationRetryRequested = EventType(rawValue: "hitl.notification.retry_requested.v1")

    public static let timerScheduled = EventType(rawValue: "hitl.timer.scheduled.v1")
    public static let timerCancelled = EventType(rawValue: "hitl.timer.cancelled.v1")
    public static let timerFired = EventType(rawValue: "hitl.timer.fired.v1")

    public static let deadLettered = EventType(rawValue: "hitl.dead_lettered.v1")
}
