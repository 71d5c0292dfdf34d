-- The delivery log's filters by status and by campaign step read an index, so a filter that
-- matches few of many calls does not scan them all (newest first, as the list reads).
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (workspace_id, status, id);
CREATE INDEX webhook_deliveries_step ON webhook_deliveries (campaign_id, step, id);
