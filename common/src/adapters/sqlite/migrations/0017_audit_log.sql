-- The audit log (`GET /api/audit`): one row per management action, written in the transaction of
-- the change it records where there is one. `id` is a UUIDv7 of `at`: a page is one range of the
-- tenant's ids, newest first; `changes` is a JSON object of the fields set (never a secret).
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_key_id TEXT,
    actor_key_name TEXT NOT NULL,
    target_id TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
