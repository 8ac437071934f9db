import Contracts
import Foundation
import Metrics
import PostgresNIO
import ServiceKit

/// The `http_calls` table as `HTTPTaskWorker` works it: calls are queued by a workflow's
/// save (`WorkflowRepository`), leased here (a crashed worker's come back when the lease
/// ends) and removed once their answer is recorded.
struct HTTPCallQueue: Sendable {
    let database: Database

    /// One queued call, as leased.
    struct Call: Sendable {
        let id: Int64
        let isCallback: Bool
        let tries: Int
        let workflowID: WorkflowID
        let step: String
        let attempt: Int
        let compensation: Bool
        let request: HTTPTaskRequest
    }

    /// Leases up to `limit` calls that are due, oldest first, for their timeout and 30 s. A
    /// call whose request cannot be read is left leased and logged (it comes back when the
    /// lease ends): it must not take the calls leased with it down.
    func lease(limit: Int) async throws -> [Call] {
        try await database.transaction { transaction in
            let rows = try await transaction.query(
                """
                UPDATE http_calls SET leased_until = now() + make_interval(secs => ((request->>'timeout_seconds')::int + 30))
                WHERE id IN (SELECT id FROM http_calls WHERE leased_until IS NULL OR leased_until < now()
                             ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING id, kind, tries, workflow_id, step, attempt, compensation, request::text
                """)
            var calls: [Call] = []
            for try await (id, kind, tries, workflowID, step, attempt, compensation, request) in rows.decode(
                (Int64, String, Int, WorkflowID, String, Int, Bool, String).self)
            {
                let decoded: HTTPTaskRequest
                do {
                    decoded = try WireCoding.decode(HTTPTaskRequest.self, from: Array(request.utf8))
                } catch {
                    transaction.logger.error(
                        "Queued http call cannot be read; left until its lease ends",
                        metadata: ["http_call.id": "\(id)", LoggingKeys.workflowID: "\(workflowID)", LoggingKeys.error: "\(ErrorText.describe(error))"])
                    Counter(label: "hitl_http_calls_unreadable_total").increment()
                    continue
                }
                calls.append(
                    Call(
                        id: id, isCallback: kind == "callback", tries: tries, workflowID: workflowID, step: step, attempt: attempt, compensation: compensation,
                        request: decoded))
            }
            return calls
        }
    }

    /// Removes a call whose answer is recorded in `transaction`.
    func remove(_ call: Call, in transaction: Transaction) async throws {
        try await transaction.query("DELETE FROM http_calls WHERE id = \(call.id)")
    }

    /// Gives up on a callback, noting why in its workflow's history.
    func giveUp(_ call: Call, error: String, tries: Int, in transaction: Transaction) async throws {
        try await remove(call, in: transaction)
        // Under the workflow's row lock, as every other history entry: entries then commit in
        // the order of their ids, which the live event streams read by.
        try await transaction.query("SELECT 1 FROM workflows WHERE id = \(call.workflowID) FOR UPDATE")
        let detail = try JSONColumn.text(["url": JSONValue.string(call.request.url), "error": .string(error), "attempts": .number(Double(tries))])
        try await transaction.query(
            """
            INSERT INTO workflow_history (workflow_id, event, actor, detail)
            VALUES (\(call.workflowID), 'callback_failed', 'orchestrator', \(detail)::jsonb)
            """)
    }

    /// Leaves a failed call for another try in `wait` seconds.
    func retry(_ call: Call, tries: Int, in wait: Double, in transaction: Transaction) async throws {
        try await transaction.query("UPDATE http_calls SET tries = \(tries), leased_until = now() + make_interval(secs => \(wait)) WHERE id = \(call.id)")
    }
}
