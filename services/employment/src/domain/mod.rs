//! Work and training rules, free of I/O (DOMAIN.md §10): the national codes offers and courses are
//! classified by, what makes a job offer, an application, a course or an enrolment valid, how an
//! application moves through its review, and how seats and the waiting list are assigned. The store
//! applies these rules inside its transactions; this module states them once and tests them with
//! tables.

pub mod codes;
pub mod course;
pub mod offer;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use patto_service_kit::error::Violations;
use patto_service_kit::indicators::Procedure;
pub use patto_service_kit::time::{italian_day, last_sunday, rome_offset_hours};

/// Longest free-text field accepted (descriptions, requirements, messages).
pub const MAX_TEXT_LEN: usize = 4000;
/// Longest name or title accepted.
pub const MAX_NAME_LEN: usize = 200;
/// Longest short note accepted (closure notes, contact offices).
pub const MAX_NOTE_LEN: usize = 1000;
/// Longest reference accepted (external references, accreditation codes).
pub const MAX_REF_LEN: usize = 100;

/// Applying online to a job offer: submitted and followed online; the comune's review recording the
/// outcome finishes it, and that outcome is the completed interaction.
pub const JOB_APPLICATION: Procedure = Procedure {
    code: "employment.job-application",
    name: "Candidatura a un'offerta di lavoro pubblicata dal Comune",
    fully_online: true,
};

/// Enrolling online in a training course: the enrolment, with its seat or its place in the waiting
/// list, is the completed interaction.
pub const COURSE_ENROLMENT: Procedure = Procedure {
    code: "employment.course-enrolment",
    name: "Iscrizione a un corso di formazione",
    fully_online: true,
};

/// Every procedure of the employment service.
pub const PROCEDURES: &[Procedure] = &[JOB_APPLICATION, COURSE_ENROLMENT];

/// True when `text` fits in `max` characters and holds no NUL, which PostgreSQL cannot store in
/// text: such input is a client error, not a database failure.
pub fn fits(text: &str, max: usize) -> bool {
    !text.contains('\0') && text.chars().count() <= max
}

/// Checks a free-text field and returns it trimmed.
pub(crate) fn text(
    value: &str,
    field: &str,
    required: bool,
    max: usize,
    v: &mut Violations,
) -> String {
    let t = value.trim();
    if required && t.is_empty() {
        v.add(field, "must not be empty");
    } else if !fits(t, max) {
        v.add(field, format!("must be at most {max} characters"));
    }
    t.to_owned()
}

/// Checks a short reference (no control characters) and returns it trimmed.
pub(crate) fn reference(value: &str, field: &str, v: &mut Violations) -> String {
    let t = value.trim();
    if t.chars().count() > MAX_REF_LEN || t.contains(char::is_control) {
        v.add(
            field,
            format!("must be at most {MAX_REF_LEN} characters, without control characters"),
        );
    }
    t.to_owned()
}

/// The instant `day` ends in Italy (midnight Europe/Rome after it): when a deadline on `day`
/// passes.
pub fn end_of_italian_day(day: NaiveDate) -> DateTime<Utc> {
    let Some(midnight) = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)) else {
        return DateTime::<Utc>::MAX_UTC;
    };
    let midnight = midnight.and_utc();
    // Midnight in Rome is 22:00 or 23:00 UTC the evening before; summer time is the earlier one.
    let summer = midnight - Duration::hours(2);
    if italian_day(summer) == midnight.date_naive() {
        summer
    } else {
        midnight - Duration::hours(1)
    }
}

/// The words of a text folded for search: lower case, Italian accents dropped, anything but
/// letters and digits a separator. Stored rows and queries are folded alike, so "attivita" finds
/// "Attività" on SQLite and PostgreSQL the same way.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ä' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            c => c,
        };
        if c.is_alphanumeric() {
            out.push(c);
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    out.trim_end().to_owned()
}

/// The searchable text of a record: its folded parts, with a space on each side so a search can
/// anchor words.
pub fn search_text(parts: &[&str]) -> String {
    let mut out = String::from(" ");
    for p in parts {
        let f = fold(p);
        if !f.is_empty() {
            out.push_str(&f);
            out.push(' ');
        }
    }
    out
}

/// Most words a text search takes; more would only slow the query.
pub const MAX_SEARCH_WORDS: usize = 8;

/// The folded words of a search query; each must occur in a row for it to match.
pub fn search_words(query: &str, field: &str, v: &mut Violations) -> Vec<String> {
    if !fits(query, MAX_NAME_LEN) {
        v.add(field, format!("must be at most {MAX_NAME_LEN} characters"));
        return Vec::new();
    }
    let words: Vec<String> = fold(query).split(' ').map(str::to_owned).collect();
    let words: Vec<String> = words.into_iter().filter(|w| !w.is_empty()).collect();
    if words.len() > MAX_SEARCH_WORDS {
        v.add(field, format!("at most {MAX_SEARCH_WORDS} words"));
    }
    words
}

