import Foundation

/// The orchestrator asks an agent to do a task (`hitl.tasks`). The answer must name the
/// same workflow, step and attempt; any other answer is stale and ignored.
public struct TaskRequested: EventPayload {
    public static let acceptedTypes: Set<EventType> = [.taskRequested]
    public var eventType: EventType { .taskRequested }

    public var workflowId: String
    public var workflowType: String
    public var step: String
    public var attempt: Int
    /// The agent that should do it (`task.agent`), for workers that filter.
    public var agent: String?
    /// True when the task undoes the step (a rollback), not does it.
    public var compensation: Bool
    /// The workflow's input as it stands (with approvers' changes merged in).
    public var input: JSONObject
    /// The outputs of the steps that completed so far, by step name.
    public var outputs: JSONObject
    /// What approvers asked to change, when a `request_changes` sent the work back here.
    public var feedback: String?
    /// When the attempt counts as failed if no answer came (`timeout_seconds`).
    public var deadline: Date?
    /// The attempt's credential: the answer must carry it (`TaskResult.token`). Whoever reads
    /// this record can answer the attempt, so `hitl.tasks` is for the workers only.
    public var token: String
    /// The decision receipt of the approval this step follows (`DecisionReceipt`): the worker
    /// can check who approved exactly this input before it acts.
    public var receipt: String?

    public init(
        workflowId: String, workflowType: String, step: String, attempt: Int, agent: String?, compensation: Bool,
        input: JSONObject, outputs: JSONObject, feedback: String?, deadline: Date?, token: String, receipt: String? = nil
    ) {
        self.token = token
        self.receipt = receipt
        self.workflowId = workflowId
        self.workflowType = workflowType
        self.step = step
        self.attempt = attempt
        self.agent = agent
        self.compensation = compensation
        self.input = input
        self.outputs = outputs
        self.feedback = feedback
        self.deadline = deadline
    }
}

/// An agent answers a task request (`hitl.task.results`, or
/// `POST /v1/workflows/{id}/steps/{name}/result`).
public struct TaskResult: EventPayload {
    public enum Outcome: String, Codable, Sendable { case succeeded, failed }
    public static let acceptedTypes: Set<EventType> = [.taskResult]
    /// Agents write these: held to the inbound depth.
    public static let maximumDepth = WireCoding.inboundDepth
    public var eventType: EventType { .taskResult }

    public var workflowId: String
    public var step: String
    public var attempt: Int
    public var compensation: Bool
    public var outcome: Outcome
    public var output: JSONObject?
    public var error: String?
    /// Who did the work, for the history.
    public var worker: String
    /// The attempt's token from `TaskRequested`; an answer without the current attempt's
    /// token is refused before anything is written.
    public var token: String?

    public init(
        workflowId: String, step: String, attempt: Int, compensation: Bool = false, outcome: Outcome, output: JSONObject? = nil, error: String? = nil,
        worker: String, token: String? = nil
    ) {
        self.token = token
        self.workflowId = workflowId
        self.step = step
        self.attempt = attempt
        self.compensation = compensation
        self.outcome = outcome
        self.output = output
        self.error = error
        self.worker = worker
    }

    enum CodingKeys: String, CodingKey { case workflowId, step, attempt, compensation, outcome, output, error, worker, token }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        workflowId = try container.decode(String.self, forKey: .workflowId)
        step = try container.decode(String.self, forKey: .step)
        attempt = try container.decode(Int.self, forKey: .attempt)
        compensation = try container.decodeIfPresent(Bool.self, forKey: .compensation) ?? false
        outcome = try container.decode(Outcome.self, forKey: .outcome)
        output = try container.decodeIfPresent(JSONObject.self, forKey: .output)
        error = try container.decodeIfPresent(String.self, forKey: .error)
        worker = try container.decode(String.self, forKey: .worker)
        token = try container.decodeIfPresent(String.self, forKey: .token)
    }
}
