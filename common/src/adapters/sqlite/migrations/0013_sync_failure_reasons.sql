-- What a sync job last reported of a client: when it last reported an attempt's outcome
-- (SYNCED or FAILED), and why the last failure happened (cleared by SYNCED). NULL for every
-- client written before, as for one never reported on.
ALTER TABLE clients ADD COLUMN last_sync_attempt_at TEXT;
ALTER TABLE clients ADD COLUMN last_sync_error TEXT;
ALTER TABLE clients ADD COLUMN last_sync_error_code TEXT;
