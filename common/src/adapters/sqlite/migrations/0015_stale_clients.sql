-- The stale-clients list (`GET /api/clients?syncedBefore=`): a tenant's clients in the order of
-- their last successful sync, never-synced (NULL) first, by id within one time. A page is one
-- range of this index.
CREATE INDEX clients_by_last_sync ON clients (tenant_id, last_synced_at, id);
