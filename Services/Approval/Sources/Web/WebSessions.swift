import Foundation
import ServiceKit

/// Who is looking at the web pages, and proof that a form came from our own page.
///
/// An approver arrives through a signed sign-in link (`/ui/sign-in/{token}`), one per
/// approver and approval, valid until the approval's deadline and good for one sign-in
/// (`used_sign_ins`). Opening it shows a page whose button signs in: a link scanner that
/// fetches every link in a mail does not use it up. Signing in changes nothing but the
/// browser's session: a `hitl_s_<workflow>` cookie holding the sealed line
/// `s2|<key id>|<session id>|<approver>|<workflow>|<expiry>` (HttpOnly, SameSite=Lax,
/// Path=/ui, Secure when the public URL is https), one per workflow, so signing in for a
/// second one keeps the first. A session is for that approval's workflow only: a link that
/// leaks opens one workflow's approvals, once, not the approver's whole inbox. Every form carries a CSRF token, an HMAC of the session
/// id and the approval id under the session's key: good for one session and one approval,
/// and unknown to any other site. Both are signed with the decision-link keys, so a
/// rotation retires them together.
struct WebSessions: Sendable {
    /// Followed by the workflow id's 32 hex digits.
    static let cookiePrefix = "hitl_s_"
    static let signInPrefix = "/ui/sign-in/"

    let tokens: DecisionTokens
    let secureCookies: Bool
    /// How long a browser stays signed in.
    var sessionLength: TimeInterval = 2 * 3600

    struct Session: Sendable {
        let keyID: String
        let id: String
        let approver: String
        let expiresAt: Date
        /// The workflow whose approvals the session may see and decide.
        let workflowID: String
    }

    struct SignIn: Sendable {
        /// Recorded on first use: a link opens one session.
        let tokenID: String
        let approvalID: String
        let approver: String
    }

    // MARK: - Sign-in links

    /// The path part of an approver's sign-in link for one approval.
    func signInPath(approvalID: String, approver: String, expiresAt: Date) -> String {
        let line = ["w1", tokens.currentKeyID, UUID().uuidString.lowercased(), approvalID, approver, "\(Int(expiresAt.timeIntervalSince1970))"]
        return Self.signInPrefix + tokens.seal(line.joined(separator: "|"))
    }

    func signIn(_ token: String, now: Date = Date()) throws(DecisionTokens.Refusal) -> SignIn {
        let fields = try tokens.open(token, kind: "w1", count: 6, now: now).fields
        return SignIn(tokenID: fields[2], approvalID: fields[3], approver: fields[4])
    }

    // MARK: - Sessions

    /// A new session for `approver` on `workflowID`'s approvals, and the `Set-Cookie` header
    /// value that starts it.
    func start(approver: String, workflowID: String, now: Date = Date()) -> (session: Session, setCookie: String) {
        let session = Session(
            keyID: tokens.currentKeyID, id: UUID().uuidString.lowercased(), approver: approver, expiresAt: now.addingTimeInterval(sessionLength),
            workflowID: workflowID)
        let value = tokens.seal(
            ["s2", session.keyID, session.id, approver, workflowID, "\(Int(session.expiresAt.timeIntervalSince1970))"].joined(separator: "|"))
        let secure = secureCookies ? "; Secure" : ""
        return (session, "\(Self.cookieName(workflowID))=\(value); Path=/ui; Max-Age=\(Int(sessionLength)); HttpOnly; SameSite=Lax\(secure)")
    }

    static func cookieName(_ workflowID: String) -> String {
        cookiePrefix + workflowID.lowercased().filter(\.isHexDigit)
    }

    /// The genuine, unexpired sessions a `Cookie` header carries, one per workflow.
    func sessions(cookieHeader: String?, now: Date = Date()) -> [Session] {
        guard let cookieHeader else { return [] }
        var found: [Session] = []
        for pair in cookieHeader.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0].hasPrefix(Self.cookiePrefix), let (fields, expiresAt) = try? tokens.open(parts[1], kind: "s2", count: 6, now: now),
                parts[0] == Self.cookieName(fields[4])
            else { continue }
            found.append(Session(keyID: fields[1], id: fields[2], approver: fields[3], expiresAt: expiresAt, workflowID: fields[4]))
        }
        return found
    }

    /// The session for `workflowID` a `Cookie` header carries, if any.
    func session(for workflowID: String, cookieHeader: String?, now: Date = Date()) -> Session? {
        sessions(cookieHeader: cookieHeader, now: now).first { $0.workflowID == workflowID }
    }

    // MARK: - CSRF

    func csrfToken(for session: Session, approvalID: String) -> String {
        Signing.base64URL(tokens.mac("csrf|\(session.id)|\(approvalID)", keyID: session.keyID) ?? [])
    }

    func checkCSRF(_ token: String?, session: Session, approvalID: String) -> Bool {
        guard let token, !token.isEmpty else { return false }
        return Signing.constantTimeEquals(token, csrfToken(for: session, approvalID: approvalID))
    }
}
