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
                    // Foundation's decoder would spend seconds on it; refused unread.
                    "input nested 500 deep",
                    Array(
                        API.workflow(key: "k4").replacingOccurrences(
                            of: #""currency":"EUR""#, with: #""deep":"# + String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
                        ).utf8), 400, "more than \(WireCoding.inboundDepth) levels deep"
                ),
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

    /// The deepest input a request may carry travels through every service: the events and
    /// state that carry it further in stay within what every reader accepts, and the same
    /// input as a Kafka record one level deeper is dead-lettered with the reason.
    @Test func theDeepestAcceptedInputGoesThroughEveryServiceAndDeeperIsDeadLettered() async throws {
        try await Stack.with { stack in
            // The body is one level, `input` a second: a value nested 62 more reaches the limit.
            func nested(_ depth: Int) -> String { String(repeating: #"{"k":"#, count: depth) + "1" + String(repeating: "}", count: depth) }
            let body = API.workflow(key: "deepest").replacingOccurrences(of: #""currency":"EUR""#, with: #""deep":"# + nested(WireCoding.inboundDepth - 2))
            let id = try #require(try await stack.submit(body).string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            #expect(try await stack.decide(approvalID, "approve").status == 200)
            try await stack.waitForStatus(id, "completed")

            var input: JSONValue = .number(1)
            for _ in 0..<(WireCoding.inboundDepth - 1) { input = .object(["k": input]) }
            try await stack.publish(
                WorkflowSubmitted(
                    idempotencyKey: "too-deep", type: "wire_transfer", requester: "agent@bank.example", input: ["deep": input],
                    steps: [StepDefinition(name: "execute", kind: .task, task: StepDefinition.Task(type: "noop"))]),
                to: .workflowRequests, subject: "too-deep")
            try await waitUntil("the record is dead-lettered") {
                try await stack.count("SELECT count(*)::int FROM orchestrator.dead_letters WHERE error LIKE '%levels deep%'") == 1
            }
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows WHERE idempotency_key = 'too-deep'") == 0)
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
