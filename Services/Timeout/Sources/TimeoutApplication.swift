import Contracts
import Hummingbird
import Logging
import Prometheus
import ServiceKit

/// The timeout service: a general durable-timer service. It knows due times, owners and
/// payloads, not what an expiry means; each owner gets its firings on its own topic.
public enum Timeout {
    public static let name = "timeout"
    public static let defaultPort = 8083

    public static func buildApplication(configuration: ServiceConfiguration, metrics: PrometheusCollectorRegistry, logger: Logger) throws -> some ApplicationProtocol {
        let runtime = try ServiceRuntime(configuration: configuration, migrations: TimerMigrations.all, metrics: metrics, logger: logger)
        let wakeup = Wakeup()
        let store = TimerStore(wakeup: wakeup)
        let consumer = try runtime.makeConsumer(
            topics: [.timerRequests],
            handlers: [
                .timerScheduled: { context in try await store.schedule(context.envelope.decode(TimerScheduled.self), context: context) },
                .timerCancelled: { context in try await store.cancel(context.envelope.decode(TimerCancelled.self), context: context) },
            ])
        let firing = GatedService(gate: runtime.ready, service: TimerFiringService(runtime: runtime, wakeup: wakeup))
        let pruner = runtime.makePruner(rules: [.init(table: "timers", timeColumn: "closed_at", finished: "status <> 'scheduled'")])
        return runtime.makeApplication(router: runtime.makeRouter(), services: [consumer, firing, pruner])
    }
}
