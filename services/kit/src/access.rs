//! Who may read and change what: the DESIGN rule on personal data, decided in one place for every
//! service.
//!
//! - **Public** data (events, job offers, courses, public works, air quality, calendars) is readable
//!   by anyone, signed in or not.
//! - **Personal** data is readable by the citizens it concerns and by the operators and systems of
//!   the comuni that hold it; never by anonymous callers, other citizens or other comuni.
//! - **Comune-internal** data (drafts, rankings with names, rates in preparation) is readable by the
//!   comune's operators and systems only.
//! - A **change** is made by the citizen it is for (or, on their behalf, by the comune concerned), or,
//!   for the comune's own work, by that comune's operators and systems. Anonymous callers change
//!   nothing.
//!
//! Every service asks [`authorize_read`] before it returns a record and [`authorize_write`] before it
//! changes one, with the principal the kit attached to the call; listings left unfiltered are
//! narrowed with [`scope`]. Refusals keep UNAUTHENTICATED (no credentials: sign in) apart from
//! PERMISSION_DENIED (signed in, not allowed), and name no person.

use crate::auth::Principal;
use crate::error::ServiceError;
use crate::validate;

/// A record as the rule sees it: whom it concerns and which comuni hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// Public information.
    Public,
    /// Information internal to one comune.
    Comune {
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
    /// Personal data of citizens held by comuni.
    Personal {
        /// Canonical fiscal codes of the citizens it concerns.
        subjects: Vec<&'a str>,
        /// ISTAT codes of the comuni that hold it (none for data a citizen registered and no comune
        /// has used yet, such as an ISEE declaration).
        comuni: Vec<&'a str>,
    },
}

impl<'a> Record<'a> {
    /// Personal data of one citizen held by one comune: the common case.
    pub fn personal(fiscal_code: &'a str, istat_code: &'a str) -> Self {
        Record::Personal {
            subjects: vec![fiscal_code],
            comuni: vec![istat_code],
        }
    }
}

/// A change as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act<'a> {
    /// Acting for a citizen: filing, editing, submitting or withdrawing their application, booking.
    /// The citizen themself may, and so may an operator or system of the comune concerned (on their
    /// behalf); `istat_code` is `None` when any comune's operator may.
    ForCitizen {
        /// Canonical fiscal code of the citizen.
        fiscal_code: &'a str,
        /// ISTAT code of the comune concerned, if any.
        istat_code: Option<&'a str>,
    },
    /// The comune's own work: publishing, reviewing, deciding, importing, recording payments.
    ForComune {
        /// ISTAT code of the comune.
        istat_code: &'a str,
    },
}

impl<'a> Act<'a> {
    /// Acting for citizen `fiscal_code` in comune `istat_code`.
    pub fn for_citizen(fiscal_code: &'a str, istat_code: &'a str) -> Self {
        Act::ForCitizen {
            fiscal_code,
            istat_code: Some(istat_code),
        }
    }

    /// The work of comune `istat_code`.
    pub fn for_comune(istat_code: &'a str) -> Self {
        Act::ForComune { istat_code }
    }
}

/// What a listing is narrowed to when the caller left its filter empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The records of this citizen (canonical codice fiscale).
    Citizen(String),
    /// The records this comune holds (ISTAT code).
    Comune(String),
}

/// May `principal` read `record`?
pub fn authorize_read(principal: &Principal, record: &Record<'_>) -> Result<(), ServiceError> {
    if may_read(principal, record) {
        return Ok(());
    }
    Err(refuse(
        principal,
        match record {
            Record::Comune { .. } => {
                "this is internal to the comune: readable by its operators and systems only"
            }
            _ => {
                "this is personal data: readable only by the citizen it concerns and by the operators of the comune that holds it"
            }
        },
    ))
}

