import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// `hitl mcp` (stdio) and the orchestrator's `/mcp` (Streamable HTTP) with the official
/// Python MCP client as the agent: tools listed,
/// approvals requested and followed to approved and rejected, a timeout that says pending,
/// progress while waiting, and nothing allowed over MCP that the agent's token may not do
/// over HTTP (the script, Scripts/mcp_agent.py, says what it checks).
@Suite(.serialized, .timeLimit(.minutes(10))) struct MCPTests {
    @Test(arguments: ["stdio", "http"]) func anAgentRequestsApprovalsAndWaitsForTheHumanOverMCP(transport: String) async throws {
        try await Stack.with { stack in
            let script = WebPageTests.packageRoot.appendingPathComponent("Tests/IntegrationTests/Scripts/mcp_agent.py").path
            do {
                let printed = try await Shell.runDetached([
                    "python3", script, transport, Shell.packageExecutable("hitl").path, stack.orchestrator, stack.approval,
                    TestTokens.agent("agent@bank.example"), TestTokens.approver("manager@bank.example"),
                ])
                #expect(printed.contains("OK"), "\(printed)")
            } catch let failure as Shell.Failure {
                Issue.record("the MCP agent (\(transport)) failed: \(failure.output)")
            }
            if transport == "http" {
                // Without a token, /mcp answers 401 before any MCP is spoken.
                #expect(try await API.post("\(stack.orchestrator)/mcp", #"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, token: nil).status == 401)
                // Arguments nested past the inbound depth are refused before the SDK reads them.
                let deep =
                    #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"request_approval","arguments":"#
                    + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}}"
                let refused = try await API.post("\(stack.orchestrator)/mcp", deep, token: TestTokens.agent("agent@bank.example"))
                #expect(refused.status == 400 && refused.string("reason")?.contains("levels deep") == true, "\(refused.text)")
            }
        }
    }

    /// `hitl mcp gate` in front of a Python MCP server (Scripts/mcp_upstream.py), with the
    /// Python client as the agent; Scripts/mcp_gate.py says what it checks.
    @Test func theGatewayMakesAGatedToolCallOnceAndOnlyAfterAHumanApproved() async throws {
        try await Stack.with { stack in
            let workdir = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-gate-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: workdir) }
            // An admin's template that approves by rule: the gateway must not take that for a human's yes.
            let template =
                #"{"steps":[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"auto_approve_when":"input.mcp_tool == 'ping'"}}]}"#
            #expect(try await API.call("PUT", "\(stack.orchestrator)/v1/templates/auto-ping", json: template).status == 201)
            let script = WebPageTests.packageRoot.appendingPathComponent("Tests/IntegrationTests/Scripts/mcp_gate.py").path
            do {
                let printed = try await Shell.runDetached([
                    "python3", script, Shell.packageExecutable("hitl").path, stack.orchestrator, stack.approval,
                    TestTokens.agent("agent@bank.example"), TestTokens.approver("manager@bank.example"), workdir.path,
                ])
                #expect(printed.contains("OK"), "\(printed)")
            } catch let failure as Shell.Failure {
                Issue.record("the gateway run failed: \(failure.output)")
            }
        }
    }
}
