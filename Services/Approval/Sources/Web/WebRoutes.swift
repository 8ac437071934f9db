import Contracts
import Forms
import Foundation
import Hummingbird
import Logging
import ServiceKit

/// The approvers' web pages under `/ui` (see `WebPages`, `WebSessions`):
///
/// - `GET /ui/sign-in/{token}`: a signed link from a notification; starts a session, opens the approval.
/// - `GET /ui/inbox`: the approvals waiting for the signed-in approver.
/// - `GET /ui/approvals/{id}`: the form while pending, who decided how and when after.
/// - `POST /ui/approvals/{id}`: the form's submission (CSRF-checked); decides via channel `web`.
/// - `GET /ui/workflows/{id}/timeline`: the workflow's approvals, votes and outcomes in order.
/// - `GET /ui/links/{token}`: a decision link's confirmation page; changes nothing.
/// - `POST /ui/links/{token}`: the confirmation; decides once, as the link's approver.
///
/// Refusals are pages too, with the status the API would answer and the same reason; a
/// refused submission changes nothing.
struct WebRoutes: Sendable {
    let store: ApprovalStore
    let sessions: WebSessions
    let links: DecisionTokens

    func register(on router: Router<ServiceRequestContext>) {
        router.get("/ui/sign-in/{token}") { request, context in
            try await page {
                let token = try context.parameters.require("token")
                let (signIn, approval) = try await signInLink(token, logger: context.logger)
                // The browser that used it comes back through it; anything else gets a page
                // whose button signs in, so fetching the link does not use it up.
                if sessions.session(for: approval.workflowId, cookieHeader: request.headers[.cookie])?.approver == signIn.approver {
                    return HTMLResponse.seeOther("/ui/approvals/\(signIn.approvalID)")
                }
                return HTMLResponse.make(WebPages.signIn(approval, approver: signIn.approver, action: "/ui/sign-in/\(token)"))
            }
        }
        router.post("/ui/sign-in/{token}") { _, context in
            try await page {
                let token = try context.parameters.require("token")
                let (signIn, approval) = try await signInLink(token, logger: context.logger)
                guard try await store.useSignIn(signIn.tokenID, approvalID: approval.id) else {
                    throw APIError(
                        .gone, "link_used",
                        "this sign-in link was used already, and a link opens one browser session; use the browser you opened it in, or the API")
                }
                let started = sessions.start(approver: signIn.approver, workflowID: approval.workflowId)
                return HTMLResponse.seeOther("/ui/approvals/\(signIn.approvalID)", headers: [.setCookie: started.setCookie])
            }
        }
        router.get("/ui/inbox") { request, _ in
            try await page {
                let signed = try signedIn(request)
                var pending: [ApprovalView] = []
                for session in signed {
                    pending += try await store.list(status: .pending, workflowID: session.workflowID, assignee: session.approver, requester: nil, limit: 200)
                }
                return HTMLResponse.make(WebPages.inbox(approver: Set(signed.map(\.approver)).sorted().joined(separator: ", "), pending: pending))
            }
        }
        router.get("/ui/approvals/{id}") { request, context in
            try await page {
                let (approval, session) = try await visibleApproval(context.parameters.require("id"), request: request, logger: context.logger)
                let thread = try await store.thread(of: approval.workflowId)
                guard approval.status == .pending else { return HTMLResponse.make(WebPages.decided(approval, thread: thread)) }
                let csrf = sessions.csrfToken(for: session, approvalID: approval.id)
                return HTMLResponse.make(WebPages.approval(approval, thread: thread, viewer: session.approver, csrfToken: csrf))
            }
        }
        router.post("/ui/approvals/{id}") { request, context in
            try await page {
                let (approval, session) = try await visibleApproval(context.parameters.require("id"), request: request, logger: context.logger)
                var request = request
                let submitted = try URLEncodedForm.parse(String(decoding: try await request.rawBody(), as: UTF8.self))
                guard sessions.checkCSRF(submitted["csrf_token"], session: session, approvalID: approval.id) else {
                    throw APIError(
                        .forbidden, "csrf_failed", "this form did not come from this site or is from an earlier session; reload the page and try again")
                }
                return try await submit(submitted, to: approval, as: session, logger: context.logger)
            }
        }
        router.get("/ui/workflows/{id}/timeline") { request, context in
            try await page {
                let workflowID = try context.parameters.require("id")
                guard let session = try signedIn(request).first(where: { $0.workflowID == workflowID }) else {
                    throw APIError.notFound("no session for workflow \(workflowID) here; open the link in its notification")
                }
                let approvals = try await store.list(status: nil, workflowID: workflowID, assignee: nil, requester: nil, limit: 1000)
                guard approvals.contains(where: { $0.approvers.contains(session.approver) }) else {
                    throw APIError.notFound("no workflow \(workflowID) with an approval of yours")
                }
                return HTMLResponse.make(WebPages.timeline(workflowID: workflowID, approvals: approvals.sorted { $0.createdAt < $1.createdAt }))
            }
        }
        router.get("/ui/links/{token}") { _, context in
            try await page {
                let token = try context.parameters.require("token")
                let claims = try links.checked(token)
                let approval = try await find(claims.approvalID, logger: context.logger)
                guard approval.status == .pending else { return HTMLResponse.make(WebPages.decided(approval)) }
                return HTMLResponse.make(WebPages.confirm(approval, decision: claims.decision, approver: claims.approver, action: "/ui/links/\(token)"))
            }
        }
        router.post("/ui/links/{token}") { request, context in
            try await page {
                let claims = try links.checked(try context.parameters.require("token"))
                var request = request
                let submitted = try URLEncodedForm.parse(String(decoding: try await request.rawBody(), as: UTF8.self))
                let approval = try await find(claims.approvalID, logger: context.logger)
                return try await decide(
                    approval,
                    DecisionRequest(
                        decision: claims.decision, approver: claims.approver, comment: submitted["comment"], channel: "link", linkTokenID: claims.tokenID),
                    logger: context.logger)
            }
        }
    }