/// Whether `principal` may read `record`: the filter form of [`authorize_read`] for listings.
pub fn may_read(principal: &Principal, record: &Record<'_>) -> bool {
    match record {
        Record::Public => true,
        Record::Comune { istat_code } => principal.comune() == Some(*istat_code),
        Record::Personal { subjects, comuni } => match principal {
            Principal::Citizen { fiscal_code } => {
                subjects.contains(&canonical(fiscal_code).as_str())
            }
            Principal::Operator { istat_code, .. } | Principal::System { istat_code, .. } => {
                comuni.contains(&istat_code.as_str())
            }
            Principal::Anonymous => false,
        },
    }
}

/// May `principal` do `act`?
pub fn authorize_write(principal: &Principal, act: &Act<'_>) -> Result<(), ServiceError> {
    let allowed = match (act, principal) {
        (_, Principal::Anonymous) => false,
        (Act::ForCitizen { fiscal_code, .. }, Principal::Citizen { fiscal_code: me }) => {
            *fiscal_code == canonical(me)
        }
        (Act::ForCitizen { istat_code, .. }, p) => match (istat_code, p.comune()) {
            (None, Some(_)) => true,
            (Some(wanted), Some(mine)) => *wanted == mine,
            (_, None) => false,
        },
        (Act::ForComune { istat_code }, p) => p.comune() == Some(*istat_code),
    };
    if allowed {
        Ok(())
    } else {
        Err(refuse(
            principal,
            match act {
                Act::ForCitizen { .. } => {
                    "this change is made by the citizen concerned or by an operator of the comune"
                }
                Act::ForComune { .. } => {
                    "this change is made by the operators and systems of the comune concerned"
                }
            },
        ))
    }
}

/// What an unfiltered listing is narrowed to: the citizen's own records, or the comune's. `None` for
/// anonymous callers, whose listings hold public records only.
pub fn scope(principal: &Principal) -> Option<Scope> {
    match principal {
        Principal::Anonymous => None,
        Principal::Citizen { fiscal_code } => Some(Scope::Citizen(canonical(fiscal_code))),
        Principal::Operator { istat_code, .. } | Principal::System { istat_code, .. } => {
            Some(Scope::Comune(istat_code.clone()))
        }
    }
}

/// Refuses a listing of a citizen's records (`fiscal_code`, canonical) to anyone but that citizen and
/// the operators and systems of a comune (whose rows are then narrowed to their comune by the query).
pub fn authorize_citizen_listing(
    principal: &Principal,
    fiscal_code: &str,
) -> Result<(), ServiceError> {
    match principal {
        Principal::Citizen { fiscal_code: me } if canonical(me) != fiscal_code => Err(refuse(
            principal,
            "this is personal data of another citizen: a citizen lists their own records only",
        )),
        Principal::Anonymous => Err(refuse(
            principal,
            "a citizen's records are personal data, listed to that citizen and to the operators of the comuni",
        )),
        _ => Ok(()),
    }
}

/// Refuses anonymous callers: `why` names what needs a signed-in caller.
pub fn signed_in(principal: &Principal, why: &str) -> Result<(), ServiceError> {
    match principal {
        Principal::Anonymous => Err(refuse(principal, why)),
        _ => Ok(()),
    }
}

/// Narrows a listing of personal data filtered by `comune` and/or `person` to what the caller may
/// see: a citizen's own records (asking for another person's is refused), an operator's or
/// system's comune (asking for another comune's is refused). Returns the comune and the person to
/// filter by; anonymous callers are refused.
pub fn narrow(
    principal: &Principal,
    comune: Option<String>,
    person: Option<String>,
    why: &str,
) -> Result<(Option<String>, Option<String>), ServiceError> {
    match scope(principal) {
        None => Err(refuse(principal, why)),
        Some(Scope::Citizen(me)) => match person {
            Some(asked) if asked != me => Err(refuse(principal, why)),
            _ => Ok((comune, Some(me))),
        },
        Some(Scope::Comune(own)) => match comune {
            Some(asked) if asked != own => Err(refuse(principal, why)),
            _ => Ok((Some(own), person)),
        },
    }
}

