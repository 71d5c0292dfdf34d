-- The health of outbound webhook endpoints: one failing for the disable period is disabled.

CREATE TABLE webhook_endpoints (
    id              BLOB    NOT NULL PRIMARY KEY,
    workspace_id    BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    endpoint        TEXT    NOT NULL,
    failing_since   INTEGER,
    last_success_at INTEGER,
    disabled_at     INTEGER,
    disabled_reason TEXT
) STRICT;
CREATE UNIQUE INDEX webhook_endpoints_endpoint ON webhook_endpoints (workspace_id, endpoint);
CREATE INDEX webhook_endpoints_disabled ON webhook_endpoints (disabled_at) WHERE disabled_at IS NOT NULL;
