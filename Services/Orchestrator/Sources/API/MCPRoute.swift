import AgentMCP
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import MCP
import ServiceKit

/// `POST /mcp`: the agents' tools (`AgentServer`, the same as `hitl mcp`) over MCP's
/// Streamable HTTP, stateless: each POST carries one JSON-RPC message and is answered with
/// JSON. The request needs a valid bearer token, and each tool calls this service's own API
/// with that token, so MCP can do exactly what the token may over HTTP.
struct MCPRoute: Sendable {
    let tokens: AccessTokens
    let endpoint: MCPEndpoint

    init(tokens: AccessTokens, port: Int) {
        self.tokens = tokens
        self.endpoint = MCPEndpoint(selfURL: "http://127.0.0.1:\(port)")
    }

    func register(on router: Router<ServiceRequestContext>) {
        router.post("/mcp") { request, _ in
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
                throw APIError(.unauthorized, "unauthorized", "MCP needs Authorization: Bearer <the agent's token>")
            }
            _ = try tokens.verify(String(header.dropFirst("Bearer ".count)))
            var request = request
            let body = try await request.rawBody()
            // The SDK reads the body with Foundation's decoder, which deep nesting costs dearly.
            do {
                try WireCoding.checkReadable(body, nestedAtMost: WireCoding.inboundDepth)
            } catch {
                throw APIError.badRequest("\(error)")
            }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let answer = await endpoint.handle(MCP.HTTPRequest(method: "POST", headers: headers, body: Data(body), path: "/mcp"))
            var fields = HTTPFields()
            for (name, value) in answer.headers {
                if let name = HTTPField.Name(name) { fields[name] = value }
            }
            return Response(
                status: .init(code: answer.statusCode), headers: fields,
                body: .init(byteBuffer: ByteBuffer(bytes: answer.bodyData ?? Data())))
        }
    }
}

/// The MCP server behind `/mcp`, started on first use. The start is one task that every
/// early request awaits: the actor is reentrant across its awaits, so checking a stored
/// transport alone would let two first requests start two servers.
actor MCPEndpoint {
    let selfURL: String
    /// Its result holds the server too, which keeps it alive.
    private var starting: Task<(StatelessHTTPServerTransport, Server), any Error>?

    init(selfURL: String) {
        self.selfURL = selfURL
    }

    func handle(_ request: MCP.HTTPRequest) async -> MCP.HTTPResponse {
        do {
            return await (try await started()).handleRequest(request)
        } catch {
            return .error(statusCode: 500, .internalError("the MCP server did not start"))
        }
    }

    private func started() async throws -> StatelessHTTPServerTransport {
        if let starting { return try await starting.value.0 }
        let task = Task { [selfURL] in try await Self.start(selfURL: selfURL) }
        starting = task
        return try await task.value.0
    }

    private static func start(selfURL: String) async throws -> (StatelessHTTPServerTransport, Server) {
        let transport = StatelessHTTPServerTransport()
        let server = await AgentServer.make {
            // The token of the HTTP request this call came in.
            let headers = Server.currentHandlerContext?.httpContext?.headers ?? [:]
            guard let value = headers.first(where: { $0.key.lowercased() == "authorization" })?.value, value.hasPrefix("Bearer ") else { return nil }
            return try? APIClient(baseURL: selfURL, token: String(value.dropFirst("Bearer ".count)))
        }
        try await server.start(transport: transport)
        return (transport, server)
    }
}
