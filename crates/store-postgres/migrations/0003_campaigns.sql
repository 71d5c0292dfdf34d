-- Campaigns: versioned documents, journeys, the step log and messages.

-- The workspace's default time zone for campaign waits until a time of day.
ALTER TABLE workspaces ADD COLUMN timezone text;

-- Claims take due jobs in (due_at, id) order; with the id in the index, taking the first N
-- of many jobs due at the same instant (a campaign's 50,000 journeys) reads N entries
-- instead of sorting all of them.
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (due_at, id) WHERE due_at IS NOT NULL;
-- Finished jobs (done or dead), by when they finished: housekeeping deletes the old ones.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE due_at IS NULL;

CREATE TABLE campaigns (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('draft', 'active', 'paused', 'archived')),
    version      integer     NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX campaigns_workspace ON campaigns (workspace_id, id);
CREATE INDEX campaigns_live ON campaigns (workspace_id) WHERE state IN ('active', 'paused');

CREATE TABLE campaign_versions (
    campaign_id uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    version     integer     NOT NULL,
    document    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, version)
);

CREATE TABLE journeys (
    id               uuid        NOT NULL PRIMARY KEY,
    workspace_id     uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id      uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    version          integer     NOT NULL,
    contact_id       uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    event_id         uuid,
    status           text        NOT NULL CHECK (status IN ('active', 'completed', 'exited')),
    exclusive        boolean     NOT NULL,
    step             integer,
    run_at           timestamptz,
    held             boolean     NOT NULL DEFAULT false,
    custom_variables jsonb       NOT NULL,
    entered_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    exit_reason      text,
    converted_at     timestamptz,
    goal_until       timestamptz,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX journeys_contact ON journeys (contact_id, campaign_id, id);
CREATE INDEX journeys_campaign ON journeys (campaign_id, status);
CREATE INDEX journeys_held ON journeys (campaign_id) WHERE held;
-- Entry rules "once" and "once_at_a_time": one active journey per campaign and contact.
CREATE UNIQUE INDEX journeys_campaign_id_contact_id ON journeys (campaign_id, contact_id) WHERE status = 'active' AND exclusive;

CREATE TABLE journey_steps (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    journey_id  uuid        NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    campaign_id uuid        NOT NULL,
    step        text        NOT NULL,
    outcome     text        NOT NULL,
    detail      jsonb       NOT NULL,
    message_id  uuid,
    at          timestamptz NOT NULL
);
CREATE INDEX journey_steps_journey ON journey_steps (journey_id, id);
CREATE INDEX journey_steps_stats ON journey_steps (campaign_id, step, outcome);

CREATE TABLE messages (
    id            uuid        NOT NULL PRIMARY KEY,
    workspace_id  uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    campaign_id   uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    journey_id    uuid        NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
    step          text        NOT NULL,
    contact_id    uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status        text        NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'suppressed', 'held')),
    status_reason text,
    to_address    text        NOT NULL,
    from_address  text        NOT NULL,
    reply_to      text,
    subject       text        NOT NULL,
    html          text        NOT NULL,
    text          text        NOT NULL,
    headers       jsonb       NOT NULL,
    warnings      jsonb       NOT NULL,
    transport     text        NOT NULL,
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz
);
CREATE INDEX messages_workspace ON messages (workspace_id, id);
CREATE INDEX messages_contact ON messages (contact_id, id);
CREATE INDEX messages_campaign ON messages (campaign_id, id);
CREATE INDEX messages_status ON messages (workspace_id, status, id);
