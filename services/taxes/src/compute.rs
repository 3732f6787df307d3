//! Gathers what a computation needs (cadastral holdings from the building service, declarations,
//! registrations, rates and tariffs from the store) and hands it to the pure rules of
//! [`crate::domain`]. Nothing here decides an amount.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use patto_proto::building::v1 as bpb;
use patto_proto::taxes::v1 as pb;
use patto_service_kit::error::ServiceError;
use patto_service_kit::time::to_timestamp;
use prost::Message;

use crate::building::{BuildingClient, Credentials, holding};
use crate::domain::debt::Part;
use crate::domain::imu::{self, Declaration, Holding, RateContext};
use crate::domain::tari::{self, Registration};
use crate::error::TaxesError;
use crate::store::{Computed, Store, imu_declaration, tari_registration};

/// The IMU view of a stored declaration.
pub fn declaration(d: &imu_declaration::Model) -> Declaration {
    Declaration {
        unit_id: d.cadastral_unit_id.clone(),
        asset_kind: pb::ImuAssetKind::try_from(d.asset_kind)
            .unwrap_or(pb::ImuAssetKind::Unspecified),
        main_residence: d.main_residence,
        main_residence_unit_id: d.main_residence_unit_id.clone(),
        base_reduction: pb::ImuBaseReduction::try_from(d.base_reduction)
            .unwrap_or(pb::ImuBaseReduction::Unspecified),
        reduction_start: d.reduction_start_date,
        reduction_end: d.reduction_end_date,
        canone_concordato: d.canone_concordato,
        building_land_value_cents: d.building_land_value_cents,
        exemption_reason: d.exemption_reason.clone(),
        start: d.start_date,
        end: d.end_date,
    }
}

/// The TARI view of a stored registration.
pub fn registration(r: &tari_registration::Model) -> Registration {
    Registration {
        id: r.id.clone(),
        kind: pb::TariUseKind::try_from(r.kind).unwrap_or(pb::TariUseKind::Domestic),
        surface_sqm: r.surface_sqm,
        household_size: r.household_size,
        resident: r.resident,
        category: r.non_domestic_category,
        reduction_codes: serde_json::from_str(&r.reduction_codes_json).unwrap_or_default(),
        start: r.start_date,
        end: r.end_date,
    }
}

/// A taxpayer's holdings grouped by comune: (IMU holdings, name as registered).
fn by_comune(
    holdings: &[bpb::PropertyHolding],
    fiscal_code: &str,
) -> BTreeMap<String, (Vec<Holding>, String)> {
    let mut out: BTreeMap<String, (Vec<Holding>, String)> = BTreeMap::new();
    for h in holdings {
        let (Some(unit), Some(o)) = (&h.unit, &h.ownership) else {
            continue;
        };
        if o.fiscal_code != fiscal_code {
            continue;
        }
        if let Some(x) = holding(unit, o) {
            let entry = out.entry(unit.istat_code.clone()).or_default();
            entry.0.push(x);
            if entry.1.is_empty() {
                entry.1 = o.name.clone();
            }
        }
    }
    out
}

async fn assess_imu(
    store: &Store,
    fiscal_code: &str,
    istat_code: &str,
    year: i32,
    holdings: &[Holding],
    declarations: &[imu_declaration::Model],
    now: DateTime<Utc>,
) -> Result<pb::ImuAssessment, TaxesError> {
    let (current, previous) = store.rate_context(istat_code, year).await?;
    let decls: Vec<Declaration> = declarations
        .iter()
        .filter(|d| d.fiscal_code == fiscal_code && d.istat_code == istat_code)
        .map(declaration)
        .collect();
    Ok(imu::assess(
        fiscal_code,
        istat_code,
        year,
        holdings,
        &decls,
        RateContext {
            current: &current,
            previous: &previous,
        },
        Some(to_timestamp(now)),
    ))
}

