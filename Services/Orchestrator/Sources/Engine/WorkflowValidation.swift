import Contracts

/// Checks a submission before anything is stored, answering with the field or step at fault.
enum WorkflowValidation {
    /// Task types the engine can run today.
    static let taskTypes: Set<String> = ["noop"]
    static let maxSteps = 100
    static let maxTimeoutSeconds = 90 * 24 * 3600

    /// The reason `submission` is invalid, or nil when it is valid.
    static func problem(in submission: WorkflowSubmitted) -> String? {
        if submission.idempotencyKey.isEmpty || submission.idempotencyKey.count > 200 {
            return "idempotency_key must be 1 to 200 characters"
        }
        if submission.type.isEmpty || submission.type.count > 200 { return "type must be 1 to 200 characters" }
        if submission.requester.isEmpty || submission.requester.count > 200 { return "requester must be 1 to 200 characters" }
        if submission.steps.isEmpty { return "steps must list at least one step" }
        if submission.steps.count > maxSteps { return "steps may list at most \(maxSteps) steps" }
        var names = Set<String>()
        for (index, step) in submission.steps.enumerated() {
            let at = "steps[\(index)] (\(step.name.isEmpty ? "unnamed" : step.name))"
            if step.name.isEmpty || step.name.count > 100 { return "\(at): name must be 1 to 100 characters" }
            if !names.insert(step.name).inserted { return "\(at): the name \(step.name) is used twice" }
            switch step.kind {
            case .approval:
                guard let approval = step.approval else { return "\(at): an approval step needs an approval object" }
                if step.task != nil { return "\(at): an approval step takes no task object" }
                if approval.approvers.isEmpty { return "\(at): approval.approvers must name at least one approver" }
                if approval.approvers.contains(where: \.isEmpty) { return "\(at): approval.approvers has an empty name" }
                if let timeout = approval.timeoutSeconds, !(1...maxTimeoutSeconds).contains(timeout) {
                    return "\(at): approval.timeout_seconds must be 1 to \(maxTimeoutSeconds)"
                }
            case .task:
                guard let task = step.task else { return "\(at): a task step needs a task object" }
                if step.approval != nil { return "\(at): a task step takes no approval object" }
                if !taskTypes.contains(task.type) {
                    return "\(at): task.type \(task.type) is unknown (known: \(taskTypes.sorted().joined(separator: ", ")))"
                }
            }
        }
        return nil
    }
}
