//! Deterministic demo people shared by every service's demo data, so one citizen has a booking,
//! a property and a tax position across themes. Their fiscal codes are valid (built by the rules).

use chrono::NaiveDate;

use crate::ids;

/// A demo citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCitizen {
    /// Given name.
    pub given_name: &'static str,
    /// Family name.
    pub family_name: &'static str,
    /// Codice fiscale (valid, canonical).
    pub fiscal_code: String,
    /// ISTAT code of the comune of residence.
    pub istat_code: String,
}

const FAMILY: [&str; 12] = [
    "Russo",
    "Lombardo",
    "Messina",
    "Caruso",
    "Greco",
    "Marino",
    "Romano",
    "Costa",
    "Ferrara",
    "Vitale",
    "La Rosa",
    "Di Stefano",
];
const GIVEN: [(&str, bool); 12] = [
    ("Giuseppe", false),
    ("Rosalia", true),
    ("Salvatore", false),
    ("Maria", true),
    ("Francesco", false),
    ("Giovanna", true),
    ("Antonino", false),
    ("Carmela", true),
    ("Vincenzo", false),
    ("Concetta", true),
    ("Calogero", false),
    ("Angela", true),
];

/// The `n`-th demo citizen: resident in the comune at position `n % 82`, born in it.
pub fn citizen(n: usize) -> DemoCitizen {
    let comuni = crate::comuni::all();
    let comune = &comuni[n % comuni.len()];
    let family_name = FAMILY[n % FAMILY.len()];
    let (given_name, female) = GIVEN[(n / FAMILY.len() + n) % GIVEN.len()];
    let year = 1940 + (n * 7 % 65) as i32;
    let month = (n * 5 % 12) as u32 + 1;
    let day = (n * 11 % 28) as u32 + 1;
    let birth = NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default();
    DemoCitizen {
        given_name,
        family_name,
        fiscal_code: ids::build_fiscal_code(
            family_name,
            given_name,
            birth,
            female,
            &comune.cadastral_code,
        ),
        istat_code: comune.istat_code.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_citizens_have_valid_distinct_codes() {
        let codes: std::collections::BTreeSet<String> = (0..500)
            .map(|n| {
                let c = citizen(n);
                assert_eq!(
                    ids::canonical_fiscal_code(&c.fiscal_code).as_deref(),
                    Ok(c.fiscal_code.as_str())
                );
                c.fiscal_code
            })
            .collect();
        assert_eq!(codes.len(), 500);
        assert_eq!(citizen(3), citizen(3));
    }
}
