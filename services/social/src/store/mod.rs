//! The social database: reads, and writes that each run in one transaction.
//!
//! Every write lives in [`ops`] as a function over a connection, so the [`Store`] runs it in a
//! transaction of its own and the demo data runs many in one. Status changes are conditional
//! updates (`… WHERE id = ? AND status = <the status read>`): two caseworkers acting on one
//! application at once cannot both win, and the loser is told to reload. Each change appends to the
//! application's history in the same transaction, and a citizen's online submission records the
//! completed interaction for the programme indicators there too.

pub(crate) mod entities;
pub mod migration;
pub(crate) mod ops;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use patto_proto::social::v1 as pb;
use patto_service_kit::error::ServiceError;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Expr, NullOrdering, Order};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::domain::application::{Check, DraftContent, NewAttachment};
use crate::domain::isee::{Declaration, Member};
use crate::domain::payments::PaymentOutcome;
use crate::domain::scheme::{NewScheme, SchemeRules};
pub(crate) use entities::{
    application, attachment, isee_declaration, isee_member, payment, protocol_counter, ranking,
    ranking_entry, scheme, transition,
};
use patto_service_kit::access::Record;

/// Who caused a change, as the history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Role.
    pub role: pb::BenefitActorRole,
    /// Codice fiscale of the citizen or operator; empty when unknown or for the service itself.
    pub id: String,
}

impl Actor {
    /// The service itself.
    pub fn system() -> Self {
        Self {
            role: pb::BenefitActorRole::System,
            id: String::new(),
        }
    }
}

/// An application with its documents, payments and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationView {
    /// The application row.
    pub app: application::Model,
    /// Documents, oldest first.
    pub attachments: Vec<attachment::Model>,
    /// Instalments by number.
    pub payments: Vec<payment::Model>,
    /// Status changes, oldest first.
    pub history: Vec<transition::Model>,
}

impl ApplicationView {
    /// The application as the access rule sees it: see [`application_record`].
    pub fn record(&self) -> Record<'_> {
        application_record(&self.app)
    }
}

/// An application as the access rule sees it: its applicant and beneficiary, held by the scheme's
/// comune.
pub fn application_record(app: &application::Model) -> Record<'_> {
    let mut subjects = vec![app.applicant_fiscal_code.as_str()];
    if !app.beneficiary_fiscal_code.is_empty() {
        subjects.push(&app.beneficiary_fiscal_code);
    }
    Record::Personal {
        subjects,
        comuni: vec![&app.istat_code],
    }
}

/// An ISEE declaration with its household and the comuni that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IseeView {
    /// The declaration row.
    pub decl: isee_declaration::Model,
    /// Household members by position.
    pub members: Vec<isee_member::Model>,
    /// Comuni holding it: the one whose operator registered or imported it, and those with an
    /// application relying on it.
    pub comuni: Vec<String>,
}

impl IseeView {
    /// The declaration as the access rule sees it: the declarant and the household members, held
    /// by [`IseeView::comuni`].
    pub fn record(&self) -> Record<'_> {
        let mut subjects = vec![self.decl.fiscal_code.as_str()];
        subjects.extend(self.members.iter().map(|m| m.fiscal_code.as_str()));
        Record::Personal {
            subjects,
            comuni: self.comuni.iter().map(String::as_str).collect(),
        }
    }

    /// The declaration as the domain rules read it.
    pub fn declaration(&self) -> Declaration {
        declaration_of(&self.decl, &self.members)
    }
}

/// A scheme's ranking: the scheme, and the ranking with its places when one was computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankingView {
    /// The scheme.
    pub scheme: scheme::Model,
    /// The ranking, if computed.
    pub ranking: Option<ranking::Model>,
    /// Places in order.
    pub entries: Vec<ranking_entry::Model>,
}

/// Filters of a scheme listing.
#[derive(Debug, Clone, Default)]
pub struct SchemeFilter {
    /// Only this comune.
    pub istat_code: Option<String>,
    /// Only this kind.
    pub kind: Option<i32>,
    /// Only this status; `None` means every status but DRAFT.
    pub status: Option<i32>,
    /// With no status filter, also the drafts of this comune (its operators see them).
    pub drafts_of: Option<String>,
}

