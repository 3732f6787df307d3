//! The descriptive data of a public work, as `CreateProject`, `UpdateProject` and imports send it:
//! the comune, CUP, title, category, place in the triennial programme, design level, budget and its
//! funding sources (their sum checked in integer cents), place, RUP and external reference.

use chrono::{Datelike, NaiveDate};
use patto_proto::publicworks::v1 as pb;
use patto_service_kit::error::Violations;
use patto_service_kit::{comuni, ids, procurement};

use super::{
    MAX_AMOUNT_CENTS, MAX_FUNDING_SOURCES, MAX_NAME_LEN, MAX_REF_LEN, MAX_TEXT_LEN, MAX_TITLE_LEN,
    calendar_day, euro_decimal, fits,
};

/// How far ahead a triennial programme may start: the programme is adopted with the budget (DUP)
/// the year before its first year, so next year's is the furthest a comune can have.
pub const PROGRAMME_YEARS_AHEAD: i32 = 1;
/// Earliest first year of a programme accepted (the CUP itself dates from 2003).
pub const FIRST_PROGRAMME_YEAR: i32 = 2003;

/// Bounds around the Città Metropolitana di Palermo, Ustica included: a site outside them is a
/// swapped or mistyped coordinate, not a work of these comuni.
pub const LATITUDE_RANGE: (f64, f64) = (37.4, 38.9);
/// See [`LATITUDE_RANGE`].
pub const LONGITUDE_RANGE: (f64, f64) = (12.5, 14.5);

/// The work's place in the triennial programme.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Programme {
    /// First year, 0 when the work is in no programme.
    pub first_year: i32,
    /// Last year, `first_year + 2` (0 when in no programme).
    pub last_year: i32,
    /// In the elenco annuale.
    pub in_annual_list: bool,
    /// CUI, empty when none.
    pub cui: String,
}

/// One funding source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funding {
    /// Source.
    pub source: pb::ProjectFundingSource,
    /// Amount in cents, more than zero.
    pub amount_cents: i64,
    /// Reference within the source.
    pub reference: String,
}

/// Street address of the site.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteAddress {
    /// Street.
    pub street: String,
    /// House number.
    pub house_number: String,
    /// CAP, one of the comune's.
    pub postal_code: String,
    /// Locality (frazione).
    pub locality: String,
}

/// Validated descriptive data of a work.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectData {
    /// ISTAT code of the comune.
    pub istat_code: String,
    /// Canonical CUP, when it has one.
    pub cup: Option<String>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: pb::ProjectCategory,
    /// Place in the programme.
    pub programme: Programme,
    /// Design level.
    pub design_level: pb::ProjectDesignLevel,
    /// Budget (quadro economico) in cents.
    pub budget_cents: i64,
    /// Funding sources, in the order given.
    pub funding: Vec<Funding>,
    /// Address of the site.
    pub address: Option<SiteAddress>,
    /// Position of the site (latitude, longitude).
    pub geo: Option<(f64, f64)>,
    /// RUP.
    pub rup_name: String,
    /// Planned end of the works.
    pub planned_end_date: Option<NaiveDate>,
    /// The comune's own reference.
    pub external_ref: String,
}

impl ProjectData {
    /// Sum of the funding sources, in cents.
    pub fn funded_cents(&self) -> i64 {
        self.funding
            .iter()
            .fold(0i64, |acc, f| acc.saturating_add(f.amount_cents))
    }
}

/// True when `cui` has the shape of the CUI of a work (D.M. 14/2018): `L`, the 11-digit codice
/// fiscale of the administration (check digit verified), the programme's first year and a 5-digit
/// progressive number.
pub fn is_work_cui(cui: &str) -> bool {
    let b = cui.as_bytes();
    b.len() == 21
        && b[0] == b'L'
        && b[1..].iter().all(u8::is_ascii_digit)
        && ids::validate_partita_iva(&cui[1..12]).is_ok()
}

