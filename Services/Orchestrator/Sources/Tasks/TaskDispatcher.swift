import Contracts
import Foundation
import ServiceKit

/// Starts task attempts (and compensations) by type, and keeps their retry and timeout
/// timers with the timeout service.
///
/// - `noop` completes at once, inside the transaction.
/// - `agent` publishes a `TaskRequested` on `hitl.tasks`; the answer comes back as a
///   `TaskResult`. With `timeout_seconds`, a timer counts a silent attempt as failed.
/// - `http` queues the call with the session's save; `HTTPTaskWorker` makes it after the commit.
struct TaskDispatcher: Sendable {
    /// Each attempt's credential, handed to the worker that does it.
    let tokens: TaskTokens

    /// Starts the next attempt; `receipt` is the decision receipt of the approval the step
    /// acts on, handed to the worker (`TaskRequested.receipt`, `HITL-Approval-Receipt`).
    func start(_ session: WorkflowSession, at position: Int, compensation: Bool, receipt: String? = nil) async throws {
        let step = session.steps[position]
        let track = Track(compensation: compensation)
        guard let task = step.task(on: track) else {
            throw PermanentFailure("step \(step.name) has no task to run")
        }
        session.steps[position][track].attempt += 1
        session.steps[position][track].tries += 1
        let attempt = session.steps[position][track].attempt
        var detail: JSONObject = ["attempt": .number(Double(attempt)), "task_type": .string(task.type)]
        if task.type == "noop" {
            if compensation {
                session.steps[position].compensationStatus = .compensated
                try await session.change("compensated", actor: "orchestrator", step: position, detail: detail)
            } else {
                session.steps[position].output = [:]
                try await session.change("step_completed", actor: "orchestrator", step: position, stepStatus: StepStatus.completed, detail: detail)
            }
            return
        }
        if compensation {
            session.steps[position].compensationStatus = .running
            detail["compensation"] = true
            try await session.change("compensation_attempt_started", actor: "orchestrator", step: position, detail: detail)
        } else {
            try await session.change("attempt_started", actor: "orchestrator", step: position, stepStatus: StepStatus.running, status: .running, detail: detail)
        }
        let timeout = step.definition.timeoutSeconds
        let token = tokens.token(workflowID: session.id, step: step.name, attempt: attempt, compensation: compensation)
        switch task.type {
        case "agent":
            let deadline = timeout.map { Date().addingTimeInterval(TimeInterval($0)) }
            try await session.publish(
                TaskRequested(
                    workflowId: session.id, workflowType: session.workflow.type, step: step.name, attempt: attempt, agent: task.agent,
                    compensation: compensation, input: session.workflow.input, outputs: session.outputs,
                    feedback: compensation ? nil : step.feedback, deadline: deadline, token: token, receipt: receipt),
                to: .tasks)
            if let deadline {
                try await schedule(TaskTimer(kind: .timeout, step: step.name, attempt: attempt, compensation: compensation), session: session, due: deadline)
            }
        case "http":
            let request = HTTPTaskRequest(
                url: render(task.url ?? "", scope: session.scope, encode: Self.percentEncoded), method: task.method ?? "POST",
                headers: task.headers ?? [:], body: task.body.map { render($0, scope: session.scope) },
                timeoutSeconds: timeout ?? 30, taskToken: token, approvalReceipt: receipt)
            session.queue(WorkflowChanges.HTTPCall(kind: .task, step: step.name, attempt: attempt, compensation: compensation, request: request))
        default:
            throw PermanentFailure("task type \(task.type) is unknown")
        }
    }

    func scheduleRetry(_ session: WorkflowSession, at position: Int, compensation: Bool, due: Date) async throws {
        let step = session.steps[position]
        let attempt = step[Track(compensation: compensation)].attempt
        try await schedule(TaskTimer(kind: .retry, step: step.name, attempt: attempt, compensation: compensation), session: session, due: due)
    }

    /// Cancels the timeout of the attempt in flight, if it has one.
    func cancelTimeout(_ session: WorkflowSession, at position: Int, compensation: Bool) async throws {
        let step = session.steps[position]
        guard step.definition.timeoutSeconds != nil else { return }
        let track = Track(compensation: compensation)
        guard step.task(on: track)?.type == "agent" else { return }
        let timer = TaskTimer(kind: .timeout, step: step.name, attempt: step[track].attempt, compensation: compensation)
        try await session.publish(TimerCancelled(owner: .orchestrator, key: timer.key(workflowId: session.id), workflowId: session.id), to: .timerRequests)
    }

    /// Gives up on the attempt in flight: its timers are cancelled and a queued http call
    /// is dropped; an answer that still comes is stale.
    func abandon(_ session: WorkflowSession, at position: Int, compensation: Bool) async throws {
        let step = session.steps[position]
        try await cancelTimeout(session, at: position, compensation: compensation)
        let retry = TaskTimer(kind: .retry, step: step.name, attempt: step[Track(compensation: compensation)].attempt, compensation: compensation)
        try await session.publish(TimerCancelled(owner: .orchestrator, key: retry.key(workflowId: session.id), workflowId: session.id), to: .timerRequests)
        session.dropQueuedCalls(of: step.name)
    }

