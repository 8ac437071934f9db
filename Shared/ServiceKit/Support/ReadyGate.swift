import Foundation
import Synchronization

/// A one-way gate: `wait()` returns once `open()` was called (immediately after that).
/// Loops that need the migrated schema wait on it. A wait ends early, with
/// `CancellationError`, when its task is cancelled: a service whose migrations failed, or
/// that was asked to stop while starting, must end rather than wait for ever.
public final class ReadyGate: Sendable {
    private struct State {
        var opened = false
        var waiters: [UUID: CheckedContinuation<Void, any Error>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func open() {
        let waiters = state.withLock { state in
            state.opened = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    public var isOpen: Bool { state.withLock { $0.opened } }

    public func wait() async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Decided under the lock: open, cancelled already, or wait.
                let now: Result<Void, any Error>? = state.withLock { state in
                    if state.opened { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}
