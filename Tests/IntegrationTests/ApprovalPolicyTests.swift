import Contracts
import Foundation
import ServiceKitTesting
import Testing

@testable import OrchestratorService

/// Approval policies over the real processes: quorum with a veto, separation of duties,
/// groups, priority deadlines and allowed outcomes.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ApprovalPolicyTests {
    static let environment = [
        "HITL_APPROVAL_GROUPS": "finance=ann@bank.example,bob@bank.example;risk=cy@bank.example",
        "HITL_APPROVAL_PRIORITY_DEADLINES": "high=3600",
    ]

    static func steps(policy: String, approvers: String = #"["group:finance","group:risk"]"#) -> String {
        #"""
        [{"name":"approve","kind":"approval","approval":{"approvers":\#(approvers),"policy":\#(policy)}},
         {"name":"execute","kind":"task","task":{"type":"noop"}}]
        """#
    }

    @Test func twoOfThreeApprovesOnTheSecondVoteAndAVetoRejectsAtOnce() async throws {
        try await Stack.with(environment: Self.environment) { stack in
            let policy = #"{"quorum":"n_of_m","required":2,"veto":["group:risk"],"priority":"high"}"#
            let first = try await stack.submit(key: "quorum-1", input: #"{"amount":6000}"#, steps: Self.steps(policy: policy))
            let approval = try await stack.pendingApproval(of: first)
            let shown = try await API.get("\(stack.approval)/v1/approvals/\(approval)")
            #expect(shown["approvers"] == .array(["ann@bank.example", "bob@bank.example", "cy@bank.example"]))
            #expect(shown.body["policy"]?.objectValue?["vetoers"] == .array(["cy@bank.example"]))
            // The priority set the deadline (high = 3600 s here).
            let deadline = try #require(shown.string("deadline").flatMap(WireCoding.parseTime))
            #expect(abs(deadline.timeIntervalSinceNow - 3600) < 120)
            try await waitUntil("the notification to the resolved assignees") {
                await stack.webhook.accepted.items.contains { $0.approvalId == approval && $0.recipients.count == 3 }
            }

            let vote = try await stack.decide(approval, "approve", approver: "ann@bank.example")
            #expect(vote.status == 202 && vote.string("status") == "pending")
            #expect(try await stack.decide(approval, "approve", approver: "ann@bank.example").string("error") == "already_voted")
            #expect(try await stack.status(first) == "waiting_approval")
            let deciding = try await stack.decide(approval, "approve", approver: "bob@bank.example")
            #expect(deciding.status == 200 && deciding.string("status") == "approved")
            try await stack.waitForStatus(first, "completed")
            let late = try await stack.decide(approval, "reject", approver: "cy@bank.example")
            #expect(late.status == 409 && late.string("decided_by") == "bob@bank.example")

            let second = try await stack.submit(key: "quorum-2", input: #"{"amount":6000}"#, steps: Self.steps(policy: policy))
            let vetoed = try await stack.pendingApproval(of: second)
            #expect(try await stack.decide(vetoed, "approve", approver: "ann@bank.example").status == 202)
            let veto = try await stack.decide(vetoed, "reject", approver: "cy@bank.example", comment: "too risky")
            #expect(veto.status == 200 && veto.string("status") == "rejected")
            try await stack.waitForStatus(second, "rejected")
            // One decision event per approval, whatever the number of votes.
            let decisions = try await stack.events(on: .approvalDecisions).filter { $0.type == .approvalDecided }
            #expect(decisions.count == 2)
        }
    }

    @Test func theRequesterMayNotApproveTheirOwnRequestAndOutcomesAreLimited() async throws {
        try await Stack.with(environment: Self.environment) { stack in
            let policy = #"{"outcomes":["approve","reject"]}"#
            let id = try await stack.submit(
                key: "self-1", input: #"{"amount":6000}"#,
                steps: Self.steps(policy: policy, approvers: #"["agent@bank.example","manager@bank.example"]"#))
            let approval = try await stack.pendingApproval(of: id)
            let own = try await stack.decide(approval, "approve", approver: "agent@bank.example")
            #expect(own.status == 403 && own.string("error") == "own_request")
            let changes = try await stack.decide(
                approval, json: #"{"decision":"approve_with_changes","approver":"manager@bank.example","changes":{"amount":1}}"#)
            #expect(changes.status == 422 && changes.string("error") == "outcome_not_allowed")
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approval_votes") == 0)
            #expect(try await stack.decide(approval, "approve", approver: "manager@bank.example").status == 200)
            try await stack.waitForStatus(id, "completed")

            let invalid = try await stack.submit(
                #"{"idempotency_key":"bad-policy","type":"t","requester":"a","input":{},"steps":\#(Self.steps(policy: #"{"quorum":"n_of_m","required":5}"#, approvers: #"["a","b"]"#))}"#
            )
            #expect(invalid.status == 422 && invalid.string("reason") == "steps[0] (approve): approval.policy.required (5) is more than the 2 approvers")
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct DelegationTests {
    @Test func requestsInTheDelegationPeriodGoToTheDelegateWhoDecidesOnTheApproversBehalf() async throws {
        try await Stack.with { stack in
            let ends = WireCoding.formatTime(Date().addingTimeInterval(3600))
            let created = try await API.post(
                "\(stack.approval)/v1/delegations",
                #"{"approver":"ann@bank.example","delegate":"dan@bank.example","ends_at":"\#(ends)","reason":"holiday"}"#)
            #expect(created.status == 201)
            #expect(try await API.post("\(stack.approval)/v1/delegations", #"{"approver":"a","delegate":"a","ends_at":"\#(ends)"}"#).status == 400)
            let steps = ApprovalPolicyTests.steps(policy: "{}", approvers: #"["ann@bank.example"]"#)
            let id = try await stack.submit(key: "away-1", input: #"{"amount":6000}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)")["approvers"] == .array(["dan@bank.example"]))
            try await waitUntil("the delegate's notification") {
                await stack.webhook.accepted.items.contains { $0.approvalId == approval && $0.recipients == ["dan@bank.example"] }
            }
            #expect(try await stack.decide(approval, "approve", approver: "ann@bank.example").status == 403)
            let decided = try await stack.decide(approval, "approve", approver: "dan@bank.example")
            #expect(decided.status == 200)
            try await stack.waitForStatus(id, "completed")
            #expect(try await stack.history(id).first { $0.event == "approved" }?.actor == "approver:dan@bank.example via api on behalf of ann@bank.example")

            // Ended: the next request goes to ann again.
            guard case .number(let delegation)? = created["id"] else { Issue.record("no delegation id"); return }
            #expect(try await API.call("DELETE", "\(stack.approval)/v1/delegations/\(Int(delegation))").status == 204)
            let next = try await stack.submit(key: "away-2", input: #"{"amount":6000}"#, steps: steps)
            let nextApproval = try await stack.pendingApproval(of: next)
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(nextApproval)")["approvers"] == .array(["ann@bank.example"]))
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct EscalationTests {
    @Test func anUnansweredApprovalRemindsThenEscalatesAndTheNextLevelDecides() async throws {
        try await Stack.with { stack in
            // The escalation comes well after the first reminder, so that "not yet" holds on a loaded machine.
            let policy = #"{"reminder_seconds":1,"escalation":[{"after_seconds":6,"approvers":["boss@bank.example"]}]}"#
            let steps = #"""
                [{"name":"approve","kind":"approval","approval":{"approvers":["ann@bank.example"],"timeout_seconds":60,"policy":\#(policy)}},
                 {"name":"execute","kind":"task","task":{"type":"noop"}}]
                """#
            let id = try await stack.submit(key: "escalate-1", input: #"{"amount":6000}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            try await waitUntil("a reminder to ann") {
                await stack.webhook.accepted.items.contains { $0.reason == "approval_reminder" && $0.recipients == ["ann@bank.example"] }
            }
            #expect(try await stack.decide(approval, "approve", approver: "boss@bank.example").status == 403)  // not yet
            try await waitUntil("the escalation to the boss") {
                await stack.webhook.accepted.items.contains { $0.reason == "approval_escalated" && $0.recipients == ["boss@bank.example"] }
            }
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)")["approvers"] == .array(["ann@bank.example", "boss@bank.example"]))
            try await waitUntil("a reminder to both") {
                await stack.webhook.accepted.items.contains { $0.reason == "approval_reminder" && $0.recipients.count == 2 }
            }
            #expect(try await stack.decide(approval, "approve", approver: "boss@bank.example").status == 200)
            try await stack.waitForStatus(id, "completed")
        }
    }

    @Test func anApprovalDecidedEarlyIsNeitherRemindedNorEscalatedNorExpiredWhenItsTimersFire() async throws {
        try await Stack.with { stack in
            // Short timers, so that they all fire during the test: a decision leaves them
            // scheduled, and each firing must find the approval closed and change nothing.
            let policy =
                #"{"reminder_seconds":1,"escalation":[{"after_seconds":2,"approvers":["boss@bank.example"]},{"after_seconds":3,"approvers":["cfo@bank.example"]}]}"#
            let steps = #"[{"name":"approve","kind":"approval","approval":{"approvers":["ann@bank.example"],"timeout_seconds":4,"policy":\#(policy)}}]"#
            let id = try await stack.submit(key: "escalate-early", input: #"{"amount":6000}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            #expect(try await stack.decide(approval, "approve", approver: "ann@bank.example").status == 200)
            try await stack.waitForStatus(id, "completed")
            try await waitUntil("its four timers to fire") {
                try await stack.count("SELECT count(*)::int FROM timeout.timers WHERE owner = 'approval' AND status = 'fired'") == 4
            }
            try await waitUntil("the approval service to take the four firings") {
                try await stack.metric("hitl_events_processed_total", labels: [#"type="hitl.timer.fired.v1""#, #"result="applied""#], in: "approval") == 4
            }
            let told = await stack.webhook.accepted.items.map(\.reason)
            #expect(!told.contains("approval_reminder") && !told.contains("approval_escalated") && !told.contains("approval_expired"), "\(told)")
            let after = try await API.get("\(stack.approval)/v1/approvals/\(approval)")
            #expect(after.string("status") == "approved" && after["approvers"] == .array(["ann@bank.example"]))
            #expect(try await stack.events(id).last == "completed")
        }
    }

    @Test func onExpiryThePolicyDecidesAndIsRecordedAsThePolicyNotAHuman() async throws {
        try await Stack.with { stack in
            let steps = #"""
                [{"name":"approve","kind":"approval","approval":{"approvers":["ann@bank.example"],"timeout_seconds":2,"policy":{"on_expiry":"reject"}}},
                 {"name":"execute","kind":"task","task":{"type":"noop"}}]
                """#
            let id = try await stack.submit(key: "expiry-1", input: #"{"amount":6000}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            try await stack.waitForStatus(id, "rejected")
            let shown = try await API.get("\(stack.approval)/v1/approvals/\(approval)")
            #expect(shown.string("status") == "rejected" && shown.string("decided_by") == "on_expiry" && shown.string("channel") == "policy")
            let entry = try #require(try await stack.history(id).first { $0.event == "rejected_step" })
            #expect(entry.actor == "policy:on_expiry")
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct ApprovalFormTests {
    @Test func fieldsAreCheckedOnSubmitAndBecomeTheStepsOutputForLaterSteps() async throws {
        try await Stack.with { stack in
            let form =
                #"{"title":"Wire transfer","facts":["amount"],"fields":[{"name":"reason","type":"select","label":"Reason","required":true,"options":["budget","risk"]},{"name":"limit","type":"number","label":"Limit","max":10000}]}"#
            let steps = #"""
                [{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"form":\#(form)}},
                 {"name":"execute","kind":"task","task":{"type":"agent"}}]
                """#
            let id = try await stack.submit(key: "form-1", input: #"{"amount":6000,"secret":"x"}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            try await waitUntil("the notification with the form") {
                await stack.webhook.accepted.items.contains { $0.approvalId == approval && $0.form?.title == "Wire transfer" && $0.facts?["amount"] == 6000 }
            }
            let note = try #require(await stack.webhook.accepted.items.first { $0.approvalId == approval })
            #expect(note.text.contains("amount: 6000") && !note.text.contains("secret"))
            // Chat frontends get the same form as markdown.
            #expect(note.markdown?.contains("**Wire transfer**") == true && note.markdown?.contains("- **amount**: 6000") == true)
            // Required fields need the form, so no one-click links are offered.
            #expect(!note.links.keys.contains { $0.hasPrefix("approve:") })

            let missing = try await stack.decide(approval, json: #"{"decision":"approve","approver":"manager@bank.example"}"#)
            #expect(missing.status == 422 && missing.string("reason") == "reason is required")
            let wrong = try await stack.decide(
                approval, json: #"{"decision":"approve","approver":"manager@bank.example","fields":{"reason":"vibes","limit":99999}}"#)
            #expect(wrong.status == 422 && wrong["problems"] == .array(["reason must be one of budget, risk", "limit must be at most 10000"]))
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approval_votes") == 0)

            let ok = try await stack.decide(
                approval, json: #"{"decision":"approve","approver":"manager@bank.example","fields":{"reason":"budget","limit":5000}}"#)
            #expect(ok.status == 200 && ok["fields"] == .object(["reason": "budget", "limit": 5000]))
            let request = try #require(try await stack.taskRequests(of: id).first)
            #expect(request.outputs["approve"] == .object(["reason": "budget", "limit": 5000]))
            try await stack.answer(id, step: "execute")
            try await stack.waitForStatus(id, "completed")

            let invalid = try await stack.submit(
                #"{"idempotency_key":"form-bad","type":"t","requester":"a","input":{},"steps":[{"name":"approve","kind":"approval","approval":{"approvers":["m"],"form":{"title":"x","fields":[{"name":"r","type":"select","label":"R"}]}}}]}"#
            )
            #expect(invalid.status == 422 && invalid.string("reason") == "steps[0] (approve): approval.form.fields[0] (r): a select needs options")
        }
    }
}

/// Groups managed over the API, next to configured ones: admins only, checked, resolved
/// when an approval is created so a later change leaves it alone.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ApproverGroupTests {
    @Test func adminsManageGroupsAndAnApprovalKeepsTheMembersItWasCreatedWith() async throws {
        try await Stack.with(environment: ["HITL_APPROVAL_GROUPS": "finance=fin@bank.example"]) { stack in
            let groups = "\(stack.approval)/v1/groups"
            #expect(
                try await API.call("PUT", "\(groups)/ops", json: #"{"members":["ann@bank.example"]}"#, token: TestTokens.approver("ann@bank.example")).status
                    == 403)
            let badName = try await API.call("PUT", "\(groups)/Ops!", json: #"{"members":["ann@bank.example"]}"#)
            #expect(badName.status == 422 && badName.string("error") == "invalid_group")
            #expect(
                try await API.call("PUT", "\(groups)/ops", json: #"{"members":["group:finance"]}"#).string("reason")
                    == "group:finance: groups hold users, not other groups")
            #expect(try await API.call("PUT", "\(groups)/ops", json: #"{"members":[]}"#).status == 422)
            #expect(try await API.call("PUT", "\(groups)/finance", json: #"{"members":["x@bank.example"]}"#).string("error") == "configured_group")
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approver_groups") == 0)

            #expect(try await API.call("PUT", "\(groups)/ops", json: #"{"members":["ann@bank.example","bob@bank.example"]}"#).status == 201)
            let replaced = try await API.call("PUT", "\(groups)/ops", json: #"{"members":["ann@bank.example","cy@bank.example"]}"#)
            #expect(replaced.status == 200 && replaced.string("updated_by") == "ops@bank.example")
            let listed = try await API.get(groups).items
            #expect(listed.map { $0["name"] } == ["finance", "ops"] && listed.map { $0["source"] } == ["configuration", "api"])

            let steps =
                #"[{"name":"approve","kind":"approval","approval":{"approvers":["group:ops"]}},{"name":"execute","kind":"task","task":{"type":"noop"}}]"#
            let id = try await stack.submit(key: "group-1", input: #"{"amount":1}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)")["approvers"] == .array(["ann@bank.example", "cy@bank.example"]))

            // A later change leaves the open approval as it was.
            #expect(try await API.call("PUT", "\(groups)/ops", json: #"{"members":["dan@bank.example"]}"#).status == 200)
            #expect(try await stack.decide(approval, "approve", approver: "dan@bank.example").status == 403)
            #expect(try await stack.decide(approval, "approve", approver: "cy@bank.example").status == 200)
            try await stack.waitForStatus(id, "completed")
            #expect(try await API.call("DELETE", "\(groups)/ops").status == 204)
            #expect(try await API.get("\(groups)/ops").status == 404)
        }
    }
}
