import Contracts
import Foundation
import MCP

/// The MCP server of the agents' tools, on any transport: `hitl mcp` gives it stdio and
/// one token; the orchestrator gives it `/mcp` and the token of each HTTP request.
public enum AgentServer {
    /// A server whose tools act with the API client `api` returns for the current call
    /// (nil: the call has no usable token).
    public static func make(api: @escaping @Sendable () -> APIClient?) async -> Server {
        let server = Server(
            name: "hitl", version: "1.0.0",
            capabilities: .init(resources: .init(subscribe: false, listChanged: false), tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: AgentTools.tools) }
        await server.withMethodHandler(CallTool.self) { [server] params in
            guard let client = api(), let subject = client.subject else {
                return AgentTools.result("no bearer token: the agent's token is required", isError: true)
            }
            let progressToken = params._meta?.progressToken
            return await AgentTools(api: client, subject: subject).call(params.name, params.arguments ?? [:]) { progress, message in
                guard let progressToken else { return }
                try? await server.notify(ProgressNotification.message(.init(progressToken: progressToken, progress: progress, message: message)))
            }
        }
        await server.withMethodHandler(ListResources.self) { _ in
            guard let client = api() else { return .init(resources: []) }
            let mine = try await client.orchestrator.listWorkflows(query: .init(limit: 50)).ok.body.json
            guard case .array(let items)? = try JSONBridge.object(mine)["items"] else { return .init(resources: []) }
            return .init(
                resources: items.compactMap(\.objectValue).compactMap { item in
                    guard let id = item["id"]?.stringValue else { return nil }
                    return Resource(
                        name: "history of \(item["type"]?.stringValue ?? "workflow") \(id)", uri: "hitl://workflows/\(id)/history", mimeType: "application/json"
                    )
                })
        }
        await server.withMethodHandler(ReadResource.self) { params in
            let parts = params.uri.split(separator: "/")
            guard params.uri.hasPrefix("hitl://workflows/"), parts.count == 4, parts[3] == "history", let id = UUID(uuidString: String(parts[2])) else {
                throw MCPError.invalidParams("resources are hitl://workflows/<id>/history")
            }
            guard let client = api() else { throw MCPError.invalidRequest("no bearer token") }
            let history: JSONValue = .object(["items": .array(try await client.history(id.uuidString.lowercased()).map(JSONValue.object))])
            return .init(contents: [.text(String(decoding: try WireCoding.encode(history), as: UTF8.self), uri: params.uri, mimeType: "application/json")])
        }
        return server
    }
}
