//! Social assistance rules, free of I/O (DOMAIN.md §8): what makes a scheme, an ISEE declaration or
//! an application valid, the application workflow as a state machine, the ranking (graduatoria) and
//! the payment schedule. The store applies these rules inside its transactions; this module states
//! them once and tests them with tables.

pub mod application;
pub mod isee;
pub mod payments;
pub mod ranking;
pub mod scheme;
pub mod workflow;

use patto_service_kit::indicators::Procedure;
pub use patto_service_kit::time::{italian_day, last_sunday, rome_offset_hours};

/// Longest free-text field accepted (descriptions, statements, motivations).
pub const MAX_TEXT_LEN: usize = 4000;
/// Longest name accepted (scheme names, file names).
pub const MAX_NAME_LEN: usize = 200;
/// Longest short reference accepted (acts, payment references, contacts).
pub const MAX_REF_LEN: usize = 300;

/// Applying online for a benefit: drafted, submitted with its ISEE and integrated by the citizen, and
/// followed to the decision and the payments. Each submission and each integration sent online counts
/// as a completed interaction.
pub const BENEFIT_APPLICATION: Procedure = Procedure {
    code: "social.benefit-application",
    name: "Domanda di prestazione sociale agevolata (contributi, assistenza domiciliare, assegno di maternità)",
    fully_online: true,
};

/// Every procedure of the social service.
pub const PROCEDURES: &[Procedure] = &[BENEFIT_APPLICATION];

/// An amount as Italian documents write it: `€ 10.140,00`.
pub fn euro(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3);
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("€ {sign}{grouped},{:02}", abs % 100)
}

/// True when `text` fits in `max` characters and holds no NUL, which PostgreSQL cannot store in
/// text: such input is a client error, not a database failure.
pub(crate) fn fits(text: &str, max: usize) -> bool {
    !text.contains('\0') && text.chars().count() <= max
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate};

    #[test]
    fn italian_days() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let cases = [
            ("2025-01-31T22:30:00Z", "2025-01-31"),
            ("2025-01-31T23:30:00Z", "2025-02-01"),
            ("2025-06-30T21:30:00Z", "2025-06-30"),
            ("2025-06-30T22:30:00Z", "2025-07-01"),
            // Summer time starts on 30 March 2025 at 01:00 UTC and ends on 26 October.
            ("2025-03-30T00:59:00Z", "2025-03-30"),
            ("2025-03-29T22:59:00Z", "2025-03-29"),
            ("2025-03-29T23:00:00Z", "2025-03-30"),
            ("2025-10-25T22:00:00Z", "2025-10-26"),
            ("2025-10-26T22:59:00Z", "2025-10-26"),
            ("2025-10-26T23:00:00Z", "2025-10-27"),
            ("2025-12-31T23:00:00Z", "2026-01-01"),
        ];
        for (t, d) in cases {
            assert_eq!(italian_day(at(t)), day(d), "{t}");
        }
        assert_eq!(last_sunday(2025, 3), Some(day("2025-03-30")));
        assert_eq!(last_sunday(2025, 10), Some(day("2025-10-26")));
        assert_eq!(last_sunday(2024, 12), Some(day("2024-12-29")));
    }

    #[test]
    fn euro_amounts() {
        let cases = [
            (0, "€ 0,00"),
            (5, "€ 0,05"),
            (40_740, "€ 407,40"),
            (1_014_000, "€ 10.140,00"),
            (2_038_290, "€ 20.382,90"),
            (12_345_678_901, "€ 123.456.789,01"),
            (-500, "€ -5,00"),
            (i64::MIN, "€ -92.233.720.368.547.758,08"),
        ];
        for (cents, text) in cases {
            assert_eq!(euro(cents), text, "{cents}");
        }
    }
}
