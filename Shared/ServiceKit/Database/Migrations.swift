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

    /// The migrations of the tables every service has, before the service's own. The
    /// first is version 1 of every service; later changes take versions from 1000 up, after
    /// any service's own (a service's migrations never touch these tables).
    public static let backbone = [outboxAndInbox, outboxHeaderPairs]

    /// The outbox its events leave through and the inbox that makes a redelivered event a no-op.
    static let outboxAndInbox = Migration(
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

    /// The outbox's headers as a flat text array (name, value, name, value…) rather than JSON:
    /// every event was encoded to JSON and parsed back once more just for them. A row whose
    /// JSON is not a list of string pairs keeps that text as its only element, which the
    /// relay parks as unreadable, as before.
    static let outboxHeaderPairs = Migration(
        version: 1000, name: "outbox headers as text pairs",
        statements: [
            "ALTER TABLE outbox ADD COLUMN header_pairs text[]",
            """
            UPDATE outbox SET header_pairs = CASE
                WHEN jsonb_typeof(headers) <> 'array' THEN ARRAY[headers::text]
                WHEN EXISTS (
                    SELECT 1 FROM jsonb_array_elements(headers) AS h(pair)
                    WHERE CASE WHEN jsonb_typeof(pair) = 'array'
                               THEN jsonb_array_length(pair) <> 2 OR jsonb_typeof(pair -> 0) <> 'string' OR jsonb_typeof(pair -> 1) <> 'string'
                               ELSE true END) THEN ARRAY[headers::text]
                ELSE ARRAY(
                    SELECT text FROM jsonb_array_elements(headers) WITH ORDINALITY AS h(pair, n),
                                     LATERAL (VALUES (1, pair ->> 0), (2, pair ->> 1)) AS e(part, text)
                    ORDER BY n, part)
                END
            """,
            "ALTER TABLE outbox DROP COLUMN headers",
            "ALTER TABLE outbox RENAME COLUMN header_pairs TO headers",
            "ALTER TABLE outbox ALTER COLUMN headers SET NOT NULL",
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
