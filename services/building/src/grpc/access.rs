//! The building service's side of the shared access rule ([`patto_service_kit::access`]): how its
//! records and moves look to the rule, and who the actor of a permit move is.
//!
//! Cadastral units name their holders and permits their applicants: both are personal data, held by
//! the comune they lie in. Permit terms are public. An applicant-side move is made by the applicant
//! or, on their behalf, by an operator or system of the permit's comune; an operator-side move (and
//! setting the terms, importing the Catasto) only by the comune's operators and systems. Anonymous
//! callers read no personal data and change nothing.

use patto_proto::building::v1 as pb;
use patto_service_kit::Principal;
use patto_service_kit::access::{self, Act, Record};
use patto_service_kit::error::ServiceError;

use crate::store::{Actor, UnitRecord, permit};

/// What the audit of personal-data reads calls a cadastral unit (with its holders).
pub const UNIT: &str = "building.CadastralUnit";
/// What the audit of personal-data reads calls a building permit.
pub const PERMIT: &str = "building.BuildingPermit";

/// A cadastral unit as the rule sees it: personal data of every holder it names, held by its
/// comune.
pub fn unit_record(u: &UnitRecord) -> Record<'_> {
    Record::Personal {
        subjects: u.owners.iter().map(|o| o.fiscal_code.as_str()).collect(),
        comuni: vec![u.unit.istat_code.as_str()],
    }
}

/// A permit as the rule sees it: personal data of its applicant, held by its comune.
pub fn permit_record(p: &permit::Model) -> Record<'_> {
    Record::personal(&p.applicant_fiscal_code, &p.istat_code)
}

/// The actor of an applicant-side move on `applicant`'s application in `istat_code`: the applicant
/// themself, or an operator or system of that comune acting for them.
pub fn as_applicant(
    principal: &Principal,
    applicant: &str,
    istat_code: &str,
) -> Result<Actor, ServiceError> {
    access::authorize_write(principal, &Act::for_citizen(applicant, istat_code))?;
    Ok(match principal {
        Principal::Citizen { .. } => Actor {
            role: pb::PermitActorRole::Citizen,
            id: applicant.to_owned(),
        },
        _ => Actor {
            role: pb::PermitActorRole::Operator,
            id: String::new(),
        },
    })
}

/// The actor of an operator-side move in `istat_code`: an operator or system of that comune.
pub fn as_operator(principal: &Principal, istat_code: &str) -> Result<Actor, ServiceError> {
    access::authorize_write(principal, &Act::for_comune(istat_code))?;
    Ok(Actor {
        role: pb::PermitActorRole::Operator,
        id: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const ME: &str = "RSSMRA80A01G273Z";
    const PALERMO: &str = "082053";
    const BAGHERIA: &str = "082006";

    fn operator(c: &str) -> Principal {
        Principal::Operator {
            istat_code: c.into(),
            subject: "op".into(),
        }
    }

    #[test]
    fn actors_of_permit_moves() {
        let me = Principal::Citizen {
            fiscal_code: ME.to_ascii_lowercase(),
        };
        let applicant = as_applicant(&me, ME, PALERMO).unwrap();
        assert_eq!(
            (applicant.role, applicant.id.as_str()),
            (pb::PermitActorRole::Citizen, ME)
        );
        let for_them = as_applicant(&operator(PALERMO), ME, PALERMO).unwrap();
        assert_eq!(for_them.role, pb::PermitActorRole::Operator);
        let code = |r: Result<Actor, ServiceError>| r.err().map(|e| e.code());
        assert_eq!(
            code(as_applicant(&operator(BAGHERIA), ME, PALERMO)),
            Some(Code::PermissionDenied)
        );
        assert_eq!(
            code(as_operator(&me, PALERMO)),
            Some(Code::PermissionDenied)
        );
        assert_eq!(
            code(as_operator(&Principal::Anonymous, PALERMO)),
            Some(Code::Unauthenticated)
        );
        assert_eq!(code(as_operator(&operator(PALERMO), PALERMO)), None);
    }
}
