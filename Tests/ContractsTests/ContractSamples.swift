import Contracts
import Foundation

/// One fixed value of every v1 payload type, paired with its golden fixture file.
enum ContractSamples {
    static let time = WireCoding.parseTime("2026-11-22T10:00:00.000Z")!
    static let later = WireCoding.parseTime("2026-11-22T11:00:00.000Z")!
    static let workflowID = "5b0a3f8e-2c1d-4a7e-9f00-0123456789ab"
    static let approvalID = "9d2c4b1a-7e6f-4c3b-8a29-abcdef012345"

    struct Sample: Sendable {
        let fixture: String
        let encode: @Sendable () throws -> [UInt8]
        /// What Foundation's encoder with the wire settings writes, which `encode` must match.
        let reference: @Sendable () throws -> [UInt8]
        let roundTrips: @Sendable ([UInt8]) throws -> Bool
        /// Whether `WireDecoder`'s fast path reads the bytes (not leaving them to Foundation)
        /// to what Foundation reads.
        let fastPathMatchesFoundation: @Sendable ([UInt8]) throws -> Bool
        let type: EventType
    }

    static func sample<P: EventPayload>(_ fixture: String, _ payload: P) -> Sample {
        Sample(
            fixture: fixture, encode: { try WireCoding.encode(payload) }, reference: { Array(try WireCoding.encoder().encode(payload)) },
            roundTrips: { try WireCoding.decode(P.self, from: $0) == payload },
            fastPathMatchesFoundation: { bytes in
                guard let fast = WireDecoderTests.fast(P.self, bytes) else { return false }
                return try fast == WireCoding.decoder().decode(P.self, from: Data(bytes))
            }, type: payload.eventType)
    }

