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

    public static func buildApplication(configuration: ServiceConfiguration, settings: NotifierSettings, metrics: PrometheusCollectorRegistry, logger: Logger)
        throws -> some ApplicationProtocol
    {
        let runtime = try ServiceRuntime(configuration: configuration, migrations: NotifierMigrations.all, metrics: metrics, logger: logger)
        var channels: [String: any NotificationChannel] = [:]
        if let url = settings.webhookURL, let secret = settings.webhookSecret {
            channels["webhook"] = WebhookChannel(url: url, secret: secret, includeLinks: settings.webhookLinks, egress: runtime.egress)
        }
        if let smtp = settings.smtp, let from = settings.mailFrom {
            channels["email"] = EmailChannel(client: SMTPClient(settings: smtp, egress: runtime.egress), from: from)
        }
        if let slack = settings.slack {
            channels["slack"] = SlackChannel(
                client: SlackClient(settings: slack, http: runtime.egress), users: slack.users, database: runtime.database, logger: logger)
        }
        if channels.isEmpty { channels["log"] = LogChannel(logger: logger) }
        let wakeup = Wakeup()
        let handOff = DeliveryHandOff(lease: .seconds(120))
        let enabled = channels
        let consumer = try runtime.makeConsumer(
            topics: [.notifications, .timerFirings(for: .notifier)],
            handlers: [
                .notificationRequested: { event, transaction in
                    try await DeliveryWorker.enqueue(
                        event.decode(NotificationRequested.self), channels: enabled, handOff: handOff, in: transaction, wakeup: wakeup)
                },
                .notificationRetryRequested: { event, transaction in
                    try await DeliveryWorker.retryRequested(event.decode(NotificationRetryRequested.self), in: transaction, handOff: handOff, wakeup: wakeup)
                },
                .timerFired: { event, transaction in
                    try await DeliveryWorker.retryDue(event.decode(TimerFired.self), in: transaction, handOff: handOff, wakeup: wakeup)
                },
            ])
        let worker = runtime.supervised(DeliveryWorker(runtime: runtime, settings: settings, channels: channels, wakeup: wakeup, handOff: handOff))
        let pruner = runtime.makePruner(rules: [
            .init(table: "delivery_attempts", timeColumn: "at", finished: "delivery_id IN (SELECT id FROM deliveries WHERE status IN ('delivered', 'failed'))"),
            .init(
                table: "deliveries", timeColumn: "closed_at",
                finished: "status IN ('delivered', 'failed') AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = deliveries.id)"),
            // A message is kept while its approval is open: it is replaced once it closes.
            .init(table: "slack_messages", timeColumn: "posted_at", finished: "approval_id IN (SELECT approval_id FROM slack_closed)"),
            .init(table: "slack_closed", timeColumn: "closed_at"),
        ])
        return runtime.makeApplication(router: runtime.makeRouter(), services: [consumer, worker, pruner])
    }
}
