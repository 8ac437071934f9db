import CRdKafka
import Foundation
import NIOPosix
import Synchronization

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
final class BlockingLoopThread: Sendable {
    private struct State {
        var stopRequested = false
        var finished = false
        var joiners: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Starts `body` on a new thread; `body` is called with a check that turns true once
    /// `requestStop()` was called, and must return soon after.
    init(name: String, body: @escaping @Sendable (_ shouldStop: @Sendable () -> Bool) -> Void) {
        let thread = Thread { [self] in
            body { self.state.withLock { $0.stopRequested } }
            let joiners = self.state.withLock { state in
                state.finished = true
                defer { state.joiners = [] }
                return state.joiners
            }
            for joiner in joiners { joiner.resume() }
        }
        thread.name = name
        thread.start()
    }

    func requestStop() {
        state.withLock { $0.stopRequested = true }
    }

    /// Waits for the loop to end; no thread is blocked meanwhile.
    func join() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                if !state.finished { state.joiners.append(continuation) }
                return state.finished
            }
            if done { continuation.resume() }
        }
    }
}

/// Blocking librdkafka calls (a flush, a metadata request) run on a small pool of their
/// own: a call that blocks for its whole timeout holds neither a cooperative thread nor a
/// thread of NIO's shared pool, which file I/O and DNS use.
private let blockingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 2)
    pool.start()
    return pool
}()

/// Runs one blocking C call on the blocking pool and awaits its result.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    do {
        return try await blockingPool.runIfActive(body)
    } catch {
        // The pool is never shut down, so this is not reached; if it were, the call
        // still has to be made.
        return body()
    }
}
