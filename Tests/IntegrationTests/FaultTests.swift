import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// The faults around the services: Postgres restarted under load is a non-event, readiness
/// says so while it is down, and SIGTERM ends a service in bounded time whatever is gone.
@Suite(.serialized, .timeLimit(.minutes(10))) struct FaultTests {
    @Test func postgresGoingAwayMidBatchLosesNothingAndReadinessTellsTheTruth() async throws {
        try await Stack.with(privatePostgres: true) { stack in
            let server = try #require(stack.local.postgres)
            var batch = Batch(prefix: "pg")
            try await batch.submit(to: stack, round: 0, count: 6)
            // The server goes away with those in flight: every service says it is not ready.
            try server.stopImmediately()
            for service in ["orchestrator", "approval", "notifier", "timeout"] {
                let ready = try await API.get("\(stack.local.url(of: service))/health/ready", token: nil)
                #expect(ready.status == 503 && ready.string("reason")?.contains("postgres unreachable") == true, "\(service): \(ready.text)")
            }
            try server.startServer()
            try await batch.submit(to: stack, round: 1, count: 6)
            // And once more, as a failover would: a restart in the middle of the decisions.
            for (index, (id, decision)) in batch.decisions.enumerated() {
                if index == 6 { try server.restartImmediately() }
                let approvalID = try await stack.pendingApproval(of: id, timeout: .seconds(60))
                let status = try await CrashRecoveryTests.decideRetrying(stack, approvalID, decision)
                #expect(status == 200 || status == 409)
            }
            try await stack.expectEachEndedOnce(batch.expected)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == batch.expected.count)
            for service in ["orchestrator", "approval", "notifier", "timeout"] {
                try await waitUntil("\(service) ready again") {
                    try await API.get("\(stack.local.url(of: service))/health/ready", token: nil).status == 200
                }
            }
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.outbox") == 0)
        }
    }

    @Test func kafkaGoingAwayMidBatchLosesNothingWhileReadsAndWritesGoOn() async throws {
        try await Stack.with { stack in
            let cluster = try #require(stack.local.kafka)
            var batch = Batch(prefix: "kafka")
            try await batch.submit(to: stack, round: 0, count: 6)
            for broker in cluster.brokerIDs { try cluster.setBrokerDown(broker) }
            // Reads go on; writes that need Kafka are accepted into the outbox and wait there.
            #expect(try await API.get("\(stack.orchestrator)/v1/workflows").status == 200)
            try await batch.submit(to: stack, round: 1, count: 6)
            try await waitUntil("the orchestrator to say Kafka is unreachable") {
                let ready = try await API.get("\(stack.orchestrator)/health/ready", token: nil)
                return ready.status == 503 && ready.string("reason")?.contains("kafka unreachable") == true
            }
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.outbox") > 0)
            try await Task.sleep(for: .seconds(2))
            for broker in cluster.brokerIDs { try cluster.setBrokerUp(broker) }
            for (id, decision) in batch.decisions {
                let approvalID = try await stack.pendingApproval(of: id, timeout: .seconds(90))
                let status = try await CrashRecoveryTests.decideRetrying(stack, approvalID, decision)
                #expect(status == 200 || status == 409)
            }
            try await stack.expectEachEndedOnce(batch.expected)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == batch.expected.count)
            try await waitUntil("the orchestrator ready again") {
                try await API.get("\(stack.orchestrator)/health/ready", token: nil).status == 200
            }
        }
    }

    /// All of it in one run: Postgres restarted, the brokers down and back, and each service
    /// killed with -9 in turn, with workflows in flight throughout.
    @Test func postgresKafkaAndEachServiceGoingAwayInOneRunLoseNothing() async throws {
        try await Stack.with(privatePostgres: true) { stack in
            let server = try #require(stack.local.postgres)
            let cluster = try #require(stack.local.kafka)
            var batch = Batch(prefix: "all")
            try await batch.submit(to: stack, round: 0, count: 4)
            try server.stopImmediately()
            let down = try await API.get("\(stack.orchestrator)/health/ready", token: nil)
            #expect(down.status == 503 && down.string("reason")?.contains("postgres unreachable") == true, "\(down.text)")
            try server.startServer()
            try await batch.submit(to: stack, round: 1, count: 4)
            for broker in cluster.brokerIDs { try cluster.setBrokerDown(broker) }
            try await waitUntil("the orchestrator to say Kafka is unreachable") {
                let ready = try await API.get("\(stack.orchestrator)/health/ready", token: nil)
                return ready.status == 503 && ready.string("reason")?.contains("kafka unreachable") == true
            }
            try await batch.submit(to: stack, round: 2, count: 4)
            for broker in cluster.brokerIDs { try cluster.setBrokerUp(broker) }
            for (round, service) in LocalStack.executables.map(\.0).enumerated() {
                try await batch.submit(to: stack, round: 3 + round, count: 2)
                stack.local[service].kill9()
                try stack.local[service].start()
                try await stack.local[service].waitUntilReady()
            }
            for (index, (id, decision)) in batch.decisions.enumerated() {
                if index == batch.decisions.count / 2 { try server.restartImmediately() }
                let approvalID = try await stack.pendingApproval(of: id, timeout: .seconds(90))
                let status = try await CrashRecoveryTests.decideRetrying(stack, approvalID, decision)
                #expect(status == 200 || status == 409)
            }
            try await stack.expectEachEndedOnce(batch.expected)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == batch.expected.count)
            // One decision per approval: one vote, and the approval closed by it.
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approval_votes") == batch.expected.count)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals WHERE status NOT IN ('approved', 'rejected')") == 0)
            let urls = [
                "--approval", stack.approval, "--notifier", stack.local.url(of: "notifier"), "--timeout", stack.local.url(of: "timeout"), "--grace", "0",
            ]
            try await waitUntil("every outbox drained") {
                try await stack.count("SELECT count(*)::int FROM orchestrator.outbox") == 0
            }
            #expect(try stack.hitl(["doctor"] + urls).contains("nothing found"))
        }
    }

    @Test func sigtermEndsEachServiceInBoundedTimeWithTheBrokerOrPostgresGone() async throws {
        try await Stack.with(environment: ["HITL_SHUTDOWN_TIMEOUT_SECONDS": "4"], privatePostgres: true) { stack in
            // Work in flight, so that something waits on what is about to go.
            for index in 0..<4 { _ = try await stack.submit(API.workflow(key: "term-\(index)")) }
            let cluster = try #require(stack.local.kafka)
            for broker in cluster.brokerIDs { try cluster.setBrokerDown(broker) }
            try await Task.sleep(for: .seconds(1))
            for service in ["orchestrator", "approval"] {
                let took = try await Self.terminate(stack.local[service])
                #expect(took < .seconds(7), "\(service) took \(took) to stop with the broker gone")
            }
            for broker in cluster.brokerIDs { try cluster.setBrokerUp(broker) }
            try #require(stack.local.postgres).stopImmediately()
            try await Task.sleep(for: .seconds(1))
            for service in ["notifier", "timeout"] {
                let took = try await Self.terminate(stack.local[service])
                #expect(took < .seconds(7), "\(service) took \(took) to stop with Postgres gone")
            }
            try #require(stack.local.postgres).startServer()
        }
    }

    /// Workflows submitted in rounds, half to approve and half to reject, with the status
    /// each must end in.
    struct Batch {
        let prefix: String
        var expected: [String: String] = [:]
        var decisions: [(String, String)] = []

        mutating func submit(to stack: Stack, round: Int, count: Int) async throws {
            for index in 0..<count {
                let approve = index.isMultiple(of: 2)
                let answer = try await CrashRecoveryTests.submitRetrying(stack, API.workflow(key: "\(prefix)-\(round)-\(index)"))
                let id = try #require(answer.string("id"), "\(answer.text)")
                expected[id] = approve ? "completed" : "rejected"
                decisions.append((id, approve ? "approve" : "reject"))
            }
        }
    }

    /// Sends SIGTERM and waits (up to 30 s) for the process to end; how long it took.
    static func terminate(_ process: ServiceProcess) async throws -> Duration {
        let pid = try #require(process.pid)
        let started = ContinuousClock.now
        kill(pid, SIGTERM)
        while process.isRunning, ContinuousClock.now - started < .seconds(30) {
            try await Task.sleep(for: .milliseconds(50))
        }
        return ContinuousClock.now - started
    }
}

