import AsyncHTTPClient
import Contracts
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceKit

/// The orchestrator's own settings.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HITL_JWT_SECRET` | — (this or the next required) | HS256 key of the API's bearer tokens (at least 32 characters) |
/// | `HITL_JWT_PUBLIC_KEY_FILE` | — | PEM public key of an identity provider: P-256 verifies ES256 tokens, RSA (≥ 2048 bits) RS256 |
/// | `HITL_JWT_JWKS_URL` | — | or the provider's key set, fetched at start, every `HITL_JWT_JWKS_REFRESH_SECONDS` and after an unknown `kid` |
/// | `HITL_JWT_ISSUER`, `HITL_JWT_AUDIENCE` | — (required with a provider) | what its tokens' `iss` and `aud` must say |
/// | `HITL_JWT_MAX_LIFETIME_SECONDS` | `86400` | the longest a provider's token may live, `iat` to `exp` |
/// | `HITL_TASK_SIGNING_SECRET` | — | HMAC-SHA256 key of the `X-HITL-Signature` header (`v2`) on http task calls; without it calls go unsigned (a warning at start-up) |
/// | `HITL_CALLBACK_SIGNING_SECRET` | — | its own key for lifecycle callbacks (`v1`, like the webhook); without it callbacks go unsigned (a warning) |
/// | `HITL_TASK_TOKEN_KEY` | — (required) | HMAC-SHA256 key of the per-attempt task tokens (at least 32 characters); a task result needs its attempt's token |
/// | `HITL_RECEIPT_JWKS` | — | the approval service's receipt keys (the JSON of its `/.well-known/jwks.json`): a decision is applied only with a receipt they verify that names exactly it; without it decisions are taken on the topic's word (a warning) |
/// | `HITL_AGENT_DEFINITIONS` | `inline` | `inline`: agents list their own steps or name a template; `templates`: agents may only name an admin's template. Admins' gates apply either way |
/// | `HITL_CIRCUIT_FAILURE_THRESHOLD` | `5` | consecutive failures of one host that open its circuit |
/// | `HITL_CIRCUIT_OPEN_SECONDS` | `30` | how long an open circuit fails calls fast before one probe goes through |
/// | `HITL_STREAMS_PER_PRINCIPAL` | `10` | event streams (`/v1/workflows/{id}/events`) one token subject may have open |
/// | `HITL_STREAMS_MAX` | `1000` | event streams open in all |
public struct OrchestratorSettings: Sendable {
    public var accessTokens: AccessTokens
    public var taskSigningSecret: String?
    public var callbackSigningSecret: String?
    public var taskTokenKey: String
    public var receiptKeys: JWKSet?
    var agentDefinitions: AgentDefinitions
    public var circuitFailureThreshold: Int
    public var circuitOpenSeconds: Int
    var streamLimits: HistoryFeed.Limits

    public init(environment env: EnvironmentReader) throws {
        accessTokens = try AccessTokens(environment: env)
        taskSigningSecret = env.optionalString("HITL_TASK_SIGNING_SECRET")
        if let secret = taskSigningSecret, secret.count < 16 {
            throw ConfigurationError(variable: "HITL_TASK_SIGNING_SECRET", reason: "must be at least 16 characters")
        }
        callbackSigningSecret = env.optionalString("HITL_CALLBACK_SIGNING_SECRET")
        if let secret = callbackSigningSecret, secret.count < 16 {
            throw ConfigurationError(variable: "HITL_CALLBACK_SIGNING_SECRET", reason: "must be at least 16 characters")
        }
        if let secret = callbackSigningSecret, secret == taskSigningSecret {
            throw ConfigurationError(
                variable: "HITL_CALLBACK_SIGNING_SECRET",
                reason: "must differ from HITL_TASK_SIGNING_SECRET: a callback receiver must not be able to sign task calls")
        }
        if let text = env.optionalString("HITL_RECEIPT_JWKS") {
            guard let keys = try? WireCoding.decode(JWKSet.self, from: Array(text.utf8)), !keys.keys.isEmpty else {
                throw ConfigurationError(variable: "HITL_RECEIPT_JWKS", reason: "must be a JSON Web Key Set with at least one key")
            }
            receiptKeys = keys
        }
        taskTokenKey = try env.string("HITL_TASK_TOKEN_KEY")
        if taskTokenKey.count < 32 { throw ConfigurationError(variable: "HITL_TASK_TOKEN_KEY", reason: "must be at least 32 characters") }
        let definitions = try env.string("HITL_AGENT_DEFINITIONS", default: AgentDefinitions.inline.rawValue)
        guard let agentDefinitions = AgentDefinitions(rawValue: definitions) else {
            throw ConfigurationError(variable: "HITL_AGENT_DEFINITIONS", reason: "must be inline or templates")
        }
        self.agentDefinitions = agentDefinitions
        streamLimits = HistoryFeed.Limits(
            perPrincipal: try env.int("HITL_STREAMS_PER_PRINCIPAL", default: 10, in: 1...10_000),
            total: try env.int("HITL_STREAMS_MAX", default: 1000, in: 1...100_000))
        circuitFailureThreshold = try env.int("HITL_CIRCUIT_FAILURE_THRESHOLD", default: 5, in: 1...1000)
        circuitOpenSeconds = try env.int("HITL_CIRCUIT_OPEN_SECONDS", default: 30, in: 1...86_400)
    }
}

