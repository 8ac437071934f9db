import Contracts
import Foundation
import ServiceKitTesting
import Testing

/// Slack against a local stand-in that checks what Slack checks (SlackStub): messages
/// posted to each approver despite a 429, clicks verified (forged and stale signatures
/// refused), non-assignees and unlinked users decide nothing, the decision replaces every
/// message, a late click is told who decided; a form that needs input opens a modal whose
/// submission is checked like any other.
@Suite(.serialized, .timeLimit(.minutes(10))) struct SlackTests {
    static let users = "manager@bank.example=U0MANAGER,boss@bank.example=U0BOSS,ann@bank.example=U0ANN"

    @Test func approversAreAskedInSlackAndTheFirstValidClickDecidesEverywhere() async throws {
        try await SlackStub.with(rateLimited: 1) { slack in
            try await Stack.with(environment: slack.environment(users: Self.users)) { stack in
                let steps =
                    #"[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example","boss@bank.example"]}},{"name":"execute","kind":"task","task":{"type":"noop"}}]"#
                let id = try await stack.submit(key: "slack-1", input: #"{"amount":6000}"#, steps: steps)
                let approval = try await stack.pendingApproval(of: id)
                try await waitUntil("both approvers have their message") {
                    Set(await slack.calls.items.filter { $0.method == "chat.postMessage" && $0.answer == "ok" }.compactMap { $0.body["channel"]?.stringValue })
                        == ["U0MANAGER", "U0BOSS"]
                }
                // The 429 was honoured: the retry waited for Retry-After.
                let posts = await slack.calls.items.filter { $0.method == "chat.postMessage" }
                let limited = try #require(posts.first { $0.answer == "429" })
                let retried = try #require(posts.first { $0.answer == "ok" && $0.body["channel"] == limited.body["channel"] })
                #expect(retried.at.timeIntervalSince(limited.at) >= 0.95)
                let message = try #require(posts.first { $0.answer == "ok" })
                #expect(String(describing: message.body["blocks"]).contains("\(approval):approve"))

                let click = await slack.click(user: "U0BOSS", value: "\(approval):approve")
                #expect(try await slack.interact(stack.approval, click, secret: "not-the-signing-secret-at-all").status == 401)
                #expect(try await slack.interact(stack.approval, click, signedAt: Date().addingTimeInterval(-360)).status == 401)
                #expect(try await slack.interact(stack.approval, await slack.click(user: "U0ANN", value: "\(approval):approve")).status == 200)
                #expect(try await slack.interact(stack.approval, await slack.click(user: "U0NOBODY", value: "\(approval):approve")).status == 200)
                try await waitUntil("the refused clickers are told") { await slack.responses.count == 2 }
                let told = await slack.responses.items.compactMap { $0["text"]?.stringValue }
                #expect(told.contains { $0.contains("you are not an approver") } && told.contains { $0.contains("not linked to an approver") })
                #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)").string("status") == "pending")

                #expect(try await slack.interact(stack.approval, click).status == 200)
                try await stack.waitForStatus(id, "completed")
                let decided = try await API.get("\(stack.approval)/v1/approvals/\(approval)")
                #expect(decided.string("decided_by") == "boss@bank.example" && decided.string("channel") == "slack")
                try await waitUntil("both messages are replaced") {
                    await slack.calls.items.filter {
                        $0.method == "chat.update" && $0.answer == "ok" && String(describing: $0.body["text"]).contains("by boss@bank.example via slack")
                    }.count == 2
                }
                _ = try await slack.interact(stack.approval, await slack.click(user: "U0MANAGER", value: "\(approval):reject"))
                try await waitUntil("the late clicker is told who decided") {
                    await slack.responses.items.contains { $0["text"]?.stringValue?.contains("already approved by boss@bank.example via slack") == true }
                }
                #expect(try await stack.events(on: .approvalDecisions).count == 1)
            }
        }
    }

    @Test func aDecisionThatNeedsTheFormOpensAModalCheckedOnSubmit() async throws {
        try await SlackStub.with { slack in
            try await Stack.with(environment: slack.environment(users: Self.users)) { stack in
                let form =
                    #"{"title":"Wire transfer","fields":[{"name":"reason","type":"select","label":"Reason","required":true,"options":["budget","risk"]},{"name":"limit","type":"number","label":"Limit","max":10000}]}"#
                let steps =
                    #"[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"form":\#(form)}},{"name":"execute","kind":"task","task":{"type":"noop"}}]"#
                let id = try await stack.submit(key: "slack-modal", input: #"{"amount":6000}"#, steps: steps)
                let approval = try await stack.pendingApproval(of: id)
                try await waitUntil("the message is posted") { await slack.calls.items.contains { $0.method == "chat.postMessage" && $0.answer == "ok" } }

                #expect(try await slack.interact(stack.approval, await slack.click(user: "U0MANAGER", value: "\(approval):approve")).status == 200)
                let opened = try #require(await slack.calls.items.first { $0.method == "views.open" })
                #expect(opened.answer == "ok")
                let view = try #require(opened.body["view"]?.objectValue)
                #expect(view["private_metadata"] == .string("\(approval):approve"))

                func submission(reason: String, limit: String) -> JSONObject {
                    let values: JSONObject = [
                        "reason": .object(["value": .object(["type": "static_select", "selected_option": .object(["value": .string(reason)])])]),
                        "limit": .object(["value": .object(["type": "number_input", "value": .string(limit)])]),
                        "comment": .object(["value": .object(["type": "plain_text_input", "value": "via the modal"])]),
                    ]
                    return [
                        "type": "view_submission", "user": .object(["id": "U0MANAGER"]),
                        "view": .object([
                            "callback_id": view["callback_id"] ?? "", "private_metadata": view["private_metadata"] ?? "",
                            "state": .object(["values": .object(values)]),
                        ]),
                    ]
                }
                let wrong = try await slack.interact(stack.approval, submission(reason: "vibes", limit: "99999"))
                #expect(wrong.body["response_action"] == "errors")
                #expect(wrong.body["errors"] == .object(["reason": "reason must be one of budget, risk", "limit": "limit must be at most 10000"]))
                #expect(try await stack.count("SELECT count(*)::int FROM approval.approval_votes") == 0)

                let ok = try await slack.interact(stack.approval, submission(reason: "budget", limit: "5000"))
                #expect(ok.body["response_action"] == "clear")
                try await stack.waitForStatus(id, "completed")
                let decided = try await API.get("\(stack.approval)/v1/approvals/\(approval)")
                #expect(decided["fields"] == .object(["reason": "budget", "limit": 5000]) && decided.string("comment") == "via the modal")
            }
        }
    }
}
