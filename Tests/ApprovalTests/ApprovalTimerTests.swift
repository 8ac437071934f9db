import Contracts
import Foundation
import ServiceKit
import Testing

@testable import ApprovalService

/// An approval's timers as the timeout service keeps them, and firings read back whoever
/// wrote the record.
@Suite struct ApprovalTimerTests {
    static let id = ApprovalID()

    static func fired(key: String, payload: JSONObject) -> TimerFired {
        TimerFired(owner: .approval, key: key, workflowId: "wf-1", dueAt: Date(), firedAt: Date(), payload: payload)
    }

    @Test func eachTimerReadsBackFromItsFiring() throws {
        for kind in [ApprovalTimer.Kind.deadline, .escalation(level: 2), .reminder(number: 3)] {
            let timer = ApprovalTimer(approvalID: Self.id, kind: kind)
            #expect(try ApprovalTimer(Self.fired(key: timer.key, payload: timer.payload)) == timer)
        }
        #expect(ApprovalTimer(approvalID: Self.id, kind: .escalation(level: 2)).key == "escalate:\(Self.id):2")
    }

    @Test func aFiringNoApprovalCouldHaveSetIsRefusedNotTrappedOn() {
        let hostile: [(String, JSONObject)] = [
            ("escalate:\(Self.id):0", ["approval_id": .string(Self.id.description), "level": .number(1e300)]),
            ("escalate:\(Self.id):0", ["approval_id": .string(Self.id.description), "level": .number(-1)]),
            ("remind:\(Self.id):1", ["approval_id": .string(Self.id.description), "number": .number(1.5)]),
            ("remind:\(Self.id):1", ["approval_id": .string(Self.id.description)]),
            ("deadline:x", ["approval_id": .string("not-a-uuid")]),
            ("snooze:\(Self.id)", ["approval_id": .string(Self.id.description)]),
        ]
        for (key, payload) in hostile {
            #expect(throws: PermanentFailure.self, "\(key) \(payload)") { try ApprovalTimer(Self.fired(key: key, payload: payload)) }
        }
    }
}
