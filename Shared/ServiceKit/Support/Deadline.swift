import Foundation
import Synchronization

/// Waits for an operation at most so long, without waiting for it to end: a task group would
/// wait for a child that never answers (PostgresNIO's wait for a server that is gone cannot
/// be cancelled), so the operation runs in a task of its own and is left to finish, or not,
/// in the background.
public enum Deadline {
    /// The operation's result, or nil when it had not answered within `timeout`.
    public static func value<T: Sendable>(within timeout: Duration, _ operation: @escaping @Sendable () async throws -> T) async -> Result<T, any Error>? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>?, Never>) in
            let once = ResumeOnce(continuation)
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await operation()) } catch { result = .failure(error) }
                once.resume(returning: result)
            }
            Task {
                try? await Task.sleep(for: timeout)
                once.resume(returning: nil)
            }
        }
    }
}

/// Resumes a continuation the first time only.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>

    init(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(returning value: T) {
        continuation.withLock { pending in
            defer { pending = nil }
            return pending
        }?.resume(returning: value)
    }
}
