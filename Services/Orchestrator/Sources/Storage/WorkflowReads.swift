import Contracts
import Foundation
import PostgresNIO
import ServiceKit

/// The reads the API and the event stream make of the workflow tables, outside any
/// transaction: lists, the view of one workflow, its history, who may see it.
struct WorkflowReads: Sendable {
    let database: Database

    /// A page of `list`: the filters, and where the previous page ended.
    struct Filter {
        var status: WorkflowStatus?
        var type: String?
        var requester: String?
        var createdAfter: Date?
        var after: (Int64, WorkflowID)?
        var limit: Int
    }

    /// The workflows `filter` selects, oldest first, and the cursor of the next page.
    func list(_ filter: Filter) async throws -> (items: [WorkflowSummary], next: (Int64, WorkflowID)?) {
        let status = filter.status?.rawValue
        let rows = try await database.query(
            """
            SELECT id, type, requester, status, created_at, updated_at, (extract(epoch FROM created_at) * 1000000)::bigint FROM workflows
            WHERE (\(status)::text IS NULL OR status = \(status))
              AND (\(filter.type)::text IS NULL OR type = \(filter.type))
              AND (\(filter.requester)::text IS NULL OR requester = \(filter.requester))
              AND (\(filter.createdAfter)::timestamptz IS NULL OR created_at > \(filter.createdAfter))
              AND (\(filter.after?.0)::bigint IS NULL OR ((extract(epoch FROM created_at) * 1000000)::bigint, id) > (\(filter.after?.0), \(filter.after?.1)))
            ORDER BY created_at, id LIMIT \(filter.limit + 1)
            """)
        var items: [WorkflowSummary] = []
        var last: (Int64, WorkflowID)?
        for try await (id, type, requester, status, created, updated, micros) in rows.decode((WorkflowID, String, String, String, Date, Date, Int64).self) {
            if items.count == filter.limit { return (items, last) }
            items.append(WorkflowSummary(id: id, type: type, requester: requester, status: status, createdAt: created, updatedAt: updated))
            last = (micros, id)
        }
        return (items, nil)
    }

    /// Workflow `id` with its steps, or nil.
    func view(of id: WorkflowID) async throws -> WorkflowView? {
        let rows = try await database.query(
            """
            SELECT type, requester, input::text, status, outcome, reason, template_name, template_version, created_at, updated_at
            FROM workflows WHERE id = \(id)
            """)
        var view: WorkflowView?
        for try await (type, requester, input, status, outcome, reason, template, version, created, updated) in rows.decode(
            (String, String, String, String, String?, String?, String?, Int?, Date, Date).self)
        {
            view = WorkflowView(
                id: id.description, type: type, requester: requester, status: status, outcome: outcome, reason: reason,
                template: template, templateVersion: version, input: JSONColumn.object(input), steps: [], createdAt: created, updatedAt: updated)
        }
        guard var view else { return nil }
        let steps = try await database.query(
            """
            SELECT name, kind, status, approval_id, attempt, round, output::text, error, compensation_status, updated_at
            FROM workflow_steps WHERE workflow_id = \(id) ORDER BY position
            """)
        for try await (name, kind, status, approval, attempt, round, output, error, compensation, updated) in steps.decode(
            (String, String, String, ApprovalID?, Int, Int, String?, String?, String?, Date).self)
        {
            view.steps.append(
                StepView(
                    name: name, kind: kind, status: status, approvalId: approval?.description, attempt: attempt, round: round,
                    output: output.map(JSONColumn.object), error: error, compensation: compensation, updatedAt: updated))
        }
        return view
    }

    /// Whether workflow `id` exists.
    func exists(_ id: WorkflowID) async throws -> Bool {
        try await database.returnsRow("SELECT 1 FROM workflows WHERE id = \(id)")
    }

