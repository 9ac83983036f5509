//! The REST face's request bodies: each reads a JSON body into its use case's command
//! (`service::input::Input`) and describes it to the OpenAPI document. The shape of the body
//! (required fields, types, null, unknown fields) is read here; the values' rules are the
//! domain's, checked on the command.

pub mod clients;
pub mod deliveries;
pub mod keys;
pub mod sync;
pub mod webhooks;
