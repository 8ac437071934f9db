import Contracts
import Forms
import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceKit

/// Approval state and its changes. Every change runs in the caller's transaction together
/// with the events it causes.
struct ApprovalStore: Sendable {
    let runtime: ServiceRuntime
    let settings: ApprovalSettings
    /// Wakes the fallback decider when an approval was handed to it.
    var fallbackWakeup = Wakeup()

    static let deadlineTimerPrefix = "deadline:"

    /// The web pages' sessions and CSRF tokens.
    var sessions: WebSessions {
        WebSessions(tokens: settings.decisionTokens, secureCookies: runtime.configuration.publicURL.hasPrefix("https:"))
    }

    var links: ApprovalLinks {
        ApprovalLinks(publicURL: runtime.configuration.publicURL, tokens: settings.decisionTokens, sessions: sessions, seal: settings.linkSeal)
    }

    /// Records the first use of sign-in link `tokenID`; false when it was used before.
    func useSignIn(_ tokenID: String, approvalID: String, logger: Logger) async throws -> Bool {
        guard let id = UUID(uuidString: approvalID) else { return false }
        var first = false
        for try await _ in try await runtime.database.query(
            "INSERT INTO used_sign_ins (token_id, approval_id) VALUES (\(tokenID), \(id)) ON CONFLICT DO NOTHING RETURNING 1")
        {
            first = true
        }
        return first
    }

    // MARK: - Creation

    /// Creates the pending approval, asks the notifier to tell the approvers and the
    /// timeout service for the deadline. A repeat of the same request changes nothing.
    func create(_ request: ApprovalRequested, in transaction: Transaction) async throws {
        guard let id = UUID(uuidString: request.approvalId) else { throw PermanentFailure("approval_id is not a UUID") }
        guard !request.approvers.isEmpty else { throw PermanentFailure("an approval needs at least one approver") }
        // Whoever wrote the record, nothing reaches an approver that the orchestrator would refuse.
        if let problem = FormLimits.problem(inInput: request.context) { throw PermanentFailure("context: \(problem)") }
        if let form = request.form, let problem = FormLimits.problem(in: form, outcomes: (request.policy ?? ApprovalPolicy()).allowedOutcomes) {
            throw PermanentFailure("form.\(problem)")
        }
        // One read of the groups serves the directory check and the resolution.
        let groups = try await ApproverGroups.all(configured: settings.groups, in: transaction)
        if request.knownApproversOnly == true, let stranger = Self.stranger(in: request, groups: groups) {
            try await refuse(request, reason: "\(stranger) is not a known approver: an agent may name members of approver groups, or groups", in: transaction)
            return
        }
        let applied = try await resolve(request.policy, approvers: request.approvers, requester: request.requester, groups: groups, in: transaction)
        let deadline = Date().addingTimeInterval(TimeInterval(settings.timeoutSeconds(for: request)))
        let approvers = try JSONColumn.text(applied.assignees)
        let requested = try JSONColumn.text(request.approvers)
        let policy = try JSONColumn.text(applied)
        let facts = try JSONColumn.text(request.context)
        let form =
            request.form
            ?? FormRendering.defaultForm(
                title: "\(request.workflowType): \(request.step)", outcomes: applied.policy.allowedOutcomes.filter { $0 == .approve || $0 == .reject })
        let formJSON = try JSONColumn.text(form)
        let inserted = try await transaction.query(
            """
            INSERT INTO approvals (id, workflow_id, workflow_type, step, requester, approvers, requested_approvers, policy, form, context, deadline, rule)
            VALUES (\(id), \(request.workflowId), \(request.workflowType), \(request.step), \(request.requester),
                    \(approvers)::jsonb, \(requested)::jsonb, \(policy)::jsonb, \(formJSON)::jsonb, \(facts)::jsonb, \(deadline), \(request.rule))
            ON CONFLICT (id) DO NOTHING RETURNING 1
            """)
        var created = false
        for try await _ in inserted { created = true }
        guard created else { return }

        let links = try self.links.sealed(
            approvalID: request.approvalId, recipients: applied.assignees, form: form, policy: applied.policy, deadline: deadline)
        let rendering = FormRendering(form: form, facts: request.context)
        let intro = "\(request.requester) asks for approval of \(request.workflowType) (step \(request.step))."
        let due = "Decide before \(WireCoding.formatTime(deadline))."
        let text = intro + "\n" + rendering.plainText() + "\n" + due
        try transaction.publish(
            NotificationRequested(
                reason: "approval_requested", notificationId: "approval-requested:\(request.approvalId)",
                workflowId: request.workflowId, approvalId: request.approvalId, recipients: applied.assignees,
                subject: "Approval needed: \(request.workflowType)", text: text, links: links.clear, sealedLinks: links.sealed, form: form,
                facts: request.context,
                markdown: FormRendering.escapeMarkdown(intro) + "\n\n" + rendering.markdown() + "\n\n" + FormRendering.escapeMarkdown(due)),
            to: .notifications, subject: request.workflowId)
        try await scheduleTimers(for: request, policy: applied.policy, deadline: deadline, in: transaction)
    }

