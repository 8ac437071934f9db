import Contracts
import Foundation
import Hummingbird
import PostgresNIO

/// An HTTP API error with a reason. The body is
/// `{"error": "<code>", "reason": "<why>", …details}` so that clients can branch on the code
/// and people can read the reason.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let reason: String
    public let details: JSONObject

    public init(_ status: HTTPResponse.Status, _ code: String, _ reason: String, details: JSONObject = [:]) {
        self.status = status
        self.code = code
        self.reason = reason
        self.details = details
    }

    public var description: String { "\(status.code) \(code): \(reason)" }

    public static func badRequest(_ reason: String) -> APIError { APIError(.badRequest, "bad_request", reason) }
    public static func notFound(_ reason: String) -> APIError { APIError(.notFound, "not_found", reason) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body = details
        body["error"] = .string(code)
        body["reason"] = .string(reason)
        return try JSONResponse.make(status: status, body)
    }
}

/// JSON responses in the wire dialect.
public enum JSONResponse {
    public static func make(status: HTTPResponse.Status = .ok, _ value: some Encodable) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try WireCoding.encode(value))))
    }
}

extension Request {
    /// The largest request body the APIs accept.
    public static let maxBodyBytes = 256 * 1024

    /// Decodes the JSON body as `T`, answering 413 when it is too large and 400 with the
    /// field at fault when it does not fit, or when it nests deeper than an inbound document
    /// may (`WireCoding.inboundDepth`).
    public mutating func decodeJSON<T: Decodable>(_ type: T.Type) async throws -> T {
        let bytes = try await rawBody()
        guard !bytes.isEmpty else { throw APIError.badRequest("the body is empty; expected a JSON object") }
        do {
            return try WireCoding.decode(T.self, from: bytes, nestedAtMost: WireCoding.inboundDepth)
        } catch {
            throw APIError.badRequest(ContractError.describe(error))
        }
    }
}

/// A value the client sent that Postgres cannot hold (a NUL character, a number out of
/// range, text that is not valid in the column's type) is the client's mistake: 400 with
/// that reason, where it would otherwise surface as a 500. Statements take values only as
/// bound parameters, so these codes can only come from such a value.
struct UnstorableInputMiddleware: RouterMiddleware {
    typealias Context = ServiceRequestContext

    static let clientCodes: [String: String] = [
        "22P05": "a value holds a character Postgres cannot store (a NUL)",
        "22021": "a value holds a character Postgres cannot store (a NUL or invalid UTF-8)",
        "22003": "a number is out of range",
        "22P02": "a value is not valid for its type",
        "22001": "a value is too long",
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as PSQLError {
            guard let state = error.serverInfo?[.sqlState], let reason = Self.clientCodes[state] else { throw error }
            throw APIError.badRequest(reason)
        }
    }
}
