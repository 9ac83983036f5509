//! HTTP glue shared by every Lambda and by `crm-local`: auth, parsing, routing, the error envelope.

pub mod error;
mod handlers;
// crm-local's HTTP server: Lambda functions get their requests from the runtime.
#[cfg(feature = "embedded")]
pub mod local_server;
pub mod openapi;
pub mod routes;

use lambda_http::http::header::{HeaderValue, AUTHORIZATION};
use lambda_http::{Body, Request, RequestExt, Response};
use uuid::Uuid;

use crate::deps::Deps;
use crate::error::Error;
use crate::service;
use routes::{match_route, Route};

/// Bodies above this are refused with 413 before any parsing (docs/architecture.md §Limits).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Serves one request for the given routes: the whole request path of every HTTP function.
pub async fn handle(deps: &Deps, routes: &[Route], request: Request) -> Response<Body> {
    let request_id = request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let mut response = match serve(deps, routes, &request).await {
        Ok(response) => response,
        Err(error) => error::into_response(error, &request_id),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

async fn serve(deps: &Deps, routes: &[Route], request: &Request) -> Result<Response<Body>, Error> {
    let (route, params) = match_route(routes, request.method(), request.uri().path())?;
    if request.body().len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge);
    }
    if route.operation == routes::Operation::OpenApi {
        return Ok(openapi::response());
    }
    if route.public {
        return handlers::dispatch_public(route.operation);
    }
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let caller = service::auth::authenticate(deps, authorization).await?;
    handlers::dispatch(deps, route.operation, &caller, request, &params).await
}
