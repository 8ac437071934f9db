import Contracts
import Logging
import PostgresNIO

/// Records processed event ids in the caller's transaction: `claim` answers false for an
/// event that was already processed, so a redelivery or replay changes nothing.
public enum Inbox {
    /// Claims `envelope` for processing; false when it was processed before.
    public static func claim(_ envelope: EventEnvelope, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO inbox (event_id, event_type) VALUES (\(envelope.id), \(envelope.type.rawValue))
            ON CONFLICT (event_id) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }
}
