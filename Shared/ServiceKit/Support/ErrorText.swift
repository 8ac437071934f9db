import PostgresNIO

/// A one-line, secret-free reason for an error, for logs and dead letters. PostgresNIO's
/// own description is deliberately generic; the server's message and SQL state are what
/// ops need, and they carry no bound values.
public enum ErrorText {
    public static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                let state = info[.sqlState] ?? "?"
                let message = info[.message] ?? "no message"
                return "postgres \(state): \(message)"
            }
            return "postgres: \(error.code)"
        }
        return "\(error)"
    }
}
