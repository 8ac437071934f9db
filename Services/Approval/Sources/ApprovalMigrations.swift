import ServiceKit

/// The approval service's schema: one row per approval, decided at most once.
enum ApprovalMigrations {
    static let all: [Migration] = [
        Migration(
            version: 2, name: "approvals",
            statements: [
                """
                CREATE TABLE approvals (
                    id uuid PRIMARY KEY,
                    workflow_id text NOT NULL,
                    workflow_type text NOT NULL,
                    step text NOT NULL,
                    requester text NOT NULL,
                    approvers jsonb NOT NULL,
                    context jsonb NOT NULL,
                    status text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
                    deadline timestamptz NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    decided_by text,
                    comment text,
                    channel text,
                    decided_at timestamptz)
                """,
                "CREATE INDEX approvals_by_workflow ON approvals (workflow_id)",
                "CREATE INDEX approvals_pending ON approvals (created_at) WHERE status = 'pending'",
            ]),
        Migration(
            version: 3, name: "outcomes",
            statements: [
                "ALTER TABLE approvals DROP CONSTRAINT approvals_status_check",
                """
                ALTER TABLE approvals ADD CONSTRAINT approvals_status_check
                    CHECK (status IN ('pending', 'approved', 'rejected', 'changes_requested', 'expired', 'cancelled'))
                """,
                "ALTER TABLE approvals ADD COLUMN decision text, ADD COLUMN changes jsonb",
            ]),
        Migration(
            version: 4, name: "policies",
            statements: [
                // approvers holds the resolved users; requested_approvers what the request named.
                """
                ALTER TABLE approvals
                    ADD COLUMN policy jsonb NOT NULL DEFAULT '{"policy":{},"assignees":[],"vetoers":[]}',
                    ADD COLUMN requested_approvers jsonb NOT NULL DEFAULT '[]'
                """,
                // Approvals created before policies: any one of their approvers decides.
                """
                UPDATE approvals SET requested_approvers = approvers,
                       policy = jsonb_build_object('policy', '{}'::jsonb, 'assignees', approvers, 'vetoers', '[]'::jsonb)
                """,
                """
                CREATE TABLE approval_votes (
                    approval_id uuid NOT NULL REFERENCES approvals (id),
                    approver text NOT NULL,
                    decision text NOT NULL,
                    comment text,
                    changes jsonb,
                    channel text NOT NULL,
                    voted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    PRIMARY KEY (approval_id, approver))
                """,
            ]),
        Migration(
            version: 5, name: "delegations",
            statements: [
                """
                CREATE TABLE delegations (
                    id bigserial PRIMARY KEY,
                    approver text NOT NULL,
                    delegate text NOT NULL,
                    starts_at timestamptz NOT NULL,
                    ends_at timestamptz NOT NULL,
                    reason text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    CHECK (ends_at > starts_at AND approver <> delegate))
                """,
                "CREATE INDEX delegations_by_end ON delegations (ends_at)",
                "ALTER TABLE approval_votes ADD COLUMN on_behalf_of text",
            ]),
        Migration(
            version: 6, name: "decision links",
            statements: [
                """
                CREATE TABLE used_decision_links (
                    token_id text PRIMARY KEY,
                    approval_id uuid NOT NULL REFERENCES approvals (id),
                    used_at timestamptz NOT NULL DEFAULT now())
                """,
                "ALTER TABLE approvals ADD COLUMN form jsonb, ADD COLUMN fields jsonb",
                "ALTER TABLE approval_votes ADD COLUMN fields jsonb",
                """
                CREATE TABLE fallback_jobs (
                    approval_id uuid PRIMARY KEY REFERENCES approvals (id),
                    leased_until timestamptz,
                    created_at timestamptz NOT NULL DEFAULT now())
                """,
            ]),
        Migration(
            version: 7, name: "approver groups",
            statements: [
                """
                CREATE TABLE approver_groups (
                    name text PRIMARY KEY,
                    members jsonb NOT NULL,
                    updated_by text NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now())
                """
            ]),
        Migration(
            version: 8, name: "workflow threads",
            statements: [
                // The workflows' conversation, as the orchestrator passes it on, for the web pages.
                """
                CREATE TABLE thread_messages (
                    workflow_id text NOT NULL,
                    sequence bigint NOT NULL,
                    kind text NOT NULL,
                    author text NOT NULL,
                    step text,
                    text text NOT NULL,
                    at timestamptz NOT NULL,
                    PRIMARY KEY (workflow_id, sequence))
                """
            ]),
        Migration(
            version: 9, name: "reminders sent",
            statements: [
                // Which reminder comes next, so that closing the approval cancels it.
                "ALTER TABLE approvals ADD COLUMN reminders_sent integer NOT NULL DEFAULT 0"
            ]),
        Migration(
            version: 10, name: "receipts",
            statements: [
                // The gate that required the approval, and the signed receipt of its decision.
                "ALTER TABLE approvals ADD COLUMN rule text, ADD COLUMN receipt text"
            ]),
        Migration(
            version: 11, name: "used sign-in links",
            statements: [
                // A sign-in link opens one session; kept while its approval is open.
                """
                CREATE TABLE used_sign_ins (
                    token_id text PRIMARY KEY,
                    approval_id uuid NOT NULL REFERENCES approvals (id),
                    used_at timestamptz NOT NULL DEFAULT now())
                """
            ]),
    ]
}
