import ArgumentParser
import AsyncHTTPClient
import Contracts
import DevStack
import Dispatch
import Foundation
import NIOCore
import ServiceKit

/// `hitl dev`: the whole stack on this machine, until Ctrl-C or SIGTERM.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start Postgres, the mock Kafka cluster and the four services; stop them on Ctrl-C.")

    @Option(help: "Where the stack keeps its data, logs and dev.json.")
    var directory = ".hitl"

    @Flag(help: "Submit a demo workflow once the stack is up and print how to approve it.")
    var demo = false

    @Option(help: "Log level of the services.")
    var logLevel = "info"

    func run() async throws {
        // Caught from the start: Ctrl-C or SIGTERM while the stack starts stops it once started.
        let termination = Termination()
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        var options = LocalStack.Options(directory: root)
        let sink = try await WebhookSink.start(secret: "hitl-dev-webhook-secret", tokens: AccessTokens(secret: options.jwtSecret))
        options.webhookURL = sink.url
        options.logLevel = logLevel
        // Its own stand-ins are on loopback; HITL_EGRESS_ALLOW adds what a demo should reach.
        if let allow = ProcessInfo.processInfo.environment["HITL_EGRESS_ALLOW"] { options.egressAllow += ", " + allow }
        let stack = LocalStack(options: options)
        Console.line("Starting the stack in \(root.path) …")
        do {
            try await stack.start()
        } catch {
            await stack.stop()
            await sink.stop()
            throw error
        }
        let facts = DevFacts(
            orchestratorUrl: stack.url(of: "orchestrator"), approvalUrl: stack.url(of: "approval"),
            notifierUrl: stack.url(of: "notifier"), timeoutUrl: stack.url(of: "timeout"),
            kafkaBootstrap: stack.kafkaBootstrap, databaseUrl: stack.databaseURL, webhookUrl: sink.url,
            pids: Dictionary(uniqueKeysWithValues: LocalStack.executables.compactMap { service, _ in stack[service].pid.map { (service, $0) } }),
            jwtSecret: options.jwtSecret)
        let tokens = stack.tokens
        let adminToken = tokens.issue(subject: "ops@hitl.dev", role: .admin)
        let agentToken = tokens.issue(subject: "agent@bank.example", role: .agent)
        let approverToken = tokens.issue(subject: "manager@bank.example", role: .approver)
        // It holds the key that mints tokens: readable by its owner only.
        let factsFile = root.appendingPathComponent("dev.json")
        try? FileManager.default.removeItem(at: factsFile)
        guard FileManager.default.createFile(atPath: factsFile.path, contents: Data(try WireCoding.encode(facts)), attributes: [.posixPermissions: 0o600])
        else {
            throw ValidationError("could not write \(factsFile.path)")
        }
        Console.line(
            """
            HITL is running.
              orchestrator  \(facts.orchestratorUrl)
              approval      \(facts.approvalUrl)
              notifier      \(facts.notifierUrl)
              timeout       \(facts.timeoutUrl)
              kafka         \(facts.kafkaBootstrap)
              postgres      \(facts.databaseUrl)
              webhook sink  \(facts.webhookUrl) (notifications are printed below)
              logs          \(root.path)/<service>.log
            The same facts are in \(root.path)/dev.json (`hitl` commands read their token from it). Stop with Ctrl-C.
            Bearer tokens for the APIs (8 h):
              admin     ops@hitl.dev          \(adminToken)
              agent     agent@bank.example    \(agentToken)
              approver  manager@bank.example  \(approverToken)
            """)
        if demo {
            try await submitDemo(orchestrator: facts.orchestratorUrl, token: agentToken)
        }
        await termination.requested()
        Console.line("Stopping …")
        await stack.stop()
        await sink.stop()
        Console.line("Stopped.")
    }

    private func submitDemo(orchestrator: String, token: String) async throws {
        let body = """
            {"idempotency_key":"demo-\(UUID().uuidString.lowercased())","type":"wire_transfer","requester":"agent@bank.example",
             "input":{"amount":6000,"currency":"EUR","to":"ACME GmbH"},
             "steps":[{"name":"approve","kind":"approval","approval":{"approvers":["manager@bank.example"],"timeout_seconds":3600}},
                      {"name":"execute","kind":"task","task":{"type":"noop"}}]}
            """
        var request = HTTPClientRequest(url: "\(orchestrator)/v1/workflows")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let answer = try await response.body.collect(upTo: 1 << 20)
        Console.line("Demo workflow submitted: \(String(buffer: answer))")
        Console.line("Its approval request arrives at the webhook sink below, with a link to approve it in a browser and the command that approves it.")
    }
}

/// What `hitl dev` writes to `.hitl/dev.json`.
struct DevFacts: Codable {
    let orchestratorUrl: String
    let approvalUrl: String
    let notifierUrl: String
    let timeoutUrl: String
    let kafkaBootstrap: String
    let databaseUrl: String
    let webhookUrl: String
    /// The service processes, so that `hitl bench` can read their peak memory.
    let pids: [String: Int32]?
    /// The dev stack's token key, so that `hitl` commands can mint their tokens.
    var jwtSecret: String? = nil
}

/// SIGINT and SIGTERM from the moment it is made: their default action (ending the
/// process at once, leaving Postgres and the services behind) is turned off, and
/// `requested()` returns once either arrived, at once if one came earlier.
final class Termination: @unchecked Sendable {
    // All state behind `lock`.
    private let lock = NSLock()
    private var arrived = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init() {
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .main)
            source.setEventHandler { [weak self] in self?.arrive() }
            source.resume()
            return source
        }
        lock.withLock { self.sources = sources }
    }

    private func arrive() {
        let waiter = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            arrived = true
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume()
    }

    func requested() async {
        await withCheckedContinuation { continuation in
            let now = lock.withLock { () -> Bool in
                if arrived { return true }
                waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Standard output that reaches a file or a pipe at once (C buffers a block at a time
/// there, so `hitl dev > log` showed nothing until it exited).
enum Console {
    static func line(_ text: String) {
        print(text)
        fflush(nil)
    }
}
