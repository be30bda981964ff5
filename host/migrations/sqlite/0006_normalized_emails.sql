-- Migration 0006: addresses are stored normalized (trimmed, lowercased), as ingest now stores
-- them (domain::EmailAddress), so erasure, unsubscribe, suppression and lists compare with plain
-- equality (issue 13, defects 7 and 8). Suppressions and list members were stored lowercased
-- already (by Rust), but not trimmed; a row whose trimmed twin exists is left as it is (the
-- twin already says the same). LOWER() here folds at least ASCII; an older lead with a
-- non-ASCII capital on SQLite keeps it.
UPDATE leads SET email = LOWER(TRIM(email)) WHERE email <> LOWER(TRIM(email));
UPDATE suppressions SET address = TRIM(address)
WHERE address <> TRIM(address) AND NOT EXISTS (
    SELECT 1 FROM suppressions twin
    WHERE twin.producer_id = suppressions.producer_id AND twin.address = TRIM(suppressions.address));
UPDATE list_members SET email = TRIM(email)
WHERE email <> TRIM(email) AND NOT EXISTS (
    SELECT 1 FROM list_members twin
    WHERE twin.producer_id = list_members.producer_id AND twin.list_name = list_members.list_name
      AND twin.email = TRIM(list_members.email));
