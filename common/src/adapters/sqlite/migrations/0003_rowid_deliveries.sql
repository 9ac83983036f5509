-- Deliveries and attempts become rowid tables. WITHOUT ROWID stores rows in an index b-tree,
-- where a row over about 1 KB (a delivery's payload, an attempt's response body) spills to
-- overflow pages; every key comparison of a lookup or insert on such a page then reads the
-- whole row back through them (a quarter of the writer thread's time in the fan-out
-- profile), and every update rewrites them. A rowid table keeps a row of up to about 4 KB
-- on its page and the key in its primary-key index.
CREATE TABLE deliveries_rowid (
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
);
INSERT INTO deliveries_rowid (tenant_id, id, webhook_id, event_id, event, payload, status,
    attempt_count, last_status_code, last_error, next_attempt_at, lease_until, created_at,
    updated_at, version)
SELECT tenant_id, id, webhook_id, event_id, event, payload, status, attempt_count,
    last_status_code, last_error, next_attempt_at, lease_until, created_at, updated_at, version
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_rowid RENAME TO deliveries;
CREATE INDEX deliveries_by_webhook ON deliveries (tenant_id, webhook_id, id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('PENDING', 'RETRYING');
CREATE INDEX deliveries_failed ON deliveries (tenant_id, id) WHERE status = 'FAILED';
CREATE TABLE delivery_attempts_rowid (
    tenant_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    at TEXT NOT NULL,
    status_code INTEGER,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    response_body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, delivery_id, number)
);
INSERT INTO delivery_attempts_rowid (tenant_id, delivery_id, number, at, status_code,
    duration_ms, error, response_body)
SELECT tenant_id, delivery_id, number, at, status_code, duration_ms, error, response_body
FROM delivery_attempts;
DROP TABLE delivery_attempts;
ALTER TABLE delivery_attempts_rowid RENAME TO delivery_attempts;
