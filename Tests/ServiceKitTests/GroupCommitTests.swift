import ServiceKitTesting
import Synchronization
import Testing

@testable import ServiceKit

@Suite struct GroupCommitTests {
    /// Records what each round applied; the first round waits until `gate` opens.
    final class Rounds: Sendable {
        let applied = Mutex<[[Int]]>([])
        let gate = Mutex(false)
    }

    @Test func callersArrivingDuringARoundShareTheNextAndEachGetsItsOwnOutcomes() async throws {
        let rounds = Rounds()
        let commit = GroupCommit<Int, Int>(maxItems: 100) { items in
            rounds.applied.withLock { $0.append(items) }
            while !rounds.gate.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
            return items.map { $0 * 10 }
        }
        async let first = commit.run([1])
        try await waitUntil("the first round running") { rounds.applied.withLock { $0.count } == 1 }
        async let second = commit.run([2, 3])
        async let third = commit.run([4])
        async let fourth = commit.run([5, 6, 7])
        try await waitUntil("three callers waiting") { commit.waitingCount == 3 }
        rounds.gate.withLock { $0 = true }
        let outcomes = await [first, second, third, fourth]
        #expect(outcomes == [[10], [20, 30], [40], [50, 60, 70]])
        // An idle commit applied the first caller alone and at once; the three that came
        // while it ran shared one round.
        let applied = rounds.applied.withLock { $0 }
        #expect(applied.count == 2)
        #expect(applied.first == [1])
        #expect(Set(applied.last ?? []) == [2, 3, 4, 5, 6, 7])
    }

    @Test func aFailedRoundAnswersNilToEveryoneInItAndARoundNeverExceedsItsSize() async throws {
        let rounds = Rounds()
        let commit = GroupCommit<Int, Int>(maxItems: 3) { items in
            rounds.applied.withLock { $0.append(items) }
            while !rounds.gate.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
            return items.contains(0) ? nil : items
        }
        async let first = commit.run([9])
        try await waitUntil("the first round running") { rounds.applied.withLock { $0.count } == 1 }
        // In this order: the poisoned caller leads the next round, which has room for one more.
        async let poisoned = commit.run([0, 1])
        try await waitUntil("one caller waiting") { commit.waitingCount == 1 }
        async let alongside = commit.run([2])
        try await waitUntil("two callers waiting") { commit.waitingCount == 2 }
        async let later = commit.run([3, 4])
        try await waitUntil("three callers waiting") { commit.waitingCount == 3 }
        rounds.gate.withLock { $0 = true }
        let (a, b, c, d) = await (first, poisoned, alongside, later)
        #expect(a == [9])
        #expect(b == nil && c == nil)  // rolled back together
        #expect(d == [3, 4])  // the next round, which the poison was not in
        #expect(rounds.applied.withLock { $0 }.allSatisfy { $0.count <= 3 })
        // A caller with more items than a round holds still gets its round.
        let large = await commit.run([5, 6, 7, 8])
        #expect(large == [5, 6, 7, 8])
    }
}
