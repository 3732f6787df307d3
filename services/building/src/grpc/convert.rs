//! Stored rows → protobuf messages.

use patto_proto::building::v1 as pb;
use patto_proto::common::v1::{Address, GeoPoint, Money};
use patto_service_kit::time::to_timestamp;

use crate::store::{self, PermitRecord, UnitRecord, attachment, ownership, transition};

fn day(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn money(cents: i64) -> Option<Money> {
    Some(Money { cents })
}

/// A holder's right.
pub fn ownership_to_pb(o: &ownership::Model) -> pb::CadastralOwnership {
    pb::CadastralOwnership {
        fiscal_code: o.fiscal_code.clone(),
        name: o.name.clone(),
        right: o.right_kind,
        share_numerator: o.share_numerator,
        share_denominator: o.share_denominator,
        start_date: o.start_date.to_string(),
        end_date: day(o.end_date),
    }
}

/// A unit with its holders.
pub fn unit_to_pb(r: &UnitRecord) -> pb::CadastralUnit {
    let u = &r.unit;
    pb::CadastralUnit {
        id: u.id.clone(),
        istat_code: u.istat_code.clone(),
        belfiore_code: u.belfiore_code.clone(),
        register: u.register,
        sezione: u.sezione.clone(),
        foglio: u.foglio.clone(),
        particella: u.particella.clone(),
        subalterno: u.subalterno.clone(),
        categoria: u.categoria.clone(),
        classe: u.classe.clone(),
        consistenza: u.consistenza,
        consistenza_unit: u.consistenza_unit,
        rendita: money(u.rendita_cents),
        qualita: u.qualita.clone(),
        reddito_dominicale: money(u.reddito_dominicale_cents),
        reddito_agrario: money(u.reddito_agrario_cents),
        surface_sqm: u.surface_sqm,
        surface_excluding_uncovered_sqm: u.surface_excluding_uncovered_sqm,
        address: Some(Address {
            street: u.street.clone(),
            house_number: u.house_number.clone(),
            postal_code: u.postal_code.clone(),
            istat_code: u.istat_code.clone(),
            locality: u.locality.clone(),
        }),
        floor: u.floor.clone(),
        internal_number: u.internal_number.clone(),
        geo: match (u.latitude, u.longitude) {
            (Some(latitude), Some(longitude)) => Some(GeoPoint {
                latitude,
                longitude,
            }),
            _ => None,
        },
        heritage_listed: u.heritage_listed,
        owners: r.owners.iter().map(ownership_to_pb).collect(),
        start_date: day(u.start_date),
        end_date: day(u.end_date),
        updated_time: Some(to_timestamp(u.updated_at)),
    }
}

/// A permit's document.
pub fn attachment_to_pb(a: &attachment::Model) -> pb::BuildingPermitAttachment {
    pb::BuildingPermitAttachment {
        id: a.id.clone(),
        name: a.name.clone(),
        sha256: a.sha256.clone(),
        size_bytes: a.size_bytes,
        media_type: a.media_type.clone(),
        document_type: a.document_type.clone(),
        integration_round: a.integration_round,
        uploaded_time: Some(to_timestamp(a.uploaded_at)),
    }
}

/// A status change.
pub fn transition_to_pb(t: &transition::Model) -> pb::BuildingPermitTransition {
    pb::BuildingPermitTransition {
        from_status: t.from_status,
        to_status: t.to_status,
        time: Some(to_timestamp(t.at)),
        actor_role: t.actor_role,
        actor: t.actor.clone(),
        protocol_number: t.protocol_number.clone(),
        note: t.note.clone(),
    }
}

/// A permit with its documents, deadlines and history.
pub fn permit_to_pb(r: &PermitRecord) -> pb::BuildingPermit {
    let p = &r.permit;
    let facts = store::facts(p);
    pb::BuildingPermit {
        id: p.id.clone(),
        istat_code: p.istat_code.clone(),
        kind: p.kind,
        status: p.status,
        applicant_fiscal_code: p.applicant_fiscal_code.clone(),
        designer_fiscal_code: p.designer_fiscal_code.clone(),
        designer_registration: p.designer_registration.clone(),
        subject: p.subject.clone(),
        description: p.description.clone(),
        intervention_category: p.intervention_category,
        address: Some(Address {
            street: p.street.clone(),
            house_number: p.house_number.clone(),
            postal_code: p.postal_code.clone(),
            istat_code: p.istat_code.clone(),
            locality: p.locality.clone(),
        }),
        parcels: store::parcels(p)
            .into_iter()
            .map(|x| pb::BuildingPermitParcel {
                cadastral_unit_id: x.cadastral_unit_id,
                register: x.register,
                sezione: x.sezione,
                foglio: x.foglio,
                particella: x.particella,
                subalterno: x.subalterno,
            })
            .collect(),
        constraints: store::constraints(p),
        silenzio_assenso_excluded: facts.silenzio_assenso_excluded(),
        protocol_number: p.protocol_number.clone(),
        submitted_time: p.submitted_at.map(to_timestamp),
        terms_doubled: p.terms_doubled,
        responsible_officer: p.responsible_officer.clone(),
        integration_requests: p.integration_requests,
        integration_request_note: p.integration_request_note.clone(),
        proposal_outcome: p.proposal_outcome,
        proposal_motivation: p.proposal_motivation.clone(),
        observations: p.observations.clone(),
        decision_motivation: p.decision_motivation.clone(),
        decision_protocol_number: p.decision_protocol_number.clone(),
        decision_time: p.decision_at.map(to_timestamp),
        silenzio_assenso_attestation: p.silenzio_assenso_attestation.clone(),
        construction_contribution: money(p.construction_contribution_cents),
        secretariat_fees: money(p.secretariat_fees_cents),
        works_start_date: day(p.works_start_date),
        works_end_date: day(p.works_end_date),
        contractor_fiscal_code: p.contractor_fiscal_code.clone(),
        works_director_fiscal_code: p.works_director_fiscal_code.clone(),
        agibility_protocol_number: p.agibility_protocol_number.clone(),
        deadlines: Some(facts.deadlines.to_pb()),
        attachments: r.attachments.iter().map(attachment_to_pb).collect(),
        history: r.history.iter().map(transition_to_pb).collect(),
        created_time: Some(to_timestamp(p.created_at)),
        updated_time: Some(to_timestamp(p.updated_at)),
    }
}
