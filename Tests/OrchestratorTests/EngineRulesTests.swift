import Contracts
import Foundation
import Testing

@testable import OrchestratorService

@Suite struct EngineRulesTests {
    @Test func transitionTableAllowsTheLifecycleAndRefusesTheRest() throws {
        try WorkflowTransitions.check(from: .running, to: .waitingApproval)
        try WorkflowTransitions.check(from: .waitingApproval, to: .paused)
        try WorkflowTransitions.check(from: .paused, to: .running)
        try WorkflowTransitions.check(from: .running, to: .compensating)
        try WorkflowTransitions.check(from: .compensating, to: .rejected)
        try WorkflowTransitions.check(from: .compensationFailed, to: .compensating)
        for final in WorkflowStatus.allCases where final.isFinal {
            for target in WorkflowStatus.allCases {
                #expect(throws: (any Error).self) { try WorkflowTransitions.check(from: final, to: target) }
            }
        }
        #expect { try WorkflowTransitions.check(from: .paused, to: .completed) } throws: { "\($0)".contains("from paused to completed") }
        #expect(throws: (any Error).self) { try WorkflowTransitions.check(from: .compensating, to: .running) }
    }

    func steps(_ json: String) throws -> [StepDefinition] {
        try WireCoding.decode([StepDefinition].self, from: Array(json.utf8))
    }

