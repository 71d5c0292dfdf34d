-- Inbound: sources, contacts, the event log, idempotency keys, rejections and samples.
-- The same tables and index names as SQLite's 0002_inbound.sql; unique indexes are named
-- `<table>_<column>` because the store reports a unique violation by index name
-- (`contacts_email`, `contacts_user_id`, `contacts_phone`, `sources_token_hash`).

CREATE TABLE sources (
    id                        uuid        NOT NULL PRIMARY KEY,
    workspace_id              uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                      text        NOT NULL,
    kind                      text        NOT NULL CHECK (kind IN ('generic', 'posthog', 'mapped')),
    enabled                   boolean     NOT NULL DEFAULT true,
    token_hash                bytea       NOT NULL,
    token_hint                text        NOT NULL,
    -- The token before the last rotation, valid until previous_token_expires_at (grace period).
    previous_token_hash       bytea,
    previous_token_expires_at timestamptz,
    -- bigint: the domain's limit is a u32, which does not fit PostgreSQL's signed integer.
    rate_limit_per_second     bigint,
    mapping                   jsonb,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL
);
CREATE UNIQUE INDEX sources_token_hash ON sources (token_hash);
CREATE INDEX sources_previous_token_hash ON sources (previous_token_hash) WHERE previous_token_hash IS NOT NULL;
CREATE INDEX sources_workspace ON sources (workspace_id, id);

CREATE TABLE contacts (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        text,
    user_id      text,
    phone        text,
    name         text,
    first_name   text,
    last_name    text,
    attributes   jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
-- Partial, so any number of contacts may lack an identifier. Ingest's lookup
-- (`email = ANY($n)` etc.) implies `IS NOT NULL`, so it can use them.
CREATE UNIQUE INDEX contacts_email ON contacts (workspace_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX contacts_user_id ON contacts (workspace_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX contacts_phone ON contacts (workspace_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX contacts_workspace ON contacts (workspace_id, id);

-- The event log. source_id has no foreign key: deleting a source keeps its events. Deleting a
-- contact erases its events (the cascade uses events_contact).
CREATE TABLE events (
    id              uuid        NOT NULL PRIMARY KEY,
    workspace_id    uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source_id       uuid,
    contact_id      uuid        REFERENCES contacts (id) ON DELETE CASCADE,
    name            text,
    properties      jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    idempotency_key text,
    -- The request as received.
    method          text,
    content_type    text,
    body            bytea,
    -- herald_domain::EventOutcome as JSON.
    outcome         jsonb       NOT NULL
);
CREATE INDEX events_workspace ON events (workspace_id, id);
CREATE INDEX events_contact ON events (contact_id, id) WHERE contact_id IS NOT NULL;
CREATE INDEX events_name ON events (workspace_id, name, id) WHERE name IS NOT NULL;
CREATE INDEX events_source ON events (source_id, id) WHERE source_id IS NOT NULL;
CREATE INDEX events_received ON events (workspace_id, received_at);

-- A key maps to the receipt of the request that first carried it. Ingest replaces a row only
-- once it is older than the idempotency window.
CREATE TABLE idempotency_keys (
    source_id  uuid        NOT NULL,
    key        text        NOT NULL,
    event_id   uuid        NOT NULL,
    contact_id uuid,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (source_id, key)
);
-- Expired keys are purged by created_at (housekeeping).
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Short per-source logs, trimmed on every append; ids order them by arrival.
CREATE TABLE source_rejections (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id   uuid        NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    received_at timestamptz NOT NULL,
    status      integer     NOT NULL,
    code        text        NOT NULL,
    reason      text        NOT NULL,
    body_prefix bytea       NOT NULL
);
CREATE INDEX source_rejections_source ON source_rejections (source_id, id);

CREATE TABLE source_samples (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id   uuid        NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    received_at timestamptz NOT NULL,
    body        jsonb       NOT NULL
);
CREATE INDEX source_samples_source ON source_samples (source_id, id);
