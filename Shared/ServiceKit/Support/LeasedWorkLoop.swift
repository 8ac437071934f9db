import Logging
import ServiceLifecycle

/// The loop of a worker over leased rows (deliveries, http calls, fallback jobs): claim a
/// batch, handle its items concurrently, and when there was nothing, sleep until woken or
/// `idle` passed. A failing claim is logged and retried a second later; the loop ends on
/// graceful shutdown or cancellation. Leases make a crashed worker's items come back.
public enum LeasedWorkLoop {
    public static func run<Item: Sendable>(
        _ name: String, wakeup: Wakeup, idle: Duration, logger: Logger,
        claim: @escaping @Sendable () async throws -> [Item], handle: @escaping @Sendable (Item) async -> Void
    ) async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let items = try await claim()
                    if items.isEmpty {
                        await wakeup.wait(timeout: idle)
                        continue
                    }
                    await withTaskGroup(of: Void.self) { group in
                        for item in items { group.addTask { await handle(item) } }
                    }
                } catch {
                    if Task.isCancelled { break }
                    logger.warning("\(name) loop failed; retrying", metadata: ["error": "\(ErrorText.describe(error))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }
}