    @Test func definitionsAreCheckedWithTheFaultyStepNamed() throws {
        let cases: [(String, String)] = [
            (
                #"[{"name":"a","kind":"task","task":{"type":"noop"}},{"name":"a","kind":"task","task":{"type":"noop"}}]"#,
                "steps[1] (a): the name a is used twice"
            ),
            (#"[{"name":"a","kind":"task","task":{"type":"noop"},"when":"input.x <"}]"#, "steps[0] (a): when is not a valid expression"),
            (
                #"[{"name":"a","kind":"task","task":{"type":"noop"},"next":"b"},{"name":"b","kind":"task","task":{"type":"noop"},"next":"a"}]"#,
                "next leads round in a cycle"
            ),
            (#"[{"name":"a","kind":"task","task":{"type":"noop"},"next":"zz"}]"#, "next names zz, which is not a step"),
            (#"[{"name":"a","kind":"task","task":{"type":"shell"}}]"#, "task.type shell is unknown"),
            (#"[{"name":"a","kind":"task","task":{"type":"http"}}]"#, "task.url must be an absolute http or https URL"),
            (#"[{"name":"a","kind":"task","task":{"type":"noop"},"retry":{"max_attempts":0}}]"#, "retry.max_attempts must be 1 to 20"),
            (
                #"[{"name":"a","kind":"approval","approval":{"approvers":["x"],"auto_approve_when":"amount < 5"}}]"#,
                "approval.auto_approve_when is not a valid expression"
            ),
            (
                #"[{"name":"a","kind":"approval","approval":{"approvers":["x"],"revise_step":"b"}},{"name":"b","kind":"task","task":{"type":"noop"}}]"#,
                "revise_step must name an earlier task step"
            ),
            (#"[{"name":"a","kind":"task","task":{"type":"noop"},"compensate":{"type":"ftp"}}]"#, "compensate.type ftp is unknown"),
            (
                #"[{"name":"a","kind":"approval","approval":{"approvers":["x"],"form":{"title":"T","fields":[{"name":"change.x","type":"text","label":"X"}]}}}]"#,
                "the name change.x starts with change."
            ),
        ]
        for (json, expected) in cases {
            let problem = DefinitionValidation.problem(in: try steps(json))
            #expect(problem?.contains(expected) == true, "\(json) → \(problem ?? "valid")")
        }
        let valid = try steps(
            #"""
            [{"name":"draft","kind":"task","task":{"type":"agent"},"retry":{"max_attempts":3,"backoff_seconds":1},"compensate":{"type":"noop"}},
             {"name":"approve","kind":"approval","when":"input.amount >= 1000","approval":{"approvers":["m"],"auto_approve_when":"input.amount < 5000","revise_step":"draft"},"next":"execute"},
             {"name":"skipped","kind":"task","task":{"type":"noop"}},
             {"name":"execute","kind":"task","task":{"type":"http","url":"https://bank.example/pay","body":{"amount":"{{input.amount}}"}}}]
            """#)
        #expect(DefinitionValidation.problem(in: valid) == nil)
    }

    @Test func historyRebuildFollowsStatusStepsAndApproversChanges() {
        func entry(_ event: String, to: String? = nil, step: String? = nil, _ detail: JSONObject = [:]) -> HistoryEntry {
            HistoryEntry(sequence: 0, at: Date(), event: event, fromStatus: nil, toStatus: to, step: step, actor: "test", detail: detail)
        }
        let entries = [
            entry("submitted", ["input": .object(["amount": 6000, "currency": "EUR"])]),
            entry("step_completed", step: "draft", ["step_status": "completed"]),
            entry("approval_requested", to: "waiting_approval", step: "approve", ["step_status": "waiting"]),
            entry(
                "approved_with_changes", to: "running", step: "approve",
                ["step_status": "approved", "changes": .object(["amount": .object(["from": 6000, "to": 5500])])]),
            entry("stale_result_ignored", step: "draft", ["attempt": 1]),
            entry("completed", to: "completed"),
        ]
        let state = HistoryReplay.rebuild(entries)
        #expect(
            state
                == HistoryReplay.State(
                    status: .completed, steps: ["draft": "completed", "approve": "approved"], input: ["amount": 5500, "currency": "EUR"]))
        #expect(HistoryReplay.rebuild(Array(entries.dropFirst())) == nil)
    }

    @Test func circuitOpensAfterTheThresholdFailsFastAndProbesBeforeClosing() {
        let breaker = CircuitBreaker(failureThreshold: 2, openDuration: .seconds(10))
        let start = ContinuousClock.now
        #expect(breaker.permission(for: "h", now: start) == .call)
        breaker.recordFailure(for: "h", now: start)
        #expect(breaker.permission(for: "h", now: start) == .call)
        breaker.recordFailure(for: "h", now: start)
        #expect(breaker.permission(for: "h", now: start + .seconds(1)) == .refuse(retryIn: .seconds(9)))
        #expect(breaker.permission(for: "other", now: start) == .call)
        // After the open period exactly one probe goes out.
        #expect(breaker.permission(for: "h", now: start + .seconds(11)) == .probe)
        #expect(breaker.permission(for: "h", now: start + .seconds(11)) == .refuse(retryIn: .zero))
        breaker.recordFailure(for: "h", now: start + .seconds(11))
        #expect(breaker.permission(for: "h", now: start + .seconds(12)) == .refuse(retryIn: .seconds(9)))
        #expect(breaker.permission(for: "h", now: start + .seconds(22)) == .probe)
        breaker.recordSuccess(for: "h")
        #expect(breaker.state(of: "h") == .closed(failures: 0))
    }

    @Test func retryDelaysDoubleUpToTheCapWithJitter() {
        let policy = RetryPolicy(StepDefinition.Retry(maxAttempts: 5, backoffSeconds: 2, maxBackoffSeconds: 5))
        for _ in 0..<50 {
            #expect((1...2).contains(policy.delay(afterTry: 1)))
            #expect((2...4).contains(policy.delay(afterTry: 2)))
            #expect((2.5...5).contains(policy.delay(afterTry: 6)))
        }
        #expect(RetryPolicy(nil).maxAttempts == 3)
    }

    @Test func httpBodiesAreRenderedFromTheInput() throws {
        let dispatcher = TaskDispatcher(tokens: TaskTokens(key: String(repeating: "k", count: 32)))
        let scope: JSONObject = ["input": .object(["amount": 6000, "payee": "ACME"]), "outputs": .object([:])]
        let body: JSONValue = .object(["amount": "{{input.amount}}", "memo": "pay {{input.payee}} {{input.amount}}", "none": "{{input.missing}}"])
        #expect(dispatcher.render(body, scope: scope) == .object(["amount": 6000, "memo": "pay ACME 6000", "none": .null]))
        #expect(dispatcher.render("https://x.example/{{input.payee}}/pay", scope: scope) == "https://x.example/ACME/pay")
        // In a URL, what a placeholder writes cannot add a segment, a query, a host or a user.
        let hostile: JSONObject = ["input": .object(["payee": "../admin?x=1#@127.0.0.1/"]), "outputs": .object([:])]
        #expect(
            dispatcher.render("https://x.example/pay/{{input.payee}}", scope: hostile, encode: TaskDispatcher.percentEncoded)
                == "https://x.example/pay/%2E%2E%2Fadmin%3Fx%3D1%23%40127%2E0%2E0%2E1%2F")
        let url = #"[{"name":"a","kind":"task","task":{"type":"http","url":"https://x.example?{{input.q}}"}}]"#
        #expect(try DefinitionValidation.problem(in: steps(url)) == nil)
        let host = #"[{"name":"a","kind":"task","task":{"type":"http","url":"https://x.example/","headers":{"HOST":"internal.example"}}}]"#
        #expect(try DefinitionValidation.problem(in: steps(host))?.contains("may not set HOST") == true)
        let early = #"[{"name":"a","kind":"task","task":{"type":"http","url":"https://x.example{{input.q}}"}}]"#
        #expect(try DefinitionValidation.problem(in: steps(early))?.contains("url") == true)
    }

    /// A body's placeholders bring in values as deep as inbound JSON: the body itself may nest
    /// so little that the queued call, with the deepest of them, stays readable.
    @Test func anHTTPBodyNestsLittleEnoughThatItsRenderedCallStaysReadable() throws {
        func body(_ depth: Int) -> String {
            #"[{"name":"a","kind":"task","task":{"type":"http","url":"https://x.example/","body":"#
                + String(repeating: #"{"k":"#, count: depth) + #""{{input.deep}}""# + String(repeating: "}", count: depth) + "}}]"
        }
        #expect(try DefinitionValidation.problem(in: steps(body(DefinitionValidation.maximumBodyDepth))) == nil)
        #expect(try DefinitionValidation.problem(in: steps(body(DefinitionValidation.maximumBodyDepth + 1)))?.contains("body may nest") == true)
        // The deepest body with the deepest input an agent may send, rendered and queued.
        var deep: JSONValue = 1
        for _ in 0..<(WireCoding.inboundDepth - 2) { deep = .object(["k": deep]) }
        let definition = try #require(try steps(body(DefinitionValidation.maximumBodyDepth)).first?.task?.body)
        let dispatcher = TaskDispatcher(tokens: TaskTokens(key: String(repeating: "k", count: 32)))
        let rendered = dispatcher.render(definition, scope: ["input": .object(["deep": deep]), "outputs": .object([:])])
        let request = HTTPTaskRequest(
            url: "https://x.example/", method: "POST", headers: [:], body: rendered, timeoutSeconds: 30, taskToken: "t", approvalReceipt: nil)
        #expect(throws: Never.self) { try WireCoding.decode(HTTPTaskRequest.self, from: WireCoding.encode(request)) }
    }
}
