import Contracts
import Foundation
import PostgresNIO
import ServiceKit

/// The SQL of the approval service's approvals: the approvals with their votes, the links
/// and sign-ins used once, the conversation kept for the web pages and the fallback queue.
/// Writes run in the caller's transaction; reads that need none go to the pool.
struct ApprovalRepository: Sendable {
    let database: Database

    // MARK: - Approvals

    /// A new approval, as the request asked it and its policy resolved.
    struct NewApproval {
        var id: ApprovalID
        var request: ApprovalRequested
        var applied: AppliedPolicy
        var form: ApprovalForm
        var deadline: Date
    }

    /// Inserts `new`; false when an approval with its id exists (a repeated request).
    func insert(_ new: NewApproval, in transaction: Transaction) async throws -> Bool {
        let request = new.request
        let approvers = try JSONColumn.text(new.applied.assignees)
        let requested = try JSONColumn.text(request.approvers)
        let policy = try JSONColumn.text(new.applied)
        let facts = try JSONColumn.text(request.context)
        let form = try JSONColumn.text(new.form)
        return try await transaction.returnsRow(
            """
            INSERT INTO approvals (id, workflow_id, workflow_type, step, requester, approvers, requested_approvers, policy, form, context, deadline, rule)
            VALUES (\(new.id), \(request.workflowId), \(request.workflowType), \(request.step), \(request.requester),
                    \(approvers)::jsonb, \(requested)::jsonb, \(policy)::jsonb, \(form)::jsonb, \(facts)::jsonb, \(new.deadline), \(request.rule))
            ON CONFLICT (id) DO NOTHING RETURNING 1
            """)
    }

    /// Approval `id` in `transaction`, locked against concurrent votes when `lock`.
    func load(id: ApprovalID, lock: Bool = false, in transaction: Transaction) async throws -> ApprovalView? {
        if lock { return try await Self.first(transaction.execute(LockedApprovalByID(id: id))) }
        return try await Self.first(transaction.execute(ApprovalByID(id: id)))
    }

    /// Approval `id`, read outside any transaction.
    func find(id: ApprovalID) async throws -> ApprovalView? {
        try await Self.first(database.execute(ApprovalByID(id: id)))
    }

    private static func first(_ views: some AsyncSequence<ApprovalView, any Error>) async throws -> ApprovalView? {
        for try await view in views { return view }
        return nil
    }

    /// The approvals the filters select, oldest first.
    func list(status: ApprovalStatus?, workflowID: String?, assignee: String?, requester: String?, limit: Int) async throws -> [ApprovalView] {
        let rows = try await database.query(
            """
            \(unescaped: Self.selectViews)
            WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
              AND (\(workflowID)::text IS NULL OR workflow_id = \(workflowID))
              AND (\(assignee)::text IS NULL OR approvers ? \(assignee))
              AND (\(requester)::text IS NULL OR requester = \(requester))
            ORDER BY created_at, id LIMIT \(limit)
            """)
        return try await Self.views(rows)
    }

    /// Records `vote` on approval `id`.
    func add(_ vote: Vote, fields: JSONObject?, changes: JSONObject?, to id: ApprovalID, in transaction: Transaction) async throws {
        let fieldsJSON = try fields.map { try JSONColumn.text($0) }
        let changesJSON = try changes.map { try JSONColumn.text($0) }
        try await transaction.query(
            """
            INSERT INTO approval_votes (approval_id, approver, decision, comment, changes, channel, on_behalf_of, fields)
            VALUES (\(id), \(vote.approver), \(vote.decision), \(vote.comment), \(changesJSON)::jsonb, \(vote.channel), \(vote.onBehalfOf),
                    \(fieldsJSON)::jsonb)
            """)
    }

    /// How an approval ended by a decision, as recorded.
    struct Decided {
        var status: ApprovalStatus
        var decision: Decision
        var changes: JSONObject?
        var fields: JSONObject?
        var decidedBy: String
        var comment: String?
        var channel: String
        var decidedAt: Date
        var receipt: String
    }

    /// Records the decision that closed approval `id`; answers how many reminders it had
    /// (which says which reminder timer is still to come).
    @discardableResult
    func record(_ decided: Decided, of id: ApprovalID, in transaction: Transaction) async throws -> Int {
        let changes = try decided.changes.map { try JSONColumn.text($0) }
        let fields = try decided.fields.map { try JSONColumn.text($0) }
        let rows = try await transaction.query(
            """
            UPDATE approvals SET status = \(decided.status.rawValue), decision = \(decided.decision.rawValue), changes = \(changes)::jsonb,
                   fields = \(fields)::jsonb, decided_by = \(decided.decidedBy), comment = \(decided.comment), channel = \(decided.channel),
                   decided_at = \(decided.decidedAt), receipt = \(decided.receipt)
            WHERE id = \(id) RETURNING reminders_sent
            """)
        var reminders = 0
        for try await sent in rows.decode(Int.self) { reminders = sent }
        return reminders
    }

