-- Saved webhook actions: named requests campaign steps refer to and shortcuts run.

CREATE TABLE actions (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    -- The request as a webhook step describes it, secrets included: never shown unmasked.
    definition   jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz
);
CREATE UNIQUE INDEX actions_name ON actions (workspace_id, name) WHERE deleted_at IS NULL;
CREATE INDEX actions_workspace ON actions (workspace_id, id);
