-- Notify's events go through the outbox too, and say when they happened.
ALTER TABLE outbox ADD COLUMN occurred_at TEXT;
