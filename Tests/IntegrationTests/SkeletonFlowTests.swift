import Contracts
import Foundation
import ServiceKitTesting
import Testing

@testable import ApprovalService

/// The walking skeleton over the four real service processes.
@Suite(.serialized, .timeLimit(.minutes(10))) struct SkeletonFlowTests {
    @Test func approvedWorkflowCompletesAndTheApproverWasNotifiedBySignedWebhook() async throws {
        try await Stack.with { stack in
            let submitted = try await stack.submit(API.workflow(key: "approve-1"))
            #expect(submitted.status == 201)
            let id = try #require(submitted.string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            #expect(try await stack.status(id) == "waiting_approval")
            let shown = try await stack.workflow(id)
            guard case .array(let steps)? = shown["steps"] else { Issue.record(Comment(rawValue: "no steps in \(shown.text)")); return }
            #expect(steps.compactMap { $0.objectValue?["status"] } == [.string("waiting"), .string("pending")])

            try await waitUntil("the signed webhook") { await stack.webhook.accepted.count >= 1 }
            let notification = try #require(await stack.webhook.accepted.items.first)
            #expect(notification.approvalId == approvalID && notification.recipients == ["manager@bank.example"])
            #expect(notification.links["decision"]?.hasSuffix("/v1/approvals/\(approvalID)/decision") == true)
            #expect(await stack.webhook.refused.count == 0)
            // The approver's own links reach the (approver's) webhook, opened by the notifier;
            // on Kafka they travel sealed: no sign-in or decision link can be read off a topic.
            #expect(notification.links["web:manager@bank.example"]?.contains("/ui/sign-in/") == true)
            #expect(notification.links["approve:manager@bank.example"]?.contains("/ui/links/") == true)
            for topic in Topic.all {
                for event in try await stack.events(on: topic, settle: .milliseconds(200)) {
                    let raw = String(decoding: event.data, as: UTF8.self)
                    #expect(!raw.contains("/ui/sign-in/") && !raw.contains("/ui/links/") && !raw.contains("/v1/links/"), "\(topic): \(raw)")
                }
            }
            let onKafka = try await stack.events(on: .notifications).first { $0.type == .notificationRequested }
            #expect(try onKafka?.decode(NotificationRequested.self).sealedLinks?.hasPrefix("v1.") == true)

            let decided = try await stack.decide(approvalID, "approve")
            #expect(decided.status == 200)
            try await stack.waitForStatus(id, "completed")
            // The prompt is answered: the assignees are told who decided, how and when.
            try await waitUntil("the decided notification") {
                await stack.webhook.accepted.items.contains {
                    $0.reason == "approval_decided" && $0.text.hasPrefix("Approved by manager@bank.example via api at ")
                }
            }
            let final = try await stack.workflow(id)
            guard case .array(let finalSteps)? = final["steps"] else { return }
            #expect(finalSteps.compactMap { $0.objectValue?["status"] } == [.string("approved"), .string("completed")])

            let history = try await API.get("\(stack.orchestrator)/v1/workflows/\(id)/history")
            let events = history.items.compactMap { item -> String? in
                if case .string(let event)? = item["event"] { return event }
                return nil
            }
            #expect(events == ["submitted", "approval_requested", "approved", "step_completed", "completed"])
            // Every service is ready, counts in /metrics and serves the API documents.
            for service in ["orchestrator", "approval", "notifier", "timeout"] {
                let base = stack.local.url(of: service)
                #expect(try await API.get("\(base)/health/live").status == 200)
                #expect(try await API.get("\(base)/health/ready").string("status") == "ready")
                #expect(try await API.get("\(base)/openapi.yaml").text.hasPrefix("openapi: 3.1.0"))
                #expect(try await API.get("\(base)/asyncapi.yaml").text.hasPrefix("asyncapi: 3.0.0"))
                // Its pruning rules ran against its schema at start, without an error.
                let counters = try await API.get("\(base)/metrics").text
                #expect(counters.contains(#"hitl_prune_runs_total{result="ok"} 1"#) && !counters.contains(#"result="failed""#), "\(service)")
            }
            let metrics = try await API.get("\(stack.orchestrator)/metrics").text
            #expect(metrics.contains("hitl_events_processed_total"))
            #expect(metrics.contains(#"hb_requests{http_route="/v1/workflows""#))
        }
    }

    @Test func rejectedWorkflowEndsRejectedAndALaterDecisionGets409NamingTheFirst() async throws {
        try await Stack.with { stack in
            let id = try #require(try await stack.submit(API.workflow(key: "reject-1")).string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            #expect(try await stack.decide(approvalID, "reject", comment: "too large").status == 200)
            try await stack.waitForStatus(id, "rejected")
            let second = try await stack.decide(approvalID, "approve")
            #expect(second.status == 409)
            #expect(second.string("error") == "already_decided")
            #expect(second.string("decided_by") == "manager@bank.example")
            #expect(second.string("reason")?.contains("already rejected by manager@bank.example via api") == true)
            // Exactly one decision event was published for the approval.
            let decisions = try await stack.events(on: .approvalDecisions).filter { $0.type == .approvalDecided }
            #expect(Set(decisions.map(\.id)).count == 1)
            #expect(try await stack.status(id) == "rejected")
        }
    }

    @Test func approvalWithoutDecisionExpiresAndTheWorkflowTimesOut() async throws {
        try await Stack.with { stack in
            let id = try #require(try await stack.submit(API.workflow(key: "timeout-1", timeout: 2)).string("id"))
            let approvalID = try await stack.pendingApproval(of: id)
            try await stack.waitForStatus(id, "timed_out", timeout: .seconds(30))
            let approval = try await API.get("\(stack.approval)/v1/approvals/\(approvalID)")
            #expect(approval.string("status") == "expired")
            let late = try await stack.decide(approvalID, "approve")
            #expect(late.status == 409)
            #expect(late.string("error") == "approval_expired")
            #expect(try await stack.status(id) == "timed_out")
        }
    }

    @Test func resubmittingAnIdempotencyKeyReturnsTheFirstWorkflowOrAConflict() async throws {
        try await Stack.with { stack in
            let first = try await stack.submit(API.workflow(key: "same-key"))
            #expect(first.status == 201)
            let again = try await stack.submit(API.workflow(key: "same-key"))
            #expect(again.status == 200)
            #expect(again.string("id") == first.string("id"))
            let different = try await stack.submit(API.workflow(key: "same-key", amount: 7000))
            #expect(different.status == 409)
            #expect(different.string("error") == "idempotency_conflict")
            #expect(different.string("workflow_id") == first.string("id"))
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.workflows") == 1)
            // A resubmission is started before it is stored: nothing of that start remains.
            for table in ["workflow_history", "workflow_messages", "workflow_steps", "http_calls"] {
                let orphans = try await stack.count(
                    "SELECT count(*)::int FROM orchestrator.\(unescaped: table) t WHERE NOT EXISTS (SELECT FROM orchestrator.workflows w WHERE w.id = t.workflow_id)"
                )
                #expect(orphans == 0, "\(table)")
            }
            _ = try await stack.pendingApproval(of: try #require(first.string("id")))
            try await Task.sleep(for: .seconds(1))
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == 1)
        }
    }

    @Test func workflowSubmittedOnTheRequestsTopicRunsLikeOneSubmittedOverHTTP() async throws {
        try await Stack.with { stack in
            let submission = try WireCoding.decode(WorkflowSubmitted.self, from: Array(API.workflow(key: "kafka-1").utf8))
            try await stack.publish(submission, to: .workflowRequests, subject: "kafka-1")
            var id: String?
            try await waitUntil("the workflow from Kafka") {
                id = try await stack.sql("SELECT id::text FROM orchestrator.workflows WHERE idempotency_key = 'kafka-1'").first?.decode(String.self)
                return id != nil
            }
            let approvalID = try await stack.pendingApproval(of: try #require(id))
            #expect(try await stack.decide(approvalID, "approve").status == 200)
            try await stack.waitForStatus(try #require(id), "completed")
        }
    }
}
