//! Request validation every service repeats: batch keys of lookups and extensions, ids, ISTAT
//! codes, fiscal codes, optional enums and days. Each check names the field it refuses.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::error::{ServiceError, Violations};
use crate::ids;

/// Keys accepted by one lookup or extension call.
pub const MAX_BATCH_KEYS: usize = 1_000;

/// Validates the keys of a lookup or extension call with `check` (which returns the canonical
/// key or what is wrong) and returns them canonical, sorted and without duplicates.
pub fn batch_keys(
    keys: &[String],
    check: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, ServiceError> {
    let mut v = Violations::new();
    v.check(
        keys.len() <= MAX_BATCH_KEYS,
        "keys",
        format!("at most {MAX_BATCH_KEYS} keys per call"),
    );
    let mut out = BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        match check(key) {
            Ok(k) => {
                out.insert(k);
            }
            Err(msg) => v.add(format!("keys[{i}]"), msg),
        }
    }
    v.into_result()?;
    Ok(out.into_iter().collect())
}

/// Each distinct key as the caller sent it, with its canonical form: answers go back under the
/// key the caller used (an omocodic variant of a fiscal code, say). Invalid keys are left out.
pub fn asked_keys(
    keys: &[String],
    canonical: impl Fn(&str) -> Result<String, String>,
) -> Vec<(String, String)> {
    let mut asked: Vec<(String, String)> = Vec::new();
    for key in keys {
        if let Ok(c) = canonical(key)
            && !asked.iter().any(|(k, _)| k == key)
        {
            asked.push((key.clone(), c));
        }
    }
    asked
}

/// An opaque id of 1 to 64 characters, without control characters.
pub fn any_id(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() || key.len() > 64 || key.contains(char::is_control) {
        Err("must be an id of 1 to 64 characters".into())
    } else {
        Ok(key.to_owned())
    }
}

/// The ISTAT code of one of the 82 comuni.
pub fn istat_key(key: &str) -> Result<String, String> {
    if ids::is_known_istat_code(key) {
        Ok(key.to_owned())
    } else {
        Err(format!(
            "`{key}` is not the ISTAT code of a comune of the Città Metropolitana di Palermo"
        ))
    }
}

/// Records a violation of `field` unless `code` is a comune's ISTAT code (or empty and optional).
pub fn istat_check(code: &str, field: &str, required: bool, v: &mut Violations) {
    if code.is_empty() && !required {
        return;
    }
    v.check(
        ids::is_known_istat_code(code),
        field,
        "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
}

/// A person's codice fiscale, canonical (omocodia resolved).
pub fn fiscal_code_key(key: &str) -> Result<String, String> {
    ids::canonical_fiscal_code(key).map_err(|e| format!("is not a valid codice fiscale: {e}"))
}

/// The codice fiscale of a person (16 characters, omocodia resolved) or of a company or public
/// body (11-digit partita IVA), canonical.
pub fn holder_code(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.len() == 11 && s.bytes().all(|b| b.is_ascii_digit()) {
        return ids::validate_partita_iva(s)
            .map(|()| s.to_owned())
            .map_err(|e| format!("is not a valid partita IVA: {e}"));
    }
    ids::canonical_fiscal_code(s).map_err(|e| {
        format!("is not a valid codice fiscale (16 characters) or partita IVA (11 digits): {e}")
    })
}

/// An optional enum field: 0 (unspecified) is `None`; an unknown number is a violation of `field`.
pub fn optional_enum<E: TryFrom<i32>>(value: i32, field: &str, v: &mut Violations) -> Option<i32> {
    match value {
        0 => None,
        n if E::try_from(n).is_ok() => Some(n),
        n => {
            v.add(field, format!("{n} is not a known value"));
            None
        }
    }
}

/// An optional ISO day: empty is `None`; anything else must be `YYYY-MM-DD`.
pub fn optional_day(value: &str, field: &str, v: &mut Violations) -> Option<NaiveDate> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            v.add(field, format!("`{value}` is not a date; use YYYY-MM-DD"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keys_are_canonical_deduplicated_and_named_when_wrong() {
        let keys = vec!["082053".to_owned(), "082001".into(), "082053".into()];
        assert_eq!(batch_keys(&keys, istat_key).unwrap(), ["082001", "082053"]);
        let bad = vec!["082053".to_owned(), "999999".into()];
        match batch_keys(&bad, istat_key) {
            Err(ServiceError::InvalidArgument(v)) => assert_eq!(v.as_slice()[0].field, "keys[1]"),
            other => panic!("{other:?}"),
        }
        let many = vec!["082053".to_owned(); MAX_BATCH_KEYS + 1];
        assert!(batch_keys(&many, istat_key).is_err());
    }

    #[test]
    fn asked_keys_keep_what_the_caller_sent() {
        let keys = vec![
            "RCCMNL83S18D96VW".to_owned(),
            "RCCMNL83S18D969H".into(),
            "bad".into(),
        ];
        assert_eq!(
            asked_keys(&keys, fiscal_code_key),
            [
                ("RCCMNL83S18D96VW".to_owned(), "RCCMNL83S18D969H".to_owned()),
                ("RCCMNL83S18D969H".into(), "RCCMNL83S18D969H".into())
            ]
        );
    }

    #[test]
    fn holders_are_people_or_bodies() {
        assert_eq!(holder_code("00743110157").unwrap(), "00743110157");
        assert!(
            holder_code("00743110158")
                .unwrap_err()
                .contains("partita IVA")
        );
        assert_eq!(holder_code("rccmnl83s18d96vw").unwrap(), "RCCMNL83S18D969H");
        assert!(holder_code("nope").is_err());
    }

    #[test]
    fn days_and_enums() {
        let mut v = Violations::new();
        assert_eq!(optional_day("", "d", &mut v), None);
        assert!(optional_day("2026-02-30", "d", &mut v).is_none());
        use patto_proto::culture::v1::EventStatus;
        assert_eq!(optional_enum::<EventStatus>(0, "e", &mut v), None);
        assert_eq!(optional_enum::<EventStatus>(2, "e", &mut v), Some(2));
        assert_eq!(optional_enum::<EventStatus>(99, "e", &mut v), None);
        assert_eq!(v.as_slice().len(), 2);
        istat_check("", "c", false, &mut v);
        istat_check("", "c", true, &mut v);
        assert_eq!(v.as_slice().len(), 3);
    }
}
