import Contracts
import Forms
import Foundation

/// The workflow condition language (Foundation has a type of the same name).
typealias Expression = Contracts.Expression

/// Checks a submission before anything is stored, answering with the field or step at fault.
enum DefinitionValidation {
    static let taskTypes: Set<String> = ["noop", "agent", "http"]
    static let httpMethods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    static let maxSteps = 100
    static let maxTimeoutSeconds = 90 * 24 * 3600
    static let maxAttempts = 20
    static let maxRounds = 20

    /// The reason `submission` is invalid, or nil when it is valid. Its steps must already
    /// be resolved (from the request or its template).
    static func problem(in submission: WorkflowSubmitted) -> String? {
        if submission.idempotencyKey.isEmpty || submission.idempotencyKey.count > 200 {
            return "idempotency_key must be 1 to 200 characters"
        }
        if submission.type.isEmpty || submission.type.count > 200 { return "type must be 1 to 200 characters" }
        if submission.requester.isEmpty || submission.requester.count > 200 { return "requester must be 1 to 200 characters" }
        if let url = submission.callbackUrl, !isHTTPURL(url) { return "callback_url must be an absolute http or https URL" }
        // The input is what approvers are shown: its keys become names on their pages.
        if let problem = FormLimits.problem(inInput: submission.input) { return problem }
        return problem(in: submission.steps)
    }

    /// The reason a list of steps is not a valid definition, or nil.
    static func problem(in steps: [StepDefinition]) -> String? {
        if steps.isEmpty { return "steps must list at least one step (or name a template)" }
        if steps.count > maxSteps { return "steps may list at most \(maxSteps) steps" }
        var positions: [String: Int] = [:]
        for (index, step) in steps.enumerated() {
            let at = "steps[\(index)] (\(step.name.isEmpty ? "unnamed" : step.name))"
            if step.name.isEmpty || step.name.count > 100 { return "\(at): name must be 1 to 100 characters" }
            if positions[step.name] != nil { return "\(at): the name \(step.name) is used twice" }
            positions[step.name] = index
            if let problem = problem(in: step, at: index, earlier: positions, steps: steps) { return "\(at): \(problem)" }
        }
        for (index, step) in steps.enumerated() {
            if let next = step.next, positions[next] == nil {
                return "steps[\(index)] (\(step.name)): next names \(next), which is not a step"
            }
        }
        if let cycle = cycle(in: steps, positions: positions) { return "steps[\(cycle)] (\(steps[cycle].name)): next leads round in a cycle" }
        return nil
    }

    private static func problem(in step: StepDefinition, at index: Int, earlier: [String: Int], steps: [StepDefinition]) -> String? {
        if let when = step.when, let problem = expressionProblem(when) { return "when \(problem)" }
        switch step.kind {
        case .approval:
            guard let approval = step.approval else { return "an approval step needs an approval object" }
            if step.task != nil || step.retry != nil || step.compensate != nil {
                return "an approval step takes no task, retry or compensate"
            }
            if step.timeoutSeconds != nil { return "an approval's deadline is approval.timeout_seconds" }
            if approval.approvers.isEmpty { return "approval.approvers must name at least one approver" }
            if approval.approvers.contains(where: { $0.isEmpty || $0.count > 200 }) { return "approval.approvers has an empty or overlong name" }
            if let timeout = approval.timeoutSeconds, !(1...maxTimeoutSeconds).contains(timeout) {
                return "approval.timeout_seconds must be 1 to \(maxTimeoutSeconds)"
            }
            if let rule = approval.autoApproveWhen, let problem = expressionProblem(rule) { return "approval.auto_approve_when \(problem)" }
            if let rounds = approval.maxRounds, !(1...maxRounds).contains(rounds) { return "approval.max_rounds must be 1 to \(maxRounds)" }
            if let policy = approval.policy, let problem = problem(in: policy, approvers: approval.approvers) { return "approval.policy.\(problem)" }
            if let form = approval.form, let problem = FormLimits.problem(in: form, outcomes: (approval.policy ?? ApprovalPolicy()).allowedOutcomes) {
                return "approval.form.\(problem)"
            }
            if let revise = approval.reviseStep {
                guard let target = earlier[revise], target < index, steps[target].kind == .task else {
                    return "approval.revise_step must name an earlier task step"
                }
            }
        case .task:
            guard let task = step.task else { return "a task step needs a task object" }
            if step.approval != nil { return "a task step takes no approval object" }
            if let problem = problem(in: task) { return "task.\(problem)" }
            if let compensate = step.compensate, let problem = problem(in: compensate) { return "compensate.\(problem)" }
            if let timeout = step.timeoutSeconds, !(1...maxTimeoutSeconds).contains(timeout) {
                return "timeout_seconds must be 1 to \(maxTimeoutSeconds)"
            }
            if let retry = step.retry {
                if !(1...maxAttempts).contains(retry.maxAttempts) { return "retry.max_attempts must be 1 to \(maxAttempts)" }
                if let backoff = retry.backoffSeconds, !(0...3600).contains(backoff) { return "retry.backoff_seconds must be 0 to 3600" }
                if let cap = retry.maxBackoffSeconds, !(0...86_400).contains(cap) || cap < (retry.backoffSeconds ?? 0) {
                    return "retry.max_backoff_seconds must be 0 to 86400 and at least backoff_seconds"
                }
            }
        }
        if step.next == step.name { return "next names the step itself" }
        return nil
    }

