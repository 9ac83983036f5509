//! Black-box tests: one binary, many modules (one link on two cores).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

mod api;
mod api_keys;
mod audit;
mod bad_input;
mod bounded_fan_out;
mod conflicts;
mod conformance;
mod contention;
mod crm_local;
mod dashboard;
mod delivery;
mod delivery_search;
mod endpoint_health;
mod fairness;
mod graphql;
mod idempotency;
mod infra;
mod invariant;
mod isolation;
mod lambda_events;
mod layers;
mod limits;
mod local;
mod local_delivery;
mod local_edges;
mod metrics;
mod openapi;
mod permissions;
mod queue;
mod rate_limit;
mod receiver;
mod recover;
mod replay;
mod resend;
mod retention;
mod retry_schedules;
mod secrets_at_rest;
mod seed_contracts;
mod soak;
mod stale_clients;
mod sweeper;
mod sync_batch;
mod sync_history;
mod upgrade;
mod webhooks_api;
