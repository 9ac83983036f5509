-- API keys that expire (`expires_at`, NULL: never) and show when they were last used
-- (`last_used_at`, written at most once a minute per key, NULL: never used).
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
