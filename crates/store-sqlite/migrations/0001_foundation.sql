-- Foundation: workspaces, admin API keys, the job queue and the ping log.
-- Ids are UUIDv7 as 16-byte BLOBs; instants are INTEGER milliseconds since the Unix epoch (UTC).

CREATE TABLE workspaces (
    id         BLOB    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX workspaces_name ON workspaces (name);

CREATE TABLE api_keys (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    hint         TEXT    NOT NULL,
    key_hash     BLOB    NOT NULL,
    -- 1 for the key installed from HERALD_ADMIN_TOKEN, which a restart with another token replaces.
    bootstrap    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX api_keys_key_hash ON api_keys (key_hash);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);

-- The queue. `due_at` is when a worker should next look at the job: `run_at` while queued, the
-- lease's expiry while running, NULL once finished. Claiming is a range scan of the partial
-- index below, so jobs waiting far in the future and finished jobs cost nothing.
CREATE TABLE jobs (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    run_at       INTEGER NOT NULL,
    due_at       INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_id     BLOB,
    leased_by    TEXT,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_dead ON jobs (workspace_id) WHERE state = 'dead';

-- Effects of ping jobs. Deliberately no unique constraint on job_id: this table is the witness
-- that each job's effect was applied once, so a second application must be visible, not refused.
CREATE TABLE ping_log (
    job_id       BLOB    NOT NULL,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    worker       TEXT    NOT NULL,
    applied_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX ping_log_workspace ON ping_log (workspace_id, job_id);