    /// The first person `request` names (as an approver, a vetoer or at an escalation level)
    /// who is not a member of any approver group, or nil. Groups are checked when resolved.
    private static func stranger(in request: ApprovalRequested, groups: [String: [String]]) -> String? {
        let known = Set(groups.values.joined())
        let named = request.approvers + (request.policy?.veto ?? []) + (request.policy?.escalation ?? []).flatMap(\.approvers)
        return named.first { !$0.hasPrefix("group:") && !known.contains($0) }
    }

    /// Answers a request that cannot be put to anyone with a rejection by the directory,
    /// with the reason and a signed receipt: the workflow rolls back and says why.
    private func refuse(_ request: ApprovalRequested, reason: String, in transaction: Transaction) async throws {
        let decidedAt = Date()
        let receipt = try settings.receiptKeys.sign(
            DecisionReceipt.Claims(
                approvalId: request.approvalId, workflowId: request.workflowId, step: request.step, outcome: .reject, decidedBy: "directory",
                onBehalfOf: nil, channel: ApprovalDecided.policyChannel, decidedAt: decidedAt, rule: request.rule, shown: request.context, changes: nil))
        try transaction.publish(
            ApprovalDecided(
                approvalId: request.approvalId, workflowId: request.workflowId, step: request.step, decision: .reject, approver: "directory",
                comment: reason, channel: ApprovalDecided.policyChannel, decidedAt: decidedAt, receipt: receipt),
            to: .approvalDecisions, subject: request.workflowId)
    }

    /// `policy` with `approvers` resolved as of now: groups (configured and from the API) to
    /// their members, people away to their delegates. A group that does not exist is the
    /// request's fault, not a passing one.
    /// - Parameter groups: the groups, when the caller read them already.
    func resolve(
        _ policy: ApprovalPolicy?, approvers: [String], requester: String?, groups: [String: [String]]? = nil, in transaction: Transaction
    ) async throws -> AppliedPolicy {
        let delegations = try await Delegations.active(in: transaction)
        let groups = if let groups { groups } else { try await ApproverGroups.all(configured: settings.groups, in: transaction) }
        do {
            return try AppliedPolicy(policy: policy, approvers: approvers, groups: groups, delegations: delegations, requester: requester)
        } catch let error as PolicyError {
            throw PermanentFailure(error.description)
        }
    }

    // MARK: - Decisions