/// Validates a work's descriptive data as a client sent it; `prefix` is its path in the request
/// (e.g. `project`), `today` the Italian day. The fields outside the descriptive data (state,
/// contract, SAL...) are not looked at.
pub fn validate_project(
    p: &pb::Project,
    prefix: &str,
    today: NaiveDate,
) -> Result<ProjectData, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");

    let comune = comuni::by_istat(&p.istat_code);
    v.check(
        comune.is_some(),
        f("istat_code"),
        "must be the 6-digit ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );

    let cup = if p.cup.trim().is_empty() {
        None
    } else {
        match procurement::parse_cup(&p.cup) {
            Ok(cup) if cup.year > today.year() => {
                v.add(
                    f("cup"),
                    format!(
                        "its 5th-6th characters give the year {}, which has not come yet",
                        cup.year
                    ),
                );
                None
            }
            Ok(cup) => Some(cup.code),
            Err(e) => {
                v.add(f("cup"), format!("is not a valid CUP: {e}"));
                None
            }
        }
    };

    let title = p.title.trim();
    v.check(!title.is_empty(), f("title"), "must not be empty");
    v.check(
        fits(title, MAX_TITLE_LEN),
        f("title"),
        format!("must be at most {MAX_TITLE_LEN} characters"),
    );
    v.check(
        fits(&p.description, MAX_TEXT_LEN),
        f("description"),
        format!("must be at most {MAX_TEXT_LEN} characters"),
    );
    let category = match pb::ProjectCategory::try_from(p.category) {
        Ok(pb::ProjectCategory::Unspecified) | Err(_) => {
            v.add(f("category"), "must be one of the ProjectCategory values");
            pb::ProjectCategory::Unspecified
        }
        Ok(c) => c,
    };

    let programme = validate_programme(p.programme.as_ref(), &f("programme"), today, &mut v);

    let design_level = pb::ProjectDesignLevel::try_from(p.design_level).unwrap_or_else(|_| {
        v.add(
            f("design_level"),
            "must be one of the ProjectDesignLevel values",
        );
        pb::ProjectDesignLevel::Unspecified
    });

    let budget_cents = p.budget.as_ref().map_or(0, |m| m.cents);
    v.check(
        (1..=MAX_AMOUNT_CENTS).contains(&budget_cents),
        f("budget.cents"),
        format!(
            "must be more than zero and at most {MAX_AMOUNT_CENTS} cents: the total of the quadro economico"
        ),
    );

    let mut funding = Vec::with_capacity(p.funding.len());
    v.check(
        p.funding.len() <= MAX_FUNDING_SOURCES,
        f("funding"),
        format!("at most {MAX_FUNDING_SOURCES} funding sources"),
    );
    for (i, fund) in p.funding.iter().enumerate().take(MAX_FUNDING_SOURCES) {
        let at = |name: &str| format!("{prefix}.funding[{i}].{name}");
        let source = match pb::ProjectFundingSource::try_from(fund.source) {
            Ok(pb::ProjectFundingSource::Unspecified) | Err(_) => {
                v.add(
                    at("source"),
                    "must be one of the ProjectFundingSource values",
                );
                None
            }
            Ok(s) => Some(s),
        };
        let amount_cents = fund.amount.as_ref().map_or(0, |m| m.cents);
        v.check(
            (1..=MAX_AMOUNT_CENTS).contains(&amount_cents),
            at("amount.cents"),
            "must be more than zero",
        );
        v.check(
            fits(fund.reference.trim(), MAX_REF_LEN),
            at("reference"),
            format!("must be at most {MAX_REF_LEN} characters"),
        );
        if let Some(source) = source {
            funding.push(Funding {
                source,
                amount_cents,
                reference: fund.reference.trim().to_owned(),
            });
        }
    }
    // Each amount is at most MAX_AMOUNT_CENTS and there are at most 20: the sum cannot overflow,
    // and checked_add says so if that ever changes.
    let funded = funding
        .iter()
        .try_fold(0i64, |acc, f| acc.checked_add(f.amount_cents));
    match funded {
        Some(total) if total > budget_cents && budget_cents > 0 => v.add(
            f("funding"),
            format!(
                "the sources add up to € {}, more than the budget of € {}",
                euro_decimal(total),
                euro_decimal(budget_cents)
            ),
        ),
        None => v.add(f("funding"), "the amounts are too large to add up"),
        _ => {}
    }

    let address = match &p.address {
        None => None,
        Some(a) if a.street.trim().is_empty() && a.postal_code.trim().is_empty() => {
            v.check(
                a.house_number.trim().is_empty() && a.locality.trim().is_empty(),
                f("address.street"),
                "must be set when the address is",
            );
            None
        }
        Some(a) => {
            v.check(
                !a.street.trim().is_empty(),
                f("address.street"),
                "must not be empty",
            );
            for (name, value) in [
                ("street", &a.street),
                ("house_number", &a.house_number),
                ("locality", &a.locality),
            ] {
                v.check(
                    fits(value.trim(), MAX_NAME_LEN),
                    f(&format!("address.{name}")),
                    format!("must be at most {MAX_NAME_LEN} characters"),
                );
            }
            let cap = a.postal_code.trim();
            if let Some(c) = comune {
                v.check(
                    cap.is_empty() || c.postal_codes.iter().any(|p| p == cap),
                    f("address.postal_code"),
                    format!(
                        "must be empty or a CAP of {}: {}",
                        c.name,
                        c.postal_codes.join(", ")
                    ),
                );
            }
            v.check(
                a.istat_code.is_empty() || a.istat_code == p.istat_code,
                f("address.istat_code"),
                "must be empty or the work's own istat_code",
            );
            Some(SiteAddress {
                street: a.street.trim().to_owned(),
                house_number: a.house_number.trim().to_owned(),
                postal_code: cap.to_owned(),
                locality: a.locality.trim().to_owned(),
            })
        }
    };

    let geo = p.geo.as_ref().map(|g| (g.latitude, g.longitude));
    if let Some((lat, lon)) = geo {
        v.check(
            lat.is_finite() && (LATITUDE_RANGE.0..=LATITUDE_RANGE.1).contains(&lat),
            f("geo.latitude"),
            format!(
                "must lie within the Città Metropolitana di Palermo ({} to {})",
                LATITUDE_RANGE.0, LATITUDE_RANGE.1
            ),
        );
        v.check(
            lon.is_finite() && (LONGITUDE_RANGE.0..=LONGITUDE_RANGE.1).contains(&lon),
            f("geo.longitude"),
            format!(
                "must lie within the Città Metropolitana di Palermo ({} to {})",
                LONGITUDE_RANGE.0, LONGITUDE_RANGE.1
            ),
        );
    }

    v.check(
        fits(p.rup_name.trim(), MAX_NAME_LEN),
        f("rup_name"),
        format!("must be at most {MAX_NAME_LEN} characters"),
    );
    let planned_end_date = if p.planned_end_date.trim().is_empty() {
        None
    } else {
        calendar_day(&p.planned_end_date, &f("planned_end_date"), &mut v)
    };
    let external_ref = p.external_ref.trim();
    v.check(
        fits(external_ref, MAX_REF_LEN),
        f("external_ref"),
        format!("must be at most {MAX_REF_LEN} characters"),
    );

    if !v.is_empty() {
        return Err(v);
    }
    Ok(ProjectData {
        istat_code: p.istat_code.clone(),
        cup,
        title: title.to_owned(),
        description: p.description.trim().to_owned(),
        category,
        programme,
        design_level,
        budget_cents,
        funding,
        address,
        geo,
        rup_name: p.rup_name.trim().to_owned(),
        planned_end_date,
        external_ref: external_ref.to_owned(),
    })
}

