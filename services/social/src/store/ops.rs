//! The writes of the social service, each a function over one connection: the [`super::Store`]
//! runs every one in a transaction of its own, the demo data runs many in one. Each takes a `guard`
//! that authorises the change against the stored record before anything is written.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use patto_proto::social::v1 as pb;
use patto_proto::social::v1::BenefitApplicationStatus as Status;
use patto_proto::social::v1::BenefitPaymentStatus as PaymentStatus;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::indicators;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr,
};

use super::{
    Actor, ApplicationView, ImportRow, IseeView, RankingView, RowConflict, application, attachment,
    from_json, isee_declaration, isee_member, isee_views, payment, protocol_counter, ranking,
    ranking_entry, rules_of, scheme, to_json, transition, views,
};
use crate::domain::application::{DraftContent, NewAttachment};
use crate::domain::isee::{self, Declaration};
use crate::domain::payments::{self, PaymentOutcome};
use crate::domain::ranking::{Candidate, rank};
use crate::domain::scheme::{self as scheme_rules, NewScheme, SchemeRules};
use crate::domain::workflow::{self, Action, status_name};
use crate::domain::{self, italian_day};

/// Rows per multi-row INSERT: far below the bind-parameter limits of SQLite and PostgreSQL.
const INSERT_CHUNK: usize = 400;

fn unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn status_of(a: &application::Model) -> Status {
    Status::try_from(a.status).unwrap_or(Status::Unspecified)
}

/// The rules kept with a submitted application.
fn snapshot(a: &application::Model) -> Result<SchemeRules, ServiceError> {
    if a.rules.is_empty() {
        return Err(ServiceError::Internal(format!(
            "application {} has no rules kept from its submission",
            a.id
        )));
    }
    from_json(&a.rules, "application rules")
}

pub(crate) async fn load_app(
    c: &impl ConnectionTrait,
    id: &str,
) -> Result<application::Model, ServiceError> {
    application::Entity::find_by_id(id)
        .one(c)
        .await?
        .ok_or_else(|| ServiceError::not_found("benefit application", id))
}

/// The scheme with this id; `lock` takes its row lock on PostgreSQL (SQLite has one writer), so
/// budget and ranking decisions on one scheme happen one at a time.
pub(crate) async fn load_scheme(
    c: &impl ConnectionTrait,
    id: &str,
    lock: bool,
) -> Result<scheme::Model, ServiceError> {
    let mut q = scheme::Entity::find_by_id(id);
    if lock {
        q = q.lock_exclusive();
    }
    q.one(c)
        .await?
        .ok_or_else(|| ServiceError::not_found("benefit scheme", id))
}

async fn load_view(c: &impl ConnectionTrait, id: &str) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    views(c, vec![app])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::not_found("benefit application", id))
}

async fn load_isee(c: &impl ConnectionTrait, id: &str) -> Result<Option<IseeView>, DbErr> {
    let rows = isee_declaration::Entity::find_by_id(id).all(c).await?;
    Ok(isee_views(c, rows).await?.pop())
}

#[allow(clippy::too_many_arguments)]
async fn insert_transition(
    c: &impl ConnectionTrait,
    app_id: &str,
    from: Status,
    to: Status,
    actor: &Actor,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    transition::ActiveModel {
        application_id: Set(app_id.to_owned()),
        from_status: Set(from as i32),
        to_status: Set(to as i32),
        at: Set(now),
        actor_role: Set(actor.role as i32),
        actor: Set(actor.id.clone()),
        note: Set(note.to_owned()),
        ..Default::default()
    }
    .insert(c)
    .await
    .map(|_| ())
}

/// The actor as recorded: a citizen-side change by a caller with no identity is the applicant's
/// (a safeguard: the access rule lets no anonymous caller change anything).
fn actor_of(actor: &Actor, app: &application::Model) -> Actor {
    if actor.role == pb::BenefitActorRole::Citizen && actor.id.is_empty() {
        Actor {
            role: actor.role,
            id: app.applicant_fiscal_code.clone(),
        }
    } else {
        actor.clone()
    }
}

/// Moves `app` by `action`, writing `edit` in the same conditional update, and appends the change
/// to the history. Fails when the status is not one `action` is allowed from, or when another
/// request moved the application since it was read.
async fn move_app(
    c: &impl ConnectionTrait,
    app: &application::Model,
    action: Action,
    actor: &Actor,
    note: &str,
    now: DateTime<Utc>,
    mut edit: application::ActiveModel,
) -> Result<application::Model, ServiceError> {
    let from = status_of(app);
    let to = workflow::transition(&app.id, from, action)?;
    edit.status = Set(to as i32);
    edit.updated_at = Set(now);
    let updated = application::Entity::update_many()
        .set(edit)
        .filter(application::Column::Id.eq(app.id.as_str()))
        .filter(application::Column::Status.eq(from as i32))
        .exec(c)
        .await?;
    if updated.rows_affected == 0 {
        return Err(ServiceError::FailedPrecondition(format!(
            "application {} changed while this request was handled; reload it and retry",
            app.id
        )));
    }
    insert_transition(c, &app.id, from, to, &actor_of(actor, app), note, now).await?;
    load_app(c, &app.id).await
}

