-- Notify's idempotency keys: one record per tenant and key, kept 24 hours (expires_at, Unix
-- milliseconds); a lookup ignores an expired one, and each claim removes a few of them.
CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- JSON array of the first request's delivery ids; NULL until it answered.
    delivery_ids TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
