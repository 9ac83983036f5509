-- Endpoint health, written by the worker alone (never by a change of the webhook), and why the
-- service deactivated a webhook.
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;
ALTER TABLE webhooks ADD COLUMN disabled_at TEXT;
ALTER TABLE webhooks ADD COLUMN last_success_at TEXT;
ALTER TABLE webhooks ADD COLUMN last_failure_at TEXT;
ALTER TABLE webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since TEXT;
