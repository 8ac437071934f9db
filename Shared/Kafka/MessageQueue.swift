import Foundation
import Synchronization

/// An unbounded hand-off of records to one consumer task that, unlike `AsyncStream`, is
/// not ended by cancellation: `next()` returns nil only after `finish()`, once every
/// pushed record was taken. The consumer relies on that to account for every record it
/// polled (its in-flight count and its drain on close); the caller bounds the buffer.
final class MessageQueue: Sendable {
    private struct State {
        var buffer: [KafkaMessage] = []
        var head = 0
        var finished = false
        var waiter: CheckedContinuation<KafkaMessage?, Never>?

        /// Drops the records already taken once they are most of the buffer.
        mutating func compact() {
            if head > 1024 && head * 2 > buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
        }
    }

    private let state = Mutex(State())

    func push(_ message: KafkaMessage) {
        let resume = state.withLock { state -> CheckedContinuation<KafkaMessage?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.buffer.append(message)
            return nil
        }
        resume?.resume(returning: message)
    }

    func finish() {
        let resume = state.withLock { state -> CheckedContinuation<KafkaMessage?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        resume?.resume(returning: nil)
    }

    /// The next record, waiting for one; nil once finished and empty.
    func next() async -> KafkaMessage? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> (Bool, KafkaMessage?) in
                if state.head < state.buffer.count {
                    let message = state.buffer[state.head]
                    state.head += 1
                    state.compact()
                    return (true, message)
                }
                if state.finished { return (true, nil) }
                state.waiter = continuation
                return (false, nil)
            }
            if ready.0 { continuation.resume(returning: ready.1) }
        }
    }

    /// The next records, up to `max`: waits for one, then takes those already waiting
    /// behind it; empty once finished and empty.
    func nextBatch(max: Int) async -> [KafkaMessage] {
        guard let first = await next() else { return [] }
        return state.withLock { state in
            let end = min(state.buffer.count, state.head + max - 1)
            let rest = Array(state.buffer[state.head..<end])
            state.head = end
            state.compact()
            return [first] + rest
        }
    }
}
