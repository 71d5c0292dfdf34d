-- What happened to messages after they were handed over: sent, delivered, bounced, complained
-- about, opened, clicked, unsubscribed from. One row per report; a report with a key (a
-- provider's event id) is recorded once per workspace. Statistics count these rows.
CREATE TABLE message_activities (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id   uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    campaign_id  uuid        NOT NULL,
    step         text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('sent', 'delivered', 'bounced', 'complained', 'opened',
                                                      'clicked', 'unsubscribed')),
    bounce       text        CHECK (bounce IN ('hard', 'soft')),
    machine      boolean     NOT NULL DEFAULT false,
    reason       text,
    url          text,
    source       text        NOT NULL,
    key          text,
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX message_activities_key ON message_activities (workspace_id, key) WHERE key IS NOT NULL;
CREATE INDEX message_activities_message ON message_activities (message_id, kind);
CREATE INDEX message_activities_campaign ON message_activities (campaign_id, step, kind);
CREATE INDEX message_activities_workspace ON message_activities (workspace_id, kind, occurred_at);
-- Bounce and complaint reports name the message by its Message-ID header.
CREATE INDEX messages_internet_id ON messages (internet_message_id);
-- The message whose bounce or complaint suppressed an address.
ALTER TABLE suppressions ADD COLUMN message_id uuid;