    static let all: [Sample] = [
        sample(
            "workflow.submitted.v1",
            WorkflowSubmitted(
                idempotencyKey: "transfer-42", type: "wire_transfer", requester: "agent@bank.example",
                input: ["amount": .number(6000), "currency": .string("EUR"), "urgent": .bool(false), "note": .null],
                steps: [
                    StepDefinition(name: "approve", kind: .approval, approval: .init(approvers: ["manager@bank.example"], timeoutSeconds: 3600)),
                    StepDefinition(name: "execute", kind: .task, task: .init(type: "noop")),
                ])),
        sample(
            "workflow.submitted_multi_step.v1",
            WorkflowSubmitted(
                idempotencyKey: "transfer-43", type: "wire_transfer", requester: "agent@bank.example", input: ["amount": 6000],
                steps: [
                    StepDefinition(
                        name: "draft", kind: .task, task: .init(type: "agent", agent: "writer"),
                        retry: .init(maxAttempts: 3, backoffSeconds: 1, maxBackoffSeconds: 30), timeoutSeconds: 600, compensate: .init(type: "agent")),
                    StepDefinition(
                        name: "approve", kind: .approval, when: "input.amount > 0",
                        approval: .init(approvers: ["manager@bank.example"], autoApproveWhen: "input.amount < 5000", reviseStep: "draft", maxRounds: 2)),
                    StepDefinition(
                        name: "execute", kind: .task,
                        task: .init(
                            type: "http", url: "https://bank.example/pay", method: "POST", headers: ["X-Bank": "1"],
                            body: .object(["amount": "{{input.amount}}"])),
                        next: "done"),
                    StepDefinition(name: "done", kind: .task, task: .init(type: "noop")),
                ],
                callbackUrl: "https://agent.example/hooks/hitl")),
        sample(
            "workflow.submitted_from_template.v1",
            WorkflowSubmitted(
                idempotencyKey: "transfer-44", type: "wire_transfer", requester: "agent@bank.example", input: ["amount": 6000], steps: [],
                template: "transfer", templateVersion: 2)),
        sample(
            "workflow.compensation_failed.v1",
            WorkflowLifecycle(
                change: .workflowCompensationFailed, workflowId: workflowID, workflowType: "wire_transfer", status: .compensationFailed,
                step: "reserve", reason: "compensation of reserve failed: refund refused", at: later)),
        sample(
            "approval.decided_with_changes.v1",
            ApprovalDecided(
                approvalId: approvalID, workflowId: workflowID, step: "approve", decision: .approveWithChanges,
                approver: "manager@bank.example", comment: "lower it", channel: "slack", decidedAt: time, changes: ["amount": 5500])),
        sample(
            "approval.cancel_requested.v1", ApprovalCancelRequested(approvalId: approvalID, workflowId: workflowID, reason: "workflow cancelled by ops:api")),
        sample(
            "task.requested.v1",
            TaskRequested(
                workflowId: workflowID, workflowType: "wire_transfer", step: "draft", attempt: 2, agent: "writer", compensation: false,
                input: ["amount": 6000], outputs: ["check": .object(["risk": "low"])], feedback: "split it in two", deadline: later, token: "3f1c0e6a9b2d4c8e")),
        sample(
            "task.result.v1",
            TaskResult(
                workflowId: workflowID, step: "draft", attempt: 2, outcome: .succeeded, output: ["plan": "two payments"], worker: "writer-1",
                token: "3f1c0e6a9b2d4c8e")),
        sample(
            "workflow.control_requested.v1", WorkflowControlRequested(workflowId: workflowID, action: .pause, requestedBy: "ops@bank.example", reason: "audit")),
        sample(
            "workflow.waiting_approval.v1",
            WorkflowLifecycle(
                change: .workflowWaitingApproval, workflowId: workflowID, workflowType: "wire_transfer", status: .waitingApproval,
                step: "approve", reason: nil, at: time)),
        sample(
            "workflow.timed_out.v1",
            WorkflowLifecycle(
                change: .workflowTimedOut, workflowId: workflowID, workflowType: "wire_transfer", status: .timedOut,
                step: "approve", reason: "no decision before 2026-11-22T11:00:00.000Z", at: later)),
        sample(
            "approval.requested.v1",
            ApprovalRequested(
                approvalId: approvalID, workflowId: workflowID, workflowType: "wire_transfer", step: "approve",
                requester: "agent@bank.example", approvers: ["manager@bank.example"], timeoutSeconds: 3600,
                context: ["amount": .number(6000)])),
        sample(
            "approval.requested_with_policy.v1",
            ApprovalRequested(
                approvalId: approvalID, workflowId: workflowID, workflowType: "wire_transfer", step: "approve",
                requester: "agent@bank.example", approvers: ["group:finance", "cy@bank.example"], timeoutSeconds: nil,
                context: ["amount": 6000],
                policy: ApprovalPolicy(
                    quorum: .nOfM, required: 2, veto: ["cy@bank.example"], allowSelfApproval: false, outcomes: [.approve, .reject], priority: .high,
                    escalation: [.init(afterSeconds: 3600, approvers: ["boss@bank.example"])], reminderSeconds: 1800, onExpiry: .reject))),
        sample(
            "approval.requested_with_form.v1",
            ApprovalRequested(
                approvalId: approvalID, workflowId: workflowID, workflowType: "wire_transfer", step: "approve",
                requester: "agent@bank.example", approvers: ["manager@bank.example"], timeoutSeconds: 3600,
                context: ["amount": 6000, "payee": "ACME"],
                form: ApprovalForm(
                    title: "Wire transfer", description: "Check the payee.", facts: ["amount", "payee"],
                    fields: [
                        .init(name: "reason", type: .select, label: "Reason", required: true, options: ["budget", "risk"]),
                        .init(name: "urgent", type: .boolean, label: "Urgent", default: false),
                        .init(name: "limit", type: .number, label: "Limit", min: 0, max: 10_000),
                    ],
                    buttons: [.init(decision: .approve, label: "Approve", style: .primary), .init(decision: .reject, label: "Reject", style: .danger)]))),
        sample(
            "approval.decided.v1",
            ApprovalDecided(
                approvalId: approvalID, workflowId: workflowID, step: "approve", decision: .approve,
                approver: "manager@bank.example", comment: "ok", channel: "api", decidedAt: time)),
        sample("approval.expired.v1", ApprovalExpired(approvalId: approvalID, workflowId: workflowID, step: "approve", deadline: later, expiredAt: later)),
        sample(
            "notification.requested.v1",
            NotificationRequested(
                reason: "approval_requested", notificationId: "approval-requested:\(approvalID)", workflowId: workflowID,
                approvalId: approvalID, recipients: ["manager@bank.example"], subject: "Approval needed: wire_transfer",
                text: "amount: 6000", links: ["decision": "http://approval.example/v1/approvals/\(approvalID)/decision"])),
        sample(
            "notification.delivered.v1",
            NotificationDelivered(notificationId: "n-1", workflowId: workflowID, channel: "webhook", attempts: 1, deliveredAt: time)),
        sample(
            "notification.failed.v1",
            NotificationFailed(notificationId: "n-1", workflowId: workflowID, channel: "webhook", attempts: 6, error: "webhook answered 503", failedAt: time)),
        sample(
            "approval.thread_message.v1",
            ApprovalThreadMessage(
                workflowId: workflowID, sequence: 7, kind: "agent", author: "agent@bank.example", step: "approve", text: "The beneficiary is a new supplier.",
                at: time)),
        sample(
            "notification.retry_requested.v1",
            NotificationRetryRequested(notificationId: "n-1", workflowId: workflowID, channel: "email", recipient: "manager@bank.example")),
        sample(
            "timer.scheduled.v1",
            TimerScheduled(owner: .approval, key: "deadline:\(approvalID)", workflowId: workflowID, dueAt: later, payload: ["approval_id": .string(approvalID)])
        ),
        sample("timer.cancelled.v1", TimerCancelled(owner: .approval, key: "deadline:\(approvalID)", workflowId: workflowID)),
        sample(
            "timer.fired.v1",
            TimerFired(
                owner: .approval, key: "deadline:\(approvalID)", workflowId: workflowID, dueAt: later, firedAt: later,
                payload: ["approval_id": .string(approvalID)])),
        sample(
            "dead_lettered.v1",
            DeadLettered(
                deadLetterId: "0f0e0d0c-0b0a-4909-8807-060504030201", service: "approval", originalTopic: "hitl.approval.requests",
                partition: 3, offset: 42, key: workflowID, headers: [["ce_type", "hitl.approval.requested.v2"]],
                valueBase64: "e30=", eventId: "e-1", originalEventType: "hitl.approval.requested.v2",
                error: "unsupported_version: hitl.approval.requested.v2 is a version this service does not read",
                attempts: 1, firstAttemptAt: time, deadLetteredAt: time)),
    ]
}
