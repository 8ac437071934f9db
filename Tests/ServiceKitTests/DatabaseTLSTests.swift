import DevStack
import Foundation
import Logging
import PostgresNIO
import ServiceKit
import ServiceKitTesting
import Testing

/// `sslmode` in `HITL_DATABASE_URL` is honoured against a private server that takes TLS.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DatabaseTLSTests {
    /// Whether a session opened with `url` is encrypted, or the error that kept it from opening.
    static func encrypted(_ url: String) async -> Result<Bool, any Error> {
        do {
            let database = Database(
                configuration: try DatabaseConfiguration(url: url, schema: "public", poolSize: 1), source: "test", logger: Logger(label: "test.tls"))
            return await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await database.run() }
                defer { group.cancelAll() }
                let answer = await Deadline.value(within: .seconds(15)) {
                    var ssl = false
                    for try await value in try await database.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").decode(Bool.self) {
                        ssl = value
                    }
                    return ssl
                }
                return answer ?? .failure(CancellationError())
            }
        } catch {
            return .failure(error)
        }
    }

    @Test func sslModesAreHonoured() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-tls-\(UUID().uuidString.prefix(8))")
        let server = try LocalPostgres(directory: directory, tls: true)
        defer {
            server.stop()
            try? FileManager.default.removeItem(at: directory)
        }
        let ca = try #require(server.certificate).path
        let base = server.url()
        #expect(try await Self.encrypted(base + "?sslmode=disable").get() == false)
        #expect(try await Self.encrypted(base + "?sslmode=require").get() == true)
        #expect(try await Self.encrypted(base + "?sslmode=verify-full&sslrootcert=\(ca)").get() == true)
        #expect(
            try await Self.encrypted(base.replacingOccurrences(of: "127.0.0.1", with: "localhost") + "?sslmode=verify-full&sslrootcert=\(ca)").get() == true)
        // verify-full against the system's roots: this certificate is nobody's, so no session.
        if case .success = await Self.encrypted(base + "?sslmode=verify-full") { Issue.record("verify-full trusted a self-signed certificate") }
        #expect(throws: ConfigurationError.self) { try DatabaseConfiguration(url: base + "?sslmode=always", schema: "public") }
        #expect(throws: ConfigurationError.self) { try DatabaseConfiguration(url: base + "?sslmode=require&sslrootcert=/nonexistent", schema: "public") }
    }
}
