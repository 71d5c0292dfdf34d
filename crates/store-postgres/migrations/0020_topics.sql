-- Subscription topics, each contact's choice per topic, and the topic a message was sent under.

CREATE TABLE topics (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    description  text        NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    -- Kept for the campaign versions that name it; listed nowhere once set.
    deleted_at   timestamptz
);
CREATE UNIQUE INDEX topics_name ON topics (workspace_id, lower(name)) WHERE deleted_at IS NULL;

-- A contact without a row for a topic is subscribed to it.
CREATE TABLE topic_consents (
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    contact_id   uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    topic_id     uuid        NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    subscribed   boolean     NOT NULL,
    -- api, import, preference_page, one_click
    source       text        NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, contact_id, topic_id)
);
CREATE INDEX topic_consents_left ON topic_consents (workspace_id, topic_id, contact_id) WHERE NOT subscribed;

ALTER TABLE messages ADD COLUMN topic_id uuid;
