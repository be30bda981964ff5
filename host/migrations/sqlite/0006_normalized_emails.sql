-- Migration 0004: leads' addresses are stored normalized (trimmed, lowercased), as ingest now
-- stores them (domain::EmailAddress), so erasure and unsubscribe compare with plain equality
-- (issue 13, defects 7 and 8). Suppressions and list members were stored lowercased already.
-- LOWER() here folds at least ASCII; an older row with a non-ASCII capital on SQLite keeps it.
UPDATE leads SET email = LOWER(TRIM(email)) WHERE email <> LOWER(TRIM(email));
