//! The one place where failures become GraphQL errors with an `extensions.code`.
//!
//! Domain refusals and bad input are `VALIDATION` with the domain's own message (it says what to
//! do instead); a stale `expectedVersion` is `CONFLICT`; unknown ids are `NOT_FOUND`; the
//! authorisation function's refusals are `FORBIDDEN`. Anything else is `INTERNAL` with a fixed
//! message: the cause goes to the log (without personal data), never to the client.

use async_graphql::{ErrorExtensions, ServerError};
use homeward_engine::authz::AccessDenied;
use homeward_engine::vault::{Unreadable, VaultError};
use homeward_engine::CommandError;
use homeward_store::StoreError;
use homeward_workflows::plan::PlanError;

/// The error codes a client can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    Validation,
    Conflict,
    /// An idempotency key sent again with a different request.
    IdempotencyKeyReused,
    /// The server could not carry the command out in time (others kept writing the same
    /// plan); nothing was written, and the same request may be sent again.
    Busy,
    /// Too many requests from one token (or one address) for a while; `Retry-After` says when
    /// to send again.
    RateLimited,
    /// The request took longer than the server allows and was stopped.
    Timeout,
    /// An email the request depends on (an invitation, a notice to a former address) could not
    /// be sent; the message says what was done and what to send again.
    MailNotSent,
    /// The person's data was erased: nothing more can be recorded about them.
    Erased,
    /// A stored personal value cannot be read (altered or damaged); the rest of the record
    /// reads.
    Unreadable,
    /// A legal hold keeps the person's data: it cannot be erased until a supervisor lifts it.
    LegalHold,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Validation => "VALIDATION",
            Self::Conflict => "CONFLICT",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::Busy => "BUSY",
            Self::RateLimited => "RATE_LIMITED",
            Self::Timeout => "TIMEOUT",
            Self::MailNotSent => "MAIL_NOT_SENT",
            Self::Erased => "ERASED",
            Self::LegalHold => "LEGAL_HOLD",
            Self::Unreadable => "UNREADABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

/// An API failure: a code and a message meant for the person who sent the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// For `BUSY`: seconds after which the same request may be sent again
    /// (`extensions.retryAfterSeconds`).
    pub retry_after_seconds: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_seconds: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(Code::Validation, message)
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(Code::NotFound, format!("no {what} with id {id}"))
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            Code::Unauthenticated,
            "send a valid token in the Authorization header (Authorization: Bearer hw_...); \
             tokens are created with `homeward token create`",
        )
    }

    /// A failure whose cause must not reach the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            Code::Internal,
            "something went wrong on the server; nothing was changed. Try again, and tell the \
             administrator if it keeps happening",
        )
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        async_graphql::Error::new(e.message).extend_with(|_, ext| {
            ext.set("code", e.code.as_str());
            if let Some(seconds) = e.retry_after_seconds {
                ext.set("retryAfterSeconds", seconds);
            }
        })
    }
}

impl From<AccessDenied> for ApiError {
    fn from(e: AccessDenied) -> Self {
        Self::new(Code::Forbidden, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // The request's key was used for another request; the resolver says which.
            StoreError::KeyTaken => Self::new(
                Code::IdempotencyKeyReused,
                "this idempotencyKey was already used for another request; nothing was \
                 changed. Send a new key with each new request",
            ),
            other => Self::internal(&other),
        }
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::NotOpened => Self::new(Code::NotFound, "no plan with this id"),
            other => Self::validation(other.to_string()),
        }
    }
}

/// Maps a command failure; `refused` maps the aggregate's own error.
pub fn command_error<E: std::error::Error + 'static>(
    e: CommandError<E>,
    refused: impl FnOnce(E) -> ApiError,
) -> ApiError {
    match e {
        CommandError::Conflict { .. } => ApiError::new(Code::Conflict, e.to_string()),
        CommandError::Busy { retry_after } => ApiError {
            retry_after_seconds: Some(retry_after.as_secs().max(1)),
            ..ApiError::new(Code::Busy, e.to_string())
        },
        CommandError::Rejected(e) => refused(e),
        CommandError::Denied(d) => d.into(),
        CommandError::Sealing(VaultError::Erased) => ApiError::new(Code::Erased, e.to_string()),
        CommandError::Sealing(other) => ApiError::internal(&other),
        CommandError::Store(s) => s.into(),
    }
}

impl From<Unreadable> for ApiError {
    fn from(e: Unreadable) -> Self {
        Self::new(Code::Unreadable, e.to_string())
    }
}

/// Gives every error in a response a code: errors raised before any resolver ran (syntax, unknown
/// fields, wrong types, values that do not parse, limits) are the client's to fix.
pub fn ensure_codes(errors: &mut [ServerError]) {
    for error in errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", Code::Validation.as_str());
        }
    }
}

#[cfg(test)]
mod busy_tests {
    use super::*;

    #[test]
    fn busy_is_coded_with_a_retry_hint_and_claims_no_expected_version() {
        let e: CommandError<PlanError> = CommandError::Busy {
            retry_after: std::time::Duration::from_millis(200),
        };
        let api = command_error(e, ApiError::from);
        assert_eq!(api.code, Code::Busy);
        assert_eq!(api.retry_after_seconds, Some(1));
        assert!(!api.message.contains("expected"), "{}", api.message);
        let gql: async_graphql::Error = api.into();
        let ext = gql.extensions.expect("extensions");
        assert_eq!(ext.get("code"), Some(&async_graphql::Value::from("BUSY")));
        assert_eq!(
            ext.get("retryAfterSeconds"),
            Some(&async_graphql::Value::from(1))
        );
    }
}
