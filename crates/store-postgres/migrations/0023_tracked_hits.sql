-- Opens and clicks as their endpoints received them, kept until a record_hits job has turned
-- them into message activities. The table stays small: each row lives for the moment between
-- the answer to the browser and that job.
CREATE TABLE tracked_hits (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id   uuid        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('opened', 'clicked')),
    url          text,
    machine      boolean     NOT NULL DEFAULT false,
    occurred_at  timestamptz NOT NULL
);
