//! The taxes service's error: the kit's [`ServiceError`] for everything that is ours, plus the
//! failure of the building service it reads cadastral units from, mapped once to `tonic::Status`.

use patto_service_kit::error::ServiceError;
use tonic::{Code, Status};

/// Everything a taxes call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TaxesError {
    /// A failure of this service (bad input, missing record, database…).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The building service did not answer as it should.
    #[error("building service: {}", .0.message())]
    Building(Status),
}

impl From<sea_orm::DbErr> for TaxesError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Service(ServiceError::Database(e))
    }
}

impl From<TaxesError> for Status {
    fn from(err: TaxesError) -> Self {
        match err {
            TaxesError::Service(e) => e.into(),
            TaxesError::Building(s) => match s.code() {
                // The peer is down, slow or restarting: the caller may retry.
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::ResourceExhausted => Status::unavailable(format!(
                    "the building service, which holds the cadastral units IMU is computed from, did not answer ({}); retry later",
                    s.message()
                )),
                // The caller's credentials, forwarded, were refused there: the same refusal here.
                Code::Unauthenticated | Code::PermissionDenied => Status::new(
                    s.code(),
                    format!(
                        "the building service, which holds the cadastral units, refused the call: {}",
                        s.message()
                    ),
                ),
                _ => {
                    // Anything else is a defect between the two services: logged, not shown.
                    tracing::error!(code = ?s.code(), message = s.message(), "building service call failed");
                    Status::internal("internal error")
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_failures_map_to_unavailable_or_internal() {
        let down: Status = TaxesError::Building(Status::unavailable("tcp connect error")).into();
        assert_eq!(down.code(), Code::Unavailable);
        assert!(down.message().contains("building service"));
        let bug: Status = TaxesError::Building(Status::invalid_argument("keys[0]")).into();
        assert_eq!(
            (bug.code(), bug.message()),
            (Code::Internal, "internal error")
        );
        let refused: Status =
            TaxesError::Building(Status::permission_denied("this is personal data")).into();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(refused.message().contains("building service"));
        let ours: Status = TaxesError::from(ServiceError::not_found("tax position", "x")).into();
        assert_eq!(ours.code(), Code::NotFound);
    }
}
