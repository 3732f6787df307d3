//! Local tax rules, free of I/O: the comuni's IMU rates and TARI tariffs as data with their legal
//! defaults and ranges ([`rates`], [`tariffs`]), the IMU computation (L. 160/2019, [`imu`]), the TARI
//! computation (DPR 158/1999, [`tari`]), the pagoPA debt positions and their payment ([`debt`]), and
//! what a valid declaration, registration or tax-roll row is ([`roll`]). Each is table-tested here;
//! the store and the gRPC layer only feed them data.

pub mod debt;
pub mod imu;
pub mod rates;
pub mod roll;
pub mod tari;
pub mod tariffs;

use chrono::NaiveDate;
use patto_proto::taxes::v1 as pb;
use patto_service_kit::error::Violations;
use patto_service_kit::indicators::Procedure;
pub use patto_service_kit::validate::{holder_code, optional_day};

/// Longest short text accepted (names, causali, act references).
pub const MAX_NAME_LEN: usize = 200;
/// Longest free text accepted (notes, reasons).
pub const MAX_TEXT_LEN: usize = 4000;
/// Largest amount accepted, in cents (€ 10 billion): far above any tax, and low enough that the
/// exact arithmetic (i128) and the sums over a comune cannot overflow.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;
/// Earliest tax year handled: IMU exists since 2012, TARI since 2014.
pub const FIRST_YEAR: i32 = 2012;
/// Latest tax year accepted.
pub const LAST_YEAR: i32 = 2200;

/// Filing an IMU declaration online.
pub const IMU_DECLARATION: Procedure = Procedure {
    code: "taxes.imu-declaration",
    name: "Dichiarazione IMU",
    fully_online: true,
};
/// Filing a TARI declaration (start, change or end of occupation) online.
pub const TARI_DECLARATION: Procedure = Procedure {
    code: "taxes.tari-declaration",
    name: "Dichiarazione TARI (iscrizione, variazione, cessazione)",
    fully_online: true,
};
/// Paying IMU online through pagoPA.
pub const IMU_PAYMENT: Procedure = Procedure {
    code: "taxes.imu-payment",
    name: "Pagamento IMU con pagoPA",
    fully_online: true,
};
/// Paying TARI online through pagoPA.
pub const TARI_PAYMENT: Procedure = Procedure {
    code: "taxes.tari-payment",
    name: "Pagamento TARI con pagoPA",
    fully_online: true,
};

/// Every procedure of the taxes service, as the indicators list them.
pub const PROCEDURES: &[Procedure] =
    &[IMU_DECLARATION, TARI_DECLARATION, IMU_PAYMENT, TARI_PAYMENT];

/// The payment procedure of a tribute.
pub fn payment_procedure(tribute: pb::Tribute) -> &'static Procedure {
    match tribute {
        pb::Tribute::Tari => &TARI_PAYMENT,
        _ => &IMU_PAYMENT,
    }
}

/// Parses a required ISO day.
pub fn required_day(value: &str, field: &str, what: &str, v: &mut Violations) -> Option<NaiveDate> {
    if value.trim().is_empty() {
        v.add(field, format!("must be {what} (YYYY-MM-DD)"));
        return None;
    }
    optional_day(value, field, v)
}

/// Checks a bounded text field and returns it trimmed.
pub fn text(value: &str, field: &str, max: usize, required: bool, v: &mut Violations) -> String {
    let t = value.trim();
    if required && t.is_empty() {
        v.add(field, "must not be empty");
    }
    if t.chars().count() > max {
        v.add(field, format!("must be at most {max} characters"));
    }
    t.to_owned()
}

/// Checks a tax year.
pub fn check_year(year: i32, field: &str, v: &mut Violations) {
    v.check(
        (FIRST_YEAR..=LAST_YEAR).contains(&year),
        field,
        format!("must be a tax year from {FIRST_YEAR} to {LAST_YEAR}"),
    );
}

/// Divides rounding half away from zero: amounts are computed exactly and rounded once, to the
/// cent, at the end.
pub fn div_round(num: i128, den: i128) -> i64 {
    if den == 0 {
        return 0;
    }
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let q = num / den;
    let r = num % den;
    let rounded = if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

/// The group letter of a categoria catastale (`A/2` → `A`) or of a bare group letter (`D`);
/// `None` for anything else. Numbers follow the "quadro generale delle categorie".
pub fn cadastre_group(categoria: &str) -> Option<char> {
    let s = categoria.trim().to_ascii_uppercase();
    let group = s.chars().next()?;
    let max = match group {
        'A' => 11,
        'B' => 8,
        'C' | 'F' => 7,
        'D' => 10,
        'E' => 9,
        _ => return None,
    };
    let rest = &s[1..];
    if rest.is_empty() {
        return Some(group);
    }
    let number: u32 = rest.strip_prefix('/')?.parse().ok()?;
    (1..=max).contains(&number).then_some(group)
}

/// The name of a tribute without its enum prefix, e.g. `IMU`.
pub fn tribute_name(t: pb::Tribute) -> &'static str {
    t.as_str_name().trim_start_matches("TRIBUTE_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        let cases = [
            (5, 2, 3),
            (4, 2, 2),
            (7, 3, 2),
            (-5, 2, -3),
            (15_225, 1_000, 15),
            (1, 3, 0),
            (2, 3, 1),
            (1, 0, 0),
            (5, -2, -3),
        ];
        for (num, den, want) in cases {
            assert_eq!(div_round(num, den), want, "{num}/{den}");
        }
    }

    #[test]
    fn holder_codes_and_years() {
        assert_eq!(
            holder_code("rccmnl83s18d96vw").as_deref(),
            Ok("RCCMNL83S18D969H")
        );
        assert_eq!(holder_code("00743110157").as_deref(), Ok("00743110157"));
        assert!(holder_code("00743110158").is_err());
        let mut v = Violations::new();
        check_year(2011, "year", &mut v);
        check_year(2026, "year", &mut v);
        assert_eq!(v.as_slice().len(), 1);
        assert_eq!(tribute_name(pb::Tribute::Tari), "TARI");
        assert_eq!(cadastre_group("d/8"), Some('D'));
        assert_eq!(cadastre_group("C"), Some('C'));
        assert_eq!(cadastre_group("C/8"), None);
        assert_eq!(cadastre_group("Z"), None);
        assert_eq!(cadastre_group(""), None);
        assert_eq!(
            payment_procedure(pb::Tribute::Imu).code,
            "taxes.imu-payment"
        );
    }
}
