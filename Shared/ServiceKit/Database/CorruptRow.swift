/// A stored value the code does not know: a row written by a newer version, or edited by
/// hand. It is an error, never read as some default, so the event that read it is retried
/// and dead-lettered and the API answers 500, instead of a workflow moving on a guess.
public struct CorruptRow: Error, CustomStringConvertible {
    public let column: String
    public let value: String

    public init(column: String, value: String) {
        self.column = column
        self.value = value
    }

    public var description: String { "\(column) holds \(value.prefix(100)), which this version does not know" }
}

extension RawRepresentable where RawValue == String {
    /// The value stored in `column`; `CorruptRow` when it is none of this type's.
    public init(stored text: String, column: String) throws {
        guard let value = Self(rawValue: text) else { throw CorruptRow(column: column, value: text) }
        self = value
    }
}
