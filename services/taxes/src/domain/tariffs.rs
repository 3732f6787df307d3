//! The TARI tariffs of a comune for a year (metodo normalizzato, DPR 158/1999; DOMAIN.md §5) as data.
//! The unit tariffs (Quf, Quv × Cu, Qapf, Cu) come from the comune's PEF under the ARERA MTR and have
//! no legal default; the coefficients, TEFA, surface share, non-residents' household and the rate
//! plan have the defaults below, used where the comune set none.
//!
//! Unit tariffs need sub-cent precision: they are micro-euro (1 € = 1,000,000); coefficients are
//! thousandths (Ka 0.88 = 880); amounts due are always cents.

use chrono::NaiveDate;
use patto_proto::common::v1::Money;
use patto_proto::taxes::v1 as pb;
use patto_service_kit::error::Violations;
use serde::{Deserialize, Serialize};

use super::{MAX_NAME_LEN, MAX_TEXT_LEN, optional_day, text};

/// Ka (fixed part) for 1..6+ members: DPR 158/1999 tab. 1a, Sud, comuni over 5,000 inhabitants.
pub const DEFAULT_KA: [i32; 6] = [750, 880, 1000, 1080, 1110, 1100];
/// Kb (variable part) for 1..6+ members: the middle of the DPR 158/1999 tab. 2 ranges
/// (0.6–1.0, 1.4–1.8, 1.8–2.3, 2.2–3.0, 2.9–3.6, 3.4–4.1).
pub const DEFAULT_KB: [i32; 6] = [800, 1600, 2050, 2600, 3250, 3750];
/// TEFA on top of TARI, bp (5 %).
pub const DEFAULT_TEFA_BP: i32 = 500;
/// Share of the registered surface that is charged, bp (all of it).
pub const FULL_SURFACE_BP: i32 = 10_000;
/// Highest non-domestic category number (30 above 5,000 inhabitants).
pub const MAX_CATEGORY: i32 = 30;
/// Most instalments a plan may have.
pub const MAX_INSTALMENTS: usize = 12;

/// A non-domestic category with its coefficients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Number, 1–30.
    pub code: i32,
    /// Description.
    pub description: String,
    /// Kc, thousandths.
    pub kc: i32,
    /// Kd, thousandths (kg/m² per year).
    pub kd: i32,
}

/// A reduction the regolamento grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reduction {
    /// Code used in registrations.
    pub code: String,
    /// Description.
    pub description: String,
    /// Reduction of the fixed part, bp.
    pub fixed_bp: i32,
    /// Reduction of the variable part, bp.
    pub variable_bp: i32,
}

/// The TARI tariffs in force in a comune for a year, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariffs {
    /// Quf, micro-euro per m² and unit of Ka.
    pub domestic_fixed_micros: i64,
    /// Quv × Cu, micro-euro per unit of Kb per year.
    pub domestic_variable_micros: i64,
    /// (Ka, Kb) per household size 1..6.
    pub household: [(i32, i32); 6],
    /// Qapf, micro-euro per m² and unit of Kc.
    pub non_domestic_fixed_micros: i64,
    /// Cu, micro-euro per kg.
    pub non_domestic_variable_micros: i64,
    /// Non-domestic categories.
    pub categories: Vec<Category>,
    /// TEFA, bp.
    pub tefa_bp: i32,
    /// Charged share of the surface, bp.
    pub surface_share_bp: i32,
    /// Household presumed for non-residents.
    pub non_resident_household_size: i32,
    /// Reductions.
    pub reductions: Vec<Reduction>,
    /// Due days of the rate.
    pub instalment_due_dates: Vec<NaiveDate>,
    /// Yearly amount below which nothing is billed, cents.
    pub minimum_payable_cents: i64,
    /// The council resolution.
    pub approved_act: String,
}

/// The default rate plan: two semestral instalments (DOMAIN.md §5: at least two, due at least 20
/// days after the notice).
pub fn default_instalments(year: i32) -> Vec<NaiveDate> {
    [(5, 31), (11, 30)]
        .iter()
        .filter_map(|(m, d)| NaiveDate::from_ymd_opt(year, *m, *d))
        .collect()
}

