-- A webhook's own retry schedule: a JSON array of seconds; NULL for the deployment's.
ALTER TABLE webhooks ADD COLUMN retry_schedule TEXT;
