-- Email delivery: sending domains, the suppression list, transports, and delivery results.

-- Signs unsubscribe links; set the first time a link is made.
ALTER TABLE workspaces ADD COLUMN email_secret text;

ALTER TABLE messages ADD COLUMN internet_message_id text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reply text;
-- The From address's domain: held messages are released by domain.
ALTER TABLE messages ADD COLUMN from_domain text NOT NULL DEFAULT '';
CREATE INDEX messages_held ON messages (workspace_id, from_domain) WHERE status = 'held';

CREATE TABLE domains (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    selector     text        NOT NULL,
    algorithm    text        NOT NULL,
    private_key  text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('pending', 'verified', 'failed')),
    records      jsonb       NOT NULL,
    checks       jsonb       NOT NULL,
    warning      text,
    created_at   timestamptz NOT NULL,
    checked_at   timestamptz,
    verified_at  timestamptz
);
CREATE UNIQUE INDEX domains_name ON domains (workspace_id, name);
CREATE INDEX domains_checked ON domains (checked_at);

CREATE TABLE suppressions (
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        text        NOT NULL,
    contact_id   uuid,
    reason       text        NOT NULL,
    detail       text,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, email)
);

CREATE TABLE transports (
    workspace_id uuid        NOT NULL PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    settings     jsonb       NOT NULL,
    password     text,
    updated_at   timestamptz NOT NULL
);
