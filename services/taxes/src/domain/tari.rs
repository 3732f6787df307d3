//! The TARI computation (DPR 158/1999 metodo normalizzato, DOMAIN.md §5), exact to the cent:
//!
//! - domestic: quota fissa = Quf × S × Ka(n), quota variabile = Quv × Cu × Kb(n);
//! - non-domestic: quota fissa = Qapf × S × Kc, quota variabile = Cu × S × Kd;
//!
//! pro-rated by the days of occupation in the year (ARERA TQRIF: TARI is due per day), less the
//! reductions the registration holds, with TEFA computed on top as a separate amount for the Città
//! Metropolitana. Each part is computed exactly and rounded once.

use chrono::{Datelike, NaiveDate};
use patto_proto::common::v1::Money;
use patto_proto::taxes::v1 as pb;

use super::div_round;
use super::tariffs::Tariffs;

/// What the computation needs of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Its id.
    pub id: String,
    /// Domestic or not.
    pub kind: pb::TariUseKind,
    /// Taxable surface, m².
    pub surface_sqm: i32,
    /// Household members.
    pub household_size: i32,
    /// Resident household.
    pub resident: bool,
    /// Non-domestic category.
    pub category: i32,
    /// Reductions held.
    pub reduction_codes: Vec<String>,
    /// First day of occupation.
    pub start: NaiveDate,
    /// Last day, when ended.
    pub end: Option<NaiveDate>,
}

fn money(cents: i64) -> Option<Money> {
    Some(Money { cents })
}

/// Days of `year` between `start` and `end` (both included), and the days of the year.
pub fn days_in_year(start: NaiveDate, end: Option<NaiveDate>, year: i32) -> (i64, i64) {
    let (Some(first), Some(last)) = (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 12, 31),
    ) else {
        return (0, 365);
    };
    let year_days = (last - first).num_days() + 1;
    let from = start.max(first);
    let to = end.map_or(last, |e| e.min(last));
    let days = if to < from {
        0
    } else {
        (to - from).num_days() + 1
    };
    (days, year_days)
}

/// One registration's TARI for `year`; an error names what the tariffs lack.
pub fn line(r: &Registration, t: &Tariffs, year: i32) -> Result<pb::TariLine, String> {
    let (days, year_days) = days_in_year(r.start, r.end, year);
    let surface = div_round(
        i128::from(r.surface_sqm) * i128::from(t.surface_share_bp),
        10_000,
    );
    let (days, year_days, s) = (i128::from(days), i128::from(year_days), i128::from(surface));
    // micro-euro × thousandths → cents: divide by 1,000 (thousandths) and 10,000 (µ€ per cent).
    const SCALE: i128 = 1_000 * 10_000;
    let (fixed_num, variable_num, household, category) = match r.kind {
        pb::TariUseKind::NonDomestic => {
            let Some(c) = t.categories.iter().find(|c| c.code == r.category) else {
                return Err(format!(
                    "the comune's tariffs have no non-domestic category {}",
                    r.category
                ));
            };
            (
                i128::from(t.non_domestic_fixed_micros) * s * i128::from(c.kc),
                i128::from(t.non_domestic_variable_micros) * s * i128::from(c.kd),
                0,
                r.category,
            )
        }
        _ => {
            let members = if r.resident {
                r.household_size
            } else {
                t.non_resident_household_size
            }
            .clamp(1, 6);
            let (ka, kb) = t.household_coefficients(members);
            (
                i128::from(t.domestic_fixed_micros) * s * i128::from(ka),
                i128::from(t.domestic_variable_micros) * i128::from(kb),
                members,
                0,
            )
        }
    };
    let fixed = div_round(fixed_num * days, SCALE * year_days);
    let variable = div_round(variable_num * days, SCALE * year_days);
    let (mut fixed_bp, mut variable_bp) = (0i64, 0i64);
    for code in &r.reduction_codes {
        if let Some(red) = t.reductions.iter().find(|x| x.code == *code) {
            fixed_bp += i64::from(red.fixed_bp);
            variable_bp += i64::from(red.variable_bp);
        }
    }
    let reductions = div_round(
        i128::from(fixed) * i128::from(fixed_bp.min(10_000))
            + i128::from(variable) * i128::from(variable_bp.min(10_000)),
        10_000,
    );
    let tari = fixed + variable - reductions;
    let tefa = div_round(i128::from(tari) * i128::from(t.tefa_bp), 10_000);
    Ok(pb::TariLine {
        registration_id: r.id.clone(),
        kind: r.kind as i32,
        surface_sqm: surface as i32,
        household_size: household,
        non_domestic_category: category,
        days: days as i32,
        fixed_part: money(fixed),
        variable_part: money(variable),
        reductions: money(reductions),
        tari: money(tari),
        tefa: money(tefa),
    })
}

