//! The access rule, checked at the gateway before any backend call. Services check it again on
//! every read and write (a comune's system calling gRPC directly meets the same rule); checking here
//! too refuses what can be refused from the principal alone without spending a backend call, and
//! keeps an anonymous client from learning anything about a citizen.

use async_graphql::dynamic::ResolverContext;
use async_graphql::{Error, ErrorExtensions};
use patto_service_kit::Principal;
use patto_service_kit::access;

use crate::errors;

/// The caller the HTTP layer authenticated; anonymous when none was attached.
pub(crate) fn principal(ctx: &ResolverContext<'_>) -> Principal {
    ctx.data_opt::<Principal>()
        .cloned()
        .unwrap_or(Principal::Anonymous)
}

fn forbidden(message: &str) -> Error {
    Error::new(message).extend_with(|_, ext| ext.set("code", "FORBIDDEN"))
}

/// `citizen(fiscalCode:)`: everything under it is personal data, readable by that citizen and by
/// operators and systems (whose comune the services check row by row).
pub(crate) fn citizen_entry(p: &Principal, fiscal_code: &str) -> Result<(), Error> {
    match p {
        Principal::Anonymous => Err(errors::unauthenticated(
            "a citizen's data is personal: sign in (bearer token in `Authorization`) as that citizen or as an operator of their comune",
        )),
        Principal::Citizen { fiscal_code: me } if access::canonical(me) != fiscal_code => {
            Err(forbidden(
                "a citizen's data is readable only by that citizen and by the operators of the comuni that hold it; use `me` for your own",
            ))
        }
        _ => Ok(()),
    }
}

/// `me`: the signed-in citizen's fiscal code.
pub(crate) fn me(p: &Principal) -> Result<String, Error> {
    match p {
        Principal::Citizen { fiscal_code } => Ok(access::canonical(fiscal_code)),
        Principal::Anonymous => Err(errors::unauthenticated(
            "sign in with SPID or CIE to read your own data",
        )),
        _ => Err(forbidden(
            "`me` is the signed-in citizen; operators and systems read a citizen with `citizen(fiscalCode:)`",
        )),
    }
}

/// Every mutation changes a citizen's or a comune's records: anonymous callers change nothing.
pub(crate) fn mutation(p: &Principal) -> Result<(), Error> {
    match p {
        Principal::Anonymous => Err(errors::unauthenticated(
            "changes need a signed-in caller: send a bearer token in `Authorization`",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "RSSMRA80A01G273Z";
    const OTHER: &str = "VRDLGU75B12G273D";

    fn code(r: Result<impl Sized, Error>) -> Option<String> {
        r.err().and_then(|e| {
            e.extensions
                .and_then(|x| x.get("code").cloned())
                .map(|v| v.to_string().trim_matches('"').to_owned())
        })
    }

    #[test]
    fn gateway_rules() {
        let me_ = Principal::Citizen {
            fiscal_code: ME.to_ascii_lowercase(),
        };
        let other = Principal::Citizen {
            fiscal_code: OTHER.into(),
        };
        let op = Principal::Operator {
            istat_code: "082053".into(),
            subject: "op".into(),
        };
        let anon = Principal::Anonymous;
        assert_eq!(
            code(citizen_entry(&anon, ME)).as_deref(),
            Some("UNAUTHENTICATED")
        );
        assert_eq!(
            code(citizen_entry(&other, ME)).as_deref(),
            Some("FORBIDDEN")
        );
        assert_eq!(code(citizen_entry(&me_, ME)), None);
        assert_eq!(code(citizen_entry(&op, ME)), None);
        assert_eq!(me(&me_).unwrap(), ME);
        assert_eq!(code(me(&anon)).as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(me(&op)).as_deref(), Some("FORBIDDEN"));
        assert_eq!(code(mutation(&anon)).as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(mutation(&other)), None);
        assert_eq!(code(mutation(&op)), None);
    }
}
