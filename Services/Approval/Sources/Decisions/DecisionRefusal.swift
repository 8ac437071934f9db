import Contracts
import Forms
import Foundation

/// Why a decision was not taken. The domain's answer, which each edge words its own way:
/// the API as an HTTP error (`apiError`), the web page as the page again or the outcome,
/// Slack as an ephemeral note or the modal's field errors.
enum DecisionRefusal: Error, Equatable {
    /// The request itself is wrong (`DecisionRequest.checked`).
    case invalid(String)
    case noSuchApproval(String)
    case linkUsed
    /// Decided, expired or cancelled before this one came.
    case closed(ApprovalStatus, decidedBy: String?, channel: String?, at: Date?, deadline: Date)
    /// Past the deadline, before the timer closed it.
    case expired(deadline: Date)
    case notAnApprover(String)
    case ownRequest(String)
    case outcomeNotAllowed(Decision, allowed: [Decision])
    case alreadyVoted(String)
    /// The form's fields do not fit: the problems, and which field each is about.
    case invalidFields(FormProblems)

    /// Whether the approval was out of this approver's reach already (the page shows its
    /// outcome rather than the form again).
    var isSettled: Bool {
        switch self {
        case .closed, .expired, .linkUsed, .alreadyVoted: true
        default: false
        }
    }

    /// The reason, in words.
    var reason: String {
        switch self {
        case .invalid(let reason): reason
        case .noSuchApproval(let id): "no approval \(id)"
        case .linkUsed: "this link was already used"
        case .closed(.cancelled, _, _, _, _): "the approval is no longer needed: its workflow was cancelled"
        case .closed(.expired, _, _, _, let deadline), .expired(let deadline): "the approval expired at \(WireCoding.formatTime(deadline))"
        case .closed(let status, let decidedBy, let channel, let at, _):
            "already \(status.rawValue) by \(decidedBy ?? "?") via \(channel ?? "?") at \(at.map(WireCoding.formatTime) ?? "?")"
        case .notAnApprover(let approver): "\(approver) is not an approver of this approval"
        case .ownRequest(let approver): "\(approver) requested this and may not decide it (separation of duties)"
        case .outcomeNotAllowed(let decision, let allowed):
            "\(decision.rawValue) is not allowed here (allowed: \(allowed.map(\.rawValue).joined(separator: ", ")))"
        case .alreadyVoted(let approver): "\(approver) already voted on this approval"
        case .invalidFields(let problems): problems.description
        }
    }
}
