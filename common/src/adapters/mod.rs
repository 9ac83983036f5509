//! The only code that knows about SQLite and AWS.

pub mod dynamodb;
pub mod http_sender;
pub mod sqlite;
pub mod sqlite_queue;
mod sqlite_webhooks;
pub mod sqs;
