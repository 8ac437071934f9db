import ServiceKit

/// The orchestrator's schema: workflows, their steps and history, and the dead-letter index.
enum OrchestratorMigrations {
    static let all: [Migration] = [
        Migration(
            version: 2, name: "workflows",
            statements: [
                """
                CREATE TABLE workflows (
                    id uuid PRIMARY KEY,
                    idempotency_key text NOT NULL UNIQUE,
                    request_hash text NOT NULL,
                    type text NOT NULL,
                    requester text NOT NULL,
                    input jsonb NOT NULL,
                    status text NOT NULL,
                    current_step integer NOT NULL DEFAULT 0,
                    version integer NOT NULL DEFAULT 1,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now())
                """,
                """
                CREATE TABLE workflow_steps (
                    workflow_id uuid NOT NULL REFERENCES workflows (id),
                    position integer NOT NULL,
                    name text NOT NULL,
                    kind text NOT NULL,
                    definition jsonb NOT NULL,
                    status text NOT NULL DEFAULT 'pending',
                    approval_id uuid UNIQUE,
                    output jsonb,
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workflow_id, position))
                """,
                """
                CREATE TABLE workflow_history (
                    id bigserial PRIMARY KEY,
                    workflow_id uuid NOT NULL REFERENCES workflows (id),
                    at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    event text NOT NULL,
                    from_status text,
                    to_status text,
                    step text,
                    actor text NOT NULL,
                    detail jsonb NOT NULL DEFAULT '{}')
                """,
                "CREATE INDEX workflow_history_by_workflow ON workflow_history (workflow_id, id)",
            ]),
        Migration(
            version: 3, name: "dead letters",
            statements: [
                """
                CREATE TABLE dead_letters (
                    id uuid PRIMARY KEY,
                    service text NOT NULL,
                    original_topic text NOT NULL,
                    event_id text,
                    event_type text,
                    error text NOT NULL,
                    attempts integer NOT NULL,
                    dead_lettered_at timestamptz NOT NULL,
                    record jsonb NOT NULL,
                    indexed_at timestamptz NOT NULL DEFAULT now())
                """,
                "CREATE INDEX dead_letters_by_time ON dead_letters (dead_lettered_at)",
                """
                CREATE TABLE dead_letter_replays (
                    id bigserial PRIMARY KEY,
                    dead_letter_id uuid NOT NULL REFERENCES dead_letters (id),
                    replayed_by text NOT NULL,
                    replayed_at timestamptz NOT NULL DEFAULT now())
                """,
            ]),
        Migration(
            version: 4, name: "engine",
            statements: [
                """
                ALTER TABLE workflows
                    ADD COLUMN outcome text,
                    ADD COLUMN reason text,
                    ADD COLUMN callback_url text,
                    ADD COLUMN template_name text,
                    ADD COLUMN template_version integer
                """,
                "CREATE INDEX workflows_by_creation ON workflows (created_at, id)",
                """
                ALTER TABLE workflow_steps
                    ADD COLUMN attempt integer NOT NULL DEFAULT 0,
                    ADD COLUMN tries integer NOT NULL DEFAULT 0,
                    ADD COLUMN round integer NOT NULL DEFAULT 1,
                    ADD COLUMN held jsonb,
                    ADD COLUMN feedback text,
                    ADD COLUMN error text,
                    ADD COLUMN compensation_status text,
                    ADD COLUMN compensation_attempt integer NOT NULL DEFAULT 0,
                    ADD COLUMN compensation_tries integer NOT NULL DEFAULT 0
                """,
                """
                CREATE TABLE workflow_messages (
                    id bigserial PRIMARY KEY,
                    workflow_id uuid NOT NULL REFERENCES workflows (id),
                    at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    kind text NOT NULL,
                    author text NOT NULL,
                    step text,
                    text text NOT NULL)
                """,
                "CREATE INDEX workflow_messages_by_workflow ON workflow_messages (workflow_id, id)",
                """
                CREATE TABLE templates (
                    name text NOT NULL,
                    version integer NOT NULL,
                    steps jsonb NOT NULL,
                    description text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (name, version))
                """,
                """
                CREATE TABLE http_calls (
                    id bigserial PRIMARY KEY,
                    kind text NOT NULL DEFAULT 'task' CHECK (kind IN ('task', 'callback')),
                    tries integer NOT NULL DEFAULT 0,
                    workflow_id uuid NOT NULL REFERENCES workflows (id),
                    step text NOT NULL,
                    attempt integer NOT NULL,
                    compensation boolean NOT NULL,
                    request jsonb NOT NULL,
                    leased_until timestamptz,
                    created_at timestamptz NOT NULL DEFAULT now())
                """,
            ]),
        Migration(
            version: 5, name: "trust",
            statements: [
                // An idempotency key is the requester's own: another agent's key neither
                // collides with it nor reveals its workflow.
                "ALTER TABLE workflows DROP CONSTRAINT workflows_idempotency_key_key",
                "ALTER TABLE workflows ADD CONSTRAINT workflows_requester_idempotency_key UNIQUE (requester, idempotency_key)",
                """
                CREATE TABLE gates (
                    name text NOT NULL,
                    version integer NOT NULL,
                    gate jsonb,
                    changed_by text NOT NULL,
                    changed_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (name, version))
                """,
            ]),
        Migration(
            version: 6, name: "decision receipts",
            statements: [
                // The receipt of each approved approval round, and the input it approved, so a
                // step that acts carries it and a changed input is asked again.
                """
                CREATE TABLE approval_receipts (
                    workflow_id uuid NOT NULL REFERENCES workflows (id),
                    step text NOT NULL,
                    round integer NOT NULL,
                    receipt text NOT NULL,
                    input_sha256 text NOT NULL,
                    at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (workflow_id, step, round))
                """
            ]),
        Migration(
            version: 7, name: "append-only logs without foreign keys",
            statements: [
                // History and messages are appended by the statement that saves their workflow
                // (under its row lock), by a message post that selects the workflow, or for a
                // queued callback of it; workflows are never deleted. The foreign keys never
                // refused a row, and cost every appended row a key-share lock on the workflow
                // (eight per approve flow).
                "ALTER TABLE workflow_history DROP CONSTRAINT IF EXISTS workflow_history_workflow_id_fkey",
                "ALTER TABLE workflow_messages DROP CONSTRAINT IF EXISTS workflow_messages_workflow_id_fkey",
            ]),
    ]
}
