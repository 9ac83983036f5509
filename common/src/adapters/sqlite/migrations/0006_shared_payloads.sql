-- An event's payload is stored once, shared by its deliveries: a fan-out to a thousand
-- webhooks wrote a thousand copies.
CREATE TABLE payloads (
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
INSERT OR IGNORE INTO payloads (tenant_id, event_id, payload, created_at)
SELECT tenant_id, event_id, payload, created_at FROM deliveries;
ALTER TABLE deliveries DROP COLUMN payload;
