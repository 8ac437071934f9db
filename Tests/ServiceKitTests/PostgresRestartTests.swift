import Contracts
import DevStack
import Foundation
import Logging
import PostgresNIO
import ServiceKit
import ServiceKitTesting
import Testing

/// A Postgres restart (a crash, a failover, a minor upgrade) must be a non-event: what
/// used a connection the server cut gets an error it can retry, never a wait forever.
@Suite(.serialized, .timeLimit(.minutes(5))) struct PostgresRestartTests {
    /// Runs `body` with a database on a private server that the test may restart.
    static func withRestartableDatabase(_ body: (LocalPostgres, Database) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-restart-\(UUID().uuidString.prefix(8))")
        let server = try LocalPostgres(directory: directory)
        defer {
            server.stop()
            try? FileManager.default.removeItem(at: directory)
        }
        let database = Database(
            configuration: try DatabaseConfiguration(url: server.url(), schema: "public", poolSize: 4), source: "test", logger: Logger(label: "test.restart"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await database.run() }
            defer { group.cancelAll() }
            try await body(server, database)
        }
    }

    @Test func aTransactionTheServerCutEndsInsteadOfHangingAndTheNextOneWorks() async throws {
        try await Self.withRestartableDatabase { server, database in
            try await database.query("CREATE TABLE IF NOT EXISTS marks (n int)")
            // The server goes while a statement runs: the statement fails, and the ROLLBACK
            // after it must not be sent on the dead connection (it would never be answered).
            let restart = Task {
                try await Task.sleep(for: .milliseconds(500))
                try server.restartImmediately()
            }
            let cut: Result<Void, any Error>? = await Deadline.value(within: .seconds(20)) {
                try await database.transaction { transaction in
                    try await transaction.query("INSERT INTO marks VALUES (1)")
                    try await transaction.query("SELECT pg_sleep(5)")
                }
            }
            try await restart.value
            // It ends: failed, or tried again on a fresh connection (the cut one was rolled back
            // by the server) and committed once.
            _ = try #require(cut, "the transaction on the cut connection never ended")
            // Connections the pool held were cut too; the next transactions get fresh ones.
            try await waitUntil("a transaction after the restart") {
                (try? await database.transaction { transaction in
                    try await transaction.query("INSERT INTO marks VALUES (3)")
                }) != nil
            }
            var marks: [Int] = []
            for try await mark in try await database.query("SELECT n FROM marks").decode(Int.self) { marks.append(mark) }
            #expect(marks.filter { $0 == 1 }.count <= 1 && marks.contains(3))
        }
    }

    @Test func theOutboxRelayPublishesAgainAfterTheServerRestarted() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-restart-\(UUID().uuidString.prefix(8))")
        let server = try LocalPostgres(directory: directory)
        defer {
            server.stop()
            try? FileManager.default.removeItem(at: directory)
        }
        let configuration = try DatabaseConfiguration(url: server.url(), schema: "kit", poolSize: 4)
        try await ServiceKitHarness.with(configuration: configuration) { kit in
            func publish(_ subject: String) async throws {
                try await kit.database.transaction { transaction in
                    try transaction.publish(
                        OutboxInboxTests.sample, to: Topic(rawValue: "hitl.test.out"), subject: subject)
                }
            }
            try await publish("before")
            _ = try await kit.read("hitl.test.out") { $0.count >= 1 }
            // The relay leads on a session the restart cuts; it must take the lead again.
            try server.restartImmediately()
            try await waitUntil("a transaction after the restart") { (try? await publish("after")) != nil }
            let records = try await kit.read("hitl.test.out") { messages in
                messages.contains { $0.key.map { String(decoding: $0, as: UTF8.self) } == "after" }
            }
            #expect(records.contains { $0.key.map { String(decoding: $0, as: UTF8.self) } == "before" })
            #expect(try await kit.count("SELECT count(*)::int FROM outbox") == 0)
        }
    }
}
