import Contracts
import DevStack
import Foundation
import ServiceKitTesting
import Testing

/// A poison event lands on the dead-letter topic; once the cause is fixed, a replay gets it
/// processed exactly once, and replaying it again changes nothing.
@Suite(.serialized, .timeLimit(.minutes(10))) struct DeadLetterReplayTests {
    @Test func poisonEventIsDeadLetteredThenReplayedExactlyOnce() async throws {
        try await Stack.with { stack in
            // The cause: ops took the approval service's right to create approvals.
            _ = try await stack.sql("REVOKE INSERT ON approval.approvals FROM hitl_approval")
            let id = try #require(try await stack.submit(API.workflow(key: "poison-1")).string("id"))

            var deadLetterID: String?
            try await waitUntil("the dead letter in the index", timeout: .seconds(60)) {
                let listed = try await API.get("\(stack.orchestrator)/v1/dead-letters?service=approval")
                if case .object(let record)? = listed.items.first?["dead_letter"], case .string(let dlq)? = record["dead_letter_id"] {
                    deadLetterID = dlq
                }
                return deadLetterID != nil
            }
            let letterID = try #require(deadLetterID)
            let shown = try await API.get("\(stack.orchestrator)/v1/dead-letters/\(letterID)")
            guard case .object(let record)? = shown["dead_letter"] else { Issue.record(Comment(rawValue: shown.text)); return }
            #expect(record["original_topic"] == .string(Topic.approvalRequests.rawValue))
            #expect(record["original_event_type"] == .string(EventType.approvalRequested.rawValue))
            #expect(record["attempts"] == .number(5))
            if case .string(let error)? = record["error"] { #expect(error.contains("permission denied")) }
            // The filters narrow the list; a filter that matches nothing lists nothing.
            let listed = try stack.hitl(["dlq", "list", "--event-type", EventType.approvalRequested.rawValue, "--error", "permission"])
            #expect(listed.contains(letterID))
            #expect(try stack.hitl(["dlq", "list", "--service", "notifier"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            // A dry run replays nothing.
            #expect(try stack.hitl(["dlq", "replay", letterID, "--dry-run", "--by", "ops@bank.example"]).contains(#""dry_run":true"#))
            // A replay writes its record and its outbox row before it answers: none means none.
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.dead_letter_replays") == 0)
            #expect(try await stack.count("SELECT count(*)::int FROM orchestrator.outbox WHERE topic = 'hitl.approval.requests'") == 0)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == 0)

            // The fix, then the replay.
            _ = try await stack.sql("GRANT INSERT ON approval.approvals TO hitl_approval")
            _ = try stack.hitl(["dlq", "replay", letterID, "--by", "ops@bank.example"])
            let approvalID = try await stack.pendingApproval(of: id)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == 1)
            let replays = try await API.get("\(stack.orchestrator)/v1/dead-letters/\(letterID)")
            guard case .array(let history)? = replays["replays"] else { Issue.record(Comment(rawValue: replays.text)); return }
            #expect(history.count == 1)
            #expect(history.first?.objectValue?["replayed_by"] == .string("ops@bank.example"))

            // Replayed before: not again, unless forced; --all only counts without --yes.
            let again = try stack.hitl(["dlq", "replay", letterID, "--by", "ops@bank.example"])
            #expect(again.contains(#""replayed":[]"#) && again.contains(letterID), "\(again)")
            do {
                _ = try stack.hitl(["dlq", "replay", "--all", "--by", "ops@bank.example"])
                Issue.record("--all replayed without --yes")
            } catch let failure as Shell.Failure {
                #expect(failure.output.contains("--all would replay 0 dead letters (1 more were replayed before"), "\(failure.output)")
            }
            // Replaying the processed event again, forced, changes nothing: the inbox knows it.
            // Waited for as what it is: the approval service counting the record as a duplicate.
            let duplicates = try await stack.duplicates(of: .approvalRequested, in: "approval")
            _ = try stack.hitl(["dlq", "replay", "--all", "--yes", "--force", "--by", "ops@bank.example"])
            try await waitUntil("the approval service to count the replay as a duplicate") {
                try await stack.duplicates(of: .approvalRequested, in: "approval") > duplicates
            }
            #expect(try await stack.count("SELECT count(*)::int FROM approval.approvals") == 1)
            #expect(try await stack.count("SELECT count(*)::int FROM approval.outbox") == 0)
            let notifications = try await stack.events(on: .notifications).filter { $0.type == .notificationRequested }
            #expect(notifications.count == 1)

            #expect(try await stack.decide(approvalID, "approve").status == 200)
            try await stack.waitForStatus(id, "completed")

            // A dead letter naming a topic outside the contracts is never replayed there.
            let forged = DeadLettered(
                deadLetterId: UUID().uuidString.lowercased(), service: "forger", originalTopic: "hitl.elsewhere", partition: 0, offset: 0,
                key: "k", headers: [], valueBase64: Data("{}".utf8).base64EncodedString(), eventId: nil, originalEventType: nil,
                error: "made up", attempts: 1, firstAttemptAt: Date(), deadLetteredAt: Date())
            try await stack.publish(forged, to: .deadLetter, subject: "k")
            try await waitUntil("the forged dead letter indexed") {
                try await API.get("\(stack.orchestrator)/v1/dead-letters/\(forged.deadLetterId)").status == 200
            }
            let refused = try await API.post(
                "\(stack.orchestrator)/v1/dead-letters/replay", #"{"ids":["\#(forged.deadLetterId)"],"replayed_by":"ops"}"#)
            #expect(refused.status == 422 && refused.string("error") == "not_a_contract_topic", "\(refused.text)")
        }
    }
}