/// `hitl doctor` finds nothing on a healthy stack, and names each inconsistency it is shown.
@Suite(.serialized, .timeLimit(.minutes(10))) struct DoctorTests {
    @Test func doctorFindsWhatDoesNotAddUpAcrossTheServices() async throws {
        try await Stack.with { stack in
            let id = try #require(try await stack.submit(API.workflow(key: "doctor-1")).string("id"))
            let approval = try await stack.pendingApproval(of: id)
            try await waitUntil("the deadline timer") {
                try await stack.count("SELECT count(*)::int FROM timeout.timers WHERE key = \("deadline:" + approval) AND status = 'scheduled'") == 1
            }
            // What doctor reads is for admins only.
            #expect(try await API.get("\(stack.orchestrator)/v1/ops/waiting", token: TestTokens.agent("agent@bank.example")).status == 403)
            #expect(try await API.get("\(stack.local.url(of: "timeout"))/v1/ops/timers", token: nil).status == 401)
            #expect(try await API.get("\(stack.local.url(of: "timeout"))/v1/ops/timers", token: TestTokens.approver("manager@bank.example")).status == 403)
            let urls = [
                "--approval", stack.approval, "--notifier", stack.local.url(of: "notifier"), "--timeout", stack.local.url(of: "timeout"), "--grace", "0",
            ]
            #expect(try stack.hitl(["doctor"] + urls).contains("nothing found"))

            // Break each invariant behind the services' backs.
            _ = try await stack.sql("DELETE FROM timeout.timers WHERE key = \("deadline:" + approval)")
            let second = try #require(try await stack.submit(API.workflow(key: "doctor-2")).string("id"))
            let closed = try await stack.pendingApproval(of: second)
            _ = try await stack.sql("UPDATE approval.approvals SET status = 'expired' WHERE id = \(UUID(uuidString: closed)!)")
            try await stack.publish(
                TaskResult(workflowId: id, step: "execute", attempt: 1, outcome: .succeeded, worker: "forger"), to: .taskResults, subject: id)
            try await waitUntil("the forged result in the dead-letter index") {
                try await stack.count("SELECT count(*)::int FROM orchestrator.dead_letters") == 1
            }
            do {
                _ = try stack.hitl(["doctor"] + urls)
                Issue.record("doctor found nothing")
            } catch let failure as Shell.Failure {
                #expect(failure.output.contains("pending approval \(approval) has no deadline timer"), "\(failure.output)")
                #expect(failure.output.contains("workflow \(second) waits on approval \(closed), which is expired"), "\(failure.output)")
                #expect(failure.output.contains("is not replayed: task result refused"), "\(failure.output)")
            }
        }
    }
}