    /// Puts a failed compensation on the dead-letter path for ops: the record is a resume
    /// request, so replaying it (`hitl dlq replay`) retries the compensation.
    func reportCompensationFailure(_ session: WorkflowSession, at position: Int, error: String) async throws {
        let step = session.steps[position]
        let resume = try session.envelope(
            WorkflowControlRequested(
                workflowId: session.id, action: .resume, requestedBy: "ops:dead-letter-replay", reason: "retry the compensation of \(step.name)"))
        let record = DeadLettered.replayable(
            resume, to: .workflowRequests, service: "orchestrator",
            error: "compensation of step \(step.name) failed after \(step.compensation.tries) attempts: \(error)",
            attempts: step.compensation.tries, firstAttemptAt: Date())
        try await session.publish(record, to: .deadLetter)
    }

    private func schedule(_ timer: TaskTimer, session: WorkflowSession, due: Date) async throws {
        try await session.publish(
            TimerScheduled(owner: .orchestrator, key: timer.key(workflowId: session.id), workflowId: session.id, dueAt: due, payload: timer.payload),
            to: .timerRequests)
    }

    // MARK: - Templates

    /// Replaces `{{expression}}` in strings: a string that is one placeholder becomes the
    /// expression's value (any JSON); placeholders inside text are written into it.
    func render(_ value: JSONValue, scope: JSONObject) -> JSONValue {
        switch value {
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("{{"), trimmed.hasSuffix("}}"), trimmed.components(separatedBy: "{{").count == 2 {
                let source = String(trimmed.dropFirst(2).dropLast(2))
                return (try? Expression(source))?.value(in: scope) ?? .null
            }
            return .string(render(text, scope: scope))
        case .array(let items): return .array(items.map { render($0, scope: scope) })
        case .object(let members): return .object(members.mapValues { render($0, scope: scope) })
        default: return value
        }
    }

    /// A value written into a URL: every byte but letters, digits, `-`, `_` and `~`
    /// percent-encoded, so it cannot add a path segment, a query or a fragment.
    static func percentEncoded(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: urlSafe) ?? ""
    }

    private static let urlSafe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~")

    func render(_ text: String, scope: JSONObject, encode: (String) -> String = { $0 }) -> String {
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            result += rest[..<open.lowerBound]
            let source = String(rest[open.upperBound..<close.lowerBound])
            switch (try? Expression(source))?.value(in: scope) ?? .null {
            case .string(let value): result += encode(value)
            case .null: break
            case let other: result += encode((try? String(decoding: WireCoding.encode(other), as: UTF8.self)) ?? "")
            }
            rest = rest[close.upperBound...]
        }
        return result + rest
    }
}

/// An orchestrator timer: the retry of an attempt, or the deadline of one in flight.
struct TaskTimer: Sendable, Equatable {
    enum Kind: String, Sendable { case retry, timeout }
    var kind: Kind
    var step: String
    var attempt: Int
    var compensation: Bool

    func key(workflowId: String) -> String {
        "task:\(workflowId):\(step):\(attempt):\(kind.rawValue)\(compensation ? ":compensation" : "")"
    }

    var payload: JSONObject {
        ["kind": .string(kind.rawValue), "step": .string(step), "attempt": .number(Double(attempt)), "compensation": .bool(compensation)]
    }

    init(kind: Kind, step: String, attempt: Int, compensation: Bool) {
        self.kind = kind
        self.step = step
        self.attempt = attempt
        self.compensation = compensation
    }

    init?(payload: JSONObject) {
        guard case .string(let kindText)? = payload["kind"], let kind = Kind(rawValue: kindText),
            case .string(let step)? = payload["step"], case .number(let attempt)? = payload["attempt"]
        else { return nil }
        self.init(kind: kind, step: step, attempt: Int(attempt), compensation: payload["compensation"] == .bool(true))
    }
}

/// How often a task is tried and how long to wait between tries: defaults of 3 attempts,
/// 1 s doubling up to 30 s, with full jitter on the doubled part.
struct RetryPolicy: Sendable {
    var maxAttempts: Int
    var backoff: Double
    var cap: Double

    init(_ retry: StepDefinition.Retry?) {
        maxAttempts = retry?.maxAttempts ?? 3
        backoff = retry?.backoffSeconds ?? 1
        cap = retry?.maxBackoffSeconds ?? max(30, backoff)
    }

    /// The wait after the `tries`-th failed try.
    func delay(afterTry tries: Int) -> TimeInterval {
        let ceiling = min(cap, backoff * pow(2, Double(max(0, tries - 1))))
        return ceiling / 2 + Double.random(in: 0...(ceiling / 2))
    }
}

/// An http task call as queued for the worker, rendered from the workflow's input.
struct HTTPTaskRequest: Codable, Sendable {
    var url: String
    var method: String
    var headers: [String: String]
    var body: JSONValue?
    var timeoutSeconds: Int
    /// The attempt's token, sent as `HITL-Task-Token` (absent on lifecycle callbacks).
    var taskToken: String?
    /// The receipt of the approval the call acts on, sent as `HITL-Approval-Receipt`.
    var approvalReceipt: String?
}
