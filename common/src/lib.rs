//! The CRM sync-status and webhook service: everything but the thin Lambda `main`s.

pub mod adapters;
pub mod admission;
pub mod config;
pub mod domain;
pub mod error;
#[cfg(feature = "faults")]
pub mod faults;
#[cfg(feature = "graphql")]
pub mod graphql;
pub mod http;
pub mod json_body;
pub mod lambda;
pub mod local;
pub mod logging;
pub mod metrics;
pub mod ports;
pub mod reply;
pub mod request_limits;
pub mod service;
pub mod time;
