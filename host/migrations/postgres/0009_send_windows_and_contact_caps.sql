-- Migration 0009: send windows (quiet hours) and the contact frequency cap (issue 16).
-- A binding's window as JSON (domain::window::SendWindow), NULL for none; the lead's own IANA
-- zone from checkout.timezone, which wins over the binding's.
ALTER TABLE bindings ADD COLUMN send_window_json TEXT;
ALTER TABLE leads ADD COLUMN timezone TEXT;
-- A recovery message's effective window (the binding's hours in the lead's zone), resolved when
-- it is queued, so delivery re-checks it at claim time without looking anything up; and
-- 'deferred' once the contact cap held it back (GET /v1/stats counts those).
ALTER TABLE outbox ADD COLUMN send_window_json TEXT;
ALTER TABLE outbox ADD COLUMN capped TEXT;
-- Producer-wide settings (PUT /v1/settings): NULL cap columns mean no cap.
CREATE TABLE IF NOT EXISTS producer_settings (
    producer_id TEXT PRIMARY KEY, contact_cap_count BIGINT, contact_cap_per_ms BIGINT, contact_cap_over TEXT,
    updated_at BIGINT NOT NULL);
-- The cap counts a person's recent recovery sends across all the producer's leads of the address.
CREATE INDEX IF NOT EXISTS leads_contact ON leads (producer_id, email);
