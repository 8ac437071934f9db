/// Exponential backoff with full jitter: attempt n waits a random time in
/// `0...min(cap, base * 2^(n-1))`, so retrying replicas spread out instead of stampeding.
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    public static let `default` = Backoff(base: .milliseconds(50), cap: .seconds(2))

    /// The ceiling of attempt `attempt` (1-based), before jitter.
    public func ceiling(attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let grown = base * (1 << exponent)
        return min(grown, cap)
    }

    /// The wait before attempt `attempt + 1`.
    public func delay(attempt: Int) -> Duration {
        let ceiling = ceiling(attempt: attempt)
        let nanos = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0...max(nanos, 0)))
    }
}

extension Duration {
    /// The duration in seconds, for `Date` arithmetic.
    public var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
