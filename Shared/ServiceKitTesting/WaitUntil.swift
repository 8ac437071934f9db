import DevStack

/// Polls `condition` until it holds; throws `StackError` naming `what` after `timeout`.
public func waitUntil(_ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool)
    async throws
{
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    throw StackError("timed out after \(timeout) waiting for \(what)")
}
