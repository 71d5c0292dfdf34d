-- Campaigns: versioned documents, journeys, the step log and messages.

-- The workspace's default time zone for campaign waits until a time of day.
ALTER TABLE workspaces ADD COLUMN timezone TEXT;

-- Claims take due jobs in (due_at, id) order; with the id in the index, taking the first N
-- of many jobs due at the same instant (a campaign's 50,000 journeys) reads N entries
-- instead of sorting all of them.
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (due_at, id) WHERE due_at IS NOT NULL;
-- Finished jobs (done or dead), by when they finished: housekeeping deletes the old ones.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE due_at IS NULL;

CREATE TABLE campaigns (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('draft', 'active', 'paused', 'archived')),
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX campaigns_workspace ON campaigns (workspace_id, id);
CREATE INDEX campaigns_live ON campaigns (workspace_id) WHERE state IN ('active', 'paused');

CREATE TABLE campaign_versions (
    campaign_id BLOB    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    document    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, version)
) STRICT;

CREATE TABLE journeys (
    id               BLOB    NOT NULL PRIMARY KEY,
    workspace_id     BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id      BLOB    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    version          INTEGER NOT NULL,
    contact_id       BLOB    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    event_id         BLOB,
    status           TEXT    NOT NULL CHECK (status IN ('active', 'completed', 'exited')),
    exclusive        INTEGER NOT NULL,
    step             INTEGER,
    run_at           INTEGER,
    held             INTEGER NOT NULL DEFAULT 0,
    custom_variables TEXT    NOT NULL,
    entered_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    exit_reason      TEXT,
    converted_at     INTEGER,
    goal_until       INTEGER,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX journeys_contact ON journeys (contact_id, campaign_id, id);
CREATE INDEX journeys_campaign ON journeys (campaign_id, status);
CREATE INDEX journeys_held ON journeys (campaign_id) WHERE held = 1;
-- Entry rules "once" and "once_at_a_time": one active journey per campaign and contact.
CREATE UNIQUE INDEX journeys_campaign_id_contact_id ON journeys (campaign_id, contact_id) WHERE status = 'active' AND exclusive = 1;

CREATE TABLE journey_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    journey_id  BLOB    NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    campaign_id BLOB    NOT NULL,
    step        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    message_id  BLOB,
    at          INTEGER NOT NULL
) STRICT;
CREATE INDEX journey_steps_journey ON journey_steps (journey_id, id);
CREATE INDEX journey_steps_stats ON journey_steps (campaign_id, step, outcome);

CREATE TABLE messages (
    id            BLOB    NOT NULL PRIMARY KEY,
    workspace_id  BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id   BLOB    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    journey_id    BLOB    NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    step          TEXT    NOT NULL,
    contact_id    BLOB    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'suppressed', 'held')),
    status_reason TEXT,
    to_address    TEXT    NOT NULL,
    from_address  TEXT    NOT NULL,
    reply_to      TEXT,
    subject       TEXT    NOT NULL,
    html          TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    headers       TEXT    NOT NULL,
    warnings      TEXT    NOT NULL,
    transport     TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER
) STRICT;
CREATE INDEX messages_workspace ON messages (workspace_id, id);
CREATE INDEX messages_contact ON messages (contact_id, id);
CREATE INDEX messages_campaign ON messages (campaign_id, id);
CREATE INDEX messages_status ON messages (workspace_id, status, id);