/// Filters of an application listing.
#[derive(Debug, Clone, Default)]
pub struct ApplicationFilter {
    /// Only this comune.
    pub istat_code: Option<String>,
    /// Only this scheme.
    pub scheme_id: Option<String>,
    /// Only this status.
    pub status: Option<i32>,
    /// Only this applicant (canonical codice fiscale).
    pub applicant: Option<String>,
    /// Only this caseworker (canonical codice fiscale).
    pub caseworker: Option<String>,
}

/// One validated row of an ISEE import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Position in the stream, from 1.
    pub row: i32,
    /// The declaration.
    pub declaration: Declaration,
    /// IMPORT, or INPS for an extract the comune received from INPS.
    pub source: pb::IseeSource,
}

/// A row of an import that cannot be written, found inside the import's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowConflict {
    /// Row number, from 1.
    pub row: i32,
    /// Field at fault.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

/// Access to the social database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    salt: String,
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain structs and vectors of strings and numbers cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    what: &str,
) -> Result<T, ServiceError> {
    if text.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text)
        .map_err(|e| ServiceError::Internal(format!("stored {what} is not valid JSON: {e}")))
}

/// The rules of a stored scheme, as they are now.
pub fn rules_of(s: &scheme::Model) -> Result<SchemeRules, ServiceError> {
    Ok(SchemeRules {
        isee_threshold_cents: s.isee_threshold_cents,
        accepted_isee_kinds: from_json(&s.accepted_isee_kinds, "accepted ISEE kinds")?,
        min_household_size: s.min_household_size,
        max_household_size: s.max_household_size,
        requires_minor: s.requires_minor,
        requires_disabled_member: s.requires_disabled_member,
        requires_member_aged: s.requires_member_aged,
        requires_residence: s.requires_residence,
        min_residence_months: s.min_residence_months,
        amount_cents: s.amount_cents,
        frequency: s.frequency,
        payment_count: s.payment_count,
        ranking_criterion: s.ranking_criterion,
        required_documents: from_json(&s.required_documents, "required documents")?,
    })
}

/// The checks recorded on an application.
pub fn checks_of(a: &application::Model) -> Result<Vec<Check>, ServiceError> {
    from_json(&a.checks, "eligibility checks")
}

/// A stored declaration as the domain rules read it.
pub fn declaration_of(d: &isee_declaration::Model, members: &[isee_member::Model]) -> Declaration {
    Declaration {
        fiscal_code: d.fiscal_code.clone(),
        dsu_protocol: d.dsu_protocol.clone(),
        kind: pb::IseeKind::try_from(d.kind).unwrap_or(pb::IseeKind::Unspecified),
        isee_cents: d.isee_cents,
        ise_cents: d.ise_cents,
        isr_cents: d.isr_cents,
        isp_cents: d.isp_cents,
        scale_thousandths: d.scale_thousandths,
        household_size: d.household_size,
        members: members
            .iter()
            .map(|m| Member {
                fiscal_code: m.fiscal_code.clone(),
                birth_date: m.birth_date,
                disability: m.disability,
            })
            .collect(),
        dsu_date: d.dsu_date,
        valid_from: d.valid_from,
        valid_until: d.valid_until,
        discrepancies: d.discrepancies,
    }
}

/// Runs `$op` (an [`ops`] function taking the connection first) in a transaction of its own.
macro_rules! in_transaction {
    ($store:expr, $op:ident ( $($arg:expr),* $(,)? )) => {{
        let txn = $store.db.begin().await?;
        let out = ops::$op(&txn, $($arg),*).await?;
        txn.commit().await?;
        Ok(out)
    }};
}

impl Store {
    /// A store over `db`; `salt` salts citizen hashes in the indicators.
    pub fn new(db: DatabaseConnection, salt: impl Into<String>) -> Self {
        Self {
            db,
            salt: salt.into(),
        }
    }

    /// The connection, for the indicators service and demo data.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The salt of the indicators' citizen hashes.
    pub(crate) fn salt(&self) -> &str {
        &self.salt
    }

    // ----- schemes -----

    /// The scheme with this id.
    pub async fn scheme(&self, id: &str) -> Result<Option<scheme::Model>, DbErr> {
        scheme::Entity::find_by_id(id).one(&self.db).await
    }

