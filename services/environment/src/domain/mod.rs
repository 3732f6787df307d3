//! Environment rules, free of I/O (DOMAIN.md §11): what makes a report, a calendar, a booking or a
//! reading valid, the report workflow as a state machine, when a report duplicates another, what the
//! calendar collects on a day, how readings aggregate into days and how days count against the EU
//! limit values. The store applies these rules inside its transactions; this module states them once
//! and tests them with tables.

pub mod air;
pub mod geo;
pub mod reports;
pub mod waste;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use patto_service_kit::error::Violations;
use patto_service_kit::indicators::Procedure;
pub use patto_service_kit::time::{italian_day, last_sunday, rome_offset_hours};

/// Filing a report (segnalazione) online and following it to its outcome. Each report a citizen
/// files online counts as a completed interaction.
pub const REPORT: Procedure = Procedure {
    code: "environment.report",
    name: "Segnalazione di problemi ambientali e di decoro urbano",
    fully_online: true,
};

/// Booking the kerbside pickup of bulky waste online. Each booking counts as a completed
/// interaction.
pub const BULKY_WASTE_PICKUP: Procedure = Procedure {
    code: "environment.bulky-waste-pickup",
    name: "Prenotazione del ritiro a domicilio di rifiuti ingombranti",
    fully_online: true,
};

/// Every procedure of the environment service.
pub const PROCEDURES: &[Procedure] = &[REPORT, BULKY_WASTE_PICKUP];

/// Longest free-text field accepted (descriptions, notes).
pub const MAX_TEXT_LEN: usize = 4000;
/// Longest name accepted (zones, stations, centres, offices, file names).
pub const MAX_NAME_LEN: usize = 200;
/// Longest identifier accepted.
pub const MAX_ID_LEN: usize = 64;

/// True when `text` fits in `max` characters and holds no NUL, which PostgreSQL cannot store in
/// text: such input is a client error, not a database failure.
pub fn fits(text: &str, max: usize) -> bool {
    !text.contains('\0') && text.chars().count() <= max
}

/// Checks an optional free text of at most `max` characters.
pub fn check_text(text: &str, max: usize, field: &str, v: &mut Violations) {
    v.check(
        fits(text, max),
        field,
        format!("must be at most {max} characters, without NUL characters"),
    );
}

/// Checks a required free text of at most `max` characters; returns it trimmed.
pub fn required_text(text: &str, max: usize, field: &str, v: &mut Violations) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        v.add(field, "must not be empty");
    } else {
        check_text(trimmed, max, field, v);
    }
    trimmed.to_owned()
}

/// Checks an ISTAT code of one of the 82 comuni.
pub fn check_istat(code: &str, field: &str, v: &mut Violations) {
    patto_service_kit::validate::istat_check(code, field, true, v);
}

/// Checks an identifier a client chose or passes back: 1 to 64 printable characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.chars().all(|c| c.is_ascii_graphic())
}

/// Parses an ISO `YYYY-MM-DD` day, naming `field` when it is not one.
/// Days accepted from clients: a wide span around today, so day arithmetic can never leave
/// chrono's range whatever a client sends.
pub const DAY_RANGE: (NaiveDate, NaiveDate) = (
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid constant date"),
    NaiveDate::from_ymd_opt(2199, 12, 31).expect("a valid constant date"),
);

/// Parses an ISO `YYYY-MM-DD` day within [`DAY_RANGE`], naming `field` when it is not one.
pub fn parse_day(value: &str, field: &str, v: &mut Violations) -> Option<NaiveDate> {
    let day = patto_service_kit::indicators::parse_day(value.trim(), field, v)?;
    if (DAY_RANGE.0..=DAY_RANGE.1).contains(&day) {
        Some(day)
    } else {
        v.add(
            field,
            format!("must be between {} and {}", DAY_RANGE.0, DAY_RANGE.1),
        );
        None
    }
}

/// Parses an optional ISO day: `None` for an empty string, `Some(None)` for a bad one (recorded).
pub fn parse_optional_day(
    value: &str,
    field: &str,
    v: &mut Violations,
) -> Option<Option<NaiveDate>> {
    if value.trim().is_empty() {
        None
    } else {
        Some(parse_day(value, field, v))
    }
}

/// Parses `HH:MM` (24-hour clock).
pub fn parse_hhmm(value: &str) -> Option<NaiveTime> {
    let (h, m) = value.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// The instant of a wall-clock time in Europe/Rome. In the hour skipped in spring the summer offset
/// is assumed, and in the hour repeated in autumn the first (summer) one is taken: set-out times are
/// never there in practice.
pub fn rome_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    let as_utc = local.and_utc();
    let shifted = |h| {
        as_utc
            .checked_sub_signed(Duration::hours(h))
            .unwrap_or(as_utc)
    };
    let summer = shifted(2);
    if rome_offset_hours(summer) == 2 {
        summer
    } else {
        shifted(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn italian_days_follow_summer_time() {
        let cases = [
            ("2025-01-31T22:30:00Z", "2025-01-31"),
            ("2025-01-31T23:30:00Z", "2025-02-01"),
            ("2025-06-30T21:30:00Z", "2025-06-30"),
            ("2025-06-30T22:30:00Z", "2025-07-01"),
            ("2025-03-29T23:00:00Z", "2025-03-30"),
            ("2025-10-26T22:59:00Z", "2025-10-26"),
            ("2025-10-26T23:00:00Z", "2025-10-27"),
            ("2025-12-31T23:00:00Z", "2026-01-01"),
        ];
        for (t, d) in cases {
            assert_eq!(italian_day(at(t)), day(d), "{t}");
        }
    }

    #[test]
    fn rome_wall_clock_to_utc() {
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let cases = [
            ("2025-01-15 20:00", "2025-01-15T19:00:00Z"),
            ("2025-07-15 20:00", "2025-07-15T18:00:00Z"),
            ("2025-03-30 06:00", "2025-03-30T04:00:00Z"),
            ("2025-03-29 20:00", "2025-03-29T19:00:00Z"),
            ("2025-10-26 06:00", "2025-10-26T05:00:00Z"),
            ("2025-10-25 20:00", "2025-10-25T18:00:00Z"),
        ];
        for (l, u) in cases {
            assert_eq!(rome_to_utc(local(l)), at(u), "{l}");
        }
    }

    #[test]
    fn clock_times() {
        assert_eq!(parse_hhmm("20:00"), NaiveTime::from_hms_opt(20, 0, 0));
        assert_eq!(parse_hhmm("06:30"), NaiveTime::from_hms_opt(6, 30, 0));
        for bad in ["24:00", "6:00", "06:60", "", "0600", "ab:cd"] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
    }

    #[test]
    fn texts_and_ids() {
        assert!(fits("Via Maqueda", 20));
        assert!(!fits("a\0b", 20));
        assert!(!fits("abc", 2));
        assert!(valid_id("082053-Z1"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
