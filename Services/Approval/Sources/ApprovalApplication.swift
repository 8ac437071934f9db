import AsyncHTTPClient
import Contracts
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceKit
import Slack

/// The approval service's own settings.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HITL_JWT_SECRET` | — (this or the next required) | HS256 key of the API's bearer tokens (at least 32 characters) |
/// | `HITL_JWT_PUBLIC_KEY_FILE` | — | PEM public key of an identity provider: P-256 verifies ES256 tokens, RSA (≥ 2048 bits) RS256 |
/// | `HITL_DECISION_KEYS` | — (required) | keys of the signed decision links: `id:secret` pairs, newest first (rotation) |
/// | `HITL_RECEIPT_KEYS` | — (required) | keys that sign decision receipts: `kid:base64 raw P-256 private key` pairs, newest first (rotation); the public keys are at `/.well-known/jwks.json` |
/// | `HITL_APPROVAL_DEFAULT_TIMEOUT_SECONDS` | `86400` | deadline of an approval whose request names neither a timeout nor a priority; no approval is without one |
/// | `HITL_APPROVAL_PRIORITY_DEADLINES` | `high=7200,normal=28800,low=86400` | seconds to the deadline per priority, when the request names no timeout |
/// | `HITL_SLACK_BOT_TOKEN`, `HITL_SLACK_SIGNING_SECRET`, `HITL_SLACK_API_URL`, `HITL_SLACK_USERS` | — | Slack interactivity (see `SlackSettings`); the signing secret is required with a token |
/// | `HITL_NOTIFICATION_KEY` | — (required) | seals the approvers' sign-in and decision links for the notifier, which holds the same key |
/// | `HITL_APPROVAL_GROUPS` | — | groups approvers may be named by (`group:<name>`): `finance=ann@x,bob@x;risk=cy@x` |
public struct ApprovalSettings: Sendable {
    public var accessTokens: AccessTokens
    var decisionTokens: DecisionTokens
    var receiptKeys: ReceiptKeys
    var fallback: FallbackSettings
    public var defaultTimeoutSeconds: Int
    public var priorityDeadlines: [ApprovalPolicy.Priority: Int]
    public var groups: [String: [String]]
    var slack: SlackSettings?
    /// Seals the approvers' links for the notifier (`HITL_NOTIFICATION_KEY`, shared with it).
    var linkSeal: LinkSeal

    public init(environment env: EnvironmentReader) throws {
        guard let seal = try LinkSeal(environment: env) else {
            throw ConfigurationError(variable: "HITL_NOTIFICATION_KEY", reason: "is required: the approvers' links travel sealed to the notifier under it")
        }
        linkSeal = seal
        accessTokens = try AccessTokens(environment: env)
        decisionTokens = try DecisionTokens(environment: env)
        receiptKeys = try ReceiptKeys(environment: env)
        fallback = try FallbackSettings(environment: env)
        defaultTimeoutSeconds = try env.int("HITL_APPROVAL_DEFAULT_TIMEOUT_SECONDS", default: 86_400, in: 1...(365 * 86_400))
        priorityDeadlines = [.high: 7200, .normal: 28_800, .low: 86_400]
        if let text = env.optionalString("HITL_APPROVAL_PRIORITY_DEADLINES") {
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, let priority = ApprovalPolicy.Priority(rawValue: parts[0]), let seconds = Int(parts[1]), seconds > 0 else {
                    throw ConfigurationError(
                        variable: "HITL_APPROVAL_PRIORITY_DEADLINES", reason: "must be priority=seconds pairs (high, normal, low), e.g. high=7200,low=86400")
                }
                priorityDeadlines[priority] = seconds
            }
        }
        slack = try SlackSettings(environment: env)
        if slack != nil, slack?.signingSecret == nil {
            throw ConfigurationError(variable: "HITL_SLACK_SIGNING_SECRET", reason: "is required with HITL_SLACK_BOT_TOKEN: Slack's requests must be verified")
        }
        groups = [:]
        if let text = env.optionalString("HITL_APPROVAL_GROUPS") {
            for entry in text.split(separator: ";") {
                let parts = entry.split(separator: "=", maxSplits: 1)
                let members = parts.count == 2 ? parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } : []
                guard parts.count == 2, !members.isEmpty else {
                    throw ConfigurationError(variable: "HITL_APPROVAL_GROUPS", reason: "must be name=member,member entries separated by ';'")
                }
                groups[parts[0].trimmingCharacters(in: .whitespaces)] = members
            }
        }
    }

    /// Seconds to the deadline of a request: its own timeout, else its priority's, else the default.
    func timeoutSeconds(for request: ApprovalRequested) -> Int {
        if let seconds = request.timeoutSeconds { return seconds }
        if let priority = request.policy?.priority, let seconds = priorityDeadlines[priority] { return seconds }
        return defaultTimeoutSeconds
    }
}

/// The approval service: owns approvals. Creates them from `hitl.approval.requests`, takes
/// decisions over HTTP (first one wins), expires them when their deadline timer fires, and
/// publishes the outcome on `hitl.approval.decisions`.
public enum Approval {
    public static let name = "approval"
    public static let defaultPort = 8081

