import Foundation
import HTTPTypes
import Kafka
import Logging
import ServiceKitTesting
import Testing

@testable import ServiceKit

@Suite struct SupportTests {
    @Test func signedLinksAreNotWrittenToTheLog() {
        #expect(RequestLoggingMiddleware.redacted("/ui/sign-in/dzF8ZGV2.7_M13q") == "/ui/sign-in/<redacted>")
        #expect(RequestLoggingMiddleware.redacted("/v1/links/abc.def") == "/v1/links/<redacted>")
        #expect(RequestLoggingMiddleware.redacted("/ui/links/abc.def") == "/ui/links/<redacted>")
        #expect(RequestLoggingMiddleware.redacted("/v1/approvals/1") == "/v1/approvals/1")
    }

    @Test func configurationErrorsNameTheVariable() throws {
        let env = EnvironmentReader(["HITL_HTTP_PORT": "eighty", "HITL_DATABASE_URL": "postgres://u:p@h:5432/db"])
        #expect(throws: ConfigurationError.self) { try ServiceConfiguration(service: "s", defaultPort: 1, environment: env) }
        do {
            _ = try ServiceConfiguration(service: "s", defaultPort: 1, environment: env)
        } catch let error as ConfigurationError {
            #expect(error.variable == "HITL_HTTP_PORT")
            #expect(!error.description.contains("eighty"))  // values are never echoed
        }
        do {
            _ = try ServiceConfiguration(service: "s", defaultPort: 1, environment: EnvironmentReader(["HITL_DATABASE_URL": "mysql://x"]))
            Issue.record("accepted a non-Postgres URL")
        } catch let error as ConfigurationError {
            #expect(error.variable == "HITL_DATABASE_URL")
            #expect(!error.description.contains("mysql://x"))  // the value may hold a secret
        }
        let good = try ServiceConfiguration(
            service: "approval", defaultPort: 8081, environment: EnvironmentReader(["HITL_DATABASE_URL": "postgres://u:p%40ss@db:6543/hitl"]))
        #expect(good.database.password == "p@ss" && good.database.port == 6543 && good.database.schema == "approval")
        #expect(good.consumerGroup == "hitl-approval")
        #expect(good.kafkaSecurity == ["security.protocol": "plaintext"])
    }

    @Test func composesLaptopDefaultsAreRefusedUnlessOnALaptop() throws {
        let env = ["HITL_DATABASE_URL": "postgres://u:p@h:5432/db", "HITL_JWT_SECRET": "laptop-only-jwt-secret-change-me-0123456789"]
        do {
            _ = try ServiceConfiguration(service: "s", defaultPort: 1, environment: EnvironmentReader(env))
            Issue.record("started with a laptop-only secret")
        } catch let error as ConfigurationError {
            #expect(error.variable == "HITL_JWT_SECRET" && !error.description.contains("change-me"), "\(error)")
        }
        _ = try ServiceConfiguration(service: "s", defaultPort: 1, environment: EnvironmentReader(env.merging(["HITL_DEV": "1"]) { $1 }))
    }

    @Test func eachServiceRoleGetsItsOwnPassword() {
        let statements = Provisioning.statements(passwords: ["orchestrator": "o-pass", "approval": "a'pass", "notifier": "n-pass", "timeout": "t-pass"])
        #expect(statements.contains("ALTER ROLE hitl_orchestrator PASSWORD 'o-pass'"))
        #expect(statements.contains("ALTER ROLE hitl_approval PASSWORD 'a''pass'"))
        #expect(statements.contains("ALTER ROLE hitl_timeout PASSWORD 't-pass'"))
    }

