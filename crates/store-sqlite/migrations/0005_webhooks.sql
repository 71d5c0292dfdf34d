-- Outbound webhooks: one delivery per call with every attempt, and the signing keys.

CREATE TABLE webhook_deliveries (
    id              BLOB    NOT NULL PRIMARY KEY,
    workspace_id    BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    journey_id      BLOB,
    campaign_id     BLOB,
    contact_id      BLOB,
    step            TEXT,
    idempotency_key TEXT    NOT NULL,
    endpoint        TEXT    NOT NULL,
    request         TEXT    NOT NULL,
    -- The job payload that makes the call, with its secrets (Basic credentials, header values):
    -- kept for resending, never shown.
    call            TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'exhausted')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_error      TEXT,
    response        TEXT    NOT NULL DEFAULT 'null',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER
) STRICT;
CREATE UNIQUE INDEX webhook_deliveries_idempotency_key ON webhook_deliveries (workspace_id, idempotency_key);
CREATE INDEX webhook_deliveries_workspace ON webhook_deliveries (workspace_id, id);
CREATE INDEX webhook_deliveries_contact ON webhook_deliveries (contact_id, id);
CREATE INDEX webhook_deliveries_journey ON webhook_deliveries (journey_id, id);

CREATE TABLE webhook_attempts (
    delivery_id     BLOB    NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    request_line    TEXT    NOT NULL,
    request_headers TEXT    NOT NULL,
    status          INTEGER,
    latency_ms      INTEGER NOT NULL,
    response_body   TEXT,
    error           TEXT,
    PRIMARY KEY (delivery_id, number)
) STRICT;

CREATE TABLE webhook_keys (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           TEXT    NOT NULL,
    secret       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    retires_at   INTEGER,
    PRIMARY KEY (workspace_id, id)
) STRICT;