    public static func buildApplication(configuration: ServiceConfiguration, settings: ApprovalSettings, metrics: PrometheusCollectorRegistry, logger: Logger)
        throws -> some ApplicationProtocol
    {
        let runtime = try ServiceRuntime(configuration: configuration, migrations: ApprovalMigrations.all, metrics: metrics, logger: logger)
        let store = ApprovalStore(runtime: runtime, settings: settings)
        let consumer = try runtime.makeConsumer(
            topics: [.approvalRequests, .timerFirings(for: .approval)],
            handlers: [
                .approvalRequested: { event, transaction in try await store.create(event.decode(ApprovalRequested.self), in: transaction) },
                .approvalCancelRequested: { event, transaction in try await store.cancel(event.decode(ApprovalCancelRequested.self), in: transaction) },
                .approvalThreadMessage: { event, transaction in try await store.record(event.decode(ApprovalThreadMessage.self), in: transaction) },
                .timerFired: { event, transaction in try await store.onTimer(event.decode(TimerFired.self), in: transaction) },
            ])
        let router = runtime.makeRouter()
        router.add(middleware: AuthenticationMiddleware(tokens: settings.accessTokens, openPrefixes: [DecisionLinkRoutes.prefix]))
        ApprovalRoutes(store: store).register(on: router)
        DecisionLinkRoutes(store: store, tokens: settings.decisionTokens).register(on: router)
        WebRoutes(store: store, sessions: store.sessions, links: settings.decisionTokens).register(on: router)
        Delegations(directory: store.directory).register(on: router)
        ApproverGroups(directory: store.directory).register(on: router)
        // The receipts' public keys, for anyone to verify them offline; no token needed.
        let jwks = settings.receiptKeys.jwks
        router.get("/.well-known/jwks.json") { _, _ in try JSONResponse.make(jwks) }
        if let slack = settings.slack, let secret = slack.signingSecret {
            SlackInteractions(store: store, slack: slack, signingSecret: secret, client: SlackClient(settings: slack, http: runtime.egress)).register(
                on: router)
        }
        let fallback = FallbackDecider(store: store, settings: settings.fallback)
        // A used link's record must outlive the chance to use it: kept while its approval is open.
        let pruner = runtime.makePruner(rules: [
            .init(table: "used_decision_links", timeColumn: "used_at", finished: "approval_id IN (SELECT id FROM approvals WHERE status <> 'pending')"),
            // Its link is valid until the approval's deadline: the record of its use outlives that.
            .init(table: "used_sign_ins", timeColumn: "used_at", finished: "approval_id IN (SELECT id FROM approvals WHERE deadline < now())"),
        ])
        return runtime.makeApplication(
            router: router, services: [consumer, runtime.supervised(fallback), pruner] + runtime.keySetServices(for: settings.accessTokens))
    }
}

/// `GET /v1/approvals`, `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}/decision`.
struct ApprovalRoutes: Sendable {
    let store: ApprovalStore

    struct DecisionBody: Decodable {
        let decision: Decision
        /// The approver deciding; the token's subject, which it must match when given.
        let approver: String?
        let comment: String?
        let changes: JSONObject?
        /// The form's fields, filled in.
        let fields: JSONObject?
    }

    func register(on router: Router<ServiceRequestContext>) {
        router.get("/v1/approvals") { request, context in
            let query = request.uri.queryParameters
            for (key, _) in query where !["status", "workflow_id", "limit"].contains(String(key)) {
                throw APIError.badRequest("unknown filter \(key) (known: status, workflow_id, limit)")
            }
            var status: ApprovalStatus?
            if let text = query["status"] {
                guard let known = ApprovalStatus(rawValue: String(text)) else {
                    throw APIError.badRequest("status must be one of \(ApprovalStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                status = known
            }
            var limit = 100
            if let text = query["limit"] {
                guard let number = Int(text), (1...1000).contains(number) else { throw APIError.badRequest("limit must be 1 to 1000") }
                limit = number
            }
            // Approvers see what they are assigned to, agents the approvals of their own requests.
            let principal = try context.require(.approver, .agent, .admin)
            let items = try await store.list(
                status: status, workflowID: query["workflow_id"].map(String.init),
                assignee: principal.role == .approver ? principal.subject : nil,
                requester: principal.role == .agent ? principal.subject : nil, limit: limit)
            return try JSONResponse.make(["items": items])
        }
        router.get("/v1/approvals/{id}") { _, context in
            let id = try parse(context.parameters.require("id"))
            let principal = try context.require(.approver, .agent, .admin)
            guard let view = try await store.find(id: id), view.isVisible(to: principal) else {
                throw APIError.notFound("no approval \(id)")
            }
            return try JSONResponse.make(view)
        }
        router.post("/v1/approvals/{id}/decision") { request, context in
            let id = try parse(context.parameters.require("id"))
            var request = request
            let body = try await request.decodeJSON(DecisionBody.self)
            let principal = try context.require(.approver)
            let approver = (body.approver ?? principal.subject).trimmingCharacters(in: .whitespaces)
            guard !approver.isEmpty else { throw APIError.badRequest("approver must name who decides") }
            guard approver == principal.subject else {
                throw APIError(.forbidden, "not_yourself", "approvers decide as themselves: the token is \(principal.subject)'s")
            }
            let view = try await store.decide(
                id: id,
                DecisionRequest(decision: body.decision, approver: approver, comment: body.comment, changes: body.changes, fields: body.fields, channel: "api"),
                logger: context.logger)
            // 202: the vote counts, but the quorum is not reached yet.
            return try JSONResponse.make(status: view.status == .pending ? .accepted : .ok, view)
        }
    }

    private func parse(_ text: String) throws -> ApprovalID {
        guard let id = ApprovalID(text) else { throw APIError.notFound("no approval \(text): not an approval id") }
        return id
    }
}
