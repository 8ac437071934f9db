import AsyncHTTPClient
import Contracts
import Foundation
import Metrics
import NIOCore
import ServiceKit
import ServiceLifecycle

/// Makes the calls of `http` tasks. The engine queues a call with the save of the
/// transaction that starts the attempt; this worker leases due ones (`HTTPCallQueue`) (a crashed worker's
/// rows come back when the lease ends), calls, and applies the answer to the attempt in a
/// new transaction: 2xx succeeds (a JSON object body becomes the step's output); 5xx,
/// timeouts and connection errors fail the attempt for a retry; other answers fail it for
/// good. Task calls are signed with the `v2` scheme (`Signing.taskCallSignature`: method,
/// URL, workflow, step, attempt, delivery id and body) under the task key; lifecycle
/// callbacks like webhooks (`v1`, body) under their own key. A circuit breaker per host
/// fails calls fast while the host keeps failing.
struct HTTPTaskWorker: SupervisedLoop {
    let runtime: ServiceRuntime
    let engine: WorkflowEngine
    let queue: HTTPCallQueue
    let wakeup: Wakeup
    let breaker: CircuitBreaker
    /// Signs task calls (`HITL_TASK_SIGNING_SECRET`).
    let signingSecret: String?
    /// Signs lifecycle callbacks (`HITL_CALLBACK_SIGNING_SECRET`).
    let callbackSecret: String?
    var batchSize = 32

    var name: String { "http tasks" }
    var stallAfter: Duration { .seconds(60) }

    func run(heartbeat: LoopWatchdog.Heartbeat) async throws {
        await LeasedWorkLoop.run(
            "HTTP task", slots: batchSize, wakeup: wakeup, idle: .seconds(2), heartbeat: heartbeat, logger: runtime.logger,
            claim: lease, handle: perform)
    }

    typealias Call = HTTPCallQueue.Call

