import Contracts
import Crypto
import Foundation
import Kafka
import Logging
import PostgresNIO
import ServiceKit

/// The whole system on one machine: a Postgres database provisioned with one role and
/// schema per service, librdkafka's mock cluster with every topic, and the four service
/// executables as child processes. `hitl dev` and the end-to-end tests both use it.
public final class LocalStack: @unchecked Sendable {
    // Set up in `start`, read-only afterwards, except the processes' own state.
    public struct Options: Sendable {
        /// Where logs (and a private Postgres, when one is started) live.
        public var directory: URL
        /// An administrator URL of a running server; nil starts a private one in `directory`.
        public var adminURL: String?
        /// The database to create and use.
        public var database = "hitl"
        public var webhookURL: String?
        public var webhookSecret = "hitl-dev-webhook-secret"
        /// The HS256 key of the APIs' bearer tokens (`AccessTokens(secret:)` mints them).
        public var jwtSecret = "hitl-dev-jwt-secret-" + UUID().uuidString
        /// The keys of the signed decision links (`HITL_DECISION_KEYS`), newest first.
        public var decisionKeys = "dev1:hitl-dev-decision-key-" + UUID().uuidString
        /// The approver directory (`HITL_APPROVAL_GROUPS`) when the environment names none: the
        /// people of the demo, so that agents may name them.
        public var approverGroups = "managers=manager@bank.example,boss@bank.example;treasury=cfo@bank.example;bench=approver@hitl.example"
        /// The keys that sign decision receipts (`HITL_RECEIPT_KEYS`), newest first.
        public var receiptKeys = "dev1:" + P256.Signing.PrivateKey().rawRepresentation.base64EncodedString()
        /// The key that signs http task calls (`HITL_TASK_SIGNING_SECRET`); callbacks are
        /// signed with `webhookSecret`, as the notifier's webhook is.
        public var taskSigningSecret = "hitl-dev-task-signing-secret"
        /// The key of the per-attempt task tokens (`HITL_TASK_TOKEN_KEY`).
        public var taskTokenKey = "hitl-dev-task-token-key-" + UUID().uuidString
        /// The key the approval service seals the approvers' links with for the notifier.
        public var notificationKey = "hitl-dev-notification-key-" + UUID().uuidString
        public var logLevel = "info"
        /// Where the services' outbound calls may go (`HITL_EGRESS_ALLOW`), unless `environment`
        /// says: the stand-ins on this machine's loopback.
        public var egressAllow = "127.0.0.1, ::1"
        /// Extra environment for every service.
        public var environment: [String: String] = [:]
        /// The password of every service role.
        public var rolePassword = "hitl-dev-password"
        public var partitions = Topic.defaultPartitionCount
        /// How many processes of each service to run (a service left out is not started);
        /// the second replica of `timeout` is named `timeout-2`, and so on.
        public var replicas: [String: Int] = Dictionary(uniqueKeysWithValues: LocalStack.executables.map { ($0.0, 1) })

        public init(directory: URL) {
            self.directory = directory
        }
    }

    public let options: Options
    public private(set) var postgres: LocalPostgres?
    public private(set) var kafka: KafkaMockCluster?
    public private(set) var services: [String: ServiceProcess] = [:]
    public private(set) var databaseURL = ""

    public init(options: Options) {
        self.options = options
    }

    public var kafkaBootstrap: String { kafka?.bootstrapServers ?? "" }
    /// Mints bearer tokens the services accept.
    public var tokens: AccessTokens { AccessTokens(secret: options.jwtSecret) }
    public func url(of service: String) -> String { services[service]?.baseURL ?? "" }
    public subscript(service: String) -> ServiceProcess { services[service]! }

