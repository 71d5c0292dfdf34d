-- Subscription topics, each contact's choice per topic, and the topic a message was sent under.

CREATE TABLE topics (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- Kept for the campaign versions that name it; listed nowhere once set.
    deleted_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX topics_name ON topics (workspace_id, lower(name)) WHERE deleted_at IS NULL;

-- A contact without a row for a topic is subscribed to it.
CREATE TABLE topic_consents (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    contact_id   BLOB    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    topic_id     BLOB    NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    subscribed   INTEGER NOT NULL,
    -- api, import, preference_page, one_click
    source       TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, contact_id, topic_id)
) STRICT;
CREATE INDEX topic_consents_left ON topic_consents (workspace_id, topic_id, contact_id) WHERE subscribed = 0;

ALTER TABLE messages ADD COLUMN topic_id BLOB;
