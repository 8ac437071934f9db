import Contracts
import PostgresNIO
import ServiceKit

/// The rows a session's change appends, as the CTEs `history`, `messages`, `queued_calls`
/// and `kept_receipts` of the statement that saves it, for workflow `$1`: parameters
/// `$3…$8` the history (event, from, to, step, actor, detail), `$9…$12` the messages
/// (kind, author, step, text), `$13…$17` the queued calls (kind, step, attempt,
/// compensation, request), `$18…$21` the receipts (step, round, receipt, input hash). Absent
/// values in the arrays go in as empty strings and come back as NULL: step names and
/// statuses are never empty.
enum AppendedRows {
    static let bindingDataTypes: [PostgresDataType] =
        Array(repeating: .textArray, count: 10) + [.textArray, .textArray, .int8Array, .boolArray, .textArray]
        + [.textArray, .int8Array, .textArray, .textArray]

    /// The four CTEs; with `condition`, each writes only when it holds.
    static func ctes(onlyIf condition: String? = nil) -> String {
        let guarded = condition.map { "WHERE \($0)" } ?? ""
        return """
            history AS (
                INSERT INTO workflow_history (workflow_id, event, from_status, to_status, step, actor, detail)
                SELECT $1, event, nullif(from_status, ''), nullif(to_status, ''), nullif(step, ''), actor, detail::jsonb
                FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                     WITH ORDINALITY AS h(event, from_status, to_status, step, actor, detail, position)
                \(guarded) ORDER BY position),
            messages AS (
                INSERT INTO workflow_messages (workflow_id, kind, author, step, text)
                SELECT $1, kind, author, nullif(step, ''), text
                FROM unnest($9::text[], $10::text[], $11::text[], $12::text[]) WITH ORDINALITY AS m(kind, author, step, text, position)
                \(guarded) ORDER BY position),
            queued_calls AS (
                INSERT INTO http_calls (kind, workflow_id, step, attempt, compensation, request)
                SELECT kind, $1, step, attempt, compensation, request::jsonb
                FROM unnest($13::text[], $14::text[], $15::integer[], $16::boolean[], $17::text[])
                     WITH ORDINALITY AS q(kind, step, attempt, compensation, request, position)
                \(guarded) ORDER BY position),
            kept_receipts AS (
                INSERT INTO approval_receipts (workflow_id, step, round, receipt, input_sha256)
                SELECT $1, step, round, receipt, input_sha256
                FROM unnest($18::text[], $19::integer[], $20::text[], $21::text[]) AS r(step, round, receipt, input_sha256)
                \(guarded) ON CONFLICT DO NOTHING)
            """
    }

    /// The columns of changed steps, as `$2` carries them (a JSON array of objects, see
    /// `WorkflowRepository.columns(of:)`).
    static let stepColumns = """
        jsonb_to_recordset($2::jsonb) AS c(
            position integer, status text, approval_id uuid, output jsonb, attempt integer, tries integer, round integer,
            held jsonb, feedback text, error text, compensation_status text, compensation_attempt integer, compensation_tries integer)
        """

    /// Binds `$3…$21` from `changes`, the queued calls' requests as JSON text.
    static func bind(_ changes: WorkflowChanges, into bindings: inout PostgresBindings) throws {
        let (history, messages, calls, receipts) = (changes.history, changes.messages, changes.httpCalls, changes.receipts)
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
        bindings.append(calls.map(\.kind.rawValue))
        bindings.append(calls.map(\.step))
        bindings.append(calls.map(\.attempt))
        bindings.append(calls.map(\.compensation))
        bindings.append(try calls.map { try JSONColumn.text($0.request) })
        bindings.append(receipts.map(\.step))
        bindings.append(receipts.map(\.round))
        bindings.append(receipts.map(\.receipt))
        bindings.append(receipts.map(\.inputSha256))
    }
}

/// The statement that saves a workflow session: the changed step rows, the rows the change
/// appends (`AppendedRows`), the dropped http calls, and the workflow row guarded by the
/// version it was loaded at; answers the new version, or no row when another transaction
/// changed the workflow.
///
/// A prepared statement: every workflow saves several times, and as an unnamed statement
/// this one, seven CTEs, took longer to parse and plan (0.85 ms under the benchmark) than to
/// run. Prepared, Postgres plans it for its first five executions on a connection and then
/// keeps a generic plan. PostgresNIO prepares it once per connection.
///
/// Parameters: `$1` the workflow id; `$2` the changed steps as a JSON array of their
/// columns; `$3…$21` the appended rows; `$22` the steps whose untaken task calls are
/// dropped; `$23…$27` the workflow's status, current step, input, outcome and reason; `$28`
/// the version it was loaded at; `$29…$33` the transaction's events so far
/// (`Transaction.takeEvents`), which a stale version rolls back with everything else.
struct SaveWorkflow: PostgresPreparedStatement {
    static let sql = """
        WITH changed_steps AS (
            UPDATE workflow_steps s
            SET status = c.status, approval_id = c.approval_id, output = c.output, attempt = c.attempt, tries = c.tries,
                round = c.round, held = c.held, feedback = c.feedback, error = c.error, compensation_status = c.compensation_status,
                compensation_attempt = c.compensation_attempt, compensation_tries = c.compensation_tries, updated_at = now()
            FROM \(AppendedRows.stepColumns)
            WHERE s.workflow_id = $1 AND s.position = c.position),
        \(AppendedRows.ctes()),
        dropped_calls AS (
            DELETE FROM http_calls
            WHERE workflow_id = $1 AND kind = 'task' AND step = ANY($22::text[]) AND leased_until IS NULL),
        events AS (\(OutboxRow.insertStatement(boundFrom: 29)))
        UPDATE workflows SET status = $23, current_step = $24, input = $25::jsonb, outcome = $26, reason = $27,
               version = version + 1, updated_at = now()
        WHERE id = $1 AND version = $28 RETURNING version
        """

