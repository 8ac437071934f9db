import Contracts
import DevStack
import Foundation
import Kafka
import Logging
import PostgresNIO
import ServiceKit
import ServiceKitTesting

/// A whole stack (four service processes, the mock cluster, a fresh database on the test
/// Postgres server) and a signed-webhook receiver, for one test.
struct Stack: Sendable {
    let local: LocalStack
    let webhook: WebhookRecorder
    let admin: DatabaseConfiguration

    var orchestrator: String { local.url(of: "orchestrator") }
    /// The key of http task calls' signatures (callbacks are signed with the webhook's).
    static let taskSigningSecret = "integration-task-signing-secret"
    var approval: String { local.url(of: "approval") }

    /// - Parameter privatePostgres: run the stack on a Postgres server of its own (which the
    ///   test may stop and restart) instead of the shared test server.
    static func with(
        environment: [String: String] = [:], replicas: [String: Int]? = nil, privatePostgres: Bool = false, _ body: (Stack) async throws -> Void
    ) async throws {
        let secret = "integration-webhook-secret"
        let webhook = WebhookRecorder(secret: secret)
        let database = "hitl_e2e_\(UUID().uuidString.prefix(8).lowercased())"
        var options = LocalStack.Options(directory: FileManager.default.temporaryDirectory.appendingPathComponent(database))
        options.adminURL = privatePostgres ? nil : try TestPostgres.adminURL()
        options.database = database
        options.webhookURL = webhook.url
        options.webhookSecret = secret
        options.taskSigningSecret = taskSigningSecret
        options.jwtSecret = TestTokens.secret
        options.decisionKeys = TestTokens.decisionKeys
        options.environment = environment
        if let replicas { options.replicas = replicas }
        options.logLevel = "info"
        let local = LocalStack(options: options)
        let stack: Stack
        do {
            try await local.start()
            var admin = try DatabaseConfiguration(url: privatePostgres ? local.postgres!.url() : try TestPostgres.adminURL(), schema: "public")
            admin.database = database
            stack = Stack(local: local, webhook: webhook, admin: admin)
        } catch {
            await local.stop()
            await webhook.stop()
            throw StackError("\(error)\n\(Self.logTails(of: local))")
        }
        do {
            try await body(stack)
        } catch {
            await local.stop()
            await webhook.stop()
            throw StackError("\(error)\n\(stack.logTails())")
        }
        await local.stop()
        await webhook.stop()
    }

    /// The last lines of each service's log, to explain a failure.
    func logTails() -> String {
        Self.logTails(of: local)
    }

    static func logTails(of local: LocalStack) -> String {
        local.services.keys.sorted().map { service in
            let text = (try? String(contentsOf: local.options.directory.appendingPathComponent("\(service).log"), encoding: .utf8)) ?? ""
            return "── \(service)\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// Runs SQL as the administrator in the stack's database.
    func sql(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await StackDatabase.withClient(admin) { client in
            var rows: [PostgresRow] = []
            for try await row in try await client.query(query) { rows.append(row) }
            return rows
        }
    }

    func count(_ query: PostgresQuery) async throws -> Int {
        try await sql(query).first?.decode(Int.self) ?? 0
    }

    // MARK: - Workflow helpers

    func submit(_ json: String) async throws -> Answer {
        try await API.post("\(orchestrator)/v1/workflows", json)
    }

    func workflow(_ id: String) async throws -> Answer {
        try await API.get("\(orchestrator)/v1/workflows/\(id)")
    }

    func status(_ id: String) async throws -> String? {
        try await workflow(id).string("status")
    }

    /// Waits for the workflow's pending approval and returns its id.
    func pendingApproval(of workflowID: String, timeout: Duration = .seconds(30)) async throws -> String {
        var found: String?
        try await waitUntil("a pending approval for \(workflowID)", timeout: timeout) {
            let answer = try await API.get("\(approval)/v1/approvals?status=pending&workflow_id=\(workflowID)")
            if case .string(let id)? = answer.items.first?["id"] { found = id }
            return found != nil
        }
        return found!
    }

    /// Decides as `approver`, with that approver's token.
    func decide(_ approvalID: String, _ decision: String, approver: String = "manager@bank.example", comment: String = "ok") async throws -> Answer {
        try await API.post(
            "\(approval)/v1/approvals/\(approvalID)/decision",
            #"{"decision":"\#(decision)","approver":"\#(approver)","comment":"\#(comment)"}"#, token: TestTokens.approver(approver))
    }

    func waitForStatus(_ workflowID: String, _ status: String, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil("workflow \(workflowID) to be \(status)", timeout: timeout) {
            try await self.status(workflowID) == status
        }
    }

    /// Every event on `topic` so far, read by a throwaway consumer group.
    func events(on topic: Topic, settle: Duration = .seconds(2)) async throws -> [EventEnvelope] {
        try await reading(topic) { collected in
            var last = -1
            // Read until nothing new arrives for `settle`.
            while true {
                try await Task.sleep(for: settle)
                let now = await collected.count
                if now == last && now > 0 { break }
                if last == -1 && now == 0 { last = 0; continue }
                if now == last { break }
                last = now
            }
        }
    }

    /// Reads `topic` with a throwaway consumer group while `body` looks at what arrived so
    /// far; returns everything read.
    func reading(_ topic: Topic, _ body: (Collected<EventEnvelope>) async throws -> Void) async throws -> [EventEnvelope] {
        let collected = Collected<EventEnvelope>()
        let consumer = try KafkaConsumer(
            configuration: KafkaConfiguration(bootstrapServers: local.kafkaBootstrap), groupID: "reader-\(UUID().uuidString)",
            topics: [topic.rawValue], logger: Logger(label: "test.reader"))
        let task = Task {
            try await consumer.run { message in
                if let envelope = try? EventEnvelope(message) { await collected.append(envelope) }
                return true
            }
        }
        do {
            try await body(collected)
        } catch {
            task.cancel()
            _ = try? await task.value
            throw error
        }
        task.cancel()
        _ = try? await task.value
        return await collected.items
    }
}

extension Stack {
    /// Publishes an event as an agent would, straight onto a topic.
    func publish<Payload: EventPayload>(_ payload: Payload, to topic: Topic, subject: String) async throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: local.kafkaBootstrap), logger: Logger(label: "test.agent"))
        try await producer.send(try EventEnvelope(payload, source: "test-agent", subject: subject), to: topic)
        await producer.shutdown()
    }

    /// Runs the `hitl` command against this stack's orchestrator; returns its output.
    func hitl(_ arguments: [String]) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["HITL_TOKEN"] = TestTokens.admin
        return try Shell.run([Shell.packageExecutable("hitl").path] + arguments + ["--orchestrator", orchestrator], environment: environment)
    }
}

extension Stack {
    /// How many events of `type` `service` found it had applied before (its inbox's
    /// duplicates, from `/metrics`): what a test waits for to know a repeat was processed.
    func duplicates(of type: EventType, in service: String) async throws -> Int {
        Int(try await metric("hitl_events_processed_total", labels: [#"result="duplicate""#, #"type="\#(type.rawValue)""#], in: service))
    }

    /// The value of metric `name` in `service`'s `/metrics` on the series with all of
    /// `labels` (`key="value"`), 0 when there is none yet.
    func metric(_ name: String, labels: [String] = [], in service: String) async throws -> Double {
        let metrics = try await API.get("\(local.url(of: service))/metrics").text
        let line = metrics.split(separator: "\n").first { line in
            (line.hasPrefix(name + "{") || line.hasPrefix(name + " ")) && labels.allSatisfy { line.contains($0) }
        }
        return line.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? 0
    }
}