    /// Records the vote that decides approval `id` and the decision, with the transaction's
    /// events so far, in one statement: a decision is the hottest write of the service.
    func record(deciding vote: Vote, _ decided: Decided, of id: ApprovalID, in transaction: Transaction) async throws {
        let statement = DecidingVote(
            id: id, vote: vote, decided: decided, changes: try decided.changes.map { try JSONColumn.text($0) },
            fields: try decided.fields.map { try JSONColumn.text($0) }, events: transaction.takeEvents())
        guard try await transaction.returnsRow(statement) else { throw PermanentFailure("approval \(id) vanished while it was decided") }
    }

    /// Records that approval `id` expired with no decision.
    func expire(_ id: ApprovalID, reason: String?, in transaction: Transaction) async throws {
        try await transaction.query("UPDATE approvals SET status = 'expired', comment = \(reason), decided_at = now() WHERE id = \(id)")
    }

    /// A pending approval as its cancellation found it.
    struct Cancelled {
        var workflowID: String
        var approvers: [String]
        var workflowType: String
        var policy: AppliedPolicy
        var remindersSent: Int
    }

    /// Cancels approval `id` if it is pending; nil when it was not.
    func cancel(_ id: ApprovalID, reason: String, in transaction: Transaction) async throws -> Cancelled? {
        let rows = try await transaction.query(
            """
            UPDATE approvals SET status = 'cancelled', comment = \(reason), decided_at = now()
            WHERE id = \(id) AND status = 'pending'
            RETURNING workflow_id, approvers::text, workflow_type, policy, reminders_sent
            """)
        for try await (workflowID, approvers, type, policy, remindersSent) in rows.decode(
            (String, String, String, AppliedPolicy, Int).self, context: JSONColumn.wire)
        {
            return Cancelled(
                workflowID: workflowID, approvers: try WireCoding.decode([String].self, from: Array(approvers.utf8)), workflowType: type, policy: policy,
                remindersSent: remindersSent)
        }
        return nil
    }

    /// Replaces the assignees and policy of approval `id` (an escalation added approvers).
    func reassign(_ id: ApprovalID, policy: AppliedPolicy, in transaction: Transaction) async throws {
        try await transaction.query(
            "UPDATE approvals SET approvers = \(try JSONColumn.text(policy.assignees))::jsonb, policy = \(try JSONColumn.text(policy))::jsonb WHERE id = \(id)")
    }

    /// Counts reminder `number` of pending approval `id`, once; false when it was counted
    /// before or the approval is no longer pending. Counted under the row lock, so a
    /// decision in between sees it (and cancels the next one).
    func countReminder(_ number: Int, of id: ApprovalID, in transaction: Transaction) async throws -> Bool {
        try await transaction.returnsRow(
            "UPDATE approvals SET reminders_sent = \(number) WHERE id = \(id) AND status = 'pending' AND reminders_sent < \(number) RETURNING 1")
    }

    // MARK: - Links used once

    /// Records the use of decision link `tokenID`; false when it was used before.
    func useDecisionLink(_ tokenID: String, of id: ApprovalID, in transaction: Transaction) async throws -> Bool {
        try await transaction.returnsRow(
            "INSERT INTO used_decision_links (token_id, approval_id) VALUES (\(tokenID), \(id)) ON CONFLICT DO NOTHING RETURNING 1")
    }

    /// Records the first use of sign-in link `tokenID`; false when it was used before.
    func useSignIn(_ tokenID: String, of id: ApprovalID) async throws -> Bool {
        try await database.returnsRow(
            "INSERT INTO used_sign_ins (token_id, approval_id) VALUES (\(tokenID), \(id)) ON CONFLICT DO NOTHING RETURNING 1")
    }

    // MARK: - Conversation

