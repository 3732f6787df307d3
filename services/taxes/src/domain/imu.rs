//! The IMU computation (L. 160/2019 c. 738-783, DOMAIN.md §4), exact to the cent:
//!
//! - base = rendita × 1.05 × the categoria's multiplier (160, 140, 80, 65, 55); reddito dominicale ×
//!   1.25 × 135 for terreni agricoli; the valore venale for an area fabbricabile; halved for
//!   historic or unusable buildings and registered comodato (c. 747);
//! - tax = base × rate × share × months / 12, less 25 % at canone concordato (c. 760), less the
//!   € 200 detrazione on an A/1, A/8, A/9 main residence (pro-rated by months and share; what the
//!   residence does not absorb goes to its pertinenze); other main residences and their pertinenze
//!   (one each of C/2, C/6, C/7) are exempt (c. 740-741);
//! - a month counts when the right is held for more than half its days; a tie, and so the transfer
//!   day, counts for the buyer (c. 761);
//! - acconto = the first half-year at last year's rates; saldo = the year at this year's rates
//!   (once published by the MEF, else last year's) less the acconto (c. 762);
//! - on group D, the tax at 0.76 % goes to the State (F24 3925), the rest to the comune (3930).
//!
//! Amounts are computed as exact fractions and rounded once per line.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use patto_proto::common::v1::Money;
use patto_proto::taxes::v1 as pb;

use super::div_round;
use super::rates::{ImuRates, STATE_GROUP_D_BP};

/// The IMU multiplier of a categoria (c. 745); `None` for groups E and F, which have no IMU base.
pub fn multiplier(categoria: &str) -> Option<i32> {
    let c = categoria.trim().to_ascii_uppercase();
    match c.as_str() {
        "A/10" | "D/5" => Some(80),
        "C/1" => Some(55),
        "C/2" | "C/6" | "C/7" => Some(160),
        "C/3" | "C/4" | "C/5" => Some(140),
        _ => match c.chars().next() {
            Some('A') => Some(160),
            Some('B') => Some(140),
            Some('D') => Some(65),
            _ => None,
        },
    }
}

/// Categorie whose main residence is taxed (case di lusso) rather than exempt.
pub const LUXURY: [&str; 3] = ["A/1", "A/8", "A/9"];
/// Categorie that can be pertinenze of a main residence.
pub const PERTINENZE: [&str; 3] = ["C/2", "C/6", "C/7"];

/// A taxpayer's right on a cadastral unit, as the building service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// Cadastral unit id.
    pub unit_id: String,
    /// Catasto terreni.
    pub land: bool,
    /// Categoria (buildings).
    pub categoria: String,
    /// Rendita, cents.
    pub rendita_cents: i64,
    /// Reddito dominicale, cents (land).
    pub reddito_dominicale_cents: i64,
    /// Listed cultural heritage (halves the base).
    pub heritage_listed: bool,
    /// Liable right (false for nuda proprietà).
    pub liable: bool,
    /// Share (numerator, denominator).
    pub share: (i32, i32),
    /// First day held.
    pub start: NaiveDate,
    /// Last day held.
    pub end: Option<NaiveDate>,
}

/// What a taxpayer declared about a unit (or an area fabbricabile) for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// Cadastral unit; empty for an area not registered as a unit.
    pub unit_id: String,
    /// Asset kind; unspecified means "as registered".
    pub asset_kind: pb::ImuAssetKind,
    /// Abitazione principale.
    pub main_residence: bool,
    /// For a pertinenza, the main residence unit it serves.
    pub main_residence_unit_id: String,
    /// Base reduction.
    pub base_reduction: pb::ImuBaseReduction,
    /// Reduction from.
    pub reduction_start: Option<NaiveDate>,
    /// Reduction to.
    pub reduction_end: Option<NaiveDate>,
    /// Let at canone concordato.
    pub canone_concordato: bool,
    /// Valore venale of an area fabbricabile, cents.
    pub building_land_value_cents: i64,
    /// Exemption claimed.
    pub exemption_reason: String,
    /// Declared situation from.
    pub start: NaiveDate,
    /// Declared situation to.
    pub end: Option<NaiveDate>,
}

