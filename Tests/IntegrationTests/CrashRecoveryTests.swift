import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// `kill -9` of each service in turn in the middle of a batch: every workflow still ends
/// exactly once, in the state its decision (or its deadline) calls for.
@Suite(.serialized, .timeLimit(.minutes(15))) struct CrashRecoveryTests {
    @Test func killingEachServiceMidBatchLosesNothingAndAppliesNothingTwice() async throws {
        try await Stack.with { stack in
            enum Plan: String { case approve, reject, expire }
            var plans: [String: Plan] = [:]
            var expected: [String: String] = [:]
            let services = LocalStack.executables.map(\.0)
            for round in 0..<services.count {
                // A batch per round; the round's service is killed while the batch is in flight.
                var batch: [(String, Plan)] = []
                for index in 0..<9 {
                    let plan: Plan = [.approve, .reject, .expire][index % 3]
                    let answer = try await Self.submitRetrying(stack, API.workflow(key: "crash-\(round)-\(index)", timeout: plan == .expire ? 4 : 3600))
                    let id = try #require(answer.string("id"), "\(answer.text)")
                    plans[id] = plan
                    expected[id] = ["approve": "completed", "reject": "rejected", "expire": "timed_out"][plan.rawValue]
                    batch.append((id, plan))
                }
                let victim = stack.local[services[round]]
                victim.kill9()
                try await Task.sleep(for: .milliseconds(500))
                try victim.start()
                try await victim.waitUntilReady()
                for (id, plan) in batch where plan != .expire {
                    let approvalID = try await stack.pendingApproval(of: id, timeout: .seconds(60))
                    let answer = try await Self.decideRetrying(stack, approvalID, plan == .approve ? "approve" : "reject")
                    #expect(answer == 200 || answer == 409)
                }
            }
            // Kill one more time while decisions are being applied.
            stack.local["orchestrator"].kill9()
            try stack.local["orchestrator"].start()
            try await stack.local["orchestrator"].waitUntilReady()

            try await stack.expectEachEndedOnce(expected)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == expected.count)
        }
    }

    /// The orchestrator may be the one that is down: retry until it answers.
    static func submitRetrying(_ stack: Stack, _ json: String) async throws -> Answer {
        var answer: Answer?
        try await waitUntil("the orchestrator to accept the submission", timeout: .seconds(60)) {
            answer = try? await stack.submit(json)
            return answer.map { $0.status == 201 || $0.status == 200 } ?? false
        }
        return answer!
    }

    static func decideRetrying(_ stack: Stack, _ approvalID: String, _ decision: String) async throws -> Int {
        var status = 0
        try await waitUntil("the approval service to take the decision", timeout: .seconds(60)) {
            status = (try? await stack.decide(approvalID, decision).status) ?? 0
            return status == 200 || status == 409
        }
        return status
    }
}

extension Stack {
    /// Every workflow of `expected` (id → final status) ends in that status, exactly once:
    /// one final history entry and one distinct final event each.
    func expectEachEndedOnce(_ expected: [String: String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await waitUntil("every workflow to end", timeout: .seconds(120), every: .milliseconds(500)) {
            let rows = try await sql("SELECT id::text, status FROM orchestrator.workflows")
            let states = try Dictionary(uniqueKeysWithValues: rows.map { try $0.decode((String, String).self) })
            return expected.allSatisfy { states[$0.key] == $0.value }
        }
        let finals = try await sql(
            """
            SELECT workflow_id::text, count(*)::int FROM orchestrator.workflow_history
            WHERE to_status IN ('completed', 'rejected', 'timed_out') AND event <> 'step_completed' GROUP BY workflow_id
            """)
        let counts = try Dictionary(uniqueKeysWithValues: finals.map { try $0.decode((String, Int).self) })
        #expect(counts.count == expected.count, sourceLocation: sourceLocation)
        #expect(counts.values.allSatisfy { $0 == 1 }, sourceLocation: sourceLocation)
        let events = try await events(on: .workflowEvents)
        let terminal: Set<EventType> = [.workflowCompleted, .workflowRejected, .workflowTimedOut]
        var distinct: [String: Set<String>] = [:]
        for event in events where terminal.contains(event.type) { distinct[event.subject, default: []].insert(event.id) }
        #expect(distinct.count == expected.count, sourceLocation: sourceLocation)
        #expect(distinct.values.allSatisfy { $0.count == 1 }, sourceLocation: sourceLocation)
    }
}
