//! The one place where errors become HTTP: `{success:false, error, details?}` with the right status.

use lambda_http::http::header::{HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::reply::{json_response, public_message};

/// A refusal of the HTTP face itself, made before any use case runs, or a use case's error.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Core(#[from] Error),
    #[error("no route for this path")]
    NoRoute,
    /// The path exists but not with this method; `allow` lists the methods it has.
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<String> },
    /// A body that is not declared as JSON (`Content-Type`) on a route that reads JSON.
    #[error("request body not declared as JSON")]
    UnsupportedMediaType,
    /// The request target (path and query) is longer than the server reads.
    #[error("request target too long")]
    UriTooLong,
    /// The request line and header fields are larger than the server reads.
    #[error("request header fields too large")]
    HeadersTooLarge,
    /// The body did not arrive in time (crm-local; API Gateway has its own limits).
    #[error("request body not received in time")]
    RequestTimeout,
}

fn status_of(error: &HttpError) -> StatusCode {
    let error = match error {
        HttpError::Core(error) => error,
        HttpError::NoRoute => return StatusCode::NOT_FOUND,
        HttpError::MethodNotAllowed { .. } => return StatusCode::METHOD_NOT_ALLOWED,
        HttpError::UnsupportedMediaType => return StatusCode::UNSUPPORTED_MEDIA_TYPE,
        HttpError::UriTooLong => return StatusCode::URI_TOO_LONG,
        HttpError::HeadersTooLarge => return StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        HttpError::RequestTimeout => return StatusCode::REQUEST_TIMEOUT,
    };
    status_of_core(error)
}

/// The status a use case's error answers with (also each refused entry's `statusCode` in a
/// batch's answer).
pub fn status_of_core(error: &Error) -> StatusCode {
    match error {
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Unauthorized | Error::KeyExpired(_) => StatusCode::UNAUTHORIZED,
        // A limit of the deployment, not a request to retry: 429 would tell a client to try
        // again, and only deleting a webhook makes room (docs/architecture.md §Limits).
        Error::Forbidden(_) | Error::WebhookLimitReached { .. } => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Conflict(_) | Error::Contended(_) => StatusCode::CONFLICT,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The sentence a caller reads: a use case's as both faces word it (`reply::public_message`),
/// the face's own refusals here.
fn message_of(error: &HttpError) -> String {
    match error {
        HttpError::Core(error) => public_message(error),
        HttpError::NoRoute => "No route matches this path.".to_owned(),
        HttpError::MethodNotAllowed { .. } => "Method not allowed for this path.".to_owned(),
        HttpError::UnsupportedMediaType => {
            "Request body must be JSON, sent with Content-Type: application/json.".to_owned()
        }
        HttpError::UriTooLong => format!(
            "Request target (path and query) exceeds {} KiB.",
            super::MAX_URI_BYTES / 1024
        ),
        HttpError::HeadersTooLarge => format!(
            "Request line and header fields exceed {} KiB.",
            super::MAX_HEAD_BYTES / 1024
        ),
        HttpError::RequestTimeout => format!(
            "Request body was not received within {} s.",
            super::BODY_READ_TIMEOUT.as_secs()
        ),
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

/// Messages are sentences for the caller; internals are logged, never returned.
pub fn into_response(error: HttpError, request_id: &str) -> Response<Body> {
    let status = status_of(&error);
    let mut envelope = ErrorEnvelope {
        success: false,
        error: String::new(),
        details: None,
        request_id: None,
    };
    match &error {
        HttpError::Core(Error::Invalid { details, .. }) => {
            envelope.details = Some(details.clone()).filter(|details| !details.is_empty());
        }
        HttpError::Core(Error::Internal(cause)) => {
            tracing::error!(request_id, error = %cause, "internal error");
            envelope.request_id = Some(request_id.to_owned());
        }
        _ => {}
    }
    envelope.error = message_of(&error);
    let mut response = json_response(status, &envelope);
    match &error {
        HttpError::Core(Error::Unauthorized) => {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // RFC 6750 §3.1: a token that expired is an invalid token.
        HttpError::Core(Error::KeyExpired(_)) => {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    r#"Bearer error="invalid_token", error_description="The API key expired""#,
                ),
            );
        }
        HttpError::MethodNotAllowed { allow } => {
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                response.headers_mut().insert(ALLOW, value);
            }
        }
        HttpError::Core(Error::TooManyRequests {
            retry_after_secs, ..
        }) => {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        _ => {}
    }
    response
}
