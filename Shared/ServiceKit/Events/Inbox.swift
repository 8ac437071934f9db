import Contracts
import Logging
import PostgresNIO

/// Records processed event ids in the caller's transaction: `claim` leaves out an event
/// that was already processed, so a redelivery or replay changes nothing.
public enum Inbox {
    /// Claims a consumer's events (one, or a batch) in one statement; answers the ids claimed
    /// now. An event processed before is not among them, and one that appears twice is
    /// claimed once.
    public static func claim(_ envelopes: [EventEnvelope], in transaction: Transaction) async throws -> Set<String> {
        let rows = try await transaction.query(
            """
            INSERT INTO inbox (event_id, event_type)
            SELECT * FROM unnest(\(envelopes.map(\.id))::text[], \(envelopes.map(\.type.rawValue))::text[])
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id
            """)
        var claimed: Set<String> = []
        for try await id in rows.decode(String.self) { claimed.insert(id) }
        return claimed
    }
}
