import AsyncHTTPClient
import Contracts
import DevStack
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit
import ServiceKitTesting
import Slack

/// A stand-in for Slack, checking what Slack checks: the bot token, JSON bodies, Block Kit
/// limits (blocks, text lengths, button values, modal titles), that updates name a message
/// it posted and that modals open with a trigger it issued; the first `rateLimited`
/// `chat.postMessage` calls get 429 with `Retry-After: 1`. It also plays Slack's side of
/// interactivity: signed requests to the approval service, and `response_url`s.
final class SlackStub: Sendable {
    static let token = "xoxb-test-token"
    static let signingSecret = "slack-signing-secret-0123456789"

    struct Call: Sendable {
        let method: String
        let body: JSONObject
        let at: Date
        let answer: String
    }

    let calls = Collected<Call>()
    let responses = Collected<JSONObject>()
    private let server: LocalHTTPServer
    private let state = State()

    actor State {
        var rateLimited = 0
        var posted: Set<String> = []
        var triggers: Set<String> = []
        func take429() -> Bool {
            guard rateLimited > 0 else { return false }
            rateLimited -= 1
            return true
        }
        func post(_ key: String) { posted.insert(key) }
        func setRateLimited(_ count: Int) { rateLimited = count }
        func issueTrigger() -> String {
            let trigger = "trigger-\(UUID().uuidString.prefix(8))"
            triggers.insert(trigger)
            return trigger
        }
        func useTrigger(_ trigger: String) -> Bool { triggers.remove(trigger) != nil }
    }

    /// Runs `body` with a stand-in, and stops it however `body` ends.
    static func with(rateLimited: Int = 0, _ body: (SlackStub) async throws -> Void) async throws {
        let stub = await SlackStub(rateLimited: rateLimited)
        do {
            try await body(stub)
        } catch {
            await stub.stop()
            throw error
        }
        await stub.stop()
    }

    private init(rateLimited: Int = 0) async {
        let calls = self.calls
        let responses = self.responses
        let state = self.state
        await state.setRateLimited(rateLimited)
        server = LocalHTTPServer(label: "test.slack") { router in
            router.post("/api/{method}") { request, context -> Response in
                var request = request
                let method = try context.parameters.require("method")
                let bytes = Array(buffer: try await request.collectBody(upTo: 1 << 20))
                guard request.headers[.authorization] == "Bearer \(SlackStub.token)" else { return try Self.answer(["ok": false, "error": "invalid_auth"]) }
                guard request.headers[.contentType]?.hasPrefix("application/json") == true,
                    let body = try? WireCoding.decode(JSONObject.self, from: bytes)
                else { return try Self.answer(["ok": false, "error": "invalid_arguments"]) }
                if method == "chat.postMessage", await state.take429() {
                    await calls.append(Call(method: method, body: body, at: Date(), answer: "429"))
                    return Response(status: .tooManyRequests, headers: [HTTPField.Name("Retry-After")!: "1"])
                }
                let answer: JSONObject
                switch method {
                case "chat.postMessage":
                    if let problem = Self.problem(blocks: body["blocks"], limit: 50) ?? (body["channel"]?.stringValue == nil ? "no channel" : nil) {
                        answer = ["ok": false, "error": "invalid_blocks", "detail": .string(problem)]
                    } else {
                        let ts = String(format: "%.6f", Date().timeIntervalSince1970 + Double.random(in: 0..<1) / 1000)
                        await state.post("\(body["channel"]?.stringValue ?? ""):\(ts)")
                        answer = ["ok": true, "channel": body["channel"] ?? "", "ts": .string(ts)]
                    }
                case "chat.update":
                    let key = "\(body["channel"]?.stringValue ?? ""):\(body["ts"]?.stringValue ?? "")"
                    if await !state.posted.contains(key) {
                        answer = ["ok": false, "error": "message_not_found"]
                    } else if let problem = Self.problem(blocks: body["blocks"], limit: 50) {
                        answer = ["ok": false, "error": "invalid_blocks", "detail": .string(problem)]
                    } else {
                        answer = ["ok": true, "channel": body["channel"] ?? "", "ts": body["ts"] ?? ""]
                    }
                case "views.open":
                    let view = body["view"]?.objectValue ?? [:]
                    if await !state.useTrigger(body["trigger_id"]?.stringValue ?? "") {
                        answer = ["ok": false, "error": "invalid_trigger_id"]
                    } else if let problem = Self.problem(view: view) {
                        answer = ["ok": false, "error": "invalid_arguments", "detail": .string(problem)]
                    } else {
                        answer = ["ok": true]
                    }
                default:
                    answer = ["ok": false, "error": "unknown_method"]
                }
                await calls.append(Call(method: method, body: body, at: Date(), answer: answer["ok"] == true ? "ok" : answer["error"]?.stringValue ?? "?"))
                return try Self.answer(answer)
            }
            router.post("/response/{id}") { request, _ -> HTTPResponse.Status in
                var request = request
                let bytes = Array(buffer: try await request.collectBody(upTo: 1 << 20))
                await responses.append((try? WireCoding.decode(JSONObject.self, from: bytes)) ?? [:])
                return .ok
            }
        }
    }

