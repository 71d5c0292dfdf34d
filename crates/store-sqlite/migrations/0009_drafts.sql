-- Webhook calls held at draft steps until someone sends or skips them.

CREATE TABLE webhook_drafts (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    journey_id   BLOB    NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    campaign_id  BLOB    NOT NULL,
    contact_id   BLOB    NOT NULL,
    step         TEXT    NOT NULL,
    request      TEXT    NOT NULL,
    -- The delivery job's payload, with the call's secrets: never shown.
    call         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_drafts_campaign ON webhook_drafts (workspace_id, campaign_id, step, id);
CREATE INDEX webhook_drafts_journey ON webhook_drafts (journey_id);
