//! Who may read and change what: the one place the DESIGN rule on personal data is decided for the
//! environment service.
//!
//! - Reports, calendars, collection centres and air quality are public.
//! - The reporter's codice fiscale is personal: shown only to the reporter and to the operators of
//!   the report's comune ([`Access::may_see_reporter`]). Redaction does not wait for the flag below:
//!   a public listing never needs it, so withholding it costs no caller anything.
//! - Bulky-waste pickups (address, phone, fiscal code) are personal data of the citizen who booked,
//!   readable by them and by the operators of the comune.
//! - Changes: a citizen files reports and books pickups for themselves; operators and systems of a
//!   comune run its workflow, calendar, pickups and stations.
//!
//! Until callers carry verified tokens the kit authenticates everyone as anonymous, which would lock
//! the platform, so refusals are enforced only when `ENVIRONMENT_ENFORCE_ACCESS` is on (default off,
//! as for the social service). When it is off the rule is still evaluated and a refusal it would
//! have made is logged at debug level, without personal data.

use patto_service_kit::Principal;
use patto_service_kit::config::{ConfigError, Source, flag_or};
use patto_service_kit::error::ServiceError;
use patto_service_kit::ids;

/// Environment variable that turns enforcement on (`true`, `1`, `yes`, `on`).
pub const ENFORCE_ACCESS_VAR: &str = "ENVIRONMENT_ENFORCE_ACCESS";

/// A record as the access rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// Personal data of one citizen held by one comune (a bulky-waste pickup).
    Personal {
        /// Canonical fiscal code of the citizen.
        subject: &'a str,
        /// ISTAT code of the comune that holds it.
        istat_code: &'a str,
    },
    /// Information internal to one comune (its list of pickups, with addresses and phones).
    Comune {
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
}

