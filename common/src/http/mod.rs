//! HTTP glue shared by every Lambda and by `crm-local`: auth, parsing, routing, the error envelope.

pub mod error;
mod fields;
mod handlers;
// crm-local's HTTP server: Lambda functions get their requests from the runtime.
pub mod dashboard;
#[cfg(feature = "embedded")]
pub mod local_server;
pub mod openapi;
mod requests;
pub mod routes;
mod schema;

use lambda_http::http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use lambda_http::{Body, Request, RequestExt, Response};
use uuid::Uuid;

use crate::error::Error;
use crate::service;
use crate::service::deps::Deps;
use error::HttpError;
use routes::{match_route, RequestBody, Route};

pub use crate::request_limits::{
    BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_URI_BYTES,
};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id, when the server made it before `handle` (crm-local, which can refuse a
/// request before `handle` runs and still names it); on Lambda it is API Gateway's.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Serves one request for the given routes: the whole request path of every HTTP function.
pub async fn handle(deps: &Deps, routes: &[Route], request: Request) -> Response<Body> {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .or_else(|| {
            request
                .lambda_context_ref()
                .map(|context| context.request_id.clone())
        })
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let response = match serve(deps, routes, &request).await {
        Ok(response) => response,
        Err(error) => error::into_response(error, &request_id),
    };
    // A Lambda's metrics of this request (events accepted, what a fan-out or a test attempt
    // did), as EMF log lines; nothing in crm-local, which keeps totals for `GET /metrics`.
    deps.metrics.flush();
    with_request_id(response, &request_id)
}

/// The error's envelope, carrying the request id, for a request refused before `handle`.
pub fn refuse(error: HttpError, request_id: &str) -> Response<Body> {
    with_request_id(error::into_response(error, request_id), request_id)
}

fn with_request_id(mut response: Response<Body>, request_id: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

async fn serve(
    deps: &Deps,
    routes: &[Route],
    request: &Request,
) -> Result<Response<Body>, HttpError> {
    let (route, params) = match_route(routes, request.method(), request.uri().path())?;
    if request.body().len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge.into());
    }
    // A body is read only as what it says it is: a form or text body is never parsed as JSON
    // by luck. Checked before the key, like the size: it needs no store read.
    if route.operation.request_body() != RequestBody::None
        && !request.body().is_empty()
        && !declares_json(request.headers())
    {
        return Err(HttpError::UnsupportedMediaType);
    }
    if route.operation == routes::Operation::OpenApi {
        return Ok(openapi::response());
    }
    if route.operation == routes::Operation::Dashboard {
        return dashboard::asset(route.path).ok_or(HttpError::NoRoute);
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

/// One `Content-Type` that `is_json_media_type` accepts. A body without one is refused, as
/// Svix's API does (curl's `-d` without `-H` sends a form's type, and fetch's default for a
/// string is text/plain: neither says JSON).
fn declares_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().is_ok_and(is_json_media_type),
        _ => false,
    }
}

/// `application/json` or `application/<name>+json` (RFC 6839), any case, with parameters; a
/// `charset`, if given, must be UTF-8, JSON's only encoding between systems (RFC 8259).
pub fn is_json_media_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    let json = subtype == "json"
        || subtype
            .strip_suffix("+json")
            .is_some_and(|name| !name.is_empty() && name.bytes().all(is_token_byte));
    kind.eq_ignore_ascii_case("application")
        && json
        && parts.all(|parameter| match parameter.split_once('=') {
            Some((name, value)) => {
                !name.trim().eq_ignore_ascii_case("charset")
                    || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            None => parameter.trim().is_empty(),
        })
}

/// A character of an HTTP token (RFC 9110 §5.6.2).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_json_and_utf_8() {
        for accepted in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json;",
            "application/merge-patch+json",
            "application/vnd.api+json; ext=x",
        ] {
            assert!(is_json_media_type(accepted), "{accepted}");
        }
        for refused in [
            "",
            "json",
            "application/x-www-form-urlencoded",
            "text/plain;charset=UTF-8",
            "text/json",
            "application/jsonx",
            "application/+json",
            "application/a b+json",
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf-16",
            "multipart/form-data; boundary=x",
        ] {
            assert!(!is_json_media_type(refused), "{refused}");
        }
    }

    #[test]
    fn a_body_declares_json_once() {
        let mut headers = HeaderMap::new();
        assert!(!declares_json(&headers));
        headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(declares_json(&headers));
        headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!declares_json(&headers), "two types are no type");
    }
}
