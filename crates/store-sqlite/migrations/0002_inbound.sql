-- Inbound: sources, contacts, the event log, idempotency keys, rejections and samples.

CREATE TABLE sources (
    id                        BLOB    NOT NULL PRIMARY KEY,
    workspace_id              BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                      TEXT    NOT NULL,
    kind                      TEXT    NOT NULL CHECK (kind IN ('generic', 'posthog', 'mapped')),
    enabled                   INTEGER NOT NULL DEFAULT 1,
    token_hash                BLOB    NOT NULL,
    token_hint                TEXT    NOT NULL,
    -- The token before the last rotation, valid until previous_token_expires_at (grace period).
    previous_token_hash       BLOB,
    previous_token_expires_at INTEGER,
    rate_limit_per_second     INTEGER,
    mapping                   TEXT,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX sources_token_hash ON sources (token_hash);
CREATE INDEX sources_previous_token_hash ON sources (previous_token_hash) WHERE previous_token_hash IS NOT NULL;
CREATE INDEX sources_workspace ON sources (workspace_id, id);

CREATE TABLE contacts (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT,
    user_id      TEXT,
    phone        TEXT,
    name         TEXT,
    first_name   TEXT,
    last_name    TEXT,
    attributes   TEXT    NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX contacts_email ON contacts (workspace_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX contacts_user_id ON contacts (workspace_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX contacts_phone ON contacts (workspace_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX contacts_workspace ON contacts (workspace_id, id);

-- The event log. source_id has no foreign key: deleting a source keeps its events.
CREATE TABLE events (
    id              BLOB    NOT NULL PRIMARY KEY,
    workspace_id    BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source_id       BLOB,
    contact_id      BLOB    REFERENCES contacts (id) ON DELETE CASCADE,
    name            TEXT,
    properties      TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    idempotency_key TEXT,
    method          TEXT,
    content_type    TEXT,
    body            BLOB,
    outcome         TEXT    NOT NULL
) STRICT;
CREATE INDEX events_workspace ON events (workspace_id, id);
CREATE INDEX events_contact ON events (contact_id, id) WHERE contact_id IS NOT NULL;
CREATE INDEX events_name ON events (workspace_id, name, id) WHERE name IS NOT NULL;
CREATE INDEX events_source ON events (source_id, id) WHERE source_id IS NOT NULL;
CREATE INDEX events_received ON events (workspace_id, received_at);

CREATE TABLE idempotency_keys (
    source_id  BLOB    NOT NULL,
    key        TEXT    NOT NULL,
    event_id   BLOB    NOT NULL,
    contact_id BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (source_id, key)
) STRICT;

CREATE TABLE source_rejections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id   BLOB    NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    received_at INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    code        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    body_prefix BLOB    NOT NULL
) STRICT;
CREATE INDEX source_rejections_source ON source_rejections (source_id, id);
-- Expired keys are purged by created_at (housekeeping).
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE source_samples (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id   BLOB    NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    received_at INTEGER NOT NULL,
    body        TEXT    NOT NULL
) STRICT;
CREATE INDEX source_samples_source ON source_samples (source_id, id);