    /// Records a vote on a pending approval and decides it when the votes add up under its
    /// policy (with quorum `any`, the first vote decides). The row lock serialises votes, so
    /// exactly one vote decides and exactly one decision event is published; every later
    /// vote is refused with who decided, how and when. A refusal is a `DecisionRefusal`,
    /// whichever channel the request came from.
    func decide(id: UUID, _ asked: DecisionRequest, logger: Logger) async throws -> ApprovalView {
        let request = try asked.checked()
        let (decision, approver, comment, changes, channel) = (request.decision, request.approver, request.comment, request.changes, request.channel)
        let view = try await runtime.database.transaction(logger: logger) { transaction -> ApprovalView in
            // The approval's row lock comes first: taking it after the link's insert (whose
            // foreign key share-locks the row) would let concurrent decisions deadlock.
            guard var current = try await load(id: id, lock: true, in: transaction) else {
                throw DecisionRefusal.noSuchApproval(id.uuidString.lowercased())
            }
            if let linkTokenID = request.linkTokenID {
                let fresh = try await transaction.returnsRow(
                    "INSERT INTO used_decision_links (token_id, approval_id) VALUES (\(linkTokenID), \(id)) ON CONFLICT DO NOTHING RETURNING 1")
                guard fresh else { throw DecisionRefusal.linkUsed }
            }
            if current.status != .pending {
                throw DecisionRefusal.closed(
                    current.status, decidedBy: current.decidedBy, channel: current.channel, at: current.decidedAt, deadline: current.deadline)
            }
            // Expiry before status: a late decision does not win even if the timer is slow.
            if current.deadline <= Date() { throw DecisionRefusal.expired(deadline: current.deadline) }
            switch current.policy.refusal(of: decision, by: approver, requester: current.requester) {
            case .notAnApprover?: throw DecisionRefusal.notAnApprover(approver)
            case .ownRequest?: throw DecisionRefusal.ownRequest(approver)
            case .outcomeNotAllowed(let allowed)?: throw DecisionRefusal.outcomeNotAllowed(decision, allowed: allowed)
            case nil: break
            }
            if current.votes.contains(where: { $0.approver == approver }) { throw DecisionRefusal.alreadyVoted(approver) }
            // The form's fields, checked whatever the channel; a rejection or a request for
            // changes need not fill them in.
            var checkedFields: JSONObject?
            if let form = current.form, decision == .approve || decision == .approveWithChanges || request.fields != nil {
                switch FormValidation.check(request.fields ?? [:], against: form) {
                case .success(let values): checkedFields = values.isEmpty ? nil : values
                case .failure(let problems): throw DecisionRefusal.invalidFields(problems)
                }
            }
            let fieldsJSON = try checkedFields.map { try JSONColumn.text($0) }
            let changesJSON = try changes.map { try JSONColumn.text($0) }
            let onBehalfOf = current.policy.onBehalfOf?[approver]
            try await transaction.query(
                """
                INSERT INTO approval_votes (approval_id, approver, decision, comment, changes, channel, on_behalf_of, fields)
                VALUES (\(id), \(approver), \(decision.rawValue), \(comment), \(changesJSON)::jsonb, \(channel), \(onBehalfOf), \(fieldsJSON)::jsonb)
                """)
            current.votes.append(
                Vote(approver: approver, decision: decision.rawValue, comment: comment, channel: channel, votedAt: Date(), onBehalfOf: onBehalfOf))
            let votes = current.votes.compactMap { vote in Decision(rawValue: vote.decision).map { (approver: vote.approver, decision: $0) } }
            guard let outcome = current.policy.outcome(of: votes) else { return current }
            Counter(label: "hitl_approval_decisions_total", dimensions: [("decided_by", "human")]).increment()

            let status = ApprovalStatus(after: outcome)
            let decidedAt = Date()
            let receipt = try receipt(
                for: current, outcome: outcome, by: approver, onBehalfOf: onBehalfOf, channel: channel, at: decidedAt, changes: changes)
            var remindersSent = 0
            for try await sent in try await transaction.query(
                """
                UPDATE approvals SET status = \(status.rawValue), decision = \(outcome.rawValue), changes = \(changesJSON)::jsonb, fields = \(fieldsJSON)::jsonb,
                       decided_by = \(approver), comment = \(comment), channel = \(channel), decided_at = \(decidedAt), receipt = \(receipt)
                WHERE id = \(id) RETURNING reminders_sent
                """
            ).decode(Int.self) {
                remindersSent = sent
            }
            let subject = current.workflowId
            try transaction.publish(
                ApprovalDecided(
                    approvalId: current.id, workflowId: current.workflowId, step: current.step, decision: outcome,
                    approver: approver, comment: comment, channel: channel, decidedAt: decidedAt, changes: changes, onBehalfOf: onBehalfOf,
                    fields: checkedFields, receipt: receipt),
                to: .approvalDecisions, subject: subject)
            try await cancelTimers(
                approvalID: current.id, workflowID: current.workflowId, policy: current.policy.policy, remindersSent: remindersSent,
                in: transaction)
            // Every prompt that went out is now moot: tell all assignees who decided, how and when,
            // so channels can replace their message and nobody answers in vain.
            try transaction.publish(
                NotificationRequested(
                    reason: "approval_decided", notificationId: "approval-decided:\(current.id)", workflowId: current.workflowId,
                    approvalId: current.id, recipients: current.approvers, subject: "Decided: \(current.workflowType)",
                    text: "\(status.rawValue.capitalized) by \(approver) via \(channel) at \(WireCoding.formatTime(decidedAt)); no action is needed any more.",
                    links: [:]),
                to: .notifications, subject: subject)
            current.status = status
            current.decision = outcome.rawValue
            current.changes = changes
            current.fields = checkedFields
            current.decidedBy = approver
            current.comment = comment
            current.channel = channel
            current.decidedAt = decidedAt
            current.receipt = receipt
            return current
        }
        return view
    }

