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

    /// Claims a consumer's batch in one statement; answers the ids claimed now. An event
    /// processed before is not among them, and one that appears twice is claimed once.
    public static func claim(_ envelopes: [EventEnvelope], on connection: PostgresConnection, logger: Logger) async throws -> Set<String> {
        let rows = try await connection.query(
            """
            INSERT INTO inbox (event_id, event_type)
            SELECT * FROM unnest(\(envelopes.map(\.id))::text[], \(envelopes.map(\.type.rawValue))::text[])
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id
            """, logger: logger)
        var claimed: Set<String> = []
        for try await id in rows.decode(String.self) { claimed.insert(id) }
        return claimed
    }
}
