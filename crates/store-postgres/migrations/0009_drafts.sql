-- Webhook calls held at draft steps until someone sends or skips them.

CREATE TABLE webhook_drafts (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    journey_id   uuid        NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    campaign_id  uuid        NOT NULL,
    contact_id   uuid        NOT NULL,
    step         text        NOT NULL,
    request      jsonb       NOT NULL,
    -- The delivery job's payload, with the call's secrets: never shown.
    call         jsonb       NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX webhook_drafts_campaign ON webhook_drafts (workspace_id, campaign_id, step, id);
CREATE INDEX webhook_drafts_journey ON webhook_drafts (journey_id);
