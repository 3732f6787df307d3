//! The IMU rates of a comune for a year (L. 160/2019 c. 748-760, DOMAIN.md §4) as data, with the
//! legal defaults where the comune set none and the legal ranges a council resolution must respect.
//! Rates are basis points: 1 bp = 0.01 %, so the ordinary 0.86 % is 86.
//!
//! Rates not resolved for a year stay those of the last year resolved (L. 296/2006 c. 169: "si
//! intendono prorogate di anno in anno"); where a comune never resolved any, the legal defaults apply.

use chrono::NaiveDate;
use patto_proto::common::v1::Money;
use patto_proto::taxes::v1 as pb;
use patto_service_kit::error::Violations;
use serde::{Deserialize, Serialize};

use super::cadastre_group;
use super::{MAX_AMOUNT_CENTS, MAX_NAME_LEN, MAX_TEXT_LEN, optional_day, text};

/// Share of group D tax reserved to the State, in bp (c. 744): 0.76 %.
pub const STATE_GROUP_D_BP: i32 = 76;
/// Highest ordinary rate where the old TASI surcharge existed (c. 755).
pub const MAX_ORDINARY_BP: i32 = 114;

/// A rate for a categoria or group, possibly for a particular use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialRate {
    /// Categoria (`C/1`) or group (`D`).
    pub categoria: String,
    /// Condition of use; empty for every use.
    pub condition: String,
    /// Rate, bp.
    pub rate_bp: i32,
}

/// The IMU rates in force in a comune for a year, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImuRates {
    /// Aliquota ordinaria, bp.
    pub ordinary_bp: i32,
    /// Rate on an A/1, A/8, A/9 main residence and its pertinenze, bp.
    pub main_residence_bp: i32,
    /// Yearly detrazione on such a main residence, cents.
    pub main_residence_deduction_cents: i64,
    /// Total rate on group D, bp.
    pub group_d_bp: i32,
    /// Rate on fabbricati rurali strumentali, bp.
    pub rural_instrumental_bp: i32,
    /// Rate on terreni agricoli, bp.
    pub agricultural_land_bp: i32,
    /// Rate on aree fabbricabili, bp.
    pub building_land_bp: i32,
    /// Terreni agricoli exempt in the comune.
    pub agricultural_land_exempt: bool,
    /// Reduction of the tax on dwellings at canone concordato, bp of the tax.
    pub canone_concordato_reduction_bp: i32,
    /// Rates for particular categorie or uses.
    pub special_rates: Vec<SpecialRate>,
    /// Yearly amount below which nothing is due, cents.
    pub minimum_payable_cents: i64,
    /// Due day of the acconto.
    pub acconto_due: NaiveDate,
    /// Due day of the saldo.
    pub saldo_due: NaiveDate,
    /// The council resolution.
    pub approved_act: String,
    /// Published by the MEF.
    pub published: bool,
}

fn day(year: i32, month: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, d).unwrap_or_default()
}

impl ImuRates {
    /// The legal defaults for `year`: what applies where a comune never resolved its rates. They
    /// are the law's own rates, so they count as published.
    pub fn defaults(year: i32) -> Self {
        Self {
            ordinary_bp: 86,
            main_residence_bp: 50,
            main_residence_deduction_cents: 20_000,
            group_d_bp: 86,
            rural_instrumental_bp: 10,
            agricultural_land_bp: 76,
            building_land_bp: 86,
            agricultural_land_exempt: false,
            canone_concordato_reduction_bp: 2_500,
            special_rates: Vec::new(),
            minimum_payable_cents: 0,
            acconto_due: day(year, 6, 16),
            saldo_due: day(year, 12, 16),
            approved_act: String::new(),
            published: true,
        }
    }

    /// The same rates carried over to `year` (prorogatio): due days move to that year.
    pub fn carried_to(&self, year: i32) -> Self {
        Self {
            acconto_due: day(year, 6, 16),
            saldo_due: day(year, 12, 16),
            published: true,
            ..self.clone()
        }
    }