/// Splits `total` over `n` parts, the remainder going to the first ones so the parts add up.
pub fn split(total: i64, n: usize) -> Vec<i64> {
    if n == 0 {
        return Vec::new();
    }
    let n64 = n as i64;
    let (base, rest) = (total / n64, total % n64);
    (0..n64).map(|i| base + i64::from(i < rest)).collect()
}

/// A holder's TARI and TEFA for `year` in one comune, with the comune's instalments.
pub fn assess(
    fiscal_code: &str,
    istat_code: &str,
    year: i32,
    registrations: &[Registration],
    t: &Tariffs,
    computed_time: Option<prost_types::Timestamp>,
) -> Result<pb::TariAssessment, String> {
    let mut lines = Vec::with_capacity(registrations.len());
    for r in registrations {
        let l = line(r, t, year)?;
        if l.days > 0 {
            lines.push(l);
        }
    }
    let cents = |m: &Option<Money>| m.as_ref().map_or(0, |m| m.cents);
    let tari: i64 = lines.iter().map(|l| cents(&l.tari)).sum();
    let tefa: i64 = lines.iter().map(|l| cents(&l.tefa)).sum();
    let dates: Vec<NaiveDate> = if t.instalment_due_dates.iter().all(|d| d.year() == year) {
        t.instalment_due_dates.clone()
    } else {
        t.carried_to(year).instalment_due_dates
    };
    let instalments = split(tari, dates.len())
        .into_iter()
        .zip(split(tefa, dates.len()))
        .zip(&dates)
        .enumerate()
        .map(|(i, ((tari, tefa), due))| pb::TariInstalment {
            number: i as i32 + 1,
            due_date: due.to_string(),
            tari: money(tari),
            tefa: money(tefa),
        })
        .collect();
    Ok(pb::TariAssessment {
        fiscal_code: fiscal_code.to_owned(),
        istat_code: istat_code.to_owned(),
        year,
        lines,
        tari: money(tari),
        tefa: money(tefa),
        total: money(tari + tefa),
        instalments,
        below_minimum: t.minimum_payable_cents > 0 && tari + tefa < t.minimum_payable_cents,
        computed_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tariffs::{Category, DEFAULT_KA, DEFAULT_KB, Reduction};

    fn tariffs() -> Tariffs {
        let mut household = [(0, 0); 6];
        for (i, slot) in household.iter_mut().enumerate() {
            *slot = (DEFAULT_KA[i], DEFAULT_KB[i]);
        }
        Tariffs {
            domestic_fixed_micros: 1_200_000,     // € 1.20 per m² and unit of Ka
            domestic_variable_micros: 90_000_000, // € 90 per unit of Kb
            household,
            non_domestic_fixed_micros: 1_500_000,
            non_domestic_variable_micros: 300_000,
            categories: vec![Category {
                code: 22,
                description: "Ristoranti".into(),
                kc: 5_570,
                kd: 48_740,
            }],
            tefa_bp: 500,
            surface_share_bp: 10_000,
            non_resident_household_size: 2,
            reductions: vec![Reduction {
                code: "COMPOSTAGGIO".into(),
                description: String::new(),
                fixed_bp: 0,
                variable_bp: 2_000,
            }],
            instalment_due_dates: vec![
                NaiveDate::from_ymd_opt(2025, 5, 31).unwrap(),
                NaiveDate::from_ymd_opt(2025, 7, 31).unwrap(),
                NaiveDate::from_ymd_opt(2025, 11, 30).unwrap(),
            ],
            minimum_payable_cents: 1_200,
            approved_act: String::new(),
        }
    }

    fn home(members: i32) -> Registration {
        Registration {
            id: format!("r{members}"),
            kind: pb::TariUseKind::Domestic,
            surface_sqm: 100,
            household_size: members,
            resident: true,
            category: 0,
            reduction_codes: Vec::new(),
            start: NaiveDate::from_ymd_opt(2019, 3, 1).unwrap(),
            end: None,
        }
    }

    #[test]
    fn domestic_tari_for_one_to_six_occupants() {
        // 100 m², a whole year: fixed = 1.20 × 100 × Ka, variable = 90 × Kb, TEFA 5 % of the sum.
        // (members, fixed, variable, tari, tefa) in cents.
        let cases = [
            (1, 9_000, 7_200, 16_200, 810),
            (2, 10_560, 14_400, 24_960, 1_248),
            (3, 12_000, 18_450, 30_450, 1_523),
            (4, 12_960, 23_400, 36_360, 1_818),
            (5, 13_320, 29_250, 42_570, 2_129),
            (6, 13_200, 33_750, 46_950, 2_348),
            (7, 13_200, 33_750, 46_950, 2_348),
        ];
        let t = tariffs();
        for (members, fixed, variable, tari, tefa) in cases {
            let l = line(&home(members), &t, 2025).unwrap();
            let c = |m: Option<Money>| m.unwrap().cents;
            assert_eq!(
                (c(l.fixed_part), c(l.variable_part), c(l.tari), c(l.tefa)),
                (fixed, variable, tari, tefa),
                "{members} members"
            );
            assert_eq!(l.household_size, members.min(6));
            assert_eq!(l.days, 365);
        }
    }

    #[test]
    fn days_surface_share_non_residents_and_reductions() {
        let t = Tariffs {
            surface_share_bp: 8_000,
            ..tariffs()
        };
        let mut r = home(3);
        r.start = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap(); // 184 days of 365
        let l = line(&r, &t, 2025).unwrap();
        assert_eq!((l.surface_sqm, l.days), (80, 184));
        // fixed = 1.20 × 80 × 1.00 × 184/365 = 48.394… → 48.39; variable = 184.50 × 184/365 = 93.007 → 93.01
        assert_eq!(
            (l.fixed_part.unwrap().cents, l.variable_part.unwrap().cents),
            (4_839, 9_301)
        );

        let mut away = home(5);
        away.resident = false;
        assert_eq!(
            line(&away, &tariffs(), 2025).unwrap().household_size,
            2,
            "the regolamento's presumed household"
        );

        let mut composting = home(2);
        composting.reduction_codes = vec!["COMPOSTAGGIO".into()];
        let l = line(&composting, &tariffs(), 2025).unwrap();
        assert_eq!(
            l.reductions.unwrap().cents,
            2_880,
            "20 % of the variable part"
        );
        assert_eq!(l.tari.unwrap().cents, 24_960 - 2_880);
    }

    #[test]
    fn non_domestic_needs_its_category() {
        let shop = Registration {
            kind: pb::TariUseKind::NonDomestic,
            surface_sqm: 120,
            category: 22,
            ..home(1)
        };
        let l = line(&shop, &tariffs(), 2025).unwrap();
        // fixed = 1.50 × 120 × 5.57 = 1,002.60; variable = 0.30 × 120 × 48.74 = 1,754.64
        assert_eq!(
            (l.fixed_part.unwrap().cents, l.variable_part.unwrap().cents),
            (100_260, 175_464)
        );
        let other = Registration {
            category: 7,
            ..shop
        };
        assert!(
            line(&other, &tariffs(), 2025)
                .unwrap_err()
                .contains("category 7")
        );
    }

    #[test]
    fn instalments_add_up_and_tefa_is_separate() {
        let a = assess("X", "082053", 2025, &[home(3), home(1)], &tariffs(), None).unwrap();
        assert_eq!(
            (a.tari.unwrap().cents, a.tefa.unwrap().cents),
            (46_650, 2_333)
        );
        assert_eq!(a.total.unwrap().cents, 48_983);
        let parts: Vec<(i64, i64)> = a
            .instalments
            .iter()
            .map(|i| (i.tari.unwrap().cents, i.tefa.unwrap().cents))
            .collect();
        assert_eq!(parts, [(15_550, 778), (15_550, 778), (15_550, 777)]);
        assert_eq!(a.instalments[2].due_date, "2025-11-30");
        assert!(!a.below_minimum);
        let ended = Registration {
            end: NaiveDate::from_ymd_opt(2024, 12, 31),
            ..home(1)
        };
        let a = assess("X", "082053", 2025, &[ended], &tariffs(), None).unwrap();
        assert!(a.lines.is_empty() && a.below_minimum);
        assert_eq!(split(10, 3), [4, 3, 3]);
        assert_eq!(
            days_in_year(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), None, 2024),
            (366, 366)
        );
    }
}
