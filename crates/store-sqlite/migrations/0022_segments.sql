-- Segments: saved conditions over contacts whose members are kept current.
-- `generation` counts the definition's versions; a build pages through contacts for one
-- generation, keeping its place in `cursor` and its count in `progress`.
CREATE TABLE segments (
    id           BLOB    NOT NULL PRIMARY KEY,
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    definition   TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('building', 'ready')),
    generation   INTEGER NOT NULL,
    progress     INTEGER NOT NULL DEFAULT 0,
    cursor       BLOB,
    members      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX segments_name ON segments (workspace_id, name);

-- Which segments a definition's `member_of` tests name: a referenced segment cannot be deleted.
CREATE TABLE segment_references (
    segment_id BLOB NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    refers_to  BLOB NOT NULL,
    PRIMARY KEY (segment_id, refers_to)
) STRICT;
CREATE INDEX segment_references_target ON segment_references (refers_to);

-- One contact's standing in one segment: a member (since when), or a non-member whose answer
-- time alone may change (`recheck_at`). Non-members without a timer have no row.
CREATE TABLE segment_memberships (
    segment_id   BLOB    NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    contact_id   BLOB    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    workspace_id BLOB    NOT NULL,
    member       INTEGER NOT NULL,
    since        INTEGER,
    recheck_at   INTEGER,
    PRIMARY KEY (segment_id, contact_id)
) STRICT;
CREATE INDEX segment_memberships_contact ON segment_memberships (contact_id);
CREATE INDEX segment_memberships_members ON segment_memberships (segment_id, contact_id) WHERE member = 1;

-- Every entering and leaving, and why.
CREATE TABLE segment_history (
    id           INTEGER PRIMARY KEY,
    workspace_id BLOB    NOT NULL,
    segment_id   BLOB    NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    contact_id   BLOB    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    entered      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    reason       TEXT    NOT NULL
) STRICT;
CREATE INDEX segment_history_segment ON segment_history (segment_id, id);
CREATE INDEX segment_history_contact ON segment_history (contact_id, id);

-- Each segment's size at the end of each day (UTC) that saw a change.
CREATE TABLE segment_sizes (
    segment_id BLOB    NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    day        TEXT    NOT NULL,
    members    INTEGER NOT NULL,
    PRIMARY KEY (segment_id, day)
) STRICT;

