import AsyncHTTPClient
import Contracts
import Hummingbird
import Logging
import Prometheus
import ServiceKit
import Slack

/// The notifier: turns `hitl.notifications` into durable deliveries on the configured
/// channels and reports each outcome on `hitl.notification.outcomes`.
public enum Notifier {
    public static let name = "notifier"
    public static let defaultPort = 8082

    public static func buildApplication(configuration: ServiceConfiguration, settings: NotifierSettings, metrics: PrometheusCollectorRegistry, logger: Logger) throws -> some ApplicationProtocol {
        let runtime = try ServiceRuntime(configuration: configuration, migrations: NotifierMigrations.all, metrics: metrics, logger: logger)
        var channels: [String: any NotificationChannel] = [:]
        if let url = settings.webhookURL, let secret = settings.webhookSecret {
            channels["webhook"] = WebhookChannel(url: url, secret: secret, client: HTTPClient.shared)
        }
        if let smtp = settings.smtp, let from = settings.mailFrom {
            channels["email"] = EmailChannel(client: SMTPClient(settings: smtp), from: from)
        }
        if let slack = settings.slack {
            channels["slack"] = SlackChannel(client: SlackClient(settings: slack), users: slack.users, database: runtime.database, logger: logger)
        }
        if channels.isEmpty { channels["log"] = LogChannel(logger: logger) }
        let wakeup = Wakeup()
        let enabled = channels
        let consumer = try runtime.makeConsumer(
            topics: [.notifications, .timerFirings(for: .notifier)],
            handlers: [
                .notificationRequested: { context in
                    try await DeliveryWorker.enqueue(context.envelope.decode(NotificationRequested.self), channels: enabled, context: context, wakeup: wakeup)
                },
                .notificationRetryRequested: { context in
                    try await DeliveryWorker.retryRequested(context.envelope.decode(NotificationRetryRequested.self), context: context, wakeup: wakeup)
                },
                .timerFired: { context in
                    try await DeliveryWorker.retryDue(context.envelope.decode(TimerFired.self), context: context, wakeup: wakeup)
                },
            ])
        let worker = GatedService(gate: runtime.ready, service: DeliveryWorker(runtime: runtime, settings: settings, channels: channels, wakeup: wakeup))
        return runtime.makeApplication(router: runtime.makeRouter(), services: [consumer, worker])
    }
}
