//! The only code that knows about SQLite and AWS.

pub mod dynamodb;
pub mod http_sender;
pub mod sqlite;
