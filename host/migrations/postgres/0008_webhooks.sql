-- Migration 0008: outgoing webhooks. A producer registers endpoints (`webhooks`) for event types;
-- each event is written to `webhook_deliveries` in the transaction of the change it reports (one row
-- per subscribed endpoint), and a worker claims due rows under a named lease (`claim`, `claim_until`),
-- POSTs them, and logs each try in `webhook_attempts`. Times are Unix milliseconds.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    producer_id TEXT NOT NULL,
    url TEXT NOT NULL,
    -- The subscribed event types, comma-separated and sorted (`lead.recovered,message.sent`).
    events TEXT NOT NULL,
    -- The HMAC key deliveries are signed with: stored as is (the host must sign with it), shown once.
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL);
CREATE INDEX webhooks_producer ON webhooks (producer_id, created_at);
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    producer_id TEXT NOT NULL,
    -- The lead the event is about, if any (erasure deletes its deliveries).
    lead_id TEXT,
    event TEXT NOT NULL,
    -- The exact body POSTed on every attempt (JSON).
    payload TEXT NOT NULL,
    -- pending, delivered or failed.
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    -- When it may next be claimed: its retry time, or the end of the lease it is held under.
    next_attempt_at BIGINT NOT NULL,
    claim TEXT,
    claim_until BIGINT,
    last_status BIGINT,
    last_error TEXT,
    finished_at BIGINT);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
CREATE INDEX webhook_deliveries_lead ON webhook_deliveries (lead_id);
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    -- The HTTP status the receiver answered, or NULL with `error` when there was no answer.
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, at);
