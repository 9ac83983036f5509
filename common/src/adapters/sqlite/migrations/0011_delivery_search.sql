-- The tenant's delivery search (GET /api/webhooks/deliveries): one index per set of the search's
-- fixed dimensions (the tenant's is the primary key, a webhook's `deliveries_by_webhook`), each
-- ordered by status, then id. A search with a status reads one id range of one index; one
-- without reads the five status ranges and merges them, newest first. The same shape as the
-- DynamoDB store's search indexes: a status change rewrites four index entries, not six.
CREATE INDEX deliveries_search_status ON deliveries (tenant_id, status, id);
CREATE INDEX deliveries_search_event ON deliveries (tenant_id, event, status, id);
CREATE INDEX deliveries_search_webhook ON deliveries (tenant_id, webhook_id, status, id);
CREATE INDEX deliveries_search_webhook_event ON deliveries (tenant_id, webhook_id, event, status, id);
