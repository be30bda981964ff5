-- Migration 0007: an upload whose check outlasts the request's budget is stored at once as
-- `compiling` and checked in the background, ending `ready` or `failed` (with the reason, in
-- `failure`). Components stored before were checked before they were stored: all `ready`.
ALTER TABLE plugins ADD COLUMN status TEXT NOT NULL DEFAULT 'ready';
ALTER TABLE plugins ADD COLUMN failure TEXT;
