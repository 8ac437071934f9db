import Foundation
import ServiceKit

/// Slack settings, shared by the notifier (posts and updates messages) and the approval
/// service (takes the clicks, opens modals).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HITL_SLACK_BOT_TOKEN` | — | the bot token (`xoxb-…`); turns Slack on |
/// | `HITL_SLACK_API_URL` | `https://slack.com/api` | the Web API's base URL (tests point it at a local stand-in) |
/// | `HITL_SLACK_SIGNING_SECRET` | — (required by the approval service with a token) | verifies requests from Slack (v0 signatures) |
/// | `HITL_SLACK_USERS` | — | who is who: `approver=SlackUserID` pairs, comma-separated, e.g. `ann@bank.example=U024BE7LH` |
public struct SlackSettings: Sendable {
    public var botToken: String
    public var apiURL: String
    public var signingSecret: String?
    public var users: SlackUsers

    /// Nil when Slack is not configured (`HITL_SLACK_BOT_TOKEN` unset).
    public init?(environment env: EnvironmentReader) throws {
        guard let token = env.optionalString("HITL_SLACK_BOT_TOKEN") else { return nil }
        guard token.hasPrefix("xoxb-") else { throw ConfigurationError(variable: "HITL_SLACK_BOT_TOKEN", reason: "must be a bot token (xoxb-…)") }
        botToken = token
        apiURL = try env.url("HITL_SLACK_API_URL", default: "https://slack.com/api").absoluteString
        while apiURL.hasSuffix("/") { apiURL.removeLast() }
        signingSecret = env.optionalString("HITL_SLACK_SIGNING_SECRET")
        if let secret = signingSecret, secret.count < 16 {
            throw ConfigurationError(variable: "HITL_SLACK_SIGNING_SECRET", reason: "must be at least 16 characters")
        }
        var pairs: [(String, String)] = []
        for entry in (env.optionalString("HITL_SLACK_USERS") ?? "").split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, parts[1].wholeMatch(of: /[UW][A-Z0-9]+/) != nil else {
                throw ConfigurationError(variable: "HITL_SLACK_USERS", reason: "must be approver=SlackUserID pairs (IDs like U024BE7LH), comma-separated")
            }
            pairs.append((parts[0], parts[1]))
        }
        users = try SlackUsers(pairs)
    }
}

/// Approvers and their Slack user IDs, both ways. A Slack user not listed is nobody: their
/// clicks decide nothing.
public struct SlackUsers: Sendable {
    private let byApprover: [String: String]
    private let byUserID: [String: String]

    public init(_ pairs: [(approver: String, userID: String)]) throws {
        var byApprover: [String: String] = [:]
        var byUserID: [String: String] = [:]
        for (approver, userID) in pairs {
            guard byApprover.updateValue(userID, forKey: approver) == nil, byUserID.updateValue(approver, forKey: userID) == nil else {
                throw ConfigurationError(variable: "HITL_SLACK_USERS", reason: "\(approver) or \(userID) is listed twice")
            }
        }
        self.byApprover = byApprover
        self.byUserID = byUserID
    }

    public func userID(of approver: String) -> String? { byApprover[approver] }
    public func approver(of userID: String) -> String? { byUserID[userID] }
}
