import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import ServiceKit

/// Calls Slack's Web API (`chat.postMessage`, `chat.update`, `views.open`) with the bot
/// token, JSON in and out, and posts to interaction `response_url`s.
public struct SlackClient: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        /// HTTP 429: wait `retryAfter` seconds (Slack's `Retry-After`) before the next call.
        case rateLimited(retryAfter: Int)
        /// `{"ok": false, "error": …}`.
        case refused(method: String, error: String)
        case http(method: String, status: Int)

        /// Errors that another attempt will not fix (a bad token, a user that does not exist…).
        public var permanent: Bool {
            guard case .refused(_, let error) = self else { return false }
            return [
                "invalid_auth", "not_authed", "account_inactive", "token_revoked", "channel_not_found", "user_not_found", "invalid_blocks", "msg_too_long",
                "invalid_arguments",
            ].contains(error)
        }

        public var description: String {
            switch self {
            case .rateLimited(let seconds): "Slack rate limit: retry after \(seconds) s"
            case .refused(let method, let error): "Slack \(method) refused: \(error)"
            case .http(let method, let status): "Slack \(method) answered HTTP \(status)"
            }
        }
    }

    let settings: SlackSettings
    let http: EgressClient

    public init(settings: SlackSettings, http: EgressClient) {
        self.settings = settings
        self.http = http
    }

    /// Calls `method` with `body`; the answer when Slack says `ok`.
    @discardableResult
    public func call(_ method: String, _ body: JSONObject) async throws -> JSONObject {
        let answer = try await post(to: "\(settings.apiURL)/\(method)", body, name: method, authorized: true)
        guard answer["ok"] == .bool(true) else {
            throw Failure.refused(method: method, error: answer["error"]?.stringValue ?? "unknown_error")
        }
        return answer
    }

    /// Posts an answer to an interaction's `response_url` (an ephemeral note, or a
    /// replacement of the message clicked).
    public func respond(to responseURL: String, _ body: JSONObject) async throws {
        try await post(to: responseURL, body, name: "response_url", authorized: false)
    }

    @discardableResult
    private func post(to url: String, _ body: JSONObject, name: String, authorized: Bool) async throws -> JSONObject {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        if authorized { request.headers.add(name: "Authorization", value: "Bearer \(settings.botToken)") }
        request.body = .bytes(ByteBuffer(bytes: try WireCoding.encode(body)))
        let response = try await http.execute(request, within: .seconds(10))
        let bytes = response.body
        if response.status == 429 {
            throw Failure.rateLimited(retryAfter: response.headers.first(name: "Retry-After").flatMap(Int.init) ?? 30)
        }
        guard (200..<300).contains(response.status) else { throw Failure.http(method: name, status: response.status) }
        return (try? WireCoding.decode(JSONObject.self, from: bytes)) ?? [:]
    }
}