/// Refuses a batch call keyed by citizens (`canonical` fiscal codes) to anonymous callers, even
/// with no key (whose records exist is personal data), and to a citizen naming anyone but themself.
pub fn authorize_citizen_keys(
    principal: &Principal,
    canonical: &[String],
) -> Result<(), ServiceError> {
    if *principal == Principal::Anonymous {
        return Err(refuse(
            principal,
            "whose records these are is personal data",
        ));
    }
    canonical
        .iter()
        .try_for_each(|cf| authorize_citizen_listing(principal, cf))
}

/// Imports and other bulk feeds are a comune's work: refuses, before any row is read, callers who
/// act for no comune (each row is then checked against its own comune).
pub fn authorize_comune_caller(principal: &Principal) -> Result<(), ServiceError> {
    match principal.comune() {
        Some(_) => Ok(()),
        None => Err(refuse(
            principal,
            "imports are made by the operators and systems of the comune",
        )),
    }
}

/// The refusal for `principal`: UNAUTHENTICATED for anonymous callers (who should sign in),
/// PERMISSION_DENIED for everyone else. `why` states the rule (who may); it names no person.
pub fn refuse(principal: &Principal, why: &str) -> ServiceError {
    match principal {
        Principal::Anonymous => ServiceError::Unauthenticated(format!(
            "{why}; sign in: send a bearer token in `authorization`"
        )),
        Principal::Citizen { .. } => {
            ServiceError::PermissionDenied(format!("{why} (you are signed in as a citizen)"))
        }
        Principal::Operator { istat_code, .. } | Principal::System { istat_code, .. } => {
            ServiceError::PermissionDenied(format!(
                "{why} (you act for comune {istat_code} as {})",
                if principal.kind() == "operator" {
                    "an operator"
                } else {
                    "its system"
                }
            ))
        }
    }
}

