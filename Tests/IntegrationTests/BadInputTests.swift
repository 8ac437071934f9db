import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// Bad input gets a 4xx with a reason and changes nothing: no row, no event.
@Suite(.serialized, .timeLimit(.minutes(10))) struct BadInputTests {
    @Test func badSubmissionsAndDecisionsAreRefusedWithAReasonAndLeaveNoTrace() async throws {
        try await Stack.with { stack in
            let url = "\(stack.orchestrator)/v1/workflows"
            let cases: [(String, [UInt8], Int, String)] = [
                ("malformed JSON", Array(#"{"idempotency_key": "x", "#.utf8), 400, "malformed JSON"),
                ("missing field", Array(#"{"type":"t","requester":"r","input":{},"steps":[]}"#.utf8), 400, "missing field idempotency_key"),
                (
                    "unknown step kind", Array(API.workflow(key: "k1").replacingOccurrences(of: #""kind":"task""#, with: #""kind":"teleport""#).utf8), 400,
                    "steps.1.kind"
                ),
                (
                    "unknown task type", Array(API.workflow(key: "k2").replacingOccurrences(of: #""type":"noop""#, with: #""type":"rm -rf""#).utf8), 422,
                    "task.type rm -rf is unknown"
                ),
                (
                    "no approvers", Array(API.workflow(key: "k3").replacingOccurrences(of: #"["manager@bank.example"]"#, with: "[]").utf8), 422,
                    "approval.approvers"
                ),
                ("empty body", [], 400, "empty"),
                (
                    "oversized body", Array(#"{"idempotency_key":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: 300_000) + Array(#""}"#.utf8), 413,
                    "larger than"
                ),
            ]
            for (name, body, status, reason) in cases {
                let answer = try await API.call("POST", url, bytes: body)
                #expect(answer.status == status, "\(name): \(answer.text)")
                #expect(answer.string("reason")?.contains(reason) == true, "\(name): \(answer.text)")
            }
            // Most agent SDKs (Python's http.client here) send the whole body before reading:
            // the 413 must still reach them, rather than a reset or a timeout.
            let sendsFirst = """
                import http.client, sys, urllib.parse
                url = urllib.parse.urlsplit(sys.argv[1])
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
                body = b'{"idempotency_key":"' + b'a' * 8_000_000 + b'"}'
                connection.request("POST", url.path, body=body, headers={"Content-Type": "application/json", "Authorization": "Bearer " + sys.argv[2]})
                answer = connection.getresponse()
                print(answer.status, answer.read().decode())
                """
            let printed = try Shell.run(["python3", "-c", sendsFirst, url, TestTokens.admin])
            #expect(printed.hasPrefix("413 ") && printed.contains("larger than"), "\(printed)")
            // A value Postgres cannot hold (a NUL) is the client's mistake: 400, not a 500.
            let nul = try await API.get("\(stack.orchestrator)/v1/dead-letters?event_type=a%00b")
            #expect(nul.status == 400 && nul.string("reason")?.contains("cannot store") == true, "\(nul.text)")
            let unknownApproval = try await stack.decide(UUID().uuidString.lowercased(), "approve")
            #expect(unknownApproval.status == 404)
            #expect(unknownApproval.string("reason")?.hasPrefix("no approval") == true)
            let badDecision = try await API.post("\(stack.approval)/v1/approvals/\(UUID().uuidString)/decision", #"{"decision":"maybe","approver":"x"}"#)
            #expect(badDecision.status == 400)
            #expect(try await API.get("\(stack.orchestrator)/v1/workflows/\(UUID().uuidString)").status == 404)
            #expect(try await API.get("\(stack.orchestrator)/v1/workflows/not-an-id").status == 404)

            // Nothing was stored and nothing was published.
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 0)
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.outbox") == 0)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == 0)
            #expect(try await stack.events(on: .workflowEvents, settle: .seconds(1)).isEmpty)
            #expect(try await stack.events(on: .approvalRequests, settle: .seconds(1)).isEmpty)
        }
    }

    @Test func aDecisionFromSomeoneWhoIsNotAnApproverIsRefused() async throws {
        try await Stack.with { stack in
            let id = try #require(try await stack.submit(API.workflow(key: "who")).string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            let answer = try await stack.decide(approvalID, "approve", approver: "intern@bank.example")
            #expect(answer.status == 403)
            #expect(answer.string("error") == "not_an_approver")
            #expect(try await API.get("\(stack.approval)/v1/approvals/\(approvalID)").string("status") == "pending")
        }
    }
}
