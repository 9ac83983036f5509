//! The REST face's request bodies: each reads a JSON body into its use case's command
//! (`service::input::Input`) and describes it to the OpenAPI document. The shape of the body
//! (required fields, types, null, unknown fields) is read here; the values' rules are the
//! domain's, checked on the command.

pub mod audit;
pub mod clients;
pub mod deliveries;
pub mod keys;
pub mod sync;
pub mod webhooks;

/// The first value of a query-string parameter (a repeated one keeps its first, as on every
/// route), percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
