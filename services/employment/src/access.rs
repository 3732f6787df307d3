//! Who may read and change what: the one place the DESIGN rule on personal data is decided for work
//! and training.
//!
//! - Job offers and training courses are public (DESIGN.md): anyone reads them. An employer who
//!   asked for anonymity is named only to the operators of the offer's comune; that redaction
//!   ([`crate::domain::offer::hide_employer`]) applies always, since it locks nobody out.
//! - Applications and enrolments are personal data: the **citizen** concerned reads and acts on
//!   their own; an **operator** or **system** of the comune that published the offer or course
//!   reads them and acts on the citizen's behalf.
//! - Publishing, closing, cancelling, importing and reviewing are the comune's own work.
//!
//! Every read of personal data goes through [`Access::authorize_read`] and every change through
//! [`Access::authorize_write`]. Until callers carry verified tokens the kit authenticates everyone
//! as anonymous, which would lock the platform, so enforcement is switched by
//! `EMPLOYMENT_ENFORCE_ACCESS` (default off), as social does. When off, a refusal the rule would
//! have made is logged at debug level, without personal data.

use patto_service_kit::Principal;
use patto_service_kit::config::{ConfigError, Source, flag_or};
use patto_service_kit::error::ServiceError;
use patto_service_kit::ids;

/// Environment variable that turns enforcement on (`true`, `1`, `yes`, `on`).
pub const ENFORCE_ACCESS_VAR: &str = "EMPLOYMENT_ENFORCE_ACCESS";

/// A record as the access rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// Internal to one comune: the lists of applications and enrolments it received.
    Comune {
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
    /// A citizen's application or enrolment, held by a comune.
    Personal {
        /// Canonical fiscal code of the citizen.
        fiscal_code: &'a str,
        /// ISTAT code of the comune that holds it.
        istat_code: &'a str,
    },
}

/// A change as the access rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act<'a> {
    /// Acting for a citizen (applying, enrolling, withdrawing): the citizen, or an operator of the
    /// comune concerned on their behalf.
    ForCitizen {
        /// Canonical fiscal code of the citizen.
        fiscal_code: &'a str,
        /// ISTAT code of the comune of the offer or course.
        istat_code: &'a str,
    },
    /// The comune's own work: publishing, closing, cancelling, importing, reviewing.
    ForComune {
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
}

/// The access rule and whether it is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    enforced: bool,
}

impl Access {
    /// The rule, enforced: refusals reach the caller.
    pub fn enforced() -> Self {
        Self { enforced: true }
    }

    /// The rule, evaluated but not enforced: every caller may read and change everything.
    pub fn off() -> Self {
        Self { enforced: false }
    }

    /// Reads [`ENFORCE_ACCESS_VAR`] from `src` (default off).
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            enforced: flag_or(src, ENFORCE_ACCESS_VAR, false)?,
        })
    }

    /// True when refusals reach the caller.
    pub fn is_enforced(&self) -> bool {
        self.enforced
    }

    /// May `principal` read `record`? The single read decision of the service.
    pub fn authorize_read(
        &self,
        principal: &Principal,
        record: &Record<'_>,
    ) -> Result<(), ServiceError> {
        let allowed = match record {
            Record::Comune { istat_code } => comune_of(principal) == Some(*istat_code),
            Record::Personal {
                fiscal_code,
                istat_code,
            } => match principal {
                Principal::Citizen { fiscal_code: me } => canonical(me) == *fiscal_code,
                p => comune_of(p) == Some(*istat_code),
            },
        };
        let what = match record {
            Record::Comune { .. } => "this is internal to the comune",
            Record::Personal { .. } => "this is personal data",
        };
        self.apply(principal, allowed, what, "read")
    }

    /// May `principal` do `act`? The single write decision of the service.
    pub fn authorize_write(
        &self,
        principal: &Principal,
        act: &Act<'_>,
    ) -> Result<(), ServiceError> {
        let allowed = match (act, principal) {
            (_, Principal::Anonymous) => false,
            (Act::ForCitizen { fiscal_code, .. }, Principal::Citizen { fiscal_code: me }) => {
                canonical(me) == *fiscal_code
            }
            (Act::ForCitizen { istat_code, .. }, p) | (Act::ForComune { istat_code }, p) => {
                comune_of(p) == Some(*istat_code)
            }
        };
        self.apply(principal, allowed, "this change", "change")
    }

    fn apply(
        &self,
        principal: &Principal,
        allowed: bool,
        what: &str,
        verb: &'static str,
    ) -> Result<(), ServiceError> {
        if allowed {
            return Ok(());
        }
        let refusal = match principal {
            Principal::Anonymous => ServiceError::Unauthenticated(format!(
                "{what}: sign in as the citizen concerned or as an operator of the comune"
            )),
            _ => ServiceError::PermissionDenied(format!(
                "{what}: allowed only to the citizen concerned and to the operators of the comune that holds it"
            )),
        };
        if self.enforced {
            return Err(refusal);
        }
        // The log names no person: only the kind of caller and of refusal.
        tracing::debug!(
            caller = kind(principal),
            verb,
            code = ?refusal.code(),
            "access rule not enforced (EMPLOYMENT_ENFORCE_ACCESS off): this call would be refused"
        );
        Ok(())
    }
}