    var apiURL: String { server.url("/api") }

    /// The services' Slack settings, with `users` as `approver=UserID` pairs.
    func environment(users: String) -> [String: String] {
        ["HITL_SLACK_BOT_TOKEN": Self.token, "HITL_SLACK_API_URL": apiURL, "HITL_SLACK_SIGNING_SECRET": Self.signingSecret, "HITL_SLACK_USERS": users]
    }

    /// What a click or a modal submission from `user` looks like to the approval service,
    /// signed as Slack signs it (at `signedAt`, with `secret`).
    func interact(
        _ approvalURL: String, _ payload: JSONObject, secret: String = SlackStub.signingSecret, signedAt: Date = Date()
    ) async throws -> (status: Int, body: JSONObject) {
        let body = Array(URLEncodedForm.encode(["payload": String(decoding: try WireCoding.encode(payload), as: UTF8.self)]).utf8)
        let timestamp = Int(signedAt.timeIntervalSince1970)
        var request = HTTPClientRequest(url: "\(approvalURL)/slack/interactions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "X-Slack-Request-Timestamp", value: "\(timestamp)")
        request.headers.add(name: "X-Slack-Signature", value: SlackSignature.sign(secret: secret, timestamp: timestamp, body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = Array(buffer: try await response.body.collect(upTo: 1 << 20))
        return (Int(response.status.code), (try? WireCoding.decode(JSONObject.self, from: bytes)) ?? [:])
    }

    /// A button click on a message (`block_actions`).
    func click(user: String, value: String) async -> JSONObject {
        [
            "type": "block_actions", "user": .object(["id": .string(user)]), "trigger_id": .string(await state.issueTrigger()),
            "response_url": .string(server.url("/response/\(UUID().uuidString)")),
            "actions": .array([.object(["type": "button", "action_id": "hitl_approve", "value": .string(value)])]),
        ]
    }

    func stop() async { await server.stop() }

    // MARK: - Slack's checks

    private static func answer(_ body: JSONObject) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try WireCoding.encode(body))))
    }

    static func problem(blocks value: JSONValue?, limit: Int) -> String? {
        guard case .array(let blocks)? = value else { return nil }
        if blocks.count > limit { return "more than \(limit) blocks" }
        for block in blocks.compactMap(\.objectValue) {
            switch block["type"]?.stringValue {
            case "header":
                if (block["text"]?.objectValue?["text"]?.stringValue?.count ?? 0) > 150 { return "header text over 150" }
            case "section":
                if (block["text"]?.objectValue?["text"]?.stringValue?.count ?? 0) > 3000 { return "section text over 3000" }
                if case .array(let fields)? = block["fields"] {
                    if fields.count > 10 { return "more than 10 fields" }
                    if fields.contains(where: { ($0.objectValue?["text"]?.stringValue?.count ?? 0) > 2000 }) { return "field text over 2000" }
                }
            case "actions":
                guard case .array(let elements)? = block["elements"], elements.count <= 25 else { return "actions without 1-25 elements" }
                for element in elements.compactMap(\.objectValue) {
                    if (element["text"]?.objectValue?["text"]?.stringValue?.count ?? 0) > 75 { return "button text over 75" }
                    if (element["value"]?.stringValue?.count ?? 0) > 2000 { return "button value over 2000" }
                    if (element["action_id"]?.stringValue?.count ?? 0) > 255 { return "action_id over 255" }
                }
            case "context", "input", "divider":
                break
            default:
                return "unknown block type \(block["type"]?.stringValue ?? "none")"
            }
        }
        return nil
    }

    static func problem(view: JSONObject) -> String? {
        guard view["type"] == "modal" else { return "not a modal" }
        guard let title = view["title"]?.objectValue?["text"]?.stringValue, !title.isEmpty, title.count <= 24 else { return "title must be 1-24 characters" }
        if (view["private_metadata"]?.stringValue?.count ?? 0) > 3000 { return "private_metadata over 3000" }
        guard case .array(let blocks)? = view["blocks"] else { return "no blocks" }
        for block in blocks.compactMap(\.objectValue) where block["type"] == "input" {
            if block["label"] == nil || block["element"] == nil { return "an input block needs a label and an element" }
        }
        return problem(blocks: view["blocks"], limit: 100)
    }
}
