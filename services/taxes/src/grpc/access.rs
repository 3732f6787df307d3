//! Who may read and change what. Tax data is personal: a citizen sees and acts on their own
//! positions, an operator or system only on its comune's, and only a comune (operator or system)
//! sets rates, issues the yearly notices, cancels notices, imports rolls or records receipts. Until
//! tokens are verified (the identity work) every call arrives anonymous and passes, which is what the
//! all-in-one demo needs; the checks below apply as soon as the kit attaches a real principal.

use patto_service_kit::Principal;
use patto_service_kit::error::ServiceError;

fn canonical(code: &str) -> String {
    crate::domain::holder_code(code).unwrap_or_else(|_| code.trim().to_ascii_uppercase())
}

/// Whether the caller is the taxpayer filing online (anonymous callers count as such until
/// identity lands): their filing is a completed online interaction.
pub fn online(principal: &Principal) -> bool {
    matches!(principal, Principal::Anonymous | Principal::Citizen { .. })
}

/// May `principal` act for taxpayer `code` of comune `istat_code`?
pub fn for_taxpayer(
    principal: &Principal,
    code: &str,
    istat_code: &str,
) -> Result<(), ServiceError> {
    match principal {
        Principal::Anonymous => Ok(()),
        Principal::Citizen { fiscal_code } if canonical(fiscal_code) == code => Ok(()),
        Principal::Citizen { .. } => Err(ServiceError::PermissionDenied(
            "a citizen may see and act on their own tax positions only".into(),
        )),
        Principal::Operator { istat_code: own } | Principal::System { istat_code: own }
            if own == istat_code =>
        {
            Ok(())
        }
        _ => Err(ServiceError::PermissionDenied(format!(
            "only the taxpayer or an operator of comune {istat_code} may do this"
        ))),
    }
}

/// May `principal` act as comune `istat_code`?
pub fn for_comune(principal: &Principal, istat_code: &str) -> Result<(), ServiceError> {
    match principal {
        Principal::Anonymous => Ok(()),
        Principal::Operator { istat_code: own } | Principal::System { istat_code: own }
            if own == istat_code =>
        {
            Ok(())
        }
        _ => Err(ServiceError::PermissionDenied(format!(
            "only an operator or system of comune {istat_code} may do this"
        ))),
    }
}

/// Whether `principal` may read what concerns taxpayer `code` in comune `istat_code`.
pub fn sees(principal: &Principal, code: &str, istat_code: &str) -> bool {
    for_taxpayer(principal, code, istat_code).is_ok()
}

/// The comune an operator or system is bound to.
pub fn operator_comune(principal: &Principal) -> Option<&str> {
    match principal {
        Principal::Operator { istat_code } | Principal::System { istat_code } => Some(istat_code),
        _ => None,
    }
}

/// The citizen calling (canonical code).
pub fn citizen(principal: &Principal) -> Option<String> {
    match principal {
        Principal::Citizen { fiscal_code } => Some(canonical(fiscal_code)),
        _ => None,
    }
}
