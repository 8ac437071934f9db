import ArgumentParser
import AsyncHTTPClient
import Contracts
import DevStack
import Foundation
import Kafka
import Logging
import NIOCore
import ServiceKit

/// `hitl bench` (`hitl bench workflows`, `hitl bench timers`): the benchmarks.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks; each prints one JSON line.", subcommands: [WorkflowBench.self, TimerBench.self],
        defaultSubcommand: WorkflowBench.self)
}

/// `hitl bench workflows`: the skeleton flow under load. Each of `concurrency` workers
/// submits a workflow, waits until its approval is visible (the approval service's
/// notification request, committed with the approval, arrives on Kafka), approves it over
/// HTTP, and waits for the orchestrator's `completed` event.
struct WorkflowBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "workflows", abstract: "Benchmark the approve flow and print one JSON line.")

    @Option(help: "How many workflows to run.") var workflows = 2000
    @Option(help: "How many run at once.") var concurrency = 32
    @Option(help: "Where a running stack's dev.json is; without one, a stack is started in a temporary directory.")
    var devFile = ".hitl/dev.json"
    @Flag(help: "Start a fresh stack even when dev.json exists.") var fresh = false
    @Option(help: "Partitions per topic of a stack the benchmark starts itself.") var partitions = Topic.defaultPartitionCount
    @Option(help: "Open loop: start this many workflows a second, whatever the answers (with --seconds; --workflows and --concurrency then do not apply).")
    var rate: Double?
    @Option(help: "Open loop: for this many seconds.") var seconds: Double?

    func run() async throws {
        guard workflows > 0, concurrency > 0, partitions > 0 else { throw ValidationError("--workflows, --concurrency and --partitions must be positive") }
        guard (rate == nil) == (seconds == nil), (rate ?? 1) > 0, (seconds ?? 1) > 0 else {
            throw ValidationError("--rate and --seconds go together, both positive")
        }
        var stack: LocalStack?
        var sink: WebhookSink?
        let facts: DevFacts
        var pids: [String: Int32] = [:]
        var jwtSecret: String?
        if !fresh, let data = FileManager.default.contents(atPath: devFile), let read = try? WireCoding.decode(DevFacts.self, from: Array(data)) {
            facts = read
            pids = read.pids ?? [:]
            jwtSecret = read.jwtSecret
        } else {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-bench-\(getpid())")
            let quietSink = try await WebhookSink.start(secret: "hitl-bench-webhook-secret", quiet: true)
            sink = quietSink
            var options = LocalStack.Options(directory: directory)
            jwtSecret = options.jwtSecret
            options.webhookURL = quietSink.url
            options.webhookSecret = "hitl-bench-webhook-secret"
            options.logLevel = "warning"
            options.partitions = partitions
            let local = LocalStack(options: options)
            FileHandle.standardError.write(Data("starting a stack in \(directory.path) …\n".utf8))
            try await local.start()
            stack = local
            facts = DevFacts(
                orchestratorUrl: local.url(of: "orchestrator"), approvalUrl: local.url(of: "approval"),
                notifierUrl: local.url(of: "notifier"), timeoutUrl: local.url(of: "timeout"),
                kafkaBootstrap: local.kafkaBootstrap, databaseUrl: local.databaseURL, webhookUrl: quietSink.url, pids: nil,
                jwtSecret: options.jwtSecret)
            for (service, _) in LocalStack.executables { pids[service] = local[service].pid }
        }
        guard let jwtSecret else { throw ValidationError("\(devFile) has no token key; restart `hitl dev` or use --fresh") }
        let result: JSONObject
        do {
            result = try await measure(facts, tokens: AccessTokens(secret: jwtSecret), pids: pids)
        } catch {
            await stack?.stop()
            await sink?.stop()
            throw error
        }
        var line = result
        var rss: JSONObject = [:]
        for (service, pid) in pids.sorted(by: { $0.key < $1.key }) {
            if let kib = ServiceProcess.peakRSSKiB(pid: pid) { rss[service] = .number(Double(kib) / 1024) }
        }
        line["peak_rss_mib"] = .object(rss)
        print(try JSONColumn.text(line))
        if let stack { await stack.stop() }
        if let sink { await sink.stop() }
    }

    /// Runs the flows; besides times, reports the CPU each workflow cost the machine (every
    /// process on it: Postgres, Kafka, the services, this client) and each service, which
    /// compares across runs far better than workflows/s on a machine whose speed drifts.
    private func measure(_ facts: DevFacts, tokens: AccessTokens, pids: [String: Int32]) async throws -> JSONObject {
        let agentToken = tokens.issue(subject: "bench@hitl.example", role: .agent)
        let approverToken = tokens.issue(subject: "approver@hitl.example", role: .approver)
        let logger = Logger(label: "hitl.bench")
        let tracker = FlowTracker()
        let consumer = try KafkaConsumer(
            configuration: KafkaConfiguration(bootstrapServers: facts.kafkaBootstrap, properties: ["fetch.wait.max.ms": "5"]),
            groupID: "hitl-bench-\(UUID().uuidString)", topics: [Topic.notifications.rawValue, Topic.workflowEvents.rawValue], logger: logger)
        let listener = Task {
            try await consumer.run { message in
                guard let envelope = try? EventEnvelope(message) else { return true }
                if envelope.type == .notificationRequested, let note = try? envelope.decode(NotificationRequested.self), note.reason == "approval_requested",
                    let approval = note.approvalId
                {
                    await tracker.arrived(.approval(approval), workflow: note.workflowId)
                } else if envelope.type == .workflowCompleted {
                    await tracker.arrived(.completed, workflow: envelope.subject)
                }
                return true
            }
        }
        var clientConfiguration = HTTPClient.Configuration()
        // An open loop must not be held back by its own client: past the stack's capacity,
        // flows pile up, and each needs a connection for its calls; with `concurrency`
        // connections they would wait in the pool until it gave up on them.
        clientConfiguration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: rate == nil ? concurrency : 1024)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        // A new group reads from the earliest offset, so no event of ours is missed while the
        // listener joins; one flow first warms up the connections and the group.
        _ = try await runOne(index: -1, facts: facts, client: client, tracker: tracker, tokens: (agentToken, approverToken))
        let cpuBefore = CPUUse(pids: pids)
        let started = ContinuousClock.now
        if let rate, let seconds {
            let (samples, quarters, failures) = try await openLoop(
                rate: rate, seconds: seconds, pids: pids,
                run: { index in
                    try await runOne(index: index, facts: facts, client: client, tracker: tracker, tokens: (agentToken, approverToken))
                })
            let cpu = CPUUse(pids: pids).milliseconds(since: cpuBefore, per: samples.count)
            listener.cancel()
            _ = try? await listener.value
            try await client.shutdown()
            var line = Self.summary(samples, seconds: milliseconds(ContinuousClock.now - started) / 1000)
            line["mode"] = "open_loop"
            line["rate"] = .number(rate)
            line["quarters"] = .array(quarters.map(JSONValue.object))
            line["cpu_ms_per_workflow"] = .object(cpu)
            // Failed flows are not in the percentiles (which are of completed flows): they are
            // counted, by reason.
            line["failed"] = .number(Double(failures.count))
            line["failed_by_reason"] = .object(
                Dictionary(grouping: failures, by: { $0 }).mapValues { .number(Double($0.count)) })
            return line
        }
        let samples = try await withThrowingTaskGroup(of: [(Double, Double)].self) { group in
            let perWorker = (workflows + concurrency - 1) / concurrency
            for worker in 0..<concurrency {
                // The last workers' ranges may be empty when `workflows` does not divide evenly.
                let range = min(workflows, worker * perWorker)..<min(workflows, (worker + 1) * perWorker)
                group.addTask {
                    var samples: [(Double, Double)] = []
                    for index in range {
                        samples.append(try await runOne(index: index, facts: facts, client: client, tracker: tracker, tokens: (agentToken, approverToken)))
                    }
                    return samples
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let seconds = milliseconds(ContinuousClock.now - started) / 1000
        let cpu = CPUUse(pids: pids).milliseconds(since: cpuBefore, per: samples.count)
        listener.cancel()
        _ = try? await listener.value
        try await client.shutdown()
        var line = Self.summary(samples, seconds: seconds)
        line["concurrency"] = .number(Double(concurrency))
        line["cpu_ms_per_workflow"] = .object(cpu)
        return line
    }

    /// Count, rate and latency percentiles of (pause ms, resume ms) samples.
    static func summary(_ samples: [(Double, Double)], seconds: Double) -> JSONObject {
        let pauses = samples.map(\.0).sorted()
        let resumes = samples.map(\.1).sorted()
        return [
            "workflows": .number(Double(samples.count)),
            "seconds": .number(rounded(seconds)), "workflows_per_s": .number(rounded(Double(samples.count) / max(seconds, 0.001))),
            "pause_ms_p50": .number(rounded(percentile(pauses, 0.50))), "pause_ms_p99": .number(rounded(percentile(pauses, 0.99))),
            "resume_ms_p50": .number(rounded(percentile(resumes, 0.50))), "resume_ms_p99": .number(rounded(percentile(resumes, 0.99))),
        ]
    }

    /// Starts `run(index)` `rate` times a second for `seconds`, whatever the answers (an open
    /// loop: a slow system is not given a slower load). Returns every sample and, per quarter
    /// of the run (by start time), its latency percentiles and each service's RSS at its end;
    /// and why flows failed (past the stack's capacity, calls time out), counted rather than
    /// ending the run.
    private func openLoop(
        rate: Double, seconds: Double, pids: [String: Int32], run: @escaping @Sendable (Int) async throws -> (Double, Double)
    ) async throws -> ([(Double, Double)], [JSONObject], [String]) {
        let total = max(4, Int(rate * seconds))
        let started = ContinuousClock.now
        var rss: [JSONObject] = []
        let outcomes = try await withThrowingTaskGroup(of: Result<(Int, Double, Double), any Error>.self) { group in
            for index in 0..<total {
                try await Task.sleep(until: started + .seconds(Double(index) / rate), clock: .continuous)
                group.addTask {
                    do {
                        let (pause, resume) = try await run(index)
                        return .success((index, pause, resume))
                    } catch {
                        return .failure(error)
                    }
                }
                if (index + 1) % (total / 4) == 0, rss.count < 4 {
                    var sample: JSONObject = [:]
                    for (service, pid) in pids.sorted(by: { $0.key < $1.key }) {
                        if let kib = ServiceProcess.currentRSSKiB(pid: pid) { sample[service] = .number(rounded(Double(kib) / 1024)) }
                    }
                    rss.append(sample)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let indexed = outcomes.compactMap { try? $0.get() }
        let failures = outcomes.compactMap { outcome -> String? in
            guard case .failure(let error) = outcome else { return nil }
            return "\(error)"
        }
        let quarters = (0..<4).map { quarter -> JSONObject in
            let part = indexed.filter { $0.0 * 4 / total == quarter }.map { ($0.1, $0.2) }
            var line = Self.summary(part, seconds: seconds / 4)
            line["rss_mib"] = .object(quarter < rss.count ? rss[quarter] : [:])
            return line
        }
        return (indexed.map { ($0.1, $0.2) }, quarters, failures)
    }

    /// One flow; returns (pause ms, resume ms).
    private func runOne(index: Int, facts: DevFacts, client: HTTPClient, tracker: FlowTracker, tokens: (agent: String, approver: String)) async throws -> (
        Double, Double
    ) {
        let key = "bench-\(UUID().uuidString.lowercased())"
        let body = """
            {"idempotency_key":"\(key)","type":"bench","requester":"bench@hitl.example","input":{"index":\(index)},
             "steps":[{"name":"approve","kind":"approval","approval":{"approvers":["approver@hitl.example"],"timeout_seconds":3600}},
                      {"name":"execute","kind":"task","task":{"type":"noop"}}]}
            """
        let submitted = ContinuousClock.now
        let answer = try await post(client, "\(facts.orchestratorUrl)/v1/workflows", body, token: tokens.agent)
        guard case .string(let workflowID)? = answer["id"] else { throw ValidationError("submission failed: \(answer)") }
        let approvalID = try await tracker.waitForApproval(workflow: workflowID)
        let visible = ContinuousClock.now
        _ = try await post(client, "\(facts.approvalUrl)/v1/approvals/\(approvalID)/decision", #"{"decision":"approve"}"#, token: tokens.approver)
        let accepted = ContinuousClock.now
        try await tracker.waitForCompletion(workflow: workflowID)
        let completed = ContinuousClock.now
        return (milliseconds(visible - submitted), milliseconds(completed - accepted))
    }

    private func post(_ client: HTTPClient, _ url: String, _ body: String, token: String) async throws -> JSONObject {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = Array(buffer: try await response.body.collect(upTo: 1 << 20))
        guard (200..<300).contains(response.status.code) else {
            throw ValidationError("\(url) answered \(response.status.code): \(String(decoding: bytes, as: UTF8.self))")
        }
        return (try? WireCoding.decode(JSONObject.self, from: bytes)) ?? [:]
    }

}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
}

func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }

/// CPU seconds used so far by the whole machine and by each service process.
struct CPUUse {
    let machine: Double?
    let services: [String: Double]

    init(pids: [String: Int32]) {
        machine = ServiceProcess.machineCPUSeconds()
        services = pids.compactMapValues(ServiceProcess.cpuSeconds(pid:))
    }

    /// Milliseconds of CPU per workflow since `start`, by "machine" and service name.
    func milliseconds(since start: CPUUse, per workflows: Int) -> JSONObject {
        func perWorkflow(_ seconds: Double) -> JSONValue { .number(rounded(seconds * 1000 / Double(max(1, workflows)))) }
        var result: JSONObject = [:]
        if let machine, let before = start.machine { result["machine"] = perWorkflow(machine - before) }
        for (service, seconds) in services {
            if let before = start.services[service] { result[service] = perWorkflow(seconds - before) }
        }
        return result
    }
}

/// Matches events seen on Kafka to the flows waiting for them; an event that arrives
/// before its waiter is kept for it.
actor FlowTracker {
    enum Arrival { case approval(String), completed }

    private var approvals: [String: String] = [:]
    private var completed: Set<String> = []
    private var approvalWaiters: [String: CheckedContinuation<String, Never>] = [:]
    private var completionWaiters: [String: CheckedContinuation<Void, Never>] = [:]

    func arrived(_ arrival: Arrival, workflow: String) {
        switch arrival {
        case .approval(let id):
            if let waiter = approvalWaiters.removeValue(forKey: workflow) { waiter.resume(returning: id) } else { approvals[workflow] = id }
        case .completed:
            if let waiter = completionWaiters.removeValue(forKey: workflow) { waiter.resume() } else { completed.insert(workflow) }
        }
    }

    func waitForApproval(workflow: String) async throws -> String {
        if let id = approvals.removeValue(forKey: workflow) { return id }
        return await withCheckedContinuation { approvalWaiters[workflow] = $0 }
    }

    func waitForCompletion(workflow: String) async throws {
        if completed.remove(workflow) != nil { return }
        await withCheckedContinuation { completionWaiters[workflow] = $0 }
    }
}
