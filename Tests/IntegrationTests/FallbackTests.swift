import Contracts
import DevStack
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKitTesting
import Testing

@testable import OrchestratorService

/// A stand-in for an OpenAI-compatible chat-completions endpoint that checks what the real
/// one checks (bearer key, model, messages, JSON response format) and answers by the
/// `mode` in the facts: `approve` a strict answer, `garbage` prose, `down` a 503.
final class ChatCompletionsStub: Sendable {
    let url: String
    let requests = Collected<JSONObject>()
    private let server: LocalHTTPServer

    init(apiKey: String, model: String) {
        let requests = self.requests
        server = LocalHTTPServer(label: "test.llm") { router in
            router.post("/v1/chat/completions") { request, _ -> Response in
                var request = request
                let body = Array(buffer: try await request.collectBody(upTo: 1 << 20))
                guard request.headers[.authorization] == "Bearer \(apiKey)" else { return Response(status: .unauthorized) }
                guard let object = try? WireCoding.decode(JSONObject.self, from: body), object["model"] == .string(model),
                    case .array(let messages)? = object["messages"], !messages.isEmpty,
                    object["response_format"] == .object(["type": "json_object"])
                else { return Response(status: .badRequest) }
                await requests.append(object)
                let prompt = messages.compactMap { $0.objectValue?["content"] }.map { "\($0)" }.joined()
                let content: String
                if prompt.contains(#"\"mode\":\"down\""#) || prompt.contains(#""mode":"down""#) {
                    return Response(status: .serviceUnavailable)
                } else if prompt.contains("garbage") {
                    content = "I would probably approve this one."
                } else {
                    content = #"{"decision":"approve","reasoning":"Small amount, known payee."}"#
                }
                let answer: JSONObject = ["choices": .array([.object(["index": 0, "message": .object(["role": "assistant", "content": .string(content)])])])]
                return Response(
                    status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try WireCoding.encode(answer))))
            }
        }
        url = server.url("/v1")
    }

    func stop() async {
        await server.stop()
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct FallbackTests {
    @Test func theFallbackDecidesAtExpiryAndItsSafeDefaultAppliesWhenItAnswersBadlyOrIsDown() async throws {
        let stub = ChatCompletionsStub(apiKey: "sk-test-key", model: "test-model")
        let environment = ["HITL_FALLBACK_URL": stub.url, "HITL_FALLBACK_MODEL": "test-model", "HITL_FALLBACK_API_KEY": "sk-test-key"]
        try await Stack.with(environment: environment) { stack in
            let steps = #"""
                [{"name":"approve","kind":"approval","approval":{"approvers":["ann@bank.example"],"timeout_seconds":2,
                  "policy":{"on_expiry":"fallback","safe_default":"reject"}}},
                 {"name":"execute","kind":"task","task":{"type":"noop"}}]
                """#
            let answered = try await stack.submit(key: "fb-1", input: #"{"amount":120,"mode":"approve"}"#, steps: steps)
            let garbage = try await stack.submit(key: "fb-2", input: #"{"amount":120,"mode":"garbage"}"#, steps: steps)
            let down = try await stack.submit(key: "fb-3", input: #"{"amount":120,"mode":"down"}"#, steps: steps)
            try await stack.waitForStatus(answered, "completed")
            try await stack.waitForStatus(garbage, "rejected")
            try await stack.waitForStatus(down, "rejected")

            let approved = try await API.get("\(stack.approval)/v1/approvals?workflow_id=\(answered)").items.first ?? [:]
            #expect(approved["decided_by"] == "fallback" && approved["channel"] == "policy")
            #expect(approved["comment"] == "fallback decider: Small amount, known payee.")
            #expect(try await stack.history(answered).first { $0.event == "approved" }?.actor == "policy:fallback")
            let bad = try await API.get("\(stack.approval)/v1/approvals?workflow_id=\(garbage)").items.first ?? [:]
            #expect(bad["decided_by"] == "safe_default")
            #expect(bad["comment"].map { "\($0)" }?.contains("answered badly") == true)
            let unreachable = try await API.get("\(stack.approval)/v1/approvals?workflow_id=\(down)").items.first ?? [:]
            #expect(unreachable["comment"].map { "\($0)" }?.contains("answered 503") == true)
            #expect(await stack.count(requests: stub) == 3)
            let metrics = try await API.get("\(stack.approval)/metrics").text
            #expect(metrics.contains(#"hitl_approval_decisions_total{decided_by="fallback"} 1"#))
        }
        await stub.stop()
    }
}

extension Stack {
    func count(requests stub: ChatCompletionsStub) async -> Int { await stub.requests.count }
}
