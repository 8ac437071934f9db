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
}
