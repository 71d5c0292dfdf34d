-- Which key sealed the secrets inside each stored webhook call and campaign document (they
-- are sealed one by one where they stand, ADR 0011): its id, NULL when the document holds no
-- secret, and 'clear' (the default) for rows written before, or by any writer that does not
-- seal them. Each start seals again the rows whose key is not the current one; the partial
-- indexes find them in the two tables that grow with traffic without reading every call.

ALTER TABLE jobs ADD COLUMN sealed_with TEXT DEFAULT 'clear';
UPDATE jobs SET sealed_with = NULL WHERE kind <> 'deliver_webhook';
ALTER TABLE webhook_deliveries ADD COLUMN sealed_with TEXT DEFAULT 'clear';
ALTER TABLE webhook_drafts ADD COLUMN sealed_with TEXT DEFAULT 'clear';
ALTER TABLE campaign_versions ADD COLUMN sealed_with TEXT DEFAULT 'clear';

CREATE INDEX jobs_sealed_with ON jobs (sealed_with) WHERE sealed_with IS NOT NULL;
CREATE INDEX webhook_deliveries_sealed_with ON webhook_deliveries (sealed_with) WHERE sealed_with IS NOT NULL;
