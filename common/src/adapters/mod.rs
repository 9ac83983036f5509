//! The only code that knows about SQLite and AWS.

pub mod dynamodb;
#[cfg(feature = "embedded")]
mod event_windows;
pub mod http_sender;
pub mod sdk_config;
pub mod sdk_http;
// The embedded store links SQLite (over 1 MB): only crm-local, crm-admin and the tests need it.
#[cfg(feature = "embedded")]
pub mod sqlite;
#[cfg(feature = "embedded")]
mod sqlite_columns;
#[cfg(feature = "embedded")]
pub mod sqlite_queue;
#[cfg(feature = "embedded")]
mod sqlite_webhooks;
#[cfg(feature = "embedded")]
mod sqlite_writer;
pub mod sqs;
pub mod tls;
