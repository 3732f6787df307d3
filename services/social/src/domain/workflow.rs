//! The application workflow as a pure state machine (DOMAIN.md §8: domanda → istruttoria →
//! graduatoria → concessione/diniego → erogazione).
//!
//! ```text
//! DRAFT ──submit──▶ SUBMITTED ──assign──▶ UNDER_REVIEW ⇄ INTEGRATION_REQUESTED
//!                                            │ evaluate
//!                            ┌───────────────┴───────────────┐
//!                       ADMISSIBLE                     NOT_ADMISSIBLE
//!                   grant │    │ deny                        │ deny
//!                     GRANTED  └──────▶ DENIED ◀─────────────┘
//!              complete │  │ revoke
//!                COMPLETED  REVOKED
//! ```
//! Every status before a decision can be withdrawn by the applicant (→ WITHDRAWN). Anything else is
//! refused with FAILED_PRECONDITION naming both states, so a client learns what it tried and where
//! the application stands.

use patto_proto::social::v1::BenefitApplicationStatus as Status;
use patto_service_kit::error::ServiceError;

/// Every status an application can be in (the unspecified zero value excluded).
pub const STATUSES: [Status; 11] = [
    Status::Draft,
    Status::Submitted,
    Status::UnderReview,
    Status::IntegrationRequested,
    Status::Admissible,
    Status::NotAdmissible,
    Status::Granted,
    Status::Denied,
    Status::Completed,
    Status::Revoked,
    Status::Withdrawn,
];

/// Statuses that end the procedure: nothing moves an application out of them.
pub const FINAL: [Status; 4] = [
    Status::Denied,
    Status::Completed,
    Status::Revoked,
    Status::Withdrawn,
];

/// Statuses after which the same applicant may apply again to the same scheme for the same
/// beneficiary (the earlier application was refused, revoked or given up).
pub const REAPPLY_AFTER: [Status; 3] = [Status::Denied, Status::Revoked, Status::Withdrawn];

/// Something that moves an application from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The applicant submits the draft.
    Submit,
    /// The applicant withdraws (rinuncia) before a decision.
    Withdraw,
    /// A caseworker takes the application in charge, or hands it to another caseworker.
    Assign,
    /// The caseworker asks for documents or data.
    RequestIntegration,
    /// The applicant sends them.
    SubmitIntegration,
    /// The caseworker records the eligibility checks.
    Evaluate {
        /// True when every check passed.
        admissible: bool,
    },
    /// The responsible officer decides.
    Decide {
        /// True for a grant (concessione), false for a denial (diniego).
        grant: bool,
    },
    /// A granted benefit is revoked.
    Revoke,
    /// Every instalment is settled (the service itself).
    Complete,
}

impl Action {
    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Withdraw => "withdraw",
            Self::Assign => "assign",
            Self::RequestIntegration => "request integration",
            Self::SubmitIntegration => "submit integration",
            Self::Evaluate { .. } => "evaluate",
            Self::Decide { grant: true } => "grant",
            Self::Decide { grant: false } => "deny",
            Self::Revoke => "revoke",
            Self::Complete => "complete",
        }
    }

    /// The status the action leads to.
    pub fn target(self) -> Status {
        match self {
            Self::Submit => Status::Submitted,
            Self::Withdraw => Status::Withdrawn,
            Self::Assign | Self::SubmitIntegration => Status::UnderReview,
            Self::RequestIntegration => Status::IntegrationRequested,
            Self::Evaluate { admissible: true } => Status::Admissible,
            Self::Evaluate { admissible: false } => Status::NotAdmissible,
            Self::Decide { grant: true } => Status::Granted,
            Self::Decide { grant: false } => Status::Denied,
            Self::Revoke => Status::Revoked,
            Self::Complete => Status::Completed,
        }
    }
}

/// True when `action` may be taken on an application in status `from`.
pub fn allowed(from: Status, action: Action) -> bool {
    use Status as S;
    match action {
        Action::Submit => from == S::Draft,
        Action::Withdraw => !FINAL.contains(&from) && from != S::Granted && from != S::Unspecified,
        // Assigning again while under review hands the case to another caseworker.
        Action::Assign => matches!(from, S::Submitted | S::UnderReview),
        Action::RequestIntegration => from == S::UnderReview,
        Action::SubmitIntegration => from == S::IntegrationRequested,
        Action::Evaluate { .. } => from == S::UnderReview,
        // A grant needs an admissible application; a denial closes either outcome of the review.
        Action::Decide { grant: true } => from == S::Admissible,
        Action::Decide { grant: false } => matches!(from, S::Admissible | S::NotAdmissible),
        Action::Revoke | Action::Complete => from == S::Granted,
    }
}

/// Short name of a status, as messages show it: `UNDER_REVIEW`.
pub fn status_name(s: Status) -> &'static str {
    s.as_str_name()
        .strip_prefix("BENEFIT_APPLICATION_STATUS_")
        .unwrap_or("UNSPECIFIED")
}

