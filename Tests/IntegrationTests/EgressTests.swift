import Contracts
import Foundation
import Hummingbird
import ServiceKitTesting
import Synchronization
import Testing

@testable import OrchestratorService

/// Outbound calls go only where `HITL_EGRESS_ALLOW` says, at the address that was checked,
/// without following redirects, within one deadline; a refusal fails the step with the
/// reason and reveals nothing about what is listening inside.
@Suite(.serialized, .timeLimit(.minutes(10))) struct EgressTests {
    @Test func anAgentCannotReachInternalServicesThroughAnHTTPTask() async throws {
        // The services listen on 127.0.0.1; the only allowed place is a stand-in on 127.0.0.2.
        let redirectTarget = Mutex("")
        let standIn = LocalHTTPServer(label: "egress", host: "127.0.0.2") { router in
            router.post("/ok") { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"done":true}"#)))
            }
            router.post("/big") { _, _ in
                Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"blob":""# + String(repeating: "b", count: 100_000) + #""}"#)))
            }
            router.post("/huge") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: 1_200_000))) }
            router.post("/redirect") { _, _ in Response(status: .found, headers: [.location: redirectTarget.withLock { $0 }]) }
            router.post("/trickle") { _, _ in
                Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        for _ in 0..<60 {
                            try await writer.write(ByteBuffer(string: " "))
                            try await Task.sleep(for: .seconds(1))
                        }
                        try await writer.finish(nil)
                    })
            }
        }
        defer { Task { await standIn.stop() } }
        try await Stack.with(environment: ["HITL_EGRESS_ALLOW": "127.0.0.2"]) { stack in
            let metrics = "\(stack.local.url(of: "timeout"))/metrics"
            redirectTarget.withLock { $0 = metrics }
            let port = try #require(URL(string: metrics)?.port)
            let cases: [(key: String, url: String, method: String, timeout: Int, reason: String)] = [
                ("loopback", metrics, "GET", 10, "egress refused: 127.0.0.1 is a loopback address"),
                ("name", "http://localhost:\(port)/metrics", "GET", 10, "egress refused: localhost is not in HITL_EGRESS_ALLOW"),
                ("redirect", standIn.url("/redirect"), "POST", 10, "answered 302"),
                ("trickle", standIn.url("/trickle"), "POST", 2, "no complete answer within 2"),
                // Allowed, but an output that would make later events too large fails the step for good.
                ("big", standIn.url("/big"), "POST", 10, "a step's output is at most 65536"),
            ]
            for (key, url, method, timeout, reason) in cases {
                let steps = #"""
                    [{"name":"fetch","kind":"task","retry":{"max_attempts":1},"timeout_seconds":\#(timeout),"task":{"type":"http","method":"\#(method)","url":"\#(url)"}}]
                    """#
                let id = try await stack.submit(key: "egress-\(key)", input: "{}", steps: steps)
                try await stack.waitForStatus(id, "failed")
                let errors = try await stack.history(id).compactMap { entry -> String? in
                    if entry.event == "step_failed", case .string(let error)? = entry.detail["error"] { return error }
                    return nil
                }
                #expect(errors.count == 1 && errors[0].contains(reason), "\(key): \(errors)")
                // Nothing of the inside reaches the agent: no metrics page as output, no transport detail.
                let output = try await stack.step(id, "fetch")["output"]
                #expect(output == nil || output == .null, "\(key): \(String(describing: output))")
                #expect(!errors.joined().contains("hitl_") && !errors.joined().contains("Connection refused"), "\(key): \(errors)")
            }
            // An answer over 1 MiB fails the step at once: asking again would get the same.
            let huge = try await stack.submit(
                key: "egress-huge", input: "{}",
                steps:
                    #"[{"name":"fetch","kind":"task","retry":{"max_attempts":3,"backoff_seconds":0.2},"task":{"type":"http","url":"\#(standIn.url("/huge"))"}}]"#
            )
            try await stack.waitForStatus(huge, "failed")
            let hugeHistory = try await stack.history(huge)
            #expect(!hugeHistory.contains { $0.event == "attempt_failed" })
            #expect(hugeHistory.first { $0.event == "step_failed" }?.detail["error"]?.stringValue?.contains("larger than 1048576 bytes") == true)
            // A placeholder may not choose the host.
            let smuggled = try await stack.submit(
                #"{"idempotency_key":"egress-host","type":"t","requester":"agent@bank.example","input":{"host":"127.0.0.1"},"steps":[{"name":"fetch","kind":"task","task":{"type":"http","url":"http://h{{input.host}}/metrics"}}]}"#
            )
            #expect(smuggled.status == 400 || smuggled.status == 422, "\(smuggled.text)")
            #expect(smuggled.string("reason")?.contains("task.url") == true, "\(smuggled.text)")

            // The allowed stand-in works, and a callback to the inside is refused and noted at once.
            let steps = #"[{"name":"fetch","kind":"task","task":{"type":"http","url":"\#(standIn.url("/ok"))"}}]"#
            let id = try await stack.submit(key: "egress-ok", input: "{}", steps: steps, extra: #","callback_url":"\#(metrics)""#)
            try await stack.waitForStatus(id, "completed")
            #expect(try await stack.step(id, "fetch")["output"] == .object(["done": true]))
            try await waitUntil("the refused callback noted") {
                try await stack.history(id).contains { $0.event == "callback_failed" }
            }
            let note = try #require(try await stack.history(id).first { $0.event == "callback_failed" })
            #expect(note.detail["error"]?.stringValue?.contains("egress refused") == true, "\(note.detail)")
        }
    }
}
