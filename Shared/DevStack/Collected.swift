/// A value several tasks add to and one reads (a benchmark's results, a test's records).
public actor Collected<Element: Sendable> {
    public private(set) var items: [Element] = []
    public init() {}
    public func append(_ item: Element) { items.append(item) }
    public var count: Int { items.count }
}
