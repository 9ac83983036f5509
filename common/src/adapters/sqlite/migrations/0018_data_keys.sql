-- The deployment's data keys (docs/architecture.md §Secrets at rest), each wrapped by the main
-- key (`wrapped_by` says which), never in the clear. Webhook secrets are sealed with them; a
-- sealed secret names its data key's id.
CREATE TABLE data_keys (
    id INTEGER PRIMARY KEY,
    wrapped BLOB NOT NULL,
    wrapped_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
