-- Saved webhook actions: named requests campaign steps refer to and shortcuts run.

CREATE TABLE actions (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    -- The request as a webhook step describes it, secrets included: never shown unmasked.
    definition   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX actions_name ON actions (workspace_id, name) WHERE deleted_at IS NULL;
CREATE INDEX actions_workspace ON actions (workspace_id, id);
