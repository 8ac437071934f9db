import Contracts
import Foundation
import ServiceKit
import Testing

@testable import OrchestratorService

/// What the engine reads back from its tables is one of the values it knows, or an error:
/// a corrupt row never reads as some default status.
@Suite struct StoredStateTests {
    @Test func anUnknownStoredStatusIsAnErrorNotADefault() throws {
        #expect(try StepStatus(stored: "retry_wait", column: "workflow_steps.status") == .retryWait)
        #expect(try WorkflowStatus(stored: "timed_out", column: "workflows.status") == .timedOut)
        #expect(throws: CorruptRow.self) { try StepStatus(stored: "done-ish", column: "workflow_steps.status") }
        #expect(throws: CorruptRow.self) { try WorkflowStatus(stored: "", column: "workflows.status") }
        #expect(throws: CorruptRow.self) { try CompensationStatus(stored: "completed", column: "workflow_steps.compensation_status") }
        #expect(StepStatus.allCases.filter(\.hasPassed) == [.completed, .skipped, .approved])
    }

    /// A held decision keeps the stored shape earlier versions wrote, and an unreadable one
    /// is refused.
    @Test func aHeldDecisionRoundTripsInItsStoredShape() throws {
        let deadline = try #require(WireCoding.parseTime("2026-12-01T10:00:00.000Z"))
        let expired = try HeldDecision(stored: ["expired": "2026-12-01T10:00:00.000Z"])
        guard case .expired(let read) = expired else { Issue.record("read \(expired)"); return }
        #expect(read == deadline)
        #expect(try HeldDecision.expired(deadline: deadline).stored == ["expired": .string(WireCoding.formatTime(deadline))])
        let decision = ApprovalDecided(
            approvalId: "a1", workflowId: "w1", step: "approve", decision: .approve, approver: "cfo@bank.example", comment: "ok",
            channel: "web", decidedAt: deadline, receipt: "a.b.c")
        guard case .decided(let back) = try HeldDecision(stored: try HeldDecision.decided(decision).stored) else { Issue.record("not a decision"); return }
        #expect(back == decision)
        #expect(throws: CorruptRow.self) { try HeldDecision(stored: ["maybe": true]) }
    }
}