/// Which months of `year` a right held from `start` to `end` (both included) counts for.
pub fn months_held(start: NaiveDate, end: Option<NaiveDate>, year: i32) -> [bool; 12] {
    let mut out = [false; 12];
    for (i, slot) in out.iter_mut().enumerate() {
        let month = i as u32 + 1;
        let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
            continue;
        };
        let next = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)
        };
        let Some(last) = next.and_then(|n| n.pred_opt()) else {
            continue;
        };
        let from = start.max(first);
        let to = end.map_or(last, |e| e.min(last));
        if to < from {
            continue;
        }
        let held = (to - from).num_days() + 1;
        let days = i64::from(last.day());
        let acquired_this_month = start >= first && start <= last;
        *slot = 2 * held > days || (2 * held == days && acquired_this_month);
    }
    out
}

/// The rates an assessment applies.
#[derive(Debug, Clone, Copy)]
pub struct RateContext<'a> {
    /// The year's rates as resolved (published or not).
    pub current: &'a ImuRates,
    /// Last year's rates: the acconto's, and the saldo's until the year's are published.
    pub previous: &'a ImuRates,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Situation {
    kind: i32,
    main_residence: bool,
    pertinenza_of: String,
    reduction: i32,
    canone: bool,
    exemption: String,
    land_value: i64,
}

/// A line before the detrazione is spread: gross amounts and the detrazione it may absorb.
struct Gross {
    line: pb::ImuLine,
    tax: i64,
    acconto: i64,
    state: i64,
    deduction: i64,
    deduction_acconto: i64,
    unit_id: String,
    pertinenza_of: String,
}

fn money(cents: i64) -> Option<Money> {
    Some(Money { cents })
}

fn declared_for<'a>(
    decls: &'a [Declaration],
    unit_id: &str,
    year: i32,
    month: usize,
) -> Option<&'a Declaration> {
    decls
        .iter()
        .filter(|d| d.unit_id == unit_id && months_held(d.start, d.end, year)[month])
        .max_by_key(|d| d.start)
}

fn situation(h: &Holding, decl: Option<&Declaration>, year: i32, month: usize) -> Situation {
    let kind = match decl.map(|d| d.asset_kind) {
        Some(k) if k != pb::ImuAssetKind::Unspecified => k,
        _ if h.land => pb::ImuAssetKind::TerrenoAgricolo,
        _ if h.categoria == "D/10" => pb::ImuAssetKind::FabbricatoRuraleStrumentale,
        _ => pb::ImuAssetKind::Fabbricato,
    };
    let mut reduction = decl
        .filter(|d| d.base_reduction != pb::ImuBaseReduction::Unspecified)
        .filter(|d| {
            months_held(
                d.reduction_start.unwrap_or(d.start),
                d.reduction_end.or(d.end),
                year,
            )[month]
        })
        .map_or(pb::ImuBaseReduction::Unspecified, |d| d.base_reduction);
    if reduction == pb::ImuBaseReduction::Unspecified && h.heritage_listed && !h.land {
        reduction = pb::ImuBaseReduction::Historic;
    }
    let is_a_dwelling = h.categoria.starts_with('A') && h.categoria != "A/10";
    Situation {
        kind: kind as i32,
        main_residence: decl.is_some_and(|d| d.main_residence) && is_a_dwelling,
        pertinenza_of: decl
            .map(|d| d.main_residence_unit_id.clone())
            .unwrap_or_default(),
        reduction: reduction as i32,
        canone: decl.is_some_and(|d| d.canone_concordato),
        exemption: decl.map(|d| d.exemption_reason.clone()).unwrap_or_default(),
        land_value: decl.map_or(0, |d| d.building_land_value_cents),
    }
}

/// The tax of a base at a rate, share, months and reduction, exactly, rounded to the cent.
/// `base_num` is the base in hundredths of a cent.
fn tax(
    base_num: i128,
    rate_bp: i32,
    share: (i32, i32),
    months: i32,
    halving: i128,
    red_bp: i32,
) -> i64 {
    let num = base_num
        * i128::from(rate_bp)
        * i128::from(share.0)
        * i128::from(months)
        * i128::from(10_000 - red_bp);
    let den = 100 * 10_000 * i128::from(share.1.max(1)) * 12 * halving * 10_000;
    div_round(num, den)
}