    /// Validates rates as a council resolution sent them for `year`: 0 takes the default, anything
    /// outside the legal range is refused naming its field.
    pub fn from_pb(r: &pb::ImuRateSet, year: i32, prefix: &str) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let d = Self::defaults(year);
        let mut rate = |value: i32, name: &str, default: i32, max: i32, min: i32| -> i32 {
            if value == 0 {
                return default;
            }
            if !(min..=max).contains(&value) {
                v.add(
                    format!("{prefix}.{name}"),
                    format!(
                        "must be between {min} and {max} basis points (0 takes the default, {default})"
                    ),
                );
            }
            value
        };
        let ordinary_bp = rate(
            r.ordinary_rate_bp,
            "ordinary_rate_bp",
            d.ordinary_bp,
            MAX_ORDINARY_BP,
            1,
        );
        let main_residence_bp = rate(
            r.main_residence_rate_bp,
            "main_residence_rate_bp",
            d.main_residence_bp,
            60,
            1,
        );
        let group_d_bp = rate(
            r.group_d_rate_bp,
            "group_d_rate_bp",
            d.group_d_bp,
            106,
            STATE_GROUP_D_BP,
        );
        let rural_instrumental_bp = rate(
            r.rural_instrumental_rate_bp,
            "rural_instrumental_rate_bp",
            d.rural_instrumental_bp,
            10,
            1,
        );
        let agricultural_land_bp = rate(
            r.agricultural_land_rate_bp,
            "agricultural_land_rate_bp",
            d.agricultural_land_bp,
            106,
            1,
        );
        let building_land_bp = rate(
            r.building_land_rate_bp,
            "building_land_rate_bp",
            ordinary_bp,
            MAX_ORDINARY_BP,
            1,
        );
        let canone_concordato_reduction_bp = rate(
            r.canone_concordato_reduction_bp,
            "canone_concordato_reduction_bp",
            d.canone_concordato_reduction_bp,
            10_000,
            1,
        );
        let deduction = r.main_residence_deduction.as_ref().map_or(0, |m| m.cents);
        v.check(
            (0..=MAX_AMOUNT_CENTS).contains(&deduction),
            format!("{prefix}.main_residence_deduction.cents"),
            "must not be negative (0 takes the default, € 200)",
        );
        let minimum = r.minimum_payable.as_ref().map_or(0, |m| m.cents);
        v.check(
            (0..=MAX_AMOUNT_CENTS).contains(&minimum),
            format!("{prefix}.minimum_payable.cents"),
            "must not be negative (0 means no minimum)",
        );
        let mut special_rates = Vec::with_capacity(r.special_rates.len());
        for (i, s) in r.special_rates.iter().enumerate() {
            let f = |n: &str| format!("{prefix}.special_rates[{i}].{n}");
            let categoria = s.categoria.trim().to_ascii_uppercase();
            v.check(
                cadastre_group(&categoria).is_some(),
                f("categoria"),
                "must be a categoria such as C/1 or a group letter A–F",
            );
            v.check(
                (0..=MAX_ORDINARY_BP).contains(&s.rate_bp),
                f("rate_bp"),
                format!("must be between 0 and {MAX_ORDINARY_BP} basis points"),
            );
            special_rates.push(SpecialRate {
                condition: text(&s.condition, &f("condition"), MAX_NAME_LEN, false, &mut v),
                categoria,
                rate_bp: s.rate_bp,
            });
        }
        let acconto_due = optional_day(
            &r.acconto_due_date,
            &format!("{prefix}.acconto_due_date"),
            &mut v,
        )
        .unwrap_or(d.acconto_due);
        let saldo_due = optional_day(
            &r.saldo_due_date,
            &format!("{prefix}.saldo_due_date"),
            &mut v,
        )
        .unwrap_or(d.saldo_due);
        v.check(
            saldo_due >= acconto_due,
            format!("{prefix}.saldo_due_date"),
            "must not be before acconto_due_date",
        );
        let approved_act = text(
            &r.approved_act,
            &format!("{prefix}.approved_act"),
            MAX_TEXT_LEN,
            false,
            &mut v,
        );
        if !v.is_empty() {
            return Err(v);
        }
        Ok(Self {
            ordinary_bp,
            main_residence_bp,
            main_residence_deduction_cents: if deduction == 0 {
                d.main_residence_deduction_cents
            } else {
                deduction
            },
            group_d_bp,
            rural_instrumental_bp,
            agricultural_land_bp,
            building_land_bp,
            agricultural_land_exempt: r.agricultural_land_exempt,
            canone_concordato_reduction_bp,
            special_rates,
            minimum_payable_cents: minimum,
            acconto_due,
            saldo_due,
            approved_act,
            published: r.published,
        })
    }

    /// The wire form.
    pub fn to_pb(
        &self,
        istat_code: &str,
        year: i32,
        updated_time: Option<prost_types::Timestamp>,
    ) -> pb::ImuRateSet {
        pb::ImuRateSet {
            istat_code: istat_code.to_owned(),
            year,
            ordinary_rate_bp: self.ordinary_bp,
            main_residence_rate_bp: self.main_residence_bp,
            main_residence_deduction: Some(Money {
                cents: self.main_residence_deduction_cents,
            }),
            group_d_rate_bp: self.group_d_bp,
            rural_instrumental_rate_bp: self.rural_instrumental_bp,
            agricultural_land_rate_bp: self.agricultural_land_bp,
            building_land_rate_bp: self.building_land_bp,
            agricultural_land_exempt: self.agricultural_land_exempt,
            canone_concordato_reduction_bp: self.canone_concordato_reduction_bp,
            special_rates: self
                .special_rates
                .iter()
                .map(|s| pb::ImuSpecialRate {
                    categoria: s.categoria.clone(),
                    condition: s.condition.clone(),
                    rate_bp: s.rate_bp,
                })
                .collect(),
            minimum_payable: Some(Money {
                cents: self.minimum_payable_cents,
            }),
            acconto_due_date: self.acconto_due.to_string(),
            saldo_due_date: self.saldo_due.to_string(),
            approved_act: self.approved_act.clone(),
            published: self.published,
            updated_time,
        }
    }

    /// The rate for a building of `categoria` outside the special cases (main residence, group D,
    /// rural, land): a special rate for the exact categoria, else for its group, else ordinary.
    /// Only unconditioned special rates apply automatically: a condition of use is for the
    /// taxpayer to declare, and the comune's office to check.
    pub fn building_rate(&self, categoria: &str) -> i32 {
        let group = categoria.get(..1).unwrap_or_default();
        self.special_rates
            .iter()
            .filter(|s| s.condition.is_empty())
            .find(|s| s.categoria == categoria)
            .or_else(|| {
                self.special_rates
                    .iter()
                    .filter(|s| s.condition.is_empty())
                    .find(|s| s.categoria == group)
            })
            .map_or(self.ordinary_bp, |s| s.rate_bp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_takes_the_default() {
        let r = ImuRates::from_pb(&pb::ImuRateSet::default(), 2026, "rates").unwrap();
        assert_eq!(
            r,
            ImuRates {
                published: false,
                ..ImuRates::defaults(2026)
            }
        );
        assert_eq!(r.acconto_due.to_string(), "2026-06-16");
        assert_eq!(r.saldo_due.to_string(), "2026-12-16");
    }

    #[test]
    fn legal_ranges_name_their_field() {
        let bad = pb::ImuRateSet {
            ordinary_rate_bp: 115,
            main_residence_rate_bp: 61,
            group_d_rate_bp: 70,
            rural_instrumental_rate_bp: 11,
            main_residence_deduction: Some(Money { cents: -1 }),
            special_rates: vec![pb::ImuSpecialRate {
                categoria: "Z/1".into(),
                condition: String::new(),
                rate_bp: 200,
            }],
            acconto_due_date: "2026-12-20".into(),
            ..Default::default()
        };
        let v = ImuRates::from_pb(&bad, 2026, "rates").unwrap_err();
        let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "rates.ordinary_rate_bp",
                "rates.main_residence_rate_bp",
                "rates.group_d_rate_bp",
                "rates.rural_instrumental_rate_bp",
                "rates.main_residence_deduction.cents",
                "rates.special_rates[0].categoria",
                "rates.special_rates[0].rate_bp",
                "rates.saldo_due_date",
            ]
        );
    }

    #[test]
    fn special_rates_by_categoria_then_group() {
        let r = ImuRates {
            ordinary_bp: 106,
            special_rates: vec![
                SpecialRate {
                    categoria: "C".into(),
                    condition: String::new(),
                    rate_bp: 96,
                },
                SpecialRate {
                    categoria: "C/1".into(),
                    condition: String::new(),
                    rate_bp: 76,
                },
                SpecialRate {
                    categoria: "A/2".into(),
                    condition: "locati a canone concordato".into(),
                    rate_bp: 57,
                },
            ],
            ..ImuRates::defaults(2026)
        };
        assert_eq!(r.building_rate("C/1"), 76);
        assert_eq!(r.building_rate("C/3"), 96);
        assert_eq!(
            r.building_rate("A/2"),
            106,
            "conditioned rates are declared, not assumed"
        );
        let carried = r.carried_to(2027);
        assert_eq!(
            (carried.ordinary_bp, carried.saldo_due.to_string()),
            (106, "2027-12-16".to_owned())
        );
    }
}
