import Contracts
import Foundation
import Hummingbird
import Kafka
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// The parts every service is built from, created in dependency order: Postgres, the Kafka
/// producer, the outbox relay; then the service adds its consumers, routes and loops, and
/// `makeApplication` puts the HTTP server last so that it stops first.
public struct ServiceRuntime: Sendable {
    public let configuration: ServiceConfiguration
    public let database: Database
    public let producer: KafkaProducer
    public let relay: OutboxRelay
    public let logger: Logger
    /// Every outbound HTTP call goes through it (`HITL_EGRESS_ALLOW`).
    public let egress: EgressClient
    /// Opens once migrations are applied; loops that touch the schema wait for it.
    public let ready = ReadyGate()
    /// Restarts a supervised loop that stalls while work waits; readiness names such loops.
    public let watchdog = LoopWatchdog()
    let migrations: [Migration]
    let metrics: PrometheusCollectorRegistry

    public init(configuration: ServiceConfiguration, migrations: [Migration], metrics: PrometheusCollectorRegistry, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.migrations = Migration.backbone + migrations
        database = Database(configuration: configuration.database, source: configuration.service, logger: logger)
        producer = try KafkaProducer(configuration: Self.kafkaConfiguration(configuration), logger: logger)
        relay = OutboxRelay(database: database, producer: producer, logger: logger)
        egress = EgressClient(policy: configuration.egress)
    }

    /// The Kafka client settings of this service.
    public var kafkaConfiguration: KafkaConfiguration { Self.kafkaConfiguration(configuration) }

    /// The Kafka client settings of this service's consumers.
    public var kafkaConsumerConfiguration: KafkaConfiguration {
        var kafka = kafkaConfiguration
        kafka.properties["fetch.wait.max.ms"] = "\(configuration.kafkaFetchWaitMilliseconds)"
        return kafka
    }

    static func kafkaConfiguration(_ configuration: ServiceConfiguration) -> KafkaConfiguration {
        KafkaConfiguration(
            bootstrapServers: configuration.kafkaBootstrapServers,
            properties: configuration.kafkaSecurity.merging(["client.id": "hitl-\(configuration.service)"]) { $1 })
    }

    /// A consumer of `topics` in the service's group, applying `handlers`.
    public func makeConsumer(topics: [Topic], handlers: [EventType: EventHandler], groupSuffix: String = "") throws -> some Service {
        let consumer = try EventConsumer(
            service: configuration.service, kafka: kafkaConsumerConfiguration,
            groupID: configuration.consumerGroup + groupSuffix, topics: topics, database: database,
            handlers: handlers,
            dependenciesReachable: { [database, producer] in
                guard await database.isReachable() else { return false }
                return await producer.isBrokerReachable()
            }, logger: logger)
        return supervised(consumer)
    }

    /// The pruner of the service's inbox and of its own finished rows (`rules`).
    public func makePruner(rules: [Pruner.Rule] = []) -> some Service {
        supervised(Pruner(database: database, rules: rules, retentionDays: configuration.retentionDays, logger: logger))
    }

    /// What keeps `tokens`' identity provider's key set current, when it comes from a URL.
    public func keySetServices(for tokens: AccessTokens) -> [any Service] {
        tokens.keySetRefresher(egress: egress, logger: logger).map { [supervised($0)] } ?? []
    }

    /// `loop` as a service: started once migrations are applied, restarted by the watchdog
    /// when it stalls while work waits, and named by readiness meanwhile.
    public func supervised(_ loop: some SupervisedLoop) -> some Service {
        GatedService(gate: ready, service: SupervisedService(loop: loop, watchdog: watchdog, logger: logger))
    }