    /// Whether `principal` may see workflow `id`: an admin any, an agent its own, an
    /// approver one with an approval step that names them (as an approver or at an
    /// escalation level).
    func isVisible(_ id: WorkflowID, to principal: Principal) async throws -> Bool {
        let subject = principal.subject
        let visible: PostgresQuery
        switch principal.role {
        case .admin:
            return true
        case .agent:
            visible = "SELECT 1 FROM workflows WHERE id = \(id) AND requester = \(subject)"
        case .approver:
            visible = """
                SELECT 1 FROM workflow_steps WHERE workflow_id = \(id) AND kind = 'approval'
                  AND (definition->'approval'->'approvers' ? \(subject)
                       OR EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(definition->'approval'->'policy'->'escalation', '[]')) AS level
                                  WHERE level->'approvers' ? \(subject)))
                LIMIT 1
                """
        }
        return try await database.returnsRow(visible)
    }

    /// The history entries of several workflows, each after its own sequence, in one query
    /// (at most `limit` in all; nil: all of them).
    func entries(of ids: [WorkflowID], after sequences: [Int64], limit: Int? = 5000) async throws -> [WorkflowID: [HistoryEntry]] {
        let rows = try await database.query(
            """
            SELECT h.workflow_id, h.id, h.at, h.event, h.from_status, h.to_status, h.step, h.actor, h.detail::text
            FROM workflow_history h JOIN unnest(\(ids.map(\.uuid))::uuid[], \(sequences)::int8[]) AS w(id, after) ON h.workflow_id = w.id AND h.id > w.after
            ORDER BY h.id LIMIT \(limit)
            """)
        var found: [WorkflowID: [HistoryEntry]] = [:]
        for try await (workflow, seq, at, event, from, to, step, actor, detail) in rows.decode(
            (WorkflowID, Int64, Date, String, String?, String?, String?, String, String).self)
        {
            found[workflow, default: []].append(
                HistoryEntry(
                    sequence: seq, at: at, event: event, fromStatus: from, toStatus: to, step: step, actor: actor, detail: JSONColumn.object(detail)))
        }
        return found
    }

    /// Every history entry after `sequence` of workflow `id`, oldest first.
    func entries(of id: WorkflowID, after sequence: Int64) async throws -> [HistoryEntry] {
        try await entries(of: [id], after: [sequence], limit: nil)[id] ?? []
    }

    /// The approval steps workflows wait on, and since when (for `hitl doctor`).
    func waiting() async throws -> [WaitingStep] {
        let rows = try await database.query(
            """
            SELECT s.workflow_id, s.name, s.approval_id, s.updated_at FROM workflow_steps s JOIN workflows w ON w.id = s.workflow_id
            WHERE s.status = 'waiting' AND s.approval_id IS NOT NULL AND w.status = 'waiting_approval' ORDER BY s.updated_at LIMIT 10000
            """)
        var items: [WaitingStep] = []
        for try await (workflow, step, approval, since) in rows.decode((WorkflowID, String, ApprovalID, Date).self) {
            items.append(WaitingStep(workflowId: workflow.description, step: step, approvalId: approval.description, since: since))
        }
        return items
    }

    /// The conversation of workflow `id`, oldest first.
    func messages(of id: WorkflowID) async throws -> [WorkflowMessage] {
        let rows = try await database.query("SELECT id, at, kind, author, step, text FROM workflow_messages WHERE workflow_id = \(id) ORDER BY id")
        var items: [WorkflowMessage] = []
        for try await (sequence, at, kind, author, step, text) in rows.decode((Int64, Date, String, String, String?, String).self) {
            items.append(WorkflowMessage(sequence: sequence, at: at, kind: kind, author: author, step: step, text: text))
        }
        return items
    }
}

/// One message of a workflow's conversation.
struct WorkflowMessage: Encodable, Sendable {
    var sequence: Int64
    var at: Date
    var kind: String
    var author: String
    var step: String?
    var text: String
}
