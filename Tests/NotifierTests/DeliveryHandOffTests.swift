import Contracts
import Foundation
import Testing

@testable import NotifierService

/// Deliveries handed to the worker in memory after their consuming transaction committed.
@Suite struct DeliveryHandOffTests {
    static func delivery(_ channel: String) -> DeliveryWorker.Claimed {
        DeliveryWorker.Claimed(
            id: UUID(), channel: channel, recipient: "", attempt: 1,
            notification: NotificationRequested(
                reason: "approval_requested", notificationId: "n-\(UUID())", workflowId: "wf-1", approvalId: nil, recipients: ["ann@bank.example"],
                subject: "s", text: "t", links: [:]))
    }

    @Test func handedDeliveriesAreTakenInOrderUpToTheLimitOnce() {
        let handOff = DeliveryHandOff(lease: .seconds(120))
        let handed = (0..<3).map { _ in Self.delivery("webhook") }
        handOff.hand(handed)
        #expect(handOff.take(2).map(\.id) == handed.prefix(2).map(\.id))
        #expect(handOff.take(5).map(\.id) == [handed[2].id])
        #expect(handOff.take(5).isEmpty)
    }

    @Test func aChannelWhoseBreakerIsOpenIsLeftToTheClaimAndSoIsAnOldHandOver() {
        let handOff = DeliveryHandOff(lease: .seconds(120))
        handOff.hand([Self.delivery("slack"), Self.delivery("webhook")])
        handOff.trip("slack")
        #expect(handOff.take(5).map(\.channel) == ["webhook"])
        handOff.close("slack")
        handOff.hand([Self.delivery("slack")])
        #expect(handOff.take(5).map(\.channel) == ["slack"])
        // A lease a quarter spent is not started on: the row waits for the claim.
        let short = DeliveryHandOff(lease: .zero)
        short.hand([Self.delivery("webhook")])
        #expect(short.take(5).isEmpty)
    }

    @Test func theStoredClaimIsDueAtLeastEveryInterval() {
        let handOff = DeliveryHandOff(lease: .seconds(120))
        #expect(handOff.claimDue(every: .zero))
        #expect(!handOff.claimDue(every: .seconds(60)))
    }

    /// Between the intervals, the stored deliveries are claimed at once when something made
    /// them due: a start (a crash's leftovers), a claim that came back full, a breaker closing.
    @Test func theStoredClaimIsDueAtOnceWhenStoredDeliveriesMayWait() {
        let handOff = DeliveryHandOff(lease: .seconds(120))
        #expect(handOff.claimDue(every: .seconds(60)))  // at start
        #expect(!handOff.claimDue(every: .seconds(60)))
        handOff.claimFilled()
        #expect(handOff.claimDue(every: .seconds(60)))
        #expect(!handOff.claimDue(every: .seconds(60)))
        handOff.close("webhook")  // was not tripped: nothing was left to the claim
        #expect(!handOff.claimDue(every: .seconds(60)))
        handOff.trip("webhook")
        handOff.close("webhook")
        #expect(handOff.claimDue(every: .seconds(60)))
        #expect(!handOff.claimDue(every: .seconds(60)))
    }
}
