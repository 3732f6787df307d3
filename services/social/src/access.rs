//! Who may read and change what: the one place the DESIGN rule on personal data is decided.
//!
//! ISEE declarations, applications, payments and named rankings are special-category personal data
//! (economic hardship, health, disability). The rule (DESIGN.md, "Identity and tenancy"):
//! - a **citizen** reads the records that concern them (as applicant, beneficiary, declarant or
//!   household member);
//! - an **operator** or a comune's **system** reads the records its comune holds;
//! - **anonymous** callers read public things only: published benefit schemes and rankings that
//!   name applicants by protocol number alone.
//!
//! Every read in the service goes through [`Access::authorize_read`], and every change through
//! [`Access::authorize_write`]; both receive the principal the kit attached to the request. Until
//! callers carry verified tokens the kit authenticates everyone as anonymous, which would lock the
//! platform, so enforcement is switched by `SOCIAL_ENFORCE_ACCESS` (default off). When it is off
//! the rule is still evaluated and a refusal it would have made is logged at debug level (without
//! personal data), so turning it on holds no surprise.

use patto_service_kit::Principal;
use patto_service_kit::config::{ConfigError, Source, flag_or};
use patto_service_kit::error::ServiceError;
use patto_service_kit::ids;

/// Environment variable that turns enforcement on (`true`, `1`, `yes`, `on`).
pub const ENFORCE_ACCESS_VAR: &str = "SOCIAL_ENFORCE_ACCESS";

/// A record as the access rule sees it: whom it concerns and which comuni hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// Public information: published benefit schemes, anonymised rankings.
    Public,
    /// Information internal to one comune: schemes in preparation, rankings with names and ISEE
    /// values.
    Comune {
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
    /// Personal data of citizens held by comuni.
    Personal {
        /// Canonical fiscal codes of the citizens it concerns.
        subjects: Vec<&'a str>,
        /// ISTAT codes of the comuni that hold it (none for an ISEE declaration a citizen
        /// registered and has not used yet).
        comuni: Vec<&'a str>,
    },
}

/// A change as the access rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act<'a> {
    /// Acting for a citizen: filing, editing, submitting or withdrawing their application,
    /// registering their ISEE. The citizen themself may, and so may an operator of the comune
    /// concerned (on their behalf); `istat_code` is `None` when any comune's operator may (an
    /// ISEE declaration is not tied to one comune).
    ForCitizen {
        /// Canonical fiscal code of the citizen.
        fiscal_code: &'a str,
        /// ISTAT code of the comune concerned, if any.
        istat_code: Option<&'a str>,
    },
    /// The comune's own work: schemes, reviews, decisions, rankings, payments, imports.
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
        self.apply(principal, read_rule(principal, record), "read")
    }

    /// May `principal` do `act`? The single write decision of the service.
    pub fn authorize_write(
        &self,
        principal: &Principal,
        act: &Act<'_>,
    ) -> Result<(), ServiceError> {
        self.apply(principal, write_rule(principal, act), "change")
    }

    /// The comune an operator or system is bound to, or the citizen's fiscal code, to narrow a
    /// listing whose filter was left empty ("everything the caller may see"). `None` when enforcement
    /// is off or the caller is anonymous: the listing is then not narrowed, and its rows still pass
    /// [`Access::authorize_read`].
    pub fn scope(&self, principal: &Principal) -> Option<Scope> {
        if !self.enforced {
            return None;
        }
        match principal {
            Principal::Anonymous => None,
            Principal::Citizen { fiscal_code } => Some(Scope::Citizen(canonical(fiscal_code))),
            Principal::Operator { istat_code } | Principal::System { istat_code } => {
                Some(Scope::Comune(istat_code.clone()))
            }
        }
    }

    fn apply(
        &self,
        principal: &Principal,
        verdict: Result<(), ServiceError>,
        what: &'static str,
    ) -> Result<(), ServiceError> {
        match verdict {
            Ok(()) => Ok(()),
            Err(refusal) if self.enforced => Err(refusal),
            Err(refusal) => {
                // The reason names no person: logs are not the place for special-category data.
                tracing::debug!(
                    caller = kind(principal),
                    what,
                    code = ?refusal.code(),
                    "access rule not enforced (SOCIAL_ENFORCE_ACCESS off): this call would be refused"
                );
                Ok(())
            }
        }
    }
}

