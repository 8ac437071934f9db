import Contracts
import Hummingbird
import NIOCore

/// The request context of every HITL service: Hummingbird's core context, the caller once
/// `AuthenticationMiddleware` verified its bearer token, and the wire dialect (snake_case,
/// RFC 3339 times) for JSON bodies read with `request.decode(as:context:)` and values a
/// route returns.
public struct ServiceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller of a `/v1` request, as its token says; nil on the open routes (health,
    /// metrics, the API documents, signed links, Slack).
    public internal(set) var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { Request.maxBodyBytes }
    public var requestDecoder: WireRequestDecoder { WireRequestDecoder() }
    public var responseEncoder: WireResponseEncoder { WireResponseEncoder() }

    /// The caller, when its role is one of `roles`; 401 without a token, 403 naming the
    /// roles otherwise.
    public func require(_ roles: Role...) throws -> Principal {
        try require(roles)
    }

    public func require(_ roles: [Role]) throws -> Principal {
        guard let principal else { throw APIError(.unauthorized, "unauthorized", "this API needs a bearer token") }
        guard roles.contains(principal.role) else {
            throw APIError(
                .forbidden, "forbidden",
                "this needs the role \(roles.map(\.rawValue).joined(separator: " or ")); the token's role is \(principal.role.rawValue)")
        }
        return principal
    }
}

/// Reads JSON request bodies in the wire dialect; a body that does not fit is a 400 naming
/// the field at fault, one too large a 413.
public struct WireRequestDecoder: RequestDecoder {
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        var request = request
        return try await request.decodeJSON(T.self)
    }
}

/// Writes the values routes return as JSON in the wire dialect.
public struct WireResponseEncoder: ResponseEncoder {
    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try WireCoding.encode(value))))
    }
}
