-- Bounces: a message can end `bounced` (refused for good), and records how it bounced. The
-- status list also admits what the feedback loop records later (`delivered` when a provider
-- says so, `complained`). SQLite cannot change a CHECK constraint in place, so the table is
-- rebuilt with the same columns and indexes; nothing references it.
CREATE TABLE messages_rebuilt (
    id                  BLOB    NOT NULL PRIMARY KEY,
    workspace_id        BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id         BLOB    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    journey_id          BLOB    NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    step                TEXT    NOT NULL,
    contact_id          BLOB    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status              TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'suppressed', 'held',
                                                           'bounced', 'delivered', 'complained')),
    status_reason       TEXT,
    to_address          TEXT    NOT NULL,
    from_address        TEXT    NOT NULL,
    reply_to            TEXT,
    subject             TEXT    NOT NULL,
    html                TEXT    NOT NULL,
    text                TEXT    NOT NULL,
    headers             TEXT    NOT NULL,
    warnings            TEXT    NOT NULL,
    transport           TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    sent_at             INTEGER,
    internet_message_id TEXT    NOT NULL DEFAULT '',
    attempts            INTEGER NOT NULL DEFAULT 0,
    reply               TEXT,
    from_domain         TEXT    NOT NULL DEFAULT '',
    bounce              TEXT    CHECK (bounce IN ('hard', 'soft'))
) STRICT;
INSERT INTO messages_rebuilt (id, workspace_id, campaign_id, journey_id, step, contact_id, status, status_reason,
    to_address, from_address, reply_to, subject, html, text, headers, warnings, transport, created_at, sent_at,
    internet_message_id, attempts, reply, from_domain)
SELECT id, workspace_id, campaign_id, journey_id, step, contact_id, status, status_reason,
    to_address, from_address, reply_to, subject, html, text, headers, warnings, transport, created_at, sent_at,
    internet_message_id, attempts, reply, from_domain
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_rebuilt RENAME TO messages;
CREATE INDEX messages_workspace ON messages (workspace_id, id);
CREATE INDEX messages_contact ON messages (contact_id, id);
CREATE INDEX messages_campaign ON messages (campaign_id, id);
CREATE INDEX messages_status ON messages (workspace_id, status, id);
CREATE INDEX messages_held ON messages (workspace_id, from_domain) WHERE status = 'held';
-- Soft bounces are counted per address over the last days to suppress repeat offenders.
CREATE INDEX messages_soft_bounces ON messages (workspace_id, created_at) WHERE bounce = 'soft';
