import Contracts
import DevStack
import Foundation
import Kafka
import Logging
import PostgresNIO
import ServiceKit
import ServiceKitTesting
import ServiceLifecycle

/// A migrated schema on a fresh database, a producer and a relay on a fresh mock cluster,
/// all running for the duration of `body`.
struct ServiceKitHarness: Sendable {
    let database: Database
    let producer: KafkaProducer
    let relay: OutboxRelay
    let cluster: KafkaMockCluster
    let logger = Logger(label: "test.servicekit")

    static let topics = ["hitl.test.in", Topic.deadLetter.rawValue, "hitl.test.out"]

    /// - Parameter configuration: the database to use; a fresh one on the test server when nil.
    static func with(
        relayRunning: Bool = true, configuration: DatabaseConfiguration? = nil, _ body: (ServiceKitHarness) async throws -> Void
    ) async throws {
        let logger = Logger(label: "test.servicekit")
        let configuration = if let configuration { configuration } else { try await TestPostgres.freshDatabase(schema: "kit") }
        let database = Database(configuration: configuration, source: "test", logger: logger)
        let cluster = try KafkaMockCluster(brokers: 1)
        for topic in topics { try cluster.createTopic(topic, partitions: 2) }
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        let relay = OutboxRelay(database: database, producer: producer, pollInterval: .milliseconds(50), logger: logger)
        let harness = ServiceKitHarness(database: database, producer: producer, relay: relay, cluster: cluster)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await database.run() }
            defer { group.cancelAll() }
            try await database.query("CREATE SCHEMA IF NOT EXISTS kit")
            try await MigrationRunner(database: database, migrations: Migration.backbone + [counterMigration]).apply()
            // What uses the database stops before the database does, as in a service's
            // ServiceGroup: a relay still leasing a connection from a client that already
            // shut down waits forever.
            if relayRunning {
                try await harness.running(relay) { try await body(harness) }
            } else {
                try await body(harness)
            }
        }
        await producer.shutdown()
    }

    /// A table the test handlers count into.
    static let counterMigration = Migration(
        version: 2, name: "counter",
        statements: [
            "CREATE TABLE applied (event_id text NOT NULL, note text NOT NULL)"
        ])

    /// Reads every record of `topic` with a throwaway consumer group, until `until` holds.
    func read(_ topic: String, until: @escaping @Sendable ([KafkaMessage]) -> Bool) async throws -> [KafkaMessage] {
        let collected = Collected<KafkaMessage>()
        let consumer = try KafkaConsumer(
            configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers),
            groupID: "reader-\(UUID().uuidString)", topics: [topic], logger: logger)
        let task = Task {
            try await consumer.run {
                await collected.append($0); return true
            }
        }
        do {
            try await waitUntil("records on \(topic)") { until(await collected.items) }
            // Give duplicates, if any, the chance to show up.
            try await Task.sleep(for: .milliseconds(500))
        } catch {
            task.cancel()
            _ = try? await task.value
            throw error
        }
        task.cancel()
        _ = try? await task.value
        return await collected.items
    }

    /// Runs `loop` under a watchdog of its own while `body` runs.
    func running<T: Sendable>(_ loop: some SupervisedLoop, watchdog: LoopWatchdog = LoopWatchdog(), _ body: () async throws -> T) async throws -> T {
        try await running(SupervisedService(loop: loop, watchdog: watchdog, logger: logger), body)
    }

    /// Runs `service` while `body` runs, then cancels it and waits for it to end.
    func running<T: Sendable>(_ service: some Service, _ body: () async throws -> T) async throws -> T {
        let task = Task { try await service.run() }
        do {
            let result = try await body()
            task.cancel()
            _ = try? await task.value
            return result
        } catch {
            task.cancel()
            _ = try? await task.value
            throw error
        }
    }

    func count(_ sql: PostgresQuery) async throws -> Int {
        for try await value in try await database.query(sql).decode(Int.self) { return value }
        return 0
    }
}
