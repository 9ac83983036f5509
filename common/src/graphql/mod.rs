//! `POST /graphql`: a second face over the same use cases as REST (seed 003's webhook
//! management API). Same API keys, roles and permissions; resolvers only translate.
//!
//! The SDL is kept in `infra/schema.graphql`; `tests/it/graphql/schema.rs` fails when it differs from
//! `sdl()` and rewrites it with `UPDATE_SCHEMA=1`.

pub mod error;
pub mod limits;
mod mutation;
mod query;
mod types;

use std::sync::OnceLock;

use async_graphql::{Context, EmptySubscription, SDLExportOptions, Schema, ServerError, ID};
use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::auth::Caller;
use crate::domain::page::{PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
use crate::error::{Error, Result};
use crate::json_body::parse_json;
use crate::reply::json_response;
use crate::service::deps::Deps;
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

/// Runs one GraphQL request for an authenticated caller. A request that finds no place to run
/// (`admission`) is the REST 429, a body that is not one request object the REST 400;
/// everything after that is a GraphQL response with `extensions.code` on each error.
///
/// The request runs on a blocking-pool thread, from reading the body to writing the answer: a
/// body of 256 KiB is milliseconds of CPU, and on the async workers it would hold up every other
/// request of the process meanwhile (another tenant's `GET /api/crm/sync-status` among them).
/// Such threads are as many as the admission allows.
pub async fn execute(deps: &Deps, caller: &Caller, body: &[u8]) -> Result<Response<Body>> {
    execute_within(deps, caller, body, limits::TimeBudgets::DEFAULT).await
}

/// `execute` with other time budgets (tests use short ones).
pub async fn execute_within(
    deps: &Deps,
    caller: &Caller,
    body: &[u8],
    budgets: limits::TimeBudgets,
) -> Result<Response<Body>> {
    let admitted = deps.admission.admit(caller.tenant_id).await?;
    let (deps, caller, body) = (deps.clone(), caller.clone(), body.to_vec());
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _admitted = admitted;
        let request = parse_request(&body)?;
        let response = runtime.block_on(run(deps, caller, request, budgets));
        Ok(json_response(StatusCode::OK, &response))
    })
    .await
    .map_err(Error::internal)?
}

/// Parses, checks the root fields (`limits`), then validates and executes within the
/// operation's time budget.
async fn run(
    deps: Deps,
    caller: Caller,
    mut request: async_graphql::Request,
    budgets: limits::TimeBudgets,
) -> async_graphql::Response {
    let operation_name = request.operation_name.clone();
    let budget = match request.parsed_query() {
        Ok(document) => match limits::check_root_fields(document) {
            Ok(()) => budgets.of(document, operation_name.as_deref()),
            Err(refusal) => {
                return refused(
                    ServerError::new(refusal, None),
                    error::GRAPHQL_VALIDATION_FAILED,
                )
            }
        },
        Err(parse_error) => return refused(parse_error, error::GRAPHQL_VALIDATION_FAILED),
    };
    let slots = ResolverSlots(tokio::sync::Semaphore::new(RESOLVERS_AT_ONCE));
    let request = request.data(deps).data(caller).data(slots);
    match tokio::time::timeout(budget, schema().execute(request)).await {
        Ok(mut response) => {
            error::label_uncoded(&mut response.errors);
            response
        }
        Err(_) => refused(
            ServerError::new(
                format!(
                    "The request ran out of its time budget ({} s) and was stopped; a \
                     mutation's writes made before then stay made. Ask for less in one request.",
                    budget.as_secs()
                ),
                None,
            ),
            error::TIMEOUT,
        ),
    }
}

/// A response of one error and no data.
fn refused(mut error: ServerError, code: &'static str) -> async_graphql::Response {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    async_graphql::Response::from_errors(vec![error])
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

/// Resolvers of one request that work at once. async-graphql resolves a query's root fields,
/// and a list's items, concurrently: unbounded, one document of 50 root fields was 50 store
/// calls at once, queued ahead of every other request's (the SQLite readers, or the requests to
/// DynamoDB).
pub const RESOLVERS_AT_ONCE: usize = 4;

/// The places of one request's resolvers (`RESOLVERS_AT_ONCE`).
struct ResolverSlots(tokio::sync::Semaphore);

/// What a resolver works with: the deps and caller `execute` put into the request, and one of
/// its resolver slots, held until the resolver returns (before the fields of its answer are
/// resolved, so a field never waits for its parent's slot).
async fn scope<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<(&'a Deps, &'a Caller, tokio::sync::SemaphorePermit<'a>)> {
    let missing = || {
        error::field_error(
            ctx,
            Error::internal("a GraphQL request ran without deps, caller or slots"),
        )
    };
    match (
        ctx.data::<Deps>(),
        ctx.data::<Caller>(),
        ctx.data::<ResolverSlots>(),
    ) {
        (Ok(deps), Ok(caller), Ok(slots)) => {
            let slot = slots.0.acquire().await.map_err(|_| missing())?;
            Ok((deps, caller, slot))
        }
        _ => Err(missing()),
    }
}

/// An `ID` argument that must be one of our UUIDs: REST's message for a bad path id.
fn parse_id(argument: &str, id: &ID) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid_field(argument, "must be a UUID"))
}

/// `first`/`after` as REST's `limit`/`cursor`, with the same checks; `first` is capped at 100.
fn page_request(first: Option<i32>, after: Option<String>) -> Result<PageRequest> {
    let limit = first.map(|n| i64::from(n).min(MAX_LIMIT as i64));
    PageRequest::new(limit, after.as_deref(), ("first", "after"))
}

/// Complexity of a connection field: its page size times the cost of one edge.
fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let size = first.map_or(DEFAULT_LIMIT, |n| n.clamp(1, MAX_LIMIT as i32) as usize);
    1 + size * child_complexity
}

/// Complexity of `webhooks`: a filtered page also pays one for each webhook it may look at,
/// whatever it returns (`service::webhooks::FILTER_SCAN`).
fn webhooks_cost(first: Option<i32>, filtered: bool, child_complexity: usize) -> usize {
    let scan = if filtered {
        crate::service::webhooks::FILTER_SCAN
    } else {
        0
    };
    page_cost(first, child_complexity) + scan
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
