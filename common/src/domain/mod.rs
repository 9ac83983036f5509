//! Pure types and rules: no I/O, no AWS types.

pub mod auth;
pub mod client;
pub mod event;
pub mod page;
pub mod sync_status;
pub mod target;
pub mod tenant;
pub mod validation;