/// A holder code (codice fiscale, or partita IVA for companies) in the canonical form records are
/// keyed by: a token may carry it in lower case or in an omocodic variant.
pub fn canonical(code: &str) -> String {
    validate::holder_code(code).unwrap_or_else(|_| code.trim().to_ascii_uppercase())
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
            subject: "op".into(),
        }
    }
    fn system(c: &str) -> Principal {
        Principal::System {
            istat_code: c.into(),
            subject: "erp".into(),
        }
    }

    /// The read matrix: principal × record → allowed, or the code of the refusal.
    #[test]
    fn read_matrix() {
        let mine = Record::personal(ME, PALERMO);
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
            (system(BAGHERIA), &internal, Some(Code::PermissionDenied)),
        ];
        for (principal, record, expected) in cases {
            let got = authorize_read(&principal, record);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                expected,
                "{principal:?} reading {record:?}: {got:?}"
            );
            assert_eq!(may_read(&principal, record), expected.is_none());
        }
    }

    #[test]
    fn write_matrix() {
        let for_me = Act::for_citizen(ME, PALERMO);
        let my_isee = Act::ForCitizen {
            fiscal_code: ME,
            istat_code: None,
        };
        let comune = Act::for_comune(PALERMO);
        let ok = None;
        let cases: Vec<(Principal, &Act, Option<Code>)> = vec![
            (Principal::Anonymous, &for_me, Some(Code::Unauthenticated)),
            (Principal::Anonymous, &comune, Some(Code::Unauthenticated)),
            (citizen(ME), &for_me, ok),
            (citizen(&ME.to_ascii_lowercase()), &for_me, ok),
            (citizen(ME), &my_isee, ok),
            (citizen(OTHER), &for_me, Some(Code::PermissionDenied)),
            (citizen(ME), &comune, Some(Code::PermissionDenied)),
            (operator(PALERMO), &for_me, ok),
            (operator(BAGHERIA), &for_me, Some(Code::PermissionDenied)),
            (operator(BAGHERIA), &my_isee, ok),
            (operator(PALERMO), &comune, ok),
            (operator(BAGHERIA), &comune, Some(Code::PermissionDenied)),
            (system(PALERMO), &comune, ok),
            (system(BAGHERIA), &comune, Some(Code::PermissionDenied)),
            (system(BAGHERIA), &for_me, Some(Code::PermissionDenied)),
        ];
        for (principal, act, expected) in cases {
            let got = authorize_write(&principal, act);
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                expected,
                "{principal:?} doing {act:?}: {got:?}"
            );
        }
    }

    #[test]
    fn citizen_listings() {
        let ok = None;
        let cases = [
            (Principal::Anonymous, Some(Code::Unauthenticated)),
            (citizen(ME), ok),
            (citizen(&ME.to_ascii_lowercase()), ok),
            (citizen(OTHER), Some(Code::PermissionDenied)),
            (operator(BAGHERIA), ok),
            (system(PALERMO), ok),
        ];
        for (principal, expected) in cases {
            let got = authorize_citizen_listing(&principal, ME);
            assert_eq!(got.err().map(|e| e.code()), expected, "{principal:?}");
        }
    }

    #[test]
    fn citizen_keys_and_comune_callers() {
        let keys = vec![ME.to_owned()];
        let ok = None;
        let cases = [
            (
                Principal::Anonymous,
                vec![],
                Some(Code::Unauthenticated),
                Some(Code::Unauthenticated),
            ),
            (citizen(ME), keys.clone(), ok, Some(Code::PermissionDenied)),
            (
                citizen(OTHER),
                keys.clone(),
                Some(Code::PermissionDenied),
                Some(Code::PermissionDenied),
            ),
            (operator(BAGHERIA), keys.clone(), ok, ok),
            (system(PALERMO), keys.clone(), ok, ok),
        ];
        for (principal, keys, by_keys, importing) in cases {
            let got = authorize_citizen_keys(&principal, &keys);
            assert_eq!(got.err().map(|e| e.code()), by_keys, "{principal:?} keys");
            let got = authorize_comune_caller(&principal);
            assert_eq!(
                got.err().map(|e| e.code()),
                importing,
                "{principal:?} import"
            );
        }
    }

    #[test]
    fn listings_are_narrowed() {
        let some = |s: &str| Some(s.to_owned());
        let ok = |c: Option<String>, p: Option<String>| Ok::<_, Code>((c, p));
        let cases = [
            (Principal::Anonymous, None, None, Err(Code::Unauthenticated)),
            (citizen(ME), None, None, ok(None, some(ME))),
            (
                citizen(ME),
                some(PALERMO),
                some(ME),
                ok(some(PALERMO), some(ME)),
            ),
            (citizen(ME), None, some(OTHER), Err(Code::PermissionDenied)),
            (
                operator(PALERMO),
                None,
                some(ME),
                ok(some(PALERMO), some(ME)),
            ),
            (
                operator(PALERMO),
                some(BAGHERIA),
                None,
                Err(Code::PermissionDenied),
            ),
            (system(BAGHERIA), None, None, ok(some(BAGHERIA), None)),
        ];
        for (principal, comune, person, expected) in cases {
            let got = narrow(&principal, comune, person, "test").map_err(|e| e.code());
            assert_eq!(got, expected, "{principal:?}");
        }
        assert!(signed_in(&citizen(ME), "x").is_ok());
        assert_eq!(
            signed_in(&Principal::Anonymous, "x").unwrap_err().code(),
            Code::Unauthenticated
        );
    }

    #[test]
    fn refusals_name_no_one() {
        let e = authorize_read(&citizen(OTHER), &Record::personal(ME, PALERMO)).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains(ME) && !text.contains(OTHER), "{text}");
        let e = authorize_read(&Principal::Anonymous, &Record::personal(ME, PALERMO)).unwrap_err();
        assert!(e.to_string().contains("sign in"), "{e}");
    }

    #[test]
    fn scopes() {
        assert_eq!(
            scope(&citizen(&ME.to_ascii_lowercase())),
            Some(Scope::Citizen(ME.into()))
        );
        assert_eq!(
            scope(&operator(PALERMO)),
            Some(Scope::Comune(PALERMO.into()))
        );
        assert_eq!(scope(&system(PALERMO)), Some(Scope::Comune(PALERMO.into())));
        assert_eq!(scope(&Principal::Anonymous), None);
    }
}
