import Contracts
import Foundation
import ServiceKit

/// The credential of one task attempt: only the worker the attempt was handed to can answer
/// it. A token is `HMAC-SHA256` under `HITL_TASK_TOKEN_KEY` over the workflow, the step, the
/// attempt and whether it is a compensation, so it is unguessable without the key, names
/// exactly one attempt, and needs no row of its own (it is checked before anything is read
/// or written). It travels in `TaskRequested.token` and the `HITL-Task-Token` header of an
/// http task call, and a result must carry it, over HTTP or on `hitl.task.results`.
struct TaskTokens: Sendable {
    let key: String

    /// The header that carries the token on http task calls.
    static let header = "HITL-Task-Token"

    func token(workflowID: String, step: String, attempt: Int, compensation: Bool) -> String {
        let claims = "hitl-task-v1\u{0}\(workflowID.lowercased())\u{0}\(step)\u{0}\(attempt)\u{0}\(compensation ? "compensation" : "forward")"
        return Signing.hmacSHA256Hex(secret: key, message: Array(claims.utf8))
    }

    /// Whether `token` is the one handed out with that attempt (constant time).
    func isValid(_ token: String?, workflowID: String, step: String, attempt: Int, compensation: Bool) -> Bool {
        guard let token else { return false }
        return Signing.constantTimeEquals(token, self.token(workflowID: workflowID, step: step, attempt: attempt, compensation: compensation))
    }

    func isValid(_ result: TaskResult) -> Bool {
        isValid(result.token, workflowID: result.workflowId, step: result.step, attempt: result.attempt, compensation: result.compensation)
    }
}
