-- Shared email templates and layouts. A row per template; a row per version, never changed.

CREATE TABLE templates (
    id             BLOB    NOT NULL PRIMARY KEY,
    workspace_id   BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('template', 'layout')),
    -- The latest version's name and number.
    name           TEXT    NOT NULL,
    latest_version INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    deleted_at     INTEGER
) STRICT;
CREATE UNIQUE INDEX templates_kind_name ON templates (workspace_id, kind, name) WHERE deleted_at IS NULL;

CREATE TABLE template_versions (
    template_id BLOB    NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    html        TEXT    NOT NULL,
    text        TEXT,
    layout_id   BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (template_id, version)
) STRICT;

-- Messages sent outside any campaign (transactional sends) belong to no campaign or journey.
-- SQLite cannot drop a NOT NULL in place: messages (with every column the migrations before
-- this one gave it) and message_activities are rebuilt, the activities set aside first so
-- that dropping messages cascades to nothing.
CREATE TABLE activities_aside AS SELECT * FROM message_activities;
DROP TABLE message_activities;

CREATE TABLE messages_rebuilt (
    id                  BLOB    NOT NULL PRIMARY KEY,
    workspace_id        BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id         BLOB    REFERENCES campaigns (id) ON DELETE CASCADE,
    journey_id          BLOB    REFERENCES journeys (id) ON DELETE CASCADE,
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
    bounce              TEXT    CHECK (bounce IN ('hard', 'soft')),
    track_opens         INTEGER NOT NULL DEFAULT 0,
    track_clicks        INTEGER NOT NULL DEFAULT 0,
    topic_id            BLOB
) STRICT;
INSERT INTO messages_rebuilt (id, workspace_id, campaign_id, journey_id, step, contact_id, status, status_reason,
    to_address, from_address, reply_to, subject, html, text, headers, warnings, transport, created_at, sent_at,
    internet_message_id, attempts, reply, from_domain, bounce, track_opens, track_clicks, topic_id)
SELECT id, workspace_id, campaign_id, journey_id, step, contact_id, status, status_reason,
    to_address, from_address, reply_to, subject, html, text, headers, warnings, transport, created_at, sent_at,
    internet_message_id, attempts, reply, from_domain, bounce, track_opens, track_clicks, topic_id
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_rebuilt RENAME TO messages;
CREATE INDEX messages_workspace ON messages (workspace_id, id);
CREATE INDEX messages_contact ON messages (contact_id, id);
CREATE INDEX messages_campaign ON messages (campaign_id, id);
CREATE INDEX messages_status ON messages (workspace_id, status, id);
CREATE INDEX messages_held ON messages (workspace_id, from_domain) WHERE status = 'held';
CREATE INDEX messages_soft_bounces ON messages (workspace_id, created_at) WHERE bounce = 'soft';
CREATE INDEX messages_internet_id ON messages (internet_message_id);

CREATE TABLE message_activities (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id   BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    campaign_id  BLOB,
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
INSERT INTO message_activities SELECT * FROM activities_aside;
DROP TABLE activities_aside;
CREATE UNIQUE INDEX message_activities_key ON message_activities (workspace_id, key) WHERE key IS NOT NULL;
CREATE INDEX message_activities_message ON message_activities (message_id, kind);
CREATE INDEX message_activities_campaign ON message_activities (campaign_id, step, kind);
CREATE INDEX message_activities_workspace ON message_activities (workspace_id, kind, occurred_at);

-- The idempotency keys of transactional sends: a key names one request (its body's hash)
-- and the message it made.
CREATE TABLE send_keys (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    message_id   BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, key)
) STRICT;
