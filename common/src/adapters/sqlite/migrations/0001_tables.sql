-- The sync-status API: tenants, their API keys, clients, sync counters and the outbox.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id);
CREATE TABLE clients (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    company TEXT,
    phone TEXT,
    external_id TEXT,
    sync_status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_synced_at TEXT,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX clients_by_status ON clients (tenant_id, sync_status, id);
CREATE TABLE sync_counts (
    tenant_id TEXT PRIMARY KEY,
    total INTEGER NOT NULL,
    synced INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    needs_update INTEGER NOT NULL,
    last_sync_time TEXT
);
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX outbox_by_tenant ON outbox (tenant_id, id);
