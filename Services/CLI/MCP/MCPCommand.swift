import ArgumentParser
import Contracts
import Foundation
import MCP
import ServiceKit

/// `hitl mcp`: the agents' front door as a Model Context Protocol server over stdio. An MCP
/// client (Claude Desktop, Codex, the OpenAI Agents SDK, …) starts it with the agent's
/// bearer token; its tools (`AgentTools`) call the HTTP API with that token, and each
/// workflow's history is a resource, `hitl://workflows/<id>/history`. Standard output
/// carries the protocol only.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp", abstract: "An MCP server over stdio for an agent: request approvals, wait for decisions, follow workflows.")

    @OptionGroup var target: OrchestratorTarget

    func run() async throws {
        // The agent's own token, never the admin token hitl dev would mint.
        guard let token = target.token ?? ProcessInfo.processInfo.environment["HITL_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ValidationError("pass --token or set HITL_TOKEN: the agent's bearer token")
        }
        var agent = target
        agent.token = token
        let api = agent
        guard let subject = Self.subject(of: token) else { throw ValidationError("the token is not a JWT with a sub claim") }
        let tools = AgentTools(api: api, subject: subject)
        let server = Server(
            name: "hitl", version: "1.0.0",
            capabilities: .init(resources: .init(subscribe: false, listChanged: false), tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: AgentTools.tools) }
        await server.withMethodHandler(CallTool.self) { [server] params in
            let progressToken = params._meta?.progressToken
            return await tools.call(params.name, params.arguments ?? [:]) { progress, message in
                guard let progressToken else { return }
                try? await server.notify(ProgressNotification.message(.init(progressToken: progressToken, progress: progress, message: message)))
            }
        }
        await server.withMethodHandler(ListResources.self) { _ in
            let mine = try await api.call("GET", "/v1/workflows?limit=50")
            guard case .array(let items)? = mine["items"] else { return .init(resources: []) }
            return .init(resources: items.compactMap(\.objectValue).compactMap { item in
                guard let id = item["id"]?.stringValue else { return nil }
                return Resource(name: "history of \(item["type"]?.stringValue ?? "workflow") \(id)", uri: "hitl://workflows/\(id)/history", mimeType: "application/json")
            })
        }
        await server.withMethodHandler(ReadResource.self) { params in
            let parts = params.uri.split(separator: "/")
            guard params.uri.hasPrefix("hitl://workflows/"), parts.count == 4, parts[3] == "history", let id = UUID(uuidString: String(parts[2])) else {
                throw MCPError.invalidParams("resources are hitl://workflows/<id>/history")
            }
            let history = try await api.call("GET", "/v1/workflows/\(id.uuidString.lowercased())/history")
            return .init(contents: [.text(try JSONColumn.text(history), uri: params.uri, mimeType: "application/json")])
        }
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
    }

    /// The `sub` of a JWT (read, not verified: the API verifies it on every call).
    static func subject(of token: String) -> String? {
        let parts = token.split(separator: ".")
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]),
            let claims = try? WireCoding.decode(JSONObject.self, from: payload), case .string(let sub)? = claims["sub"], !sub.isEmpty
        else { return nil }
        return sub
    }
}