fn validate_programme(
    p: Option<&pb::ProjectProgramme>,
    prefix: &str,
    today: NaiveDate,
    v: &mut Violations,
) -> Programme {
    let Some(p) = p else {
        return Programme::default();
    };
    let f = |name: &str| format!("{prefix}.{name}");
    let cui = p.cui.trim().to_ascii_uppercase();
    if p.first_year == 0 {
        v.check(
            p.last_year == 0,
            f("last_year"),
            "must be 0 when first_year is 0 (the work is in no programme)",
        );
        v.check(
            !p.in_annual_list,
            f("in_annual_list"),
            "the elenco annuale is the first year of a programme: set first_year",
        );
        v.check(
            cui.is_empty(),
            f("cui"),
            "a CUI is given in a programme: set first_year",
        );
        return Programme::default();
    }
    let latest = today.year() + PROGRAMME_YEARS_AHEAD;
    v.check(
        (FIRST_PROGRAMME_YEAR..=latest).contains(&p.first_year),
        f("first_year"),
        format!("must be 0 (no programme) or a year from {FIRST_PROGRAMME_YEAR} to {latest}"),
    );
    let last_year = p.first_year.saturating_add(2);
    v.check(
        p.last_year == 0 || p.last_year == last_year,
        f("last_year"),
        format!("a triennial programme ends two years after it starts: {last_year} (or leave 0)"),
    );
    v.check(
        cui.is_empty() || is_work_cui(&cui),
        f("cui"),
        "must be empty or the CUI of a work: L, the administration's 11-digit codice fiscale, the first year of the programme and a 5-digit number, e.g. L80016350821202500001",
    );
    Programme {
        first_year: p.first_year,
        last_year,
        in_annual_list: p.in_annual_list,
        cui,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::{Address, GeoPoint, Money};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()
    }

    fn money(cents: i64) -> Option<Money> {
        Some(Money { cents })
    }

    pub(crate) fn good_project() -> pb::Project {
        pb::Project {
            istat_code: "082053".into(),
            cup: "j87g22000360002".into(),
            title: " Manutenzione straordinaria della scuola Garibaldi ".into(),
            category: pb::ProjectCategory::Schools as i32,
            programme: Some(pb::ProjectProgramme {
                first_year: 2025,
                last_year: 0,
                in_annual_list: true,
                cui: "L80016350821202500001".into(),
            }),
            budget: money(50_000_000),
            funding: vec![
                pb::ProjectFunding {
                    source: pb::ProjectFundingSource::PonMetro as i32,
                    amount: money(40_000_000),
                    reference: "PA1.1.1.a".into(),
                },
                pb::ProjectFunding {
                    source: pb::ProjectFundingSource::Municipality as i32,
                    amount: money(10_000_000),
                    reference: String::new(),
                },
            ],
            address: Some(Address {
                street: "Via Garibaldi".into(),
                house_number: "10".into(),
                postal_code: "90133".into(),
                ..Default::default()
            }),
            geo: Some(GeoPoint {
                latitude: 38.115,
                longitude: 13.365,
            }),
            planned_end_date: "2026-12-31".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_project_is_normalised() {
        let d = validate_project(&good_project(), "project", today()).unwrap();
        assert_eq!(d.cup.as_deref(), Some("J87G22000360002"));
        assert_eq!(d.title, "Manutenzione straordinaria della scuola Garibaldi");
        assert_eq!(d.programme.last_year, 2027);
        assert_eq!(d.funded_cents(), 50_000_000);
        let no_programme = pb::Project {
            cup: String::new(),
            programme: None,
            funding: vec![],
            ..good_project()
        };
        let d = validate_project(&no_programme, "project", today()).unwrap();
        assert_eq!((d.cup, d.programme), (None, Programme::default()));
    }

    /// Each bad value is named by its field, under the given prefix.
    #[test]
    fn violations_name_their_field() {
        type Edit = fn(&mut pb::Project);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "comune",
                |p| p.istat_code = "082000".into(),
                "project.istat_code",
            ),
            (
                "cup shape",
                |p| p.cup = "J87G2200036000".into(),
                "project.cup",
            ),
            (
                "cup year ahead",
                |p| p.cup = "J87G27000360002".into(),
                "project.cup",
            ),
            ("title", |p| p.title = " ".into(), "project.title"),
            ("title NUL", |p| p.title = "a\0b".into(), "project.title"),
            ("category", |p| p.category = 0, "project.category"),
            ("category unknown", |p| p.category = 99, "project.category"),
            (
                "programme year",
                |p| p.programme.as_mut().unwrap().first_year = 2030,
                "project.programme.first_year",
            ),
            (
                "programme last year",
                |p| p.programme.as_mut().unwrap().last_year = 2026,
                "project.programme.last_year",
            ),
            (
                "cui",
                |p| p.programme.as_mut().unwrap().cui = "L80016350822202500001".into(),
                "project.programme.cui",
            ),
            (
                "annual list without programme",
                |p| {
                    p.programme = Some(pb::ProjectProgramme {
                        in_annual_list: true,
                        ..Default::default()
                    })
                },
                "project.programme.in_annual_list",
            ),
            (
                "design level",
                |p| p.design_level = 7,
                "project.design_level",
            ),
            ("no budget", |p| p.budget = None, "project.budget.cents"),
            (
                "negative budget",
                |p| p.budget = money(-1),
                "project.budget.cents",
            ),
            (
                "huge budget",
                |p| p.budget = money(i64::MAX),
                "project.budget.cents",
            ),
            (
                "funding over budget",
                |p| p.budget = money(49_999_999),
                "project.funding",
            ),
            (
                "funding source",
                |p| p.funding[1].source = 0,
                "project.funding[1].source",
            ),
            (
                "funding amount",
                |p| p.funding[0].amount = money(0),
                "project.funding[0].amount.cents",
            ),
            (
                "funding amount overflow",
                |p| p.funding[0].amount = money(i64::MAX),
                "project.funding[0].amount.cents",
            ),
            (
                "foreign CAP",
                |p| p.address.as_mut().unwrap().postal_code = "90011".into(),
                "project.address.postal_code",
            ),
            (
                "no street",
                |p| p.address.as_mut().unwrap().street = String::new(),
                "project.address.street",
            ),
            (
                "latitude",
                |p| p.geo.as_mut().unwrap().latitude = f64::NAN,
                "project.geo.latitude",
            ),
            (
                "swapped coordinates",
                |p| {
                    p.geo = Some(GeoPoint {
                        latitude: 13.36,
                        longitude: 38.11,
                    })
                },
                "project.geo.longitude",
            ),
            (
                "planned end",
                |p| p.planned_end_date = "31/12/2026".into(),
                "project.planned_end_date",
            ),
            (
                "external ref",
                |p| p.external_ref = "x".repeat(101),
                "project.external_ref",
            ),
        ];
        for (case, edit, field) in cases {
            let mut p = good_project();
            edit(&mut p);
            let v = validate_project(&p, "project", today()).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
    }

    #[test]
    fn funding_may_leave_part_unfunded() {
        let mut p = good_project();
        p.funding.truncate(1);
        let d = validate_project(&p, "project", today()).unwrap();
        assert_eq!(d.funded_cents(), 40_000_000);
        assert!(d.funded_cents() < d.budget_cents);
    }

    #[test]
    fn cui_shape() {
        assert!(is_work_cui("L80016350821202500001"));
        assert!(!is_work_cui("F80016350821202500001"));
        assert!(!is_work_cui("L8001635082120250000"));
        assert!(!is_work_cui("L80016350822202500001"));
        assert!(!is_work_cui("L8001635082À202500001"));
    }
}