/// The orchestrator: owns workflows, their history and conversation, and templates. Takes
/// submissions and control requests over HTTP and on `hitl.workflow.requests`; applies
/// decisions, expiries, task results and its own timers; makes http task calls; keeps the
/// dead-letter index.
public enum Orchestrator {
    public static let name = "orchestrator"
    public static let defaultPort = 8080

    /// Builds the orchestrator from its configuration.
    public static func buildApplication(
        configuration: ServiceConfiguration, settings: OrchestratorSettings, metrics: PrometheusCollectorRegistry, logger: Logger
    ) throws -> some ApplicationProtocol {
        let runtime = try ServiceRuntime(configuration: configuration, migrations: OrchestratorMigrations.all, metrics: metrics, logger: logger)
        let httpWakeup = Wakeup()
        let tokens = TaskTokens(key: settings.taskTokenKey)
        let engine = WorkflowEngine(tasks: TaskDispatcher(tokens: tokens), repository: WorkflowRepository(httpWakeup: httpWakeup))
        let templates = TemplateStore()
        let gates = GateStore()
        let submissions = Submissions(engine: engine, templates: templates, gates: gates, agentDefinitions: settings.agentDefinitions)
        let deadLetters = DeadLetterIndex(runtime: runtime)
        let handlers = EventHandlers(engine: engine, submissions: submissions, tokens: tokens, receiptKeys: settings.receiptKeys)

        let workflowConsumer = try runtime.makeConsumer(
            topics: [.workflowRequests, .approvalDecisions, .taskResults, .timerFirings(for: .orchestrator)],
            handlers: [
                .workflowSubmitted: handlers.submitted, .workflowControlRequested: handlers.control,
                .approvalDecided: handlers.decided, .approvalExpired: handlers.expired,
                .taskResult: handlers.taskResult, .timerFired: handlers.timerFired,
            ])
        let deadLetterConsumer = try runtime.makeConsumer(
            topics: [.deadLetter], handlers: [.deadLettered: { event, transaction in try await deadLetters.index(event, in: transaction) }],
            groupSuffix: "-dead-letters")
        if settings.taskSigningSecret == nil {
            logger.warning("HITL_TASK_SIGNING_SECRET is not set: http task calls go out unsigned")
        }
        if settings.receiptKeys == nil {
            logger.warning("HITL_RECEIPT_JWKS is not set: decisions are applied without checking their receipts")
        }
        if settings.callbackSigningSecret == nil {
            logger.warning("HITL_CALLBACK_SIGNING_SECRET is not set: lifecycle callbacks go out unsigned")
        }
        let httpWorker = HTTPTaskWorker(
            runtime: runtime, engine: engine, queue: HTTPCallQueue(database: runtime.database), wakeup: httpWakeup,
            breaker: CircuitBreaker(failureThreshold: settings.circuitFailureThreshold, openDuration: .seconds(settings.circuitOpenSeconds)),
            signingSecret: settings.taskSigningSecret, callbackSecret: settings.callbackSigningSecret)

        let router = runtime.makeRouter()
        router.add(middleware: AuthenticationMiddleware(tokens: settings.accessTokens))
        let workflows = WorkflowRoutes(
            runtime: runtime, engine: engine, submissions: submissions, tokens: tokens, reads: WorkflowReads(database: runtime.database))
        workflows.register(on: router)
        MCPRoute(tokens: settings.accessTokens, port: configuration.httpPort).register(on: router)
        let feed = HistoryFeed(workflows: workflows, limits: settings.streamLimits)
        EventStreamRoute(workflows: workflows, feed: feed).register(on: router)
        ConversationRoutes(runtime: runtime, workflows: workflows).register(on: router)
        TemplateRoutes(runtime: runtime, templates: templates).register(on: router)
        GateRoutes(runtime: runtime, gates: gates).register(on: router)
        deadLetters.register(on: router)
        return runtime.makeApplication(
            router: router,
            services: [
                workflowConsumer, deadLetterConsumer, runtime.supervised(httpWorker), runtime.makePruner(),
                runtime.supervised(HistoryFeedLoop(feed: feed, logger: logger)),
            ]
                + runtime.keySetServices(for: settings.accessTokens))
    }
}

