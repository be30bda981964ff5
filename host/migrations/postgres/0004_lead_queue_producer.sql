-- The producer of each queued lead, so claims can share the dispatcher between producers
-- (round-robin) instead of handing one producer's backlog out first.
ALTER TABLE lead_queue ADD COLUMN producer_id TEXT;
UPDATE lead_queue SET producer_id = (SELECT producer_id FROM leads WHERE leads.id = lead_queue.lead_id);
CREATE INDEX IF NOT EXISTS lead_queue_producer_due ON lead_queue (producer_id, due_at);