/// The comune an operator or a comune's system works for.
pub fn comune_of(p: &Principal) -> Option<&str> {
    match p {
        Principal::Operator { istat_code } | Principal::System { istat_code } => Some(istat_code),
        _ => None,
    }
}

/// True when the change is the citizen's own online interaction, not an operator's desk work on
/// their behalf: only those count in the programme indicators. Anonymous callers count as citizens
/// while access is not enforced (they are the citizen-facing front-ends).
pub fn online(p: &Principal) -> bool {
    matches!(p, Principal::Citizen { .. } | Principal::Anonymous)
}

fn kind(p: &Principal) -> &'static str {
    match p {
        Principal::Anonymous => "anonymous",
        Principal::Citizen { .. } => "citizen",
        Principal::Operator { .. } => "operator",
        Principal::System { .. } => "system",
    }
}

/// The citizen's fiscal code in the canonical form records are keyed by: a token may carry it in
/// lower case or in an omocodic variant.
fn canonical(fiscal_code: &str) -> String {
    ids::canonical_fiscal_code(fiscal_code).unwrap_or_else(|_| fiscal_code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const ME: &str = "RCCMNL83S18D969H";
    const OTHER: &str = "CNTCHR83T41D969D";
    const PALERMO: &str = "082053";
    const BAGHERIA: &str = "082006";

    fn citizen(cf: &str) -> Principal {
        Principal::Citizen {
            fiscal_code: cf.into(),
        }
    }
    fn operator(c: &str) -> Principal {
        Principal::Operator {
            istat_code: c.into(),
        }
    }

    #[test]
    fn read_matrix() {
        let mine = Record::Personal {
            fiscal_code: ME,
            istat_code: PALERMO,
        };
        let list = Record::Comune {
            istat_code: PALERMO,
        };
        let cases: Vec<(Principal, &Record, Option<Code>)> = vec![
            (Principal::Anonymous, &mine, Some(Code::Unauthenticated)),
            (Principal::Anonymous, &list, Some(Code::Unauthenticated)),
            (citizen(ME), &mine, None),
            (citizen("rccmnl83s18d96vw"), &mine, None),
            (citizen(OTHER), &mine, Some(Code::PermissionDenied)),
            (citizen(ME), &list, Some(Code::PermissionDenied)),
            (operator(PALERMO), &mine, None),
            (operator(PALERMO), &list, None),
            (operator(BAGHERIA), &mine, Some(Code::PermissionDenied)),
            (operator(BAGHERIA), &list, Some(Code::PermissionDenied)),
            (
                Principal::System {
                    istat_code: PALERMO.into(),
                },
                &mine,
                None,
            ),
        ];
        for (p, record, expected) in cases {
            let got = Access::enforced().authorize_read(&p, record);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                expected,
                "{p:?} {record:?}"
            );
            assert!(Access::off().authorize_read(&p, record).is_ok());
        }
    }

    #[test]
    fn write_matrix() {
        let enrol = Act::ForCitizen {
            fiscal_code: ME,
            istat_code: PALERMO,
        };
        let publish = Act::ForComune {
            istat_code: PALERMO,
        };
        let cases: Vec<(Principal, &Act, Option<Code>)> = vec![
            (Principal::Anonymous, &enrol, Some(Code::Unauthenticated)),
            (citizen(ME), &enrol, None),
            (citizen(OTHER), &enrol, Some(Code::PermissionDenied)),
            (operator(PALERMO), &enrol, None),
            (operator(BAGHERIA), &enrol, Some(Code::PermissionDenied)),
            (citizen(ME), &publish, Some(Code::PermissionDenied)),
            (operator(PALERMO), &publish, None),
            (operator(BAGHERIA), &publish, Some(Code::PermissionDenied)),
        ];
        for (p, act, expected) in cases {
            let got = Access::enforced().authorize_write(&p, act);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                expected,
                "{p:?} {act:?}"
            );
            assert!(Access::off().authorize_write(&p, act).is_ok());
        }
    }

    #[test]
    fn the_flag() {
        let src = |v: &str| std::collections::HashMap::from([(ENFORCE_ACCESS_VAR, v.to_owned())]);
        assert!(Access::from_source(&src("true")).unwrap().is_enforced());
        assert!(!Access::from_source(&src("")).unwrap().is_enforced());
        assert!(Access::from_source(&src("maybe")).is_err());
        assert!(online(&citizen(ME)) && online(&Principal::Anonymous));
        assert!(!online(&operator(PALERMO)));
    }
}
