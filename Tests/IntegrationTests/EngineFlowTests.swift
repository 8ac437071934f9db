import Contracts
import Foundation
import ServiceKitTesting
import Testing

@testable import OrchestratorService

/// Multi-step workflows over the four real service processes: a few flows end to end, with
/// answers over HTTP and Kafka, the cancel that reaches the approval and timeout services,
/// ops' replay, and the history rebuilding the state. The engine's rules themselves are
/// checked offline (`OrchestratorTests.EngineFlowOfflineTests`).
@Suite(.serialized, .timeLimit(.minutes(10))) struct EngineFlowTests {
    @Test func taskApprovalTaskCarriesOutputsIgnoresStaleAnswersAndRebuildsFromHistory() async throws {
        try await Stack.with { stack in
            let id = try await stack.submit(key: "three", input: #"{"amount":6000}"#, steps: Definitions.draftApproveExecute)
            _ = try await stack.waitForStep(id, "draft", "running")
            #expect(try await stack.answer(id, step: "draft", output: #"{"plan":"pay in two parts"}"#).status == 200)
            let approvalID = try await stack.pendingApproval(of: id)
            // A duplicate of the same answer, and one for an attempt that never was.
            #expect(try await stack.answer(id, step: "draft", attempt: 1, output: #"{"plan":"again"}"#).status == 200)
            #expect(try await stack.answer(id, step: "draft", attempt: 7).status == 200)
            #expect(try await stack.decide(approvalID, "approve", comment: "fine by me").status == 200)
            _ = try await stack.waitForStep(id, "execute", "running")

            let requests = try await stack.taskRequests(of: id) { $0.contains { $0.step == "execute" } }
            let execute = try #require(requests.first { $0.step == "execute" })
            #expect(execute.outputs["draft"] == .object(["plan": "pay in two parts"]))
            #expect(execute.agent == "payer" && execute.attempt == 1 && !execute.compensation)
            // The last answer comes on hitl.task.results, as a Kafka agent would send it.
            try await stack.publish(
                TaskResult(
                    workflowId: id, step: "execute", attempt: 1, outcome: .succeeded, output: ["receipt": "r-1"], worker: "payer-1", token: execute.token),
                to: .taskResults, subject: id)
            try await stack.waitForStatus(id, "completed")

            let history = try await stack.history(id)
            #expect(history.filter { $0.event == "stale_result_ignored" }.count == 2)
            #expect(history.first { $0.step == "execute" && $0.event == "step_completed" }?.actor == "agent:payer-1")
            #expect(try await stack.step(id, "draft")["output"] == .object(["plan": "pay in two parts"]))
            try await stack.expectHistoryRebuildsState(id)
            // The conversation holds the approver's comment and the status notes, in order.
            let thread = try await API.get("\(stack.orchestrator)/v1/workflows/\(id)/messages")
            #expect(thread.items.contains { $0["kind"] == "approver" && $0["text"] == "fine by me" })
            #expect(thread.items.last?["text"] == "Status completed")
            let agent = TestTokens.agent("agent@bank.example")
            let posted = try await API.post("\(stack.orchestrator)/v1/workflows/\(id)/messages", #"{"text":"thanks"}"#, token: agent)
            #expect(posted.status == 201 && posted.string("author") == "agent@bank.example" && posted.string("kind") == "agent")
            #expect(try await API.post("\(stack.orchestrator)/v1/workflows/\(id)/messages", #"{"text":""}"#, token: agent).status == 400)
        }
    }

    @Test func aCompensationThatKeepsFailingWaitsForOpsOnTheDeadLetterPathAndAReplayRetriesIt() async throws {
        try await Stack.with { stack in
            let steps = #"""
                [{"name":"reserve","kind":"task","task":{"type":"noop"},"retry":{"max_attempts":2,"backoff_seconds":0.2},"compensate":{"type":"agent"}},
                 {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]
                """#
            let id = try await stack.submit(key: "stuck", input: "{}", steps: steps)
            let approvalID = try await stack.pendingApproval(of: id)
            #expect(try await stack.decide(approvalID, "reject").status == 200)
            try await waitUntil("the compensation") { try await stack.step(id, "reserve")["compensation"] == "running" }
            try await stack.answer(id, step: "reserve", attempt: 1, compensation: true, outcome: "failed", error: "refund refused")
            try await waitUntil("the second compensation attempt") { try await stack.step(id, "reserve")["compensation"] == "running" }
            try await stack.answer(id, step: "reserve", attempt: 2, compensation: true, outcome: "failed", error: "refund refused again")
            try await stack.waitForStatus(id, "compensation_failed")
            #expect(try await stack.workflow(id).string("reason") == "rejected by manager@bank.example: ok")

            // Ops find it among the dead letters and replay it: the compensation runs again.
            var letterID = ""
            try await waitUntil("the dead letter") {
                let listed = try await API.get("\(stack.orchestrator)/v1/dead-letters?error=refund")
                if case .object(let record)? = listed.items.first?["dead_letter"], case .string(let found)? = record["dead_letter_id"] {
                    letterID = found
                    #expect(record["error"] == "compensation of step reserve failed after 2 attempts: refund refused again")
                }
                return !letterID.isEmpty
            }
            _ = try stack.hitl(["dlq", "replay", letterID, "--by", "ops@bank.example"])
            try await stack.waitForStatus(id, "compensating")
            try await waitUntil("the third compensation attempt") { try await stack.step(id, "reserve")["compensation"] == "running" }
            try await stack.answer(id, step: "reserve", attempt: 3, compensation: true)
            try await stack.waitForStatus(id, "rejected")
            let events = try await stack.events(id)
            #expect(events.contains("compensation_failed") && events.contains("compensation_retried") && events.last == "rejected")
            try await stack.expectHistoryRebuildsState(id)
        }
    }

    @Test func cancelMidWaitCancelsTheApprovalAndItsDeadlineAndRunsCompensations() async throws {
        try await Stack.with { stack in
            let steps = #"""
                [{"name":"reserve","kind":"task","task":{"type":"noop"},"compensate":{"type":"noop"}},
                 {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]
                """#
            let id = try await stack.submit(key: "cancel", input: "{}", steps: steps)
            let approvalID = try await stack.pendingApproval(of: id)
            // The same control request as an event on hitl.workflow.requests.
            try await stack.publish(
                WorkflowControlRequested(workflowId: id, action: .cancel, requestedBy: "agent-7", reason: "customer withdrew"), to: .workflowRequests,
                subject: id)
            try await stack.waitForStatus(id, "cancelled")
            try await waitUntil("the approval to be cancelled") {
                try await API.get("\(stack.approval)/v1/approvals/\(approvalID)").string("status") == "cancelled"
            }
            try await waitUntil("the deadline timer to be cancelled") {
                try await stack.count("SELECT count(*)::int FROM timeout.timers WHERE status = 'cancelled'") == 1
            }
            let late = try await stack.decide(approvalID, "approve")
            #expect(late.status == 409 && late.string("error") == "approval_cancelled")
            let events = try await stack.events(id)
            #expect(events.contains("step_cancelled") && events.contains("compensated") && events.last == "cancelled")
            #expect(try await stack.workflow(id).string("reason") == "customer withdrew")
            try await stack.expectHistoryRebuildsState(id)
        }
    }

    @Test func aDecisionPublishedBeforeTheWaitIsRegisteredIsAppliedWhenItIs() async throws {
        try await Stack.with { stack in
            let id = try await stack.submit(key: "early", input: #"{"amount":6000}"#, steps: Definitions.draftApproveExecute)
            _ = try await stack.waitForStep(id, "draft", "running")
            let approvalID = ApprovalIdentity.derive(workflowId: id, step: "approve", round: 1)
            let early = ApprovalDecided(
                approvalId: approvalID, workflowId: id, step: "approve", decision: .approve, approver: "manager@bank.example", comment: "pre-approved",
                channel: "slack", decidedAt: Date())
            try await stack.publish(try stack.signed(early, shown: ["amount": 6000]), to: .approvalDecisions, subject: id)
            try await waitUntil("the early decision to be kept") { try await stack.events(id).contains("decision_held") }
            try await stack.answer(id, step: "draft")
            _ = try await stack.waitForStep(id, "execute", "running")
            #expect(try await stack.step(id, "approve")["status"] == "approved")
            #expect(try await stack.history(id).first { $0.event == "approved" }?.actor == "approver:manager@bank.example via slack")
            try await stack.answer(id, step: "execute")
            try await stack.waitForStatus(id, "completed")
            try await stack.expectHistoryRebuildsState(id)
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct HTTPTaskTests {
    /// A queued call that cannot be read (a row from before a limit, or damaged) is left
    /// aside: the calls leased with it still go out.
    @Test func anUnreadableQueuedCallDoesNotHoldUpTheOthers() async throws {
        try await Stack.with { stack in
            let server = SignedReceiver(.taskServer(secret: Stack.taskSigningSecret), failures: 0)
            defer { Task { await server.stop() } }
            let waiting = try #require(try await stack.submit(API.workflow(key: "holder")).string("id"))
            _ = try await stack.sql(
                """
                INSERT INTO orchestrator.http_calls (kind, workflow_id, step, attempt, compensation, request)
                VALUES ('task', \(UUID(uuidString: waiting)!), 'approve', 1, false, '{"url": 5, "timeout_seconds": 30}')
                """)
            let steps = #"[{"name":"pay","kind":"task","task":{"type":"http","url":"\#(server.url)","body":{"amount":"{{input.amount}}"}}}]"#
            let id = try await stack.submit(key: "after-unreadable", input: #"{"amount":1}"#, steps: steps)
            try await stack.waitForStatus(id, "completed")
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.http_calls WHERE leased_until IS NOT NULL") == 1)
        }
    }

    @Test func httpTaskRetriesThroughFailuresWhileItsCircuitOpensAndCloses() async throws {
        // The open period is long against the retries' backoff (≤ 1 s), so that retries fall
        // inside it even when the machine is slow (with 2 s a loaded CI run once saw none).
        let environment = ["HITL_CIRCUIT_FAILURE_THRESHOLD": "2", "HITL_CIRCUIT_OPEN_SECONDS": "4"]
        try await Stack.with(environment: environment) { stack in
            let server = SignedReceiver(.taskServer(secret: Stack.taskSigningSecret), failures: 2)
            defer { Task { await server.stop() } }
            let steps = #"""
                [{"name":"pay","kind":"task","retry":{"max_attempts":20,"backoff_seconds":0.5,"max_backoff_seconds":1},
                  "task":{"type":"http","url":"\#(server.url)","body":{"amount":"{{input.amount}}","memo":"transfer {{input.reference}}"}}}]
                """#
            let id = try await stack.submit(key: "http-1", input: #"{"amount":6000,"reference":"INV-9"}"#, steps: steps)
            try await stack.waitForStatus(id, "completed")
            // Two 500s opened the circuit; the calls in between failed fast without reaching
            // the server; the probe after the open period succeeded and closed it.
            #expect(await server.calls.count == 3)
            #expect(await server.unsigned.count == 0)
            // Each call is signed over what it is: method, URL, workflow, step, attempt and a
            // delivery id that a retry of the same attempt keeps.
            let signed = await server.taskCalls.items
            #expect(signed.allSatisfy { $0.method == "POST" && $0.url == server.url && $0.workflowID == id && $0.step == "pay" })
            #expect(signed.map(\.attempt) == [1, 2, signed.last?.attempt ?? 0] && Set(signed.map(\.deliveryID)).count == 3)
            #expect(await server.calls.items.first == .object(["amount": 6000, "memo": "transfer INV-9"]))
            let failures = try await stack.history(id).filter { $0.event == "attempt_failed" }.compactMap { entry -> String? in
                if case .string(let error)? = entry.detail["error"] { return error }
                return nil
            }
            #expect(failures.prefix(2).allSatisfy { $0.hasSuffix("answered 500") })
            #expect(failures.dropFirst(2).contains { $0.contains("circuit open") })
            #expect(try await stack.step(id, "pay")["output"] == .object(["receipt": "r-3"]))
            // Closed again: the next workflow's call goes straight through.
            let next = try await stack.submit(key: "http-2", input: #"{"amount":1,"reference":"INV-10"}"#, steps: steps)
            try await stack.waitForStatus(next, "completed")
            #expect(await server.calls.count == 4)
            #expect(try await stack.history(next).filter { $0.event == "attempt_failed" }.isEmpty)
            try await stack.expectHistoryRebuildsState(id)
        }
    }
}
