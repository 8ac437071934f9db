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
        let statement = Claim(ids: envelopes.map(\.id), types: envelopes.map(\.type.rawValue))
        var claimed: Set<String> = []
        for try await id in try await transaction.execute(statement) { claimed.insert(id) }
        return claimed
    }

    /// Every consumed event runs it: prepared, so Postgres parses and plans it once per connection.
    struct Claim: PostgresPreparedStatement {
        static let sql = """
            INSERT INTO inbox (event_id, event_type) SELECT * FROM unnest($1::text[], $2::text[])
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id
            """
        static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray]
        let ids: [String]
        let types: [String]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(ids)
            bindings.append(types)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
    }
}
