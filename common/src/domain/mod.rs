//! Pure types and rules: no I/O, no AWS types.

pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod client;
pub mod delivery;
pub mod delivery_search;
pub mod event;
pub mod health;
pub mod idempotency;
pub mod outbound;
pub mod outcome;
pub mod pacing;
pub mod page;
pub mod recovery;
pub mod replay;
pub mod retention;
pub mod sealed_secret;
pub mod signature;
pub mod stale_clients;
pub mod sync_history;
pub mod sync_status;
pub mod target;
pub mod tenant;
pub mod validation;
pub mod webhook;
