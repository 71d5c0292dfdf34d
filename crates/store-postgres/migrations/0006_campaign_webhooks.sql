-- Campaign event webhooks (seed 001): each campaign's subscriptions to its own events. Their
-- calls are ordinary webhook deliveries, tagged with the webhook's id so the log filters by it.

CREATE TABLE campaign_webhooks (
    id                uuid        NOT NULL PRIMARY KEY,
    workspace_id      uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id       uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    url               text        NOT NULL,
    content_type      text        NOT NULL CHECK (content_type IN ('json', 'form')),
    method            text        NOT NULL CHECK (method IN ('POST', 'GET')),
    -- Basic authentication; the password is write-only through the API.
    username          text,
    password          text,
    -- Signs the calls instead of the workspace's keys; write-only.
    secret            text,
    log_response_body boolean     NOT NULL,
    active            boolean     NOT NULL,
    -- Array of event names.
    events            jsonb       NOT NULL,
    -- Object of field mappings; NULL sends the default payload.
    payload           jsonb,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CHECK (password IS NULL OR username IS NOT NULL)
);
CREATE INDEX campaign_webhooks_campaign ON campaign_webhooks (workspace_id, campaign_id, id);

-- No foreign key: a deleted webhook's calls stay in the log under its id.
ALTER TABLE webhook_deliveries ADD COLUMN campaign_webhook_id uuid;
CREATE INDEX webhook_deliveries_campaign_webhook ON webhook_deliveries (campaign_webhook_id, id);
