import Logging
import ServiceLifecycle
import Synchronization

/// The loop of a worker over leased rows (deliveries, http calls, fallback jobs): claim up
/// to as many items as there are free slots, handle each in a task of its own, and when
/// there was nothing (or no slot is free), sleep until woken, a slot frees, or `idle`
/// passed. A slow item holds only its own slot, never the next claim. A failing claim is
/// logged and retried a second later; the loop ends on graceful shutdown or cancellation,
/// which cancels the items in hand (their leases make them come back, as a crash would).
///
/// While items are in hand it claims again only once half the slots are free, so claims
/// stay batches (one transaction for many rows) rather than one per finished item.
///
/// The loop beats `heartbeat` on every pass, idle or busy, so a late loop is one stuck in
/// a claim that never answers, and the watchdog restarts it.
public enum LeasedWorkLoop {
    public static func run<Item: Sendable>(
        _ name: String, slots: Int, wakeup: Wakeup, idle: Duration, heartbeat: LoopWatchdog.Heartbeat, logger: Logger,
        claim: @escaping @Sendable (_ limit: Int) async throws -> [Item], handle: @escaping @Sendable (Item) async -> Void
    ) async {
        let inHand = InHand()
        let freed = Wakeup()
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    await heartbeat.beat()
                    let held = inHand.count.load(ordering: .acquiring)
                    let free = slots - held
                    guard free > 0, held == 0 || free * 2 >= slots else {
                        await freed.wait(timeout: idle)
                        continue
                    }
                    do {
                        let items = try await claim(free)
                        if items.isEmpty {
                            await wakeup.wait(timeout: idle)
                            continue
                        }
                        inHand.count.add(items.count, ordering: .acquiringAndReleasing)
                        for item in items {
                            group.addTask {
                                await handle(item)
                                inHand.count.subtract(1, ordering: .acquiringAndReleasing)
                                freed.signal()
                            }
                        }
                    } catch {
                        if Task.isCancelled { break }
                        logger.warning("\(name) loop failed; retrying", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
        }
    }
}

/// How many claimed items are being handled.
private final class InHand: Sendable {
    let count = Atomic<Int>(0)
}
