import Contracts
import Hummingbird
import Logging
import Prometheus
import ServiceKit

/// The orchestrator: owns workflows and their history. Takes submissions over HTTP and on
/// `hitl.workflow.requests`, asks for approvals, applies decisions and expiries, and keeps
/// the dead-letter index.
public enum Orchestrator {
    public static let name = "orchestrator"
    public static let defaultPort = 8080

    /// Builds the orchestrator from its configuration.
    public static func buildApplication(configuration: ServiceConfiguration, metrics: PrometheusCollectorRegistry, logger: Logger) throws -> some ApplicationProtocol {
        let runtime = try ServiceRuntime(configuration: configuration, migrations: OrchestratorMigrations.all, metrics: metrics, logger: logger)
        let engine = WorkflowEngine(outbox: runtime.outbox)
        let deadLetters = DeadLetterIndex(runtime: runtime)

        let workflowConsumer = try runtime.makeConsumer(
            topics: [.workflowRequests, .approvalDecisions],
            handlers: [
                .workflowSubmitted: { context in
                    let submission = try context.envelope.decode(WorkflowSubmitted.self)
                    if let problem = WorkflowValidation.problem(in: submission) { throw PermanentFailure(problem) }
                    let outcome = try await engine.submit(submission, actor: "agent:\(submission.requester)", cause: context.envelope, on: context.connection, logger: context.logger)
                    if case .conflict(let id) = outcome {
                        throw PermanentFailure("idempotency_key \(submission.idempotencyKey) was already used with a different body by workflow \(id)")
                    }
                },
                .approvalDecided: { context in
                    try await engine.applyDecision(context.envelope.decode(ApprovalDecided.self), cause: context.envelope, on: context.connection, logger: context.logger)
                },
                .approvalExpired: { context in
                    try await engine.applyExpiry(context.envelope.decode(ApprovalExpired.self), cause: context.envelope, on: context.connection, logger: context.logger)
                },
            ])
        let deadLetterConsumer = try runtime.makeConsumer(
            topics: [.deadLetter], handlers: [.deadLettered: deadLetters.index], groupSuffix: "-dead-letters")

        let router = runtime.makeRouter()
        WorkflowRoutes(runtime: runtime, engine: engine).register(on: router)
        deadLetters.register(on: router)
        return runtime.makeApplication(router: router, services: [workflowConsumer, deadLetterConsumer])
    }
}
