//! Stored works to protobuf messages. Late flags, progress and the amount paid are computed here
//! from the stored dates and SAL, on the Italian day of the read, so they are never stale.

use chrono::NaiveDate;
use patto_proto::common::v1::{Address, GeoPoint, Money};
use patto_proto::publicworks::v1 as pb;
use patto_service_kit::time;

use crate::domain::iso_day;
use crate::domain::sal::lateness;
use crate::store::{ProjectView, sal, sal_facts};

fn money(cents: i64) -> Option<Money> {
    Some(Money { cents })
}

fn day(d: Option<NaiveDate>) -> String {
    d.map(iso_day).unwrap_or_default()
}

/// A stored SAL as the contract shows it, its late flags judged on `today`.
pub fn sal_to_pb(s: &sal::Model, today: NaiveDate) -> pb::SalEntry {
    let late = lateness(&sal_facts(s), today);
    pb::SalEntry {
        number: s.number,
        date: iso_day(s.date),
        progress_basis_points: s.progress_basis_points,
        amount: money(s.amount_cents),
        certificate_due_date: iso_day(s.certificate_due_date),
        certificate_issued_date: day(s.certificate_issued_date),
        certificate_amount: s.certificate_amount_cents.and_then(money),
        certificate_late: late.certificate_late,
        payment_due_date: day(s.payment_due_date),
        paid_date: day(s.paid_date),
        paid_amount: s.paid_amount_cents.and_then(money),
        payment_late: late.payment_late,
    }
}

/// A stored work as the contract shows it, judged on `today`.
pub fn project_to_pb(v: ProjectView, today: NaiveDate) -> pb::Project {
    let p = v.project;
    let progress_basis_points = v.sal.last().map_or(0, |s| s.progress_basis_points);
    let paid = v.sal.iter().fold(0i64, |acc, s| {
        acc.saturating_add(s.paid_amount_cents.unwrap_or(0))
    });
    let has_address = !p.street.is_empty() || !p.postal_code.is_empty();
    pb::Project {
        id: p.id,
        cup: p.cup,
        cigs: v.cigs,
        title: p.title,
        description: p.description,
        category: p.category,
        state: p.state,
        incompiuta: p.incompiuta,
        incompiuta_note: p.incompiuta_note,
        programme: Some(pb::ProjectProgramme {
            first_year: p.programme_first_year,
            last_year: p.programme_last_year,
            in_annual_list: p.in_annual_list,
            cui: p.cui,
        }),
        design_level: p.design_level,
        budget: money(p.budget_cents),
        funding: v
            .funding
            .into_iter()
            .map(|f| pb::ProjectFunding {
                source: f.source,
                amount: money(f.amount_cents),
                reference: f.reference,
            })
            .collect(),
        contractor: (!p.contractor_vat.is_empty()).then_some(pb::ProjectContractor {
            name: p.contractor_name,
            vat_number: p.contractor_vat,
        }),
        contract_amount: p.contract_amount_cents.and_then(money),
        sal_entries: v.sal.iter().map(|s| sal_to_pb(s, today)).collect(),
        progress_basis_points,
        paid_amount: money(paid),
        address: has_address.then(|| Address {
            street: p.street,
            house_number: p.house_number,
            postal_code: p.postal_code,
            istat_code: p.istat_code.clone(),
            locality: p.locality,
        }),
        geo: p
            .latitude
            .zip(p.longitude)
            .map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
        rup_name: p.rup_name,
        planned_end_date: day(p.planned_end_date),
        history: v
            .history
            .into_iter()
            .map(|h| pb::ProjectStateChange {
                state: h.state,
                date: iso_day(h.date),
                note: h.note,
                recorded_time: Some(time::to_timestamp(h.recorded_at)),
            })
            .collect(),
        external_ref: p.external_ref,
        created_time: Some(time::to_timestamp(p.created_at)),
        updated_time: Some(time::to_timestamp(p.updated_at)),
        istat_code: p.istat_code,
    }
}