    private static func problem(in policy: ApprovalPolicy, approvers: [String]) -> String? {
        let quorum = policy.quorum ?? .any
        let usesGroups = approvers.contains { $0.hasPrefix("group:") }
        switch quorum {
        case .nOfM:
            guard let required = policy.required, required >= 1 else { return "required must be 1 or more with quorum n_of_m" }
            if !usesGroups, required > approvers.count { return "required (\(required)) is more than the \(approvers.count) approvers" }
        case .any, .all:
            if policy.required != nil { return "required belongs to quorum n_of_m" }
        }
        if let veto = policy.veto, let stranger = veto.first(where: { !approvers.contains($0) }) {
            return "veto names \(stranger), who is not an approver"
        }
        for (index, level) in (policy.escalation ?? []).enumerated() {
            if level.approvers.isEmpty { return "escalation[\(index)].approvers must name at least one approver" }
            if !(1...maxTimeoutSeconds).contains(level.afterSeconds) { return "escalation[\(index)].after_seconds must be 1 to \(maxTimeoutSeconds)" }
            if index > 0, level.afterSeconds <= policy.escalation![index - 1].afterSeconds {
                return "escalation levels must come later one after another"
            }
        }
        if let reminder = policy.reminderSeconds, !(1...maxTimeoutSeconds).contains(reminder) {
            return "reminder_seconds must be 1 to \(maxTimeoutSeconds)"
        }
        if policy.safeDefault == .fallback { return "safe_default must be expire, reject or approve" }
        if policy.safeDefault != nil, policy.onExpiry != .fallback { return "safe_default goes with on_expiry fallback" }
        if let outcomes = policy.outcomes {
            if outcomes.isEmpty { return "outcomes must allow at least one outcome" }
            if quorum != .any, outcomes.contains(where: { $0 == .approveWithChanges || $0 == .requestChanges }) {
                return "outcomes approve_with_changes and request_changes need quorum any"
            }
        }
        return nil
    }

    /// How deeply an http task's body may nest: a placeholder brings in a value as deep as
    /// inbound JSON (`WireCoding.inboundDepth`), and the queued call must stay within what
    /// every reader accepts (`WireCoding.maximumDepth`), or it could never be taken.
    static let maximumBodyDepth = 32

    /// How many arrays and objects `value` nests, itself included.
    private static func depth(of value: JSONValue) -> Int {
        switch value {
        case .array(let items): 1 + (items.map(depth(of:)).max() ?? 0)
        case .object(let members): 1 + (members.values.map(depth(of:)).max() ?? 0)
        default: 0
        }
    }

    private static func problem(in task: StepDefinition.Task) -> String? {
        guard taskTypes.contains(task.type) else {
            return "type \(task.type) is unknown (known: \(taskTypes.sorted().joined(separator: ", ")))"
        }
        if task.type == "http" {
            guard let url = task.url, isHTTPURL(url) else { return "url must be an absolute http or https URL" }
            // What a placeholder writes is percent-encoded, and it may not choose the scheme or the host.
            if let open = url.range(of: "{{"),
                url[..<open.lowerBound].range(of: #"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#{}]+[/?#]"#, options: .regularExpression) == nil
            {
                return "url may have {{placeholders}} only after the host, in the path, query or fragment"
            }
            if let method = task.method, !httpMethods.contains(method) {
                return "method must be one of \(httpMethods.sorted().joined(separator: ", "))"
            }
            if (task.headers?.count ?? 0) > 50 { return "headers may list at most 50 headers" }
            if let body = task.body, depth(of: body) > maximumBodyDepth {
                return "body may nest at most \(maximumBodyDepth) levels: the values its placeholders bring in nest further"
            }
            if let reserved = task.headers?.keys.sorted().first(where: HTTPTaskWorker.isReservedHeader) {
                return "headers may not set \(reserved): the call's framing, host and signature are the orchestrator's"
            }
        } else if task.url != nil || task.method != nil || task.headers != nil || task.body != nil {
            return "url, method, headers and body belong to http tasks only"
        }
        return nil
    }

    private static func expressionProblem(_ source: String) -> String? {
        do {
            _ = try Expression(source)
            return nil
        } catch {
            return "is not a valid expression: \(error)"
        }
    }

    static func isHTTPURL(_ text: String) -> Bool {
        guard text.count <= 2000, let url = URL(string: text), let scheme = url.scheme?.lowercased(), url.host != nil else { return false }
        return scheme == "http" || scheme == "https"
    }

    /// The position of a step from which the successor chain comes back round, or nil.
    private static func cycle(in steps: [StepDefinition], positions: [String: Int]) -> Int? {
        for start in steps.indices {
            var seen: Set<Int> = [start]
            var position = start
            while let next = successor(of: position, next: steps[position].next, count: steps.count, position: { positions[$0] }) {
                if !seen.insert(next).inserted { return start }
                position = next
            }
        }
        return nil
    }

    /// The step that runs after `position` completes, or nil at the end.
    static func successor(of position: Int, next: String?, count: Int, position lookup: (String) -> Int?) -> Int? {
        if let next { return lookup(next) }
        return position + 1 < count ? position + 1 : nil
    }
}