/// Validates an e-mail address loosely (one `@`, a dotted domain, no spaces) and returns it trimmed.
pub fn validate_email(value: &str) -> Result<String, &'static str> {
    let e = value.trim();
    if e.is_empty() {
        return Err("must not be empty: the comune writes to this address");
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err("is not an e-mail address, e.g. nome.cognome@example.it");
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@');
    if e.chars().count() > 254 || !domain_ok || !local_ok {
        return Err("is not an e-mail address, e.g. nome.cognome@example.it");
    }
    Ok(e.to_owned())
}

/// Validates an optional phone number (digits with `+`, spaces, dashes, dots, slashes or
/// brackets; 6 to 15 digits) and returns it trimmed.
pub fn validate_phone(value: &str) -> Result<String, &'static str> {
    let p = value.trim();
    if p.is_empty() {
        return Ok(String::new());
    }
    let digits = p.chars().filter(char::is_ascii_digit).count();
    let chars_ok = p.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '/' | '(' | ')') || (c == '+' && i == 0)
    });
    if !chars_ok || !(6..=15).contains(&digits) {
        return Err("is not a phone number, e.g. +39 333 1234567");
    }
    Ok(p.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn italian_days_and_their_end() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let cases = [
            ("2025-01-31T22:30:00Z", "2025-01-31"),
            ("2025-01-31T23:30:00Z", "2025-02-01"),
            ("2025-06-30T21:30:00Z", "2025-06-30"),
            ("2025-06-30T22:30:00Z", "2025-07-01"),
            ("2025-03-29T23:00:00Z", "2025-03-30"),
            ("2025-10-26T23:00:00Z", "2025-10-27"),
        ];
        for (t, d) in cases {
            assert_eq!(italian_day(at(t)), day(d), "{t}");
        }
        // A deadline on a winter day ends at 23:00 UTC, on a summer day at 22:00 UTC.
        let ends = [
            ("2025-01-31", "2025-01-31T23:00:00Z"),
            ("2025-06-30", "2025-06-30T22:00:00Z"),
            // The night summer time starts (30 March 2025) still ends on CET.
            ("2025-03-29", "2025-03-29T23:00:00Z"),
            ("2025-10-26", "2025-10-26T23:00:00Z"),
        ];
        for (d, end) in ends {
            assert_eq!(end_of_italian_day(day(d)), at(end), "{d}");
            assert_eq!(italian_day(at(end)), day(d).succ_opt().unwrap());
            assert_eq!(
                italian_day(at(end) - Duration::seconds(1)),
                day(d),
                "{d}: the last second still belongs to the day"
            );
        }
        assert_eq!(end_of_italian_day(NaiveDate::MAX), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn folding_for_search() {
        let cases = [
            ("Attività di Ristorazione", "attivita di ristorazione"),
            ("  CUOCO/A -- pizzeria!! ", "cuoco a pizzeria"),
            ("Perché È così", "perche e cosi"),
            ("", ""),
            ("%_\\", ""),
        ];
        for (input, folded) in cases {
            assert_eq!(fold(input), folded, "{input:?}");
        }
        assert_eq!(
            search_text(&["Cuoco", "", "Ristorante Da Totò"]),
            " cuoco ristorante da toto "
        );
        let mut v = Violations::new();
        assert_eq!(
            search_words(" Cuoco  PIZZERIA ", "text", &mut v),
            ["cuoco", "pizzeria"]
        );
        assert!(
            search_words("%%%", "text", &mut v).is_empty(),
            "wildcards are not words"
        );
        assert!(v.is_empty());
        search_words("a b c d e f g h i", "text", &mut v);
        assert_eq!(v.as_slice()[0].field, "text");
    }

    #[test]
    fn emails() {
        let ok = [
            "a@b.it",
            " mario.rossi+lavoro@comune.palermo.it ",
            "x@dominio-uno.eu",
        ];
        for e in ok {
            assert_eq!(validate_email(e).unwrap(), e.trim(), "{e}");
        }
        let bad = [
            "",
            "mario",
            "mario@",
            "@comune.it",
            "mario@comune",
            "mario rossi@comune.it",
            "mario@@comune.it",
            "mario@.comune.it",
            "mario@comune..it",
            "mario@comune.it-",
        ];
        for e in bad {
            assert!(validate_email(e).is_err(), "{e:?}");
        }
    }

    #[test]
    fn phones() {
        let ok = [
            ("", ""),
            ("+39 333 1234567", "+39 333 1234567"),
            ("091/7401111", "091/7401111"),
        ];
        for (p, stored) in ok {
            assert_eq!(validate_phone(p).unwrap(), stored, "{p}");
        }
        for p in [
            "12345",
            "+39 333 123 456 789 0123",
            "333-ABC-1234",
            "39+3331234567",
        ] {
            assert!(validate_phone(p).is_err(), "{p}");
        }
    }

    #[test]
    fn text_limits() {
        let mut v = Violations::new();
        assert_eq!(text("  ciao ", "f", true, 10, &mut v), "ciao");
        text("   ", "empty", true, 10, &mut v);
        text("undici car.", "long", false, 10, &mut v);
        text("nul\0", "nul", false, 10, &mut v);
        reference("REF\n1", "ref", &mut v);
        let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["empty", "long", "nul", "ref"]);
    }
}
