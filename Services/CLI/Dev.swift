import ArgumentParser
import AsyncHTTPClient
import Contracts
import Dispatch
import Foundation
import NIOCore
import ServiceKit
import ServiceKitTesting

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
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        var options = LocalStack.Options(directory: root)
        let sink = try await WebhookSink.start(secret: "hitl-dev-webhook-secret", tokens: AccessTokens(secret: options.jwtSecret))
        options.webhookURL = sink.url
        options.logLevel = logLevel
        let stack = LocalStack(options: options)
        print("Starting the stack in \(root.path) …")
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
        try Data(try WireCoding.encode(facts)).write(to: root.appendingPathComponent("dev.json"))
        print("""
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
        await waitForTermination()
        print("Stopping …")
        await stack.stop()
        await sink.stop()
        print("Stopped.")
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
        print("Demo workflow submitted: \(String(buffer: answer))")
        print("Its approval request arrives at the webhook sink below, with a link to approve it in a browser and the command that approves it.")
    }

    private func waitForTermination() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = Once(continuation)
            let sources = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: .main) }
            for source in sources {
                source.setEventHandler { once.fire() }
                source.resume()
            }
            SignalSources.keep(sources)
        }
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

/// Resumes a continuation once, however many signals arrive.
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
    func fire() {
        let pending = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            defer { continuation = nil }
            return continuation
        }
        pending?.resume()
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    static func keep(_ new: [any DispatchSourceSignal]) { sources += new }
}
