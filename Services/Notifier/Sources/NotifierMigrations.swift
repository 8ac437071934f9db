import ServiceKit

/// The notifier's schema: one delivery per notification and channel, and each attempt.
enum NotifierMigrations {
    static let all: [Migration] = [
        Migration(
            version: 2, name: "deliveries",
            statements: [
                """
                CREATE TABLE deliveries (
                    id uuid PRIMARY KEY,
                    notification_id text NOT NULL,
                    channel text NOT NULL,
                    workflow_id text NOT NULL,
                    notification jsonb NOT NULL,
                    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL DEFAULT now(),
                    last_error text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    closed_at timestamptz,
                    UNIQUE (notification_id, channel))
                """,
                "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending'",
                """
                CREATE TABLE delivery_attempts (
                    delivery_id uuid NOT NULL REFERENCES deliveries (id),
                    attempt integer NOT NULL,
                    at timestamptz NOT NULL DEFAULT now(),
                    succeeded boolean NOT NULL,
                    detail text,
                    PRIMARY KEY (delivery_id, attempt))
                """,
            ]),
        Migration(
            version: 3, name: "deliveries per recipient",
            statements: [
                // Email and Slack deliver to each recipient on their own (each message carries
                // that recipient's links); webhook and log deliveries keep the recipient ''.
                "ALTER TABLE deliveries ADD COLUMN recipient text NOT NULL DEFAULT ''",
                "ALTER TABLE deliveries DROP CONSTRAINT deliveries_notification_id_channel_key",
                "ALTER TABLE deliveries ADD CONSTRAINT deliveries_once UNIQUE (notification_id, channel, recipient)",
            ]),
        Migration(
            version: 4, name: "slack messages",
            statements: [
                // The messages posted about an approval, to replace once it is closed.
                """
                CREATE TABLE slack_messages (
                    approval_id text NOT NULL,
                    recipient text NOT NULL,
                    notification_id text NOT NULL,
                    channel text NOT NULL,
                    ts text NOT NULL,
                    posted_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (channel, ts))
                """,
                "CREATE INDEX slack_messages_by_approval ON slack_messages (approval_id, recipient)",
                // Approvals known to be closed, with what their messages now say.
                "CREATE TABLE slack_closed (approval_id text PRIMARY KEY, text text NOT NULL, closed_at timestamptz NOT NULL DEFAULT now())",
            ]),
        Migration(
            version: 5, name: "retries by timer, channel breakers",
            statements: [
                // `waiting`: a failed attempt waits for its retry timer in the timeout service.
                "ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check",
                "ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'waiting', 'delivered', 'failed'))",
                """
                CREATE TABLE channel_state (
                    channel text PRIMARY KEY,
                    failures integer NOT NULL,
                    open_until timestamptz)
                """,
            ]),
    ]
}
