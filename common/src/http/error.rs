//! The one place where errors become HTTP: `{success:false, error, details?}` with the right status.

use lambda_http::http::header::{HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::reply::{json_response, public_message};

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