/// A taxpayer's IMU for a year, per comune, from one batched call to the building service made
/// with `credentials`.
pub async fn imu_assessments(
    store: &Store,
    building: &BuildingClient,
    credentials: &Credentials,
    fiscal_code: &str,
    year: i32,
    istat_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<pb::ImuAssessment>, TaxesError> {
    let holdings = building
        .holdings(&[fiscal_code.to_owned()], year, istat_code, credentials)
        .await
        .map_err(TaxesError::Building)?;
    let mine = holdings
        .get(fiscal_code)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let declarations = store
        .declarations_for(&[fiscal_code.to_owned()], year, istat_code)
        .await?;
    let mut comuni = by_comune(mine, fiscal_code);
    // Areas fabbricabili declared without a cadastral unit are taxed where declared.
    for d in &declarations {
        if d.cadastral_unit_id.is_empty() && istat_code.is_none_or(|c| c == d.istat_code) {
            comuni.entry(d.istat_code.clone()).or_default();
        }
    }
    let mut out = Vec::with_capacity(comuni.len());
    for (istat, (holdings, _)) in comuni {
        out.push(
            assess_imu(
                store,
                fiscal_code,
                &istat,
                year,
                &holdings,
                &declarations,
                now,
            )
            .await?,
        );
    }
    Ok(out)
}

/// Every IMU taxpayer of a comune for a year, computed: the comune's units are read page by page
/// from the building service (with `credentials`), then grouped by holder.
pub async fn imu_for_comune(
    store: &Store,
    building: &BuildingClient,
    credentials: &Credentials,
    istat_code: &str,
    year: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Computed>, TaxesError> {
    let units = building
        .units_of_comune(istat_code, credentials)
        .await
        .map_err(TaxesError::Building)?;
    imu_from_units(store, &units, istat_code, year, now).await
}

/// As [`imu_for_comune`], from units already read.
pub async fn imu_from_units(
    store: &Store,
    units: &[bpb::CadastralUnit],
    istat_code: &str,
    year: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Computed>, TaxesError> {
    let (Some(first), Some(last)) = (
        chrono::NaiveDate::from_ymd_opt(year, 1, 1),
        chrono::NaiveDate::from_ymd_opt(year, 12, 31),
    ) else {
        return Err(ServiceError::invalid("year", "is not a calendar year").into());
    };
    let mut holders: BTreeMap<String, (Vec<Holding>, String)> = BTreeMap::new();
    for unit in units {
        for o in &unit.owners {
            let Some(h) = holding(unit, o) else { continue };
            if h.start > last || h.end.is_some_and(|e| e < first) {
                continue;
            }
            let entry = holders.entry(o.fiscal_code.clone()).or_default();
            entry.0.push(h);
            if entry.1.is_empty() {
                entry.1 = o.name.clone();
            }
        }
    }
    let codes: Vec<String> = holders.keys().cloned().collect();
    let declarations = store
        .declarations_for(&codes, year, Some(istat_code))
        .await?;
    let (current, previous) = store.rate_context(istat_code, year).await?;
    let mut out = Vec::with_capacity(holders.len());
    for (code, (holdings, name)) in holders {
        let decls: Vec<Declaration> = declarations
            .iter()
            .filter(|d| d.fiscal_code == code)
            .map(declaration)
            .collect();
        let a = imu::assess(
            &code,
            istat_code,
            year,
            &holdings,
            &decls,
            RateContext {
                current: &current,
                previous: &previous,
            },
            Some(to_timestamp(now)),
        );
        out.push(imu_computed(&a, name));
    }
    Ok(out)
}

fn cents(m: &Option<patto_proto::common::v1::Money>) -> i64 {
    m.as_ref().map_or(0, |m| m.cents)
}

/// A computed IMU assessment as a position to store: acconto and saldo are its instalments.
pub fn imu_computed(a: &pb::ImuAssessment, name: String) -> Computed {
    let day = |s: &str, fallback: chrono::NaiveDate| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(fallback)
    };
    let fallback = chrono::NaiveDate::from_ymd_opt(a.year, 12, 16).unwrap_or_default();
    Computed {
        fiscal_code: a.fiscal_code.clone(),
        name,
        tribute: pb::Tribute::Imu,
        year: a.year,
        amount_due: cents(&a.total),
        assessment: a.encode_to_vec(),
        parts: vec![
            Part {
                amount: cents(&a.acconto),
                tefa: 0,
                due: day(&a.acconto_due_date, fallback),
            },
            Part {
                amount: cents(&a.saldo),
                tefa: 0,
                due: day(&a.saldo_due_date, fallback),
            },
        ],
        below_minimum: a.below_minimum,
    }
}

/// A computed TARI assessment as a position to store: the comune's instalments, TEFA included.
pub fn tari_computed(a: &pb::TariAssessment) -> Computed {
    Computed {
        fiscal_code: a.fiscal_code.clone(),
        name: String::new(),
        tribute: pb::Tribute::Tari,
        year: a.year,
        amount_due: cents(&a.total),
        assessment: a.encode_to_vec(),
        parts: a
            .instalments
            .iter()
            .filter_map(|i| {
                Some(Part {
                    amount: cents(&i.tari),
                    tefa: cents(&i.tefa),
                    due: chrono::NaiveDate::parse_from_str(&i.due_date, "%Y-%m-%d").ok()?,
                })
            })
            .collect(),
        below_minimum: a.below_minimum,
    }
}

async fn tariffs_or_refuse(
    store: &Store,
    istat_code: &str,
    year: i32,
) -> Result<crate::domain::tariffs::Tariffs, TaxesError> {
    store
        .tari_tariffs(istat_code, year)
        .await?
        .map(|(t, _)| t)
        .ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "comune {istat_code} has no TARI tariffs for {year}: set them with SetTariTariffs"
            ))
            .into()
        })
}

/// A holder's TARI for a year, per comune.
pub async fn tari_assessments(
    store: &Store,
    fiscal_code: &str,
    year: i32,
    istat_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<pb::TariAssessment>, TaxesError> {
    let rows = store
        .registrations_in_year(istat_code, Some(fiscal_code), year)
        .await?;
    let mut by: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
    for r in &rows {
        by.entry(r.istat_code.clone())
            .or_default()
            .push(registration(r));
    }
    let mut out = Vec::with_capacity(by.len());
    for (istat, regs) in by {
        let t = tariffs_or_refuse(store, &istat, year).await?;
        out.push(
            tari::assess(
                fiscal_code,
                &istat,
                year,
                &regs,
                &t,
                Some(to_timestamp(now)),
            )
            .map_err(ServiceError::FailedPrecondition)?,
        );
    }
    Ok(out)
}

/// Every TARI holder of a comune for a year, computed.
pub async fn tari_for_comune(
    store: &Store,
    istat_code: &str,
    year: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Computed>, TaxesError> {
    let t = tariffs_or_refuse(store, istat_code, year).await?;
    let rows = store
        .registrations_in_year(Some(istat_code), None, year)
        .await?;
    let mut by: BTreeMap<String, Vec<Registration>> = BTreeMap::new();
    for r in &rows {
        by.entry(r.holder_fiscal_code.clone())
            .or_default()
            .push(registration(r));
    }
    let mut out = Vec::with_capacity(by.len());
    for (code, regs) in by {
        let a = tari::assess(&code, istat_code, year, &regs, &t, Some(to_timestamp(now)))
            .map_err(|e| ServiceError::FailedPrecondition(format!("{code}: {e}")))?;
        out.push(tari_computed(&a));
    }
    Ok(out)
}
