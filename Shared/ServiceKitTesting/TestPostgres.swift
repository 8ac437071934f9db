import DevStack
import Foundation
import PostgresNIO
import ServiceKit

/// The Postgres server the tests use: `HITL_TEST_POSTGRES_URL` (an administrator URL) when
/// set, otherwise a private server started once per test process and stopped at exit.
public enum TestPostgres {
    /// The administrator URL of the server.
    public static func adminURL() throws -> String {
        if let url = ProcessInfo.processInfo.environment["HITL_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        return try privateServer.get().url()
    }

    /// A new, provisioned database with a unique name; returns its administrator configuration.
    public static func freshDatabase(schema: String = "public", rolePassword: String = "hitl-test-password") async throws -> DatabaseConfiguration {
        var admin = try DatabaseConfiguration(url: adminURL(), schema: schema)
        let name = "hitl_test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try await StackDatabase.create(name, admin: admin, rolePassword: rolePassword)
        admin.database = name
        return admin
    }

    private static let privateServer: Result<LocalPostgres, any Error> = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-test-postgres-\(getpid())")
        let result = Result { try LocalPostgres(directory: directory) }
        if case .success(let server) = result {
            serverToStop = server
            atexit {
                serverToStop?.stop()
                if let directory = serverToStop?.directory { try? FileManager.default.removeItem(at: directory) }
            }
        }
        return result
    }()

    nonisolated(unsafe) private static var serverToStop: LocalPostgres?
}
