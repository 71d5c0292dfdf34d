-- Bounces: a message can end `bounced` (refused for good), and records how it bounced. The
-- status list also admits what the feedback loop records later (`delivered` when a provider
-- says so, `complained`).
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('queued', 'sent', 'failed', 'suppressed', 'held', 'bounced', 'delivered', 'complained'));
ALTER TABLE messages ADD COLUMN bounce text CHECK (bounce IN ('hard', 'soft'));
-- Soft bounces are counted per address over the last days to suppress repeat offenders.
CREATE INDEX messages_soft_bounces ON messages (workspace_id, created_at) WHERE bounce = 'soft';
