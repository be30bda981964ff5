-- Migration 0005: a platform's event ids live in a column of their own, `platform_id`, unique per
-- producer; `id` is the host's own (`<kind>:<uuid>`), so a platform event `e1#1` can never meet
-- the host's second row of `e1` (issue 13, defect 6). Rows stored before keep their `id`; the
-- platform's ids among them are copied: every id but the host's own shapes — timers, clicks,
-- opens, bounces and unsubscribes (`<kind>:…`), and the second row `<id>#1` of a platform event
-- whose first row `<id>` is there.
ALTER TABLE events ADD COLUMN platform_id TEXT;
UPDATE events SET platform_id = id
WHERE id NOT LIKE 'timer:%' AND id NOT LIKE 'clicked:%' AND id NOT LIKE 'opened:%'
  AND id NOT LIKE 'bounced:%' AND id NOT LIKE 'unsubscribed:%'
  AND NOT (id LIKE '%#1' AND EXISTS (
      SELECT 1 FROM events first
      WHERE first.producer_id = events.producer_id AND first.id = substr(events.id, 1, length(events.id) - 2)));
CREATE UNIQUE INDEX events_platform_id ON events (producer_id, platform_id);
