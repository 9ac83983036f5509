//! `POST /graphql`: a second face over the same use cases as REST (seed 003's webhook
//! management API). Same API keys, roles and permissions; resolvers only translate.
//!
//! The SDL is kept in `infra/schema.graphql`; `tests/it/graphql.rs` fails when it differs from
//! `sdl()` and rewrites it with `UPDATE_SCHEMA=1`.

pub mod error;
mod mutation;
mod query;
mod types;

use std::sync::OnceLock;

use async_graphql::{Context, EmptySubscription, SDLExportOptions, Schema, ID};
use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::Value;
use uuid::Uuid;

use crate::deps::Deps;
use crate::domain::auth::Caller;
use crate::domain::page::{PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
use crate::domain::validation::parse_json;
use crate::error::{Error, Result};
use crate::http::error::json_response;
pub use mutation::Mutation;
pub use query::Query;

pub type CrmSchema = Schema<Query, Mutation, EmptySubscription>;

/// Deeper than any query of this schema needs (5) but enough for the introspection query of
/// GraphiQL and other tools (13).
pub const MAX_DEPTH: usize = 16;
/// A full page of 100 deliveries with their attempts costs about 2,000.
pub const MAX_COMPLEXITY: usize = 5_000;

/// Built once per process (per Lambda container).
pub fn schema() -> &'static CrmSchema {
    static SCHEMA: OnceLock<CrmSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::build(Query, Mutation, EmptySubscription)
            .limit_depth(MAX_DEPTH)
            .limit_complexity(MAX_COMPLEXITY)
            .limit_directives(10)
            .finish()
    })
}

/// The schema in SDL, as kept in `infra/schema.graphql`.
pub fn sdl() -> String {
    schema().sdl_with_options(SDLExportOptions::new().include_specified_by())
}

/// Runs one GraphQL request for an authenticated caller. A body that is not one request object
/// is the REST 400; everything after that is a GraphQL response with `extensions.code` on
/// each error.
pub async fn execute(deps: &Deps, caller: &Caller, body: &[u8]) -> Result<Response<Body>> {
    let request = parse_request(body)?.data(deps.clone()).data(*caller);
    let mut response = schema().execute(request).await;
    error::label_uncoded(&mut response.errors);
    Ok(json_response(StatusCode::OK, &response))
}

fn parse_request(body: &[u8]) -> Result<async_graphql::Request> {
    match parse_json(body)? {
        Value::Array(_) => Err(Error::invalid(
            "Batched operations are not supported: send one {query, variables, operationName} object.",
        )),
        Value::Object(object) if !matches!(object.get("query"), Some(Value::String(_))) => {
            Err(Error::invalid_field(
                "query",
                "is required: a string holding a GraphQL document",
            ))
        }
        value @ Value::Object(_) => serde_json::from_value(value).map_err(|error| {
            Error::invalid(format!(
                "Not a GraphQL request ({error}): send {{query, variables, operationName}}."
            ))
        }),
        _ => Err(Error::invalid(
            "Request body must be a JSON object: {query, variables, operationName}.",
        )),
    }
}

/// `GET /graphql`: GraphiQL, for trying queries with an API key in its Headers tab.
pub fn graphiql_page() -> Response<Body> {
    let mut response = Response::new(Body::Text(include_str!("graphiql.html").to_owned()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The deps and caller put into every request by `execute`.
fn scope<'a>(ctx: &Context<'a>) -> async_graphql::Result<(&'a Deps, &'a Caller)> {
    match (ctx.data::<Deps>(), ctx.data::<Caller>()) {
        (Ok(deps), Ok(caller)) => Ok((deps, caller)),
        _ => Err(error::field_error(
            ctx,
            Error::internal("a GraphQL request ran without deps or caller"),
        )),
    }
}

/// An `ID` argument that must be one of our UUIDs: REST's message for a bad path id.
fn parse_id(argument: &str, id: &ID) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid_field(argument, "must be a UUID"))
}

/// `first`/`after` as REST's `limit`/`cursor`, with the same checks; `first` is capped at 100.
fn page_request(first: Option<i32>, after: Option<String>) -> Result<PageRequest> {
    let limit = first.map(|n| n.min(MAX_LIMIT as i32).to_string());
    PageRequest::parse(limit.as_deref(), after.as_deref()).map_err(|error| match error {
        Error::Invalid { message, details } => Error::Invalid {
            message,
            details: details
                .into_iter()
                .map(|(field, detail)| {
                    let field = match field.as_str() {
                        "limit" => "first".to_owned(),
                        "cursor" => "after".to_owned(),
                        _ => field,
                    };
                    (field, detail)
                })
                .collect(),
        },
        other => other,
    })
}

/// Complexity of a connection field: its page size times the cost of one edge.
fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let size = first.map_or(DEFAULT_LIMIT, |n| n.clamp(1, MAX_LIMIT as i32) as usize);
    1 + size * child_complexity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_capped_and_named() {
        assert_eq!(page_request(Some(500), None).unwrap().limit, MAX_LIMIT);
        assert_eq!(page_request(None, None).unwrap().limit, DEFAULT_LIMIT);
        for (first, after, field) in [
            (Some(0), None, "first"),
            (Some(-3), None, "first"),
            (None, Some("zzz".to_owned()), "after"),
        ] {
            match page_request(first, after) {
                Err(Error::Invalid { details, .. }) => {
                    assert!(details.contains_key(field), "{details:?}")
                }
                other => panic!("expected a validation error, got {other:?}"),
            }
        }
    }

    #[test]
    fn only_single_request_objects_are_accepted() {
        for body in [
            &b"[]"[..],
            b"[{\"query\":\"{ syncStatus { totalClients } }\"}]",
            b"1",
            b"{}",
            b"{\"query\": 5}",
        ] {
            assert!(
                matches!(parse_request(body), Err(Error::Invalid { .. })),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let request =
            parse_request(br#"{"query":"query Q($id: ID!) { webhook(id: $id) { id } }","variables":{"id":"x"},"operationName":"Q"}"#)
                .unwrap();
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
    }
}
