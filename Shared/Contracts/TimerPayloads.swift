import Foundation

/// The services that own timers; each gets its firings on its own topic.
public enum TimerOwner: String, Codable, Sendable, CaseIterable {
    case orchestrator, approval, notifier
}

/// An owner scheduled a timer (`hitl.timer.requests`). Idempotent by (owner, key):
/// scheduling the same key again changes nothing.
public struct TimerScheduled: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.timerScheduled]
    public var eventType: EventType { .timerScheduled }

    public var owner: TimerOwner
    public var key: String
    public var workflowId: String
    public var dueAt: Date
    /// Handed back unchanged when the timer fires; the timeout service does not read it.
    public var payload: JSONObject

    public init(owner: TimerOwner, key: String, workflowId: String, dueAt: Date, payload: JSONObject) {
        self.owner = owner
        self.key = key
        self.workflowId = workflowId
        self.dueAt = dueAt
        self.payload = payload
    }
}

/// An owner cancelled a timer (`hitl.timer.requests`). Cancelling twice, or cancelling a
/// timer that already fired, changes nothing.
public struct TimerCancelled: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.timerCancelled]
    public var eventType: EventType { .timerCancelled }

    public var owner: TimerOwner
    public var key: String
    public var workflowId: String

    public init(owner: TimerOwner, key: String, workflowId: String) {
        self.owner = owner
        self.key = key
        self.workflowId = workflowId
    }
}

/// A timer fell due (on `Topic.timerFirings(for: owner)`). The owner decides what it means.
public struct TimerFired: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.timerFired]
    public var eventType: EventType { .timerFired }

    public var owner: TimerOwner
    public var key: String
    public var workflowId: String
    public var dueAt: Date
    public var firedAt: Date
    public var payload: JSONObject

    public init(owner: TimerOwner, key: String, workflowId: String, dueAt: Date, firedAt: Date, payload: JSONObject) {
        self.owner = owner
        self.key = key
        self.workflowId = workflowId
        self.dueAt = dueAt
        self.firedAt = firedAt
        self.payload = payload
    }
}
