import Contracts
import Foundation
import Testing

@testable import ApprovalService

/// One set of rules for a decision, whichever channel brings it (API, web page, Slack,
/// signed link), and one wording of each refusal per edge.
@Suite struct DecisionRequestTests {
    func request(_ decision: Decision, comment: String? = nil, changes: JSONObject? = nil, approver: String = "cfo@bank.example") -> DecisionRequest {
        DecisionRequest(decision: decision, approver: approver, comment: comment, changes: changes, channel: "web")
    }

    @Test func theRulesThatNeedNoApprovalAreTheSameForEveryChannel() throws {
        #expect(try request(.approve, comment: "  ").checked().comment == nil)
        #expect(try request(.reject, comment: " no \n").checked().comment == "no")
        #expect(throws: DecisionRefusal.invalid("request_changes needs a comment saying what to change")) {
            try request(.requestChanges, comment: " ").checked()
        }
        #expect(throws: DecisionRefusal.self) { try request(.approveWithChanges).checked() }
        #expect(throws: DecisionRefusal.self) { try request(.approveWithChanges, changes: [:]).checked() }
        #expect(try request(.approveWithChanges, changes: ["amount": 10]).checked().changes == ["amount": 10])
        #expect(throws: DecisionRefusal.self) { try request(.approve, changes: ["amount": 10]).checked() }
        #expect(throws: DecisionRefusal.self) { try request(.approve, comment: String(repeating: "x", count: 4001)).checked() }
        #expect(throws: DecisionRefusal.self) { try request(.approve, approver: " ").checked() }
    }

    @Test func eachRefusalHasItsAPIWording() {
        let decidedAt = Date(timeIntervalSince1970: 1_800_000_000)
        let closed = DecisionRefusal.closed(.approved, decidedBy: "cfo@bank.example", channel: "slack", at: decidedAt, deadline: decidedAt)
        #expect(closed.apiError.code == "already_decided" && closed.apiError.status == .conflict && closed.reason.contains("cfo@bank.example via slack"))
        #expect(closed.isSettled)
        #expect(DecisionRefusal.closed(.cancelled, decidedBy: nil, channel: nil, at: nil, deadline: decidedAt).apiError.code == "approval_cancelled")
        #expect(DecisionRefusal.expired(deadline: decidedAt).apiError.code == "approval_expired")
        #expect(DecisionRefusal.ownRequest("agent").apiError.status == .forbidden)
        #expect(DecisionRefusal.outcomeNotAllowed(.reject, allowed: [.approve]).apiError.status == .unprocessableContent)
        #expect(!DecisionRefusal.invalid("x").isSettled && DecisionRefusal.invalid("x").apiError.status == .badRequest)
    }
}
