-- Opens and clicks as their endpoints received them, kept until a record_hits job has turned
-- them into message activities. The table stays small: each row lives for the moment between
-- the answer to the browser and that job.
CREATE TABLE tracked_hits (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id   BLOB    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('opened', 'clicked')),
    url          TEXT,
    machine      INTEGER NOT NULL DEFAULT 0,
    occurred_at  INTEGER NOT NULL
) STRICT;
