import AgentMCP
import ArgumentParser
import Foundation
import MCP

/// `hitl mcp gate`: an approval gateway in front of another MCP server (`ToolGateway`). The
/// agent's MCP client starts it instead of the upstream server; it speaks MCP over stdio,
/// standard output carrying the protocol only.
struct GateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate", abstract: "An MCP gateway that holds the calls a policy names until a human approves them.")

    @OptionGroup var target: OrchestratorTarget
    @Option(help: "The upstream MCP server's command, started with stdio (e.g. 'python3 server.py --flag').") var upstream: String?
    @Option(help: "The upstream MCP server's URL (Streamable HTTP), instead of --upstream.") var upstreamURL: String?
    @Option(help: "The policy file (JSON): which tools, under which conditions, need whose approval.") var policy: String
    @Option(help: "Where the gateway keeps what it must not forget across restarts (mode 0600); somewhere the agent cannot write.")
    var state = GateCommand.defaultState

    /// Outside the agent's workspace by default: an agent that could edit the ledger could
    /// mark a used approval unused.
    static var defaultState: String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.local/state")
        return base + "/hitl/gate-state.json"
    }

    func run() async throws {
        guard let token = target.token ?? ProcessInfo.processInfo.environment["HITL_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ValidationError("pass --token or set HITL_TOKEN: the agent's bearer token")
        }
        let rules = try GatePolicy.load(from: policy)
        let connection: GateUpstream
        switch (upstream, upstreamURL.flatMap(URL.init(string:))) {
        case (let command?, nil): connection = try await GateUpstream.launch(command)
        case (nil, let url?): connection = try await GateUpstream.connect(url: url)
        default: throw ValidationError("give the upstream server: --upstream 'command args…' or --upstream-url URL (one of them)")
        }
        let gateway = try ToolGateway(upstream: connection, policy: rules, statePath: state, api: try APIClient(baseURL: try target.baseURL, token: token))
        let server = await gateway.server()
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
        await connection.stop()
    }
}
