import Contracts
import Logging
import ServiceKit

/// Submissions over HTTP that arrive together share a transaction (`GroupCommit`): an idle
/// orchestrator applies a submission at once, a busy one applies the ones that waited in the
/// next round, with one BEGIN, one COMMIT and one WAL flush for all of them. Each request
/// still gets its own answer: a refusal (`Submissions.Invalid`, `GateApplication.Refused`)
/// is found before the submission writes anything, so it is that request's answer and the
/// others go on; any other failure rolls the round back and every request of it is applied
/// again on its own, so one bad request costs the others a retry, never their result.
struct SharedSubmissions: Sendable {
    struct Item: Sendable {
        let submission: WorkflowSubmitted
        let byAdmin: Bool
    }

    private let database: Database
    private let submissions: Submissions
    private let rounds: GroupCommit<Item, Result<WorkflowEngine.SubmitOutcome, any Error>>

    init(database: Database, submissions: Submissions, maxPerRound: Int = 32) {
        self.database = database
        self.submissions = submissions
        rounds = GroupCommit(maxItems: maxPerRound) { items in
            try? await database.transaction { transaction in
                var outcomes: [Result<WorkflowEngine.SubmitOutcome, any Error>] = []
                for item in items {
                    do {
                        outcomes.append(.success(try await submissions.submit(item.submission, byAdmin: item.byAdmin, in: transaction)))
                    } catch let refusal where Self.isRefusal(refusal) {
                        outcomes.append(.failure(refusal))
                    }
                }
                return outcomes
            }
        }
    }

    /// Submits `submission` in the next round, or on its own when that round failed.
    func submit(_ submission: WorkflowSubmitted, byAdmin: Bool, logger: Logger) async throws -> WorkflowEngine.SubmitOutcome {
        if let outcome = await rounds.run([Item(submission: submission, byAdmin: byAdmin)])?.first { return try outcome.get() }
        return try await database.transaction(logger: logger) { transaction in
            try await submissions.submit(submission, byAdmin: byAdmin, in: transaction)
        }
    }

    /// The refusals `Submissions.submit` throws before its submission wrote anything.
    private static func isRefusal(_ error: any Error) -> Bool {
        error is Submissions.Invalid || error is GateApplication.Refused
    }
}
