import Logging
import PostgresNIO

/// Creates each service's role and schema, the role owning only its schema, so no service
/// can read another's tables. Run once by an administrator connection (`hitl db init`,
/// the compose init job, the test helpers); safe to run again.
public enum Provisioning {
    /// The services and their schemas.
    public static let services = ["orchestrator", "approval", "notifier", "timeout"]

    /// The role name of a service, e.g. `hitl_orchestrator`.
    public static func role(of service: String) -> String { "hitl_\(service)" }

    /// The statements that provision `services` in the current database, each role with its
    /// own password (`passwords` by service). Identifiers come from the fixed list above;
    /// passwords are quoted as literals.
    public static func statements(passwords: [String: String]) -> [String] {
        var statements = ["REVOKE ALL ON SCHEMA public FROM PUBLIC"]
        for service in services {
            let role = role(of: service)
            let literal = "'" + (passwords[service] ?? "").replacingOccurrences(of: "'", with: "''") + "'"
            statements += [
                """
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(role)') THEN
                    CREATE ROLE \(role) LOGIN PASSWORD \(literal);
                  END IF;
                END $$
                """,
                "ALTER ROLE \(role) PASSWORD \(literal)",
                "CREATE SCHEMA IF NOT EXISTS \(service) AUTHORIZATION \(role)",
                "REVOKE ALL ON SCHEMA \(service) FROM PUBLIC",
            ]
        }
        return statements
    }

    /// Runs the statements over an administrator connection.
    public static func run(on client: PostgresClient, passwords: [String: String], logger: Logger) async throws {
        for statement in statements(passwords: passwords) {
            try await client.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
    }
}