/// What a listing is narrowed to under enforcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The records of this citizen (canonical codice fiscale).
    Citizen(String),
    /// The records this comune holds (ISTAT code).
    Comune(String),
}

fn kind(p: &Principal) -> &'static str {
    match p {
        Principal::Anonymous => "anonymous",
        Principal::Citizen { .. } => "citizen",
        Principal::Operator { .. } => "operator",
        Principal::System { .. } => "system",
    }
}

fn comune_of(p: &Principal) -> Option<&str> {
    match p {
        Principal::Operator { istat_code } | Principal::System { istat_code } => Some(istat_code),
        _ => None,
    }
}

fn refuse(principal: &Principal, what: &str) -> ServiceError {
    match principal {
        Principal::Anonymous => ServiceError::Unauthenticated(format!(
            "{what}: sign in as the citizen concerned or as an operator of the comune"
        )),
        _ => ServiceError::PermissionDenied(format!(
            "{what}: allowed only to the citizen concerned and to the operators of the comune that holds it"
        )),
    }
}

/// The citizen's fiscal code in the canonical form records are keyed by: a token may carry it in
/// lower case or in an omocodic variant.
fn canonical(fiscal_code: &str) -> String {
    ids::canonical_fiscal_code(fiscal_code).unwrap_or_else(|_| fiscal_code.to_owned())
}

