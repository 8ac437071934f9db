import Contracts
import ServiceKit

/// Where an approval stands, as stored (`approvals.status`) and shown. Only `pending`
/// takes decisions; every other status is final.
enum ApprovalStatus: String, Codable, Sendable, CaseIterable {
    case pending, approved, rejected
    case changesRequested = "changes_requested"
    case expired, cancelled

    /// The status a decision leaves the approval in.
    init(after decision: Decision) {
        switch decision {
        case .approve, .approveWithChanges: self = .approved
        case .reject: self = .rejected
        case .requestChanges: self = .changesRequested
        }
    }
}
