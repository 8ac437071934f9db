import Foundation
import Synchronization

/// A coalescing wake-up signal: any number of `signal()` calls before a `wait` wake it once.
/// Lets a loop sleep until there is work, with a timeout as a safety net.
public final class Wakeup: Sendable {
    private let state = Mutex(WakeupState())

    public init() {}

    /// Wakes the waiter, or makes its next wait return at once.
    public func signal() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        continuation?.resume()
    }

    /// Returns at the next signal, after `timeout`, or on cancellation, whichever is first.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let resumeNow = self.state.withLock { state -> Bool in
                            if state.pending || Task.isCancelled {
                                state.pending = false
                                return true
                            }
                            if let previous = state.waiter { previous.resume() }
                            state.waiter = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.signalCancelled()
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func signalCancelled() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        continuation?.resume()
    }
}

private struct WakeupState {
    var pending = false
    var waiter: CheckedContinuation<Void, Never>?
}
