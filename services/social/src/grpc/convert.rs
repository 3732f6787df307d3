//! Conversions from stored rows to protobuf messages.

use patto_proto::common::v1::{Money, Period};
use patto_proto::social::v1 as pb;
use patto_service_kit::time::to_timestamp;

use crate::domain::application::Check;
use crate::store::{
    ApplicationView, IseeView, RankingView, application, checks_of, from_json, scheme, transition,
};

fn money(cents: i64) -> Option<Money> {
    Some(Money { cents })
}

fn day(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A stored JSON list, or empty (logged) when it cannot be read: one bad row must not fail a
/// whole listing.
fn list<T: serde::de::DeserializeOwned + Default>(text: &str, what: &str) -> T {
    from_json(text, what).unwrap_or_else(|e| {
        tracing::error!(error = %e, "stored value unreadable");
        T::default()
    })
}

/// A stored scheme as the contract shows it.
pub fn scheme_to_pb(s: scheme::Model) -> pb::BenefitScheme {
    pb::BenefitScheme {
        accepted_isee_kinds: list(&s.accepted_isee_kinds, "accepted ISEE kinds"),
        required_documents: list(&s.required_documents, "required documents"),
        id: s.id,
        istat_code: s.istat_code,
        code: s.code,
        name: s.name,
        description: s.description,
        kind: s.kind,
        legal_basis: s.legal_basis,
        status: s.status,
        application_period: Some(Period {
            start_date: day(s.period_start),
            end_date: day(s.period_end),
        }),
        isee_threshold: money(s.isee_threshold_cents),
        household_rules: Some(pb::BenefitHouseholdRules {
            min_household_size: s.min_household_size,
            max_household_size: s.max_household_size,
            requires_minor: s.requires_minor,
            requires_disabled_member: s.requires_disabled_member,
            requires_member_aged: s.requires_member_aged,
            requires_residence: s.requires_residence,
            min_residence_months: s.min_residence_months,
        }),
        amount: money(s.amount_cents),
        frequency: s.frequency,
        payment_count: s.payment_count,
        budget: money(s.budget_cents),
        ranking_criterion: s.ranking_criterion,
        payer: s.payer,
        fully_online: s.fully_online,
        updated_time: Some(to_timestamp(s.updated_at)),
    }
}

/// A stored ISEE declaration as the contract shows it.
pub fn isee_to_pb(v: IseeView) -> pb::IseeDeclaration {
    let d = v.decl;
    pb::IseeDeclaration {
        id: d.id,
        fiscal_code: d.fiscal_code,
        dsu_protocol: d.dsu_protocol,
        kind: d.kind,
        isee: money(d.isee_cents),
        ise: money(d.ise_cents),
        isr: money(d.isr_cents),
        isp: money(d.isp_cents),
        equivalence_scale_thousandths: d.scale_thousandths,
        household_size: d.household_size,
        household_members: v
            .members
            .into_iter()
            .map(|m| pb::IseeHouseholdMember {
                fiscal_code: m.fiscal_code,
                birth_date: m.birth_date.map(day).unwrap_or_default(),
                disability: m.disability,
            })
            .collect(),
        dsu_date: day(d.dsu_date),
        valid_from: day(d.valid_from),
        valid_until: day(d.valid_until),
        discrepancies: d.discrepancies,
        source: d.source,
        verified: d.verified,
        registered_time: Some(to_timestamp(d.registered_at)),
    }
}

/// A stored status change as the contract shows it.
pub fn transition_to_pb(t: &transition::Model) -> pb::BenefitApplicationTransition {
    pb::BenefitApplicationTransition {
        from_status: t.from_status,
        to_status: t.to_status,
        time: Some(to_timestamp(t.at)),
        actor_role: t.actor_role,
        actor: t.actor.clone(),
        note: t.note.clone(),
    }
}

fn check_to_pb(c: Check) -> pb::EligibilityCheck {
    pb::EligibilityCheck {
        criterion: c.criterion,
        passed: c.passed,
        detail: c.detail,
    }
}

fn checks(a: &application::Model) -> Vec<pb::EligibilityCheck> {
    checks_of(a)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "stored checks unreadable");
            Vec::new()
        })
        .into_iter()
        .map(check_to_pb)
        .collect()
}

/// A stored application, with its documents, payments and history, as the contract shows it.
pub fn application_to_pb(v: ApplicationView) -> pb::BenefitApplication {
    let checks = checks(&v.app);
    let a = v.app;
    pb::BenefitApplication {
        id: a.id,
        istat_code: a.istat_code,
        scheme_id: a.scheme_id,
        status: a.status,
        applicant_fiscal_code: a.applicant_fiscal_code,
        beneficiary_fiscal_code: a.beneficiary_fiscal_code,
        isee_declaration_id: a.isee_declaration_id,
        isee: a.isee_cents.and_then(money),
        iban: a.iban,
        contact: a.contact,
        statement: a.statement,
        attachments: v
            .attachments
            .into_iter()
            .map(|f| pb::BenefitAttachment {
                id: f.id,
                name: f.name,
                sha256: f.sha256,
                size_bytes: f.size_bytes,
                media_type: f.media_type,
                document_type: f.document_type,
                uploaded_time: Some(to_timestamp(f.uploaded_at)),
            })
            .collect(),
        protocol_number: a.protocol_number.unwrap_or_default(),
        submitted_time: a.submitted_at.map(to_timestamp),
        caseworker: a.caseworker,
        integration_request_note: a.integration_request_note,
        checks,
        score: a.score,
        rank: a.rank,
        funded: a.funded,
        decision_motivation: a.decision_motivation,
        decision_act: a.decision_act,
        decision_time: a.decided_at.map(to_timestamp),
        granted_amount: money(a.granted_amount_cents),
        payments: v
            .payments
            .into_iter()
            .map(|p| pb::BenefitPayment {
                number: p.number,
                due_date: day(p.due_date),
                amount: money(p.amount_cents),
                status: p.status,
                paid_date: p.paid_date.map(day).unwrap_or_default(),
                payment_reference: p.payment_reference,
                note: p.note,
            })
            .collect(),
        history: v.history.iter().map(transition_to_pb).collect(),
        created_time: Some(to_timestamp(a.created_at)),
        updated_time: Some(to_timestamp(a.updated_at)),
    }
}

/// A ranking as the contract shows it. `named` is false for the public view: places carry the
/// protocol number and score only, no application id and no ISEE value.
pub fn ranking_to_pb(v: RankingView, named: bool) -> pb::BenefitRanking {
    let Some(r) = v.ranking else {
        return pb::BenefitRanking {
            scheme_id: v.scheme.id,
            status: pb::BenefitRankingStatus::Unspecified as i32,
            criterion: v.scheme.ranking_criterion,
            budget: money(v.scheme.budget_cents),
            ..Default::default()
        };
    };
    pb::BenefitRanking {
        scheme_id: r.scheme_id,
        status: r.status,
        criterion: r.criterion,
        entries: v
            .entries
            .into_iter()
            .map(|e| pb::BenefitRankingEntry {
                position: e.position,
                application_id: if named {
                    e.application_id
                } else {
                    String::new()
                },
                protocol_number: e.protocol_number,
                score: e.score,
                isee: if named {
                    e.isee_cents.and_then(money)
                } else {
                    None
                },
                funded: e.funded,
                amount: money(e.amount_cents),
            })
            .collect(),
        budget: money(r.budget_cents),
        funded_amount: money(r.funded_cents),
        computed_time: Some(to_timestamp(r.computed_at)),
        approval_act: r.approval_act,
        approved_time: r.approved_at.map(to_timestamp),
    }
}
