import Contracts
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceKit

/// The timeout service's own settings.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HITL_JWT_SECRET` / `HITL_JWT_PUBLIC_KEY_FILE` | — (one required) | bearer tokens of its ops API (`/v1/ops/timers`, admin) |
public struct TimeoutSettings: Sendable {
    public var accessTokens: AccessTokens

    public init(environment env: EnvironmentReader) throws {
        accessTokens = try AccessTokens(environment: env)
    }
}

/// The timeout service: a general durable-timer service. It knows due times, owners and
/// payloads, not what an expiry means; each owner gets its firings on its own topic.
public enum Timeout {
    public static let name = "timeout"
    public static let defaultPort = 8083

    public static func buildApplication(
        configuration: ServiceConfiguration, settings: TimeoutSettings, metrics: PrometheusCollectorRegistry, logger: Logger
    ) throws -> some ApplicationProtocol {
        let runtime = try ServiceRuntime(configuration: configuration, migrations: TimerMigrations.all, metrics: metrics, logger: logger)
        let wakeup = Wakeup()
        let plan = FiringPlan()
        let store = TimerStore(wakeup: wakeup, plan: plan)
        let consumer = try runtime.makeConsumer(
            topics: [.timerRequests],
            handlers: [
                .timerScheduled: { event, transaction in try await store.schedule(event.decode(TimerScheduled.self), in: transaction) },
                .timerCancelled: { event, transaction in try await store.cancel(event.decode(TimerCancelled.self), in: transaction) },
            ])
        let firing = runtime.supervised(TimerFiringService(runtime: runtime, wakeup: wakeup, plan: plan))
        let pruner = runtime.makePruner(rules: [.init(table: "timers", timeColumn: "closed_at", finished: "status <> 'scheduled'")])
        let router = runtime.makeRouter()
        router.add(middleware: AuthenticationMiddleware(tokens: settings.accessTokens))
        // For `hitl doctor`: the timers still to fire, by owner.
        router.get("/v1/ops/timers") { request, context in
            _ = try context.require(.admin)
            let owner = request.uri.queryParameters["owner"].map(String.init)
            let rows = try await runtime.database.query(
                """
                SELECT owner, key, workflow_id, due_at FROM timers
                WHERE status = 'scheduled' AND (\(owner)::text IS NULL OR owner = \(owner)) ORDER BY due_at LIMIT 10000
                """)
            var items: [ScheduledTimer] = []
            for try await (owner, key, workflowID, due) in rows.decode((String, String, String, Date).self) {
                items.append(ScheduledTimer(owner: owner, key: key, workflowId: workflowID, dueAt: due))
            }
            return try JSONResponse.make(["items": items])
        }
        return runtime.makeApplication(router: router, services: [consumer, firing, pruner] + runtime.keySetServices(for: settings.accessTokens))
    }
}

/// A timer still to fire, as `/v1/ops/timers` lists it.
struct ScheduledTimer: Codable, Sendable {
    var owner: String
    var key: String
    var workflowId: String
    var dueAt: Date
}