    /// Headers a task may not set: `Host` would send the call to another site behind the
    /// address the egress policy checked; the others are the request's framing, or the
    /// signature and tokens the orchestrator adds itself.
    static func isReservedHeader(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "expect", "keep-alive", "proxy-connection"].contains(lower)
            || lower.hasPrefix("x-hitl-") || lower.hasPrefix("hitl-")
    }

    /// Attempts of one lifecycle callback before it is given up (and noted in the history).
    static let callbackAttempts = 8

    private func lease(limit: Int) async throws -> [Call] {
        try await queue.lease(limit: limit)
    }

    /// The result of one call, as the engine takes it.
    enum Answer: Sendable {
        case succeeded(JSONObject)
        case failed(String, retryable: Bool)
    }

    private func perform(_ call: Call) async {
        let signature: Signature? =
            if call.isCallback {
                callbackSecret.map { .callback(secret: $0) }
            } else {
                signingSecret.map {
                    .taskCall(
                        secret: $0,
                        Signing.TaskCall(
                            method: call.request.method, url: call.request.url, workflowID: call.workflowID.description, step: call.step,
                            attempt: call.attempt, deliveryID: "\(call.id)"))
                }
            }
        let answer = await execute(call.request, signature: signature)
        if call.isCallback {
            await settleCallback(call, answer: answer)
            return
        }
        Counter(label: "hitl_http_task_calls_total", dimensions: [("result", answer.isSuccess ? "succeeded" : "failed")]).increment()
        do {
            try await runtime.database.transaction { transaction in
                try await queue.remove(call, in: transaction)
                _ = try await engine.with(workflow: call.workflowID, in: transaction) { session in
                    let actor = "http:\(URL(string: call.request.url)?.host ?? "?")"
                    switch answer {
                    case .succeeded(let output):
                        try await engine.applyTaskResult(
                            TaskResult(
                                workflowId: session.id, step: call.step, attempt: call.attempt, compensation: call.compensation, outcome: .succeeded,
                                output: output, worker: actor),
                            actor: actor, session: session)
                    case .failed(let error, let retryable):
                        try await engine.applyTaskResult(
                            TaskResult(
                                workflowId: session.id, step: call.step, attempt: call.attempt, compensation: call.compensation, outcome: .failed, error: error,
                                worker: actor),
                            actor: actor, retryable: retryable, session: session)
                    }
                }
            }
        } catch {
            // The lease runs out and the call is made again: at least once, never lost.
            runtime.logger.warning("HTTP task answer not recorded", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
        }
    }

    /// A delivered callback is done; a failed one is tried again later with a doubling
    /// wait, and given up after `callbackAttempts` with a note in the history (at once when
    /// retrying cannot help: the egress policy refused it, or the receiver answered 4xx).
    private func settleCallback(_ call: Call, answer: Answer) async {
        let tries = call.tries + 1
        let logger = runtime.logger
        do {
            try await runtime.database.transaction { transaction in
                switch answer {
                case .succeeded:
                    try await queue.remove(call, in: transaction)
                case .failed(let error, let retryable) where tries >= Self.callbackAttempts || !retryable:
                    try await queue.giveUp(call, error: error, tries: tries, in: transaction)
                case .failed:
                    try await queue.retry(call, tries: tries, in: min(300, pow(2, Double(tries))), in: transaction)
                }
            }
        } catch {
            logger.warning("Callback outcome not recorded", metadata: [LoggingKeys.error: "\(ErrorText.describe(error))"])
        }
    }

    /// How a call is signed.
    enum Signature: Sendable {
        case taskCall(secret: String, Signing.TaskCall)
        case callback(secret: String)
    }

    func execute(_ task: HTTPTaskRequest, signature: Signature?) async -> Answer {
        guard let url = URL(string: task.url), let host = url.host else { return .failed("the url \(task.url) is not valid", retryable: false) }
        let key = "\(host):\(url.port ?? (url.scheme == "https" ? 443 : 80))"
        let permission = breaker.permission(for: key)
        if case .refuse(let retryIn) = permission {
            return .failed("circuit open for \(key); next probe in \(retryIn.components.seconds) s", retryable: true)
        }
        do {
            let body: [UInt8] = try task.body.map { try WireCoding.encode($0) } ?? []
            var request = HTTPClientRequest(url: task.url)
            request.method = .init(rawValue: task.method)
            for (name, value) in task.headers where !Self.isReservedHeader(name) { request.headers.add(name: name, value: value) }
            request.headers.replaceOrAdd(name: "User-Agent", value: "hitl-orchestrator")
            if let token = task.taskToken { request.headers.replaceOrAdd(name: TaskTokens.header, value: token) }
            if let receipt = task.approvalReceipt { request.headers.replaceOrAdd(name: "HITL-Approval-Receipt", value: receipt) }
            let signed: [(name: String, value: String)] =
                switch signature {
                case .taskCall(let secret, let call)?: Signing.taskCallHeaders(secret: secret, call: call, body: body)
                case .callback(let secret)?: Signing.webhookHeaders(secret: secret, body: body)
                case nil: []
                }
            for header in signed { request.headers.replaceOrAdd(name: header.name, value: header.value) }
            if task.body != nil {
                request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            let response = try await runtime.egress.execute(request, within: .seconds(task.timeoutSeconds))
            let data = response.body
            let code = response.status
            if code >= 500 {
                breaker.recordFailure(for: key)
                return .failed("\(task.method) \(task.url) answered \(code)", retryable: true)
            }
            breaker.recordSuccess(for: key)
            guard (200..<300).contains(code) else {
                return .failed("\(task.method) \(task.url) answered \(code)", retryable: false)
            }
            // An answer that is no JSON object, or one nested deeper than inbound JSON may be,
            // is kept as text.
            let output =
                (try? WireCoding.decode(JSONObject.self, from: data, nestedAtMost: WireCoding.inboundDepth))
                ?? (data.isEmpty ? [:] : ["body": .string(String(decoding: data, as: UTF8.self))])
            return .succeeded(output)
        } catch let refused as EgressRefused {
            // Policy, not the host's health: no retry, and the breaker is left alone.
            return .failed("\(task.method) \(task.url): \(refused)", retryable: false)
        } catch let failed as EgressCallFailed where !failed.retryable {
            // The host answered, too much: the same again next time, and no sign of ill health.
            return .failed("\(task.method) \(task.url) failed: \(failed.reason)", retryable: false)
        } catch {
            breaker.recordFailure(for: key)
            if let failed = error as? EgressCallFailed {
                runtime.logger.info("HTTP call failed", metadata: ["url": "\(task.url)", LoggingKeys.error: "\(failed.detail)"])
            }
            return .failed("\(task.method) \(task.url) failed: \(ErrorText.describe(error))", retryable: true)
        }
    }
}

extension HTTPTaskWorker.Answer {
    var isSuccess: Bool {
        if case .succeeded = self { return true }
        return false
    }
}