    /// The signed receipt of `current` decided `outcome`: who, how, when, the gate, and the
    /// hashes of what the approvers were shown and of the input as approved.
    func receipt(
        for current: ApprovalView, outcome: Decision, by decider: String, onBehalfOf: String?, channel: String, at decidedAt: Date, changes: JSONObject?
    ) throws -> String {
        try settings.receiptKeys.sign(
            DecisionReceipt.Claims(
                approvalId: current.id, workflowId: current.workflowId, step: current.step, outcome: outcome, decidedBy: decider, onBehalfOf: onBehalfOf,
                channel: channel, decidedAt: decidedAt, rule: current.rule, shown: current.context, changes: outcome == .approveWithChanges ? changes : nil))
    }

    // MARK: - Expiry

    /// At the deadline of a pending approval: the policy decides (`on_expiry` approve or
    /// reject, recorded as the policy's decision), hands it to the fallback decider, or the
    /// approval expires.
    func expire(id: UUID, in transaction: Transaction) async throws {
        guard let current = try await load(id: id, lock: true, in: transaction),
            current.status == .pending, current.deadline <= Date()
        else { return }
        switch current.policy.policy.onExpiry ?? .expire {
        case .fallback:
            // The call happens outside this transaction (FallbackDecider); the approval stays
            // pending, and past its deadline no human decision is taken any more.
            try await transaction.query(
                "INSERT INTO fallback_jobs (approval_id) VALUES (\(id)) ON CONFLICT DO NOTHING")
            transaction.afterCommit { [fallbackWakeup] in fallbackWakeup.signal() }
        case let action:
            try await endWithoutHuman(
                current, action: action, by: "on_expiry", reason: nil, in: transaction)
        }
    }

    /// Ends a pending approval past its deadline by `action`: a decision recorded as made by
    /// `by` (channel `policy`), or expiry; tells the approvers.
    func endWithoutHuman(
        _ current: ApprovalView, action: ApprovalPolicy.OnExpiry, by: String, reason: String?, in transaction: Transaction
    ) async throws {
        let deadline = WireCoding.formatTime(current.deadline)
        let decision: Decision? =
            switch action {
            case .approve: .approve
            case .reject: .reject
            case .expire, .fallback: nil
            }
        let text: String
        if let decision {
            let comment = reason ?? "no decision before \(deadline); the policy decided: \(decision.rawValue)"
            let decidedAt = Date()
            let receipt = try receipt(
                for: current, outcome: decision, by: by, onBehalfOf: nil, channel: ApprovalDecided.policyChannel, at: decidedAt, changes: nil)
            try await transaction.query(
                """
                UPDATE approvals SET status = \(ApprovalStatus(after: decision).rawValue), decision = \(decision.rawValue), decided_by = \(by),
                       comment = \(comment), channel = \(ApprovalDecided.policyChannel), decided_at = \(decidedAt), receipt = \(receipt)
                WHERE id = \(current.id)::uuid
                """)
            try transaction.publish(
                ApprovalDecided(
                    approvalId: current.id, workflowId: current.workflowId, step: current.step, decision: decision, approver: by,
                    comment: comment, channel: ApprovalDecided.policyChannel, decidedAt: decidedAt, receipt: receipt),
                to: .approvalDecisions, subject: current.workflowId)
            text = "Nobody decided before \(deadline); the request was \(ApprovalStatus(after: decision).rawValue) by \(by). No action is needed any more."
        } else {
            try await transaction.query(
                "UPDATE approvals SET status = 'expired', comment = \(reason), decided_at = now() WHERE id = \(current.id)::uuid")
            try transaction.publish(
                ApprovalExpired(approvalId: current.id, workflowId: current.workflowId, step: current.step, deadline: current.deadline, expiredAt: Date()),
                to: .approvalDecisions, subject: current.workflowId)
            text = "Nobody decided before \(deadline); no action is needed any more."
        }
        Counter(label: "hitl_approval_decisions_total", dimensions: [("decided_by", by == "fallback" ? "fallback" : "policy")]).increment()
        try transaction.publish(
            NotificationRequested(
                reason: "approval_expired", notificationId: "approval-expired:\(current.id)", workflowId: current.workflowId,
                approvalId: current.id, recipients: current.approvers, subject: "Approval expired: \(current.workflowType)", text: text, links: [:]),
            to: .notifications, subject: current.workflowId)
    }

