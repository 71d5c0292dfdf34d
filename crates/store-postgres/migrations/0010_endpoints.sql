-- The health of outbound webhook endpoints: one failing for the disable period is disabled.

CREATE TABLE webhook_endpoints (
    id              uuid        NOT NULL PRIMARY KEY,
    workspace_id    uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    endpoint        text        NOT NULL,
    failing_since   timestamptz,
    last_success_at timestamptz,
    disabled_at     timestamptz,
    disabled_reason text
);
CREATE UNIQUE INDEX webhook_endpoints_endpoint ON webhook_endpoints (workspace_id, endpoint);
CREATE INDEX webhook_endpoints_disabled ON webhook_endpoints (disabled_at) WHERE disabled_at IS NOT NULL;
