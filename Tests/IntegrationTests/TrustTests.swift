import Contracts
import Crypto
import DevStack
import Foundation
import ServiceKitTesting
import Testing

@testable import OrchestratorService

/// The trust boundary (DESIGN.md): an agent cannot skip, forge or flip a human's decision,
/// through the API or on Kafka. Each case here was a way around the human before.
@Suite(.serialized, .timeLimit(.minutes(10))) struct TrustTests {
    static let agent = TestTokens.agent("agent@bank.example")
    static let pay = #"{"name":"pay","kind":"task","task":{"type":"agent","agent":"payments-executor"}}"#
    static let rule = #"""
        {"type":"wire_transfer","when":"input.amount > 5000","agents":["payments-executor"],
         "approval":{"approvers":["cfo@bank.example"],"timeout_seconds":86400,"policy":{"on_expiry":"reject"}}}
        """#

    static func request(_ key: String, amount: Int, steps: String, requester: String = "agent@bank.example") -> String {
        #"{"idempotency_key":"\#(key)","type":"wire_transfer","requester":"\#(requester)","input":{"amount":\#(amount)},"steps":\#(steps)}"#
    }

    // MARK: - Gates

    @Test func adminsGatesHoldForEverySubmissionAndAgentsCannotWeakenThem() async throws {
        try await Stack.with { stack in
            let gates = "\(stack.orchestrator)/v1/gates"
            let workflows = "\(stack.orchestrator)/v1/workflows"
            // Agents neither write nor read gates; a bad gate is refused with the reason.
            #expect(try await API.call("PUT", "\(gates)/big-transfers", json: Self.rule, token: Self.agent).status == 403)
            #expect(try await API.get("\(gates)/big-transfers", token: Self.agent).status == 403)
            let bad = try await API.call("PUT", "\(gates)/bad", json: #"{"type":"wire_transfer","approval":{"approvers":[]}}"#)
            #expect(bad.status == 422 && bad.string("reason")?.contains("approvers") == true)
            let stored = try await API.call("PUT", "\(gates)/big-transfers", json: Self.rule)
            #expect(stored.status == 201 && stored["version"] == .number(1) && stored.string("changed_by") == "ops@bank.example")

            // Leaving the approval out: the rule's approval comes before the payment.
            let bare = try await API.post(workflows, Self.request("bare", amount: 900_000, steps: "[\(Self.pay)]"), token: Self.agent)
            #expect(bare.status == 201)
            let id = try #require(bare.string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            let approval = try await API.get("\(stack.approval)/v1/approvals/\(approvalID)")
            #expect(approval.string("step") == "gate.big-transfers" && approval["approvers"] == .array(["cfo@bank.example"]))
            #expect(try await stack.step(id, "pay")["status"] == "pending")
            let submitted = try #require(try await stack.history(id).first { $0.event == "submitted" })
            #expect(submitted.detail["gates"] == .array([.object(["name": "big-transfers", "version": 1, "step": "gate.big-transfers", "inserted": true])]))

            // Each weakening option: 403 naming it, nothing stored.
            let weakening = [
                (#"{"approvers":["manager@bank.example"],"auto_approve_when":"true"}"#, "auto_approve_when"),
                (#"{"approvers":["manager@bank.example"],"timeout_seconds":1,"policy":{"on_expiry":"approve"}}"#, "on_expiry_approve"),
                (#"{"approvers":["manager@bank.example"],"policy":{"on_expiry":"fallback"}}"#, "on_expiry_fallback"),
                (#"{"approvers":["agent@bank.example"],"policy":{"allow_self_approval":true}}"#, "allow_self_approval"),
            ]
            let before = try await stack.count("SELECT count(*)::int FROM orchestrator.workflows")
            for (approval, option) in weakening {
                let steps = #"[{"name":"approve","kind":"approval","approval":\#(approval)},\#(Self.pay)]"#
                let refused = try await API.post(workflows, Self.request("weak-\(option)", amount: 900_000, steps: steps), token: Self.agent)
                #expect(refused.status == 403 && refused.string("error") == "weakens_gate" && refused.string("option") == option, "\(option): \(refused.text)")
            }
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == before)

            // The same on Kafka: the weakened request is dead-lettered, the bare one gated.
            let pay = StepDefinition(name: "pay", kind: .task, task: .init(type: "agent", agent: "payments-executor"))
            let weak = StepDefinition(name: "approve", kind: .approval, approval: .init(approvers: ["manager@bank.example"], autoApproveWhen: "true"))
            try await stack.publish(
                WorkflowSubmitted(
                    idempotencyKey: "kafka-weak", type: "wire_transfer", requester: "agent@bank.example", input: ["amount": 900_000], steps: [weak, pay]),
                to: .workflowRequests, subject: "kafka-weak")
            try await stack.publish(
                WorkflowSubmitted(
                    idempotencyKey: "kafka-bare", type: "wire_transfer", requester: "agent@bank.example", input: ["amount": 900_000], steps: [pay]),
                to: .workflowRequests, subject: "kafka-bare")
            try await waitUntil("the weakened Kafka request in the dead-letter index") {
                try await stack.count("SELECT count(*)::int FROM orchestrator.dead_letters WHERE error LIKE '%auto_approve_when weakens%'") == 1
            }
            var kafkaID: String?
            try await waitUntil("the bare Kafka request stored") {
                kafkaID = try await stack.sql("SELECT id::text FROM orchestrator.workflows WHERE idempotency_key = 'kafka-bare'").first?.decode(String.self)
                return kafkaID != nil
            }
            _ = try await stack.waitForStep(try #require(kafkaID), "gate.big-transfers", "waiting")
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows WHERE idempotency_key = 'kafka-weak'") == 0)

            // A decision published where agents may write (hitl.workflow.requests) is refused for its topic.
            let forged = ApprovalDecided(
                approvalId: approvalID, workflowId: id, step: "gate.big-transfers", decision: .approve, approver: "cfo@bank.example", comment: nil,
                channel: "api", decidedAt: Date())
            try await stack.publish(forged, to: .workflowRequests, subject: id)
            try await waitUntil("the forged decision in the dead-letter index") {
                try await stack.count("SELECT count(*)::int FROM orchestrator.dead_letters WHERE error LIKE '%does not belong on hitl.workflow.requests%'") == 1
            }
            #expect(try await stack.step(id, "gate.big-transfers")["status"] == "waiting")
            // On the decisions topic itself, a decision counts only with the approval service's
            // receipt for exactly it: none, another key's, or another decision's are refused.
            let otherKey = "x:" + P256.Signing.PrivateKey().rawRepresentation.base64EncodedString()
            var other = forged
            other.approvalId = ApprovalIdentity.derive(workflowId: id, step: "gate.big-transfers", round: 9)
            let someoneElses = try stack.signed(other, shown: ["amount": 900_000]).receipt
            var borrowed = forged
            borrowed.receipt = someoneElses
            for (decision, reason) in [
                (forged, "carries no receipt"), (try stack.signed(forged, shown: ["amount": 900_000], key: otherKey), "does not verify"),
                (borrowed, "for another decision"),
            ] {
                try await stack.publish(decision, to: .approvalDecisions, subject: id)
                try await waitUntil("the decision refused: \(reason)") {
                    try await stack.count("SELECT count(*)::int FROM orchestrator.dead_letters WHERE error LIKE \("%" + reason + "%")") == 1
                }
            }
            #expect(try await stack.step(id, "gate.big-transfers")["status"] == "waiting")

            // The condition fails closed: an amount sent as text, or none at all, is gated too.
            for (key, input) in [("text-amount", #"{"amount":"900000"}"#), ("no-amount", "{}")] {
                let body = #"{"idempotency_key":"\#(key)","type":"wire_transfer","requester":"agent@bank.example","input":\#(input),"steps":[\#(Self.pay)]}"#
                let gated = try #require(try await API.post(workflows, body, token: Self.agent).string("id"))
                _ = try await stack.waitForStep(gated, "gate.big-transfers", "waiting")
            }

            // An admin's template may use what an agent may not; the gate still applies above its threshold.
            let template =
                #"{"steps":[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"auto_approve_when":"input.amount < 5000"}},\#(Self.pay)]}"#
            #expect(try await API.call("PUT", "\(stack.orchestrator)/v1/templates/transfer", json: template).status == 201)
            func fromTemplate(_ key: String, _ amount: Int) -> String {
                #"{"idempotency_key":"\#(key)","type":"wire_transfer","requester":"agent@bank.example","input":{"amount":\#(amount)},"template":"transfer"}"#
            }
            let small = try #require(try await API.post(workflows, fromTemplate("t-small", 100), token: Self.agent).string("id"))
            _ = try await stack.waitForStep(small, "pay", "running")
            #expect(try await stack.step(small, "approve")["status"] == "approved")
            let large = try #require(try await API.post(workflows, fromTemplate("t-large", 6000), token: Self.agent).string("id"))
            _ = try await stack.waitForStep(large, "approve", "waiting")
            #expect(try await stack.step(large, "gate.big-transfers")["status"] == "pending")

            // Deleting the rule is recorded too; then nothing is inserted.
            let deleted = try await API.call("DELETE", "\(gates)/big-transfers")
            #expect(deleted.status == 200 && deleted["version"] == .number(2))
            #expect(try await API.get("\(gates)/big-transfers").status == 404)
            #expect(
                try await API.get("\(gates)/big-transfers/versions").items.map { $0["changed_by"] } == [
                    .string("ops@bank.example"), .string("ops@bank.example"),
                ])
            let after = try #require(
                try await API.post(workflows, Self.request("after", amount: 900_000, steps: "[\(Self.pay)]"), token: Self.agent).string("id"))
            _ = try await stack.waitForStep(after, "pay", "running")

            // A catch-all gate holds whatever type the agent claims.
            let anyType = #"{"type":"*","agents":["payments-executor"],"approval":{"approvers":["cfo@bank.example"]}}"#
            #expect(try await API.call("PUT", "\(gates)/everything-that-pays", json: anyType).status == 201)
            let renamed = #"{"idempotency_key":"renamed","type":"Wire_Transfer2","requester":"agent@bank.example","input":{"amount":1},"steps":[\#(Self.pay)]}"#
            let disguised = try #require(try await API.post(workflows, renamed, token: Self.agent).string("id"))
            _ = try await stack.waitForStep(disguised, "gate.everything-that-pays", "waiting")
        }
    }

    @Test func aRequestForChangesThatRunsTheGateAgainAsksItAgain() async throws {
        try await Stack.with { stack in
            #expect(try await API.call("PUT", "\(stack.orchestrator)/v1/gates/big-transfers", json: Self.rule).status == 201)
            let steps = #"""
                [{"name":"draft","kind":"task","task":{"type":"agent","agent":"writer"}},\#(Self.pay),
                 {"name":"review","kind":"approval","approval":{"approvers":["manager@bank.example"],"revise_step":"draft"}}]
                """#
            let id = try #require(
                try await API.post("\(stack.orchestrator)/v1/workflows", Self.request("again", amount: 900_000, steps: steps), token: Self.agent).string("id"))
            _ = try await stack.waitForStep(id, "draft", "running")
            #expect(try await stack.answer(id, step: "draft").status == 200)
            let gate = try await stack.pendingApproval(of: id)
            #expect(try await stack.decide(gate, "approve", approver: "cfo@bank.example").status == 200)
            _ = try await stack.waitForStep(id, "pay", "running")
            #expect(try await stack.answer(id, step: "pay").status == 200)
            let review = try await stack.pendingApproval(of: id)
            #expect(
                try await stack.decide(review, json: #"{"decision":"request_changes","comment":"split it","approver":"manager@bank.example"}"#).status == 200)
            _ = try await stack.waitForStep(id, "draft", "running")
            #expect(try await stack.answer(id, step: "draft").status == 200)
            // The gate is asked anew (a new round, a new approval), not silently skipped or stuck.
            let again = try await stack.pendingApproval(of: id)
            #expect(again != gate)
            #expect(try await stack.step(id, "gate.big-transfers")["round"] == .number(2))

            // A revise_step that would run the payment again without the gate is refused.
            let around = #"""
                [{"name":"prep","kind":"task","task":{"type":"noop"}},\#(Self.pay),
                 {"name":"review","kind":"approval","approval":{"approvers":["manager@bank.example"],"revise_step":"pay"}}]
                """#
            let refused = try await API.post("\(stack.orchestrator)/v1/workflows", Self.request("around", amount: 900_000, steps: around), token: Self.agent)
            #expect(refused.status == 422 && refused.string("reason")?.contains("revise_step pay") == true)
        }
    }

    @Test func aDeploymentCanTakeAgentsWorkflowsFromTemplatesOnly() async throws {
        try await Stack.with(environment: ["HITL_AGENT_DEFINITIONS": "templates"]) { stack in
            let body = Self.request("inline", amount: 10, steps: #"[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]"#)
            let refused = try await API.post("\(stack.orchestrator)/v1/workflows", body, token: Self.agent)
            #expect(refused.status == 403 && refused.string("option") == "steps")
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 0)
            #expect(try await API.post("\(stack.orchestrator)/v1/workflows", body).status == 201)  // an admin's
        }
    }

    // MARK: - Receipts

    @Test func decisionsAreSignedTheStepThatActsCarriesTheReceiptAndAChangedInputIsAskedAgain() async throws {
        try await Stack.with { stack in
            #expect(try await API.call("PUT", "\(stack.orchestrator)/v1/gates/big-transfers", json: Self.rule).status == 201)
            // An admin's template asks the gate's approval first, then a review that may change the amount.
            let gateApproval = #"{"approvers":["cfo@bank.example"],"timeout_seconds":86400,"policy":{"on_expiry":"reject"}}"#
            let template = #"""
                {"steps":[{"name":"treasury","kind":"approval","approval":\#(gateApproval)},
                          {"name":"review","kind":"approval","approval":{"approvers":["manager@bank.example"]}},\#(Self.pay)]}
                """#
            #expect(try await API.call("PUT", "\(stack.orchestrator)/v1/templates/reviewed", json: template).status == 201)
            let body =
                #"{"idempotency_key":"r-1","type":"wire_transfer","requester":"agent@bank.example","input":{"amount":900000,"to":"ACME"},"template":"reviewed"}"#
            let id = try #require(try await API.post("\(stack.orchestrator)/v1/workflows", body, token: Self.agent).string("id"))

            let first = try await stack.pendingApproval(of: id)
            #expect(try await stack.decide(first, "approve", approver: "cfo@bank.example").status == 200)
            let decided = try await API.get("\(stack.approval)/v1/approvals/\(first)")
            let receipt = try #require(decided.string("receipt"))
            // Verified offline against the published key set, naming the rule and what was shown.
            let hitl = Shell.packageExecutable("hitl").path
            let jwks = "\(stack.approval)/.well-known/jwks.json"
            let claims = try WireCoding.decode(JSONObject.self, from: Array(try Shell.run([hitl, "receipt", "verify", receipt, "--jwks", jwks]).utf8))
            #expect(claims["rule"] == "big-transfers@1" && claims["decided_by"] == "cfo@bank.example" && claims["outcome"] == "approve")
            #expect(claims["input_sha256"] == .string(DecisionReceipt.sha256(of: ["amount": 900_000, "to": "ACME"])))
            var tampered = Array(receipt)
            tampered[tampered.count / 2] = tampered[tampered.count / 2] == "A" ? "B" : "A"
            #expect(throws: Shell.Failure.self) { try Shell.run([hitl, "receipt", "verify", String(tampered), "--jwks", jwks]) }

            // The reviewer lowers the amount: the treasury approved another input, so it is asked again.
            let review = try await stack.pendingApproval(of: id)
            let changed = try await stack.decide(
                review, json: #"{"decision":"approve_with_changes","changes":{"amount":500},"approver":"manager@bank.example"}"#)
            #expect(changed.status == 200)
            let again = try await stack.pendingApproval(of: id)
            #expect(again != first && again != review)
            let stale = try #require(try await stack.history(id).first { $0.event == "approval_stale" })
            #expect(stale.step == "treasury" && stale.detail["before"] == "pay")
            #expect(try await stack.step(id, "pay")["status"] == "pending")
            let input = FileManager.default.temporaryDirectory.appendingPathComponent("receipt-input-\(UUID()).json")
            try Data(#"{"amount":500,"to":"ACME"}"#.utf8).write(to: input)
            #expect(throws: Shell.Failure.self) { try Shell.run([hitl, "receipt", "verify", receipt, "--jwks", jwks, "--input", input.path]) }

            #expect(try await stack.decide(again, "approve", approver: "cfo@bank.example").status == 200)
            _ = try await stack.waitForStep(id, "pay", "running")
            let request = try #require(try await stack.taskRequests(of: id).first { $0.step == "pay" })
            let published = try WireCoding.decode(JWKSet.self, from: Array(try await API.get(jwks, token: nil).text.utf8))
            let carried = try DecisionReceipt.verify(try #require(request.receipt), keys: published)
            #expect(carried.inputSha256 == DecisionReceipt.sha256(of: request.input) && request.input["amount"] == 500)
            #expect(try Shell.run([hitl, "receipt", "verify", try #require(request.receipt), "--jwks", jwks, "--input", input.path]).contains("input_sha256"))
            // The README's few lines of Python, as a downstream service would run them.
            let keysFile = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID()).json")
            try Data(try await API.get(jwks, token: nil).text.utf8).write(to: keysFile)
            let script = WebPageTests.packageRoot.appendingPathComponent("Tests/IntegrationTests/Scripts/verify_receipt.py").path
            #expect(try Shell.run(["/usr/bin/python3", script, try #require(request.receipt), keysFile.path, input.path]).contains("big-transfers@1"))
            #expect(throws: Shell.Failure.self) { try Shell.run(["/usr/bin/python3", script, receipt, keysFile.path, input.path]) }
        }
    }

    // MARK: - Task results

    @Test func onlyTheHolderOfTheAttemptsTokenAnswersATaskAndAForgeryWritesNothing() async throws {
        try await Stack.with { stack in
            let steps = #"""
                [{"name":"reserve","kind":"task","task":{"type":"agent","agent":"reserver"},"compensate":{"type":"agent","agent":"reserver"}},
                 {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]
                """#
            let id = try #require(
                try await API.post("\(stack.orchestrator)/v1/workflows", Self.request("tok", amount: 10, steps: steps), token: Self.agent).string("id"))
            _ = try await stack.waitForStep(id, "reserve", "running")
            let request = try #require(try await stack.taskRequests(of: id).first)
            #expect(request.token == stack.taskToken(id, step: "reserve", attempt: 1))
            let history = try await stack.history(id).count

            // The requester without the token, with another attempt's, a garbage token; another agent at a step that is not there.
            let forgeries: [(String, Int, String, String)] = [
                ("reserve", 1, "", Self.agent), ("reserve", 1, stack.taskToken(id, step: "reserve", attempt: 2), Self.agent),
                ("reserve", 1, String(repeating: "0", count: 64), Self.agent), ("nowhere", 1, "x", TestTokens.agent("mallory")),
            ]
            for (step, attempt, token, bearer) in forgeries {
                let answer = try await stack.answer(id, step: step, attempt: attempt, output: #"{"score":0}"#, token: token, as: bearer)
                #expect(answer.status == 403 && answer.string("error") == "invalid_task_token", "\(step) \(attempt): \(answer.text)")
            }
            // On Kafka: dead-lettered, not applied.
            try await stack.publish(
                TaskResult(workflowId: id, step: "reserve", attempt: 1, outcome: .succeeded, output: ["score": 0], worker: "forger"), to: .taskResults,
                subject: id)
            try await waitUntil("the forged Kafka result in the dead-letter index") {
                try await stack.count("SELECT count(*)::int FROM orchestrator.dead_letters WHERE error LIKE 'task result refused%'") == 1
            }
            #expect(try await stack.history(id).count == history)
            #expect(try await stack.step(id, "reserve")["status"] == "running")

            // The token alone is not enough for another agent (it may have read hitl.tasks): the task names its agent.
            let stolen = try await stack.answer(id, step: "reserve", output: #"{"held":true}"#, token: request.token, as: TestTokens.agent("mallory"))
            #expect(stolen.status == 403 && stolen.string("error") == "not_the_worker")
            #expect(try await stack.history(id).count == history)
            // The agent the task names answers with the attempt's token.
            #expect(
                try await stack.answer(id, step: "reserve", output: #"{"held":true}"#, token: request.token, as: TestTokens.agent("reserver")).status == 200)
            let approvalID = try await stack.pendingApproval(of: id)
            #expect(try await stack.decide(approvalID, "reject").status == 200)
            try await waitUntil("the compensation to start") { try await stack.status(id) == "compensating" }

            // A forged success of the rollback: the forward attempt's token does not answer the compensation.
            let forged = try await stack.answer(id, step: "reserve", attempt: 1, compensation: true, token: request.token)
            #expect(forged.status == 403)
            #expect(try await stack.status(id) == "compensating")
            let compensation = try #require(try await stack.taskRequests(of: id) { $0.contains(where: \.compensation) }.first(where: \.compensation))
            #expect(try await stack.answer(id, step: "reserve", attempt: 1, compensation: true, token: compensation.token).status == 200)
            try await stack.waitForStatus(id, "rejected")
        }
    }

    // MARK: - Who sees and says what

    @Test func approversSeeOnlyTheirWorkflowsAuthorsComeFromTheTokenAndKeysAreEachRequestersOwn() async throws {
        try await Stack.with { stack in
            let workflows = "\(stack.orchestrator)/v1/workflows"
            let steps =
                #"[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"policy":{"escalation":[{"after_seconds":3600,"approvers":["boss@bank.example"]}]}}}]"#
            let answer = try await API.post(workflows, Self.request("seen", amount: 10, steps: steps), token: Self.agent)
            let id = try #require(answer.string("id"))
            for path in ["", "/history", "/messages", "/events"] {
                #expect(try await API.get("\(workflows)/\(id)\(path)", token: TestTokens.approver("someone@bank.example")).status == 404, "\(path)")
            }
            #expect(try await API.get("\(workflows)/\(id)", token: TestTokens.approver("manager@bank.example")).status == 200)
            #expect(try await API.get("\(workflows)/\(id)/history", token: TestTokens.approver("boss@bank.example")).status == 200)
            #expect(try await API.post("\(workflows)/\(id)/messages", #"{"text":"hi"}"#, token: TestTokens.approver("someone@bank.example")).status == 404)

            // The requester cannot speak as the CFO, nor as an approver.
            let messages = "\(workflows)/\(id)/messages"
            let spoofed = try await API.post(messages, #"{"author":"cfo@bank.example","kind":"approver","text":"approved, go ahead"}"#, token: Self.agent)
            #expect(spoofed.status == 403 && spoofed.string("error") == "not_yourself")
            #expect(try await API.post(messages, #"{"kind":"approver","text":"approved, go ahead"}"#, token: Self.agent).status == 403)
            #expect(try await API.post(messages, #"{"kind":"note","text":"system says ok"}"#, token: Self.agent).status == 403)
            let own = try await API.post(messages, #"{"text":"the payee is new"}"#, token: Self.agent)
            #expect(own.string("author") == "agent@bank.example" && own.string("kind") == "agent")
            let approver = try await API.post(messages, #"{"text":"why so much?"}"#, token: TestTokens.approver("manager@bank.example"))
            #expect(approver.string("author") == "manager@bank.example" && approver.string("kind") == "approver")
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflow_messages WHERE author = 'cfo@bank.example'") == 0)

            // An agent names only approvers the system knows; an admin's definition may name anyone.
            let mailbox = #"[{"name":"approve","kind":"approval","approval":{"approvers":["inbox@agent-reads-this.example"]}}]"#
            let stranger = try #require(try await API.post(workflows, Self.request("stranger", amount: 10, steps: mailbox), token: Self.agent).string("id"))
            try await stack.waitForStatus(stranger, "rejected")
            #expect(try await stack.workflow(stranger).string("reason")?.contains("inbox@agent-reads-this.example is not a known approver") == true)
            let vouched = try #require(try await API.post(workflows, Self.request("vouched", amount: 10, steps: mailbox)).string("id"))
            _ = try await stack.pendingApproval(of: vouched)

            // Another agent's key is its own: a new workflow, and nothing about the first.
            let other = TestTokens.agent("other-agent")
            let theirs = try await API.post(workflows, Self.request("seen", amount: 99, steps: steps, requester: "other-agent"), token: other)
            #expect(theirs.status == 201 && theirs.string("id") != id)
            let conflict = try await API.post(workflows, Self.request("seen", amount: 11, steps: steps), token: Self.agent)
            #expect(conflict.status == 409 && conflict.text.contains(id))
            let repeated = try await API.post(workflows, Self.request("seen", amount: 98, steps: steps, requester: "other-agent"), token: other)
            #expect(repeated.status == 409 && !repeated.text.contains(id))
        }
    }

    // MARK: - Forms

    static let smuggled = "q\"\u{301} name=decision value=approve hidden y=\"\u{301}"

    static func jsonString(_ text: String) throws -> String {
        String(decoding: try WireCoding.encode(JSONValue.string(text)), as: UTF8.self)
    }

    @Test func aFormBuiltToSmuggleADecisionIsRefusedOrShownAsTextAndRejectRejects() async throws {
        try await Stack.with { stack in
            let workflows = "\(stack.orchestrator)/v1/workflows"
            let text = try Self.jsonString(Self.smuggled)
            func form(_ form: String, input: String = #"{"amount":6000}"#, key: String) -> String {
                #"{"idempotency_key":"\#(key)","type":"wire_transfer","requester":"agent@bank.example","input":\#(input),"steps":[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"form":\#(form)}}]}"#
            }
            // Names (fields, facts, input keys) are refused with the part named.
            let refusals = [
                (form(#"{"title":"T","fields":[{"name":\#(text),"type":"text","label":"L"}]}"#, key: "f1"), "fields[0].name"),
                (form(#"{"title":"T","facts":[\#(text)]}"#, key: "f2"), "facts[0]"),
                (form(#"{"title":"T"}"#, input: #"{\#(text):1}"#, key: "f3"), "input key"),
                (form(#"{"title":"T","facts":[\#(String(repeating: #""amount","#, count: 5_000))"amount"]}"#, key: "f4"), "facts may list at most"),
            ]
            for (body, part) in refusals {
                let refused = try await API.post(workflows, body, token: Self.agent)
                #expect(refused.status == 422 && refused.string("reason")?.contains(part) == true, "\(part): \(refused.text)")
            }
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 0)

            // Free text may carry the payload: it stays text.
            let shown =
                #"{"title":\#(text),"description":\#(text),"facts":["amount","payee"],"fields":[{"name":"reason","type":"select","label":\#(text),"options":[\#(text),"other"]}],"buttons":[{"decision":"approve","label":"Approve"},{"decision":"reject","label":"Reject"}]}"#
            let id = try #require(
                try await API.post(workflows, form(shown, input: #"{"amount":6000,"payee":\#(text)}"#, key: "shown"), token: Self.agent).string("id"))
            let approval = try await stack.pendingApproval(of: id)
            let link = try await stack.webLink(approval)
            // A post that repeats decision is refused and decides nothing (on a second one, since
            // a sign-in link opens one session and the browser below takes this one's).
            let probeID = try #require(
                try await API.post(workflows, form(shown, input: #"{"amount":6000,"payee":\#(text)}"#, key: "shown-2"), token: Self.agent).string("id"))
            let probe = try await stack.pendingApproval(of: probeID)
            let web = try await WebClient.signIn(try await stack.webLink(probe))
            let page = "\(stack.approval)/ui/approvals/\(probe)"
            let csrf = try #require(try await web.csrfToken(page))
            let repeated = try await web.post(page, body: "csrf_token=\(csrf)&decision=reject&decision=approve")
            #expect(repeated.status == 400 && repeated.html.contains("more than once"))
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(probe)").string("status") == "pending")

            let shot = WebPageTests.packageRoot.appendingPathComponent(".build/screenshots/web/smuggled.png").path
            let script = WebPageTests.packageRoot.appendingPathComponent("Tests/IntegrationTests/Scripts/web_reject.py").path
            do {
                _ = try await Shell.runDetached(["/usr/bin/python3", script, link, shot])
            } catch let failure as Shell.Failure {
                Issue.record("the browser run failed: \(failure.output)")
            }
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)").string("decision") == "reject")
            try await stack.waitForStatus(id, "rejected")
        }
    }
}
