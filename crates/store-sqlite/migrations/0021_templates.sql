-- Shared email templates and layouts. A row per template; a row per version, never changed.

CREATE TABLE templates (
    id             BLOB    NOT NULL PRIMARY KEY,
    workspace_id   BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('template', 'layout')),
    -- The latest version's name and number.
    name           TEXT    NOT NULL,
    latest_version INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    deleted_at     INTEGER
) STRICT;
CREATE UNIQUE INDEX templates_kind_name ON templates (workspace_id, kind, name) WHERE deleted_at IS NULL;

CREATE TABLE template_versions (
    template_id BLOB    NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    html        TEXT    NOT NULL,
    text        TEXT,
    layout_id   BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (template_id, version)
) STRICT;
