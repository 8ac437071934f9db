import ArgumentParser
import Contracts
import DevStack
import Foundation
import Kafka
import Logging
import PostgresNIO
import ServiceKit

/// `hitl bench timers`: firing precision with a large backlog. Starts a timeout service on
/// a private stack, loads `pending` timers due in a day straight into its table (through
/// SQL: the backlog's way in is not what is measured), then schedules `per-minute` timers
/// a minute over the real path (`hitl.timer.requests`), each due a few seconds later, and
/// reads their firings. Reports the lag between due time and firing (the service's
/// `fired_at`, and arrival on Kafka) and the service's memory at the start and the end.
struct TimerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "timers", abstract: "Benchmark timer firing with a large backlog; print one JSON line.")

    @Option(help: "Timers pending far in the future during the run.") var pending = 1_000_000
    @Option(help: "Timers falling due per minute.") var perMinute = 10_000
    @Option(help: "How long to schedule, in seconds.") var seconds = 120
    @Option(help: "How far ahead each timer is due, in seconds.") var lead = 5.0

    func run() async throws {
        guard pending >= 0, perMinute > 0, seconds > 0 else { throw ValidationError("--pending, --per-minute and --seconds must be positive") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hitl-timer-bench-\(getpid())")
        var options = LocalStack.Options(directory: directory)
        options.replicas = ["timeout": 1]
        options.logLevel = "warning"
        let stack = LocalStack(options: options)
        FileHandle.standardError.write(Data("starting a timeout service in \(directory.path) …\n".utf8))
        try await stack.start()
        do {
            print(try JSONColumn.text(try await measure(stack)))
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }

    private func measure(_ stack: LocalStack) async throws -> JSONObject {
        let logger = Logger(label: "hitl.bench")
        let pid = try requirePID(stack)
        let loadStarted = ContinuousClock.now
        try await StackDatabase.withClient(try DatabaseConfiguration(url: stack.databaseURL, schema: "timeout")) { client in
            try await client.query(
                """
                INSERT INTO timeout.timers (owner, key, workflow_id, due_at, payload)
                SELECT 'notifier', 'backlog:' || g, 'wf-' || (g % 10000), now() + interval '1 day' + g * interval '10 milliseconds', '{}'::jsonb
                FROM generate_series(1, \(pending)) AS g
                """, logger: logger)
            try await client.query("ANALYZE timeout.timers", logger: logger)
        }
        FileHandle.standardError.write(Data("loaded \(pending) pending timers in \(rounded(milliseconds(.now - loadStarted) / 1000)) s\n".utf8))
        let rssAtStart = ServiceProcess.currentRSSKiB(pid: pid)

        let arrivals = Collected<(TimerFired, Date)>()
        let consumer = try KafkaConsumer(
            configuration: KafkaConfiguration(bootstrapServers: stack.kafkaBootstrap, properties: ["fetch.wait.max.ms": "5"]),
            groupID: "timer-bench-\(UUID().uuidString)", topics: [Topic.timerFirings(for: .notifier).rawValue], logger: logger)
        let reader = Task {
            try await consumer.run { message in
                if let envelope = try? EventEnvelope(message),
                    let fired = try? envelope.decode(TimerFired.self)
                {
                    await arrivals.append((fired, Date()))
                }
                return true
            }
        }
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: stack.kafkaBootstrap), logger: logger)
        // Every 100 ms, the share of timers for that tenth of a second.
        let ticks = seconds * 10
        var scheduled = 0
        let started = ContinuousClock.now
        for tick in 0..<ticks {
            let target = (perMinute * (tick + 1)) / 600
            let batch = (scheduled..<target).map { index -> KafkaRecord in
                let timer = TimerScheduled(
                    owner: .notifier, key: "bench:\(index)", workflowId: "wf-\(index % 1000)", dueAt: Date().addingTimeInterval(lead), payload: [:])
                let envelope = try! EventEnvelope(timer, source: "bench", subject: timer.workflowId)
                return KafkaRecord(envelope, topic: .timerRequests)
            }
            scheduled = target
            Task { _ = await producer.send(batch) }
            try await Task.sleep(until: started + .milliseconds(100 * (tick + 1)))
        }
        let deadline = ContinuousClock.now + .seconds(Int64(lead) + 30)
        while await arrivals.count < scheduled, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        reader.cancel()
        _ = try? await reader.value
        await producer.shutdown()

        let items = await arrivals.items
        let fireLags = items.map { max(0, $0.0.firedAt.timeIntervalSince($0.0.dueAt) * 1000) }.sorted()
        let arrivalLags = items.map { max(0, $0.1.timeIntervalSince($0.0.dueAt) * 1000) }.sorted()
        let pendingLeft = try await StackDatabase.withClient(try DatabaseConfiguration(url: stack.databaseURL, schema: "timeout")) { client in
            var count = 0
            for try await value in try await client.query("SELECT count(*)::int FROM timeout.timers WHERE status = 'scheduled'").decode(Int.self) {
                count = value
            }
            return count
        }
        return [
            "pending_backlog": .number(Double(pendingLeft)), "scheduled": .number(Double(scheduled)), "fired": .number(Double(items.count)),
            "per_minute": .number(Double(perMinute)), "seconds": .number(Double(seconds)),
            "fire_lag_ms_p50": .number(rounded(percentile(fireLags, 0.5))), "fire_lag_ms_p99": .number(rounded(percentile(fireLags, 0.99))),
            "fire_lag_ms_max": .number(rounded(fireLags.last ?? 0)),
            "arrival_lag_ms_p50": .number(rounded(percentile(arrivalLags, 0.5))), "arrival_lag_ms_p99": .number(rounded(percentile(arrivalLags, 0.99))),
            "timeout_rss_mib_start": .number(rounded(Double(rssAtStart ?? 0) / 1024)),
            "timeout_rss_mib_end": .number(rounded(Double(ServiceProcess.currentRSSKiB(pid: pid) ?? 0) / 1024)),
            "timeout_rss_mib_peak": .number(rounded(Double(ServiceProcess.peakRSSKiB(pid: pid) ?? 0) / 1024)),
        ]
    }

    private func requirePID(_ stack: LocalStack) throws -> Int32 {
        guard let pid = stack["timeout"].pid else { throw ValidationError("the timeout service is not running") }
        return pid
    }
}
