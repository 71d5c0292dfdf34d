-- Shared email templates and layouts. A row per template; a row per version, never changed.

CREATE TABLE templates (
    id             uuid        NOT NULL PRIMARY KEY,
    workspace_id   uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind           text        NOT NULL CHECK (kind IN ('template', 'layout')),
    -- The latest version's name and number.
    name           text        NOT NULL,
    latest_version integer     NOT NULL,
    created_at     timestamptz NOT NULL,
    deleted_at     timestamptz
);
CREATE UNIQUE INDEX templates_kind_name ON templates (workspace_id, kind, name) WHERE deleted_at IS NULL;

CREATE TABLE template_versions (
    template_id uuid        NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    subject     text        NOT NULL,
    html        text        NOT NULL,
    text        text,
    layout_id   uuid,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (template_id, version)
);

-- Messages sent outside any campaign (transactional sends) belong to no campaign or journey.
ALTER TABLE messages ALTER COLUMN campaign_id DROP NOT NULL;
ALTER TABLE messages ALTER COLUMN journey_id DROP NOT NULL;
ALTER TABLE message_activities ALTER COLUMN campaign_id DROP NOT NULL;

-- The idempotency keys of transactional sends: a key names one request (its body's hash)
-- and the message it made.
CREATE TABLE send_keys (
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,
    message_id   uuid        NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, key)
);
