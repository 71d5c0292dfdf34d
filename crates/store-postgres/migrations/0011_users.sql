-- People who log in to the web UI with an email and a password. Deleting a user removes the
-- row: their sessions end because they no longer find it, and the email can be used again.

CREATE TABLE users (
    id                  uuid        NOT NULL PRIMARY KEY,
    workspace_id        uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Trimmed and lower-cased by the application.
    email               text        NOT NULL,
    -- argon2id in PHC string format; never returned by the API, never logged.
    password_hash       text        NOT NULL,
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (workspace_id, email);
