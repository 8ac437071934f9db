import Synchronization

/// Lets concurrent callers share one transaction (group commit): a caller that finds none
/// running applies its items at once; callers that arrive while one runs wait, and the next
/// of them then applies everything that waited, up to `maxItems`, in one go. So an idle
/// system adds no wait, and a busy one pays one transaction (one commit, one WAL flush) for
/// many callers instead of one each.
///
/// `apply` answers one outcome per item, in order, or nil when the shared transaction failed
/// (it rolled back): every caller of that round then gets nil, and typically applies its own
/// items on its own, so one bad item costs the others a retry, never their result.
public final class GroupCommit<Item: Sendable, Outcome: Sendable>: Sendable {
    private enum Turn {
        case done([Outcome]?)
        case lead
    }

    private struct Waiter {
        let items: [Item]
        let continuation: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var waiting: [Waiter] = []
        var leading = false
    }

    private let state = Mutex(State())
    private let maxItems: Int
    private let apply: @Sendable ([Item]) async -> [Outcome]?

    public init(maxItems: Int, apply: @escaping @Sendable ([Item]) async -> [Outcome]?) {
        self.maxItems = max(1, maxItems)
        self.apply = apply
    }

    /// Applies `items` with whatever else waits; answers their outcomes, in order, or nil.
    public func run(_ items: [Item]) async -> [Outcome]? {
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let leads = state.withLock { state in
                guard state.leading else {
                    state.leading = true
                    return true
                }
                state.waiting.append(Waiter(items: items, continuation: continuation))
                return false
            }
            if leads { continuation.resume(returning: .lead) }
        }
        switch turn {
        case .done(let outcomes): return outcomes
        case .lead: return await lead(items)
        }
    }

    /// Callers waiting for a round, for tests.
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Applies `own` and the callers waiting (up to `maxItems`, at least `own`), answers
    /// them, and hands the lead to the first caller left waiting, if any.
    private func lead(_ own: [Item]) async -> [Outcome]? {
        let joined = state.withLock { state -> [Waiter] in
            var count = own.count
            var taken = 0
            while taken < state.waiting.count, count + state.waiting[taken].items.count <= maxItems {
                count += state.waiting[taken].items.count
                taken += 1
            }
            defer { state.waiting.removeFirst(taken) }
            return Array(state.waiting.prefix(taken))
        }
        let items = own + joined.flatMap(\.items)
        let outcomes = await apply(items).flatMap { $0.count == items.count ? $0 : nil }
        var start = own.count
        for waiter in joined {
            let end = start + waiter.items.count
            waiter.continuation.resume(returning: .done(outcomes.map { Array($0[start..<end]) }))
            start = end
        }
        let next = state.withLock { state -> Waiter? in
            guard !state.waiting.isEmpty else {
                state.leading = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.continuation.resume(returning: .lead)
        return outcomes.map { Array($0[0..<own.count]) }
    }
}
