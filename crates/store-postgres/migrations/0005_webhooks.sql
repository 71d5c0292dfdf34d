-- Outbound webhooks: one delivery per call with every attempt, and the signing keys.

CREATE TABLE webhook_deliveries (
    id              uuid        NOT NULL PRIMARY KEY,
    workspace_id    uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    journey_id      uuid,
    campaign_id     uuid,
    contact_id      uuid,
    step            text,
    idempotency_key text        NOT NULL,
    endpoint        text        NOT NULL,
    request         jsonb       NOT NULL,
    -- The job payload that makes the call, with its secrets (Basic credentials, header values):
    -- kept for resending, never shown.
    call            jsonb       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'exhausted')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    response        jsonb       NOT NULL DEFAULT 'null',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    finished_at     timestamptz
);
CREATE UNIQUE INDEX webhook_deliveries_idempotency_key ON webhook_deliveries (workspace_id, idempotency_key);
CREATE INDEX webhook_deliveries_workspace ON webhook_deliveries (workspace_id, id);
CREATE INDEX webhook_deliveries_contact ON webhook_deliveries (contact_id, id);
CREATE INDEX webhook_deliveries_journey ON webhook_deliveries (journey_id, id);

CREATE TABLE webhook_attempts (
    delivery_id     uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number          integer     NOT NULL,
    at              timestamptz NOT NULL,
    request_line    text        NOT NULL,
    request_headers jsonb       NOT NULL,
    status          integer,
    latency_ms      bigint      NOT NULL,
    response_body   text,
    error           text,
    PRIMARY KEY (delivery_id, number)
);

CREATE TABLE webhook_keys (
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           text        NOT NULL,
    secret       bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    retires_at   timestamptz,
    PRIMARY KEY (workspace_id, id)
);
