//! The one place where the service's errors become GraphQL errors: the same sentences as REST
//! (`reply::public_message`), plus `extensions.code` (and `extensions.field` for a bad
//! field) so that clients can branch without parsing messages.

use async_graphql::{Context, ErrorExtensions, ServerError};

use crate::error::Error;
use crate::reply::public_message;

pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const FORBIDDEN: &str = "FORBIDDEN";
pub const NOT_FOUND: &str = "NOT_FOUND";
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
pub const CONFLICT: &str = "CONFLICT";
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";
/// The tenant has as many of something (webhooks) as the deployment allows.
pub const LIMIT_REACHED: &str = "LIMIT_REACHED";
/// The request ran out of its time budget (`graphql::limits`) and was stopped.
pub const TIMEOUT: &str = "TIMEOUT";
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
/// The document did not parse or validate (syntax, unknown field, limits): nothing ran.
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

fn coded(message: impl Into<String>, code: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, extensions| extensions.set("code", code))
}

/// A use case's error as this field's error. A validation error names each bad field in an
/// error of its own; all but the last are added to the response here, the last is returned.
pub fn field_error(ctx: &Context<'_>, error: Error) -> async_graphql::Error {
    match error {
        Error::Invalid { message, details } if !details.is_empty() => {
            let mut errors: Vec<async_graphql::Error> = details
                .into_iter()
                .map(|(field, detail)| {
                    coded(format!("{field}: {detail}"), BAD_USER_INPUT)
                        .extend_with(|_, extensions| extensions.set("field", field.as_str()))
                })
                .collect();
            let last = errors
                .pop()
                .unwrap_or_else(|| coded(message, BAD_USER_INPUT));
            for error in errors {
                ctx.add_error(ctx.set_error_path(error.into_server_error(ctx.item.pos)));
            }
            last
        }
        Error::Invalid { message, .. } => coded(message, BAD_USER_INPUT),
        Error::Forbidden(permission) => {
            coded(public_message(&error), FORBIDDEN).extend_with(|_, extensions| {
                extensions.set("permission", permission);
            })
        }
        Error::NotFound(_) => coded(public_message(&error), NOT_FOUND),
        Error::Unauthorized | Error::KeyExpired(_) => {
            coded(public_message(&error), UNAUTHENTICATED)
        }
        Error::PayloadTooLarge => coded(public_message(&error), PAYLOAD_TOO_LARGE),
        Error::TooManyRequests {
            retry_after_secs, ..
        } => coded(public_message(&error), TOO_MANY_REQUESTS)
            .extend_with(|_, extensions| extensions.set("retryAfter", retry_after_secs)),
        Error::WebhookLimitReached { limit } => coded(public_message(&error), LIMIT_REACHED)
            .extend_with(|_, extensions| extensions.set("limit", limit as u64)),
        Error::Conflict(_) | Error::Contended(_) => coded(public_message(&error), CONFLICT),
        Error::Internal(ref cause) => {
            tracing::error!(error = %cause, "internal error in a GraphQL resolver");
            coded(public_message(&error), INTERNAL_SERVER_ERROR)
        }
    }
}

/// The `extensions.code` of a use case's error (also a batch entry's `code`).
pub fn code_of(error: &Error) -> &'static str {
    match error {
        Error::Invalid { .. } => BAD_USER_INPUT,
        Error::Forbidden(_) => FORBIDDEN,
        Error::NotFound(_) => NOT_FOUND,
        Error::Unauthorized | Error::KeyExpired(_) => UNAUTHENTICATED,
        Error::PayloadTooLarge => PAYLOAD_TOO_LARGE,
        Error::TooManyRequests { .. } => TOO_MANY_REQUESTS,
        Error::WebhookLimitReached { .. } => LIMIT_REACHED,
        Error::Conflict(_) | Error::Contended(_) => CONFLICT,
        Error::Internal(_) => INTERNAL_SERVER_ERROR,
    }
}

/// `?` for use-case results inside resolvers: maps through `field_error`, never through
/// async-graphql's blanket `From<Display>` (which would pass internal messages through).
pub trait OrFieldError<T> {
    fn or_field_error(self, ctx: &Context<'_>) -> async_graphql::Result<T>;

    /// For a nullable field: the error is reported and the field is null, as the GraphQL spec
    /// has it (async-graphql would otherwise leave the field out of `data`).
    fn or_null(self, ctx: &Context<'_>) -> Option<T>;
}

impl<T> OrFieldError<T> for crate::error::Result<T> {
    fn or_field_error(self, ctx: &Context<'_>) -> async_graphql::Result<T> {
        self.map_err(|error| field_error(ctx, error))
    }

    fn or_null(self, ctx: &Context<'_>) -> Option<T> {
        match self {
            Ok(value) => Some(value),
            Err(error) => {
                let error = field_error(ctx, error).into_server_error(ctx.item.pos);
                ctx.add_error(ctx.set_error_path(error));
                None
            }
        }
    }
}

/// Errors that did not come from a resolver carry no code yet: parse and validation errors
/// (no path: nothing ran) and argument coercion errors (a path: the input was wrong).
pub fn label_uncoded(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            let code = if error.path.is_empty() {
                GRAPHQL_VALIDATION_FAILED
            } else {
                BAD_USER_INPUT
            };
            extensions.set("code", code);
        }
    }
}
