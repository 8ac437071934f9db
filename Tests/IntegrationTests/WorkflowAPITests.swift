import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import ServiceKitTesting
import Testing

@testable import OrchestratorService

/// Templates, listing, the live event stream and lifecycle callbacks.
@Suite(.serialized, .timeLimit(.minutes(10))) struct WorkflowAPITests {
    static func template(limit: Int) -> String {
        #"""
        {"description":"wire transfer","steps":[
          {"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"auto_approve_when":"input.amount < \#(limit)"}},
          {"name":"execute","kind":"task","task":{"type":"noop"}}]}
        """#
    }

    /// Concurrent submissions each get their own answer: a refused one its refusal, one
    /// Postgres cannot store its 400, a resubmission the first workflow, the rest their
    /// workflows, each stored once.
    @Test func concurrentSubmissionsEachGetTheirOwnAnswer() async throws {
        try await Stack.with { stack in
            let bodies = (0..<24).map { index -> (String, Int) in
                switch index {
                case 7: (API.workflow(key: "c-\(index)").replacingOccurrences(of: #""type":"noop""#, with: #""type":"teleport""#), 422)
                case 13: (API.workflow(key: "c-\(index)").replacingOccurrences(of: #""currency":"EUR""#, with: #""currency":"E\u0000R""#), 400)
                case 20: (API.workflow(key: "c-0"), 200)  // the same key and body as the first: its workflow
                default: (API.workflow(key: "c-\(index)"), 201)
                }
            }
            let answers = try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
                for (index, body) in bodies.enumerated() { group.addTask { (index, try await stack.submit(body.0)) } }
                var answers: [Int: Answer] = [:]
                for try await (index, answer) in group { answers[index] = answer }
                return answers
            }
            for (index, body) in bodies.enumerated() {
                let answer = try #require(answers[index])
                // The first and its resubmission race: whichever is stored first gets 201.
                let expected = index == 0 || index == 20 ? [200, 201] : [body.1]
                #expect(expected.contains(answer.status), "\(index): \(answer.text)")
            }
            #expect(answers[0]?.string("id") == answers[20]?.string("id"))
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 21)
            #expect(try await stack.count("SELECT count(DISTINCT workflow_id)::int FROM orchestrator.workflow_history") == 21)
        }
    }

    @Test func runningWorkflowKeepsItsTemplateVersionAndReportsBackByCallbackAndStream() async throws {
        try await Stack.with { stack in
            let receiver = SignedReceiver(.callbackReceiver(secret: "integration-webhook-secret"), failures: 0)
            let templates = "\(stack.orchestrator)/v1/templates/transfer"
            let first = try await API.call("PUT", templates, json: Self.template(limit: 5000))
            #expect(first.status == 201 && first["version"] == 1)
            let invalid = try await API.call("PUT", templates, json: #"{"steps":[{"name":"x","kind":"task","task":{"type":"noop"},"when":"input.a <"}]}"#)
            #expect(invalid.status == 422 && invalid.string("reason")?.hasPrefix("steps[0] (x): when is not a valid expression") == true)

            // Concurrent puts of one name each get their own next version.
            let versions = try await withThrowingTaskGroup(of: JSONValue?.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await API.call("PUT", "\(stack.orchestrator)/v1/templates/race", json: Self.template(limit: 1))["version"] }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(versions.compactMap { $0 }) == Set((1...8).map { JSONValue.number(Double($0)) }))

            let request =
                #"{"idempotency_key":"t-1","type":"wire_transfer","requester":"agent@bank.example","input":{"amount":6000},"template":"transfer","callback_url":"\#(receiver.url)"}"#
            let id = try #require(try await stack.submit(request).string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            let second = try await API.call("PUT", templates, json: Self.template(limit: 10_000))
            #expect(second["version"] == 2)
            #expect(try await stack.workflow(id)["template_version"] == 1)

            // Follow the waiting workflow live, then decide.
            let stream = Task { try await Self.readEventStream("\(stack.orchestrator)/v1/workflows/\(id)/events") }
            try await waitUntil("the stream to be open") { try await stack.metric("hitl_event_streams_open", in: "orchestrator") == 1 }
            #expect(try await stack.decide(approvalID, "approve").status == 200)
            let streamed = try await stream.value
            #expect(streamed == (try await stack.events(id)))
            #expect(streamed.last == "completed")
            let history = try await stack.history(id)
            let resumed = try await Self.readEventStream("\(stack.orchestrator)/v1/workflows/\(id)/events", lastEventID: Int(history[1].sequence))
            #expect(resumed == Array(streamed.dropFirst(2)))

            let later = try await stack.submit(
                #"{"idempotency_key":"t-2","type":"wire_transfer","requester":"agent@bank.example","input":{"amount":6000},"template":"transfer"}"#)
            let laterID = try #require(later.string("id"))
            try await stack.waitForStatus(laterID, "completed")
            #expect(try await stack.workflow(laterID)["template_version"] == 2)
            let unknown = try await stack.submit(#"{"idempotency_key":"t-3","type":"x","requester":"a","input":{},"template":"nope"}"#)
            #expect(unknown.status == 422 && unknown.string("reason") == "template nope does not exist")

            try await waitUntil("the completed callback") {
                await receiver.calls.items.contains { $0.objectValue?["type"] == "hitl.workflow.completed.v1" }
            }
            let types = await receiver.calls.items.compactMap { $0.objectValue?["type"] }
            #expect(Set(types).isSuperset(of: ["hitl.workflow.started.v1", "hitl.workflow.waiting_approval.v1", "hitl.workflow.completed.v1"]))
            #expect(await receiver.unsigned.count == 0)
            await receiver.stop()
        }
    }

    @Test func listingFiltersAndPagesByKeyset() async throws {
        try await Stack.with { stack in
            var ids: [String] = []
            for index in 0..<5 {
                let type = index.isMultiple(of: 2) ? "even" : "odd"
                let answer = try await stack.submit(
                    #"{"idempotency_key":"l-\#(index)","type":"\#(type)","requester":"agent-\#(index % 2)","input":{"amount":1},"steps":\#(Definitions.threshold)}"#
                )
                ids.append(try #require(answer.string("id")))
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await API.get("\(stack.orchestrator)/v1/workflows?limit=2" + (cursor.map { "&after=\($0)" } ?? ""))
                #expect(page.status == 200 && page.items.count <= 2)
                seen += page.items.compactMap { item -> String? in
                    if case .string(let id)? = item["id"] { return id }
                    return nil
                }
                cursor = page.string("next")
            } while cursor != nil
            #expect(seen == ids)
            let evens = try await API.get("\(stack.orchestrator)/v1/workflows?type=even&status=completed")
            #expect(evens.items.count == 3)
            let byRequester = try await API.get("\(stack.orchestrator)/v1/workflows?requester=agent-1")
            #expect(byRequester.items.count == 2)
            #expect(try await API.get("\(stack.orchestrator)/v1/workflows?colour=red").status == 400)
            #expect(try await API.get("\(stack.orchestrator)/v1/workflows?status=sleeping").status == 400)
            #expect(try await API.get("\(stack.orchestrator)/v1/workflows?after=garbage").status == 400)
            #expect(try await API.get("\(stack.orchestrator)/v1/workflows?created_after=2999-01-01T00:00:00Z").items.isEmpty)
        }
    }

    /// Event streams are fed by one shared reader and bounded per token subject: past the
    /// limit a new one gets 429, the open ones still see every entry, and an ended one frees
    /// its slot.
    @Test func eventStreamsAreBoundedPerPrincipalAndAllSeeEveryEntry() async throws {
        try await Stack.with(environment: ["HITL_STREAMS_PER_PRINCIPAL": "2"]) { stack in
            let id = try #require(try await stack.submit(API.workflow(key: "streams-1")).string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            let url = "\(stack.orchestrator)/v1/workflows/\(id)/events"
            let streams = (0..<2).map { _ in Task { try await Self.readEventStream(url) } }
            try await waitUntil("both streams to be open") { try await stack.metric("hitl_event_streams_open", in: "orchestrator") == 2 }
            let third = try await API.get(url)
            #expect(third.status == 429 && third.string("error") == "too_many_streams", "\(third.text)")
            // Another subject has its own allowance.
            let agent = TestTokens.agent("agent@bank.example")
            let theirs = Task { try await Self.readEventStream(url, token: agent) }
            #expect(try await stack.decide(approvalID, "approve").status == 200)
            var seen: [[String]] = []
            for stream in streams { seen.append(try await stream.value) }
            seen.append(try await theirs.value)
            let expected = try await stack.events(id)
            #expect(expected.last == "completed")
            for streamed in seen { #expect(streamed == expected) }
            // Ended streams gave their slots back.
            #expect(try await Self.readEventStream(url) == expected)
        }
    }

    /// The `event:` names of a server-sent event stream, read until the server ends it.
    static func readEventStream(_ url: String, lastEventID: Int? = nil, token: String = TestTokens.admin) async throws -> [String] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: "\(lastEventID)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        guard response.headers.first(name: "Content-Type") == "text/event-stream" else { return [] }
        var text = ""
        for try await chunk in response.body { text += String(buffer: chunk) }
        return text.split(separator: "\n").compactMap { line in
            line.hasPrefix("event: ") ? String(line.dropFirst("event: ".count)) : nil
        }
    }
}
