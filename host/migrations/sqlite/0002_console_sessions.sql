-- Console sign-in sessions (console/session.rs, store/sessions.rs), SQLite flavour.
-- The token itself is never stored: `token_hash` is its sha256, so a copy of the database
-- cannot be replayed as a live session.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY, producer_id TEXT NOT NULL, csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL);
CREATE INDEX console_sessions_producer ON console_sessions (producer_id);