    // MARK: - Submissions

    private func submit(_ submitted: [String: String], to approval: ApprovalView, as session: WebSessions.Session, logger: Logger) async throws -> Response {
        guard let decision = submitted["decision"].flatMap(Decision.init(rawValue:)) else {
            throw APIError.badRequest("the form must say approve, approve_with_changes, reject or request_changes")
        }
        // The page again, with what was wrong.
        func refused(_ problem: String, status: HTTPResponse.Status = .unprocessableContent) async throws -> Response {
            let csrf = sessions.csrfToken(for: session, approvalID: approval.id)
            return HTMLResponse.make(
                status: status,
                WebPages.approval(
                    approval, thread: try await store.thread(of: approval.workflowId), viewer: session.approver, csrfToken: csrf, problem: problem))
        }
        let comment = submitted["comment"]
        var changes: JSONObject?
        if decision == .approveWithChanges {
            switch FormInput.changes(submitted, to: approval.context) {
            case .failure(let problems): return try await refused(problems.description)
            case .success(let asked) where asked.isEmpty: return try await refused("Change at least one value, or approve as it is.")
            case .success(let asked): changes = asked
            }
        }
        var values = submitted.filter { !$0.key.hasPrefix(ApprovalForm.changeFieldPrefix) }
        for name in ApprovalForm.reservedFieldNames { values[name] = nil }
        let form = approval.form ?? ApprovalForm(title: approval.workflowType)
        // Rejecting or sending back needs no fields (their buttons skip the browser's checks too).
        let approves = decision == .approve || decision == .approveWithChanges
        let needsFields = approves && !((form.fields ?? []).isEmpty && values.isEmpty)
        let fields = needsFields ? FormInput.typed(values, for: form) : nil
        do {
            return try await decide(
                approval,
                DecisionRequest(decision: decision, approver: session.approver, comment: comment, changes: changes, fields: fields, channel: "web"),
                logger: logger)
        } catch let refusal as DecisionRefusal {
            // What the approver can put right: the page again, saying what.
            switch refusal {
            case .invalid, .invalidFields, .outcomeNotAllowed: return try await refused(refusal.reason)
            default: throw refusal
            }
        }
    }

