-- Foundation: workspaces, admin API keys, the job queue and the ping log.
-- Ids are UUIDv7 (`uuid`); instants are `timestamptz`, which holds microseconds, so Herald's
-- millisecond timestamps read back exactly as written (as SQLite's integer milliseconds do).
-- Index names match the SQLite schema: the store reports a unique violation by index name.

CREATE TABLE workspaces (
    id         uuid        NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX workspaces_name ON workspaces (name);

CREATE TABLE api_keys (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    hint         text        NOT NULL,
    key_hash     bytea       NOT NULL,
    -- True for the key installed from HERALD_ADMIN_TOKEN, which a restart with another token replaces.
    bootstrap    boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_keys_key_hash ON api_keys (key_hash);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);

-- The queue. `due_at` is when a worker should next look at the job: `run_at` while queued, the
-- lease's expiry while running, NULL once finished. Claiming is a range scan of the partial
-- index below, so jobs waiting far in the future and finished jobs cost nothing. Counters are
-- bigint like SQLite's INTEGER, so no attempt budget the domain allows is out of range.
CREATE TABLE jobs (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind         text        NOT NULL,
    payload      jsonb       NOT NULL,
    state        text        NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    run_at       timestamptz NOT NULL,
    due_at       timestamptz,
    attempts     bigint      NOT NULL DEFAULT 0,
    max_attempts bigint      NOT NULL,
    lease_id     uuid,
    leased_by    text,
    last_error   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_dead ON jobs (workspace_id) WHERE state = 'dead';

-- Effects of ping jobs. Deliberately no unique constraint on job_id: this table is the witness
-- that each job's effect was applied once, so a second application must be visible, not refused.
CREATE TABLE ping_log (
    job_id       uuid        NOT NULL,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    worker       text        NOT NULL,
    applied_at   timestamptz NOT NULL
);
CREATE INDEX ping_log_workspace ON ping_log (workspace_id, job_id);
