import Contracts
import Foundation
import ServiceKit
import Testing

@testable import ApprovalService

/// The rule a vote meets (`ApprovalView.take`), on plain values: the same for the API, the
/// web page, Slack and signed links, before anything is written.
@Suite struct DecisionRuleTests {
    static func approval(quorum: ApprovalPolicy.Quorum? = nil, required: Int? = nil, deadline: Date = Date().addingTimeInterval(3600)) throws -> ApprovalView {
        ApprovalView(
            id: UUID().uuidString.lowercased(), workflowId: "wf-1", workflowType: "payment", step: "approve", requester: "agent@bank.example",
            approvers: ["ann@bank.example", "bob@bank.example"], context: ["amount": 6000], status: .pending, deadline: deadline, createdAt: Date(),
            policy: try AppliedPolicy(
                policy: ApprovalPolicy(quorum: quorum, required: required), approvers: ["ann@bank.example", "bob@bank.example"], groups: [:],
                requester: "agent@bank.example"),
            votes: [])
    }

    static func vote(_ decision: Decision, by approver: String = "ann@bank.example") throws -> DecisionRequest {
        try DecisionRequest(decision: decision, approver: approver, comment: "ok", channel: "web").checked()
    }

    @Test func withQuorumAnyTheFirstVoteDecides() throws {
        let taken = try Self.approval().take(Self.vote(.approve), now: Date())
        #expect(taken.outcome == .approve && taken.vote.approver == "ann@bank.example" && taken.vote.channel == "web")
    }

    @Test func twoOfTwoWaitsForTheSecondVoteAndRefusesTheSameVoterTwice() throws {
        var approval = try Self.approval(quorum: .nOfM, required: 2)
        let first = try approval.take(Self.vote(.approve), now: Date())
        #expect(first.outcome == nil)
        approval.votes.append(first.vote)
        #expect(throws: DecisionRefusal.alreadyVoted("ann@bank.example")) { try approval.take(Self.vote(.approve), now: Date()) }
        #expect(try approval.take(Self.vote(.approve, by: "bob@bank.example"), now: Date()).outcome == .approve)
    }

    @Test func aClosedALateOrAStrangersVoteIsRefusedWithTheReason() throws {
        #expect(throws: DecisionRefusal.notAnApprover("eve@bank.example")) {
            try Self.approval().take(Self.vote(.approve, by: "eve@bank.example"), now: Date())
        }
        let deadline = Date()
        #expect(throws: DecisionRefusal.expired(deadline: deadline)) {
            try Self.approval(deadline: deadline).take(Self.vote(.approve), now: deadline)
        }
        var closed = try Self.approval()
        closed.status = .rejected
        closed.decidedBy = "bob@bank.example"
        #expect {
            try closed.take(Self.vote(.approve), now: Date())
        } throws: {
            "\($0)".contains("bob@bank.example")
        }
    }
}
