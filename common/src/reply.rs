//! What both faces (REST, GraphQL) answer with: a JSON response, and for an error the sentence
//! a caller reads (REST's `error`, GraphQL's `message`).

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::config;
use crate::error::{Error, Throttle};
use crate::request_limits;

/// The sentence a caller reads for an error (REST's `error`, GraphQL's `message`): never an
/// internal detail.
pub fn public_message(error: &Error) -> String {
    match error {
        Error::Invalid { message, .. } => message.clone(),
        Error::Unauthorized => "Missing or invalid API key.".to_owned(),
        Error::KeyExpired(at) => format!(
            "This API key expired at {}; an ADMIN can create a new one.",
            crate::time::rfc3339(*at)
        ),
        Error::Forbidden(permission) => {
            format!("This API key's role lacks the {permission} permission.")
        }
        Error::NotFound(what) => format!("{what} not found."),
        Error::PayloadTooLarge => {
            format!(
                "Request body exceeds {} KiB.",
                request_limits::MAX_BODY_BYTES / 1024
            )
        }
        Error::TooManyRequests {
            retry_after_secs,
            cause: Throttle::Busy,
        } => format!("Too many requests are running at once; retry in {retry_after_secs} s."),
        Error::TooManyRequests {
            retry_after_secs,
            cause: Throttle::EventsPerSecond { limit },
        } => format!(
            "This tenant has reached its limit of {limit} events per second ({}); retry in \
             {retry_after_secs} s.",
            config::MAX_EVENTS_PER_SECOND
        ),
        Error::WebhookLimitReached { limit } => format!(
            "This tenant has reached its limit of {limit} webhooks ({}).",
            config::MAX_WEBHOOKS_PER_TENANT
        ),
        Error::Conflict(message) => message.clone(),
        Error::Contended(_) => "Too many requests were writing the same records at once; nothing \
                                was changed. Try again."
            .to_owned(),
        Error::Internal(_) => "Internal server error.".to_owned(),
    }
}

pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
