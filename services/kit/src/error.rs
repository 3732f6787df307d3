//! The one error type of the services, mapped once to `tonic::Status` at the gRPC edge.
//!
//! Bad input becomes INVALID_ARGUMENT carrying `google.rpc.BadRequest` field violations, so clients
//! (and the gateway, which turns them into GraphQL `BAD_USER_INPUT`) can point at the exact field.
//! Internal failures are logged in full and reach clients as a generic message.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request, e.g. `event.start_time`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub description: String,
}

/// Field violations collected while validating a request, so one answer lists them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation of `field` unless `ok` holds.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, description: impl Into<String>) {
        if !ok {
            self.add(field, description);
        }
    }

    /// The violations recorded so far.
    pub fn as_slice(&self) -> &[FieldViolation] {
        &self.0
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else the INVALID_ARGUMENT error.
    pub fn into_result(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::InvalidArgument(self))
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request has invalid fields (INVALID_ARGUMENT with BadRequest details).
    #[error("invalid request: {0}")]
    InvalidArgument(Violations),
    /// The record asked for does not exist (NOT_FOUND).
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of record, e.g. `event`.
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// The request is valid but the record's state forbids it (FAILED_PRECONDITION).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The record already exists (ALREADY_EXISTS).
    #[error("{0}")]
    AlreadyExists(String),
    /// No credentials, or credentials that cannot be verified (UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this (PERMISSION_DENIED).
    #[error("{0}")]
    PermissionDenied(String),
    /// The database failed; details stay in the logs.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Any other failure on our side; details stay in the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// A single-field INVALID_ARGUMENT error.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Violations::new();
        v.add(field, description);
        Self::InvalidArgument(v)
    }

    /// A NOT_FOUND error for a record of kind `what`.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            id: id.into(),
        }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Database(e) if is_unavailable(e) => Code::Unavailable,
            Self::Database(_) | Self::Internal(_) => Code::Internal,
        }
    }
}

fn is_unavailable(e: &sea_orm::DbErr) -> bool {
    matches!(
        e,
        sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)
    )
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        let code = err.code();
        match err {
            ServiceError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in violations.as_slice() {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Status::with_error_details(code, format!("invalid request: {violations}"), details)
            }
            ServiceError::Database(_) | ServiceError::Internal(_) => {
                // The client learns that we failed, not how: the cause may hold personal data.
                tracing::error!(error = %err, "request failed");
                let message = if code == Code::Unavailable {
                    "the service's database is unavailable, retry later"
                } else {
                    "internal error"
                };
                Status::new(code, message)
            }
            other => Status::new(code, other.to_string()),
        }
    }
}

impl<E: Into<ServiceError> + std::error::Error> From<sea_orm::TransactionError<E>>
    for ServiceError
{
    fn from(err: sea_orm::TransactionError<E>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => Self::Database(db),
            sea_orm::TransactionError::Transaction(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_bad_request_details() {
        let mut v = Violations::new();
        v.add("event_id", "must not be empty");
        v.add("seats", "must be between 1 and 10");
        let status: Status = v.into_result().unwrap_err().into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("BadRequest details");
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["event_id", "seats"]);
        assert!(status.message().contains("seats: must be between 1 and 10"));
    }

    #[test]
    fn codes_per_variant() {
        let cases = [
            (ServiceError::not_found("event", "x"), Code::NotFound),
            (
                ServiceError::FailedPrecondition("full".into()),
                Code::FailedPrecondition,
            ),
            (
                ServiceError::AlreadyExists("dup".into()),
                Code::AlreadyExists,
            ),
            (
                ServiceError::Unauthenticated("no token".into()),
                Code::Unauthenticated,
            ),
            (
                ServiceError::PermissionDenied("no".into()),
                Code::PermissionDenied,
            ),
            (ServiceError::Internal("boom".into()), Code::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(Status::from(err).code(), code);
        }
    }

    #[test]
    fn internal_details_do_not_reach_clients() {
        let status = Status::from(ServiceError::Internal("password=hunter2".into()));
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn empty_violations_pass() {
        assert!(Violations::new().into_result().is_ok());
    }
}