#[allow(clippy::too_many_arguments)]
fn gross_line(
    h: &Holding,
    s: &Situation,
    months: i32,
    first_half: i32,
    pertinenza_ok: bool,
    luxury_main: bool,
    exempt_main: bool,
    rc: RateContext<'_>,
) -> Gross {
    let kind = pb::ImuAssetKind::try_from(s.kind).unwrap_or(pb::ImuAssetKind::Fabbricato);
    let reduction =
        pb::ImuBaseReduction::try_from(s.reduction).unwrap_or(pb::ImuBaseReduction::Unspecified);
    let halving: i128 = if reduction == pb::ImuBaseReduction::Unspecified {
        1
    } else {
        2
    };
    let year_rates = if rc.current.published {
        rc.current
    } else {
        rc.previous
    };
    let group_d = h.categoria.starts_with('D') && !h.land;
    let (income, mult, base_num) = match kind {
        pb::ImuAssetKind::TerrenoAgricolo => (
            h.reddito_dominicale_cents,
            135,
            i128::from(h.reddito_dominicale_cents) * 125 * 135,
        ),
        pb::ImuAssetKind::AreaFabbricabile => (s.land_value, 0, i128::from(s.land_value) * 100),
        _ => {
            let m = multiplier(&h.categoria).unwrap_or(0);
            (
                h.rendita_cents,
                m,
                i128::from(h.rendita_cents) * 105 * i128::from(m),
            )
        }
    };
    let pertinenza = !s.pertinenza_of.is_empty() && pertinenza_ok;
    let group = h.categoria.chars().next();
    let exemption = if !s.exemption.is_empty() {
        Some(s.exemption.clone())
    } else if kind != pb::ImuAssetKind::TerrenoAgricolo
        && kind != pb::ImuAssetKind::AreaFabbricabile
        && group == Some('E')
    {
        Some("categoria E (L. 160/2019 c. 759 lett. c)".to_owned())
    } else if kind != pb::ImuAssetKind::TerrenoAgricolo
        && kind != pb::ImuAssetKind::AreaFabbricabile
        && (group == Some('F') || mult == 0)
    {
        Some(
            "unità senza rendita (gruppo F): se edificabile, dichiararla come area fabbricabile"
                .to_owned(),
        )
    } else if kind == pb::ImuAssetKind::TerrenoAgricolo && year_rates.agricultural_land_exempt {
        Some("terreni agricoli esenti nel comune".to_owned())
    } else if s.main_residence && !LUXURY.contains(&h.categoria.as_str()) {
        Some("abitazione principale (L. 160/2019 c. 740)".to_owned())
    } else if pertinenza && exempt_main {
        Some("pertinenza dell'abitazione principale (L. 160/2019 c. 741 lett. b)".to_owned())
    } else {
        None
    };
    let main_luxury = s.main_residence && LUXURY.contains(&h.categoria.as_str());
    let pertinenza_luxury = pertinenza && luxury_main;
    let rate_of = |r: &ImuRates| -> i32 {
        if main_luxury || pertinenza_luxury {
            r.main_residence_bp
        } else {
            match kind {
                pb::ImuAssetKind::FabbricatoRuraleStrumentale => r.rural_instrumental_bp,
                pb::ImuAssetKind::TerrenoAgricolo => r.agricultural_land_bp,
                pb::ImuAssetKind::AreaFabbricabile => r.building_land_bp,
                _ if group_d => r.group_d_bp,
                _ => r.building_rate(&h.categoria),
            }
        }
    };
    let red = |r: &ImuRates| {
        if s.canone {
            r.canone_concordato_reduction_bp
        } else {
            0
        }
    };
    let (rate, tax_year, tax_acconto, state) = if exemption.is_some() {
        (0, 0, 0, 0)
    } else {
        let rate = rate_of(year_rates);
        let t = tax(base_num, rate, h.share, months, halving, red(year_rates));
        let a = tax(
            base_num,
            rate_of(rc.previous),
            h.share,
            first_half,
            halving,
            red(rc.previous),
        );
        let state = if group_d {
            tax(
                base_num,
                rate.min(STATE_GROUP_D_BP),
                h.share,
                months,
                halving,
                red(year_rates),
            )
        } else {
            0
        };
        (rate, t, a, state)
    };
    let ded = |r: &ImuRates, m: i32| -> i64 {
        div_round(
            i128::from(r.main_residence_deduction_cents) * i128::from(h.share.0) * i128::from(m),
            i128::from(h.share.1.max(1)) * 12,
        )
    };
    let (deduction, deduction_acconto) = if main_luxury && exemption.is_none() {
        (ded(year_rates, months), ded(rc.previous, first_half))
    } else {
        (0, 0)
    };
    let (f24_comune, f24_state) = if exemption.is_some() {
        ("", "")
    } else if main_luxury || pertinenza_luxury {
        ("3912", "")
    } else if group_d {
        (if tax_year > state { "3930" } else { "" }, "3925")
    } else {
        match kind {
            pb::ImuAssetKind::TerrenoAgricolo => ("3914", ""),
            pb::ImuAssetKind::AreaFabbricabile => ("3916", ""),
            pb::ImuAssetKind::FabbricatoRuraleStrumentale => ("3913", ""),
            _ => ("3918", ""),
        }
    };
    let line = pb::ImuLine {
        cadastral_unit_id: h.unit_id.clone(),
        asset_kind: kind as i32,
        categoria: if h.land {
            String::new()
        } else {
            h.categoria.clone()
        },
        income: money(income),
        multiplier: mult,
        base: money(div_round(base_num, 100 * halving)),
        base_reduction: reduction as i32,
        rate_bp: rate,
        months,
        share_numerator: h.share.0,
        share_denominator: h.share.1,
        main_residence: s.main_residence,
        pertinenza,
        exempt: exemption.is_some(),
        exemption_reason: exemption.unwrap_or_default(),
        canone_concordato: s.canone,
        deduction: money(0),
        tax: money(0),
        acconto: money(0),
        saldo: money(0),
        state_share: money(state),
        comune_share: money(0),
        f24_comune_code: f24_comune.into(),
        f24_state_code: f24_state.into(),
    };
    Gross {
        line,
        tax: tax_year,
        acconto: tax_acconto,
        state,
        deduction,
        deduction_acconto,
        unit_id: h.unit_id.clone(),
        pertinenza_of: if pertinenza {
            s.pertinenza_of.clone()
        } else {
            String::new()
        },
    }
}

