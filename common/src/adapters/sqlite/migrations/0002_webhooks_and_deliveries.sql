-- Webhook delivery: the outbox learns which events were fanned out; webhooks, deliveries, their
-- attempts and counters, and the embedded queue.
ALTER TABLE outbox ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_undispatched ON outbox (created_at) WHERE dispatched = 0;
CREATE TABLE webhooks (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    url TEXT NOT NULL,
    description TEXT,
    events TEXT NOT NULL,
    headers TEXT NOT NULL,
    active INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    timeout_ms INTEGER NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE TABLE deliveries (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt_count INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    next_attempt_at TEXT,
    lease_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX deliveries_by_webhook ON deliveries (tenant_id, webhook_id, id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('PENDING', 'RETRYING');
CREATE INDEX deliveries_failed ON deliveries (tenant_id, id) WHERE status = 'FAILED';
CREATE TABLE delivery_attempts (
    tenant_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    at TEXT NOT NULL,
    status_code INTEGER,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    response_body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, delivery_id, number)
) WITHOUT ROWID;
CREATE TABLE delivery_counts (
    tenant_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    status TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id, status)
) WITHOUT ROWID;
CREATE TABLE queue_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_visible ON queue_messages (visible_at);
