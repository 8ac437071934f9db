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
/// | `KAFKA_SECURITY_PROTOCOL` | `plaintext` | `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl` |
/// | `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` | — | SASL (`SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`): one principal per service, for the broker's ACLs |
/// | `KAFKA_SSL_CA_LOCATION`, `KAFKA_SSL_CERTIFICATE_LOCATION`, `KAFKA_SSL_KEY_LOCATION`, `KAFKA_SSL_KEY_PASSWORD` | — | TLS: the CA that signed the brokers' certificates, and a client certificate |
/// | `KAFKA_FETCH_WAIT_MS` | `10` | how long a consumer's fetch waits at the broker for records (librdkafka's `fetch.wait.max.ms`). Apache Kafka answers a waiting fetch as soon as records arrive, so there a long wait (compose sets 500) costs no latency and saves the idle stack its polling; librdkafka's mock cluster (`hitl dev`) holds the fetch the whole time, so it needs a short one |
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
    /// librdkafka properties from the `KAFKA_*` security settings.
    public var kafkaSecurity: [String: String]
    /// `fetch.wait.max.ms` of the service's consumers.
    public var kafkaFetchWaitMilliseconds: Int
    public var consumerGroup: String
    public var publicURL: String
    public var logLevel: String
    public var retentionDays: Int
    public var shutdownTimeoutSeconds: Int
    public var readyOutboxAgeSeconds: Int
    public var egress: EgressPolicy

    public init(service: String, defaultPort: Int, environment env: EnvironmentReader) throws {
        try Self.refuseLaptopDefaults(env)
        self.service = service
        httpHost = try env.string("HITL_HTTP_HOST", default: "127.0.0.1")
        httpPort = try env.int("HITL_HTTP_PORT", default: defaultPort, in: 0...65535)
        database = try DatabaseConfiguration(
            url: try env.string("HITL_DATABASE_URL"), variable: "HITL_DATABASE_URL",
            schema: try env.string("HITL_DATABASE_SCHEMA", default: service),
            poolSize: try env.int("HITL_DATABASE_POOL_SIZE", default: 16, in: 1...500))
        database.idleTransactionTimeoutSeconds = try env.int("HITL_DATABASE_IDLE_TRANSACTION_SECONDS", default: 60, in: 1...86_400)
        kafkaBootstrapServers = try env.string("KAFKA_BOOTSTRAP_SERVERS", default: "127.0.0.1:9092")
        kafkaSecurity = try Self.kafkaSecurity(env)
        kafkaFetchWaitMilliseconds = try env.int("KAFKA_FETCH_WAIT_MS", default: 10, in: 1...5000)
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

    /// docker-compose.yml's defaults all say "laptop-only": a deployment that forgot to set
    /// its own secrets must not start with keys everyone can read. `HITL_DEV=1` allows them.
    static func refuseLaptopDefaults(_ env: EnvironmentReader) throws {
        guard env.optionalString("HITL_DEV") != "1" else { return }
        if let variable = env.values.keys.sorted().first(where: { env.values[$0]?.contains("laptop-only") == true }) {
            throw ConfigurationError(variable: variable, reason: "is docker-compose.yml's laptop-only default; set your own (or HITL_DEV=1 on a laptop)")
        }
    }

    /// The `KAFKA_*` security settings as librdkafka properties, checked here so that a
    /// mistake is named by its variable (and a password is never echoed).
    static func kafkaSecurity(_ env: EnvironmentReader) throws -> [String: String] {
        var properties: [String: String] = [:]
        let proto = try env.string("KAFKA_SECURITY_PROTOCOL", default: "plaintext").lowercased()
        guard ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(proto) else {
            throw ConfigurationError(variable: "KAFKA_SECURITY_PROTOCOL", reason: "must be plaintext, ssl, sasl_plaintext or sasl_ssl")
        }
        properties["security.protocol"] = proto
        if proto.hasPrefix("sasl") {
            let mechanism = try env.string("KAFKA_SASL_MECHANISM", default: "SCRAM-SHA-512").uppercased()
            guard ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"].contains(mechanism) else {
                throw ConfigurationError(variable: "KAFKA_SASL_MECHANISM", reason: "must be SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
            }
            properties["sasl.mechanism"] = mechanism
            properties["sasl.username"] = try env.string("KAFKA_SASL_USERNAME")
            properties["sasl.password"] = try env.string("KAFKA_SASL_PASSWORD")
        }
        for (variable, property) in [
            ("KAFKA_SSL_CA_LOCATION", "ssl.ca.location"), ("KAFKA_SSL_CERTIFICATE_LOCATION", "ssl.certificate.location"),
            ("KAFKA_SSL_KEY_LOCATION", "ssl.key.location"), ("KAFKA_SSL_KEY_PASSWORD", "ssl.key.password"),
        ] {
            guard let value = env.optionalString(variable) else { continue }
            guard proto.hasSuffix("ssl") else { throw ConfigurationError(variable: variable, reason: "needs KAFKA_SECURITY_PROTOCOL ssl or sasl_ssl") }
            if property.hasSuffix("location"), !FileManager.default.isReadableFile(atPath: value) {
                throw ConfigurationError(variable: variable, reason: "is not a readable file")
            }
            properties[property] = value
        }
        return properties
    }
}