/// The next protocol number of a comune and year, e.g. `SOC-082053-2025-000042`. The counter row
/// is created on first use and incremented by an UPDATE, whose row lock serialises concurrent
/// submissions in one comune on PostgreSQL.
async fn next_protocol(
    c: &impl ConnectionTrait,
    istat_code: &str,
    year: i32,
) -> Result<String, ServiceError> {
    protocol_counter::Entity::insert(protocol_counter::ActiveModel {
        istat_code: Set(istat_code.to_owned()),
        year: Set(year),
        last_number: Set(0),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(c)
    .await?;
    protocol_counter::Entity::update_many()
        .col_expr(
            protocol_counter::Column::LastNumber,
            Expr::col(protocol_counter::Column::LastNumber).add(1),
        )
        .filter(protocol_counter::Column::IstatCode.eq(istat_code))
        .filter(protocol_counter::Column::Year.eq(year))
        .exec(c)
        .await?;
    let counter = protocol_counter::Entity::find_by_id((istat_code.to_owned(), year))
        .one(c)
        .await?
        .ok_or_else(|| ServiceError::Internal("protocol counter missing".into()))?;
    Ok(format!(
        "SOC-{istat_code}-{year}-{:06}",
        counter.last_number
    ))
}

// ----- schemes -----

fn scheme_model(
    s: NewScheme,
    id: String,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> scheme::ActiveModel {
    scheme::ActiveModel {
        id: Set(id),
        istat_code: Set(s.istat_code),
        code: Set(s.code),
        name: Set(s.name),
        description: Set(s.description),
        kind: Set(s.kind),
        legal_basis: Set(s.legal_basis),
        status: Set(s.status),
        period_start: Set(s.period_start),
        period_end: Set(s.period_end),
        isee_threshold_cents: Set(s.rules.isee_threshold_cents),
        accepted_isee_kinds: Set(to_json(&s.rules.accepted_isee_kinds)),
        min_household_size: Set(s.rules.min_household_size),
        max_household_size: Set(s.rules.max_household_size),
        requires_minor: Set(s.rules.requires_minor),
        requires_disabled_member: Set(s.rules.requires_disabled_member),
        requires_member_aged: Set(s.rules.requires_member_aged),
        requires_residence: Set(s.rules.requires_residence),
        min_residence_months: Set(s.rules.min_residence_months),
        amount_cents: Set(s.rules.amount_cents),
        frequency: Set(s.rules.frequency),
        payment_count: Set(s.rules.payment_count),
        budget_cents: Set(s.budget_cents),
        ranking_criterion: Set(s.rules.ranking_criterion),
        required_documents: Set(to_json(&s.rules.required_documents)),
        payer: Set(s.payer),
        fully_online: Set(s.fully_online),
        created_at: Set(created),
        updated_at: Set(now),
    }
}

fn duplicate_code(istat_code: &str, code: &str) -> ServiceError {
    ServiceError::AlreadyExists(format!(
        "comune {istat_code} already has a benefit scheme with code {code}"
    ))
}

pub(crate) async fn create_scheme(
    c: &impl ConnectionTrait,
    s: NewScheme,
    id: String,
    now: DateTime<Utc>,
) -> Result<scheme::Model, ServiceError> {
    let (istat, code) = (s.istat_code.clone(), s.code.clone());
    let taken = scheme::Entity::find()
        .filter(scheme::Column::IstatCode.eq(istat.as_str()))
        .filter(scheme::Column::Code.eq(code.as_str()))
        .one(c)
        .await?;
    if taken.is_some() {
        return Err(duplicate_code(&istat, &code));
    }
    match scheme_model(s, id, now, now).insert(c).await {
        Ok(m) => Ok(m),
        Err(e) if unique_violation(&e) => Err(duplicate_code(&istat, &code)),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn update_scheme(
    c: &impl ConnectionTrait,
    id: &str,
    s: NewScheme,
    now: DateTime<Utc>,
    guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
) -> Result<scheme::Model, ServiceError> {
    let current = load_scheme(c, id, true).await?;
    guard(&current)?;
    if s.istat_code != current.istat_code {
        return Err(ServiceError::invalid(
            "scheme.istat_code",
            format!(
                "cannot change: the scheme belongs to comune {}",
                current.istat_code
            ),
        ));
    }
    let status = if s.status == 0 {
        current.status
    } else {
        s.status
    };
    scheme_rules::scheme_status_change(id, current.status, status)?;
    let (istat, code) = (s.istat_code.clone(), s.code.clone());
    if code != current.code {
        let taken = scheme::Entity::find()
            .filter(scheme::Column::IstatCode.eq(istat.as_str()))
            .filter(scheme::Column::Code.eq(code.as_str()))
            .one(c)
            .await?;
        if taken.is_some() {
            return Err(duplicate_code(&istat, &code));
        }
    }
    let mut model = scheme_model(s, id.to_owned(), current.created_at, now);
    model.status = Set(status);
    match model.update(c).await {
        Ok(m) => Ok(m),
        Err(e) if unique_violation(&e) => Err(duplicate_code(&istat, &code)),
        Err(e) => Err(e.into()),
    }
}

// ----- ISEE declarations -----

fn declaration_model(
    d: &Declaration,
    id: String,
    source: pb::IseeSource,
    holder: &str,
    now: DateTime<Utc>,
) -> isee_declaration::ActiveModel {
    isee_declaration::ActiveModel {
        id: Set(id),
        fiscal_code: Set(d.fiscal_code.clone()),
        dsu_protocol: Set(d.dsu_protocol.clone()),
        kind: Set(d.kind as i32),
        isee_cents: Set(d.isee_cents),
        ise_cents: Set(d.ise_cents),
        isr_cents: Set(d.isr_cents),
        isp_cents: Set(d.isp_cents),
        scale_thousandths: Set(d.scale_thousandths),
        household_size: Set(d.household_size),
        dsu_date: Set(d.dsu_date),
        valid_from: Set(d.valid_from),
        valid_until: Set(d.valid_until),
        discrepancies: Set(d.discrepancies),
        source: Set(source as i32),
        // Only data that came from INPS counts as verified; nothing else is checked against it.
        verified: Set(source == pb::IseeSource::Inps),
        holder_istat_code: Set(holder.to_owned()),
        registered_at: Set(now),
    }
}

fn member_models(d: &Declaration, id: &str) -> Vec<isee_member::ActiveModel> {
    d.members
        .iter()
        .enumerate()
        .map(|(i, m)| isee_member::ActiveModel {
            declaration_id: Set(id.to_owned()),
            position: Set(i32::try_from(i + 1).unwrap_or(i32::MAX)),
            fiscal_code: Set(m.fiscal_code.clone()),
            birth_date: Set(m.birth_date),
            disability: Set(m.disability),
        })
        .collect()
}

async fn insert_members(
    c: &impl ConnectionTrait,
    members: Vec<isee_member::ActiveModel>,
) -> Result<(), DbErr> {
    let mut members = members.into_iter().peekable();
    while members.peek().is_some() {
        let chunk: Vec<_> = members.by_ref().take(INSERT_CHUNK).collect();
        isee_member::Entity::insert_many(chunk)
            .exec_without_returning(c)
            .await?;
    }
    Ok(())
}

pub(crate) async fn register_isee(
    c: &impl ConnectionTrait,
    d: Declaration,
    id: String,
    source: pb::IseeSource,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<IseeView, ServiceError> {
    let existing = isee_declaration::Entity::find()
        .filter(isee_declaration::Column::DsuProtocol.eq(d.dsu_protocol.as_str()))
        .one(c)
        .await?;
    if let Some(e) = existing {
        return Err(ServiceError::AlreadyExists(format!(
            "DSU protocol {} is already registered as ISEE declaration {}",
            d.dsu_protocol, e.id
        )));
    }
    let model = match declaration_model(&d, id.clone(), source, holder, now)
        .insert(c)
        .await
    {
        Ok(m) => m,
        Err(e) if unique_violation(&e) => {
            return Err(ServiceError::AlreadyExists(format!(
                "DSU protocol {} is already registered",
                d.dsu_protocol
            )));
        }
        Err(e) => return Err(e.into()),
    };
    insert_members(c, member_models(&d, &id)).await?;
    isee_views(c, vec![model])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::not_found("ISEE declaration", id))
}

pub(crate) async fn import_isee(
    c: &impl ConnectionTrait,
    rows: Vec<ImportRow>,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<Result<usize, Vec<RowConflict>>, ServiceError> {
    let protocols: Vec<String> = rows
        .iter()
        .map(|r| r.declaration.dsu_protocol.clone())
        .collect();
    let mut existing: HashMap<String, (String, String)> = HashMap::new();
    for chunk in protocols.chunks(INSERT_CHUNK) {
        let found: Vec<(String, String, String)> = isee_declaration::Entity::find()
            .select_only()
            .column(isee_declaration::Column::DsuProtocol)
            .column(isee_declaration::Column::Id)
            .column(isee_declaration::Column::FiscalCode)
            .filter(isee_declaration::Column::DsuProtocol.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(c)
            .await?;
        for (protocol, id, fiscal_code) in found {
            existing.insert(protocol, (id, fiscal_code));
        }
    }
    let conflicts: Vec<RowConflict> = rows
        .iter()
        .filter(|r| {
            existing
                .get(&r.declaration.dsu_protocol)
                .is_some_and(|(_, cf)| *cf != r.declaration.fiscal_code)
        })
        .map(|r| RowConflict {
            row: r.row,
            field: "declaration.dsu_protocol".into(),
            description: "is already registered for another declarant; check the protocol".into(),
        })
        .collect();
    if !conflicts.is_empty() {
        return Ok(Err(conflicts));
    }
    // A replaced declaration keeps its id, so the applications relying on it still point at it.
    let replaced: Vec<String> = existing.values().map(|(id, _)| id.clone()).collect();
    for chunk in replaced.chunks(INSERT_CHUNK) {
        isee_member::Entity::delete_many()
            .filter(isee_member::Column::DeclarationId.is_in(chunk.iter().cloned()))
            .exec(c)
            .await?;
        isee_declaration::Entity::delete_many()
            .filter(isee_declaration::Column::Id.is_in(chunk.iter().cloned()))
            .exec(c)
            .await?;
    }
    let count = rows.len();
    let mut decls = Vec::with_capacity(INSERT_CHUNK);
    let mut members = Vec::new();
    for r in rows {
        let id = existing
            .get(&r.declaration.dsu_protocol)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        members.extend(member_models(&r.declaration, &id));
        decls.push(declaration_model(&r.declaration, id, r.source, holder, now));
        if decls.len() == INSERT_CHUNK {
            isee_declaration::Entity::insert_many(std::mem::take(&mut decls))
                .exec_without_returning(c)
                .await?;
        }
    }
    if !decls.is_empty() {
        isee_declaration::Entity::insert_many(decls)
            .exec_without_returning(c)
            .await?;
    }
    insert_members(c, members).await?;
    Ok(Ok(count))
}

// ----- applications -----

fn attachment_models(
    app_id: &str,
    list: Vec<NewAttachment>,
    now: DateTime<Utc>,
) -> Vec<attachment::ActiveModel> {
    list.into_iter()
        .map(|a| attachment::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            application_id: Set(app_id.to_owned()),
            name: Set(a.name),
            sha256: Set(a.sha256),
            size_bytes: Set(a.size_bytes),
            media_type: Set(a.media_type),
            document_type: Set(a.document_type),
            uploaded_at: Set(now),
        })
        .collect()
}

async fn insert_attachments(
    c: &impl ConnectionTrait,
    app_id: &str,
    list: Vec<NewAttachment>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let models = attachment_models(app_id, list, now);
    if !models.is_empty() {
        attachment::Entity::insert_many(models)
            .exec_without_returning(c)
            .await?;
    }
    Ok(())
}

/// Checks that the ISEE declaration a draft names exists and concerns its applicant or beneficiary.
async fn check_isee_link(
    c: &impl ConnectionTrait,
    content: &DraftContent,
    field: &str,
) -> Result<(), ServiceError> {
    if content.isee_declaration_id.is_empty() {
        return Ok(());
    }
    let Some(view) = load_isee(c, &content.isee_declaration_id).await? else {
        return Err(ServiceError::invalid(
            field,
            format!(
                "no ISEE declaration has id `{}`; register it first",
                content.isee_declaration_id
            ),
        ));
    };
    let d = view.declaration();
    if content.subjects().iter().any(|s| d.concerns(s)) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            "the ISEE declaration does not concern the applicant's or the beneficiary's household",
        ))
    }
}

fn already_applying(scheme_id: &str) -> ServiceError {
    ServiceError::AlreadyExists(format!(
        "this applicant already has an application in progress for scheme {scheme_id} (for this beneficiary); withdraw it to start another"
    ))
}

async fn live_duplicate(
    c: &impl ConnectionTrait,
    content: &DraftContent,
    except: Option<&str>,
) -> Result<bool, DbErr> {
    let mut q = application::Entity::find()
        .filter(application::Column::SchemeId.eq(content.scheme_id.as_str()))
        .filter(application::Column::ApplicantFiscalCode.eq(content.applicant.as_str()))
        .filter(application::Column::BeneficiaryFiscalCode.eq(content.beneficiary.as_str()))
        .filter(
            application::Column::Status
                .is_not_in(workflow::REAPPLY_AFTER.iter().map(|s| *s as i32)),
        );
    if let Some(id) = except {
        q = q.filter(application::Column::Id.ne(id));
    }
    Ok(q.one(c).await?.is_some())
}

pub(crate) async fn create_draft(
    c: &impl ConnectionTrait,
    content: DraftContent,
    id: String,
    actor: &Actor,
    now: DateTime<Utc>,
    guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let scheme = match load_scheme(c, &content.scheme_id, false).await {
        Ok(s) => s,
        Err(ServiceError::NotFound { .. }) => {
            return Err(ServiceError::invalid(
                "draft.scheme_id",
                format!(
                    "no benefit scheme has id `{}`; list them with ListBenefitSchemes",
                    content.scheme_id
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    guard(&scheme)?;
    if let Some(refusal) = scheme_rules::draft_refusal(&scheme.id, scheme.status) {
        return Err(refusal);
    }
    check_isee_link(c, &content, "draft.isee_declaration_id").await?;
    if live_duplicate(c, &content, None).await? {
        return Err(already_applying(&scheme.id));
    }
    let inserted = application::ActiveModel {
        id: Set(id.clone()),
        istat_code: Set(scheme.istat_code.clone()),
        scheme_id: Set(scheme.id.clone()),
        status: Set(Status::Draft as i32),
        applicant_fiscal_code: Set(content.applicant.clone()),
        beneficiary_fiscal_code: Set(content.beneficiary.clone()),
        isee_declaration_id: Set(content.isee_declaration_id.clone()),
        isee_cents: Set(None),
        iban: Set(content.iban.clone()),
        contact: Set(content.contact.clone()),
        statement: Set(content.statement.clone()),
        protocol_number: Set(None),
        submitted_at: Set(None),
        caseworker: Set(String::new()),
        integration_request_note: Set(String::new()),
        checks: Set("[]".into()),
        score: Set(0),
        rank: Set(0),
        funded: Set(false),
        decision_motivation: Set(String::new()),
        decision_act: Set(String::new()),
        decided_at: Set(None),
        granted_amount_cents: Set(0),
        rules: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(c)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if unique_violation(&e) => return Err(already_applying(&scheme.id)),
        Err(e) => return Err(e.into()),
    }
    insert_attachments(c, &id, content.attachments, now).await?;
    let actor = if actor.role == pb::BenefitActorRole::Citizen && actor.id.is_empty() {
        Actor {
            role: actor.role,
            id: content.applicant.clone(),
        }
    } else {
        actor.clone()
    };
    insert_transition(c, &id, Status::Unspecified, Status::Draft, &actor, "", now).await?;
    load_view(c, &id).await
}

pub(crate) async fn update_draft(
    c: &impl ConnectionTrait,
    id: &str,
    content: DraftContent,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    if status_of(&app) != Status::Draft {
        return Err(ServiceError::FailedPrecondition(format!(
            "application {id} is {}: only a DRAFT can be edited",
            status_name(status_of(&app))
        )));
    }
    let mut v = Violations::new();
    v.check(
        content.scheme_id == app.scheme_id,
        "draft.scheme_id",
        "cannot change: start a new draft to apply for another scheme",
    );
    v.check(
        content.applicant == app.applicant_fiscal_code,
        "draft.applicant_fiscal_code",
        "cannot change: the applicant is who started the draft",
    );
    v.into_result()?;
    check_isee_link(c, &content, "draft.isee_declaration_id").await?;
    if live_duplicate(c, &content, Some(id)).await? {
        return Err(already_applying(&app.scheme_id));
    }
    let updated = application::Entity::update_many()
        .set(application::ActiveModel {
            beneficiary_fiscal_code: Set(content.beneficiary.clone()),
            isee_declaration_id: Set(content.isee_declaration_id.clone()),
            iban: Set(content.iban.clone()),
            contact: Set(content.contact.clone()),
            statement: Set(content.statement.clone()),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(application::Column::Id.eq(id))
        .filter(application::Column::Status.eq(Status::Draft as i32))
        .exec(c)
        .await;
    match updated {
        Ok(r) if r.rows_affected == 0 => {
            return Err(ServiceError::FailedPrecondition(format!(
                "application {id} changed while this request was handled; reload it and retry"
            )));
        }
        Ok(_) => {}
        Err(e) if unique_violation(&e) => return Err(already_applying(&app.scheme_id)),
        Err(e) => return Err(e.into()),
    }
    attachment::Entity::delete_many()
        .filter(attachment::Column::ApplicationId.eq(id))
        .exec(c)
        .await?;
    insert_attachments(c, id, content.attachments, now).await?;
    load_view(c, id).await
}

fn subjects(app: &application::Model) -> Vec<&str> {
    let mut s = vec![app.applicant_fiscal_code.as_str()];
    if !app.beneficiary_fiscal_code.is_empty() {
        s.push(&app.beneficiary_fiscal_code);
    }
    s
}

pub(crate) async fn submit(
    c: &impl ConnectionTrait,
    salt: &str,
    id: &str,
    actor: &Actor,
    online: bool,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    workflow::transition(id, status_of(&app), Action::Submit)?;
    let today = italian_day(now);
    let scheme = load_scheme(c, &app.scheme_id, false).await?;
    if let Some(refusal) = scheme_rules::submission_window_refusal(
        &scheme.id,
        scheme.status,
        scheme.period_start,
        scheme.period_end,
        today,
    ) {
        return Err(refusal);
    }
    let rules = rules_of(&scheme)?;
    let documents: Vec<String> = attachment::Entity::find()
        .select_only()
        .column(attachment::Column::DocumentType)
        .filter(attachment::Column::ApplicationId.eq(id))
        .into_tuple()
        .all(c)
        .await?;
    let documents: Vec<&str> = documents.iter().map(String::as_str).collect();
    // When another body pays (the assegno di maternità is paid by INPS) the IBAN goes to it.
    let paid_by_comune = scheme.payer.is_empty();
    if let Some(refusal) = domain::application::completeness_refusal(
        id,
        &rules,
        paid_by_comune,
        &app.iban,
        &app.contact,
        &documents,
    ) {
        return Err(refusal);
    }
    let decl = if app.isee_declaration_id.is_empty() {
        None
    } else {
        match load_isee(c, &app.isee_declaration_id).await? {
            Some(view) => Some(view.declaration()),
            None => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "application {id} cannot be submitted: ISEE declaration {} no longer exists",
                    app.isee_declaration_id
                )));
            }
        }
    };
    if let Some(refusal) = isee::submission_refusal(
        id,
        &rules,
        decl.as_ref().map(|d| (app.isee_declaration_id.as_str(), d)),
        &subjects(&app),
        today,
    ) {
        return Err(refusal);
    }
    let protocol = next_protocol(c, &app.istat_code, today.year()).await?;
    let moved = move_app(
        c,
        &app,
        Action::Submit,
        actor,
        &format!("protocollo {protocol}"),
        now,
        application::ActiveModel {
            protocol_number: Set(Some(protocol)),
            submitted_at: Set(Some(now)),
            isee_cents: Set(decl.as_ref().map(|d| d.isee_cents)),
            rules: Set(to_json(&rules)),
            ..Default::default()
        },
    )
    .await?;
    if online {
        indicators::record(
            c,
            salt,
            &moved.istat_code,
            &domain::BENEFIT_APPLICATION,
            &moved.applicant_fiscal_code,
            now,
        )
        .await?;
    }
    load_view(c, id).await
}

pub(crate) async fn withdraw(
    c: &impl ConnectionTrait,
    id: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    move_app(
        c,
        &app,
        Action::Withdraw,
        actor,
        reason,
        now,
        Default::default(),
    )
    .await?;
    load_view(c, id).await
}

pub(crate) async fn assign(
    c: &impl ConnectionTrait,
    id: &str,
    caseworker: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    let note = if app.caseworker.is_empty() {
        "presa in carico".to_owned()
    } else {
        format!("riassegnata da {}", app.caseworker)
    };
    move_app(
        c,
        &app,
        Action::Assign,
        actor,
        &note,
        now,
        application::ActiveModel {
            caseworker: Set(caseworker.to_owned()),
            ..Default::default()
        },
    )
    .await?;
    load_view(c, id).await
}

pub(crate) async fn request_integration(
    c: &impl ConnectionTrait,
    id: &str,
    note: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    move_app(
        c,
        &app,
        Action::RequestIntegration,
        actor,
        note,
        now,
        application::ActiveModel {
            integration_request_note: Set(note.to_owned()),
            ..Default::default()
        },
    )
    .await?;
    load_view(c, id).await
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn submit_integration(
    c: &impl ConnectionTrait,
    salt: &str,
    id: &str,
    attachments: Vec<NewAttachment>,
    isee_declaration_id: Option<&str>,
    note: &str,
    actor: &Actor,
    online: bool,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    workflow::transition(id, status_of(&app), Action::SubmitIntegration)?;
    let mut edit = <application::ActiveModel as Default>::default();
    if let Some(decl_id) = isee_declaration_id {
        let Some(view) = load_isee(c, decl_id).await? else {
            return Err(ServiceError::invalid(
                "isee_declaration_id",
                format!("no ISEE declaration has id `{decl_id}`; register it first"),
            ));
        };
        let d = view.declaration();
        // A newer ISEE must pass what the first one had to pass, under the rules of submission.
        if let Some(refusal) = isee::submission_refusal(
            id,
            &snapshot(&app)?,
            Some((decl_id, &d)),
            &subjects(&app),
            italian_day(now),
        ) {
            return Err(refusal);
        }
        edit.isee_declaration_id = Set(decl_id.to_owned());
        edit.isee_cents = Set(Some(d.isee_cents));
    }
    insert_attachments(c, id, attachments, now).await?;
    let moved = move_app(c, &app, Action::SubmitIntegration, actor, note, now, edit).await?;
    if online {
        indicators::record(
            c,
            salt,
            &moved.istat_code,
            &domain::BENEFIT_APPLICATION,
            &moved.applicant_fiscal_code,
            now,
        )
        .await?;
    }
    load_view(c, id).await
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn evaluate(
    c: &impl ConnectionTrait,
    id: &str,
    checks: &[pb::EligibilityCheck],
    score: i32,
    note: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    workflow::transition(id, status_of(&app), Action::Evaluate { admissible: true })?;
    let rules = snapshot(&app)?;
    let decl = if app.isee_declaration_id.is_empty() {
        None
    } else {
        load_isee(c, &app.isee_declaration_id)
            .await?
            .map(|v| v.declaration())
    };
    let submitted_on = italian_day(app.submitted_at.unwrap_or(now));
    let evaluation =
        domain::application::evaluate(&rules, checks, score, decl.as_ref(), submitted_on)
            .map_err(ServiceError::InvalidArgument)?;
    move_app(
        c,
        &app,
        Action::Evaluate {
            admissible: evaluation.admissible,
        },
        actor,
        note,
        now,
        application::ActiveModel {
            checks: Set(to_json(&evaluation.checks)),
            score: Set(evaluation.score),
            ..Default::default()
        },
    )
    .await?;
    load_view(c, id).await
}

/// Cents already committed by a capped, unranked scheme: what its granted and completed benefits
/// were granted, plus what revoked ones had been paid before revocation.
async fn committed_cents(c: &impl ConnectionTrait, scheme_id: &str) -> Result<i64, DbErr> {
    let granted: Vec<i64> = application::Entity::find()
        .select_only()
        .column(application::Column::GrantedAmountCents)
        .filter(application::Column::SchemeId.eq(scheme_id))
        .filter(
            application::Column::Status.is_in([Status::Granted as i32, Status::Completed as i32]),
        )
        .into_tuple()
        .all(c)
        .await?;
    let revoked: Vec<String> = application::Entity::find()
        .select_only()
        .column(application::Column::Id)
        .filter(application::Column::SchemeId.eq(scheme_id))
        .filter(application::Column::Status.eq(Status::Revoked as i32))
        .into_tuple()
        .all(c)
        .await?;
    let paid: Vec<i64> = if revoked.is_empty() {
        Vec::new()
    } else {
        payment::Entity::find()
            .select_only()
            .column(payment::Column::AmountCents)
            .filter(payment::Column::ApplicationId.is_in(revoked))
            .filter(payment::Column::Status.eq(PaymentStatus::Paid as i32))
            .into_tuple()
            .all(c)
            .await?
    };
    Ok(granted
        .into_iter()
        .chain(paid)
        .fold(0i64, i64::saturating_add))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn decide(
    c: &impl ConnectionTrait,
    id: &str,
    grant: bool,
    motivation: &str,
    act: &str,
    requested_cents: i64,
    actor: &Actor,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    let action = Action::Decide { grant };
    workflow::transition(id, status_of(&app), action)?;
    let edit = application::ActiveModel {
        decision_motivation: Set(motivation.to_owned()),
        decision_act: Set(act.to_owned()),
        decided_at: Set(Some(now)),
        ..Default::default()
    };
    if !grant {
        move_app(c, &app, action, actor, motivation, now, edit).await?;
        return load_view(c, id).await;
    }
    let rules = snapshot(&app)?;
    // Lock the scheme: grants against one budget are decided one at a time.
    let scheme = load_scheme(c, &app.scheme_id, true).await?;
    let full = rules.full_amount_cents().ok_or_else(|| {
        ServiceError::Internal(format!("application {id}: amount × payments overflows"))
    })?;
    let ceiling = if rules.is_ranked() {
        let ranking = ranking::Entity::find_by_id(app.scheme_id.as_str())
            .one(c)
            .await?;
        if ranking.as_ref().map(|r| r.status) != Some(pb::BenefitRankingStatus::Approved as i32) {
            return Err(ServiceError::FailedPrecondition(format!(
                "application {id} cannot be granted yet: scheme {} is ranked, and its ranking is not approved; compute and approve it first",
                app.scheme_id
            )));
        }
        let place = ranking_entry::Entity::find()
            .filter(ranking_entry::Column::SchemeId.eq(app.scheme_id.as_str()))
            .filter(ranking_entry::Column::ApplicationId.eq(id))
            .one(c)
            .await?;
        match place {
            Some(p) if p.funded => p.amount_cents,
            Some(p) => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "application {id} cannot be granted: place {} of the approved ranking is beyond the budget; deny it with a motivation",
                    p.position
                )));
            }
            None => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "application {id} cannot be granted: it has no place in the approved ranking"
                )));
            }
        }
    } else {
        full
    };
    if requested_cents > ceiling {
        return Err(ServiceError::invalid(
            "granted_amount.cents",
            format!(
                "must not exceed {} ({})",
                domain::euro(ceiling),
                if rules.is_ranked() {
                    "the amount the ranking funds"
                } else {
                    "the scheme's amount × payments"
                }
            ),
        ));
    }
    let amount = if requested_cents > 0 {
        requested_cents
    } else {
        ceiling
    };
    if !rules.is_ranked()
        && let Some(refusal) = scheme_rules::budget_refusal(
            &scheme.id,
            scheme.budget_cents,
            committed_cents(c, &scheme.id).await?,
            amount,
        )
    {
        return Err(refusal);
    }
    let mut edit = edit;
    edit.granted_amount_cents = Set(amount);
    move_app(c, &app, action, actor, motivation, now, edit).await?;
    let frequency =
        pb::BenefitFrequency::try_from(rules.frequency).unwrap_or(pb::BenefitFrequency::OneOff);
    let schedule =
        payments::default_schedule(amount, rules.payment_count, frequency, italian_day(now));
    insert_payments(c, id, &schedule).await?;
    load_view(c, id).await
}

async fn insert_payments(
    c: &impl ConnectionTrait,
    id: &str,
    schedule: &[payments::Instalment],
) -> Result<(), DbErr> {
    if schedule.is_empty() {
        return Ok(());
    }
    payment::Entity::insert_many(schedule.iter().map(|i| payment::ActiveModel {
        application_id: Set(id.to_owned()),
        number: Set(i.number),
        due_date: Set(i.due_date),
        amount_cents: Set(i.amount_cents),
        status: Set(PaymentStatus::Scheduled as i32),
        paid_date: Set(None),
        payment_reference: Set(String::new()),
        note: Set(String::new()),
    }))
    .exec_without_returning(c)
    .await
    .map(|_| ())
}

const UNPAID: [PaymentStatus; 2] = [PaymentStatus::Scheduled, PaymentStatus::Suspended];

pub(crate) async fn revoke(
    c: &impl ConnectionTrait,
    id: &str,
    motivation: &str,
    act: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    move_app(
        c,
        &app,
        Action::Revoke,
        actor,
        motivation,
        now,
        application::ActiveModel {
            decision_motivation: Set(motivation.to_owned()),
            decision_act: Set(act.to_owned()),
            ..Default::default()
        },
    )
    .await?;
    payment::Entity::update_many()
        .col_expr(
            payment::Column::Status,
            Expr::value(PaymentStatus::Cancelled as i32),
        )
        .col_expr(payment::Column::Note, Expr::value("revocato"))
        .filter(payment::Column::ApplicationId.eq(id))
        .filter(payment::Column::Status.is_in(UNPAID.map(|s| s as i32)))
        .exec(c)
        .await?;
    load_view(c, id).await
}

fn not_granted(app: &application::Model) -> ServiceError {
    ServiceError::FailedPrecondition(format!(
        "application {} is {}: only a GRANTED benefit has a payment schedule",
        app.id,
        status_name(status_of(app))
    ))
}

/// Marks the application changed, provided it is still GRANTED.
async fn touch_granted(
    c: &impl ConnectionTrait,
    app: &application::Model,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let touched = application::Entity::update_many()
        .col_expr(application::Column::UpdatedAt, Expr::value(now))
        .filter(application::Column::Id.eq(app.id.as_str()))
        .filter(application::Column::Status.eq(Status::Granted as i32))
        .exec(c)
        .await?;
    if touched.rows_affected == 0 {
        return Err(ServiceError::FailedPrecondition(format!(
            "application {} changed while this request was handled; reload it and retry",
            app.id
        )));
    }
    Ok(())
}

pub(crate) async fn schedule_payments(
    c: &impl ConnectionTrait,
    id: &str,
    requested: &[pb::BenefitPayment],
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    if status_of(&app) != Status::Granted {
        return Err(not_granted(&app));
    }
    let paid: Vec<(i32, i64)> = payment::Entity::find()
        .select_only()
        .column(payment::Column::Number)
        .column(payment::Column::AmountCents)
        .filter(payment::Column::ApplicationId.eq(id))
        .filter(payment::Column::Status.eq(PaymentStatus::Paid as i32))
        .into_tuple()
        .all(c)
        .await?;
    let schedule = payments::validate_schedule(requested, &paid, app.granted_amount_cents)
        .map_err(ServiceError::InvalidArgument)?;
    touch_granted(c, &app, now).await?;
    payment::Entity::delete_many()
        .filter(payment::Column::ApplicationId.eq(id))
        .filter(payment::Column::Status.ne(PaymentStatus::Paid as i32))
        .exec(c)
        .await?;
    insert_payments(c, id, &schedule).await?;
    load_view(c, id).await
}

pub(crate) async fn record_payment(
    c: &impl ConnectionTrait,
    id: &str,
    number: i32,
    outcome: PaymentOutcome,
    now: DateTime<Utc>,
    guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
) -> Result<(ApplicationView, bool), ServiceError> {
    let app = load_app(c, id).await?;
    guard(&app)?;
    if status_of(&app) != Status::Granted {
        return Err(not_granted(&app));
    }
    let instalment = payment::Entity::find_by_id((id.to_owned(), number))
        .one(c)
        .await?
        .ok_or_else(|| {
            ServiceError::not_found("instalment", format!("{number} of application {id}"))
        })?;
    let from = PaymentStatus::try_from(instalment.status).unwrap_or(PaymentStatus::Unspecified);
    payments::payment_change(number, from, outcome.status)?;
    let paid = outcome.status == PaymentStatus::Paid;
    let updated = payment::Entity::update_many()
        .set(payment::ActiveModel {
            status: Set(outcome.status as i32),
            paid_date: Set(outcome.paid_date.filter(|_| paid)),
            payment_reference: Set(if paid {
                outcome.payment_reference.clone()
            } else {
                instalment.payment_reference.clone()
            }),
            note: Set(outcome.note.clone()),
            ..Default::default()
        })
        .filter(payment::Column::ApplicationId.eq(id))
        .filter(payment::Column::Number.eq(number))
        .filter(payment::Column::Status.eq(instalment.status))
        .exec(c)
        .await?;
    if updated.rows_affected == 0 {
        return Err(ServiceError::FailedPrecondition(format!(
            "instalment {number} of application {id} changed while this request was handled; reload it and retry"
        )));
    }
    let statuses: Vec<i32> = payment::Entity::find()
        .select_only()
        .column(payment::Column::Status)
        .filter(payment::Column::ApplicationId.eq(id))
        .into_tuple()
        .all(c)
        .await?;
    let statuses: Vec<PaymentStatus> = statuses
        .into_iter()
        .map(|s| PaymentStatus::try_from(s).unwrap_or(PaymentStatus::Unspecified))
        .collect();
    let completed = payments::all_settled(&statuses);
    if completed {
        move_app(
            c,
            &app,
            Action::Complete,
            &Actor::system(),
            "ogni rata è stata pagata o annullata",
            now,
            Default::default(),
        )
        .await?;
    } else {
        touch_granted(c, &app, now).await?;
    }
    Ok((load_view(c, id).await?, completed))
}

// ----- rankings -----

pub(crate) async fn ranking_view(
    c: &impl ConnectionTrait,
    scheme_id: &str,
) -> Result<RankingView, ServiceError> {
    let scheme = load_scheme(c, scheme_id, false).await?;
    let ranking = ranking::Entity::find_by_id(scheme_id).one(c).await?;
    let entries = ranking_entry::Entity::find()
        .filter(ranking_entry::Column::SchemeId.eq(scheme_id))
        .order_by_asc(ranking_entry::Column::Position)
        .all(c)
        .await?;
    Ok(RankingView {
        scheme,
        ranking,
        entries,
    })
}

pub(crate) async fn compute_ranking(
    c: &impl ConnectionTrait,
    scheme_id: &str,
    now: DateTime<Utc>,
    guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
) -> Result<RankingView, ServiceError> {
    let scheme = load_scheme(c, scheme_id, true).await?;
    guard(&scheme)?;
    let rules = rules_of(&scheme)?;
    if !rules.is_ranked() {
        return Err(ServiceError::FailedPrecondition(format!(
            "scheme {scheme_id} has no ranking criterion: every admissible application may be decided directly"
        )));
    }
    let existing = ranking::Entity::find_by_id(scheme_id).one(c).await?;
    if let Some(r) = &existing
        && r.status == pb::BenefitRankingStatus::Approved as i32
    {
        return Err(ServiceError::FailedPrecondition(format!(
            "the ranking of scheme {scheme_id} was approved ({}); it can no longer be recomputed",
            r.approval_act
        )));
    }
    let admissible = application::Entity::find()
        .filter(application::Column::SchemeId.eq(scheme_id))
        .filter(application::Column::Status.eq(Status::Admissible as i32))
        .all(c)
        .await?;
    let mut candidates = Vec::with_capacity(admissible.len());
    for a in &admissible {
        let amount = snapshot(a)?.full_amount_cents().unwrap_or(i64::MAX);
        candidates.push(Candidate {
            application_id: a.id.clone(),
            protocol_number: a.protocol_number.clone().unwrap_or_default(),
            score: a.score,
            isee_cents: a.isee_cents,
            submitted_at: a.submitted_at.unwrap_or(a.created_at),
            amount_cents: amount,
        });
    }
    let (places, funded) = rank(rules.criterion(), scheme.budget_cents, candidates);

    ranking_entry::Entity::delete_many()
        .filter(ranking_entry::Column::SchemeId.eq(scheme_id))
        .exec(c)
        .await?;
    ranking::Entity::delete_many()
        .filter(ranking::Column::SchemeId.eq(scheme_id))
        .exec(c)
        .await?;
    ranking::ActiveModel {
        scheme_id: Set(scheme_id.to_owned()),
        status: Set(pb::BenefitRankingStatus::Provisional as i32),
        criterion: Set(rules.ranking_criterion),
        budget_cents: Set(scheme.budget_cents),
        funded_cents: Set(funded),
        computed_at: Set(now),
        approval_act: Set(String::new()),
        approved_at: Set(None),
    }
    .insert(c)
    .await?;
    // Places of an earlier computation no longer hold.
    application::Entity::update_many()
        .col_expr(application::Column::Rank, Expr::value(0))
        .col_expr(application::Column::Funded, Expr::value(false))
        .filter(application::Column::SchemeId.eq(scheme_id))
        .exec(c)
        .await?;
    let mut entries = Vec::with_capacity(places.len());
    for p in places {
        application::Entity::update_many()
            .col_expr(application::Column::Rank, Expr::value(p.position))
            .col_expr(application::Column::Funded, Expr::value(p.funded))
            .filter(application::Column::Id.eq(p.candidate.application_id.as_str()))
            .exec(c)
            .await?;
        entries.push(ranking_entry::ActiveModel {
            scheme_id: Set(scheme_id.to_owned()),
            position: Set(p.position),
            application_id: Set(p.candidate.application_id),
            protocol_number: Set(p.candidate.protocol_number),
            score: Set(p.candidate.score),
            isee_cents: Set(p.candidate.isee_cents),
            funded: Set(p.funded),
            amount_cents: Set(if p.funded {
                p.candidate.amount_cents
            } else {
                0
            }),
        });
    }
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<_> = entries.by_ref().take(INSERT_CHUNK).collect();
        ranking_entry::Entity::insert_many(chunk)
            .exec_without_returning(c)
            .await?;
    }
    ranking_view(c, scheme_id).await
}

