import Contracts
import PostgresNIO
import ServiceKit

/// The statement that saves a workflow session: the changed step rows, the history,
/// messages, queued and dropped http calls and kept receipts it added, and the workflow row
/// guarded by the version it was loaded at; answers the new version, or no row when another
/// transaction changed the workflow.
///
/// A prepared statement: every workflow saves several times, and as an unnamed statement
/// this one, seven CTEs, took longer to parse and plan (0.85 ms under the benchmark) than to
/// run. Prepared, Postgres plans it for its first five executions on a connection and then
/// keeps a generic plan. PostgresNIO prepares it once per connection.
///
/// Parameters: `$1` the workflow id; `$2` the changed steps as a JSON array of their
/// columns; `$3…$8` the history (event, from, to, step, actor, detail); `$9…$12` the messages
/// (kind, author, step, text); `$13` the steps whose untaken task calls are dropped;
/// `$14…$18` the queued calls (kind, step, attempt, compensation, request); `$19…$22` the
/// receipts (step, round, receipt, input hash); `$23…$27` the workflow's status, current
/// step, input, outcome and reason; `$28` the version it was loaded at; `$29…$33` the
/// transaction's events so far (`Transaction.takeEvents`), which a stale version rolls back
/// with everything else. Absent values in the
/// arrays go in as empty strings and come back as NULL: step names and statuses are never empty.
struct SaveWorkflow: PostgresPreparedStatement {
    static let sql = """
        WITH changed_steps AS (
            UPDATE workflow_steps s
            SET status = c.status, approval_id = c.approval_id, output = c.output, attempt = c.attempt, tries = c.tries,
                round = c.round, held = c.held, feedback = c.feedback, error = c.error, compensation_status = c.compensation_status,
                compensation_attempt = c.compensation_attempt, compensation_tries = c.compensation_tries, updated_at = now()
            FROM jsonb_to_recordset($2::jsonb) AS c(
                position integer, status text, approval_id uuid, output jsonb, attempt integer, tries integer, round integer,
                held jsonb, feedback text, error text, compensation_status text, compensation_attempt integer, compensation_tries integer)
            WHERE s.workflow_id = $1 AND s.position = c.position),
        history AS (
            INSERT INTO workflow_history (workflow_id, event, from_status, to_status, step, actor, detail)
            SELECT $1, event, nullif(from_status, ''), nullif(to_status, ''), nullif(step, ''), actor, detail::jsonb
            FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                 WITH ORDINALITY AS h(event, from_status, to_status, step, actor, detail, position)
            ORDER BY position),
        messages AS (
            INSERT INTO workflow_messages (workflow_id, kind, author, step, text)
            SELECT $1, kind, author, nullif(step, ''), text
            FROM unnest($9::text[], $10::text[], $11::text[], $12::text[]) WITH ORDINALITY AS m(kind, author, step, text, position)
            ORDER BY position),
        dropped_calls AS (
            DELETE FROM http_calls
            WHERE workflow_id = $1 AND kind = 'task' AND step = ANY($13::text[]) AND leased_until IS NULL),
        queued_calls AS (
            INSERT INTO http_calls (kind, workflow_id, step, attempt, compensation, request)
            SELECT kind, $1, step, attempt, compensation, request::jsonb
            FROM unnest($14::text[], $15::text[], $16::integer[], $17::boolean[], $18::text[])
                 WITH ORDINALITY AS q(kind, step, attempt, compensation, request, position)
            ORDER BY position),
        kept_receipts AS (
            INSERT INTO approval_receipts (workflow_id, step, round, receipt, input_sha256)
            SELECT $1, step, round, receipt, input_sha256
            FROM unnest($19::text[], $20::integer[], $21::text[], $22::text[]) AS r(step, round, receipt, input_sha256)
            ON CONFLICT DO NOTHING),
        events AS (\(OutboxRow.insertStatement(boundFrom: 29)))
        UPDATE workflows SET status = $23, current_step = $24, input = $25::jsonb, outcome = $26, reason = $27,
               version = version + 1, updated_at = now()
        WHERE id = $1 AND version = $28 RETURNING version
        """

    /// The types PostgresNIO binds the values as; Postgres would otherwise infer `jsonb` for
    /// `$25::jsonb` and read the text it is sent as binary jsonb.
    static let bindingDataTypes: [PostgresDataType] =
        [.uuid, .text] + Array(repeating: .textArray, count: 11)
        + [.textArray, .textArray, .int8Array, .boolArray, .textArray]
        + [.textArray, .int8Array, .textArray, .textArray]
        + [.text, .int8, .text, .text, .text, .int8]
        + OutboxRow.bindingDataTypes