    /// Keeps a message of a workflow's conversation (a repeat is a no-op).
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
        let rows = try await database.query(
            "SELECT sequence, kind, author, step, text, at FROM thread_messages WHERE workflow_id = \(workflowID) ORDER BY sequence LIMIT 500")
        var messages: [ApprovalThreadMessage] = []
        for try await (sequence, kind, author, step, text, at) in rows.decode((Int64, String, String, String?, String, Date).self) {
            messages.append(ApprovalThreadMessage(workflowId: workflowID, sequence: sequence, kind: kind, author: author, step: step, text: text, at: at))
        }
        return messages
    }

    // MARK: - Fallback queue

    /// Hands approval `id` to the fallback decider.
    func queueFallback(_ id: ApprovalID, in transaction: Transaction) async throws {
        try await transaction.query("INSERT INTO fallback_jobs (approval_id) VALUES (\(id)) ON CONFLICT DO NOTHING")
    }

    /// Leases up to `limit` approvals waiting for the fallback decider, for `seconds`.
    func leaseFallbacks(limit: Int, for seconds: Double) async throws -> [ApprovalID] {
        try await database.transaction { transaction in
            let rows = try await transaction.query(
                """
                UPDATE fallback_jobs SET leased_until = now() + make_interval(secs => \(seconds))
                WHERE approval_id IN (SELECT approval_id FROM fallback_jobs WHERE leased_until IS NULL OR leased_until < now()
                                      ORDER BY created_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING approval_id
                """)
            var ids: [ApprovalID] = []
            for try await id in rows.decode(ApprovalID.self) { ids.append(id) }
            return ids
        }
    }

    /// Removes approval `id` from the fallback queue.
    func removeFallback(_ id: ApprovalID, in transaction: Transaction) async throws {
        try await transaction.query("DELETE FROM fallback_jobs WHERE approval_id = \(id)")
    }

    // MARK: - Reading views

    /// An approval as one `jsonb` object in the shape of `ApprovalView`, decoded by
    /// PostgresNIO with the wire coders; times as RFC 3339 with milliseconds.
    static let selectViews = """
        SELECT jsonb_build_object(
            'id', id, 'workflow_id', workflow_id, 'workflow_type', workflow_type, 'step', step, 'requester', requester,
            'approvers', approvers, 'context', context, 'status', status, 'deadline', \(time("deadline")), 'created_at', \(time("created_at")),
            'decided_by', decided_by, 'comment', comment, 'channel', channel, 'decided_at', \(time("decided_at")), 'decision', decision,
            'changes', changes, 'policy', policy, 'form', form, 'fields', fields, 'rule', rule, 'receipt', receipt,
            'votes', (SELECT coalesce(jsonb_agg(jsonb_build_object('approver', v.approver, 'decision', v.decision, 'comment', v.comment,
                                                                   'channel', v.channel, 'on_behalf_of', v.on_behalf_of,
                                                                   'voted_at', \(time("v.voted_at"))) ORDER BY v.voted_at), '[]')
                      FROM approval_votes v WHERE v.approval_id = approvals.id))
        FROM approvals
        """

    private static func time(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    }

    private static func views(_ rows: PostgresRowSequence) async throws -> [ApprovalView] {
        var views: [ApprovalView] = []
        for try await view in rows.decode(ApprovalView.self, context: JSONColumn.wire) { views.append(view) }
        return views
    }
}

extension ApprovalView: PostgresDecodable {}
extension AppliedPolicy: PostgresDecodable {}

/// Reads one approval by id; prepared, as every approval is read when it is created and
/// again, locked, when it is decided.
protocol ApprovalByIDStatement: PreparedByID where Row == ApprovalView, ID == ApprovalID {}

extension ApprovalByIDStatement {
    func decodeRow(_ row: PostgresRow) throws -> ApprovalView {
        try row.decode(ApprovalView.self, context: JSONColumn.wire)
    }
}

struct ApprovalByID: ApprovalByIDStatement {
    static let sql = ApprovalRepository.selectViews + " WHERE id = $1"
    let id: ApprovalID
}

struct LockedApprovalByID: ApprovalByIDStatement {
    static let sql = ApprovalRepository.selectViews + " WHERE id = $1 FOR UPDATE OF approvals"
    let id: ApprovalID
}

/// The vote that decides an approval, the decision and the events it publishes. The vote
/// carries the decision's changes, fields, comment and channel, as a human's decision does.
/// Prepared, like the reads by id.
struct DecidingVote: PostgresPreparedStatement {
    static let sql = """
        WITH vote AS (
            INSERT INTO approval_votes (approval_id, approver, decision, comment, changes, channel, on_behalf_of, fields)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8::jsonb)),
        events AS (\(OutboxRow.insertStatement(boundFrom: 13)))
        UPDATE approvals SET status = $9, decision = $10, changes = $5::jsonb, fields = $8::jsonb, decided_by = $2, comment = $4,
               channel = $6, decided_at = $11, receipt = $12
        WHERE id = $1 RETURNING 1
        """
    static let bindingDataTypes: [PostgresDataType] =
        [.uuid] + Array(repeating: .text, count: 9) + [.timestamptz, .text] + OutboxRow.bindingDataTypes
    typealias Row = Int

    let id: ApprovalID
    let vote: Vote
    let decided: ApprovalRepository.Decided
    let changes: String?
    let fields: String?
    let events: [OutboxRow]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: Self.bindingDataTypes.count)
        bindings.append(id)
        bindings.append(decided.decidedBy)
        bindings.append(vote.decision)
        bindings.append(decided.comment)
        bindings.append(changes)
        bindings.append(decided.channel)
        bindings.append(vote.onBehalfOf)
        bindings.append(fields)
        bindings.append(decided.status.rawValue)
        bindings.append(decided.decision.rawValue)
        bindings.append(decided.decidedAt)
        bindings.append(decided.receipt)
        OutboxRow.bind(events, into: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
}
