-- Migration 0001, SQLite: the schema of the last release before versioned migrations, which applied
-- it at every start; `IF NOT EXISTS` lets a database made by that release upgrade in place. Times are Unix
-- milliseconds; booleans are 0/1. Never edit this file: add a migration (see host/src/store/migrations.rs).
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS producers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, api_key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS plugins (
    sha256 TEXT NOT NULL, producer_id TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    bytes BLOB NOT NULL, info_json TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (producer_id, name, version));
CREATE TABLE IF NOT EXISTS bindings (
    id TEXT PRIMARY KEY, producer_id TEXT NOT NULL, product_id TEXT NOT NULL, plan_id TEXT NOT NULL,
    plugin_name TEXT NOT NULL, plugin_sha256 TEXT NOT NULL, config_json TEXT NOT NULL, enabled INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, UNIQUE (producer_id, product_id, plan_id));
CREATE TABLE IF NOT EXISTS coupons (
    producer_id TEXT NOT NULL, product_id TEXT NOT NULL, plan_id TEXT NOT NULL, code TEXT NOT NULL,
    discount_percent INTEGER NOT NULL, PRIMARY KEY (producer_id, product_id, plan_id));
CREATE TABLE IF NOT EXISTS leads (
    id TEXT PRIMARY KEY, producer_id TEXT NOT NULL, checkout_id TEXT NOT NULL, email TEXT NOT NULL,
    name TEXT, phone TEXT, product_id TEXT, plan_id TEXT, price_cents INTEGER, currency TEXT, checkout_url TEXT,
    status TEXT NOT NULL, captured_at INTEGER NOT NULL, purchased_at INTEGER, recovered_by TEXT,
    UNIQUE (producer_id, checkout_id));
CREATE TABLE IF NOT EXISTS runs (
    lead_id TEXT PRIMARY KEY, binding_id TEXT NOT NULL, plugin_sha256 TEXT NOT NULL, config_json TEXT NOT NULL,
    state BLOB, status TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, producer_id TEXT NOT NULL, lead_id TEXT,
    kind TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL, error TEXT, created_at INTEGER NOT NULL, UNIQUE (producer_id, id));
-- A lead's events in order. `status` is in no index, so marking an event done leaves every
-- index alone (a HOT update on PostgreSQL) instead of adding entries for scans to wade through.
CREATE INDEX IF NOT EXISTS events_lead ON events (lead_id, seq);
-- The work queue: one row per lead with pending events, deleted in the transaction that settles
-- its last one, so claims walk live work only, not the history of every event ever handled.
-- `due_at` is when the lead may next be claimed: now, when its oldest pending event's retry
-- comes, or when the lease of the worker holding it (`locked_by`) runs out.
CREATE TABLE IF NOT EXISTS lead_queue (lead_id TEXT PRIMARY KEY, due_at INTEGER NOT NULL, locked_by TEXT);
CREATE INDEX IF NOT EXISTS lead_queue_due ON lead_queue (due_at);
CREATE TABLE IF NOT EXISTS timers (
    id TEXT PRIMARY KEY, lead_id TEXT NOT NULL, producer_id TEXT NOT NULL, tag TEXT NOT NULL,
    due_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at);
CREATE INDEX IF NOT EXISTS timers_lead ON timers (lead_id);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, producer_id TEXT NOT NULL, lead_id TEXT NOT NULL, channel TEXT NOT NULL,
    kind TEXT NOT NULL, tag TEXT NOT NULL, recipient TEXT NOT NULL, subject TEXT, html TEXT, text TEXT,
    coupon TEXT, link_token TEXT NOT NULL UNIQUE, unsubscribe_token TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
    reason TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, queued_at INTEGER NOT NULL,
    sent_at INTEGER, clicked_at INTEGER, opened_at INTEGER);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_lead ON outbox (lead_id, queued_at);
CREATE TABLE IF NOT EXISTS list_members (
    producer_id TEXT NOT NULL, list_name TEXT NOT NULL, email TEXT NOT NULL, lead_id TEXT NOT NULL,
    added_at INTEGER NOT NULL, PRIMARY KEY (producer_id, list_name, email));
CREATE INDEX IF NOT EXISTS list_members_contact ON list_members (producer_id, email);
CREATE TABLE IF NOT EXISTS suppressions (
    producer_id TEXT NOT NULL, address TEXT NOT NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (producer_id, address));
CREATE TABLE IF NOT EXISTS timeline (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, lead_id TEXT NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS timeline_lead ON timeline (lead_id, seq);
-- The stats roll-up (store/rollup.rs): per producer, UTC day number and message tag ('' for the
-- lead-level row). The indexes below let the roll-up read only the days it recomputes.
CREATE TABLE IF NOT EXISTS stats_daily (
    producer_id TEXT NOT NULL, day INTEGER NOT NULL, tag TEXT NOT NULL, leads INTEGER NOT NULL,
    recovered INTEGER NOT NULL, sent INTEGER NOT NULL, clicked INTEGER NOT NULL,
    PRIMARY KEY (producer_id, day, tag));
CREATE INDEX IF NOT EXISTS leads_captured ON leads (captured_at);
CREATE INDEX IF NOT EXISTS leads_purchased ON leads (purchased_at) WHERE purchased_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_clicked ON outbox (clicked_at) WHERE clicked_at IS NOT NULL;