    typealias Row = Int

    let id: WorkflowID
    let steps: String
    let history: [WorkflowChanges.History]
    let messages: [WorkflowChanges.Message]
    let droppedCallSteps: [String]
    let calls: [WorkflowChanges.HTTPCall]
    let requests: [String]
    let receipts: [KeptReceipt]
    let status: String
    let currentStep: Int
    let input: String
    let outcome: String?
    let reason: String?
    let loadedVersion: Int
    let events: [OutboxRow]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: Self.bindingDataTypes.count)
        bindings.append(id)
        bindings.append(steps)
        bindings.append(history.map(\.event))
        bindings.append(history.map { $0.from?.rawValue ?? "" })
        bindings.append(history.map { $0.to?.rawValue ?? "" })
        bindings.append(history.map { $0.step ?? "" })
        bindings.append(history.map(\.actor))
        bindings.append(history.map(\.detail))
        bindings.append(messages.map(\.kind))
        bindings.append(messages.map(\.author))
        bindings.append(messages.map { $0.step ?? "" })
        bindings.append(messages.map(\.text))
        bindings.append(droppedCallSteps)
        bindings.append(calls.map(\.kind.rawValue))
        bindings.append(calls.map(\.step))
        bindings.append(calls.map(\.attempt))
        bindings.append(calls.map(\.compensation))
        bindings.append(requests)
        bindings.append(receipts.map(\.step))
        bindings.append(receipts.map(\.round))
        bindings.append(receipts.map(\.receipt))
        bindings.append(receipts.map(\.inputSha256))
        bindings.append(status)
        bindings.append(currentStep)
        bindings.append(input)
        bindings.append(outcome)
        bindings.append(reason)
        bindings.append(loadedVersion)
        OutboxRow.bind(events, into: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int {
        try row.decode(Int.self)
    }
}

/// The statements that load a workflow, run for every event a workflow receives: prepared,
/// like the save. Rows are decoded by `WorkflowRepository.load`.
protocol WorkflowByID: PreparedByID where Row == PostgresRow, ID == WorkflowID {}

extension WorkflowByID {
    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// The workflow row, locked for the transaction.
struct LockWorkflow: WorkflowByID {
    static let sql = """
        SELECT id, type, requester, input::text, status, current_step, version, outcome, reason, callback_url
        FROM workflows WHERE id = $1 FOR UPDATE
        """
    let id: WorkflowID
}

/// The workflow's steps, in order.
struct WorkflowSteps: WorkflowByID {
    static let sql = """
        SELECT position, name, definition::text, status, approval_id, output::text, attempt, tries, round, held::text,
               feedback, error, compensation_status, compensation_attempt, compensation_tries
        FROM workflow_steps WHERE workflow_id = $1 ORDER BY position
        """
    let id: WorkflowID
}

/// Inserts a submitted workflow and its steps, nothing when the requester used the
/// idempotency key before; answers the id when it inserted. Every submission runs it.
struct CreateWorkflow: PostgresPreparedStatement {
    static let sql = """
        WITH created AS (
            INSERT INTO workflows (id, idempotency_key, request_hash, type, requester, input, status, callback_url, template_name, template_version)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10)
            ON CONFLICT (requester, idempotency_key) DO NOTHING RETURNING id),
        steps AS (
            INSERT INTO workflow_steps (workflow_id, position, name, kind, definition)
            SELECT created.id, s.position - 1, s.name, s.kind, s.definition::jsonb
            FROM created, unnest($11::text[], $12::text[], $13::text[]) WITH ORDINALITY AS s(name, kind, definition, position))
        SELECT id FROM created
        """
    static let bindingDataTypes: [PostgresDataType] =
        [.uuid, .text, .text, .text, .text, .text, .text, .text, .text, .int8, .textArray, .textArray, .textArray]
    typealias Row = PostgresRow

    let id: WorkflowID
    let submission: WorkflowSubmitted
    let requestHash: String
    /// The input as JSON text.
    let input: String
    let template: (name: String, version: Int)?
    /// Each step's definition as JSON text.
    let definitions: [String]

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: Self.bindingDataTypes.count)
        bindings.append(id)
        bindings.append(submission.idempotencyKey)
        bindings.append(requestHash)
        bindings.append(submission.type)
        bindings.append(submission.requester)
        bindings.append(input)
        bindings.append(WorkflowStatus.running.rawValue)
        bindings.append(submission.callbackUrl)
        bindings.append(template?.name)
        bindings.append(template?.version)
        bindings.append(submission.steps.map(\.name))
        bindings.append(submission.steps.map(\.kind.rawValue))
        bindings.append(definitions)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}