/// A change as the access rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act<'a> {
    /// Filing a report: a citizen for themselves, an operator of the comune for a citizen or for
    /// no one (a report taken by phone).
    FileReport {
        /// Canonical fiscal code of the reporter, if any.
        fiscal_code: Option<&'a str>,
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
    /// Acting for a citizen (booking or cancelling their pickup): the citizen, or an operator of
    /// the comune on their behalf.
    ForCitizen {
        /// Canonical fiscal code of the citizen.
        fiscal_code: &'a str,
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
    /// The comune's own work: report workflow, calendar, pickup outcomes, stations and readings.
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

    /// The rule, evaluated but not enforced.
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

    /// May `principal` read `record`?
    pub fn authorize_read(
        &self,
        principal: &Principal,
        record: &Record<'_>,
    ) -> Result<(), ServiceError> {
        let allowed = match record {
            Record::Personal {
                subject,
                istat_code,
            } => is_citizen(principal, subject) || comune_of(principal) == Some(*istat_code),
            Record::Comune { istat_code } => comune_of(principal) == Some(*istat_code),
        };
        self.apply(principal, allowed, "read", "this is personal data")
    }

    /// May `principal` do `act`?
    pub fn authorize_write(
        &self,
        principal: &Principal,
        act: &Act<'_>,
    ) -> Result<(), ServiceError> {
        let allowed = match act {
            Act::FileReport {
                fiscal_code,
                istat_code,
            } => match principal {
                Principal::Citizen { .. } => {
                    fiscal_code.is_some_and(|cf| is_citizen(principal, cf))
                }
                _ => comune_of(principal) == Some(*istat_code),
            },
            Act::ForCitizen {
                fiscal_code,
                istat_code,
            } => is_citizen(principal, fiscal_code) || comune_of(principal) == Some(*istat_code),
            Act::ForComune { istat_code } => comune_of(principal) == Some(*istat_code),
        };
        self.apply(principal, allowed, "change", "this change")
    }

    /// True when `principal` may see the fiscal code of the reporter of a report of `istat_code`:
    /// the reporter and the comune's operators. Evaluated whatever the flag (see the module note).
    pub fn may_see_reporter(principal: &Principal, fiscal_code: &str, istat_code: &str) -> bool {
        is_citizen(principal, fiscal_code) || comune_of(principal) == Some(istat_code)
    }

    fn apply(
        &self,
        principal: &Principal,
        allowed: bool,
        what: &'static str,
        subject: &str,
    ) -> Result<(), ServiceError> {
        if allowed {
            return Ok(());
        }
        let refusal = match principal {
            Principal::Anonymous => ServiceError::Unauthenticated(format!(
                "{subject}: sign in as the citizen concerned or as an operator of the comune"
            )),
            _ => ServiceError::PermissionDenied(format!(
                "{subject}: allowed only to the citizen concerned and to the operators of the comune"
            )),
        };
        if self.enforced {
            return Err(refusal);
        }
        tracing::debug!(
            what,
            code = ?refusal.code(),
            "access rule not enforced (ENVIRONMENT_ENFORCE_ACCESS off): this call would be refused"
        );
        Ok(())
    }
}

fn comune_of(p: &Principal) -> Option<&str> {
    match p {
        Principal::Operator { istat_code } | Principal::System { istat_code } => Some(istat_code),
        _ => None,
    }
}

/// True when the principal is the citizen with this (canonical) fiscal code; a token may carry
/// the code in lower case or in an omocodic variant.
fn is_citizen(p: &Principal, fiscal_code: &str) -> bool {
    match p {
        Principal::Citizen { fiscal_code: me } => {
            !fiscal_code.is_empty()
                && ids::canonical_fiscal_code(me).is_ok_and(|me| me == fiscal_code)
        }
        _ => false,
    }
}

/// The canonical fiscal code of a citizen principal.
pub fn citizen_code(p: &Principal) -> Option<String> {
    match p {
        Principal::Citizen { fiscal_code } => ids::canonical_fiscal_code(fiscal_code).ok(),
        _ => None,
    }
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
    fn reads() {
        let mine = Record::Personal {
            subject: ME,
            istat_code: PALERMO,
        };
        let internal = Record::Comune {
            istat_code: PALERMO,
        };
        let cases: Vec<(Principal, &Record, Option<Code>)> = vec![
            (Principal::Anonymous, &mine, Some(Code::Unauthenticated)),
            (citizen(ME), &mine, None),
            (citizen(&ME.to_ascii_lowercase()), &mine, None),
            (citizen(OTHER), &mine, Some(Code::PermissionDenied)),
            (operator(PALERMO), &mine, None),
            (operator(BAGHERIA), &mine, Some(Code::PermissionDenied)),
            (citizen(ME), &internal, Some(Code::PermissionDenied)),
            (operator(PALERMO), &internal, None),
            (
                Principal::System {
                    istat_code: PALERMO.into(),
                },
                &internal,
                None,
            ),
        ];
        for (p, r, want) in cases {
            let got = Access::enforced().authorize_read(&p, r);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                want,
                "{p:?} {r:?}"
            );
            assert!(Access::off().authorize_read(&p, r).is_ok());
        }
    }

    #[test]
    fn writes() {
        let file = |cf| Act::FileReport {
            fiscal_code: cf,
            istat_code: PALERMO,
        };
        let book = Act::ForCitizen {
            fiscal_code: ME,
            istat_code: PALERMO,
        };
        let comune = Act::ForComune {
            istat_code: PALERMO,
        };
        let cases: Vec<(Principal, Act, Option<Code>)> = vec![
            (
                Principal::Anonymous,
                file(None),
                Some(Code::Unauthenticated),
            ),
            (citizen(ME), file(Some(ME)), None),
            (citizen(ME), file(Some(OTHER)), Some(Code::PermissionDenied)),
            (citizen(ME), file(None), Some(Code::PermissionDenied)),
            (operator(PALERMO), file(None), None),
            (operator(PALERMO), file(Some(OTHER)), None),
            (operator(BAGHERIA), file(None), Some(Code::PermissionDenied)),
            (citizen(ME), book.clone(), None),
            (citizen(OTHER), book.clone(), Some(Code::PermissionDenied)),
            (operator(PALERMO), book.clone(), None),
            (citizen(ME), comune.clone(), Some(Code::PermissionDenied)),
            (operator(PALERMO), comune.clone(), None),
            (operator(BAGHERIA), comune, Some(Code::PermissionDenied)),
        ];
        for (p, a, want) in cases {
            let got = Access::enforced().authorize_write(&p, &a);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                want,
                "{p:?} {a:?}"
            );
            assert!(Access::off().authorize_write(&p, &a).is_ok());
        }
    }

    #[test]
    fn reporters_are_shown_to_themselves_and_their_comune() {
        assert!(Access::may_see_reporter(&citizen(ME), ME, PALERMO));
        assert!(!Access::may_see_reporter(&citizen(OTHER), ME, PALERMO));
        assert!(Access::may_see_reporter(&operator(PALERMO), ME, PALERMO));
        assert!(!Access::may_see_reporter(&operator(BAGHERIA), ME, PALERMO));
        assert!(!Access::may_see_reporter(
            &Principal::Anonymous,
            ME,
            PALERMO
        ));
        assert!(!Access::may_see_reporter(&citizen(ME), "", PALERMO));
    }

    #[test]
    fn the_flag() {
        let src = |v: &str| std::collections::HashMap::from([(ENFORCE_ACCESS_VAR, v.to_owned())]);
        assert!(Access::from_source(&src("true")).unwrap().is_enforced());
        assert!(!Access::from_source(&src("")).unwrap().is_enforced());
        let err = Access::from_source(&src("maybe")).unwrap_err();
        assert!(
            err.to_string().starts_with("ENVIRONMENT_ENFORCE_ACCESS="),
            "{err}"
        );
    }
}
