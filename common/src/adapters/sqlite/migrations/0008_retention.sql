-- Retention: the sweep removes finished deliveries (with their attempts and, once no delivery
-- needs it, their payload) whose last change is older than CRM_RETENTION_DAYS; this index
-- reads the oldest of them first, without reading the open ones.
CREATE INDEX deliveries_finished ON deliveries (updated_at)
    WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED');
