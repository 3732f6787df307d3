//! Public-works rules, free of I/O (DOMAIN.md §12, D.Lgs 36/2023): what makes a work's data valid,
//! the life of a work as a state machine, the SAL deadlines and their late flags, the consistency of
//! an imported work, and the open-data rendering. The store applies these rules inside its
//! transactions; this module states them once and tests them with tables.

pub mod export;
pub mod import;
pub mod project;
pub mod sal;
pub mod state;

use chrono::{Datelike, NaiveDate};
use patto_proto::publicworks::v1 as pb;
use patto_service_kit::indicators::Procedure;
pub use patto_service_kit::time::{italian_day, last_sunday, rome_offset_hours};

/// Longest title accepted.
pub const MAX_TITLE_LEN: usize = 300;
/// Longest free-text field accepted (descriptions, notes).
pub const MAX_TEXT_LEN: usize = 4000;
/// Longest name accepted (RUP, contractor, street).
pub const MAX_NAME_LEN: usize = 200;
/// Longest short reference accepted (external references, funding references).
pub const MAX_REF_LEN: usize = 100;
/// Largest amount accepted, in cents (€ 100 billion): far above any municipal work, and far enough
/// below `i64::MAX` that sums of many amounts cannot overflow.
pub const MAX_AMOUNT_CENTS: i64 = 10_000_000_000_000;
/// Most funding sources one work may list.
pub const MAX_FUNDING_SOURCES: usize = 20;
/// Most CIGs one work may carry (one per lot or procedure).
pub const MAX_CIGS: usize = 100;
/// Most SAL one work may carry.
pub const MAX_SAL: usize = 500;

/// The procedures this service offers to citizens: none. Public works are run by the comuni's
/// offices; citizens only read them (as open data), so no online procedure exists to start, follow
/// and finish, and no interaction is recorded for the indicators. The list is empty on purpose.
pub const PROCEDURES: &[Procedure] = &[];

/// True when `text` fits in `max` characters and holds no NUL, which PostgreSQL cannot store in
/// text: such input is a client error, not a database failure.
pub fn fits(text: &str, max: usize) -> bool {
    !text.contains('\0') && text.chars().count() <= max
}

/// The name of a state as acts write it, e.g. `IN_ESECUZIONE`.
pub fn state_name(state: pb::ProjectState) -> &'static str {
    state
        .as_str_name()
        .strip_prefix("PROJECT_STATE_")
        .unwrap_or("UNSPECIFIED")
}

/// The name of a stored state number, `UNKNOWN` when it is not one.
pub fn state_name_of(state: i32) -> &'static str {
    pb::ProjectState::try_from(state).map_or("UNKNOWN", state_name)
}

/// The name of a funding source as the open data writes it, e.g. `PON_METRO`.
pub fn funding_source_name(source: pb::ProjectFundingSource) -> &'static str {
    source
        .as_str_name()
        .strip_prefix("PROJECT_FUNDING_SOURCE_")
        .unwrap_or("UNSPECIFIED")
}

/// An amount in euro with two decimals and a dot, as open data writes it: `1234.50`.
pub fn euro_decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Years a day of this service may fall in. Acts of a work fall well inside them, and both
/// databases store every such day (PostgreSQL's `date` is narrower than chrono's calendar).
pub const CALENDAR_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// Parses an ISO `YYYY-MM-DD` day within [`CALENDAR_YEARS`], naming `field` when it is not one.
pub fn calendar_day(
    value: &str,
    field: &str,
    v: &mut patto_service_kit::error::Violations,
) -> Option<NaiveDate> {
    let day = patto_service_kit::indicators::parse_day(value.trim(), field, v)?;
    if CALENDAR_YEARS.contains(&day.year()) {
        Some(day)
    } else {
        v.add(
            field,
            format!(
                "must fall in the years {} to {}",
                CALENDAR_YEARS.start(),
                CALENDAR_YEARS.end()
            ),
        );
        None
    }
}

/// A day as the contract writes it, ISO `YYYY-MM-DD`.
pub fn iso_day(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn italian_days() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let cases = [
            ("2025-01-31T22:30:00Z", "2025-01-31"),
            ("2025-01-31T23:30:00Z", "2025-02-01"),
            ("2025-06-30T21:30:00Z", "2025-06-30"),
            ("2025-06-30T22:30:00Z", "2025-07-01"),
            ("2025-03-29T23:00:00Z", "2025-03-30"),
            ("2025-10-26T22:59:00Z", "2025-10-26"),
            ("2025-10-26T23:00:00Z", "2025-10-27"),
        ];
        for (t, d) in cases {
            assert_eq!(italian_day(at(t)), day(d), "{t}");
        }
    }

    #[test]
    fn amounts_and_names() {
        let cases = [
            (0, "0.00"),
            (5, "0.05"),
            (123_450, "1234.50"),
            (-500, "-5.00"),
            (MAX_AMOUNT_CENTS, "100000000000.00"),
            (i64::MIN, "-92233720368547758.08"),
        ];
        for (cents, text) in cases {
            assert_eq!(euro_decimal(cents), text, "{cents}");
        }
        assert_eq!(state_name(pb::ProjectState::InEsecuzione), "IN_ESECUZIONE");
        assert_eq!(state_name_of(99), "UNKNOWN");
        assert_eq!(
            funding_source_name(pb::ProjectFundingSource::PonMetro),
            "PON_METRO"
        );
    }

    #[test]
    fn calendar_days() {
        let mut v = patto_service_kit::error::Violations::new();
        assert!(calendar_day("2025-02-28", "d", &mut v).is_some());
        assert!(calendar_day(" 2025-02-28 ", "d", &mut v).is_some());
        assert!(v.is_empty());
        for bad in [
            "2025-02-29",
            "1899-12-31",
            "2201-01-01",
            "+262143-12-31",
            "-0001-01-01",
            "",
        ] {
            let mut v = patto_service_kit::error::Violations::new();
            assert!(calendar_day(bad, "d", &mut v).is_none(), "{bad}");
            assert_eq!(v.as_slice()[0].field, "d", "{bad}");
        }
    }

    #[test]
    fn text_limits() {
        assert!(fits("Scuola Garibaldi", 20));
        assert!(!fits("a\0b", 20));
        assert!(fits("àèìòù", 5));
        assert!(!fits("àèìòù!", 5));
    }
}
