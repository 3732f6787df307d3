//! Who may change a comune's public works: the one place the rule is decided.
//!
//! Public works are public data, so every read is open to anyone. Changes belong to the comune
//! that carries the work out (DESIGN.md, "Identity and tenancy"): its operators and its own systems.
//! An operator or system bound to another comune is always refused, since such a principal is
//! verified. Refusing anonymous callers and citizens is switched by `PUBLICWORKS_ENFORCE_ACCESS`
//! (default off): until callers carry verified tokens the kit authenticates everyone as anonymous,
//! and enforcing would lock every comune out of its own works.

use patto_service_kit::Principal;
use patto_service_kit::config::{ConfigError, Source, flag_or};
use patto_service_kit::error::ServiceError;

/// Environment variable that turns enforcement on (`true`, `1`, `yes`, `on`).
pub const ENFORCE_ACCESS_VAR: &str = "PUBLICWORKS_ENFORCE_ACCESS";

/// The write rule and whether anonymous callers and citizens are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    enforced: bool,
}

impl Access {
    /// The rule, enforced for every caller.
    pub fn enforced() -> Self {
        Self { enforced: true }
    }

    /// The rule for operators and systems only: anonymous callers and citizens may change works.
    pub fn off() -> Self {
        Self { enforced: false }
    }

    /// Reads [`ENFORCE_ACCESS_VAR`] from `src` (default off).
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            enforced: flag_or(src, ENFORCE_ACCESS_VAR, false)?,
        })
    }

    /// True when anonymous callers and citizens are refused.
    pub fn is_enforced(&self) -> bool {
        self.enforced
    }

    /// May `principal` change the works of comune `istat_code`?
    pub fn authorize_write(
        &self,
        principal: &Principal,
        istat_code: &str,
    ) -> Result<(), ServiceError> {
        match principal {
            Principal::Operator { istat_code: mine } | Principal::System { istat_code: mine } => {
                if mine == istat_code {
                    Ok(())
                } else {
                    Err(ServiceError::PermissionDenied(format!(
                        "the public works of comune {istat_code} are changed by its own operators; you act for comune {mine}"
                    )))
                }
            }
            _ if !self.enforced => Ok(()),
            Principal::Anonymous => Err(ServiceError::Unauthenticated(
                "changing public works needs the sign-in of an operator of the comune".into(),
            )),
            Principal::Citizen { .. } => Err(ServiceError::PermissionDenied(
                "public works are changed by the comune's operators; citizens read them".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn write_matrix() {
        let operator = |c: &str| Principal::Operator {
            istat_code: c.into(),
        };
        let system = |c: &str| Principal::System {
            istat_code: c.into(),
        };
        let citizen = Principal::Citizen {
            fiscal_code: "RSSMRA80A01G273M".into(),
        };
        let ok = None;
        // (principal, enforced, expected)
        let cases = [
            (operator("082053"), true, ok),
            (operator("082053"), false, ok),
            (system("082053"), true, ok),
            (operator("082006"), true, Some(Code::PermissionDenied)),
            (operator("082006"), false, Some(Code::PermissionDenied)),
            (system("082006"), false, Some(Code::PermissionDenied)),
            (Principal::Anonymous, true, Some(Code::Unauthenticated)),
            (Principal::Anonymous, false, ok),
            (citizen.clone(), true, Some(Code::PermissionDenied)),
            (citizen, false, ok),
        ];
        for (principal, enforced, expected) in cases {
            let access = if enforced {
                Access::enforced()
            } else {
                Access::off()
            };
            let got = access.authorize_write(&principal, "082053");
            assert_eq!(
                got.as_ref().err().map(ServiceError::code),
                expected,
                "{principal:?} enforced={enforced}"
            );
        }
    }

    #[test]
    fn the_flag() {
        let src = |v: &str| std::collections::HashMap::from([(ENFORCE_ACCESS_VAR, v.to_owned())]);
        assert!(Access::from_source(&src("true")).unwrap().is_enforced());
        assert!(!Access::from_source(&src("")).unwrap().is_enforced());
        let err = Access::from_source(&src("maybe")).unwrap_err();
        assert!(
            err.to_string().starts_with("PUBLICWORKS_ENFORCE_ACCESS="),
            "{err}"
        );
    }
}
