-- A webhook's optional limit on deliveries a second (NULL: unlimited, as for every webhook
-- written before it).
ALTER TABLE webhooks ADD COLUMN rate_limit_per_second INTEGER;
