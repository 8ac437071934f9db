import AgentMCP
import ArgumentParser
import Foundation
import MCP

/// `hitl mcp`: the agents' front door as a Model Context Protocol server over stdio. An MCP
/// client (Claude Desktop, Codex, the OpenAI Agents SDK, …) starts it with the agent's
/// bearer token; its tools (`AgentTools`) call the HTTP API with that token, and each
/// workflow's history is a resource, `hitl://workflows/<id>/history`. Standard output
/// carries the protocol only. The orchestrator serves the same tools at `/mcp`.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp", abstract: "An MCP server over stdio for an agent: request approvals, wait for decisions, follow workflows.",
        subcommands: [GateCommand.self])

    @OptionGroup var target: OrchestratorTarget

    func run() async throws {
        // The agent's own token, never the admin token hitl dev would mint.
        guard let token = target.token ?? ProcessInfo.processInfo.environment["HITL_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ValidationError("pass --token or set HITL_TOKEN: the agent's bearer token")
        }
        let api = try APIClient(baseURL: try target.baseURL, token: token)
        guard api.subject != nil else { throw ValidationError("the token is not a JWT with a sub claim") }
        let server = await AgentServer.make { api }
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
    }
}
