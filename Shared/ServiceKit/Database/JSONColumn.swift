import Contracts
import Foundation
import PostgresNIO

/// Moves wire JSON in and out of `jsonb` columns, which queries bind and read as text
/// (`$1::jsonb`, `column::text`).
public enum JSONColumn {
    /// The wire JSON text of `value`, to bind as `\(text)::jsonb`.
    public static func text(_ value: some Encodable) throws -> String {
        String(decoding: try WireCoding.encode(value), as: UTF8.self)
    }

    /// The object a column holds; empty when it holds something else (our own columns
    /// only ever hold objects written through `text`).
    public static func object(_ text: String) -> JSONObject {
        (try? WireCoding.decode(JSONObject.self, from: Array(text.utf8))) ?? [:]
    }

    /// Decodes `jsonb` columns straight into `Codable` values in the wire dialect (for types
    /// that conform to `PostgresDecodable`): `rows.decode(T.self, context: JSONColumn.wire)`.
    public static var wire: PostgresDecodingContext<JSONDecoder> {
        PostgresDecodingContext(jsonDecoder: WireCoding.decoder())
    }
}
