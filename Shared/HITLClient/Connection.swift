import AsyncHTTPClient
import Foundation
import HTTPTypes
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

/// The typed client of the HITL HTTP APIs, generated (`Generated/`, by
/// `scripts/generate-client`) from the OpenAPI document the services serve. One `Client`
/// talks to one service: the orchestrator (workflows, gates, templates, dead letters) or
/// the approval service (approvals, decisions, groups, delegations).
///
///     let orchestrator = Client.hitl(serverURL: URL(string: "http://127.0.0.1:8080")!, token: agentToken)
///     let answer = try await orchestrator.submitWorkflow(body: .json(submission))
///
/// Every answer outside 2xx is thrown as an `APIRefusal` (wrapped in OpenAPIRuntime's
/// `ClientError`; `APIRefusal.in(error)` finds it) carrying the status and the API's
/// reason, so a call site reads the success case (`try answer.ok.body.json`) and leaves
/// refusals to its `catch`.
extension Client {
    public static func hitl(serverURL: URL, token: String?, timeout: Duration = .seconds(30)) -> Client {
        let seconds = max(1, timeout.components.seconds)
        return Client(
            serverURL: serverURL,
            configuration: Configuration(dateTranscoder: RFC3339Dates()),
            transport: AsyncHTTPClientTransport(configuration: .init(client: .shared, timeout: .seconds(seconds))),
            middlewares: (token.map { [BearerToken(token: $0)] } ?? []) + [RefusalsThrown()])
    }
}

/// An answer outside 2xx: its status, the API's error code and reason.
public struct APIRefusal: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let code: String?
    public let reason: String

    public var description: String { "HTTP \(status): \(reason)" }

    /// The refusal inside an error a generated call threw, if that is what it was.
    public static func `in`(_ error: any Error) -> APIRefusal? {
        if let refusal = error as? APIRefusal { return refusal }
        return ((error as? ClientError)?.underlyingError).flatMap { Self.in($0) }
    }
}

/// The error a call threw, as a person should read it: the API's refusal, or the cause.
public func describe(_ error: any Error) -> String {
    if let refusal = APIRefusal.in(error) { return refusal.description }
    if let client = error as? ClientError { return "\(client.underlyingError)" }
    return "\(error)"
}

/// Puts `Authorization: Bearer <token>` on every request.
public struct BearerToken: ClientMiddleware {
    let token: String

    public init(token: String) { self.token = token }

    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}

/// Turns an answer outside 2xx into an `APIRefusal` with the reason from its
/// `{"error": code, "reason": text}` body.
struct RefusalsThrown: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, answer) = try await next(request, body, baseURL)
        guard response.status.kind != .successful else { return (response, answer) }
        var bytes = Data()
        if let answer { bytes = try await Data(collecting: answer, upTo: 1 << 20) }
        struct ErrorBody: Decodable {
            let error: String?
            let reason: String?
        }
        let parsed = try? JSONDecoder().decode(ErrorBody.self, from: bytes)
        throw APIRefusal(
            status: response.status.code, code: parsed?.error,
            reason: parsed?.reason ?? (String(data: bytes, encoding: .utf8).map { String($0.prefix(500)) } ?? response.status.reasonPhrase))
    }
}

/// RFC 3339 times with or without fractional seconds, as the services write them.
struct RFC3339Dates: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    func decode(_ text: String) throws -> Date {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try Date.ISO8601FormatStyle().parse(text)
    }
}