    /// Decides and shows the outcome; a decision that comes too late shows who decided,
    /// how and when instead (with the API's 409).
    private func decide(_ approval: ApprovalView, _ request: DecisionRequest, logger: Logger) async throws -> Response {
        guard let id = ApprovalID(approval.id) else { throw APIError.notFound("no approval \(approval.id)") }
        do {
            let view = try await store.decide(id: id, request, logger: logger)
            if request.linkTokenID == nil { return HTMLResponse.seeOther("/ui/approvals/\(approval.id)") }
            let notice = view.status == .pending ? "Your vote (\(request.decision.rawValue)) is recorded; the approval waits for the others." : nil
            return HTMLResponse.make(WebPages.decided(view, notice: notice))
        } catch let refusal as DecisionRefusal where refusal.isSettled {
            let current = try await find(approval.id, logger: logger)
            return HTMLResponse.make(status: refusal.status, WebPages.decided(current, notice: "Nothing changed: \(refusal.reason)."))
        }
    }

    // MARK: - Helpers

    /// Runs a page handler, turning a refusal into a page with the same status and reason.
    private func page(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch {
            guard let error = (error as? APIError) ?? (error as? DecisionRefusal)?.apiError else { throw error }
            let title =
                switch error.status {
                case .unauthorized: "Please sign in"
                case .forbidden: "Not allowed"
                case .notFound: "Not found"
                case .gone: "Link expired"
                default: "Something is not right"
                }
            let back: (String, String)? = error.status == .unauthorized || error.status == .gone ? nil : ("Back to your inbox", "/ui/inbox")
            return HTMLResponse.make(status: error.status, WebPages.problem(title: title, message: error.reason, back: back))
        }
    }

    /// The browser's sessions (one per workflow); 401 when it has none.
    private func signedIn(_ request: Request) throws -> [WebSessions.Session] {
        let found = sessions.sessions(cookieHeader: request.headers[.cookie])
        guard !found.isEmpty else {
            throw APIError(
                .unauthorized, "unauthorized", "open the link in your notification to sign in; sessions last \(Int(sessions.sessionLength / 3600)) hours")
        }
        return found
    }

    /// A sign-in link's claims and its approval; 410 once expired, 401 when not genuine.
    private func signInLink(_ token: String, logger: Logger) async throws -> (WebSessions.SignIn, ApprovalView) {
        let signIn: WebSessions.SignIn
        do throws(DecisionTokens.Refusal) {
            signIn = try sessions.signIn(token)
        } catch .expired {
            throw APIError(.gone, "link_expired", "this sign-in link expired; the approval's deadline has passed")
        } catch {
            throw APIError(.unauthorized, "invalid_link", error.reason)
        }
        return (signIn, try await find(signIn.approvalID, logger: logger))
    }

    private func find(_ id: String, logger: Logger) async throws -> ApprovalView {
        guard let uuid = ApprovalID(id), let approval = try await store.find(id: uuid) else {
            throw APIError.notFound("no approval \(id)")
        }
        return approval
    }

    /// Approval `id` and the session that may see it: the browser's session for its workflow.
    private func visibleApproval(_ id: String, request: Request, logger: Logger) async throws -> (ApprovalView, WebSessions.Session) {
        let all = try signedIn(request)
        let approval = try await find(id, logger: logger)
        guard let session = all.first(where: { $0.workflowID == approval.workflowId }),
            approval.isVisible(to: Principal(subject: session.approver, role: .approver))
        else {
            throw APIError.notFound("no approval \(id) in this browser's sessions")
        }
        return (approval, session)
    }
}