pub(crate) async fn approve_ranking(
    c: &impl ConnectionTrait,
    scheme_id: &str,
    act: &str,
    now: DateTime<Utc>,
    guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
) -> Result<RankingView, ServiceError> {
    let scheme = load_scheme(c, scheme_id, true).await?;
    guard(&scheme)?;
    let updated = ranking::Entity::update_many()
        .col_expr(
            ranking::Column::Status,
            Expr::value(pb::BenefitRankingStatus::Approved as i32),
        )
        .col_expr(ranking::Column::ApprovalAct, Expr::value(act))
        .col_expr(ranking::Column::ApprovedAt, Expr::value(Some(now)))
        .filter(ranking::Column::SchemeId.eq(scheme_id))
        .filter(ranking::Column::Status.eq(pb::BenefitRankingStatus::Provisional as i32))
        .exec(c)
        .await?;
    if updated.rows_affected == 0 {
        let existing = ranking::Entity::find_by_id(scheme_id).one(c).await?;
        return Err(ServiceError::FailedPrecondition(match existing {
            None => format!("scheme {scheme_id} has no ranking yet; compute it first"),
            Some(r) => format!(
                "the ranking of scheme {scheme_id} is already approved ({})",
                r.approval_act
            ),
        }));
    }
    ranking_view(c, scheme_id).await
}
