-- The name of the claim a message is being sent under: only that claim may record its outcome,
-- so a worker whose lease ran out (and whose message another worker took over) changes nothing.
ALTER TABLE outbox ADD COLUMN claim TEXT;
