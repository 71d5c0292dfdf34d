-- Broadcasts: one email to every contact of an audience, each contact at most once.
-- `content` is the server's document (template or inline parts, sender, topic, goal,
-- schedule), pinned when the broadcast starts. A fan-out job writes the audience out a page at
-- a time after `cursor`; with a rate limit, `next_slot` is when the next delivery is due.
CREATE TABLE broadcasts (
    id            BLOB    NOT NULL PRIMARY KEY,
    workspace_id  BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    audience_kind TEXT    NOT NULL CHECK (audience_kind IN ('segment', 'topic', 'everyone')),
    audience_id   BLOB,
    rate_per_hour INTEGER,
    state         TEXT    NOT NULL
        CHECK (state IN ('draft', 'scheduled', 'sending', 'paused', 'finished', 'cancelled')),
    start_at      INTEGER,
    cursor        BLOB,
    next_slot     INTEGER,
    paused_at     INTEGER,
    finished_at   INTEGER,
    audience_size INTEGER NOT NULL DEFAULT 0,
    recipients    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX broadcasts_workspace ON broadcasts (workspace_id, id);

-- Each contact a broadcast was written out to, once: the primary key is what makes a
-- repeated page (after a crash, or on a second node) write nobody twice. `job_id` is the
-- delivery job, put off by a pause and spaced again by a resume; `not_before` the recipient's
-- own time (the start, or its local time), which a resume keeps.
CREATE TABLE broadcast_recipients (
    broadcast_id BLOB    NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    contact_id   BLOB    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    message_id   BLOB    NOT NULL,
    job_id       BLOB,
    not_before   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (broadcast_id, contact_id)
) STRICT;

ALTER TABLE messages ADD COLUMN broadcast_id BLOB;
CREATE INDEX messages_broadcast ON messages (broadcast_id, status) WHERE broadcast_id IS NOT NULL;
