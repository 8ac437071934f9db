import Contracts
import Foundation
import ServiceKit

/// The links a notification about a pending approval carries, keyed by what they do:
/// `approval` and `decision` (the API), and per recipient `web:<approver>` (a sign-in link
/// to the approval's web page) and, when the form needs no input, `approve:<approver>` and
/// `reject:<approver>` (signed decision links that open a confirmation page; only its POST
/// decides, so link scanners never do). Each is valid until the approval's deadline; the
/// decision links' tokens also work under `/v1/links/` for programs. The personal ones are
/// credentials: they leave sealed for the notifier (`sealed`), never in clear on Kafka.
struct ApprovalLinks: Sendable {
    let publicURL: String
    let tokens: DecisionTokens
    let sessions: WebSessions
    let seal: LinkSeal

    static let confirmPrefix = "/ui/links/"

    /// The links as a notification carries them: the API URLs in clear, the personal ones sealed.
    func sealed(approvalID: String, recipients: [String], form: ApprovalForm?, policy: ApprovalPolicy, deadline: Date) throws -> (
        clear: [String: String], sealed: String
    ) {
        let all = links(approvalID: approvalID, recipients: recipients, form: form, policy: policy, deadline: deadline)
        let personal = all.filter { NotificationRequested.isPersonal(linkKey: $0.key) }
        return (all.filter { !NotificationRequested.isPersonal(linkKey: $0.key) }, try seal.seal(personal))
    }

    func links(approvalID: String, recipients: [String], form: ApprovalForm?, policy: ApprovalPolicy, deadline: Date) -> [String: String] {
        let api = "\(publicURL)/v1/approvals/\(approvalID)"
        var links = ["approval": api, "decision": "\(api)/decision"]
        // A form with fields to fill in needs the form (web page, Slack modal), not a one-click link.
        let needsInput = form?.requiresInput ?? false
        for approver in recipients {
            links["web:\(approver)"] = publicURL + sessions.signInPath(approvalID: approvalID, approver: approver, expiresAt: deadline)
            guard !needsInput else { continue }
            for decision in [Decision.approve, .reject] where policy.allowedOutcomes.contains(decision) {
                let token = tokens.issue(approvalID: approvalID, approver: approver, decision: decision, expiresAt: deadline)
                links["\(decision.rawValue):\(approver)"] = "\(publicURL)\(Self.confirmPrefix)\(token)"
            }
        }
        return links
    }
}
