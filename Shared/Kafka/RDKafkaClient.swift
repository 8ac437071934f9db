import CRdKafka
import Foundation

/// Owns one `rd_kafka_t` and destroys it when the last reference goes. Every C call the
/// producer, consumer and mock cluster make goes through a handle of this type.
final class RDKafkaClient: @unchecked Sendable {
    // Safe to share: librdkafka handles are thread-safe for the calls made through them.
    let pointer: OpaquePointer

    init(type: rd_kafka_type_t, conf: OpaquePointer) throws {
        var errorText = [CChar](repeating: 0, count: 512)
        guard let pointer = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            let reason = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KafkaError(.clientCreation, reason)
        }
        self.pointer = pointer
    }

    deinit {
        // rd_kafka_destroy joins librdkafka's threads and may wait on the network (or, for a
        // consumer, on a rebalance callback): never on the caller's thread, which is often
        // one of the cooperative pool's few.
        let handle = UnsafeHandle(pointer)
        Thread.detachNewThread { rd_kafka_destroy(handle.pointer) }
    }
}

/// A C handle handed to the one thread that destroys it.
struct UnsafeHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// Runs a blocking loop on its own thread, never on Swift's cooperative pool.
final class BlockingLoopThread: @unchecked Sendable {
    private let lock = NSLock()
    private var stopRequested = false
    private let finished = DispatchSemaphore(value: 0)

    /// Starts `body` on a new thread; `body` is called with a check that turns true once
    /// `requestStop()` was called, and must return soon after.
    init(name: String, body: @escaping @Sendable (_ shouldStop: @Sendable () -> Bool) -> Void) {
        let thread = Thread { [self] in
            body { self.isStopRequested }
            self.finished.signal()
        }
        thread.name = name
        thread.start()
    }

    private var isStopRequested: Bool {
        lock.withLock { stopRequested }
    }

    func requestStop() {
        lock.withLock { stopRequested = true }
    }

    /// Waits for the loop to end without blocking a cooperative thread.
    func join() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.finished.wait()
                self.finished.signal()  // later joins return at once too
                continuation.resume()
            }
        }
    }
}

/// Runs one blocking C call on a Dispatch thread and awaits its result.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}