    /// A router with `/health/live`, `/health/ready` and `/metrics` already in place.
    public func makeRouter() -> Router<ServiceRequestContext> {
        let router = Router(context: ServiceRequestContext.self)
        // Requests by route pattern, method and status, with their durations, as
        // Hummingbird counts them (`hb_requests`, `http_server_request_duration`).
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: RequestLoggingMiddleware())
        router.add(middleware: UnstorableInputMiddleware())
        router.get("/health/live") { _, _ in
            try JSONResponse.make(["status": "live"])
        }
        let outboxAge = Gauge(label: "hitl_outbox_oldest_age_seconds", dimensions: [("schema", database.schema)])
        let maxOutboxAge = Double(configuration.readyOutboxAgeSeconds)
        router.get("/health/ready") { [producer, ready, relay, watchdog] _, _ in
            var problems: [String] = []
            if !ready.isOpen { problems.append("migrations not applied") }
            // Within two seconds: a pool waiting for a server that is gone must not hold the probe.
            let age = await Deadline.value(within: .seconds(2)) { try await relay.oldestAge() }
            switch age {
            case .some(.success(let age)):
                outboxAge.record(age)
                // A relay that stopped publishing while rows wait: the service cannot do its work.
                if ready.isOpen, age > maxOutboxAge { problems.append("outbox: the oldest row waits for \(Int(age)) s") }
            default:
                problems.append("postgres unreachable")
            }
            if await !producer.isBrokerReachable() { problems.append("kafka unreachable") }
            let stalled = await watchdog.stalledLoops()
            if !stalled.isEmpty { problems.append("stalled: \(stalled.joined(separator: ", "))") }
            guard problems.isEmpty else {
                throw APIError(.serviceUnavailable, "not_ready", problems.joined(separator: "; "))
            }
            return try JSONResponse.make(["status": "ready"])
        }
        for document in ["openapi.yaml", "asyncapi.yaml"] {
            router.get("/\(document)") { _, _ in
                guard let bytes = APIDocuments.bytes(of: document) else {
                    throw APIError.notFound("\(document) is not installed beside this executable")
                }
                return Response(
                    status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
        router.get("/metrics") { [metrics, relay, ready] _, _ in
            if ready.isOpen, let age = try? await relay.oldestAge() { outboxAge.record(age) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
        return router
    }

    /// The application: backbone services, then `services` (gated on migrations), then the
    /// HTTP server. Migrations run before the server starts.
    public func makeApplication(router: Router<ServiceRequestContext>, services: [any Service]) -> some ApplicationProtocol {
        var app = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.httpHost, port: configuration.httpPort),
                serverName: "hitl-\(configuration.service)"),
            logger: logger)
        app.addServices(database, producer, supervised(RelayLoop(relay: relay, stallAfter: .seconds(configuration.readyOutboxAgeSeconds))))
        app.addServices(services)
        app.beforeServerStarts { [database, migrations, ready, logger] in
            let applied = try await MigrationRunner(database: database, migrations: migrations).apply()
            logger.info("Migrations applied", metadata: ["migrations.applied": "\(applied)"])
            ready.open()
        }
        return app
    }
}

/// Runs a service once the gate is open; ends without running it when the service group
/// is cancelled (a failed migration) or shuts down (a SIGTERM) first.
public struct GatedService<Wrapped: Service>: Service {
    let gate: ReadyGate
    let service: Wrapped

    public init(gate: ReadyGate, service: Wrapped) {
        self.gate = gate
        self.service = service
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await gate.wait() }
        } catch is CancellationError {
            return
        }
        try await service.run()
    }
}

/// Bootstraps Prometheus as the metrics backend, once, from `@main`.
public enum MetricsBootstrap {
    public static func prometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}

/// Logs each request's method, path, status and duration at debug level, and a request that
/// failed with an unexpected error (Hummingbird answers 500 and logs it only at debug) at
/// error level, with the error. Hummingbird's `LogRequestsMiddleware` is not used: it logs
/// the path as sent, and a signed link carries its credential in the path, which is logged
/// here without it.
struct RequestLoggingMiddleware: RouterMiddleware {
    typealias Context = ServiceRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, status: response.status.code, started: started, logger: context.logger)
            return response
        } catch let error as any HTTPResponseError {
            record(request, status: error.status.code, started: started, logger: context.logger)
            throw error
        } catch {
            context.logger.error(
                "HTTP request failed",
                metadata: [
                    "http.method": "\(request.method.rawValue)", "http.path": "\(Self.redacted(request.uri.path))",
                    LoggingKeys.error: "\(ErrorText.describe(error))",
                ])
            record(request, status: 500, started: started, logger: context.logger)
            throw error
        }
    }

    private func record(_ request: Request, status: Int, started: ContinuousClock.Instant, logger: Logger) {
        let method = request.method.rawValue
        logger.debug(
            "HTTP request",
            metadata: [
                "http.method": "\(method)", "http.path": "\(Self.redacted(request.uri.path))", "http.status": "\(status)",
                "http.duration": "\(ContinuousClock.now - started)",
            ])
    }

    /// Paths whose last segment is a credential (signed links): logged without it.
    static let credentialPrefixes = ["/v1/links/", "/ui/links/", "/ui/sign-in/"]

    static func redacted(_ path: String) -> String {
        guard let prefix = credentialPrefixes.first(where: { path.hasPrefix($0) }) else { return path }
        return prefix + "<redacted>"
    }
}

/// The checked-in API descriptions (`Resources/openapi.yaml`, `Resources/asyncapi.yaml`),
/// served by every service.
public enum APIDocuments {
    /// Read once, at first use.
    private static let loaded: [String: [UInt8]] = {
        var documents: [String: [UInt8]] = [:]
        for name in ["openapi.yaml", "asyncapi.yaml"] {
            if let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources"), let data = try? Data(contentsOf: url) {
                documents[name] = Array(data)
            }
        }
        return documents
    }()

    public static func bytes(of name: String) -> [UInt8]? {
        loaded[name]
    }
}
