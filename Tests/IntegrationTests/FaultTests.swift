import Contracts
import Foundation
import ServiceKitTesting
import Testing

/// The faults around the services: Postgres restarted under load is a non-event, readiness
/// says so while it is down, and SIGTERM ends a service in bounded time whatever is gone.
@Suite(.serialized, .timeLimit(.minutes(10))) struct FaultTests {
    @Test func postgresGoingAwayMidBatchLosesNothingAndReadinessTellsTheTruth() async throws {
        try await Stack.with(privatePostgres: true) { stack in
            let server = try #require(stack.local.postgres)
            var expected: [String: String] = [:]
            var decisions: [(String, String)] = []
            func submit(_ round: Int, _ count: Int) async throws {
                for index in 0..<count {
                    let approve = index.isMultiple(of: 2)
                    let answer = try await CrashRecoveryTests.submitRetrying(stack, API.workflow(key: "pg-\(round)-\(index)"))
                    let id = try #require(answer.string("id"), "\(answer.text)")
                    expected[id] = approve ? "completed" : "rejected"
                    decisions.append((id, approve ? "approve" : "reject"))
                }
            }
            try await submit(0, 6)
            // The server goes away with those in flight: every service says it is not ready.
            try server.stopImmediately()
            for service in ["orchestrator", "approval", "notifier", "timeout"] {
                let ready = try await API.get("\(stack.local.url(of: service))/health/ready", token: nil)
                #expect(ready.status == 503 && ready.string("reason")?.contains("postgres unreachable") == true, "\(service): \(ready.text)")
            }
            try server.startServer()
            try await submit(1, 6)
            // And once more, as a failover would: a restart in the middle of the decisions.
            for (index, (id, decision)) in decisions.enumerated() {
                if index == 6 { try server.restartImmediately() }
                let approvalID = try await stack.pendingApproval(of: id, timeout: .seconds(60))
                let status = try await CrashRecoveryTests.decideRetrying(stack, approvalID, decision)
                #expect(status == 200 || status == 409)
            }
            try await stack.expectEachEndedOnce(expected)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == expected.count)
            for service in ["orchestrator", "approval", "notifier", "timeout"] {
                try await waitUntil("\(service) ready again") {
                    try await API.get("\(stack.local.url(of: service))/health/ready", token: nil).status == 200
                }
            }
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.outbox") == 0)
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
