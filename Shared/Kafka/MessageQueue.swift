import Foundation

/// An unbounded hand-off of records to one consumer task that, unlike `AsyncStream`, is
/// not ended by cancellation: `next()` returns nil only after `finish()`, once every
/// pushed record was taken. The consumer relies on that to account for every record it
/// polled (its in-flight count and its drain on close); the caller bounds the buffer.
final class MessageQueue: @unchecked Sendable {
    // All state behind `lock`.
    private let lock = NSLock()
    private var buffer: [KafkaMessage] = []
    private var head = 0
    private var finished = false
    private var waiter: CheckedContinuation<KafkaMessage?, Never>?

    func push(_ message: KafkaMessage) {
        let resume = lock.withLock { () -> CheckedContinuation<KafkaMessage?, Never>? in
            if let waiter {
                self.waiter = nil
                return waiter
            }
            buffer.append(message)
            return nil
        }
        resume?.resume(returning: message)
    }

    func finish() {
        let resume = lock.withLock { () -> CheckedContinuation<KafkaMessage?, Never>? in
            finished = true
            defer { waiter = nil }
            return waiter
        }
        resume?.resume(returning: nil)
    }

    /// The next record, waiting for one; nil once finished and empty.
    func next() async -> KafkaMessage? {
        await withCheckedContinuation { continuation in
            let ready = lock.withLock { () -> (Bool, KafkaMessage?) in
                if head < buffer.count {
                    let message = buffer[head]
                    head += 1
                    compact()
                    return (true, message)
                }
                if finished { return (true, nil) }
                waiter = continuation
                return (false, nil)
            }
            if ready.0 { continuation.resume(returning: ready.1) }
        }
    }

    /// The next records, up to `max`: waits for one, then takes those already waiting
    /// behind it; empty once finished and empty.
    func nextBatch(max: Int) async -> [KafkaMessage] {
        guard let first = await next() else { return [] }
        return lock.withLock {
            let end = min(buffer.count, head + max - 1)
            let rest = Array(buffer[head..<end])
            head = end
            compact()
            return [first] + rest
        }
    }

    /// Drops the records already taken once they are most of the buffer (under `lock`).
    private func compact() {
        if head > 1024 && head * 2 > buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
    }
}
