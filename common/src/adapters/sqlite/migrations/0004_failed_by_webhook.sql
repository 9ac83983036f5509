-- A retry of one webhook's FAILED deliveries reads only those.
DROP INDEX deliveries_failed;
CREATE INDEX deliveries_failed ON deliveries (tenant_id, webhook_id, id) WHERE status = 'FAILED';
