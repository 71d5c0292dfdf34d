-- What happened to messages after they were handed over: sent, delivered, bounced, complained
-- about, opened, clicked, unsubscribed from. One row per report; a report with a key (a
-- provider's event id) is recorded once per workspace. Statistics count these rows.
CREATE TABLE message_activities (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id   BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    campaign_id  BLOB    NOT NULL,
    step         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('sent', 'delivered', 'bounced', 'complained', 'opened',
                                                  'clicked', 'unsubscribed')),
    bounce       TEXT    CHECK (bounce IN ('hard', 'soft')),
    machine      INTEGER NOT NULL DEFAULT 0,
    reason       TEXT,
    url          TEXT,
    source       TEXT    NOT NULL,
    key          TEXT,
    occurred_at  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX message_activities_key ON message_activities (workspace_id, key) WHERE key IS NOT NULL;
CREATE INDEX message_activities_message ON message_activities (message_id, kind);
CREATE INDEX message_activities_campaign ON message_activities (campaign_id, step, kind);
CREATE INDEX message_activities_workspace ON message_activities (workspace_id, kind, occurred_at);
-- Bounce and complaint reports name the message by its Message-ID header.
CREATE INDEX messages_internet_id ON messages (internet_message_id);
-- The message whose bounce or complaint suppressed an address.
ALTER TABLE suppressions ADD COLUMN message_id BLOB;
