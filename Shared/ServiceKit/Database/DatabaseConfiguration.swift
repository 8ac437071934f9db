import Foundation
import PostgresNIO

/// Where a service's Postgres is and which schema it owns.
public struct DatabaseConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// The schema the service owns; set as the connection's `search_path`.
    public var schema: String
    public var poolSize: Int
    /// How long the server lets a session sit idle inside a transaction before it ends it
    /// (`idle_in_transaction_session_timeout`): a client stuck mid-transaction (a hung task,
    /// a half-open connection) cannot hold its row locks, and so every retry, for longer.
    public var idleTransactionTimeoutSeconds = 60

    /// Parses `postgres://user:password@host:port/database`; `variable` names the
    /// setting in errors.
    public init(url text: String, variable: String = "database URL", schema: String, poolSize: Int = 16) throws {
        guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
            let host = url.host, !host.isEmpty, let user = url.user, !user.isEmpty
        else {
            throw ConfigurationError(variable: variable, reason: "must look like postgres://user:password@host:port/database")
        }
        let database = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard !database.isEmpty else {
            throw ConfigurationError(variable: variable, reason: "names no database")
        }
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw ConfigurationError(variable: "HITL_DATABASE_SCHEMA", reason: "must be a lower-case SQL identifier")
        }
        self.host = host
        self.port = url.port ?? 5432
        self.username = user.removingPercentEncoding ?? user
        self.password = url.password?.removingPercentEncoding
        self.database = database
        self.schema = schema
        self.poolSize = poolSize
    }

    /// The PostgresNIO client configuration: plain TCP on loopback and in the compose
    /// network, `search_path` pinned to the service's schema.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
        configuration.options.maximumConnections = poolSize
        configuration.options.additionalStartupParameters = [
            ("search_path", schema), ("idle_in_transaction_session_timeout", "\(idleTransactionTimeoutSeconds)s"),
        ]
        return configuration
    }
}
