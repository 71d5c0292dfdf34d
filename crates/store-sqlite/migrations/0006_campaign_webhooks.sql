-- Campaign event webhooks (seed 001): each campaign's subscriptions to its own events. Their
-- calls are ordinary webhook deliveries, tagged with the webhook's id so the log filters by it.

CREATE TABLE campaign_webhooks (
    id                BLOB    NOT NULL PRIMARY KEY,
    workspace_id      BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id       BLOB    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    url               TEXT    NOT NULL,
    content_type      TEXT    NOT NULL CHECK (content_type IN ('json', 'form')),
    method            TEXT    NOT NULL CHECK (method IN ('POST', 'GET')),
    -- Basic authentication; the password is write-only through the API.
    username          TEXT,
    password          TEXT,
    -- Signs the calls instead of the workspace's keys; write-only.
    secret            TEXT,
    log_response_body INTEGER NOT NULL,
    active            INTEGER NOT NULL,
    -- JSON array of event names.
    events            TEXT    NOT NULL,
    -- JSON object of field mappings; NULL sends the default payload.
    payload           TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK (password IS NULL OR username IS NOT NULL)
) STRICT;
CREATE INDEX campaign_webhooks_campaign ON campaign_webhooks (workspace_id, campaign_id, id);

-- No foreign key: a deleted webhook's calls stay in the log under its id.
ALTER TABLE webhook_deliveries ADD COLUMN campaign_webhook_id BLOB;
CREATE INDEX webhook_deliveries_campaign_webhook ON webhook_deliveries (campaign_webhook_id, id);
