//! The one place where errors become HTTP: `{success:false, error, details?}` with the right status.

use lambda_http::http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use std::collections::BTreeMap;

use serde::Serialize;

use crate::config;
use crate::error::{Error, Throttle};

pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        // A limit of the deployment, not a request to retry: 429 would tell a client to try
        // again, and only deleting a webhook makes room (docs/architecture.md §Limits).
        Error::Forbidden(_) | Error::WebhookLimitReached { .. } => StatusCode::FORBIDDEN,
        Error::NotFound(_) | Error::NoRoute => StatusCode::NOT_FOUND,
        Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::UriTooLong => StatusCode::URI_TOO_LONG,
        Error::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error envelope of seed 000: `{success:false, error, details?}` (+ `requestId` on a 500).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"success": false, "error": "Validation failed.", "details": {"status": "must be one of SYNCED, PENDING, FAILED, NEEDS_UPDATE"}}))]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    /// A sentence for the caller.
    pub error: String,
    /// One message per bad field, on a 400.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
    /// On a 500: quote it when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The sentence a caller reads for an error (REST's `error`, GraphQL's `message`): never an
/// internal detail.
pub fn public_message(error: &Error) -> String {
    match error {
        Error::Invalid { message, .. } => message.clone(),
        Error::Unauthorized => "Missing or invalid API key.".to_owned(),
        Error::Forbidden(permission) => {
            format!("This API key's role lacks the {permission} permission.")
        }
        Error::NotFound(what) => format!("{what} not found."),
        Error::NoRoute => "No route matches this path.".to_owned(),
        Error::MethodNotAllowed { .. } => "Method not allowed for this path.".to_owned(),
        Error::PayloadTooLarge => {
            format!("Request body exceeds {} KiB.", super::MAX_BODY_BYTES / 1024)
        }
        Error::UnsupportedMediaType => {
            "Request body must be JSON, sent with Content-Type: application/json.".to_owned()
        }
        Error::UriTooLong => format!(
            "Request target (path and query) exceeds {} KiB.",
            super::MAX_URI_BYTES / 1024
        ),
        Error::HeadersTooLarge => format!(
            "Request line and header fields exceed {} KiB.",
            super::MAX_HEAD_BYTES / 1024
        ),
        Error::RequestTimeout => format!(
            "Request body was not received within {} s.",
            super::BODY_READ_TIMEOUT.as_secs()
        ),
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
        Error::Internal(_) => "Internal server error.".to_owned(),
    }
}

/// Messages are sentences for the caller; internals are logged, never returned.
pub fn into_response(error: Error, request_id: &str) -> Response<Body> {
    let status = status_of(&error);
    let mut envelope = ErrorEnvelope {
        success: false,
        error: String::new(),
        details: None,
        request_id: None,
    };
    match &error {
        Error::Invalid { details, .. } => {
            envelope.details = Some(details.clone()).filter(|details| !details.is_empty());
        }
        Error::Internal(cause) => {
            tracing::error!(request_id, error = %cause, "internal error");
            envelope.request_id = Some(request_id.to_owned());
        }
        _ => {}
    }
    envelope.error = public_message(&error);
    let mut response = json_response(status, &envelope);
    match &error {
        Error::Unauthorized => {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::MethodNotAllowed { allow } => {
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                response.headers_mut().insert(ALLOW, value);
            }
        }
        Error::TooManyRequests {
            retry_after_secs, ..
        } => {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        _ => {}
    }
    response
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