    // MARK: - Cancellation

    /// Ends a pending approval that its workflow no longer needs, cancels its deadline and
    /// tells the approvers that no action is needed any more. A decided one stays decided.
    func cancel(_ request: ApprovalCancelRequested, in transaction: Transaction) async throws {
        guard let id = UUID(uuidString: request.approvalId) else { throw PermanentFailure("approval_id is not a UUID") }
        let rows = try await transaction.query(
            """
            UPDATE approvals SET status = 'cancelled', comment = \(request.reason), decided_at = now()
            WHERE id = \(id) AND status = 'pending'
            RETURNING workflow_id, approvers::text, workflow_type, policy::text, reminders_sent
            """)
        for try await (workflowID, approvers, type, policy, remindersSent) in rows.decode((String, String, String, String, Int).self) {
            let applied = try WireCoding.decode(AppliedPolicy.self, from: Array(policy.utf8))
            try await cancelTimers(
                approvalID: request.approvalId, workflowID: workflowID, policy: applied.policy, remindersSent: remindersSent,
                in: transaction)
            try transaction.publish(
                NotificationRequested(
                    reason: "approval_cancelled", notificationId: "approval-cancelled:\(request.approvalId)", workflowId: workflowID,
                    approvalId: request.approvalId, recipients: (try? WireCoding.decode([String].self, from: Array(approvers.utf8))) ?? [],
                    subject: "No longer needed: \(type)", text: "\(request.reason); no action is needed any more.", links: [:]),
                to: .notifications, subject: workflowID)
        }
    }

    // MARK: - Threads

    /// Keeps a message of a workflow's conversation for the web pages (a repeat is a no-op).
    func record(_ message: ApprovalThreadMessage, in transaction: Transaction) async throws {
        try await transaction.query(
            """
            INSERT INTO thread_messages (workflow_id, sequence, kind, author, step, text, at)
            VALUES (\(message.workflowId), \(message.sequence), \(message.kind), \(message.author), \(message.step), \(message.text), \(message.at))
            ON CONFLICT DO NOTHING
            """)
    }

    /// A workflow's conversation, oldest first.
    func thread(of workflowID: String) async throws -> [ApprovalThreadMessage] {
        let rows = try await runtime.database.query(
            "SELECT sequence, kind, author, step, text, at FROM thread_messages WHERE workflow_id = \(workflowID) ORDER BY sequence LIMIT 500")
        var messages: [ApprovalThreadMessage] = []
        for try await (sequence, kind, author, step, text, at) in rows.decode((Int64, String, String, String?, String, Date).self) {
            messages.append(ApprovalThreadMessage(workflowId: workflowID, sequence: sequence, kind: kind, author: author, step: step, text: text, at: at))
        }
        return messages
    }

    // MARK: - Reading

    /// The approval `id`, read outside any transaction.
    func find(id: UUID) async throws -> ApprovalView? {
        try await Self.views(runtime.database.query("\(unescaped: Self.selectColumns) WHERE id = \(id)")).first
    }

    func load(id: UUID, lock: Bool = false, in transaction: Transaction) async throws -> ApprovalView? {
        let rows =
            lock
            ? try await transaction.query("\(unescaped: Self.selectColumns) WHERE id = \(id) FOR UPDATE OF approvals")
            : try await transaction.query("\(unescaped: Self.selectColumns) WHERE id = \(id)")
        return try await Self.views(rows).first
    }

