import Contracts
import ServiceKit

/// One of an approval's timers as the timeout service keeps it: the deadline, an
/// escalation level, or a numbered reminder. Its key and payload are written here and a
/// firing is read back here, once, whoever wrote the record (like the orchestrator's
/// `TaskTimer`).
struct ApprovalTimer: Equatable {
    enum Kind: Equatable {
        case deadline
        case escalation(level: Int)
        case reminder(number: Int)
    }

    var approvalID: ApprovalID
    var kind: Kind

    /// Unique per approval and timer: `deadline:<id>`, `escalate:<id>:<level>`, `remind:<id>:<number>`.
    var key: String {
        switch kind {
        case .deadline: "deadline:\(approvalID)"
        case .escalation(let level): "escalate:\(approvalID):\(level)"
        case .reminder(let number): "remind:\(approvalID):\(number)"
        }
    }

    var payload: JSONObject {
        var payload: JSONObject = ["approval_id": .string(approvalID.description)]
        switch kind {
        case .deadline: break
        case .escalation(let level): payload["level"] = .number(Double(level))
        case .reminder(let number): payload["number"] = .number(Double(number))
        }
        return payload
    }

    init(approvalID: ApprovalID, kind: Kind) {
        self.approvalID = approvalID
        self.kind = kind
    }

    /// The timer `fired` is. A firing no approval could have set (no approval id, an
    /// unknown key, a level or number that is not a small whole number) is refused, never
    /// trapped on: the record goes to the dead letters.
    init(_ fired: TimerFired) throws {
        guard case .string(let text)? = fired.payload["approval_id"], let id = ApprovalID(text) else {
            throw PermanentFailure("timer \(fired.key) carries no approval_id")
        }
        func count(_ name: String, in range: ClosedRange<Int>) throws -> Int {
            guard case .number(let value)? = fired.payload[name], let whole = Int(exactly: value), range.contains(whole) else {
                throw PermanentFailure("timer \(fired.key): \(name) is not a whole number in \(range)")
            }
            return whole
        }
        approvalID = id
        if fired.key.hasPrefix("deadline:") {
            kind = .deadline
        } else if fired.key.hasPrefix("escalate:") {
            kind = .escalation(level: try count("level", in: 0...1000))
        } else if fired.key.hasPrefix("remind:") {
            kind = .reminder(number: try count("number", in: 1...1_000_000))
        } else {
            throw PermanentFailure("unknown approval timer \(fired.key)")
        }
    }
}