    @Test func kafkaSecuritySettingsReachTheClientAndAreCheckedByName() async throws {
        let base = ["HITL_DATABASE_URL": "postgres://u:p@h:5432/db"]
        let sasl = try ServiceConfiguration(
            service: "approval", defaultPort: 1,
            environment: EnvironmentReader(
                base.merging([
                    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "hitl-approval", "KAFKA_SASL_PASSWORD": "s3cret-value",
                ]) { $1 }))
        #expect(
            sasl.kafkaSecurity == [
                "security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "hitl-approval", "sasl.password": "s3cret-value",
            ])
        // librdkafka takes them (it is built with TLS and SASL): a producer is made, nothing is dialled yet.
        let producer = try KafkaProducer(
            configuration: KafkaConfiguration(bootstrapServers: "127.0.0.1:1", properties: sasl.kafkaSecurity), logger: Logger(label: "test"))
        await producer.shutdown()
        for (variable, value, reason) in [
            ("KAFKA_SECURITY_PROTOCOL", "tls", "must be plaintext"), ("KAFKA_SASL_MECHANISM", "GSSAPI", "must be SCRAM-SHA-512"),
            ("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem", "is not a readable file"),
        ] {
            var env = base.merging(["KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"]) { $1 }
            env[variable] = value
            do {
                _ = try ServiceConfiguration(service: "s", defaultPort: 1, environment: EnvironmentReader(env))
                Issue.record("accepted \(variable)=\(value)")
            } catch let error as ConfigurationError {
                #expect(error.variable == variable && error.reason.contains(reason) && !error.description.contains(value), "\(error)")
            }
        }
        #expect(throws: ConfigurationError.self) {
            try ServiceConfiguration(
                service: "s", defaultPort: 1, environment: EnvironmentReader(base.merging(["KAFKA_SECURITY_PROTOCOL": "sasl_plaintext"]) { $1 }))
        }
    }

    @Test func backoffGrowsExponentiallyUpToTheCapWithJitterBelowTheCeiling() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(1))
        #expect(backoff.ceiling(attempt: 1) == .milliseconds(100))
        #expect(backoff.ceiling(attempt: 3) == .milliseconds(400))
        #expect(backoff.ceiling(attempt: 10) == .seconds(1))
        let delays = (0..<200).map { _ in backoff.delay(attempt: 3) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(400) })
        #expect(Set(delays).count > 100)  // jittered, not a fixed wait
    }

    @Test func webhookSignatureCoversTimestampAndBody() {
        let body = Array(#"{"a":1}"#.utf8)
        let signature = Signing.webhookSignature(secret: "s3cret-s3cret-s3cret", timestamp: 1000, body: body)
        #expect(signature.hasPrefix("v1=") && signature.count == 67)
        #expect(signature != Signing.webhookSignature(secret: "s3cret-s3cret-s3cret", timestamp: 1001, body: body))
        #expect(signature != Signing.webhookSignature(secret: "other-secret-other", timestamp: 1000, body: body))
        #expect(Signing.constantTimeEquals(signature, signature))
        #expect(!Signing.constantTimeEquals(signature, String(signature.dropLast()) + "0"))
    }

    @Test func taskCallSignatureCoversTheRequestTheAttemptAndTheDelivery() {
        let secret = "task-secret-task-secret"
        let call = Signing.TaskCall(method: "POST", url: "https://bank.example/pay?x=1", workflowID: "w-1", step: "pay out", attempt: 2, deliveryID: "42")
        let body = Array(#"{"amount":6000}"#.utf8)
        var headers = HTTPFields()
        for (name, value) in Signing.taskCallHeaders(secret: secret, call: call, body: body) { headers[HTTPField.Name(name)!] = value }
        #expect(headers[HTTPField.Name("X-HITL-Step")!] == "pay%20out")
        #expect(Signing.verifyTaskCall(secret: secret, method: "POST", url: call.url, headers: headers, body: body) == call)
        // Replayed to another URL or method, another body, under another key, or too late: refused.
        #expect(Signing.verifyTaskCall(secret: secret, method: "POST", url: "https://bank.example/pay?x=2", headers: headers, body: body) == nil)
        #expect(Signing.verifyTaskCall(secret: secret, method: "PUT", url: call.url, headers: headers, body: body) == nil)
        #expect(Signing.verifyTaskCall(secret: secret, method: "POST", url: call.url, headers: headers, body: Array(#"{"amount":9000}"#.utf8)) == nil)
        #expect(Signing.verifyTaskCall(secret: "callback-secret-callback", method: "POST", url: call.url, headers: headers, body: body) == nil)
        #expect(Signing.verifyTaskCall(secret: secret, method: "POST", url: call.url, headers: headers, body: body, now: Date().addingTimeInterval(600)) == nil)
        // Another attempt or step in the headers breaks the signature.
        for (name, value) in [("X-HITL-Attempt", "3"), ("X-HITL-Step", "refund"), ("X-HITL-Delivery", "43"), ("X-HITL-Workflow", "w-2")] {
            var forged = headers
            forged[HTTPField.Name(name)!] = value
            #expect(Signing.verifyTaskCall(secret: secret, method: "POST", url: call.url, headers: forged, body: body) == nil, "\(name)")
        }
        // A webhook (v1) signature of the same body is not a task call's.
        var webhook = headers
        for (name, value) in Signing.webhookHeaders(secret: secret, body: body) { webhook[HTTPField.Name(name)!] = value }
        #expect(Signing.verifyTaskCall(secret: secret, method: "POST", url: call.url, headers: webhook, body: body) == nil)
    }

    @Test func migrationsApplyOnceEvenWhenReplicasStartTogether() async throws {
        let configuration = try await TestPostgres.freshDatabase(schema: "mig")
        let database = Database(configuration: configuration, source: "test", logger: .init(label: "test.migrations"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await database.run() }
            defer { group.cancelAll() }
            try await database.query("CREATE SCHEMA mig")
            let migrations = Migration.backbone + [Migration(version: 2, name: "t", statements: ["CREATE TABLE t (x int)"])]
            let applied = try await withThrowingTaskGroup(of: [Int].self) { runners in
                for _ in 0..<4 { runners.addTask { try await MigrationRunner(database: database, migrations: migrations).apply() } }
                return try await runners.reduce(into: []) { $0 += $1 }
            }
            #expect(applied.sorted() == [1, 2, 1000])
            #expect(try await MigrationRunner(database: database, migrations: migrations).apply().isEmpty)
        }
    }

    /// Rows waiting in the outbox when its headers became text pairs keep their headers, and
    /// a row whose JSON headers were not pairs keeps their text, for the relay to park.
    @Test func outboxRowsWaitingAcrossTheHeaderChangeKeepTheirHeaders() async throws {
        let configuration = try await TestPostgres.freshDatabase(schema: "hdr")
        let database = Database(configuration: configuration, source: "test", logger: .init(label: "test.migrations"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await database.run() }
            defer { group.cancelAll() }
            try await database.query("CREATE SCHEMA hdr")
            try await MigrationRunner(database: database, migrations: [Migration.backbone[0]]).apply()
            try await database.query(
                """
                INSERT INTO outbox (topic, key, headers, value) VALUES
                    ('t', 'k', '[["ce_id", "e-1"], ["ce_type", "x.v1"]]'::jsonb, '\\x00'),
                    ('t', 'k', '[]'::jsonb, '\\x00'),
                    ('t', 'k', '{"ce_id": 1}'::jsonb, '\\x00'),
                    ('t', 'k', '[["ce_id", 2]]'::jsonb, '\\x00'),
                    ('t', 'k', '[["ce_id"]]'::jsonb, '\\x00')
                """)
            #expect(try await MigrationRunner(database: database, migrations: Migration.backbone).apply() == [1000])
            var headers: [[String]] = []
            for try await row in try await database.query("SELECT headers FROM outbox ORDER BY id").decode([String].self) { headers.append(row) }
            #expect(headers == [["ce_id", "e-1", "ce_type", "x.v1"], [], [#"{"ce_id": 1}"#], [#"[["ce_id", 2]]"#], [#"[["ce_id"]]"#]])
        }
    }

    /// A wait on the migrations' gate ends when its task is cancelled, and an open gate
    /// lets everyone through at once.
    @Test func aWaitOnTheReadyGateEndsWhenCancelled() async throws {
        let gate = ReadyGate()
        let waiting = Task { try await gate.wait() }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        let cancelledFirst = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await gate.wait()
        }
        await #expect(throws: CancellationError.self) { try await cancelledFirst.value }
        let released = Task { try await gate.wait() }
        try await Task.sleep(for: .milliseconds(50))
        gate.open()
        try await released.value
        try await gate.wait()
        #expect(gate.isOpen)
    }
}
