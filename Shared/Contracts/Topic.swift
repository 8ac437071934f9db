/// The Kafka topics of the system. Every event's key is its workflow id, so one
/// workflow's events stay in order on one partition.
public struct Topic: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// Workflow submissions and control commands from agents (and `hitl submit`).
    public static let workflowRequests = Topic(rawValue: "hitl.workflow.requests")
    /// Workflow lifecycle events, for agents that follow their workflows.
    public static let workflowEvents = Topic(rawValue: "hitl.workflow.events")
    /// Requests for a human approval, from the orchestrator to the approval service.
    public static let approvalRequests = Topic(rawValue: "hitl.approval.requests")
    /// Decisions and expiries, from the approval service to the orchestrator.
    public static let approvalDecisions = Topic(rawValue: "hitl.approval.decisions")
    /// Agent task requests, from the orchestrator to agent workers.
    public static let tasks = Topic(rawValue: "hitl.tasks")
    /// Agent task results, from agent workers to the orchestrator.
    public static let taskResults = Topic(rawValue: "hitl.task.results")
    /// Notification requests, to the notifier.
    public static let notifications = Topic(rawValue: "hitl.notifications")
    /// Delivery outcomes, from the notifier.
    public static let notificationOutcomes = Topic(rawValue: "hitl.notification.outcomes")
    /// Timer schedule and cancel requests, to the timeout service.
    public static let timerRequests = Topic(rawValue: "hitl.timer.requests")
    /// Messages that could not be processed, with their full context.
    public static let deadLetter = Topic(rawValue: "hitl.dead-letter")

    /// Where the timeout service delivers the firings of one owner's timers.
    public static func timerFirings(for owner: TimerOwner) -> Topic {
        Topic(rawValue: "hitl.timer.fired.\(owner.rawValue)")
    }

    /// Every topic the system uses, for the jobs that create them.
    public static let all: [Topic] =
        [
            .workflowRequests, .workflowEvents, .approvalRequests, .approvalDecisions, .tasks,
            .taskResults, .notifications, .notificationOutcomes, .timerRequests, .deadLetter,
        ] + TimerOwner.allCases.map(Topic.timerFirings(for:))

    /// The event types each system topic carries. A consumer refuses any other type on it:
    /// otherwise whoever may write one topic (an agent on `hitl.workflow.requests`) could
    /// hand a consumer an event that belongs on another (a decision), and topic ACLs would
    /// protect nothing.
    static let carried: [Topic: Set<EventType>] = [
        .workflowRequests: [.workflowSubmitted, .workflowControlRequested],
        .workflowEvents: WorkflowLifecycle.acceptedTypes,
        .approvalRequests: [.approvalRequested, .approvalCancelRequested, .approvalThreadMessage],
        .approvalDecisions: [.approvalDecided, .approvalExpired],
        .tasks: [.taskRequested],
        .taskResults: [.taskResult],
        .notifications: [.notificationRequested, .notificationRetryRequested],
        .notificationOutcomes: [.notificationDelivered, .notificationFailed],
        .timerRequests: [.timerScheduled, .timerCancelled],
        .deadLetter: [.deadLettered],
    ]

    /// Whether events of `type` belong on this topic; nil for a topic that is not the
    /// system's (tests' own topics).
    public func carries(_ type: EventType) -> Bool? {
        if rawValue.hasPrefix("hitl.timer.fired.") { return type.name == EventType.timerFired.name }
        guard let types = Self.carried[self] else { return nil }
        return types.contains { $0.name == type.name }
    }

    /// Partitions per topic: the unit of parallelism of every consumer group.
    public static let defaultPartitionCount = 8
}
