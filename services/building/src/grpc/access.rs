//! Who may read and change what. Cadastral data and permits name private persons: a citizen sees
//! and moves only what concerns them, an operator or system only what its comune holds, and only
//! operators decide. Until tokens are verified (the identity work) every call arrives anonymous and
//! passes, which is what the all-in-one demo needs; the checks below apply as soon as the kit
//! attaches a real principal, in one place.

use patto_proto::building::v1 as pb;
use patto_service_kit::Principal;
use patto_service_kit::error::ServiceError;

use crate::store::{Actor, UnitRecord, permit};

fn canonical(code: &str) -> String {
    crate::domain::holder_code(code).unwrap_or_else(|_| code.trim().to_ascii_uppercase())
}

/// The actor of an applicant-side move on `applicant`'s application in `istat_code`.
pub fn as_applicant(
    principal: &Principal,
    applicant: &str,
    istat_code: &str,
) -> Result<Actor, ServiceError> {
    match principal {
        Principal::Anonymous => Ok(Actor {
            role: pb::PermitActorRole::Citizen,
            id: applicant.to_owned(),
        }),
        Principal::Citizen { fiscal_code } if canonical(fiscal_code) == applicant => Ok(Actor {
            role: pb::PermitActorRole::Citizen,
            id: applicant.to_owned(),
        }),
        Principal::Citizen { .. } => Err(ServiceError::PermissionDenied(
            "a citizen may act only on their own applications".into(),
        )),
        Principal::Operator { istat_code: own } | Principal::System { istat_code: own }
            if own == istat_code =>
        {
            Ok(Actor {
                role: pb::PermitActorRole::Operator,
                id: String::new(),
            })
        }
        Principal::Operator { .. } | Principal::System { .. } => {
            Err(ServiceError::PermissionDenied(format!(
                "only the applicant or an operator of comune {istat_code} may do this"
            )))
        }
    }
}

/// The actor of an operator-side move in `istat_code`.
pub fn as_operator(principal: &Principal, istat_code: &str) -> Result<Actor, ServiceError> {
    match principal {
        Principal::Operator { istat_code: own } | Principal::System { istat_code: own }
            if own != istat_code =>
        {
            Err(ServiceError::PermissionDenied(format!(
                "only an operator of comune {istat_code} may do this"
            )))
        }
        Principal::Citizen { .. } => Err(ServiceError::PermissionDenied(format!(
            "only an operator of comune {istat_code} may do this"
        ))),
        _ => Ok(Actor {
            role: pb::PermitActorRole::Operator,
            id: String::new(),
        }),
    }
}

/// Whether `principal` may read a permit.
pub fn sees_permit(principal: &Principal, p: &permit::Model) -> bool {
    match principal {
        Principal::Anonymous => true,
        Principal::Citizen { fiscal_code } => canonical(fiscal_code) == p.applicant_fiscal_code,
        Principal::Operator { istat_code } | Principal::System { istat_code } => {
            *istat_code == p.istat_code
        }
    }
}

/// Whether `principal` may read a cadastral unit.
pub fn sees_unit(principal: &Principal, u: &UnitRecord) -> bool {
    match principal {
        Principal::Anonymous => true,
        Principal::Citizen { fiscal_code } => {
            let cf = canonical(fiscal_code);
            u.owners.iter().any(|o| o.fiscal_code == cf)
        }
        Principal::Operator { istat_code } | Principal::System { istat_code } => {
            *istat_code == u.unit.istat_code
        }
    }
}

/// Whether `principal` may read what concerns the citizen `code` (their properties, permits).
pub fn sees_citizen(principal: &Principal, code: &str) -> bool {
    match principal {
        Principal::Citizen { fiscal_code } => canonical(fiscal_code) == code,
        _ => true,
    }
}

/// The comune an operator or system is bound to, if the caller is one.
pub fn operator_comune(principal: &Principal) -> Option<&str> {
    match principal {
        Principal::Operator { istat_code } | Principal::System { istat_code } => {
            Some(istat_code.as_str())
        }
        _ => None,
    }
}

/// The citizen calling, if the caller is one (canonical code).
pub fn citizen(principal: &Principal) -> Option<String> {
    match principal {
        Principal::Citizen { fiscal_code } => Some(canonical(fiscal_code)),
        _ => None,
    }
}
