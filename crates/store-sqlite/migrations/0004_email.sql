-- Email delivery: sending domains, the suppression list, transports, and delivery results.

-- Signs unsubscribe links; set the first time a link is made.
ALTER TABLE workspaces ADD COLUMN email_secret TEXT;

ALTER TABLE messages ADD COLUMN internet_message_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reply TEXT;
-- The From address's domain: held messages are released by domain.
ALTER TABLE messages ADD COLUMN from_domain TEXT NOT NULL DEFAULT '';
CREATE INDEX messages_held ON messages (workspace_id, from_domain) WHERE status = 'held';

CREATE TABLE domains (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    selector     TEXT    NOT NULL,
    algorithm    TEXT    NOT NULL,
    private_key  TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'verified', 'failed')),
    records      TEXT    NOT NULL,
    checks       TEXT    NOT NULL,
    warning      TEXT,
    created_at   INTEGER NOT NULL,
    checked_at   INTEGER,
    verified_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX domains_name ON domains (workspace_id, name);
CREATE INDEX domains_checked ON domains (checked_at);

CREATE TABLE suppressions (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL,
    contact_id   BLOB,
    reason       TEXT    NOT NULL,
    detail       TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, email)
) STRICT;

CREATE TABLE transports (
    workspace_id BLOB    NOT NULL PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    settings     TEXT    NOT NULL,
    password     TEXT,
    updated_at   INTEGER NOT NULL
) STRICT;