    /// The types PostgresNIO binds the values as; Postgres would otherwise infer `jsonb` for
    /// `$25::jsonb` and read the text it is sent as binary jsonb.
    static let bindingDataTypes: [PostgresDataType] =
        [.uuid, .text] + AppendedRows.bindingDataTypes + [.textArray] + [.text, .int8, .text, .text, .text, .int8] + OutboxRow.bindingDataTypes

    typealias Row = Int

    let id: WorkflowID
    let steps: String
    let changes: WorkflowChanges
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
        try AppendedRows.bind(changes, into: &bindings)
        bindings.append(changes.droppedCallSteps)
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

/// Stores a submitted workflow as starting it left it, in one statement: the workflow row,
/// its steps, the rows the start appended (`AppendedRows`) and its events; nothing at all
/// when the requester used the idempotency key before. Answers the id when it stored.
/// Every submission runs it: a submission is this statement (and the gates' read), with no
/// insert-then-update of the same rows.
///
/// Parameters: `$1` the workflow id; `$2` every step's columns as `SaveWorkflow` takes the
/// changed ones; `$3…$21` the appended rows; `$22…$33` the workflow row (idempotency key,
/// request hash, type, requester, input, status, current step, outcome, reason, callback URL,
/// template name and version); `$34…$36` the steps' names, kinds and definitions, in order;
/// `$37…$41` the start's events (not the transaction's: those stay for what follows, even
/// when this statement writes nothing).
struct StartWorkflow: PostgresPreparedStatement {
    static let sql = """
        WITH created AS (
            INSERT INTO workflows (
                id, idempotency_key, request_hash, type, requester, input, status, current_step, outcome, reason, callback_url,
                template_name, template_version)
            VALUES ($1, $22, $23, $24, $25, $26::jsonb, $27, $28, $29, $30, $31, $32, $33)
            ON CONFLICT (requester, idempotency_key) DO NOTHING RETURNING id),
        steps AS (
            INSERT INTO workflow_steps (
                workflow_id, position, name, kind, definition, status, approval_id, output, attempt, tries, round, held, feedback, error,
                compensation_status, compensation_attempt, compensation_tries)
            SELECT created.id, d.position - 1, d.name, d.kind, d.definition::jsonb, c.status, c.approval_id, c.output, c.attempt, c.tries,
                   c.round, c.held, c.feedback, c.error, c.compensation_status, c.compensation_attempt, c.compensation_tries
            FROM created, unnest($34::text[], $35::text[], $36::text[]) WITH ORDINALITY AS d(name, kind, definition, position)
                 JOIN \(AppendedRows.stepColumns) ON c.position = d.position - 1),
        \(AppendedRows.ctes(onlyIf: "EXISTS (SELECT FROM created)")),
        events AS (\(OutboxRow.insertStatement(boundFrom: 37, onlyIf: "EXISTS (SELECT FROM created)")))
        SELECT id FROM created
        """
    static let bindingDataTypes: [PostgresDataType] =
        [.uuid, .text] + AppendedRows.bindingDataTypes + Array(repeating: .text, count: 6) + [.int8] + Array(repeating: .text, count: 4) + [.int8]
        + [.textArray, .textArray, .textArray] + OutboxRow.bindingDataTypes
    typealias Row = PostgresRow

    let workflow: WorkflowRow
    let submission: WorkflowSubmitted
    let requestHash: String
    let template: (name: String, version: Int)?
    /// Every step's columns, what the start appended, and its events.
    let steps: String
    let changes: WorkflowChanges
    let names: [String]
    let kinds: [String]
    let definitions: [String]
    let input: String
    let events: [OutboxRow]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: Self.bindingDataTypes.count)
        bindings.append(workflow.id)
        bindings.append(steps)
        try AppendedRows.bind(changes, into: &bindings)
        bindings.append(submission.idempotencyKey)
        bindings.append(requestHash)
        bindings.append(workflow.type)
        bindings.append(workflow.requester)
        bindings.append(input)
        bindings.append(workflow.status.rawValue)
        bindings.append(workflow.currentStep)
        bindings.append(workflow.outcome?.rawValue)
        bindings.append(workflow.reason)
        bindings.append(workflow.callbackURL)
        bindings.append(template?.name)
        bindings.append(template?.version)
        bindings.append(names)
        bindings.append(kinds)
        bindings.append(definitions)
        OutboxRow.bind(events, into: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}