    /// A page of schemes matching `f`, open ones first then by name, and the total.
    pub async fn list_schemes(
        &self,
        f: &SchemeFilter,
        page: Page,
    ) -> Result<(Vec<scheme::Model>, u64), DbErr> {
        let mut cond = Condition::all();
        if let Some(code) = &f.istat_code {
            cond = cond.add(scheme::Column::IstatCode.eq(code.as_str()));
        }
        if let Some(kind) = f.kind {
            cond = cond.add(scheme::Column::Kind.eq(kind));
        }
        match (f.status, &f.drafts_of) {
            (Some(status), _) => cond = cond.add(scheme::Column::Status.eq(status)),
            (None, Some(comune)) => {
                cond = cond.add(
                    Condition::any()
                        .add(scheme::Column::Status.ne(pb::BenefitSchemeStatus::Draft as i32))
                        .add(scheme::Column::IstatCode.eq(comune.as_str())),
                )
            }
            (None, None) => {
                cond = cond.add(scheme::Column::Status.ne(pb::BenefitSchemeStatus::Draft as i32))
            }
        }
        let q = scheme::Entity::find().filter(cond);
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by(open_first(), Order::Asc)
            .order_by_asc(scheme::Column::Name)
            .order_by_asc(scheme::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The schemes with these ids (unknown ids are left out).
    pub async fn schemes_by_id(&self, ids: &[String]) -> Result<Vec<scheme::Model>, DbErr> {
        scheme::Entity::find()
            .filter(scheme::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(scheme::Column::Id)
            .all(&self.db)
            .await
    }

    /// The schemes of each comune, open ones first then by name; with `open_on`, only those open
    /// for applications that day. Drafts are included; the caller filters them by the access rule.
    pub async fn schemes_by_comune(
        &self,
        codes: &[String],
        open_on: Option<NaiveDate>,
    ) -> Result<BTreeMap<String, Vec<scheme::Model>>, DbErr> {
        let mut q =
            scheme::Entity::find().filter(scheme::Column::IstatCode.is_in(codes.iter().cloned()));
        if let Some(day) = open_on {
            q = q
                .filter(scheme::Column::Status.eq(pb::BenefitSchemeStatus::Open as i32))
                .filter(scheme::Column::PeriodStart.lte(day))
                .filter(scheme::Column::PeriodEnd.gte(day));
        }
        let rows = q
            .order_by_asc(scheme::Column::IstatCode)
            .order_by(open_first(), Order::Asc)
            .order_by_asc(scheme::Column::Name)
            .order_by_asc(scheme::Column::Id)
            .all(&self.db)
            .await?;
        let mut out: BTreeMap<String, Vec<scheme::Model>> = BTreeMap::new();
        for s in rows {
            out.entry(s.istat_code.clone()).or_default().push(s);
        }
        Ok(out)
    }

    /// Creates a scheme; ALREADY_EXISTS when the comune already has one with the same code.
    pub async fn create_scheme(
        &self,
        s: NewScheme,
        now: DateTime<Utc>,
    ) -> Result<scheme::Model, ServiceError> {
        let id = uuid::Uuid::new_v4().to_string();
        in_transaction!(self, create_scheme(s, id, now))
    }

    /// Replaces scheme `id`'s content; `guard` authorises the change against the stored scheme.
    pub async fn update_scheme(
        &self,
        id: &str,
        s: NewScheme,
        now: DateTime<Utc>,
        guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
    ) -> Result<scheme::Model, ServiceError> {
        in_transaction!(self, update_scheme(id, s, now, guard))
    }

    // ----- ISEE declarations -----

    /// The declarations with these ids (unknown ids are left out).
    pub async fn isee_by_id(&self, ids: &[String]) -> Result<Vec<IseeView>, DbErr> {
        let rows = isee_declaration::Entity::find()
            .filter(isee_declaration::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(isee_declaration::Column::Id)
            .all(&self.db)
            .await?;
        isee_views(&self.db, rows).await
    }

    /// The declarations these citizens made or belong to the household of, newest first; with
    /// `valid_on`, only those valid that day.
    pub async fn isee_by_citizen(
        &self,
        fiscal_codes: &[String],
        valid_on: Option<NaiveDate>,
    ) -> Result<Vec<IseeView>, DbErr> {
        let as_member: Vec<String> = isee_member::Entity::find()
            .select_only()
            .column(isee_member::Column::DeclarationId)
            .filter(isee_member::Column::FiscalCode.is_in(fiscal_codes.iter().cloned()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut q = isee_declaration::Entity::find().filter(
            Condition::any()
                .add(isee_declaration::Column::FiscalCode.is_in(fiscal_codes.iter().cloned()))
                .add(isee_declaration::Column::Id.is_in(as_member)),
        );
        if let Some(day) = valid_on {
            q = q
                .filter(isee_declaration::Column::ValidFrom.lte(day))
                .filter(isee_declaration::Column::ValidUntil.gte(day));
        }
        let rows = q
            .order_by_desc(isee_declaration::Column::DsuDate)
            .order_by_desc(isee_declaration::Column::RegisteredAt)
            .order_by_asc(isee_declaration::Column::Id)
            .all(&self.db)
            .await?;
        isee_views(&self.db, rows).await
    }

    /// Registers a declaration; ALREADY_EXISTS when its DSU protocol is already registered.
    pub async fn register_isee(
        &self,
        d: Declaration,
        source: pb::IseeSource,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<IseeView, ServiceError> {
        let id = uuid::Uuid::new_v4().to_string();
        in_transaction!(self, register_isee(d, id, source, holder, now))
    }

    /// Imports numbered rows all or nothing: a row whose DSU protocol belongs to another declarant
    /// makes the whole import fail with its conflicts; otherwise every row is written (replacing
    /// the declaration with the same protocol) and the count returned.
    pub async fn import_isee(
        &self,
        rows: Vec<ImportRow>,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<usize, Vec<RowConflict>>, ServiceError> {
        let txn = self.db.begin().await?;
        let out = ops::import_isee(&txn, rows, holder, now).await?;
        if out.is_ok() {
            txn.commit().await?;
        }
        // Dropping the transaction on conflicts rolls back anything written.
        Ok(out)
    }

    // ----- applications -----

    /// The application with this id, with its documents, payments and history.
    pub async fn application(&self, id: &str) -> Result<Option<ApplicationView>, DbErr> {
        match application::Entity::find_by_id(id).one(&self.db).await? {
            None => Ok(None),
            Some(a) => Ok(views(&self.db, vec![a]).await?.pop()),
        }
    }

    /// The application rows of these ids, without their documents, payments and history: whose
    /// they are, for the audit of a named ranking.
    pub async fn application_rows(&self, ids: &[String]) -> Result<Vec<application::Model>, DbErr> {
        application::Entity::find()
            .filter(application::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await
    }

    /// The applications with these ids (unknown ids are left out).
    pub async fn applications_by_id(&self, ids: &[String]) -> Result<Vec<ApplicationView>, DbErr> {
        let rows = application::Entity::find()
            .filter(application::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(application::Column::Id)
            .all(&self.db)
            .await?;
        views(&self.db, rows).await
    }

    /// A page of applications matching `f`, oldest submission first (drafts last, oldest first),
    /// and the total.
    pub async fn list_applications(
        &self,
        f: &ApplicationFilter,
        page: Page,
    ) -> Result<(Vec<ApplicationView>, u64), DbErr> {
        let mut q = application::Entity::find();
        if let Some(v) = &f.istat_code {
            q = q.filter(application::Column::IstatCode.eq(v.as_str()));
        }
        if let Some(v) = &f.scheme_id {
            q = q.filter(application::Column::SchemeId.eq(v.as_str()));
        }
        if let Some(v) = f.status {
            q = q.filter(application::Column::Status.eq(v));
        }
        if let Some(v) = &f.applicant {
            q = q.filter(application::Column::ApplicantFiscalCode.eq(v.as_str()));
        }
        if let Some(v) = &f.caseworker {
            q = q.filter(application::Column::Caseworker.eq(v.as_str()));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_with_nulls(
                application::Column::SubmittedAt,
                Order::Asc,
                NullOrdering::Last,
            )
            .order_by_asc(application::Column::CreatedAt)
            .order_by_asc(application::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((views(&self.db, rows).await?, total))
    }

    /// Applications these citizens filed or benefit from, newest first.
    pub async fn applications_by_citizen(
        &self,
        fiscal_codes: &[String],
        status: Option<i32>,
    ) -> Result<Vec<ApplicationView>, DbErr> {
        let mut q = application::Entity::find().filter(
            Condition::any()
                .add(application::Column::ApplicantFiscalCode.is_in(fiscal_codes.iter().cloned()))
                .add(
                    application::Column::BeneficiaryFiscalCode.is_in(fiscal_codes.iter().cloned()),
                ),
        );
        if let Some(s) = status {
            q = q.filter(application::Column::Status.eq(s));
        }
        let rows = q
            .order_by_desc(application::Column::CreatedAt)
            .order_by_asc(application::Column::Id)
            .all(&self.db)
            .await?;
        views(&self.db, rows).await
    }

    /// Starts a draft for the scheme the content names; `guard` authorises it against the scheme.
    pub async fn create_draft(
        &self,
        content: DraftContent,
        actor: &Actor,
        now: DateTime<Utc>,
        guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        let id = uuid::Uuid::new_v4().to_string();
        in_transaction!(self, create_draft(content, id, actor, now, guard))
    }

    /// Replaces a draft's content.
    pub async fn update_draft(
        &self,
        id: &str,
        content: DraftContent,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, update_draft(id, content, now, guard))
    }

    /// Submits a draft: checks the scheme's window, the content and the ISEE, gives it a protocol
    /// number, keeps the scheme's rules, and (when `online`) records the citizen's interaction.
    pub async fn submit(
        &self,
        id: &str,
        actor: &Actor,
        online: bool,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, submit(&self.salt, id, actor, online, now, guard))
    }

    /// Withdraws an application not yet decided.
    pub async fn withdraw(
        &self,
        id: &str,
        reason: &str,
        actor: &Actor,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, withdraw(id, reason, actor, now, guard))
    }

    /// Puts an application in the hands of `caseworker`.
    pub async fn assign(
        &self,
        id: &str,
        caseworker: &str,
        actor: &Actor,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, assign(id, caseworker, actor, now, guard))
    }

    /// Asks the applicant for documents or data.
    pub async fn request_integration(
        &self,
        id: &str,
        note: &str,
        actor: &Actor,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, request_integration(id, note, actor, now, guard))
    }

    /// Records the applicant's integration: documents, a newer ISEE, a note.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_integration(
        &self,
        id: &str,
        attachments: Vec<NewAttachment>,
        isee_declaration_id: Option<&str>,
        note: &str,
        actor: &Actor,
        online: bool,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(
            self,
            submit_integration(
                &self.salt,
                id,
                attachments,
                isee_declaration_id,
                note,
                actor,
                online,
                now,
                guard
            )
        )
    }

    /// Records the caseworker's evaluation.
    #[allow(clippy::too_many_arguments)]
    pub async fn evaluate(
        &self,
        id: &str,
        checks: &[pb::EligibilityCheck],
        score: i32,
        note: &str,
        actor: &Actor,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, evaluate(id, checks, score, note, actor, now, guard))
    }

    /// Decides an application: a grant (with its amount and default payment schedule) or a denial.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        id: &str,
        grant: bool,
        motivation: &str,
        act: &str,
        requested_cents: i64,
        actor: &Actor,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(
            self,
            decide(
                id,
                grant,
                motivation,
                act,
                requested_cents,
                actor,
                now,
                guard
            )
        )
    }

    /// Revokes a granted benefit and cancels its unpaid instalments.
    pub async fn revoke(
        &self,
        id: &str,
        motivation: &str,
        act: &str,
        actor: &Actor,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, revoke(id, motivation, act, actor, now, guard))
    }

    /// Replaces a granted benefit's unpaid instalments.
    pub async fn schedule_payments(
        &self,
        id: &str,
        payments: &[pb::BenefitPayment],
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<ApplicationView, ServiceError> {
        in_transaction!(self, schedule_payments(id, payments, now, guard))
    }

    /// Records an instalment's outcome; completes the application once every instalment is
    /// settled. Returns the application and whether it was completed by this call.
    pub async fn record_payment(
        &self,
        id: &str,
        number: i32,
        outcome: PaymentOutcome,
        now: DateTime<Utc>,
        guard: impl FnOnce(&application::Model) -> Result<(), ServiceError>,
    ) -> Result<(ApplicationView, bool), ServiceError> {
        in_transaction!(self, record_payment(id, number, outcome, now, guard))
    }

    // ----- rankings -----

    /// The ranking of scheme `id` (NOT_FOUND when there is no such scheme).
    pub async fn ranking(&self, scheme_id: &str) -> Result<RankingView, ServiceError> {
        ops::ranking_view(&self.db, scheme_id).await
    }

    /// Computes the provisional ranking of a scheme.
    pub async fn compute_ranking(
        &self,
        scheme_id: &str,
        now: DateTime<Utc>,
        guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
    ) -> Result<RankingView, ServiceError> {
        in_transaction!(self, compute_ranking(scheme_id, now, guard))
    }

    /// Approves a scheme's provisional ranking.
    pub async fn approve_ranking(
        &self,
        scheme_id: &str,
        act: &str,
        now: DateTime<Utc>,
        guard: impl FnOnce(&scheme::Model) -> Result<(), ServiceError>,
    ) -> Result<RankingView, ServiceError> {
        in_transaction!(self, approve_ranking(scheme_id, act, now, guard))
    }
}

/// `CASE WHEN status = OPEN THEN 0 ELSE 1 END`: open schemes sort first.
fn open_first() -> Expr {
    Expr::cust(format!(
        "CASE WHEN status = {} THEN 0 ELSE 1 END",
        pb::BenefitSchemeStatus::Open as i32
    ))
}

/// Loads the documents, payments and history of `apps` in three queries, whatever their number.
pub(crate) async fn views(
    conn: &impl ConnectionTrait,
    apps: Vec<application::Model>,
) -> Result<Vec<ApplicationView>, DbErr> {
    if apps.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
    let mut attachments: BTreeMap<String, Vec<attachment::Model>> = BTreeMap::new();
    for a in attachment::Entity::find()
        .filter(attachment::Column::ApplicationId.is_in(ids.clone()))
        .order_by_asc(attachment::Column::UploadedAt)
        .order_by_asc(attachment::Column::Id)
        .all(conn)
        .await?
    {
        attachments
            .entry(a.application_id.clone())
            .or_default()
            .push(a);
    }
    let mut payments: BTreeMap<String, Vec<payment::Model>> = BTreeMap::new();
    for p in payment::Entity::find()
        .filter(payment::Column::ApplicationId.is_in(ids.clone()))
        .order_by_asc(payment::Column::Number)
        .all(conn)
        .await?
    {
        payments
            .entry(p.application_id.clone())
            .or_default()
            .push(p);
    }
    let mut history: BTreeMap<String, Vec<transition::Model>> = BTreeMap::new();
    for t in transition::Entity::find()
        .filter(transition::Column::ApplicationId.is_in(ids))
        .order_by_asc(transition::Column::Id)
        .all(conn)
        .await?
    {
        history.entry(t.application_id.clone()).or_default().push(t);
    }
    Ok(apps
        .into_iter()
        .map(|app| ApplicationView {
            attachments: attachments.remove(&app.id).unwrap_or_default(),
            payments: payments.remove(&app.id).unwrap_or_default(),
            history: history.remove(&app.id).unwrap_or_default(),
            app,
        })
        .collect())
}

/// Loads the household and the holding comuni of `decls` in two queries.
pub(crate) async fn isee_views(
    conn: &impl ConnectionTrait,
    decls: Vec<isee_declaration::Model>,
) -> Result<Vec<IseeView>, DbErr> {
    if decls.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = decls.iter().map(|d| d.id.clone()).collect();
    let mut members: BTreeMap<String, Vec<isee_member::Model>> = BTreeMap::new();
    for m in isee_member::Entity::find()
        .filter(isee_member::Column::DeclarationId.is_in(ids.clone()))
        .order_by_asc(isee_member::Column::Position)
        .all(conn)
        .await?
    {
        members.entry(m.declaration_id.clone()).or_default().push(m);
    }
    let used: Vec<(String, String)> = application::Entity::find()
        .select_only()
        .column(application::Column::IseeDeclarationId)
        .column(application::Column::IstatCode)
        .filter(application::Column::IseeDeclarationId.is_in(ids))
        .distinct()
        .into_tuple()
        .all(conn)
        .await?;
    let mut comuni: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (decl, istat) in used {
        comuni.entry(decl).or_default().insert(istat);
    }
    Ok(decls
        .into_iter()
        .map(|decl| {
            let mut holders = comuni.remove(&decl.id).unwrap_or_default();
            if !decl.holder_istat_code.is_empty() {
                holders.insert(decl.holder_istat_code.clone());
            }
            IseeView {
                members: members.remove(&decl.id).unwrap_or_default(),
                comuni: holders.into_iter().collect(),
                decl,
            }
        })
        .collect())
}