fn read_rule(principal: &Principal, record: &Record<'_>) -> Result<(), ServiceError> {
    let allowed = match record {
        Record::Public => true,
        Record::Comune { istat_code } => comune_of(principal) == Some(*istat_code),
        Record::Personal { subjects, comuni } => match principal {
            Principal::Citizen { fiscal_code } => {
                subjects.contains(&canonical(fiscal_code).as_str())
            }
            Principal::Operator { istat_code } | Principal::System { istat_code } => {
                comuni.contains(&istat_code.as_str())
            }
            Principal::Anonymous => false,
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(refuse(
            principal,
            match record {
                Record::Comune { .. } => "this is internal to the comune",
                _ => "this is personal data",
            },
        ))
    }
}

fn write_rule(principal: &Principal, act: &Act<'_>) -> Result<(), ServiceError> {
    let allowed = match (act, principal) {
        (_, Principal::Anonymous) => false,
        (Act::ForCitizen { fiscal_code, .. }, Principal::Citizen { fiscal_code: me }) => {
            *fiscal_code == canonical(me)
        }
        (Act::ForCitizen { istat_code, .. }, p) => match (istat_code, comune_of(p)) {
            (None, Some(_)) => true,
            (Some(wanted), Some(mine)) => *wanted == mine,
            (_, None) => false,
        },
        (Act::ForComune { istat_code }, p) => comune_of(p) == Some(*istat_code),
    };
    if allowed {
        Ok(())
    } else {
        Err(refuse(principal, "this change"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const ME: &str = "RSSMRA80A01G273Z";
    const OTHER: &str = "VRDLGU75B12G273D";
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
    fn system(c: &str) -> Principal {
        Principal::System {
            istat_code: c.into(),
        }
    }

    /// The read matrix: principal × record → allowed, or the code of the refusal.
    #[test]
    fn read_matrix() {
        let mine = Record::Personal {
            subjects: vec![ME],
            comuni: vec![PALERMO],
        };
        let unused_isee = Record::Personal {
            subjects: vec![ME, OTHER],
            comuni: vec![],
        };
        let internal = Record::Comune {
            istat_code: PALERMO,
        };
        let ok = None;
        let cases: Vec<(Principal, &Record, Option<Code>)> = vec![
            (Principal::Anonymous, &Record::Public, ok),
            (Principal::Anonymous, &mine, Some(Code::Unauthenticated)),
            (Principal::Anonymous, &internal, Some(Code::Unauthenticated)),
            (citizen(ME), &Record::Public, ok),
            (citizen(ME), &mine, ok),
            (citizen(&ME.to_ascii_lowercase()), &mine, ok),
            (citizen(OTHER), &mine, Some(Code::PermissionDenied)),
            (citizen(OTHER), &unused_isee, ok),
            (citizen(ME), &internal, Some(Code::PermissionDenied)),
            (operator(PALERMO), &mine, ok),
            (operator(BAGHERIA), &mine, Some(Code::PermissionDenied)),
            (
                operator(PALERMO),
                &unused_isee,
                Some(Code::PermissionDenied),
            ),
            (operator(PALERMO), &internal, ok),
            (operator(BAGHERIA), &internal, Some(Code::PermissionDenied)),
            (operator(BAGHERIA), &Record::Public, ok),
            (system(PALERMO), &mine, ok),
            (system(BAGHERIA), &mine, Some(Code::PermissionDenied)),
            (system(PALERMO), &internal, ok),
        ];
        for (principal, record, expected) in cases {
            let got = Access::enforced().authorize_read(&principal, record);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                expected,
                "{principal:?} reading {record:?}: {got:?}"
            );
            assert!(
                Access::off().authorize_read(&principal, record).is_ok(),
                "not enforced: {principal:?} {record:?}"
            );
        }
    }

    #[test]
    fn write_matrix() {
        let for_me = Act::ForCitizen {
            fiscal_code: ME,
            istat_code: Some(PALERMO),
        };
        let my_isee = Act::ForCitizen {
            fiscal_code: ME,
            istat_code: None,
        };
        let comune = Act::ForComune {
            istat_code: PALERMO,
        };
        let ok = None;
        let cases: Vec<(Principal, &Act, Option<Code>)> = vec![
            (Principal::Anonymous, &for_me, Some(Code::Unauthenticated)),
            (Principal::Anonymous, &comune, Some(Code::Unauthenticated)),
            (citizen(ME), &for_me, ok),
            (citizen(ME), &my_isee, ok),
            (citizen(OTHER), &for_me, Some(Code::PermissionDenied)),
            (citizen(ME), &comune, Some(Code::PermissionDenied)),
            (operator(PALERMO), &for_me, ok),
            (operator(BAGHERIA), &for_me, Some(Code::PermissionDenied)),
            (operator(BAGHERIA), &my_isee, ok),
            (operator(PALERMO), &comune, ok),
            (operator(BAGHERIA), &comune, Some(Code::PermissionDenied)),
            (system(PALERMO), &comune, ok),
        ];
        for (principal, act, expected) in cases {
            let got = Access::enforced().authorize_write(&principal, act);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                expected,
                "{principal:?} doing {act:?}: {got:?}"
            );
            assert!(Access::off().authorize_write(&principal, act).is_ok());
        }
    }

    #[test]
    fn refusals_name_no_one() {
        let record = Record::Personal {
            subjects: vec![ME],
            comuni: vec![PALERMO],
        };
        let e = Access::enforced()
            .authorize_read(&citizen(OTHER), &record)
            .unwrap_err();
        assert!(
            !e.to_string().contains(ME) && !e.to_string().contains(OTHER),
            "{e}"
        );
    }

    #[test]
    fn scopes_and_the_flag() {
        let on = Access::enforced();
        assert_eq!(
            on.scope(&citizen(&ME.to_ascii_lowercase())),
            Some(Scope::Citizen(ME.into()))
        );
        assert_eq!(
            on.scope(&operator(PALERMO)),
            Some(Scope::Comune(PALERMO.into()))
        );
        assert_eq!(
            on.scope(&system(PALERMO)),
            Some(Scope::Comune(PALERMO.into()))
        );
        assert_eq!(on.scope(&Principal::Anonymous), None);
        assert_eq!(Access::off().scope(&citizen(ME)), None);

        let src = |v: &str| std::collections::HashMap::from([(ENFORCE_ACCESS_VAR, v.to_owned())]);
        assert!(Access::from_source(&src("true")).unwrap().is_enforced());
        assert!(Access::from_source(&src("1")).unwrap().is_enforced());
        assert!(!Access::from_source(&src("off")).unwrap().is_enforced());
        assert!(
            !Access::from_source(&src("")).unwrap().is_enforced(),
            "unset means off"
        );
        let err = Access::from_source(&src("maybe")).unwrap_err();
        assert!(
            err.to_string().starts_with("SOCIAL_ENFORCE_ACCESS="),
            "{err}"
        );
    }
}
