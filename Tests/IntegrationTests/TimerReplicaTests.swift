import Contracts
import DevStack
import Foundation
import Kafka
import Logging
import ServiceKitTesting
import Testing

/// The timeout service as a durable timer service, with two replicas sharing one schema.
@Suite(.serialized, .timeLimit(.minutes(10))) struct TimerReplicaTests {
    @Test func twoReplicasFireTenThousandTimersNoneTwiceNoneMissed() async throws {
        try await Stack.with(replicas: ["timeout": 2]) { stack in
            let count = 10_000
            let start = Date().addingTimeInterval(3)
            // Ten waves of a thousand timers due at the same instant, so both replicas compete.
            let timers = (0..<count).map { index in
                TimerScheduled(
                    owner: .notifier, key: "bulk:\(index)", workflowId: "wf-\(index % 97)",
                    dueAt: start.addingTimeInterval(Double(index / 1000) * 0.5), payload: ["index": .number(Double(index))])
            }
            let producer = try KafkaProducer(
                configuration: KafkaConfiguration(bootstrapServers: stack.local.kafkaBootstrap), logger: Logger(label: "test.timers"))
            let records = try timers.map { timer in
                let envelope = try EventEnvelope(timer, source: "test", subject: timer.workflowId)
                return KafkaRecord(envelope, topic: .timerRequests)
            }
            #expect(await producer.send(records).allSatisfy { $0 == nil })
            // Scheduling again changes nothing (idempotent by owner and key).
            #expect(await producer.send(Array(records.prefix(100))).allSatisfy { $0 == nil })
            await producer.shutdown()

            let fired = Collected<TimerFired>()
            let consumer = try KafkaConsumer(
                configuration: KafkaConfiguration(bootstrapServers: stack.local.kafkaBootstrap, properties: ["statistics.interval.ms": "200"]),
                groupID: "reader-\(UUID().uuidString)",
                topics: [Topic.timerFirings(for: .notifier).rawValue], logger: Logger(label: "test.reader"))
            let reader = Task {
                try await consumer.run { message in
                    if let envelope = try? EventEnvelope(message),
                        let firing = try? envelope.decode(TimerFired.self)
                    {
                        await fired.append(firing)
                    }
                    return true
                }
            }
            // A guard against a hang, not a speed target (that is `hitl bench timers`): on a loaded
            // machine the ten thousand take well over a minute.
            try await waitUntil("every timer to fire", timeout: .seconds(300)) { await fired.count >= count }
            // A duplicate could only come from an outbox row published twice: once the
            // replicas' outbox is empty and the reader has read all there is, none can come.
            try await waitUntil("the replicas' outbox to be empty") { try await stack.count("SELECT count(*)::int FROM timeout.outbox") == 0 }
            try await waitUntil("the reader to have read every firing") { consumer.lag()?[Topic.timerFirings(for: .notifier).rawValue] == 0 }
            reader.cancel()
            _ = try? await reader.value

            let firings = await fired.items
            #expect(firings.count == count)
            #expect(Set(firings.map(\.key)) == Set(timers.map(\.key)))
            #expect(firings.allSatisfy { $0.firedAt >= $0.dueAt.addingTimeInterval(-0.001) })
            #expect(try await stack.count("SELECT count(*)::int FROM timeout.timers WHERE status = 'fired'") == count)
            // Both replicas fired a share.
            for replica in ["timeout", "timeout-2"] {
                #expect(try await stack.metric("hitl_timers_fired_total", in: replica) > 0, "\(replica) fired no timer")
            }
        }
    }

    /// A schedule and its cancel consumed together (schedules are inserted at commit, cancels
    /// at once), in either order, leave the timer cancelled: it never fires.
    @Test func aScheduleAndItsCancelConsumedTogetherNeverFire() async throws {
        try await Stack.with { stack in
            let due = Date().addingTimeInterval(2)
            let schedule = { (key: String) in TimerScheduled(owner: .notifier, key: key, workflowId: "wf-together", dueAt: due, payload: [:]) }
            let cancel = { (key: String) in TimerCancelled(owner: .notifier, key: key, workflowId: "wf-together") }
            let producer = try KafkaProducer(
                configuration: KafkaConfiguration(bootstrapServers: stack.local.kafkaBootstrap), logger: Logger(label: "test.timers"))
            let records = [
                KafkaRecord(try EventEnvelope(schedule("together:1"), source: "test", subject: "wf-together"), topic: .timerRequests),
                KafkaRecord(try EventEnvelope(cancel("together:1"), source: "test", subject: "wf-together"), topic: .timerRequests),
                KafkaRecord(try EventEnvelope(cancel("together:2"), source: "test", subject: "wf-together"), topic: .timerRequests),
                KafkaRecord(try EventEnvelope(schedule("together:2"), source: "test", subject: "wf-together"), topic: .timerRequests),
            ]
            #expect(await producer.send(records).allSatisfy { $0 == nil })
            await producer.shutdown()
            try await waitUntil("both timers are recorded as cancelled") {
                try await stack.count("SELECT count(*)::int FROM timeout.timers WHERE key LIKE 'together:%' AND status = 'cancelled'") == 2
            }
            try await Task.sleep(for: .seconds(3))
            #expect(try await stack.count("SELECT count(*)::int FROM timeout.timers WHERE key LIKE 'together:%' AND status <> 'cancelled'") == 0)
        }
    }
}
