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

    /// Items to claim, in rounds, and what was handled.
    actor Work {
        var rounds: [[String]]
        var claims = 0
        var handled: [String] = []
        var slowReleased = false

        init(_ rounds: [[String]]) { self.rounds = rounds }

        func claim(_ limit: Int) -> [String] {
            claims += 1
            guard !rounds.isEmpty else { return [] }
            let round = rounds.removeFirst()
            return Array(round.prefix(limit))
        }

        func handle(_ item: String) { handled.append(item) }
        func release() { slowReleased = true }
    }

    /// A leased loop under `LeasedWorkLoop`, as the workers run it.
    struct LeasedLoop: SupervisedLoop {
        let work: Work
        let hangFirstClaim: Bool
        let starts: Starts
        var name: String { "leased" }
        var stallAfter: Duration { .seconds(1) }

        func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
            let start = await starts.next()
            await LeasedWorkLoop.run(
                "test", slots: 4, wakeup: Wakeup(), idle: .milliseconds(50), heartbeat: heartbeat, logger: Logger(label: "test"),
                claim: { [work] limit in
                    if hangFirstClaim, start == 1 {
                        // A statement that is never answered, and ignores cancellation.
                        await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
                    }
                    return await work.claim(limit)
                },
                handle: { [work] item in
                    if item == "slow" {
                        while await !work.slowReleased, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                    }
                    await work.handle(item)
                })
        }
    }

    @Test func aSlowItemHoldsOnlyItsOwnSlotNotTheNextClaim() async throws {
        let work = Work([["slow"], ["a", "b"], ["c"]])
        let loop = LeasedLoop(work: work, hangFirstClaim: false, starts: Starts())
        let run = Task { try await SupervisedService(loop: loop, watchdog: LoopWatchdog(), logger: Logger(label: "test")).run() }
        try await waitUntil("the items after the slow one", timeout: .seconds(10)) { await work.handled == ["a", "b", "c"] }
        await work.release()
        try await waitUntil("the slow one", timeout: .seconds(10)) { await work.handled.count == 4 }
        run.cancel()
        _ = try? await run.value
    }

    @Test func aLeasedLoopStuckInAClaimIsRestarted() async throws {
        let work = Work([["a"]])
        let starts = Starts()
        let watchdog = LoopWatchdog()
        let loop = LeasedLoop(work: work, hangFirstClaim: true, starts: starts)
        let run = Task { try await SupervisedService(loop: loop, watchdog: watchdog, logger: Logger(label: "test")).run() }
        try await waitUntil("the stuck loop restarted", timeout: .seconds(10)) { await starts.value >= 2 }
        try await waitUntil("the item handled by the restarted loop", timeout: .seconds(10)) { await work.handled == ["a"] }
        #expect(await starts.value >= 2)
        run.cancel()
        _ = try? await run.value
    }
}
