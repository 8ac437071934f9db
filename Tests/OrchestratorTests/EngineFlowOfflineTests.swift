import Contracts
import Foundation
import Testing

@testable import OrchestratorService

/// The engine's flows on plain values (`OfflineWorkflow`): no Postgres, no Kafka, no
/// processes. `IntegrationTests.EngineFlowTests` runs a few of them across the four
/// services; the rules themselves are checked here, where each flow takes milliseconds.
@Suite struct EngineFlowOfflineTests {
    static let threshold = #"""
        [{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"auto_approve_when":"input.amount < 5000"}},
         {"name":"execute","kind":"task","task":{"type":"noop"}}]
        """#
    static let draftApproveExecute = #"""
        [{"name":"draft","kind":"task","task":{"type":"agent","agent":"writer"}},
         {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"revise_step":"draft","max_rounds":2}},
         {"name":"execute","kind":"task","task":{"type":"agent","agent":"payer"}}]
        """#

    @Test func thresholdApprovesBelowTheLimitByRuleAndAsksAHumanAbove() async throws {
        let small = try await OfflineWorkflow(steps: Self.threshold, input: ["amount": 4000])
        #expect(small.status == .completed)
        #expect(small.eventNames == ["submitted", "auto_approved", "step_completed", "completed"])
        #expect(small.history[1].actor == "rule")
        #expect(try small.published(ApprovalRequested.self).isEmpty)
        #expect(try small.published(WorkflowLifecycle.self).map(\.change) == [.workflowStarted, .workflowCompleted])

        let large = try await OfflineWorkflow(steps: Self.threshold, input: ["amount": 6000])
        #expect(large.status == .waitingApproval)
        let asked = try large.lastApproval("approve")
        #expect(asked.approvers == ["manager@bank.example"] && asked.context == ["amount": 6000] && asked.requester == "agent@bank.example")
        #expect(asked.approvalId == ApprovalIdentity.derive(workflowId: large.id, step: "approve", round: 1))
        try await large.decide("approve", .approve)
        #expect(large.status == .completed)
        #expect(large.history.first { $0.event == "approved" }?.actor == "approver:manager@bank.example via api")
    }

    @Test func aTasksOutputReachesLaterStepsWithTheReceiptAndStaleAnswersChangeNothing() async throws {
        let flow = try await OfflineWorkflow(steps: Self.draftApproveExecute, input: ["amount": 6000])
        let draft = try flow.lastTask("draft")
        #expect(
            draft.agent == "writer" && draft.attempt == 1
                && draft.token == OfflineWorkflow.tokens.token(workflowID: flow.id, step: "draft", attempt: 1, compensation: false))
        try await flow.answer("draft", output: ["plan": "pay in two parts"])
        #expect(flow.status == .waitingApproval)
        // A repeat of the answer and one for an attempt that never was: noted, nothing else.
        try await flow.answer("draft", attempt: 1, output: ["plan": "again"])
        try await flow.answer("draft", attempt: 7)
        #expect(flow.eventNames.filter { $0 == "stale_result_ignored" }.count == 2)
        #expect(try flow.step("draft").output == ["plan": "pay in two parts"])

        try await flow.decide("approve", .approve, comment: "fine by me")
        let execute = try flow.lastTask("execute")
        #expect(execute.outputs["draft"] == .object(["plan": "pay in two parts"]) && execute.agent == "payer")
        // The worker is handed the approval it acts on.
        let receipt = try #require(execute.receipt)
        #expect(DecisionReceipt.unverifiedClaims(of: receipt)?.step == "approve")
        try await flow.answer("execute", output: ["receipt": "r-1"])
        #expect(flow.status == .completed)
        #expect(flow.eventNames.suffix(2) == ["step_completed", "completed"])
    }

    @Test func approveWithChangesMergesTheChangesForLaterStepsAndRecordsTheDiff() async throws {
        let steps = #"""
            [{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}},
             {"name":"execute","kind":"task","task":{"type":"agent"}}]
            """#
        let flow = try await OfflineWorkflow(steps: steps, input: ["amount": 6000, "currency": "EUR"])
        try await flow.decide("approve", .approveWithChanges, changes: ["amount": 5500])
        #expect(flow.session.workflow.input == ["amount": 5500, "currency": "EUR"])
        let entry = try #require(flow.history.first { $0.event == "approved_with_changes" })
        let detail = try WireCoding.decode(JSONObject.self, from: Array(entry.detail.utf8))
        #expect(detail["changes"] == .object(["amount": .object(["from": 6000, "to": 5500])]))
        #expect(try flow.lastTask("execute").input["amount"] == 5500)
    }

    @Test func requestChangesSendsTheWorkBackWithFeedbackAndAsksAgainUpToMaxRounds() async throws {
        let flow = try await OfflineWorkflow(steps: Self.draftApproveExecute, input: ["amount": 6000])
        try await flow.answer("draft", output: ["plan": "one payment"])
        let first = try flow.lastApproval("approve")
        try await flow.decide("approve", .requestChanges, comment: "split it in two")
        let redo = try flow.lastTask("draft")
        #expect(redo.attempt == 2 && redo.feedback == "split it in two")
        // Nobody is asked before the draft is redone.
        #expect(try flow.published(ApprovalRequested.self).count == 1)
        try await flow.answer("draft", output: ["plan": "two payments"])
        let second = try flow.lastApproval("approve")
        #expect(second.approvalId != first.approvalId && second.approvalId == ApprovalIdentity.derive(workflowId: flow.id, step: "approve", round: 2))
        #expect(try flow.step("approve").round == 2)
        // A third round is more than max_rounds allows: the request ends in a rejection.
        try await flow.decide("approve", .requestChanges, comment: "still no")
        #expect(flow.status == .rejected)
        #expect(flow.session.workflow.reason == "still not approved after 2 rounds")
    }

    @Test func aRejectionRollsBackTheCompletedStepsLastFirst() async throws {
        let steps = #"""
            [{"name":"reserve","kind":"task","task":{"type":"agent"},"compensate":{"type":"agent"}},
             {"name":"charge","kind":"task","task":{"type":"agent"},"compensate":{"type":"agent"}},
             {"name":"note","kind":"task","task":{"type":"noop"}},
             {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]
            """#
        let flow = try await OfflineWorkflow(steps: steps, input: ["amount": 6000])
        try await flow.answer("reserve")
        try await flow.answer("charge")
        try await flow.decide("approve", .reject, comment: "not this month")
        #expect(flow.status == .compensating)
        // Only the last completed step is being undone; the first waits its turn.
        #expect(try flow.step("charge").compensationStatus == .running && flow.step("reserve").compensationStatus == nil)
        try await flow.answer("charge", compensation: true)
        #expect(try flow.step("reserve").compensationStatus == .running)
        try await flow.answer("reserve", compensation: true)
        #expect(flow.status == .rejected)
        #expect(flow.history.filter { $0.event == "compensated" }.map(\.step) == ["charge", "reserve"])
        #expect(try flow.published(TaskRequested.self).filter(\.compensation).map(\.step) == ["charge", "reserve"])
        #expect(flow.session.workflow.reason == "rejected by manager@bank.example: not this month")
    }

    @Test func aCompensationThatKeepsFailingGoesToOpsAsAReplayableResume() async throws {
        let steps = #"""
            [{"name":"reserve","kind":"task","task":{"type":"noop"},"retry":{"max_attempts":2},"compensate":{"type":"agent"}},
             {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]
            """#
        let flow = try await OfflineWorkflow(steps: steps, input: [:])
        try await flow.decide("approve", .reject)
        try await flow.answer("reserve", compensation: true, outcome: .failed, error: "refund refused")
        #expect(try flow.step("reserve").compensationStatus == .retryWait)
        let retry = try #require(try flow.published(TimerScheduled.self).last)
        let timer = try #require(TaskTimer(payload: retry.payload))
        #expect(timer == TaskTimer(kind: .retry, step: "reserve", attempt: 1, compensation: true))
        try await flow.apply { engine, session in try await engine.applyTimer(timer, session: session) }
        try await flow.answer("reserve", compensation: true, outcome: .failed, error: "refund refused again")
        #expect(flow.status == .compensationFailed)

        let letter = try #require(try flow.published(DeadLettered.self).first)
        #expect(letter.error == "compensation of step reserve failed after 2 attempts: refund refused again")
        #expect(letter.originalTopic == Topic.workflowRequests.rawValue)
        // Replaying it is a resume, which tries the compensation again.
        try await flow.apply { engine, session in
            _ = try await engine.control(.resume, by: "ops:dead-letter-replay", reason: "retry", session: session)
        }
        #expect(try flow.status == .compensating && flow.step("reserve").compensation.attempt == 3)
        try await flow.answer("reserve", compensation: true)
        #expect(flow.status == .rejected)
        #expect(flow.eventNames.contains("compensation_retried"))
    }

    @Test func aTaskThatExhaustsItsRetriesFailsTheWorkflowAndTimersOfOldAttemptsChangeNothing() async throws {
        let steps = #"""
            [{"name":"prepare","kind":"task","task":{"type":"noop"},"compensate":{"type":"noop"}},
             {"name":"call","kind":"task","task":{"type":"agent"},"retry":{"max_attempts":2}}]
            """#
        let flow = try await OfflineWorkflow(steps: steps, input: [:])
        try await flow.answer("call", outcome: .failed, error: "upstream said no")
        #expect(try flow.step("call").status == .retryWait)
        let stale = TaskTimer(kind: .retry, step: "call", attempt: 7, compensation: false)
        try await flow.apply { engine, session in try await engine.applyTimer(stale, session: session) }
        #expect(try flow.step("call").status == .retryWait)
        try await flow.apply { engine, session in
            try await engine.applyTimer(TaskTimer(kind: .retry, step: "call", attempt: 1, compensation: false), session: session)
        }
        #expect(try flow.step("call").status == .running && flow.step("call").forward.attempt == 2)
        try await flow.answer("call", outcome: .failed, error: "upstream said no again")
        #expect(flow.status == .failed)
        #expect(flow.session.workflow.reason == "step call failed: upstream said no again")
        #expect(flow.eventNames.contains("retry_due") && flow.eventNames.contains("compensated"))
    }

    @Test func aPausedWorkflowKeepsADecisionAndAppliesItOnResume() async throws {
        let flow = try await OfflineWorkflow(steps: Self.threshold, input: ["amount": 6000])
        try await flow.apply { engine, session in
            let first = try await engine.control(.pause, by: "ops:ops@bank.example", reason: "audit", session: session)
            let again = try await engine.control(.pause, by: "ops:ops@bank.example", reason: nil, session: session)
            #expect(first == .applied(.paused) && again == .unchanged(.paused))
        }
        try await flow.decide("approve", .approve)
        #expect(flow.status == .paused && flow.eventNames.last == "decision_held")
        try await flow.apply { engine, session in _ = try await engine.control(.resume, by: "ops:ops@bank.example", reason: nil, session: session) }
        #expect(flow.status == .completed)
        #expect(flow.eventNames.suffix(4) == ["resumed", "approved", "step_completed", "completed"])
        // Control of an ended workflow is refused by the transition table.
        await #expect { try await flow.apply { engine, session in _ = try await engine.control(.pause, by: "ops", reason: nil, session: session) } } throws: {
            "\($0)".contains("from completed to paused")
        }
    }

    @Test func cancellingMidWaitCancelsTheApprovalAndTheAttemptsAndRunsCompensations() async throws {
        let steps = #"""
            [{"name":"reserve","kind":"task","task":{"type":"noop"},"compensate":{"type":"noop"}},
             {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]
            """#
        let flow = try await OfflineWorkflow(steps: steps, input: [:])
        let asked = try flow.lastApproval("approve")
        try await flow.apply { engine, session in
            _ = try await engine.control(.cancel, by: "agent:agent-7", reason: "customer withdrew", session: session)
        }
        #expect(flow.status == .cancelled && flow.session.workflow.reason == "customer withdrew")
        #expect(try flow.published(ApprovalCancelRequested.self).map(\.approvalId) == [asked.approvalId])
        #expect(flow.eventNames.contains("step_cancelled") && flow.eventNames.contains("compensated") && flow.eventNames.last == "cancelled")
        // A decision that still comes is noted and changes nothing.
        try await flow.decide("approve", .approve)
        #expect(flow.status == .cancelled && flow.eventNames.last == "decision_ignored")
    }

    @Test func aDecisionBeforeTheWaitIsRegisteredIsKeptAndAppliedWhenItIs() async throws {
        let flow = try await OfflineWorkflow(steps: Self.draftApproveExecute, input: ["amount": 6000])
        let early = ApprovalDecided(
            approvalId: ApprovalIdentity.derive(workflowId: flow.id, step: "approve", round: 1), workflowId: flow.id, step: "approve", decision: .approve,
            approver: "manager@bank.example", comment: "pre-approved", channel: "slack", decidedAt: Date())
        try await flow.apply { engine, session in try await engine.applyDecision(early, session: session) }
        #expect(flow.eventNames.last == "decision_held")
        try await flow.answer("draft")
        #expect(try flow.step("approve").status == .approved && flow.step("execute").status == .running)
        #expect(flow.history.first { $0.event == "approved" }?.actor == "approver:manager@bank.example via slack")
        // Nobody was asked: the decision was there before the question.
        #expect(try flow.published(ApprovalRequested.self).isEmpty)
    }

    @Test func anApprovalWhoseInputALaterApproverChangedIsAskedAgainBeforeATaskActsOnIt() async throws {
        let steps = #"""
            [{"name":"first","kind":"approval","approval":{"approvers":["manager@bank.example"]}},
             {"name":"second","kind":"approval","approval":{"approvers":["cfo@bank.example"]}},
             {"name":"execute","kind":"task","task":{"type":"agent"}}]
            """#
        let flow = try await OfflineWorkflow(steps: steps, input: ["amount": 6000])
        try await flow.decide("first", .approve)
        try await flow.decide("second", .approveWithChanges, changes: ["amount": 9000], approver: "cfo@bank.example")
        // The first approver approved 6000, not 9000: asked again, and no task runs yet.
        #expect(flow.eventNames.contains("approval_stale"))
        #expect(try flow.published(TaskRequested.self).isEmpty)
        let again = try flow.lastApproval("first")
        #expect(again.context == ["amount": 9000] && again.approvalId == ApprovalIdentity.derive(workflowId: flow.id, step: "first", round: 2))
        try await flow.decide("first", .approve)
        let execute = try flow.lastTask("execute")
        #expect(execute.input["amount"] == 9000)
        // The task acts on the approval decided last.
        #expect(DecisionReceipt.unverifiedClaims(of: try #require(execute.receipt))?.step == "first")
    }

    @Test func httpCallsAndCallbacksAreQueuedWithTheSaveAndACancelDropsTheUntakenOnes() async throws {
        let steps = #"""
            [{"name":"pay","kind":"task","task":{"type":"http","url":"https://pay.example/{{input.account}}","body":{"amount":"{{input.amount}}"}}}]
            """#
        let flow = try await OfflineWorkflow(steps: steps, input: ["amount": 6000, "account": "a/b"], callbackURL: "https://agent.example/hook")
        let pay = try #require(flow.calls.first { $0.kind == .task })
        #expect(pay.step == "pay" && pay.attempt == 1 && !pay.compensation)
        #expect(pay.request.url == "https://pay.example/a%2Fb" && pay.request.body == .object(["amount": 6000]))
        #expect(pay.request.taskToken == OfflineWorkflow.tokens.token(workflowID: flow.id, step: "pay", attempt: 1, compensation: false))
        #expect(flow.calls.filter { $0.kind == .callback }.count == 1)  // workflow_started
        try await flow.apply { engine, session in _ = try await engine.control(.cancel, by: "agent:a", reason: nil, session: session) }
        #expect(flow.droppedCalls == ["pay"])
        #expect(flow.calls.filter { $0.kind == .callback }.map { $0.request.url }.allSatisfy { $0 == "https://agent.example/hook" })
        #expect(flow.calls.filter { $0.kind == .callback }.count == 2)  // and workflow_cancelled
    }
}