/// A taxpayer's IMU for `year` in one comune, from the rights held there and the declarations.
pub fn assess(
    fiscal_code: &str,
    istat_code: &str,
    year: i32,
    holdings: &[Holding],
    declarations: &[Declaration],
    rc: RateContext<'_>,
    computed_time: Option<prost_types::Timestamp>,
) -> pb::ImuAssessment {
    // Areas fabbricabili declared without a cadastral unit are held as declared, whole.
    let mut all: Vec<Holding> = holdings.iter().filter(|h| h.liable).cloned().collect();
    for d in declarations {
        if d.unit_id.is_empty() && d.asset_kind == pb::ImuAssetKind::AreaFabbricabile {
            all.push(Holding {
                unit_id: String::new(),
                land: false,
                categoria: String::new(),
                rendita_cents: 0,
                reddito_dominicale_cents: 0,
                heritage_listed: false,
                liable: true,
                share: (1, 1),
                start: d.start,
                end: d.end,
            });
        }
    }
    // One pertinenza per categoria per main residence (c. 741 lett. b): the first held counts.
    let categoria_of: HashMap<&str, &str> = all
        .iter()
        .map(|h| (h.unit_id.as_str(), h.categoria.as_str()))
        .collect();
    let mut pertinenze_allowed: BTreeMap<(String, String), String> = BTreeMap::new();
    for d in declarations {
        if d.main_residence_unit_id.is_empty()
            || !categoria_of.contains_key(d.main_residence_unit_id.as_str())
        {
            continue;
        }
        if let Some(cat) = categoria_of.get(d.unit_id.as_str())
            && PERTINENZE.contains(cat)
        {
            pertinenze_allowed
                .entry((d.main_residence_unit_id.clone(), (*cat).to_owned()))
                .or_insert_with(|| d.unit_id.clone());
        }
    }

    let mut gross: Vec<Gross> = Vec::new();
    for h in &all {
        let held = months_held(h.start, h.end, year);
        let mut groups: BTreeMap<Situation, (i32, i32)> = BTreeMap::new();
        for (m, counts) in held.iter().enumerate() {
            if !*counts {
                continue;
            }
            let decl = if h.unit_id.is_empty() {
                declarations
                    .iter()
                    .filter(|d| d.unit_id.is_empty() && d.start == h.start)
                    .max_by_key(|d| d.building_land_value_cents)
            } else {
                declared_for(declarations, &h.unit_id, year, m)
            };
            let s = situation(h, decl, year, m);
            let entry = groups.entry(s).or_default();
            entry.0 += 1;
            if m < 6 {
                entry.1 += 1;
            }
        }
        for (s, (months, first_half)) in groups {
            let main_cat = categoria_of
                .get(s.pertinenza_of.as_str())
                .copied()
                .unwrap_or_default();
            let pertinenza_ok = pertinenze_allowed
                .get(&(s.pertinenza_of.clone(), h.categoria.clone()))
                .is_some_and(|id| *id == h.unit_id);
            let luxury_main = LUXURY.contains(&main_cat);
            let exempt_main = !main_cat.is_empty() && !luxury_main;
            gross.push(gross_line(
                h,
                &s,
                months,
                first_half,
                pertinenza_ok,
                luxury_main,
                exempt_main,
                rc,
            ));
        }
    }

    // The detrazione goes to the main residence first, then what it cannot absorb to its
    // pertinenze (c. 749).
    let mut residual: HashMap<String, (i64, i64)> = HashMap::new();
    for g in gross
        .iter_mut()
        .filter(|g| g.deduction > 0 || g.deduction_acconto > 0)
    {
        let used = g.deduction.min(g.tax);
        let used_acconto = g.deduction_acconto.min(g.acconto);
        let left = residual.entry(g.unit_id.clone()).or_default();
        left.0 += g.deduction - used;
        left.1 += g.deduction_acconto - used_acconto;
        g.tax -= used;
        g.acconto -= used_acconto;
        g.line.deduction = money(used);
    }
    for g in gross
        .iter_mut()
        .filter(|g| !g.pertinenza_of.is_empty() && !g.line.exempt)
    {
        if let Some(left) = residual.get_mut(&g.pertinenza_of) {
            let used = left.0.min(g.tax);
            let used_acconto = left.1.min(g.acconto);
            left.0 -= used;
            left.1 -= used_acconto;
            g.tax -= used;
            g.acconto -= used_acconto;
            g.line.deduction = money(used);
        }
    }

    let mut lines = Vec::with_capacity(gross.len());
    let (mut total, mut acconto_total, mut state_total) = (0i64, 0i64, 0i64);
    for mut g in gross {
        // A saldo never goes negative: when this year's rates are lower, the acconto shrinks.
        let acconto = g.acconto.min(g.tax);
        let state = g.state.min(g.tax);
        g.line.tax = money(g.tax);
        g.line.acconto = money(acconto);
        g.line.saldo = money(g.tax - acconto);
        g.line.state_share = money(state);
        g.line.comune_share = money(g.tax - state);
        total += g.tax;
        acconto_total += acconto;
        state_total += state;
        lines.push(g.line);
    }
    let current = rc.current;
    pb::ImuAssessment {
        fiscal_code: fiscal_code.to_owned(),
        istat_code: istat_code.to_owned(),
        year,
        lines,
        total: money(total),
        acconto: money(acconto_total),
        saldo: money(total - acconto_total),
        acconto_due_date: current.acconto_due.to_string(),
        saldo_due_date: current.saldo_due.to_string(),
        state_share: money(state_total),
        comune_share: money(total - state_total),
        rates_final: current.published,
        below_minimum: current.minimum_payable_cents > 0 && total < current.minimum_payable_cents,
        computed_time,
    }
}

