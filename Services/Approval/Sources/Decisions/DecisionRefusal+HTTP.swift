import Contracts
import Hummingbird
import ServiceKit

/// The API's words for a refused decision: a status, an error code clients match on, the
/// reason, and what was decided before when that is why.
extension DecisionRefusal: HTTPResponseError {
    var status: HTTPResponse.Status { apiError.status }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try apiError.response(from: request, context: context)
    }

    /// The API's answer.
    var apiError: APIError {
        switch self {
        case .invalid(let reason): return .badRequest(reason)
        case .noSuchApproval: return .notFound(reason)
        case .linkUsed: return APIError(.conflict, "link_used", reason)
        case .closed(.cancelled, _, _, _, _): return APIError(.conflict, "approval_cancelled", reason, details: ["status": "cancelled"])
        case .closed(.expired, _, _, _, _): return APIError(.conflict, "approval_expired", reason, details: ["status": "expired"])
        case .closed(let status, let decidedBy, let channel, let at, _):
            return APIError(
                .conflict, "already_decided", reason,
                details: [
                    "status": .string(status.rawValue), "decided_by": .string(decidedBy ?? ""), "channel": .string(channel ?? ""),
                    "decided_at": .string(at.map(WireCoding.formatTime) ?? "?"),
                ])
        case .expired(let deadline): return APIError(.conflict, "approval_expired", reason, details: ["deadline": .string(WireCoding.formatTime(deadline))])
        case .notAnApprover: return APIError(.forbidden, "not_an_approver", reason)
        case .ownRequest: return APIError(.forbidden, "own_request", reason)
        case .outcomeNotAllowed: return APIError(.unprocessableContent, "outcome_not_allowed", reason)
        case .alreadyVoted: return APIError(.conflict, "already_voted", reason)
        case .invalidFields(let problems):
            return APIError(.unprocessableContent, "invalid_fields", reason, details: ["problems": .array(problems.problems.map(JSONValue.string))])
        }
    }
}
