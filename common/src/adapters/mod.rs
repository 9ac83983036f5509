//! The only code that knows about SQLite and AWS.

pub mod dynamodb;
pub mod http_sender;
// The KMS client: only the functions that seal or open webhook secrets link it.
#[cfg(feature = "kms")]
pub mod kms;
pub mod main_key;
pub mod sdk_config;
pub mod sdk_http;
// The embedded store and queue link SQLite (over 1 MB): only crm-local, crm-admin and the tests
// need them.
#[cfg(feature = "embedded")]
pub mod sqlite;
pub mod sqs;
pub mod tls;