/// Whether a month of `year` falls in the first half (the acconto's).
pub fn first_half(date: NaiveDate) -> bool {
    date.month() <= 6
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: i32 = 2025;

    fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).unwrap()
    }

    fn unit(id: &str, categoria: &str, rendita_euro: i64) -> Holding {
        Holding {
            unit_id: id.into(),
            land: false,
            categoria: categoria.into(),
            rendita_cents: rendita_euro * 100,
            reddito_dominicale_cents: 0,
            heritage_listed: false,
            liable: true,
            share: (1, 1),
            start: d(2010, 1, 1),
            end: None,
        }
    }

    fn declaration(unit_id: &str) -> Declaration {
        Declaration {
            unit_id: unit_id.into(),
            asset_kind: pb::ImuAssetKind::Unspecified,
            main_residence: false,
            main_residence_unit_id: String::new(),
            base_reduction: pb::ImuBaseReduction::Unspecified,
            reduction_start: None,
            reduction_end: None,
            canone_concordato: false,
            building_land_value_cents: 0,
            exemption_reason: String::new(),
            start: d(2010, 1, 1),
            end: None,
        }
    }

    fn main_residence(unit_id: &str) -> Declaration {
        Declaration {
            main_residence: true,
            ..declaration(unit_id)
        }
    }

    fn pertinenza(unit_id: &str, of: &str) -> Declaration {
        Declaration {
            main_residence_unit_id: of.into(),
            ..declaration(unit_id)
        }
    }

    fn run(holdings: &[Holding], decls: &[Declaration]) -> pb::ImuAssessment {
        let rates = ImuRates::defaults(YEAR);
        let prev = ImuRates::defaults(YEAR - 1);
        assess(
            "X",
            "082053",
            YEAR,
            holdings,
            decls,
            RateContext {
                current: &rates,
                previous: &prev,
            },
            None,
        )
    }

    fn cents(m: &Option<Money>) -> i64 {
        m.as_ref().map_or(0, |m| m.cents)
    }

    #[test]
    fn multipliers_per_group() {
        let cases = [
            ("A/2", Some(160)),
            ("A/10", Some(80)),
            ("A/1", Some(160)),
            ("C/2", Some(160)),
            ("C/6", Some(160)),
            ("C/7", Some(160)),
            ("B/5", Some(140)),
            ("C/3", Some(140)),
            ("C/4", Some(140)),
            ("C/5", Some(140)),
            ("D/5", Some(80)),
            ("D/1", Some(65)),
            ("D/8", Some(65)),
            ("C/1", Some(55)),
            ("E/7", None),
            ("F/3", None),
        ];
        for (categoria, m) in cases {
            assert_eq!(multiplier(categoria), m, "{categoria}");
        }
    }

    /// Default rates (ordinary 0.86 %, main residence of lusso 0.5 % with € 200, group D 0.86 % of
    /// which 0.76 % to the State). Each row: the case, holdings, declarations, and the expected
    /// (tax, acconto, state share) in cents of the one unit of interest (the first line).
    #[test]
    fn imu_table() {
        type Case = (
            &'static str,
            Vec<Holding>,
            Vec<Declaration>,
            (i64, i64, i64),
        );
        let half_for_seven = Holding {
            share: (1, 2),
            start: d(YEAR, 6, 1),
            ..unit("u", "A/3", 600)
        };
        let cases: Vec<Case> = vec![
            // 500 × 1.05 × 160 = 84,000 € × 0.86 % = 722.40
            (
                "A/2 second home (160)",
                vec![unit("u", "A/2", 500)],
                vec![],
                (72_240, 36_120, 0),
            ),
            (
                "A/2 main residence: exempt",
                vec![unit("u", "A/2", 500)],
                vec![main_residence("u")],
                (0, 0, 0),
            ),
            // 2,000 × 1.05 × 160 = 336,000 × 0.5 % = 1,680 − 200 = 1,480; acconto 840 − 100
            (
                "A/1 main residence with € 200 deduction",
                vec![unit("u", "A/1", 2_000)],
                vec![main_residence("u")],
                (148_000, 74_000, 0),
            ),
            (
                "C/6 pertinenza of an exempt home",
                vec![unit("p", "C/6", 90), unit("u", "A/2", 500)],
                vec![main_residence("u"), pertinenza("p", "u")],
                (0, 0, 0),
            ),
            // 1,000 × 1.05 × 140 = 147,000 × 0.86 % = 1,264.20
            (
                "B/5 (140)",
                vec![unit("u", "B/5", 1_000)],
                vec![],
                (126_420, 63_210, 0),
            ),
            // 400 × 1.05 × 140 = 58,800 × 0.86 % = 505.68
            (
                "C/3 (140)",
                vec![unit("u", "C/3", 400)],
                vec![],
                (50_568, 25_284, 0),
            ),
            // 1,500 × 1.05 × 80 = 126,000 × 0.86 % = 1,083.60
            (
                "A/10 (80)",
                vec![unit("u", "A/10", 1_500)],
                vec![],
                (108_360, 54_180, 0),
            ),
            // 10,000 × 1.05 × 80 = 840,000 × 0.86 % = 7,224; State 0.76 % = 6,384
            (
                "D/5 (80), State share",
                vec![unit("u", "D/5", 10_000)],
                vec![],
                (722_400, 361_200, 638_400),
            ),
            // 20,000 × 1.05 × 65 = 1,365,000 × 0.86 % = 11,739; State 10,374
            (
                "D/8 (65), State share",
                vec![unit("u", "D/8", 20_000)],
                vec![],
                (1_173_900, 586_950, 1_037_400),
            ),
            // 1,200 × 1.05 × 55 = 69,300 × 0.86 % = 595.98
            (
                "C/1 (55)",
                vec![unit("u", "C/1", 1_200)],
                vec![],
                (59_598, 29_799, 0),
            ),
            // 600 × 1.05 × 160 = 100,800 × 0.86 % × 1/2 × 7/12 = 252.84; acconto: June only = 36.12
            (
                "50 % share for 7 months",
                vec![half_for_seven],
                vec![],
                (25_284, 3_612, 0),
            ),
            // halved base: 361.20
            (
                "historic building, base halved",
                vec![Holding {
                    heritage_listed: true,
                    ..unit("u", "A/2", 500)
                }],
                vec![],
                (36_120, 18_060, 0),
            ),
            // 722.40 × 75 %
            (
                "canone concordato, −25 %",
                vec![unit("u", "A/2", 500)],
                vec![Declaration {
                    canone_concordato: true,
                    ..declaration("u")
                }],
                (54_180, 27_090, 0),
            ),
            // 100 × 1.25 × 135 = 16,875 × 0.76 % = 128.25
            (
                "terreno agricolo (135)",
                vec![Holding {
                    land: true,
                    categoria: String::new(),
                    rendita_cents: 0,
                    reddito_dominicale_cents: 10_000,
                    ..unit("u", "", 0)
                }],
                vec![],
                (12_825, 6_413, 0),
            ),
            // 5,000 × 1.05 × 65 = 341,250 × 0.1 % = 341.25, all to the State
            (
                "D/10 rurale strumentale",
                vec![unit("u", "D/10", 5_000)],
                vec![],
                (34_125, 17_063, 34_125),
            ),
            (
                "E/7 exempt",
                vec![unit("u", "E/7", 3_000)],
                vec![],
                (0, 0, 0),
            ),
            // valore venale 80,000 € × 0.86 %
            (
                "area fabbricabile",
                vec![],
                vec![Declaration {
                    asset_kind: pb::ImuAssetKind::AreaFabbricabile,
                    building_land_value_cents: 8_000_000,
                    ..declaration("")
                }],
                (68_800, 34_400, 0),
            ),
        ];
        for (case, holdings, decls, (tax, acconto, state)) in cases {
            let a = run(&holdings, &decls);
            // The unit of interest: `p` for the pertinenza case, the area (no unit) when nothing is
            // held, `u` otherwise.
            let target = if case.starts_with("C/6") {
                "p"
            } else if holdings.is_empty() {
                ""
            } else {
                "u"
            };
            let line = a
                .lines
                .iter()
                .find(|l| l.cadastral_unit_id == target)
                .unwrap_or_else(|| panic!("{case}: no line"));
            assert_eq!(
                (
                    cents(&line.tax),
                    cents(&line.acconto),
                    cents(&line.state_share)
                ),
                (tax, acconto, state),
                "{case}"
            );
            assert_eq!(cents(&line.saldo), tax - acconto, "{case}");
            assert_eq!(cents(&line.comune_share), tax - state, "{case}");
        }
    }

    #[test]
    fn exemptions_say_why_and_codes_follow_f24() {
        let a = run(
            &[
                unit("u", "A/2", 500),
                unit("p", "C/6", 90),
                unit("q", "C/6", 80),
            ],
            &[
                main_residence("u"),
                pertinenza("p", "u"),
                pertinenza("q", "u"),
            ],
        );
        let by = |id: &str| {
            a.lines
                .iter()
                .find(|l| l.cadastral_unit_id == id)
                .unwrap()
                .clone()
        };
        assert!(by("u").exempt && by("u").exemption_reason.contains("c. 740"));
        assert!(by("p").pertinenza && by("p").exempt);
        // Only one C/6 per main residence: the second is taxed as an ordinary building.
        assert!(!by("q").exempt && !by("q").pertinenza);
        assert_eq!(
            (by("q").f24_comune_code.as_str(), cents(&by("q").tax)),
            ("3918", 11_558)
        );
        let d = run(&[unit("u", "D/8", 20_000)], &[]);
        assert_eq!(
            (
                d.lines[0].f24_comune_code.as_str(),
                d.lines[0].f24_state_code.as_str()
            ),
            ("3930", "3925")
        );
        let lux = run(&[unit("u", "A/8", 3_000)], &[main_residence("u")]);
        assert_eq!(lux.lines[0].f24_comune_code, "3912");
    }

    #[test]
    fn the_deduction_left_over_goes_to_the_pertinenze() {
        // A small A/1 (rendita 150: 25,200 × 0.5 % = 126) absorbs 126 of the 200; its C/6 (rendita 80:
        // 13,440 × 0.5 % = 67.20) takes the other 67.20 of the remaining 74.
        let a = run(
            &[unit("u", "A/1", 150), unit("p", "C/6", 80)],
            &[main_residence("u"), pertinenza("p", "u")],
        );
        let by = |id: &str| {
            a.lines
                .iter()
                .find(|l| l.cadastral_unit_id == id)
                .unwrap()
                .clone()
        };
        assert_eq!(
            (cents(&by("u").tax), cents(&by("u").deduction)),
            (0, 12_600)
        );
        assert_eq!((cents(&by("p").tax), cents(&by("p").deduction)), (0, 6_720));
        assert_eq!(cents(&a.total), 0);
    }

    #[test]
    fn months_count_when_held_more_than_half_and_ties_go_to_the_buyer() {
        let count = |s: NaiveDate, e: Option<NaiveDate>| {
            months_held(s, e, YEAR).iter().filter(|m| **m).count()
        };
        assert_eq!(count(d(2010, 1, 1), None), 12);
        assert_eq!(
            count(d(YEAR, 3, 16), None),
            10,
            "16 of 31 days of March count"
        );
        assert_eq!(count(d(YEAR, 3, 17), None), 9, "15 of 31 do not");
        assert_eq!(
            count(d(YEAR, 4, 16), None),
            9,
            "15 of 30 days of April: a tie, the buyer's"
        );
        assert_eq!(
            count(d(2010, 1, 1), Some(d(YEAR, 4, 15))),
            3,
            "the seller loses the tie"
        );
        assert_eq!(
            count(d(2010, 1, 1), Some(d(YEAR, 2, 14))),
            1,
            "14 of 28 days of February: the seller's tie is lost"
        );
        assert_eq!(count(d(YEAR + 1, 1, 1), None), 0);
    }

    #[test]
    fn a_change_in_the_year_splits_the_line() {
        // Main residence from 1 July: six months exempt, six taxed.
        let a = run(
            &[unit("u", "A/2", 500)],
            &[Declaration {
                main_residence: true,
                start: d(YEAR, 7, 1),
                ..declaration("u")
            }],
        );
        assert_eq!(a.lines.len(), 2);
        let taxed = a.lines.iter().find(|l| !l.exempt).unwrap();
        assert_eq!(
            (taxed.months, cents(&taxed.tax), cents(&taxed.acconto)),
            (6, 36_120, 36_120)
        );
        assert_eq!(cents(&a.saldo), 0);
    }

    #[test]
    fn acconto_at_last_years_rates_saldo_at_this_years() {
        let prev = ImuRates::defaults(YEAR - 1);
        let mut rates = ImuRates {
            ordinary_bp: 106,
            minimum_payable_cents: 100_000,
            ..ImuRates::defaults(YEAR)
        };
        let h = [unit("u", "A/2", 500)];
        let a = assess(
            "X",
            "082053",
            YEAR,
            &h,
            &[],
            RateContext {
                current: &rates,
                previous: &prev,
            },
            None,
        );
        // 84,000 × 1.06 % = 890.40; acconto at 0.86 % for six months = 361.20; saldo = 529.20
        assert_eq!(
            (cents(&a.total), cents(&a.acconto), cents(&a.saldo)),
            (89_040, 36_120, 52_920)
        );
        assert!(a.rates_final && a.below_minimum);
        // Not yet published by the MEF: the saldo stays at last year's rates, provisionally.
        rates.published = false;
        let a = assess(
            "X",
            "082053",
            YEAR,
            &h,
            &[],
            RateContext {
                current: &rates,
                previous: &prev,
            },
            None,
        );
        assert_eq!(cents(&a.total), 72_240);
        assert!(!a.rates_final);
        assert_eq!(a.acconto_due_date, "2025-06-16");
    }

    #[test]
    fn nuda_proprieta_pays_nothing() {
        let a = run(
            &[Holding {
                liable: false,
                ..unit("u", "A/2", 500)
            }],
            &[],
        );
        assert!(a.lines.is_empty());
        assert_eq!(cents(&a.total), 0);
        assert!(first_half(d(YEAR, 6, 30)) && !first_half(d(YEAR, 7, 1)));
    }
}
