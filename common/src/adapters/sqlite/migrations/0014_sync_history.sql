-- A client's sync history (GET /api/clients/{id}/sync-history): one row per real change of its
-- sync status, inserted in the transaction of the change. Ids are UUIDv7 of the change's time
-- (`domain::sync_history`): the primary key serves the retention sweep (oldest ids first), the
-- second index a client's history, newest first. A deleted client's rows stay until the sweep
-- removes them, as on DynamoDB, where its TTL does.
CREATE TABLE sync_history (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    at TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    error TEXT,
    error_code TEXT
);
CREATE INDEX sync_history_by_client ON sync_history (tenant_id, client_id, id);