/// What the orchestrator does with each event type it consumes.
struct EventHandlers: Sendable {
    let engine: WorkflowEngine
    let submissions: Submissions
    let tokens: TaskTokens
    /// The approval service's receipt keys: when known, a decision counts only with its receipt.
    let receiptKeys: JWKSet?

    var submitted: EventHandler {
        { event, transaction in
            let submission = try event.decode(WorkflowSubmitted.self)
            let outcome: WorkflowEngine.SubmitOutcome
            do {
                outcome = try await submissions.submit(submission, in: transaction)
            } catch let invalid as Submissions.Invalid {
                throw PermanentFailure(invalid.description)
            } catch let refused as GateApplication.Refused {
                throw PermanentFailure("refused: \(refused.description)")
            }
            if case .conflict(let id) = outcome {
                throw PermanentFailure("idempotency_key \(submission.idempotencyKey) was already used with a different body by workflow \(id)")
            }
        }
    }

    var control: EventHandler {
        { event, transaction in
            let request = try event.decode(WorkflowControlRequested.self)
            try await onWorkflow(request.workflowId, in: transaction) { session in
                _ = try await engine.control(request.action, by: "agent:\(request.requestedBy)", reason: request.reason, session: session)
            }
        }
    }

    var decided: EventHandler {
        { event, transaction in
            let decision = try event.decode(ApprovalDecided.self)
            if let receiptKeys { try Self.checkReceipt(of: decision, keys: receiptKeys) }
            try await onWorkflow(decision.workflowId, in: transaction) { try await engine.applyDecision(decision, session: $0) }
        }
    }

    var expired: EventHandler {
        { event, transaction in
            let expiry = try event.decode(ApprovalExpired.self)
            try await onWorkflow(expiry.workflowId, in: transaction) { try await engine.applyExpiry(expiry, session: $0) }
        }
    }

    var taskResult: EventHandler {
        { event, transaction in
            let result = try event.decode(TaskResult.self)
            // Authorized before the workflow is even read: a forged answer writes nothing.
            guard tokens.isValid(result) else {
                throw PermanentFailure("task result refused: the token is not the one of attempt \(result.attempt) of step \(result.step)")
            }
            try await onWorkflow(result.workflowId, in: transaction) { try await engine.applyTaskResult(result, actor: "agent:\(result.worker)", session: $0) }
        }
    }

    var timerFired: EventHandler {
        { event, transaction in
            let fired = try event.decode(TimerFired.self)
            guard let timer = TaskTimer(payload: fired.payload) else { throw PermanentFailure("timer \(fired.key) is not a task timer") }
            try await onWorkflow(fired.workflowId, in: transaction) { try await engine.applyTimer(timer, session: $0) }
        }
    }

    /// A decision is the approval service's only when its receipt verifies under that
    /// service's keys and names exactly this decision; anything else is refused (dead letter).
    static func checkReceipt(of decision: ApprovalDecided, keys: JWKSet) throws {
        guard let receipt = decision.receipt else { throw PermanentFailure("decision refused: it carries no receipt") }
        let claims: DecisionReceipt.Claims
        do {
            claims = try DecisionReceipt.verify(receipt, keys: keys)
        } catch {
            throw PermanentFailure("decision refused: its receipt does not verify (\(error.description))")
        }
        guard claims.approvalId.lowercased() == decision.approvalId.lowercased(), claims.workflowId.lowercased() == decision.workflowId.lowercased(),
            claims.step == decision.step,
            claims.outcome == decision.decision, claims.decidedBy == decision.approver, claims.channel == decision.channel
        else { throw PermanentFailure("decision refused: its receipt is for another decision") }
    }

    private func onWorkflow(_ idText: String, in transaction: Transaction, _ body: (WorkflowSession) async throws -> Void) async throws {
        guard let id = WorkflowID(idText), try await engine.with(workflow: id, in: transaction, body) != nil else {
            throw PermanentFailure("no workflow \(idText)")
        }
    }
}