/// The status `action` leads application `id` to from `from`, or FAILED_PRECONDITION naming both
/// states and the states the action is allowed from.
pub fn transition(id: &str, from: Status, action: Action) -> Result<Status, ServiceError> {
    let to = action.target();
    if allowed(from, action) {
        return Ok(to);
    }
    let sources: Vec<&str> = STATUSES
        .iter()
        .filter(|s| allowed(**s, action))
        .map(|s| status_name(*s))
        .collect();
    Err(ServiceError::FailedPrecondition(format!(
        "application {id} cannot go from {} to {} ({}): allowed only from {}",
        status_name(from),
        status_name(to),
        action.name(),
        sources.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status as S;

    const ACTIONS: [Action; 12] = [
        Action::Submit,
        Action::Withdraw,
        Action::Assign,
        Action::RequestIntegration,
        Action::SubmitIntegration,
        Action::Evaluate { admissible: true },
        Action::Evaluate { admissible: false },
        Action::Decide { grant: true },
        Action::Decide { grant: false },
        Action::Revoke,
        Action::Complete,
        Action::Assign,
    ];

    /// The whole transition table: every (status, action) pair that is allowed, and where it leads.
    /// Any pair not listed must be refused.
    const TABLE: &[(Status, Action, Status)] = &[
        (S::Draft, Action::Submit, S::Submitted),
        (S::Draft, Action::Withdraw, S::Withdrawn),
        (S::Submitted, Action::Withdraw, S::Withdrawn),
        (S::Submitted, Action::Assign, S::UnderReview),
        (S::UnderReview, Action::Withdraw, S::Withdrawn),
        (S::UnderReview, Action::Assign, S::UnderReview),
        (
            S::UnderReview,
            Action::RequestIntegration,
            S::IntegrationRequested,
        ),
        (
            S::UnderReview,
            Action::Evaluate { admissible: true },
            S::Admissible,
        ),
        (
            S::UnderReview,
            Action::Evaluate { admissible: false },
            S::NotAdmissible,
        ),
        (S::IntegrationRequested, Action::Withdraw, S::Withdrawn),
        (
            S::IntegrationRequested,
            Action::SubmitIntegration,
            S::UnderReview,
        ),
        (S::Admissible, Action::Withdraw, S::Withdrawn),
        (S::Admissible, Action::Decide { grant: true }, S::Granted),
        (S::Admissible, Action::Decide { grant: false }, S::Denied),
        (S::NotAdmissible, Action::Withdraw, S::Withdrawn),
        (S::NotAdmissible, Action::Decide { grant: false }, S::Denied),
        (S::Granted, Action::Revoke, S::Revoked),
        (S::Granted, Action::Complete, S::Completed),
    ];

    #[test]
    fn the_table_is_the_whole_state_machine() {
        let mut all = STATUSES.to_vec();
        all.push(S::Unspecified);
        for from in all {
            for action in ACTIONS {
                let expected = TABLE
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                match (transition("a1", from, action), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} {action:?}"),
                    (Err(ServiceError::FailedPrecondition(msg)), None) => {
                        assert!(
                            msg.contains(status_name(from))
                                && msg.contains(status_name(action.target())),
                            "{msg}"
                        );
                    }
                    (got, want) => panic!("{from:?} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn refusals_name_both_states_and_the_way_out() {
        let cases = [
            (
                S::Submitted,
                Action::Decide { grant: true },
                "application a1 cannot go from SUBMITTED to GRANTED (grant): allowed only from ADMISSIBLE",
            ),
            (
                S::NotAdmissible,
                Action::Decide { grant: true },
                "application a1 cannot go from NOT_ADMISSIBLE to GRANTED (grant): allowed only from ADMISSIBLE",
            ),
            (
                S::Granted,
                Action::Withdraw,
                "application a1 cannot go from GRANTED to WITHDRAWN (withdraw): allowed only from DRAFT, SUBMITTED, UNDER_REVIEW, INTEGRATION_REQUESTED, ADMISSIBLE, NOT_ADMISSIBLE",
            ),
            (
                S::Draft,
                Action::Evaluate { admissible: true },
                "application a1 cannot go from DRAFT to ADMISSIBLE (evaluate): allowed only from UNDER_REVIEW",
            ),
            (
                S::Completed,
                Action::Revoke,
                "application a1 cannot go from COMPLETED to REVOKED (revoke): allowed only from GRANTED",
            ),
        ];
        for (from, action, message) in cases {
            let err = transition("a1", from, action).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        }
    }

    #[test]
    fn final_states_are_final() {
        for from in FINAL {
            for action in ACTIONS {
                assert!(!allowed(from, action), "{from:?} {action:?}");
            }
        }
    }
}
