import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

@testable import ApprovalService
@testable import OrchestratorService

/// Who may call what: bearer tokens with the roles agent, approver and admin.
@Suite(.serialized, .timeLimit(.minutes(10))) struct AccessTests {
    /// GET of a path exactly as written (`curl --path-as-is`), without a token; prints the status.
    static let rawGet = """
        import http.client, sys, urllib.parse
        url = urllib.parse.urlsplit(sys.argv[1])
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
        connection.request("GET", sys.argv[2])
        print(connection.getresponse().status)
        """

    @Test func rolesSeeAndDoOnlyWhatTheyMay() async throws {
        try await Stack.with { stack in
            let workflows = "\(stack.orchestrator)/v1/workflows"
            #expect(try await API.get(workflows, token: nil).status == 401)
            #expect(try await API.get(workflows, token: "garbage").string("reason") == "the token is not a JWT")
            #expect(try await API.get("\(stack.orchestrator)/health/ready", token: nil).status == 200)
            // However the path is spelled, the route it reaches has the route's check.
            for path in ["//v1/templates/x", "/v1//templates/x", "//v1//workflows", "///v1/workflows/"] {
                let raw = try Shell.run(["python3", "-c", Self.rawGet, stack.orchestrator, path])
                #expect(raw.hasPrefix("401"), "\(path): \(raw)")
            }
            #expect(try await API.get("\(stack.orchestrator)/v1/templates/x", token: TestTokens.approver("manager@bank.example")).status == 403)

            let ann = TestTokens.agent("ann-agent"), bob = TestTokens.agent("bob-agent")
            func request(_ key: String, requester: String) -> String {
                #"{"idempotency_key":"\#(key)","type":"t","requester":"\#(requester)","input":{},"steps":[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"]}}]}"#
            }
            let own = try await API.post(workflows, request("a-1", requester: "ann-agent"), token: ann)
            #expect(own.status == 201)
            let id = try #require(own.string("id"))
            let impersonation = try await API.post(workflows, request("a-2", requester: "bob-agent"), token: ann)
            #expect(impersonation.status == 403 && impersonation.string("error") == "not_yourself")
            let bobs = try await API.post(workflows, request("b-1", requester: "bob-agent"), token: bob)
            #expect(bobs.status == 201)

            #expect(try await API.get("\(workflows)/\(id)", token: ann).status == 200)
            #expect(try await API.get("\(workflows)/\(id)", token: bob).status == 404)
            #expect(try await API.get("\(workflows)/\(id)/history", token: bob).status == 404)
            #expect(try await API.post("\(workflows)/\(id)/pause", "{}", token: bob).status == 404)
            #expect(try await API.post("\(workflows)/\(id)/cancel", "{}", token: ann).status == 403)  // cancelling is an admin's
            #expect(try await API.get(workflows, token: ann).items.count == 1)
            #expect(try await API.get(workflows).items.count == 2)  // admin

            let manager = TestTokens.approver("manager@bank.example")
            #expect(try await API.post(workflows, request("m-1", requester: "manager@bank.example"), token: manager).status == 403)
            let approval = try await stack.pendingApproval(of: id)
            // Both workflows' approvals exist before they are counted.
            _ = try await stack.pendingApproval(of: try #require(bobs.string("id")))
            #expect(try await API.get("\(stack.approval)/v1/approvals?status=pending", token: manager).items.count == 2)
            #expect(try await API.get("\(stack.approval)/v1/approvals?status=pending", token: TestTokens.approver("someone@else")).items.isEmpty)
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)", token: TestTokens.approver("someone@else")).status == 404)
            let asSomeoneElse = try await API.post(
                "\(stack.approval)/v1/approvals/\(approval)/decision", #"{"decision":"approve","approver":"boss@bank.example"}"#, token: manager)
            #expect(asSomeoneElse.status == 403 && asSomeoneElse.string("error") == "not_yourself")
            #expect(try await API.post("\(stack.approval)/v1/approvals/\(approval)/decision", #"{"decision":"approve"}"#, token: ann).status == 403)
            #expect(try await API.call("PUT", "\(stack.orchestrator)/v1/templates/t", json: #"{"steps":[]}"#, token: ann).status == 403)
            #expect(try await API.get("\(stack.orchestrator)/v1/dead-letters", token: manager).status == 403)

            let decided = try await API.post("\(stack.approval)/v1/approvals/\(approval)/decision", #"{"decision":"approve"}"#, token: manager)
            #expect(decided.status == 200 && decided.string("decided_by") == "manager@bank.example")
            try await stack.waitForStatus(id, "completed")
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 2)
        }
    }
}

/// Signed decision links, as a chat frontend or an email would carry them.
@Suite(.serialized, .timeLimit(.minutes(10))) struct DecisionLinkTests {
    @Test func aLinkShowsWhatItWillDoDecidesOnceAndRefusesForgeriesExpiryAndRetiredKeys() async throws {
        try await Stack.with { stack in
            let id = try await stack.submit(key: "link-1", input: #"{"amount":6000}"#, steps: Definitions.threshold)
            let approval = try await stack.pendingApproval(of: id)
            var links: [String: String] = [:]
            try await waitUntil("the notification with its links") {
                links = await stack.webhook.accepted.items.first { $0.approvalId == approval }?.links ?? [:]
                return !links.isEmpty
            }
            // People open the links' confirmation pages (WebPageTests); programs use the same token under /v1/links/.
            let approve = try #require(links["approve:manager@bank.example"]).replacingOccurrences(of: "/ui/links/", with: "/v1/links/")
            let reject = try #require(links["reject:manager@bank.example"]).replacingOccurrences(of: "/ui/links/", with: "/v1/links/")
            // No read API returns a token.
            let token = String(approve.split(separator: "/").last ?? "")
            #expect(!(try await API.get("\(stack.approval)/v1/approvals/\(approval)").text.contains(token)))
            #expect(!(try await API.get("\(stack.approval)/v1/approvals?status=pending").text.contains(token)))

            // Opening the link (a mail scanner, a preview) decides nothing.
            let preview = try await API.get(approve, token: nil)
            #expect(preview.status == 200 && preview.string("decision") == "approve" && preview.string("status") == "pending")
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(approval)").string("status") == "pending")

            var tampered = Array(approve)
            tampered[tampered.count - 3] = tampered[tampered.count - 3] == "A" ? "B" : "A"
            #expect(try await API.post(String(tampered), "{}", token: nil).string("error") == "invalid_link")
            let prefix = "\(stack.approval)/v1/links/"
            let expired = DecisionTokens(keys: [("new", TestTokens.newDecisionKey)])
                .issue(approvalID: approval, approver: "manager@bank.example", decision: .approve, expiresAt: Date().addingTimeInterval(-5))
            #expect(try await API.post(prefix + expired, "{}", token: nil).status == 410)
            let retired = DecisionTokens(keys: [("older", "a-key-that-was-retired-0123456789abc")])
                .issue(approvalID: approval, approver: "manager@bank.example", decision: .approve, expiresAt: Date().addingTimeInterval(600))
            #expect(try await API.post(prefix + retired, "{}", token: nil).string("reason") == "the link was signed with a key that is no longer valid")

            // A link signed with the previous key still works during the rotation.
            let previousKey = DecisionTokens(keys: [("old", TestTokens.oldDecisionKey)])
                .issue(approvalID: approval, approver: "manager@bank.example", decision: .approve, expiresAt: Date().addingTimeInterval(600))
            let decided = try await API.post(prefix + previousKey, #"{"comment":"via the link"}"#, token: nil)
            #expect(decided.status == 200 && decided.string("channel") == "link")
            try await stack.waitForStatus(id, "completed")
            #expect(try await API.post(prefix + previousKey, "{}", token: nil).string("error") == "link_used")
            #expect(try await API.post(reject, "{}", token: nil).string("error") == "already_decided")
            #expect(try await stack.history(id).first { $0.event == "approved" }?.actor == "approver:manager@bank.example via link")
        }
    }
}
