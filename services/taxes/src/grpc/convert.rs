//! Stored rows → protobuf messages. Statuses that depend on the clock are shown as they read now.

use chrono::{DateTime, Utc};
use patto_proto::common::v1::{Address, Money};
use patto_proto::taxes::v1 as pb;
use patto_service_kit::time::to_timestamp;
use prost::Message;

use crate::domain::debt;
use crate::store::{
    DebtRecord, PositionRecord, TransferJson, imu_declaration, payment_option, tari_registration,
};

fn money(cents: i64) -> Option<Money> {
    Some(Money { cents })
}

fn day(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// A stored declaration.
pub fn declaration_to_pb(d: &imu_declaration::Model) -> pb::ImuDeclaration {
    pb::ImuDeclaration {
        id: d.id.clone(),
        fiscal_code: d.fiscal_code.clone(),
        istat_code: d.istat_code.clone(),
        year: d.year,
        cadastral_unit_id: d.cadastral_unit_id.clone(),
        asset_kind: d.asset_kind,
        main_residence: d.main_residence,
        main_residence_unit_id: d.main_residence_unit_id.clone(),
        base_reduction: d.base_reduction,
        reduction_start_date: day(d.reduction_start_date),
        reduction_end_date: day(d.reduction_end_date),
        canone_concordato: d.canone_concordato,
        building_land_value: money(d.building_land_value_cents),
        exemption_reason: d.exemption_reason.clone(),
        start_date: d.start_date.to_string(),
        end_date: day(d.end_date),
        protocol_number: d.protocol_number.clone(),
        submitted_time: Some(to_timestamp(d.submitted_at)),
    }
}

/// A stored registration.
pub fn registration_to_pb(r: &tari_registration::Model) -> pb::TariRegistration {
    pb::TariRegistration {
        id: r.id.clone(),
        istat_code: r.istat_code.clone(),
        holder_fiscal_code: r.holder_fiscal_code.clone(),
        kind: r.kind,
        address: Some(Address {
            street: r.street.clone(),
            house_number: r.house_number.clone(),
            postal_code: r.postal_code.clone(),
            istat_code: r.istat_code.clone(),
            locality: r.locality.clone(),
        }),
        cadastral_unit_id: r.cadastral_unit_id.clone(),
        surface_sqm: r.surface_sqm,
        household_size: r.household_size,
        resident: r.resident,
        non_domestic_category: r.non_domestic_category,
        ateco_code: r.ateco_code.clone(),
        reduction_codes: serde_json::from_str(&r.reduction_codes_json).unwrap_or_default(),
        start_date: r.start_date.to_string(),
        end_date: day(r.end_date),
        declaration_protocol_number: r.declaration_protocol_number.clone(),
        updated_time: Some(to_timestamp(r.updated_at)),
    }
}

/// A payment option with its transfers and receipt.
pub fn option_to_pb(o: &payment_option::Model) -> pb::DebtPaymentOption {
    let transfers: Vec<TransferJson> = serde_json::from_str(&o.transfers_json).unwrap_or_default();
    pb::DebtPaymentOption {
        iuv: o.iuv.clone(),
        nav: o.nav.clone(),
        amount: money(o.amount_cents),
        due_date: o.due_date.to_string(),
        instalment: o.instalment,
        instalment_number: o.instalment_number,
        description: o.description.clone(),
        status: o.status,
        qr_payload: o.qr_payload.clone(),
        transfers: transfers.into_iter().map(Into::into).collect(),
        receipt: (!o.receipt_id.is_empty()).then(|| pb::DebtPaymentReceipt {
            receipt_id: o.receipt_id.clone(),
            psp_id: o.psp_id.clone(),
            psp_name: o.psp_name.clone(),
            amount: money(o.receipt_amount_cents),
            payment_time: o.payment_at.map(to_timestamp),
            recorded_time: o.recorded_at.map(to_timestamp),
        }),
    }
}

/// The status a debt position reads as at `now`.
pub fn debt_status(r: &DebtRecord, now: DateTime<Utc>) -> pb::DebtPositionStatus {
    let p = &r.position;
    debt::effective_status(
        pb::DebtPositionStatus::try_from(p.status).unwrap_or(pb::DebtPositionStatus::Unspecified),
        p.validity_at,
        p.expires_at,
        now,
    )
}

/// A debt position with its options.
pub fn debt_to_pb(r: &DebtRecord, now: DateTime<Utc>) -> pb::DebtPosition {
    let p = &r.position;
    pb::DebtPosition {
        iupd: p.iupd.clone(),
        istat_code: p.istat_code.clone(),
        creditor_fiscal_code: p.creditor_fiscal_code.clone(),
        debtor_fiscal_code: p.debtor_fiscal_code.clone(),
        debtor_name: p.debtor_name.clone(),
        tax_position_id: p.tax_position_id.clone(),
        tribute: p.tribute,
        year: p.year,
        description: p.description.clone(),
        status: debt_status(r, now) as i32,
        validity_time: Some(to_timestamp(p.validity_at)),
        published_time: p.published_at.map(to_timestamp),
        paid_time: p.paid_at.map(to_timestamp),
        invalidation_reason: p.invalidation_reason.clone(),
        payment_options: r.options.iter().map(option_to_pb).collect(),
        created_time: Some(to_timestamp(p.created_at)),
        updated_time: Some(to_timestamp(p.updated_at)),
    }
}

/// A tax position with its computation and debt positions.
pub fn position_to_pb(r: &PositionRecord, now: DateTime<Utc>) -> pb::TaxPosition {
    let p = &r.position;
    let status = if p.status == pb::TaxPositionStatus::Cancelled as i32 {
        pb::TaxPositionStatus::Cancelled
    } else {
        debt::tax_position_status(
            p.amount_due_cents,
            p.amount_paid_cents,
            false,
            p.last_due_date,
            now.date_naive(),
        )
    };
    let assessment = if p.assessment.is_empty() {
        None
    } else if p.tribute == pb::Tribute::Tari as i32 {
        pb::TariAssessment::decode(p.assessment.as_slice())
            .ok()
            .map(pb::tax_position::Assessment::Tari)
    } else {
        pb::ImuAssessment::decode(p.assessment.as_slice())
            .ok()
            .map(pb::tax_position::Assessment::Imu)
    };
    pb::TaxPosition {
        id: p.id.clone(),
        fiscal_code: p.fiscal_code.clone(),
        istat_code: p.istat_code.clone(),
        tribute: p.tribute,
        year: p.year,
        status: status as i32,
        amount_due: money(p.amount_due_cents),
        amount_paid: money(p.amount_paid_cents),
        assessment,
        debt_positions: r.debts.iter().map(|d| debt_to_pb(d, now)).collect(),
        imported: p.imported,
        updated_time: Some(to_timestamp(p.updated_at)),
    }
}
