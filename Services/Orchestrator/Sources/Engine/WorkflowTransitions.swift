import Contracts
import ServiceKit

/// The one table of allowed workflow status changes. Every status change goes through
/// `WorkflowTransitions.check`, so an invalid one is refused instead of applied.
enum WorkflowTransitions {
    static let allowed: [WorkflowStatus: Set<WorkflowStatus>] = [
        .running: [.waitingApproval, .paused, .completed, .rejected, .failed, .timedOut, .cancelled, .compensating],
        .waitingApproval: [.running, .paused, .rejected, .failed, .timedOut, .cancelled, .compensating],
        .paused: [.running, .cancelled, .failed, .compensating],
        .compensating: [.rejected, .failed, .timedOut, .cancelled, .compensationFailed],
        .compensationFailed: [.compensating],
        .completed: [], .rejected: [], .failed: [], .timedOut: [], .cancelled: [],
    ]

    /// Throws when `from` may not become `to`.
    static func check(from: WorkflowStatus, to: WorkflowStatus) throws {
        guard allowed[from, default: []].contains(to) else {
            throw PermanentFailure("workflow cannot go from \(from.rawValue) to \(to.rawValue)")
        }
    }
}