    func list(status: ApprovalStatus?, workflowID: String?, assignee: String?, requester: String?, limit: Int) async throws -> [ApprovalView] {
        let rows = try await runtime.database.query(
            """
            \(unescaped: Self.selectColumns)
            WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
              AND (\(workflowID)::text IS NULL OR workflow_id = \(workflowID))
              AND (\(assignee)::text IS NULL OR approvers ? \(assignee))
              AND (\(requester)::text IS NULL OR requester = \(requester))
            ORDER BY created_at, id LIMIT \(limit)
            """)
        return try await Self.views(rows)
    }

    private static let selectColumns = """
        SELECT id, workflow_id, workflow_type, step, requester, approvers::text, context::text, status, deadline,
               created_at, decided_by, comment, channel, decided_at, decision, changes::text, policy::text, form::text, fields::text, rule, receipt,
               (SELECT coalesce(jsonb_agg(jsonb_build_object('approver', v.approver, 'decision', v.decision, 'comment', v.comment,
                                                             'channel', v.channel, 'on_behalf_of', v.on_behalf_of, 'voted_at', to_char(v.voted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                                  ORDER BY v.voted_at), '[]')::text
                FROM approval_votes v WHERE v.approval_id = approvals.id)
        FROM approvals
        """

    private static func views(_ rows: PostgresRowSequence) async throws -> [ApprovalView] {
        var views: [ApprovalView] = []
        for try await row in rows {
            let (
                id, workflowID, type, step, requester, approvers, facts, status, deadline, created, decidedBy, comment, channel, decidedAt, decision, changes,
                policy, form, fields, rule, receipt, votes
            ) =
                try row.decode(
                    (
                        UUID, String, String, String, String, String, String, String, Date, Date, String?, String?, String?, Date?, String?, String?, String,
                        String?, String?, String?, String?, String
                    ).self)
            views.append(
                ApprovalView(
                    id: id.uuidString.lowercased(), workflowId: workflowID, workflowType: type, step: step, requester: requester,
                    approvers: try WireCoding.decode([String].self, from: Array(approvers.utf8)),
                    context: JSONColumn.object(facts),
                    status: try ApprovalStatus(stored: status, column: "approvals.status"), deadline: deadline, createdAt: created, decidedBy: decidedBy,
                    comment: comment,
                    channel: channel, decidedAt: decidedAt, decision: decision, changes: changes.map(JSONColumn.object),
                    policy: try WireCoding.decode(AppliedPolicy.self, from: Array(policy.utf8)),
                    form: try form.map { try WireCoding.decode(ApprovalForm.self, from: Array($0.utf8)) }, fields: fields.map(JSONColumn.object),
                    votes: try WireCoding.decode([Vote].self, from: Array(votes.utf8)), rule: rule, receipt: receipt))
        }
        return views
    }
}

/// An approval as the API shows it.
struct ApprovalView: Codable, Sendable {
    var id: String
    var workflowId: String
    var workflowType: String
    var step: String
    var requester: String
    var approvers: [String]
    var context: JSONObject
    var status: ApprovalStatus
    var deadline: Date
    var createdAt: Date
    var decidedBy: String?
    var comment: String?
    var channel: String?
    var decidedAt: Date?
    var decision: String?
    var changes: JSONObject?
    /// The policy as it applied when the approval was created.
    var policy: AppliedPolicy
    /// The form every channel shows; submitted fields are checked against it.
    var form: ApprovalForm?
    var fields: JSONObject?
    var votes: [Vote]
    /// The admin's gate that required the approval (`name@version`).
    var rule: String?
    /// The signed receipt of the decision (`DecisionReceipt`), once decided.
    var receipt: String?
}

extension ApprovalView {
    /// Admins see every approval, approvers those assigned to them, agents those of their requests.
    func isVisible(to principal: Principal) -> Bool {
        switch principal.role {
        case .admin: true
        case .approver: approvers.contains(principal.subject)
        case .agent: requester == principal.subject
        }
    }
}

/// One approver's vote; with quorum `any` the first vote is the decision.
struct Vote: Codable, Sendable {
    var approver: String
    var decision: String
    var comment: String?
    var channel: String
    var votedAt: Date
    /// The assignee the voter stood in for, by delegation.
    var onBehalfOf: String?
}
