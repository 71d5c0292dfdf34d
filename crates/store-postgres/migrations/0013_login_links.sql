-- One-time links that sign their holder in to the web UI of a server nobody can log in to
-- yet (`herald serve` prints one). Only the SHA-256 of the link's token is kept.

CREATE TABLE login_links (
    token_hash   bytea       NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
