import Contracts
import Foundation
import PostgresNIO
import ServiceKitTesting
import Testing

/// Deliveries that fail: retried on durable timers of the timeout service, held by the
/// channel's circuit breaker while the other channels go on, and dead-lettered after the
/// last attempt with a retry request that ops replay.
@Suite(.serialized, .timeLimit(.minutes(10))) struct DeliveryRetryTests {
    @Test func aFailingChannelIsRetriedOnTimersAndItsBreakerHoldsItWhileEmailGoesOn() async throws {
        try await LocalSMTPServer.with { smtp in
            var environment = smtp.environment
            environment["HITL_DELIVERY_RETRY_BASE_MS"] = "200"
            environment["HITL_DELIVERY_BREAKER_THRESHOLD"] = "3"
            environment["HITL_DELIVERY_BREAKER_COOLDOWN_SECONDS"] = "3"
            try await Stack.with(environment: environment) { stack in
                await stack.webhook.outage.set(3)
                let id = try #require(try await stack.submit(API.workflow(key: "retry-1")).string("id"))
                let approval = try await stack.pendingApproval(of: id)
                try await waitUntil("the webhook's breaker opens") {
                    try await stack.count("SELECT count(*)::int FROM notifier.channel_state WHERE channel = 'webhook' AND failures = 3 AND open_until > now()")
                        == 1
                }
                // The other channel is not held up.
                try await waitUntil("the mail is sent meanwhile") { try smtp.messages().contains { $0["subject"] == "Approval needed: wire_transfer" } }
                try await waitUntil("the webhook delivery succeeds on its probe") {
                    await stack.webhook.accepted.items.contains { $0.approvalId == approval }
                }
                try await waitUntil("the delivery is recorded") {
                    try await stack.count("SELECT count(*)::int FROM notifier.deliveries WHERE channel = 'webhook' AND status = 'delivered' AND attempts = 4")
                        == 1
                }
                #expect(try await stack.count("SELECT count(*)::int FROM notifier.channel_state") == 0)
                // Each retry waited on a timer of the timeout service.
                #expect(try await stack.count("SELECT count(*)::int FROM timeout.timers WHERE owner = 'notifier' AND status = 'fired'") >= 2)
                // Backoff alone (200 ms doubling) would retry within a second; the open breaker held the probe for its cool-down.
                let rows = try await stack.sql(
                    """
                    SELECT extract(epoch FROM max(at) FILTER (WHERE succeeded) - max(at) FILTER (WHERE NOT succeeded))::float8
                    FROM notifier.delivery_attempts a JOIN notifier.deliveries d ON d.id = a.delivery_id WHERE d.channel = 'webhook'
                    """)
                let held = try #require(try rows.first?.decode(Double.self))
                #expect(held >= 2.5)
            }
        }
    }

    /// Deliveries that succeed together are recorded together (one statement, one commit),
    /// each with its own attempt and status.
    @Test func successesThatFinishTogetherShareTheirRecord() async throws {
        try await Stack.with { stack in
            await stack.webhook.gate.close()
            for index in 0..<6 { _ = try await stack.submit(API.workflow(key: "together-\(index)")) }
            try await waitUntil("six deliveries wait at the receiver") { await stack.webhook.gate.count == 6 }
            await stack.webhook.gate.open()
            try await waitUntil("every delivery is recorded") {
                try await stack.count("SELECT count(*)::int FROM notifier.deliveries WHERE status = 'delivered' AND attempts = 1") == 6
            }
            #expect(try await stack.count("SELECT count(*)::int FROM notifier.delivery_attempts WHERE succeeded AND attempt = 1") == 6)
            // Rows written by one statement share its transaction's time.
            let shared: PostgresQuery = "SELECT count(*)::int FROM (SELECT at FROM notifier.delivery_attempts GROUP BY at HAVING count(*) > 1) AS shared"
            #expect(try await stack.count(shared) >= 1)
        }
    }

    @Test func theLastFailedAttemptIsDeadLetteredAndReplayingItDelivers() async throws {
        try await Stack.with(environment: ["HITL_DELIVERY_MAX_ATTEMPTS": "2", "HITL_DELIVERY_RETRY_BASE_MS": "100"]) { stack in
            await stack.webhook.outage.set(1000)
            let id = try #require(try await stack.submit(API.workflow(key: "retry-dlq")).string("id"))
            try await waitUntil("the delivery fails for good") {
                try await stack.count("SELECT count(*)::int FROM notifier.deliveries WHERE status = 'failed' AND attempts = 2") == 1
            }
            let failed = try await stack.events(on: .notificationOutcomes).filter { $0.type == .notificationFailed }
            #expect(failed.count == 1)
            var listed = ""
            try await waitUntil("the dead letter is listed", timeout: .seconds(60)) {
                listed = try stack.hitl(["dlq", "list", "--service", "notifier"])
                return listed.contains(EventType.notificationRetryRequested.rawValue)
            }
            #expect(await stack.webhook.accepted.items.isEmpty)

            await stack.webhook.outage.set(0)
            _ = try stack.hitl(["dlq", "replay", "--all", "--yes", "--by", "ops@bank.example"])
            try await waitUntil("the replayed retry delivers") { await !stack.webhook.accepted.items.isEmpty }
            try await waitUntil("the delivery is recorded") {
                try await stack.count("SELECT count(*)::int FROM notifier.deliveries WHERE status = 'delivered' AND attempts = 1") == 1
            }
            // Replaying again, forced past the record of replays, changes nothing: the retry
            // request was already processed (the notifier counts it as a duplicate).
            let duplicates = try await stack.duplicates(of: .notificationRetryRequested, in: "notifier")
            _ = try stack.hitl(["dlq", "replay", "--all", "--yes", "--force", "--by", "ops@bank.example"])
            try await waitUntil("the notifier to count the replay as a duplicate") {
                try await stack.duplicates(of: .notificationRetryRequested, in: "notifier") > duplicates
            }
            #expect(await stack.webhook.accepted.items.filter { $0.workflowId == id }.count == 1)
        }
    }
}
