import Logging
import PostgresNIO

/// One versioned schema change of a service.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    /// Statements run in order, in one transaction.
    public let statements: [String]

    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// The tables every service has: the outbox its events leave through and the inbox
    /// that makes a redelivered event a no-op. Version 1 of every service.
    public static let backbone = Migration(
        version: 1, name: "outbox and inbox",
        statements: [
            """
            CREATE TABLE outbox (
                id bigserial PRIMARY KEY,
                topic text NOT NULL,
                key text NOT NULL,
                headers jsonb NOT NULL,
                value bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE inbox (
                event_id text PRIMARY KEY,
                event_type text NOT NULL,
                processed_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ])
}

/// Applies a service's migrations in version order, each once, under an advisory lock so
/// that replicas starting together do not race.
public struct MigrationRunner: Sendable {
    let database: Database
    let migrations: [Migration]

    public init(database: Database, migrations: [Migration]) {
        self.database = database
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is missing; returns the versions applied now.
    @discardableResult
    public func apply() async throws -> [Int] {
        let schema = database.schema
        let lockKey = "hitl.migrations.\(schema)"
        return try await database.transaction { transaction in
            try await transaction.query("SELECT pg_advisory_xact_lock(hashtext(\(lockKey)))")
            try await transaction.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
            var applied = Set<Int>()
            for try await version in try await transaction.query("SELECT version FROM schema_migrations").decode(Int.self) {
                applied.insert(version)
            }
            var now: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await transaction.query(PostgresQuery(unsafeSQL: statement))
                }
                try await transaction.query("INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))")
                now.append(migration.version)
            }
            return now
        }
    }
}
