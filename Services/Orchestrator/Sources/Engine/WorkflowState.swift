import Contracts
import Foundation
import ServiceKit

/// Step statuses, as stored (`workflow_steps.status`) and shown.
enum StepStatus: String, Sendable, CaseIterable {
    case pending, running
    case retryWait = "retry_wait"
    case retryDue = "retry_due"
    case waiting, completed, skipped, approved, rejected, expired, failed, cancelled

    /// Steps done with, whose successor may run.
    var hasPassed: Bool { self == .completed || self == .skipped || self == .approved }
}

/// Where a completed step's compensation stands (`workflow_steps.compensation_status`; nil
/// until it starts).
enum CompensationStatus: String, Sendable, CaseIterable {
    case running
    case retryWait = "retry_wait"
    case retryDue = "retry_due"
    case failed, compensated
}

/// A decision or expiry that reached a step before it could take it (paused, or the
/// approval not yet recorded as asked), kept in `workflow_steps.held` until it can.
enum HeldDecision: Sendable {
    case decided(ApprovalDecided)
    case expired(deadline: Date)

    /// Stored as `{"decided": <ApprovalDecided>}` or `{"expired": "<RFC 3339 time>"}`.
    init(stored object: JSONObject) throws {
        if case .string(let text)? = object["expired"], let deadline = WireCoding.parseTime(text) {
            self = .expired(deadline: deadline)
        } else if case .object(let decided)? = object["decided"] {
            self = .decided(try WireCoding.decode(ApprovalDecided.self, from: WireCoding.encode(decided)))
        } else {
            throw CorruptRow(column: "workflow_steps.held", value: (try? JSONColumn.text(object)) ?? "?")
        }
    }

    var stored: JSONObject {
        get throws {
            switch self {
            case .decided(let decision): ["decided": .object(try WireCoding.decode(JSONObject.self, from: WireCoding.encode(decision)))]
            case .expired(let deadline): ["expired": .string(WireCoding.formatTime(deadline))]
            }
        }
    }
}

/// A workflow row as the engine works on it.
struct WorkflowRow: Sendable {
    var id: WorkflowID
    var type: String
    var requester: String
    var input: JSONObject
    var status: WorkflowStatus
    var currentStep: Int
    var version: Int
    /// While compensating: the status the workflow ends in, and why.
    var outcome: WorkflowStatus?
    var reason: String?
    /// Receives each lifecycle event as a signed webhook.
    var callbackURL: String?

}

/// A step row as the engine works on it.
struct StepRow: Sendable {
    var position: Int
    var name: String
    var definition: StepDefinition
    var status: StepStatus
    var approvalID: ApprovalID?
    var output: JSONObject?
    /// The forward task's attempts.
    var forward = AttemptCount()
    /// Approval rounds (a `request_changes` starts another).
    var round: Int = 1
    /// A decision or expiry kept until the step can take it.
    var held: HeldDecision?
    var feedback: String?
    var error: String?
    var compensationStatus: CompensationStatus?
    /// The compensation's attempts.
    var compensation = AttemptCount()

    /// One track's attempts.
    subscript(track: Track) -> AttemptCount {
        get { track == .forward ? forward : compensation }
        set {
            if track == .forward { forward = newValue } else { compensation = newValue }
        }
    }

    /// The task a track runs: the step's own, or its compensation.
    func task(on track: Track) -> StepDefinition.Task? {
        track == .forward ? definition.task : definition.compensate
    }

    /// Whether the track's attempt is in flight, or waits for its retry timer.
    func isRunning(on track: Track) -> Bool { track == .forward ? status == .running : compensationStatus == .running }
    func isWaitingForRetry(on track: Track) -> Bool { track == .forward ? status == .retryWait : compensationStatus == .retryWait }
}

/// The two tracks of a step: its task going forward, and the compensation that undoes it
/// once the workflow rolls back. Each keeps its own attempts; what differs between them is
/// chosen through the track, in one place.
enum Track: Sendable {
    case forward, compensation

    init(compensation: Bool) { self = compensation ? .compensation : .forward }

    var isCompensation: Bool { self == .compensation }
}

/// One track's attempt counters.
struct AttemptCount: Sendable, Equatable {
    /// The number of the latest attempt; it only grows, so each attempt is told apart.
    var attempt = 0
    /// Attempts in the current round, counted against the retry policy.
    var tries = 0
}

/// The workflow changed between read and write; the event is retried on fresh state.
struct StaleWorkflow: Error, CustomStringConvertible {
    let id: WorkflowID
    var description: String { "workflow \(id) changed concurrently" }
}
