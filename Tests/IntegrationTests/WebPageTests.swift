import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

@testable import OrchestratorService

/// The approvers' web pages in a real browser (headless Chromium driven by Selenium, see
/// Scripts/web_approval.py): sign-in link, form, CSRF refusal, a decision by clicking, the
/// decided page, inbox and timeline. Screenshots go to .build/screenshots/web. Approving
/// with changes is checked over HTTP.
@Suite(.serialized, .timeLimit(.minutes(10))) struct WebPageTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func anApproverEditsTheFactsAndApprovesWithChangesFromThePage() async throws {
        try await Stack.with { stack in
            let form =
                #"{"title":"Wire transfer","facts":["amount","to"],"buttons":[{"decision":"approve","label":"Approve"},{"decision":"approve_with_changes","label":"Approve with changes"},{"decision":"reject","label":"Reject"}]}"#
            let steps = #"""
                [{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"form":\#(form)}},
                 {"name":"execute","kind":"task","task":{"type":"agent"}}]
                """#
            let id = try await stack.submit(key: "web-changes", input: #"{"amount":6000,"to":"ACME GmbH","urgent":true}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            let link = try await stack.webLink(approval)
            let web = try await WebClient.signIn(link)
            let page = "\(stack.approval)/ui/approvals/\(approval)"
            let html = try await web.get(page).html
            // The shown facts can be edited, with their current values; the others are not offered.
            #expect(html.contains(#"name="change.amount" value="6000""#) && html.contains(#"name="change.to" value="ACME GmbH""#))
            #expect(!html.contains("change.urgent"))
            #expect(html.contains(#"value="approve_with_changes""#))
            let csrf = try #require(try await web.csrfToken(page))

            // Nothing changed, or a number that is not one: refused with the reason, nothing decided.
            let unchanged = try await web.post(
                page, ["csrf_token": csrf, "decision": "approve_with_changes", "change.amount": "6000", "change.to": "ACME GmbH"])
            #expect(unchanged.status == 422 && unchanged.html.contains("Change at least one value"))
            let notANumber = try await web.post(
                page, ["csrf_token": csrf, "decision": "approve_with_changes", "change.amount": "lots", "change.to": "ACME GmbH"])
            #expect(notANumber.status == 422 && notANumber.html.contains("amount must be a number"))
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approval_votes") == 0)

            let decided = try await web.post(page, ["csrf_token": csrf, "decision": "approve_with_changes", "change.amount": "5500", "change.to": "ACME GmbH"])
            #expect(decided.status == 303)
            _ = try await stack.waitForStep(id, "execute", "running")
            #expect(try await stack.workflow(id)["input"] == .object(["amount": 5500, "to": "ACME GmbH", "urgent": true]))
            let entry = try #require(try await stack.history(id).first { $0.event == "approved_with_changes" })
            #expect(entry.detail["changes"] == .object(["amount": .object(["from": 6000, "to": 5500])]))
        }
    }

    /// A sign-in link is a credential carried by mail or chat: it opens one browser session,
    /// once, for its approval's workflow only.
    @Test func aSignInLinkOpensOneSessionForItsWorkflowOnly() async throws {
        try await Stack.with { stack in
            let first = try #require(try await stack.submit(API.workflow(key: "scope-1")).string("id"))
            let second = try #require(try await stack.submit(API.workflow(key: "scope-2")).string("id"))
            let (mine, other) = (try await stack.pendingApproval(of: first), try await stack.pendingApproval(of: second))
            let link = try await stack.webLink(mine)
            // Fetching the link (a mail scanner does) shows a page and uses nothing up.
            for _ in 0..<2 { #expect(try await WebClient().get(link).html.contains("Sign in as manager@bank.example")) }
            let web = try await WebClient.signIn(link)
            #expect(web.cookie.hasPrefix("hitl_s_" + first.replacingOccurrences(of: "-", with: "") + "="), "\(web.cookie)")
            // Used: another browser (or whoever found the link later) is refused.
            let reused = try await WebClient().post(link, [:])
            #expect(reused.status == 410 && reused.html.contains("used already"), "\(reused.status) \(reused.html.prefix(300))")
            // The browser that used it comes back through it without trouble.
            #expect(try await web.get(link).status == 303)
            // The session is for its workflow: the other approval of the same approver is not there.
            #expect(try await web.get("\(stack.approval)/ui/approvals/\(mine)").status == 200)
            #expect(try await web.get("\(stack.approval)/ui/approvals/\(other)").status == 404)
            let inbox = try await web.get("\(stack.approval)/ui/inbox").html
            #expect(inbox.contains(mine) && !inbox.contains(other))
            #expect(try await web.get("\(stack.approval)/ui/workflows/\(second)/timeline").status == 404)
            #expect(try await web.get("\(stack.approval)/ui/workflows/\(first)/timeline").status == 200)
            // Signing in for the second workflow in the same browser keeps the first session.
            let both = WebClient(cookie: web.cookie + "; " + (try await WebClient.signIn(try await stack.webLink(other))).cookie)
            #expect(try await both.get("\(stack.approval)/ui/approvals/\(mine)").status == 200)
            #expect(try await both.get("\(stack.approval)/ui/approvals/\(other)").status == 200)
        }
    }

    @Test func anApproverSignsInThroughTheLinkAndDecidesByClicking() async throws {
        try await Stack.with { stack in
            let form =
                #"{"title":"Wire transfer","facts":["amount"],"fields":[{"name":"reason","type":"select","label":"Reason","required":true,"options":["budget","risk"]},{"name":"limit","type":"number","label":"Limit","max":10000}]}"#
            let steps = #"""
                [{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"form":\#(form)}},
                 {"name":"execute","kind":"task","task":{"type":"noop"}}]
                """#
            let id = try await stack.submit(key: "web-1", input: #"{"amount":6000}"#, steps: steps)
            let approval = try await stack.pendingApproval(of: id)
            let signIn = try await stack.webLink(approval)
            // The agent explains; approvers read it on the page (passed on to the approval service).
            let posted = try await API.post(
                "\(stack.orchestrator)/v1/workflows/\(id)/messages", #"{"text":"The beneficiary is a new supplier.","step":"approve"}"#,
                token: TestTokens.agent("agent@bank.example"))
            #expect(posted.status == 201)
            try await waitUntil("the message reaches the approval service") {
                try await stack.count("SELECT count(*)::int FROM approval.thread_messages") == 1
            }

            // Without the session the pages ask to sign in; a forged sign-in link is refused.
            #expect(try await API.get("\(stack.approval)/ui/inbox", token: nil).status == 401)
            #expect(try await API.get("\(stack.approval)/ui/approvals/\(approval)", token: nil).status == 401)
            #expect(try await API.get(signIn.dropLast(3) + "AAA", token: nil).status == 401)

            let shots = Self.packageRoot.appendingPathComponent(".build/screenshots/web").path
            let script = Self.packageRoot.appendingPathComponent("Tests/IntegrationTests/Scripts/web_approval.py").path
            do {
                _ = try await Shell.runDetached(["/usr/bin/python3", script, signIn, shots])
            } catch let failure as Shell.Failure {
                Issue.record("the browser run failed: \(failure.output)")
            }

            try await stack.waitForStatus(id, "completed")
            let decided = try await API.get("\(stack.approval)/v1/approvals/\(approval)")
            #expect(decided.string("channel") == "web" && decided.string("comment") == "fine by me")
            #expect(decided["fields"] == .object(["reason": "budget", "limit": 5000]))
            // The forged-CSRF post changed nothing: one vote, one decision event.
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approval_votes") == 1)
            #expect(try await stack.events(on: .approvalDecisions).count == 1)
        }
    }
}
