import Foundation

/// The settings every service shares, read once at start-up.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HITL_HTTP_HOST` | `127.0.0.1` | address the HTTP API listens on |
/// | `HITL_HTTP_PORT` | per service | port of the HTTP API |
/// | `HITL_DATABASE_URL` | — (required) | `postgres://user:password@host:port/database` of the service's own role |
/// | `HITL_DATABASE_SCHEMA` | the service name | the schema the service owns |
/// | `HITL_DATABASE_POOL_SIZE` | `16` | Postgres connections at most |
/// | `KAFKA_BOOTSTRAP_SERVERS` | `127.0.0.1:9092` | Kafka brokers |
/// | `HITL_CONSUMER_GROUP` | `hitl-<service>` | consumer group of the service's replicas |
/// | `HITL_PUBLIC_URL` | `http://<host>:<port>` | how people and other services reach this API |
/// | `HITL_LOG_LEVEL` | `info` | `trace` … `critical` |
/// | `HITL_SHUTDOWN_TIMEOUT_SECONDS` | `10` | after SIGTERM or SIGINT, the process ends within this long whatever hangs (exit code 1 when it had to be forced); unfinished work stays for the next start |
/// | `HITL_READY_OUTBOX_AGE_SECONDS` | `60` | `/health/ready` fails when the oldest outbox row waits longer; the relay is restarted when it stalls that long with rows waiting |
/// | `HITL_EGRESS_ALLOW` | empty: no outbound call | where outbound calls may go: host names, `.suffixes`, addresses and CIDR ranges (see `EgressPolicy`) |
/// | `HITL_RETENTION_DAYS` | `30` | how long finished bookkeeping (inbox ids, fired timers, deliveries) is kept; see `Pruner` |
public struct ServiceConfiguration: Sendable {
    public var service: String
    public var httpHost: String
    public var httpPort: Int
    public var database: DatabaseConfiguration
    public var kafkaBootstrapServers: String
    public var consumerGroup: String
    public var publicURL: String
    public var logLevel: String
    public var retentionDays: Int
    public var shutdownTimeoutSeconds: Int
    public var readyOutboxAgeSeconds: Int
    public var egress: EgressPolicy

    public init(service: String, defaultPort: Int, environment env: EnvironmentReader) throws {
        self.service = service
        httpHost = try env.string("HITL_HTTP_HOST", default: "127.0.0.1")
        httpPort = try env.int("HITL_HTTP_PORT", default: defaultPort, in: 0...65535)
        database = try DatabaseConfiguration(
            url: try env.string("HITL_DATABASE_URL"), variable: "HITL_DATABASE_URL",
            schema: try env.string("HITL_DATABASE_SCHEMA", default: service),
            poolSize: try env.int("HITL_DATABASE_POOL_SIZE", default: 16, in: 1...500))
        database.idleTransactionTimeoutSeconds = try env.int("HITL_DATABASE_IDLE_TRANSACTION_SECONDS", default: 60, in: 1...86_400)
        kafkaBootstrapServers = try env.string("KAFKA_BOOTSTRAP_SERVERS", default: "127.0.0.1:9092")
        consumerGroup = try env.string("HITL_CONSUMER_GROUP", default: "hitl-\(service)")
        publicURL = try env.string("HITL_PUBLIC_URL", default: "http://\(httpHost):\(httpPort)")
        logLevel = try env.string("HITL_LOG_LEVEL", default: "info")
        retentionDays = try env.int("HITL_RETENTION_DAYS", default: 30, in: 1...3650)
        shutdownTimeoutSeconds = try env.int("HITL_SHUTDOWN_TIMEOUT_SECONDS", default: 10, in: 1...3600)
        readyOutboxAgeSeconds = try env.int("HITL_READY_OUTBOX_AGE_SECONDS", default: 60, in: 2...86_400)
        egress = try EgressPolicy(parsing: try env.string("HITL_EGRESS_ALLOW", default: ""))
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ConfigurationError(variable: "HITL_LOG_LEVEL", reason: "must be one of trace, debug, info, notice, warning, error, critical")
        }
    }
}
