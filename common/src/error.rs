//! The one error type of the use cases. It becomes HTTP in exactly one place, `http::error`
//! (which adds the refusals of the HTTP face itself), and GraphQL in `graphql::error`.

use std::collections::BTreeMap;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or a field is invalid; `details` names each bad field.
    #[error("{message}")]
    Invalid {
        message: String,
        details: BTreeMap<String, String>,
    },
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The key was right, but it stopped working at this time (`ApiKey::expires_at`).
    #[error("the API key expired at {0}")]
    KeyExpired(chrono::DateTime<chrono::Utc>),
    /// The wire name of the permission the key's role lacks, e.g. `WEBHOOK_CREATE`.
    #[error("the API key's role lacks {0}")]
    Forbidden(&'static str),
    /// What was not found, as a user would name it ("Client"). Another tenant's ids land here too.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A request body, or the event payload built from it, is larger than allowed.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Refused for now (`cause` says why): try again after `retry_after_secs`.
    #[error("too many requests: {cause:?}")]
    TooManyRequests {
        retry_after_secs: u64,
        cause: Throttle,
    },
    /// The tenant has as many webhooks as the deployment allows (`CRM_MAX_WEBHOOKS_PER_TENANT`):
    /// one must be deleted before another is created.
    #[error("the tenant has reached its limit of {limit} webhooks")]
    WebhookLimitReached { limit: usize },
    /// A conditional write lost to a concurrent one; the use case may retry.
    #[error("{0}")]
    Conflict(String),
    /// A write that kept colliding with concurrent transactions on one of its items (DynamoDB's
    /// `TransactionConflict`) through every retry (`what`: which write). Nothing was written:
    /// the caller may send the request again, as after a `Conflict`.
    #[error("{0}: still colliding with concurrent transactions")]
    Contended(&'static str),
    /// Anything the caller cannot fix: logged with the request id, answered with a bare 500.
    #[error("internal error: {0}")]
    Internal(BoxError),
}

/// Why a request was refused for now (`Error::TooManyRequests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// More requests are running than this process (or the caller's tenant) may run at once,
    /// and none ended within a short wait.
    Busy,
    /// The tenant has sent as many events in the current second as the deployment allows
    /// (`CRM_MAX_EVENTS_PER_SECOND`).
    EventsPerSecond { limit: usize },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid {
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Error {
        Error::Invalid {
            message: "Validation failed.".to_owned(),
            details: BTreeMap::from([(field.to_owned(), message.into())]),
        }
    }

    pub fn internal(error: impl Into<BoxError>) -> Error {
        Error::Internal(error.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
