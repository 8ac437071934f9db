import PostgresNIO

/// A prepared statement whose one value (`$1`) is an id, the shape of the hot reads: the
/// binding comes with it; the conforming type gives the SQL and how a row is read.
public protocol PreparedByID: PostgresPreparedStatement {
    associatedtype ID: PostgresNonThrowingEncodable
    var id: ID { get }
}

extension PreparedByID {
    public static var bindingDataTypes: [PostgresDataType] { [ID.psqlType] }

    public func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(id)
        return bindings
    }
}
