import Contracts
import Foundation

/// A decision as a channel hands it in: the API, the web page, a Slack button or modal, or a
/// signed link. Every channel builds one and `checked()` holds the rules that need no
/// approval to apply, so a rule is the same whichever way a human answers; the rules that
/// need the approval (status, deadline, who may decide, the form's fields) are the store's.
struct DecisionRequest: Sendable {
    static let maxCommentLength = 4000

    var decision: Decision
    var approver: String
    var comment: String?
    /// `approve_with_changes`: the input fields to change, with their new values.
    var changes: JSONObject?
    /// The form's fields as filled in.
    var fields: JSONObject?
    var channel: String
    /// The signed link used, if any: a link decides once.
    var linkTokenID: String?

    /// The request with its comment trimmed (an empty one is none), or why it cannot be taken.
    func checked() throws(DecisionRefusal) -> DecisionRequest {
        var request = self
        request.approver = approver.trimmingCharacters(in: .whitespaces)
        guard !request.approver.isEmpty else { throw .invalid("approver must name who decides") }
        let comment = comment?.trimmingCharacters(in: .whitespacesAndNewlines)
        request.comment = comment?.isEmpty == true ? nil : comment
        if let comment = request.comment, comment.count > Self.maxCommentLength {
            throw .invalid("the comment may be at most \(Self.maxCommentLength) characters")
        }
        switch decision {
        case .approveWithChanges:
            guard let changes, !changes.isEmpty else {
                throw .invalid("approve_with_changes needs changes: the input fields to change, with their new values")
            }
        case .requestChanges:
            guard request.comment != nil else { throw .invalid("request_changes needs a comment saying what to change") }
            if changes != nil { throw .invalid("changes belong to approve_with_changes only") }
        case .approve, .reject:
            if changes != nil { throw .invalid("changes belong to approve_with_changes only") }
        }
        return request
    }
}