impl Tariffs {
    /// The household coefficients for `members` (6 stands for six or more).
    pub fn household_coefficients(&self, members: i32) -> (i32, i32) {
        let i = members.clamp(1, 6) as usize - 1;
        self.household[i]
    }

    /// The tariffs carried to `year`: the same unit tariffs (TARI acconti are billed at last year's
    /// tariffs until the new ones are approved), the instalments moved to that year.
    pub fn carried_to(&self, year: i32) -> Self {
        use chrono::Datelike;
        Self {
            instalment_due_dates: self
                .instalment_due_dates
                .iter()
                .filter_map(|d| {
                    // 29 February has no match in a common year: the 28th stands for it.
                    NaiveDate::from_ymd_opt(year, d.month(), d.day())
                        .or_else(|| NaiveDate::from_ymd_opt(year, d.month(), 28))
                })
                .collect(),
            ..self.clone()
        }
    }

    /// Validates tariffs as a comune sent them for `year`: unit tariffs must be set (they come from
    /// the PEF), everything else defaults where 0 or empty.
    pub fn from_pb(t: &pb::TariTariffSet, year: i32, prefix: &str) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let f = |n: &str| format!("{prefix}.{n}");
        for (value, name) in [
            (t.domestic_fixed_rate_micros, "domestic_fixed_rate_micros"),
            (
                t.domestic_variable_rate_micros,
                "domestic_variable_rate_micros",
            ),
            (
                t.non_domestic_fixed_rate_micros,
                "non_domestic_fixed_rate_micros",
            ),
            (
                t.non_domestic_variable_rate_micros,
                "non_domestic_variable_rate_micros",
            ),
        ] {
            v.check(
                (1..=1_000_000_000).contains(&value),
                f(name),
                "must be the tariff of the comune's PEF in micro-euro (1 € = 1,000,000), more than 0",
            );
        }
        let mut household = [(0, 0); 6];
        for (i, slot) in household.iter_mut().enumerate() {
            *slot = (DEFAULT_KA[i], DEFAULT_KB[i]);
        }
        let mut seen = [false; 6];
        for (i, c) in t.household_coefficients.iter().enumerate() {
            let cf = |n: &str| format!("{prefix}.household_coefficients[{i}].{n}");
            if !(1..=6).contains(&c.household_size) {
                v.add(
                    cf("household_size"),
                    "must be 1 to 6 (6 stands for six or more)",
                );
                continue;
            }
            let slot = c.household_size as usize - 1;
            if seen[slot] {
                v.add(cf("household_size"), "is listed twice");
            }
            seen[slot] = true;
            v.check(
                (0..=10_000).contains(&c.ka_thousandths),
                cf("ka_thousandths"),
                "must be 0 (the default) to 10,000",
            );
            v.check(
                (0..=20_000).contains(&c.kb_thousandths),
                cf("kb_thousandths"),
                "must be 0 (the default) to 20,000",
            );
            if c.ka_thousandths > 0 {
                household[slot].0 = c.ka_thousandths;
            }
            if c.kb_thousandths > 0 {
                household[slot].1 = c.kb_thousandths;
            }
        }
        let mut categories: Vec<Category> = Vec::with_capacity(t.non_domestic_categories.len());
        for (i, c) in t.non_domestic_categories.iter().enumerate() {
            let cf = |n: &str| format!("{prefix}.non_domestic_categories[{i}].{n}");
            v.check(
                (1..=MAX_CATEGORY).contains(&c.code),
                cf("code"),
                format!("must be 1 to {MAX_CATEGORY}"),
            );
            if categories.iter().any(|x| x.code == c.code) {
                v.add(cf("code"), "is listed twice");
            }
            v.check(
                (1..=100_000).contains(&c.kc_thousandths),
                cf("kc_thousandths"),
                "must be more than 0 (thousandths)",
            );
            v.check(
                (1..=1_000_000).contains(&c.kd_thousandths),
                cf("kd_thousandths"),
                "must be more than 0 (thousandths)",
            );
            categories.push(Category {
                code: c.code,
                description: text(
                    &c.description,
                    &cf("description"),
                    MAX_NAME_LEN,
                    true,
                    &mut v,
                ),
                kc: c.kc_thousandths,
                kd: c.kd_thousandths,
            });
        }
        categories.sort_by_key(|c| c.code);
        v.check(
            (0..=10_000).contains(&t.tefa_rate_bp),
            f("tefa_rate_bp"),
            "must be 0 (the default, 500) to 10,000",
        );
        v.check(
            (0..=10_000).contains(&t.surface_share_bp),
            f("surface_share_bp"),
            "must be 0 (the default, 10,000) to 10,000",
        );
        v.check(
            (0..=6).contains(&t.non_resident_household_size),
            f("non_resident_household_size"),
            "must be 0 (the default, 1) to 6",
        );
        let mut reductions: Vec<Reduction> = Vec::with_capacity(t.reductions.len());
        for (i, r) in t.reductions.iter().enumerate() {
            let rf = |n: &str| format!("{prefix}.reductions[{i}].{n}");
            let code = r.code.trim().to_ascii_uppercase();
            v.check(
                !code.is_empty()
                    && code.len() <= 32
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                rf("code"),
                "must be a short code of letters, digits, - and _",
            );
            if reductions.iter().any(|x| x.code == code) {
                v.add(rf("code"), "is listed twice");
            }
            v.check(
                (0..=10_000).contains(&r.fixed_part_reduction_bp),
                rf("fixed_part_reduction_bp"),
                "must be 0 to 10,000",
            );
            v.check(
                (0..=10_000).contains(&r.variable_part_reduction_bp),
                rf("variable_part_reduction_bp"),
                "must be 0 to 10,000",
            );
            reductions.push(Reduction {
                code,
                description: text(
                    &r.description,
                    &rf("description"),
                    MAX_NAME_LEN,
                    false,
                    &mut v,
                ),
                fixed_bp: r.fixed_part_reduction_bp,
                variable_bp: r.variable_part_reduction_bp,
            });
        }
        v.check(
            t.instalment_due_dates.len() <= MAX_INSTALMENTS,
            f("instalment_due_dates"),
            format!("at most {MAX_INSTALMENTS} instalments"),
        );
        let mut dates = Vec::with_capacity(t.instalment_due_dates.len());
        for (i, d) in t.instalment_due_dates.iter().enumerate() {
            let field = format!("{prefix}.instalment_due_dates[{i}]");
            if let Some(day) = optional_day(d, &field, &mut v) {
                if dates.last().is_some_and(|last| *last >= day) {
                    v.add(field, "must come after the previous instalment");
                }
                dates.push(day);
            } else if d.trim().is_empty() {
                v.add(field, "must be a day (YYYY-MM-DD)");
            }
        }
        let minimum = t.minimum_payable.as_ref().map_or(0, |m| m.cents);
        v.check(
            (0..=super::MAX_AMOUNT_CENTS).contains(&minimum),
            f("minimum_payable.cents"),
            "must not be negative (0 means no minimum)",
        );
        let approved_act = text(
            &t.approved_act,
            &f("approved_act"),
            MAX_TEXT_LEN,
            false,
            &mut v,
        );
        if !v.is_empty() {
            return Err(v);
        }
        Ok(Self {
            domestic_fixed_micros: t.domestic_fixed_rate_micros,
            domestic_variable_micros: t.domestic_variable_rate_micros,
            household,
            non_domestic_fixed_micros: t.non_domestic_fixed_rate_micros,
            non_domestic_variable_micros: t.non_domestic_variable_rate_micros,
            categories,
            tefa_bp: if t.tefa_rate_bp == 0 {
                DEFAULT_TEFA_BP
            } else {
                t.tefa_rate_bp
            },
            surface_share_bp: if t.surface_share_bp == 0 {
                FULL_SURFACE_BP
            } else {
                t.surface_share_bp
            },
            non_resident_household_size: if t.non_resident_household_size == 0 {
                1
            } else {
                t.non_resident_household_size
            },
            reductions,
            instalment_due_dates: if dates.is_empty() {
                default_instalments(year)
            } else {
                dates
            },
            minimum_payable_cents: minimum,
            approved_act,
        })
    }

    /// The wire form.
    pub fn to_pb(
        &self,
        istat_code: &str,
        year: i32,
        updated_time: Option<prost_types::Timestamp>,
    ) -> pb::TariTariffSet {
        pb::TariTariffSet {
            istat_code: istat_code.to_owned(),
            year,
            domestic_fixed_rate_micros: self.domestic_fixed_micros,
            domestic_variable_rate_micros: self.domestic_variable_micros,
            household_coefficients: self
                .household
                .iter()
                .enumerate()
                .map(|(i, (ka, kb))| pb::TariHouseholdCoefficient {
                    household_size: i as i32 + 1,
                    ka_thousandths: *ka,
                    kb_thousandths: *kb,
                })
                .collect(),
            non_domestic_fixed_rate_micros: self.non_domestic_fixed_micros,
            non_domestic_variable_rate_micros: self.non_domestic_variable_micros,
            non_domestic_categories: self
                .categories
                .iter()
                .map(|c| pb::TariNonDomesticCategory {
                    code: c.code,
                    description: c.description.clone(),
                    kc_thousandths: c.kc,
                    kd_thousandths: c.kd,
                })
                .collect(),
            tefa_rate_bp: self.tefa_bp,
            surface_share_bp: self.surface_share_bp,
            non_resident_household_size: self.non_resident_household_size,
            reductions: self
                .reductions
                .iter()
                .map(|r| pb::TariReductionRule {
                    code: r.code.clone(),
                    description: r.description.clone(),
                    fixed_part_reduction_bp: r.fixed_bp,
                    variable_part_reduction_bp: r.variable_bp,
                })
                .collect(),
            instalment_due_dates: self
                .instalment_due_dates
                .iter()
                .map(|d| d.to_string())
                .collect(),
            minimum_payable: Some(Money {
                cents: self.minimum_payable_cents,
            }),
            approved_act: self.approved_act.clone(),
            updated_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> pb::TariTariffSet {
        pb::TariTariffSet {
            domestic_fixed_rate_micros: 1_200_000,
            domestic_variable_rate_micros: 90_000_000,
            non_domestic_fixed_rate_micros: 1_500_000,
            non_domestic_variable_rate_micros: 300_000,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_fill_what_the_comune_left_out() {
        let t = Tariffs::from_pb(&minimal(), 2026, "tariffs").unwrap();
        assert_eq!(t.household_coefficients(1), (750, 800));
        assert_eq!(t.household_coefficients(9), (1100, 3750), "six or more");
        assert_eq!(
            (t.tefa_bp, t.surface_share_bp, t.non_resident_household_size),
            (500, 10_000, 1)
        );
        let days: Vec<String> = t
            .instalment_due_dates
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(days, ["2026-05-31", "2026-11-30"]);
        let round = Tariffs::from_pb(&t.to_pb("082053", 2026, None), 2026, "tariffs").unwrap();
        assert_eq!(round, t);
    }

    #[test]
    fn bad_tariffs_name_their_field() {
        let mut t = minimal();
        t.domestic_fixed_rate_micros = 0;
        t.household_coefficients = vec![pb::TariHouseholdCoefficient {
            household_size: 7,
            ka_thousandths: 1,
            kb_thousandths: 1,
        }];
        t.non_domestic_categories = vec![pb::TariNonDomesticCategory {
            code: 31,
            description: "x".into(),
            kc_thousandths: 1,
            kd_thousandths: 1,
        }];
        t.instalment_due_dates = vec!["2026-07-31".into(), "2026-05-31".into()];
        t.tefa_rate_bp = -1;
        let v = Tariffs::from_pb(&t, 2026, "tariffs").unwrap_err();
        let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tariffs.domestic_fixed_rate_micros",
                "tariffs.household_coefficients[0].household_size",
                "tariffs.non_domestic_categories[0].code",
                "tariffs.tefa_rate_bp",
                "tariffs.instalment_due_dates[1]",
            ]
        );
    }
}
