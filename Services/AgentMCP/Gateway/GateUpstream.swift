import Foundation
import Logging
import MCP
import SystemPackage

/// The MCP server behind `hitl mcp gate`: a child process spoken to over its stdin and
/// stdout (its stderr is the gateway's), or a server at a URL (Streamable HTTP). The
/// upstream is the operator's choice, not the agent's, so its address is not an egress
/// question.
public final class GateUpstream: Sendable {
    let client: Client
    private let process: Process?

    private init(client: Client, process: Process?) {
        self.client = client
        self.process = process
    }

    /// Starts `command` (words split as a shell would, with quotes; no expansions) and
    /// connects to it.
    public static func launch(_ command: String) async throws -> GateUpstream {
        let words = try Self.words(of: command)
        guard !words.isEmpty else { throw ToolFailure("--upstream is empty: give the upstream server's command") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = words
        let toChild = Pipe(), fromChild = Pipe()
        process.standardInput = toChild
        process.standardOutput = fromChild
        do { try process.run() } catch { throw ToolFailure("cannot start the upstream \(words[0]): \(error)") }
        let transport = StdioTransport(
            input: FileDescriptor(rawValue: fromChild.fileHandleForReading.fileDescriptor),
            output: FileDescriptor(rawValue: toChild.fileHandleForWriting.fileDescriptor))
        return try await connect(transport, process: process)
    }

    /// Connects to an upstream MCP server at `url`.
    public static func connect(url: URL) async throws -> GateUpstream {
        try await connect(HTTPClientTransport(endpoint: url, streaming: false), process: nil)
    }

    private static func connect(_ transport: any Transport, process: Process?) async throws -> GateUpstream {
        let client = Client(name: "hitl-gate", version: "1.0.0")
        do {
            _ = try await client.connect(transport: transport)
        } catch {
            process?.terminate()
            throw ToolFailure("the upstream MCP server did not start a session: \(error)")
        }
        return GateUpstream(client: client, process: process)
    }

    /// Every tool the upstream lists, across pages.
    func tools() async throws -> [Tool] {
        var all: [Tool] = []
        var cursor: String?
        repeat {
            let page = try await client.listTools(cursor: cursor)
            all += page.tools
            cursor = page.nextCursor
        } while cursor != nil && all.count < 10_000
        return all
    }

    /// Calls `tool` upstream and answers its whole result.
    func call(_ tool: String, arguments: [String: Value], meta: Metadata?) async throws -> CallTool.Result {
        try await client.send(CallTool.request(.init(name: tool, arguments: arguments, meta: meta))).value
    }

    public func stop() async {
        await client.disconnect()
        process?.terminate()
    }

    /// Splits a command line into words: whitespace separates, single and double quotes
    /// group, a backslash escapes the next character outside single quotes.
    static func words(of line: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\", quote != "'" {
                escaped = true
                inWord = true
            } else if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character.isWhitespace {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else { throw ToolFailure("--upstream has an unclosed quote or a trailing backslash") }
        if inWord { words.append(current) }
        return words
    }
}
