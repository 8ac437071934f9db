import Contracts

/// Rebuilds a workflow's state from its history alone: the proof that the history is
/// complete. Every entry the engine writes carries what it changed: `to_status`, the
/// step's new status (`detail.step_status`), the submitted input (`detail.input` of
/// `submitted`) and approvers' changes (`detail.changes`, field → from/to).
enum HistoryReplay {
    struct State: Equatable, Sendable {
        var status: WorkflowStatus
        var steps: [String: String]
        var input: JSONObject
    }

    /// The state after `entries` (in order), or nil when they do not start with a submission.
    static func rebuild(_ entries: [HistoryEntry]) -> State? {
        guard let first = entries.first, first.event == "submitted", case .object(let input)? = first.detail["input"] else { return nil }
        var state = State(status: .running, steps: [:], input: input)
        for entry in entries.dropFirst() {
            if let to = entry.toStatus.flatMap(WorkflowStatus.init(rawValue:)) { state.status = to }
            if let step = entry.step, case .string(let status)? = entry.detail["step_status"] { state.steps[step] = status }
            if case .object(let changes)? = entry.detail["changes"] {
                for (field, change) in changes {
                    if case .object(let fromTo) = change, let value = fromTo["to"] { state.input[field] = value }
                }
            }
        }
        return state
    }
}
