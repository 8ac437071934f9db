import Contracts
import Foundation
import ServiceKit

/// Approvals and their changes, in files by concern: creation (`ApprovalCreation`),
/// decisions (`ApprovalDecisions`), what happens without a decision, the timers and
/// cancellation (`ApprovalLifecycle`), and what the approvers are told (`ApprovalNotices`).
/// Every change runs in the caller's transaction together with the events it causes; the
/// SQL is `ApprovalRepository`'s and `Directory`'s.
struct ApprovalStore: Sendable {
    let runtime: ServiceRuntime
    let settings: ApprovalSettings
    let repository: ApprovalRepository
    let directory: Directory
    /// Wakes the fallback decider when an approval was handed to it.
    var fallbackWakeup = Wakeup()

    init(runtime: ServiceRuntime, settings: ApprovalSettings) {
        self.runtime = runtime
        self.settings = settings
        repository = ApprovalRepository(database: runtime.database)
        directory = Directory(database: runtime.database, configured: settings.groups)
    }

    /// The web pages' sessions and CSRF tokens.
    var sessions: WebSessions {
        WebSessions(tokens: settings.decisionTokens, secureCookies: runtime.configuration.publicURL.hasPrefix("https:"))
    }

    var links: ApprovalLinks {
        ApprovalLinks(publicURL: runtime.configuration.publicURL, tokens: settings.decisionTokens, sessions: sessions, seal: settings.linkSeal)
    }

    var notices: ApprovalNotices { ApprovalNotices(links: links) }

    // MARK: - Reading

    /// Approval `id`, read outside any transaction.
    func find(id: ApprovalID) async throws -> ApprovalView? {
        try await repository.find(id: id)
    }

    func list(status: ApprovalStatus?, workflowID: String?, assignee: String?, requester: String?, limit: Int) async throws -> [ApprovalView] {
        try await repository.list(status: status, workflowID: workflowID, assignee: assignee, requester: requester, limit: limit)
    }

    /// A workflow's conversation, oldest first.
    func thread(of workflowID: String) async throws -> [ApprovalThreadMessage] {
        try await repository.thread(of: workflowID)
    }

    /// Records the first use of sign-in link `tokenID`; false when it was used before.
    func useSignIn(_ tokenID: String, approvalID: String) async throws -> Bool {
        guard let id = ApprovalID(approvalID) else { return false }
        return try await repository.useSignIn(tokenID, of: id)
    }
}
