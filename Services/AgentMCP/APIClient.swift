import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore

/// The orchestrator's HTTP API, called with one bearer token (the `hitl` commands and the
/// MCP tools use it alike).
public struct APIClient: Sendable {
    public let baseURL: String
    public let token: String?

    public init(baseURL: String, token: String?) {
        self.baseURL = baseURL
        self.token = token
    }

    /// The token's `sub` (read, not verified: the API verifies the token on every call).
    public var subject: String? {
        guard let parts = token?.split(separator: ".") else { return nil }
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]),
            let claims = try? WireCoding.decode(JSONObject.self, from: payload), case .string(let sub)? = claims["sub"], !sub.isEmpty
        else { return nil }
        return sub
    }

    /// Calls the API; a non-2xx answer becomes an error carrying its status and reason.
    public func call(_ method: String, _ path: String, body: JSONObject? = nil) async throws -> JSONObject {
        try await send(method, path, body: body).body
    }

    /// Calls the API; answers the status and the body of a 2xx answer.
    public func send(_ method: String, _ path: String, body: JSONObject? = nil) async throws -> (status: Int, body: JSONObject) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try WireCoding.encode(body)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = Array(buffer: try await response.body.collect(upTo: 16 << 20))
        let object = (try? WireCoding.decode(JSONObject.self, from: bytes)) ?? [:]
        guard (200..<300).contains(response.status.code) else {
            var reason = String(decoding: bytes, as: UTF8.self)
            if case .string(let text)? = object["reason"] { reason = text }
            throw ToolFailure("the orchestrator answered \(response.status.code): \(reason)")
        }
        return (Int(response.status.code), object)
    }
}