    /// Starts Postgres (if needed), the mock cluster and the four services, and waits
    /// until every service is ready.
    public func start() async throws {
        try FileManager.default.createDirectory(at: options.directory, withIntermediateDirectories: true)
        var adminURL = options.adminURL
        if adminURL == nil {
            let server = try LocalPostgres(directory: options.directory.appendingPathComponent("postgres"))
            postgres = server
            adminURL = server.url()
        }
        let admin = try DatabaseConfiguration(url: adminURL!, schema: "public")
        try await StackDatabase.create(options.database, admin: admin, rolePassword: options.rolePassword)
        databaseURL = "postgres://\(admin.username)@\(admin.host):\(admin.port)/\(options.database)"

        let cluster = try KafkaMockCluster(brokers: 1)
        for topic in Topic.all {
            try cluster.createTopic(topic.rawValue, partitions: options.partitions)
        }
        kafka = cluster

        let stackID = UUID().uuidString.prefix(8).lowercased()
        let instances = Self.executables.flatMap { service, executable in
            (0..<(options.replicas[service] ?? 0)).map { (service, $0 == 0 ? service : "\(service)-\($0 + 1)", executable) }
        }
        for (service, name, executable) in instances {
            let port = FreePort.find()
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HITL_") }
            environment.merge(options.environment) { $1 }
            environment["HITL_HTTP_PORT"] = "\(port)"
            environment["HITL_DATABASE_URL"] =
                "postgres://\(Provisioning.role(of: service)):\(options.rolePassword)@\(admin.host):\(admin.port)/\(options.database)"
            environment["KAFKA_BOOTSTRAP_SERVERS"] = cluster.bootstrapServers
            environment["HITL_CONSUMER_GROUP"] = "hitl-\(service)-\(stackID)"
            environment["HITL_LOG_LEVEL"] = options.logLevel
            environment["HITL_JWT_SECRET"] = options.jwtSecret
            environment["HITL_DECISION_KEYS"] = options.decisionKeys
            environment["HITL_RECEIPT_KEYS"] = options.receiptKeys
            if environment["HITL_APPROVAL_GROUPS"] == nil { environment["HITL_APPROVAL_GROUPS"] = options.approverGroups }
            if environment["HITL_EGRESS_ALLOW"] == nil { environment["HITL_EGRESS_ALLOW"] = options.egressAllow }
            if service == "approval" || service == "notifier" { environment["HITL_NOTIFICATION_KEY"] = options.notificationKey }
            // Children end with the stack's process, even when it is killed.
            environment["HITL_EXIT_WITH_PARENT"] = "1"
            if service == "orchestrator" {
                environment["HITL_TASK_SIGNING_SECRET"] = options.taskSigningSecret
                environment["HITL_CALLBACK_SIGNING_SECRET"] = options.webhookSecret
                environment["HITL_RECEIPT_JWKS"] = Self.publicKeys(of: options.receiptKeys)
                environment["HITL_TASK_TOKEN_KEY"] = options.taskTokenKey
            }
            if service == "notifier", let webhook = options.webhookURL {
                environment["HITL_WEBHOOK_URL"] = webhook
                environment["HITL_WEBHOOK_SECRET"] = options.webhookSecret
                // The local sink stands for an approver's own inbox: it gets their links.
                environment["HITL_WEBHOOK_LINKS"] = "1"
            }
            services[name] = ServiceProcess(
                name: name, executable: Shell.packageExecutable(executable), environment: environment,
                logFile: options.directory.appendingPathComponent("\(name).log"), baseURL: "http://127.0.0.1:\(port)")
        }
        for process in services.values { try process.start() }
        for process in services.values { try await process.waitUntilReady() }
    }

    /// The key set that verifies receipts signed with `HITL_RECEIPT_KEYS`-style `keys`.
    static func publicKeys(of keys: String) -> String {
        let set = JWKSet(
            keys: keys.split(separator: ",").compactMap { pair in
                let parts = pair.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, let raw = Data(base64Encoded: String(parts[1])), let key = try? P256.Signing.PrivateKey(rawRepresentation: raw) else {
                    return nil
                }
                return JWKSet.Key(kid: String(parts[0]), publicKey: key.publicKey)
            })
        return (try? String(decoding: WireCoding.encode(set), as: UTF8.self)) ?? ""
    }

    /// Stops the services gracefully, then the mock cluster and the private Postgres.
    public func stop() async {
        for process in services.values { await process.stop() }
        kafka = nil
        postgres?.stop()
    }

    /// The service names and their executables.
    public static let executables: [(String, String)] = [
        ("orchestrator", "hitl-orchestrator"), ("approval", "hitl-approval"),
        ("notifier", "hitl-notifier"), ("timeout", "hitl-timeout"),
    ]
}

/// Creates provisioned databases on a server.
public enum StackDatabase {
    /// Creates `name` (when missing) and provisions the service roles and schemas in it.
    public static func create(_ name: String, admin: DatabaseConfiguration, rolePassword: String) async throws {
        try await create(name, admin: admin, rolePasswords: Dictionary(uniqueKeysWithValues: Provisioning.services.map { ($0, rolePassword) }))
    }

    /// Creates `name` (when missing) and provisions each service role with its own password.
    public static func create(_ name: String, admin: DatabaseConfiguration, rolePasswords: [String: String]) async throws {
        let logger = Logger(label: "hitl.stack")
        try await withClient(admin) { client in
            var exists = false
            for try await _ in try await client.query("SELECT 1 FROM pg_database WHERE datname = \(name)") { exists = true }
            if !exists {
                try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(quoted(name))"), logger: logger)
            }
        }
        var copy = admin
        copy.database = name
        let target = copy
        try await roleLock.run {
            try await withClient(target) { client in
                try await Provisioning.run(on: client, passwords: rolePasswords, logger: logger)
            }
        }
    }

    /// Runs `body` with a client that runs for its duration.
    public static func withClient<T: Sendable>(_ configuration: DatabaseConfiguration, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        var clientConfiguration = configuration.clientConfiguration
        clientConfiguration.options.additionalStartupParameters = []
        let client = PostgresClient(configuration: clientConfiguration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    private static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Roles are cluster-wide: provisioning two databases at once would race on them.
    private static let roleLock = AsyncLock()
}

/// Runs one body at a time.
actor AsyncLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        while busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            busy = false
            if !waiters.isEmpty { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}
