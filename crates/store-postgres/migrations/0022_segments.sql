-- Segments: saved conditions over contacts whose members are kept current.
-- `generation` counts the definition's versions; a build pages through contacts for one
-- generation, keeping its place in `cursor` and its count in `progress`.
CREATE TABLE segments (
    id           uuid        NOT NULL PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    definition   jsonb       NOT NULL,
    status       text        NOT NULL CHECK (status IN ('building', 'ready')),
    generation   integer     NOT NULL,
    progress     bigint      NOT NULL DEFAULT 0,
    cursor       uuid,
    members      bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX segments_name ON segments (workspace_id, name);

-- Which segments a definition's `member_of` tests name: a referenced segment cannot be deleted.
CREATE TABLE segment_references (
    segment_id uuid NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    refers_to  uuid NOT NULL,
    PRIMARY KEY (segment_id, refers_to)
);
CREATE INDEX segment_references_target ON segment_references (refers_to);

-- One contact's standing in one segment: a member (since when), or a non-member whose answer
-- time alone may change (`recheck_at`). Non-members without a timer have no row.
CREATE TABLE segment_memberships (
    segment_id   uuid        NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    contact_id   uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    workspace_id uuid        NOT NULL,
    member       boolean     NOT NULL,
    since        timestamptz,
    recheck_at   timestamptz,
    PRIMARY KEY (segment_id, contact_id)
);
CREATE INDEX segment_memberships_contact ON segment_memberships (contact_id);
CREATE INDEX segment_memberships_members ON segment_memberships (segment_id, contact_id) WHERE member;

-- Every entering and leaving, and why.
CREATE TABLE segment_history (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id uuid        NOT NULL,
    segment_id   uuid        NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    contact_id   uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    entered      boolean     NOT NULL,
    at           timestamptz NOT NULL,
    reason       text        NOT NULL
);
CREATE INDEX segment_history_segment ON segment_history (segment_id, id);
CREATE INDEX segment_history_contact ON segment_history (contact_id, id);

-- Each segment's size at the end of each day (UTC) that saw a change.
CREATE TABLE segment_sizes (
    segment_id uuid   NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    day        text   NOT NULL,
    members    bigint NOT NULL,
    PRIMARY KEY (segment_id, day)
);

