import Foundation
import NIOSSL
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
    /// TLS to the server, as libpq's `sslmode`, with the CA of `sslrootcert`.
    public var sslMode: SSLMode
    public var sslRootCertificate: String?

    /// libpq's modes: `disable`; `prefer` and `require` encrypt without checking the server
    /// (`require` with `sslrootcert` checks the CA, as libpq does); `verify-ca` checks the
    /// chain; `verify-full` the chain and the host name.
    public enum SSLMode: String, Sendable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// Parses `postgres://user:password@host:port/database`; `variable` names the
    /// setting in errors.
    public init(url text: String, variable: String = "database URL", schema: String, poolSize: Int = 16) throws {
        guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
            let host = url.host, !host.isEmpty, let user = url.user, !user.isEmpty
        else {
            throw ConfigurationError(variable: variable, reason: "must look like postgres://user:password@host:port/database")
        }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { $1 }
        guard let mode = SSLMode(rawValue: query["sslmode"] ?? "prefer") else {
            throw ConfigurationError(variable: variable, reason: "sslmode must be disable, prefer, require, verify-ca or verify-full")
        }
        if let root = query["sslrootcert"], !FileManager.default.isReadableFile(atPath: root) {
            throw ConfigurationError(variable: variable, reason: "sslrootcert is not a readable file")
        }
        if let unknown = query.keys.first(where: { !["sslmode", "sslrootcert"].contains($0) }) {
            throw ConfigurationError(variable: variable, reason: "has the parameter \(unknown); only sslmode and sslrootcert are read")
        }
        self.sslMode = mode
        self.sslRootCertificate = query["sslrootcert"]
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

    /// The PostgresNIO client configuration: TLS as `sslMode` says, `search_path` pinned to
    /// the service's schema.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = poolSize
        configuration.options.additionalStartupParameters = [
            ("search_path", schema), ("idle_in_transaction_session_timeout", "\(idleTransactionTimeoutSeconds)s"),
        ]
        return configuration
    }

    var tls: PostgresClient.Configuration.TLS {
        var settings = TLSConfiguration.makeClientConfiguration()
        if let root = sslRootCertificate { settings.trustRoots = .file(root) }
        switch sslMode {
        case .disable:
            return .disable
        case .prefer:
            settings.certificateVerification = .none
            return .prefer(settings)
        case .require:
            settings.certificateVerification = sslRootCertificate == nil ? .none : .noHostnameVerification
            return .require(settings)
        case .verifyCA:
            settings.certificateVerification = .noHostnameVerification
            return .require(settings)
        case .verifyFull:
            settings.certificateVerification = .fullVerification
            return .require(settings)
        }
    }
}
