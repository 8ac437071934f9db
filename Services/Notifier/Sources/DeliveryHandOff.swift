import Foundation
import ServiceKit
import Synchronization

/// Deliveries the consuming transaction inserted already leased to this process, handed to
/// the worker in memory once that transaction committed: the worker attempts them without
/// a claiming transaction of its own. Their lease keeps them safe: a process that dies with
/// deliveries in hand leaves rows whose lease runs out, and any replica claims them then.
///
/// It also holds the channels whose breaker this process last saw open: their deliveries
/// are not leased on insert but left to the claim, which lets one probe through at a time.
final class DeliveryHandOff: Sendable {
    private struct State {
        var ready: [(delivery: DeliveryWorker.Claimed, leasedAt: ContinuousClock.Instant)] = []
        var tripped: Set<String> = []
        var lastClaim = ContinuousClock.now
        /// Stored deliveries may be due now: at start (a crash's leftovers), after a claim
        /// that filled its limit, when a breaker closed, a retry timer fired or ops asked for
        /// a retry.
        var storedDue = true
    }

    private let state = Mutex(State())
    /// How long a handed delivery stays leased; one waiting longer is left to the claim.
    let lease: Duration

    init(lease: Duration) {
        self.lease = lease
    }

    func isTripped(_ channel: String) -> Bool {
        state.withLock { $0.tripped.contains(channel) }
    }

    /// The channels whose breaker is open, as a claim found them.
    func setTripped(_ channels: Set<String>) {
        state.withLock { $0.tripped = channels }
    }

    func trip(_ channel: String) {
        state.withLock { _ = $0.tripped.insert(channel) }
    }

    /// The channel's breaker closed: its deliveries left to the claim while it was open are due.
    func close(_ channel: String) {
        state.withLock { state in
            if state.tripped.remove(channel) != nil { state.storedDue = true }
        }
    }

    /// The last claim filled its limit: more stored deliveries may be waiting.
    func claimFilled() {
        state.withLock { $0.storedDue = true }
    }

    func hand(_ deliveries: [DeliveryWorker.Claimed]) {
        let now = ContinuousClock.now
        state.withLock { $0.ready += deliveries.map { ($0, now) } }
    }

    /// Up to `limit` handed deliveries that may be attempted now: handed within the last
    /// quarter of the lease (so that the longest channel call ends well inside it, even when
    /// the consuming transaction took long) and of a channel whose breaker is not open. The
    /// others are dropped: their rows stay leased, and the claim takes them once the lease
    /// ran out, under the breaker's rules.
    func take(_ limit: Int) -> [DeliveryWorker.Claimed] {
        let fresh = ContinuousClock.now - lease / 4
        return state.withLock { state in
            let tripped = state.tripped
            state.ready.removeAll { $0.leasedAt < fresh || tripped.contains($0.delivery.channel) }
            let taken = state.ready.prefix(limit).map(\.delivery)
            state.ready.removeFirst(taken.count)
            return taken
        }
    }

    /// Whether the claim in the database is due: when stored deliveries were said to be due,
    /// and otherwise once every `interval`, handed deliveries or not, so that retries falling
    /// due, probes, leases a crash left and the breakers' state are never starved by a
    /// steady stream of new deliveries, and the hand-offs themselves cost no claim.
    func claimDue(every interval: Duration) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard state.storedDue || now - state.lastClaim >= interval else { return false }
            state.lastClaim = now
            state.storedDue = false
            return true
        }
    }

    /// Makes the next claim read the stored deliveries (one the transaction at hand made
    /// due), once it committed.
    func claimStored(after transaction: Transaction, wakeup: Wakeup) {
        transaction.afterCommit {
            self.state.withLock { $0.storedDue = true }
            wakeup.signal()
        }
    }
}
