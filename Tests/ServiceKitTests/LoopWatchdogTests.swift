import Foundation
import Logging
import ServiceKit
import ServiceKitTesting
import Testing

/// A loop that stops making progress while work waits is restarted and reported; one that
/// is idle because there is nothing to do is left alone.
@Suite struct LoopWatchdogTests {
    actor Starts {
        var value = 0
        func next() -> Int {
            value += 1
            return value
        }
    }

    @Test func aLoopStuckInACallThatNeverAnswersIsRestartedWhileWorkWaits() async throws {
        let watchdog = LoopWatchdog()
        let starts = Starts()
        let supervisor = Task {
            await watchdog.supervise("stuck loop", stallAfter: .seconds(1), logger: Logger(label: "test"), isWorkWaiting: { true }) { heartbeat in
                let start = await starts.next()
                await heartbeat.beat()
                if start == 1 {
                    // A call that never answers, and ignores cancellation.
                    await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
                }
                while !Task.isCancelled {
                    await heartbeat.beat()
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        try await waitUntil("the stuck loop to be restarted", timeout: .seconds(10)) { await starts.value >= 2 }
        try await waitUntil("the restarted loop to count as healthy", timeout: .seconds(5)) { await watchdog.stalledLoops().isEmpty }
        supervisor.cancel()
        await supervisor.value
        #expect(await starts.value >= 2)  // a loaded machine may be slow to beat after the restart, too
    }

    @Test func anIdleLoopIsNotRestartedButAStuckOneIsReported() async throws {
        let watchdog = LoopWatchdog()
        let starts = Starts()
        let supervisor = Task {
            await watchdog.supervise("quiet loop", stallAfter: .seconds(1), logger: Logger(label: "test"), isWorkWaiting: { false }) { _ in
                _ = await starts.next()
                await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
            }
        }
        try await waitUntil("the loop to start", timeout: .seconds(10)) { await starts.value == 1 }
        try await waitUntil("the silent loop to be reported", timeout: .seconds(10)) { await watchdog.stalledLoops() == ["quiet loop"] }
        // Reported, but with no work waiting it is not started again.
        try await Task.sleep(for: .seconds(1))
        #expect(await starts.value == 1)
        supervisor.cancel()
        await supervisor.value
    }
}
