import Foundation
import Synchronization

/// One circuit per host. Closed: calls go through and consecutive failures are counted;
/// at `failureThreshold` the circuit opens. Open: calls fail fast without touching the
/// network for `openDuration`. Then half-open: one probe call goes through; its success
/// closes the circuit, its failure opens it again. Other calls fail fast meanwhile.
final class CircuitBreaker: Sendable {
    enum State: Equatable, Sendable { case closed(failures: Int), open(until: ContinuousClock.Instant), probing }
    enum Permission: Equatable, Sendable { case call, probe, refuse(retryIn: Duration) }

    let failureThreshold: Int
    let openDuration: Duration
    private let states = Mutex<[String: State]>([:])

    init(failureThreshold: Int, openDuration: Duration) {
        self.failureThreshold = failureThreshold
        self.openDuration = openDuration
    }

    /// Whether a call to `host` may go out now.
    func permission(for host: String, now: ContinuousClock.Instant = .now) -> Permission {
        states.withLock { states in
            switch states[host] ?? .closed(failures: 0) {
            case .closed: return .call
            case .open(let until) where now < until: return .refuse(retryIn: until - now)
            case .open:
                states[host] = .probing
                return .probe
            case .probing: return .refuse(retryIn: .zero)
            }
        }
    }

    func recordSuccess(for host: String) {
        states.withLock { $0[host] = .closed(failures: 0) }
    }

    func recordFailure(for host: String, now: ContinuousClock.Instant = .now) {
        states.withLock { states in
            switch states[host] ?? .closed(failures: 0) {
            case .closed(let failures) where failures + 1 < failureThreshold:
                states[host] = .closed(failures: failures + 1)
            default:
                states[host] = .open(until: now + openDuration)
            }
        }
    }

    func state(of host: String) -> State {
        states.withLock { $0[host] ?? .closed(failures: 0) }
    }
}
