import Foundation

/// A one-way gate: `wait()` returns once `open()` was called (immediately after that).
/// Loops that need the migrated schema wait on it.
public final class ReadyGate: Sendable {
    private let state = GateState()

    public init() {}

    public func open() {
        for waiter in state.open() { waiter.resume() }
    }

    public var isOpen: Bool { state.isOpen }

    public func wait() async {
        await withCheckedContinuation { continuation in
            if !state.enqueue(continuation) { continuation.resume() }
        }
    }
}

private final class GateState: @unchecked Sendable {
    private let lock = NSLock()
    private var opened = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    var isOpen: Bool { lock.withLock { opened } }

    func open() -> [CheckedContinuation<Void, Never>] {
        lock.withLock {
            opened = true
            defer { waiters = [] }
            return waiters
        }
    }

    /// False when the gate is already open (the caller resumes at once).
    func enqueue(_ waiter: CheckedContinuation<Void, Never>) -> Bool {
        lock.withLock {
            guard !opened else { return false }
            waiters.append(waiter)
            return true
        }
    }
}
