//! The writes of the public-works service, each in one transaction. Every write loads the work,
//! asks the caller's `guard` whether the work's comune may be changed by it, applies the domain
//! rules to the stored facts, bumps the revision it read (see the module above) and only then
//! writes the children.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use patto_proto::publicworks::v1::ProjectState as State;
use patto_service_kit::error::{ServiceError, Violations};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, SqlErr, TransactionTrait,
};

use super::{
    IN_CHUNK, ProjectView, Store, cig, funding, project, sal, sal_facts, state_change, terms_of,
    view_of,
};
use crate::domain::import::{Contractor, HistoryEntry, ImportedWork};
use crate::domain::project::ProjectData;
use crate::domain::sal::{self as sal_rules, NewSal, Sal};
use crate::domain::state::{self, Readiness};
use crate::domain::{MAX_CIGS, MAX_SAL, euro_decimal, iso_day, state_name};

/// Rows per multi-row INSERT: far below the bind-parameter limits of SQLite and PostgreSQL.
const INSERT_CHUNK: usize = 400;

/// Note of the history entry an import writes when its row carries no history.
pub const IMPORTED_STATE_NOTE: &str = "Stato registrato per importazione";

/// Authorises a change of a comune's works, given the comune's ISTAT code.
pub type Guard<'a> = &'a (dyn Fn(&str) -> Result<(), ServiceError> + Send + Sync);

/// A SAL after a change, with the work it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SalOutcome {
    /// The SAL as stored.
    pub sal: sal::Model,
    /// The work as stored.
    pub view: ProjectView,
}

/// What is wrong with one row of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Row number, from 1.
    pub row: i32,
    /// Field at fault.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

/// How an import ended: every row written, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Every row was written: this many works created or updated.
    Imported(usize),
    /// Nothing was written, because of these rows.
    Rejected(Vec<RowError>),
}

fn unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn state_of(p: &project::Model) -> State {
    State::try_from(p.state).unwrap_or(State::Unspecified)
}

fn readiness(v: &ProjectView) -> Readiness {
    Readiness {
        has_cup: !v.project.cup.is_empty(),
        has_cig: !v.cigs.is_empty(),
        has_contractor: !v.project.contractor_vat.is_empty(),
        incompiuta: v.project.incompiuta,
    }
}

/// Bumps the revision `p` was read at and applies `changes`; refuses when the work changed since.
async fn bump(
    c: &impl ConnectionTrait,
    p: &project::Model,
    mut changes: project::ActiveModel,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    changes.revision = Set(p.revision.saturating_add(1));
    changes.updated_at = Set(now);
    let done = project::Entity::update_many()
        .set(changes)
        .filter(project::Column::Id.eq(p.id.as_str()))
        .filter(project::Column::Revision.eq(p.revision))
        .exec(c)
        .await?;
    if done.rows_affected == 0 {
        return Err(ServiceError::FailedPrecondition(format!(
            "public work {} changed while this change was being made; reload it and retry",
            p.id
        )));
    }
    Ok(())
}

/// The descriptive columns of a work, as an active model with only them set.
fn descriptive(d: &ProjectData) -> project::ActiveModel {
    let address = d.address.clone().unwrap_or_default();
    project::ActiveModel {
        cup: Set(d.cup.clone().unwrap_or_default()),
        title: Set(d.title.clone()),
        description: Set(d.description.clone()),
        category: Set(d.category as i32),
        programme_first_year: Set(d.programme.first_year),
        programme_last_year: Set(d.programme.last_year),
        in_annual_list: Set(d.programme.in_annual_list),
        cui: Set(d.programme.cui.clone()),
        design_level: Set(d.design_level as i32),
        budget_cents: Set(d.budget_cents),
        street: Set(address.street),
        house_number: Set(address.house_number),
        postal_code: Set(address.postal_code),
        locality: Set(address.locality),
        latitude: Set(d.geo.map(|g| g.0)),
        longitude: Set(d.geo.map(|g| g.1)),
        rup_name: Set(d.rup_name.clone()),
        planned_end_date: Set(d.planned_end_date),
        external_ref: Set(d.external_ref.clone()),
        ..Default::default()
    }
}

fn funding_rows(id: &str, d: &ProjectData) -> Vec<funding::ActiveModel> {
    d.funding
        .iter()
        .enumerate()
        .map(|(i, f)| funding::ActiveModel {
            project_id: Set(id.to_owned()),
            position: Set(i as i32),
            source: Set(f.source as i32),
            amount_cents: Set(f.amount_cents),
            reference: Set(f.reference.clone()),
        })
        .collect()
}

fn sal_row(id: &str, s: &Sal) -> sal::ActiveModel {
    sal::ActiveModel {
        project_id: Set(id.to_owned()),
        number: Set(s.number),
        date: Set(s.date),
        progress_basis_points: Set(s.progress_basis_points),
        amount_cents: Set(s.amount_cents),
        certificate_due_date: Set(s.certificate_due),
        certificate_issued_date: Set(s.certificate.map(|c| c.0)),
        certificate_amount_cents: Set(s.certificate.map(|c| c.1)),
        payment_due_date: Set(s.payment_due),
        paid_date: Set(s.payment.map(|p| p.0)),
        paid_amount_cents: Set(s.payment.map(|p| p.1)),
    }
}

fn history_row(
    id: &str,
    seq: i32,
    h: &HistoryEntry,
    now: DateTime<Utc>,
) -> state_change::ActiveModel {
    state_change::ActiveModel {
        project_id: Set(id.to_owned()),
        seq: Set(seq),
        state: Set(h.state as i32),
        date: Set(h.date),
        note: Set(h.note.clone()),
        recorded_at: Set(now),
    }
}

/// The rows of whole works, to insert in bulk.
#[derive(Default)]
pub(crate) struct WorkRows {
    projects: Vec<project::ActiveModel>,
    cigs: Vec<cig::ActiveModel>,
    funding: Vec<funding::ActiveModel>,
    sal: Vec<sal::ActiveModel>,
    history: Vec<state_change::ActiveModel>,
}

impl WorkRows {
    /// Adds the children of work `id` (CIGs, funding, SAL and, when given, history).
    fn children(
        &mut self,
        id: &str,
        w: &ImportedWork,
        history: &[HistoryEntry],
        now: DateTime<Utc>,
    ) {
        self.cigs
            .extend(w.cigs.iter().enumerate().map(|(i, c)| cig::ActiveModel {
                project_id: Set(id.to_owned()),
                cig: Set(c.clone()),
                position: Set(i as i32),
            }));
        self.funding.extend(funding_rows(id, &w.data));
        self.sal.extend(w.sal.iter().map(|s| sal_row(id, s)));
        self.history.extend(
            history
                .iter()
                .enumerate()
                .map(|(i, h)| history_row(id, i as i32 + 1, h, now)),
        );
    }

    /// Adds a new work `id` with all its children.
    pub(crate) fn add_new(
        &mut self,
        id: &str,
        w: &ImportedWork,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) {
        let mut row = whole(w);
        row.id = Set(id.to_owned());
        row.istat_code = Set(w.data.istat_code.clone());
        row.revision = Set(1);
        row.created_at = Set(now);
        row.updated_at = Set(now);
        self.projects.push(row);
        let history = history_or_imported(w, today);
        self.children(id, w, &history, now);
    }

    /// Inserts everything gathered, table by table in chunks.
    pub(crate) async fn insert(self, c: &impl ConnectionTrait) -> Result<(), DbErr> {
        insert_chunks(c, self.projects).await?;
        insert_chunks(c, self.cigs).await?;
        insert_chunks(c, self.funding).await?;
        insert_chunks(c, self.sal).await?;
        insert_chunks(c, self.history).await
    }
}

async fn insert_chunks<A>(c: &impl ConnectionTrait, rows: Vec<A>) -> Result<(), DbErr>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(INSERT_CHUNK).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(c)
            .await?;
    }
    Ok(())
}

/// Every column of a work from an import row but its identity and times.
fn whole(w: &ImportedWork) -> project::ActiveModel {
    let mut row = descriptive(&w.data);
    let contractor = w.contractor.clone().unwrap_or(Contractor {
        name: String::new(),
        vat_number: String::new(),
    });
    row.state = Set(w.state as i32);
    row.incompiuta = Set(w.incompiuta);
    row.incompiuta_note = Set(w.incompiuta_note.clone());
    row.contractor_name = Set(contractor.name);
    row.contractor_vat = Set(contractor.vat_number);
    row.contract_amount_cents = Set(w.contract_amount_cents);
    row
}

/// The history an imported work is stored with: the row's own, or one entry saying in which state
/// it arrived.
fn history_or_imported(w: &ImportedWork, today: NaiveDate) -> Vec<HistoryEntry> {
    if w.history.is_empty() {
        vec![HistoryEntry {
            state: w.state,
            date: today,
            note: IMPORTED_STATE_NOTE.to_owned(),
        }]
    } else {
        w.history.clone()
    }
}

async fn delete_children(c: &impl ConnectionTrait, id: &str, history: bool) -> Result<(), DbErr> {
    cig::Entity::delete_many()
        .filter(cig::Column::ProjectId.eq(id))
        .exec(c)
        .await?;
    funding::Entity::delete_many()
        .filter(funding::Column::ProjectId.eq(id))
        .exec(c)
        .await?;
    sal::Entity::delete_many()
        .filter(sal::Column::ProjectId.eq(id))
        .exec(c)
        .await?;
    if history {
        state_change::Entity::delete_many()
            .filter(state_change::Column::ProjectId.eq(id))
            .exec(c)
            .await?;
    }
    Ok(())
}

/// Refuses a CUP or external reference that already names another work.
async fn check_unique(
    c: &impl ConnectionTrait,
    d: &ProjectData,
    id: Option<&str>,
) -> Result<(), ServiceError> {
    let other = |q: sea_orm::Select<project::Entity>| match id {
        Some(id) => q.filter(project::Column::Id.ne(id)),
        None => q,
    };
    if let Some(cup) = &d.cup
        && let Some(p) =
            other(project::Entity::find().filter(project::Column::Cup.eq(cup.as_str())))
                .one(c)
                .await?
    {
        return Err(ServiceError::AlreadyExists(format!(
            "CUP {cup} already names public work {} of comune {}",
            p.id, p.istat_code
        )));
    }
    if !d.external_ref.is_empty()
        && let Some(p) = other(
            project::Entity::find()
                .filter(project::Column::IstatCode.eq(d.istat_code.as_str()))
                .filter(project::Column::ExternalRef.eq(d.external_ref.as_str())),
        )
        .one(c)
        .await?
    {
        return Err(ServiceError::AlreadyExists(format!(
            "external_ref {} already names public work {} of this comune",
            d.external_ref, p.id
        )));
    }
    Ok(())
}

/// A lost race on a unique index, told as the conflict it is.
fn conflict(e: DbErr) -> ServiceError {
    if unique_violation(&e) {
        ServiceError::AlreadyExists(
            "another work with this CUP or external_ref was recorded at the same time".into(),
        )
    } else {
        e.into()
    }
}

impl Store {
    /// Records a new work in PROGRAMMATO, entered on `today`.
    pub async fn create_project(
        &self,
        data: ProjectData,
        guard: Guard<'_>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<ProjectView, ServiceError> {
        guard(&data.istat_code)?;
        let txn = self.db().begin().await?;
        check_unique(&txn, &data, None).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut row = descriptive(&data);
        row.id = Set(id.clone());
        row.istat_code = Set(data.istat_code.clone());
        row.state = Set(State::Programmato as i32);
        row.incompiuta = Set(false);
        row.incompiuta_note = Set(String::new());
        row.contractor_name = Set(String::new());
        row.contractor_vat = Set(String::new());
        row.contract_amount_cents = Set(None);
        row.revision = Set(1);
        row.created_at = Set(now);
        row.updated_at = Set(now);
        let rows = WorkRows {
            projects: vec![row],
            funding: funding_rows(&id, &data),
            history: vec![history_row(
                &id,
                1,
                &HistoryEntry {
                    state: State::Programmato,
                    date: today,
                    note: String::new(),
                },
                now,
            )],
            ..Default::default()
        };
        rows.insert(&txn).await.map_err(conflict)?;
        let view = view_of(&txn, &id).await?;
        txn.commit().await?;
        Ok(view)
    }

    /// Replaces the descriptive data of work `id`.
    pub async fn update_project(
        &self,
        id: &str,
        data: ProjectData,
        guard: Guard<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProjectView, ServiceError> {
        let txn = self.db().begin().await?;
        let view = view_of(&txn, id).await?;
        let p = &view.project;
        guard(&p.istat_code)?;
        let mut v = Violations::new();
        v.check(
            data.istat_code == p.istat_code,
            "project.istat_code",
            format!("a work stays in its comune ({})", p.istat_code),
        );
        let current = state_of(p);
        v.check(
            !state::needs_cup(current) || data.cup.is_some(),
            "project.cup",
            format!(
                "cannot be cleared: a work in {} needs a CUP",
                state_name(current)
            ),
        );
        let committed = p.contract_amount_cents.unwrap_or(0).max(
            view.sal
                .iter()
                .fold(0i64, |acc, s| acc.saturating_add(s.amount_cents)),
        );
        v.check(
            data.budget_cents >= committed,
            "project.budget.cents",
            format!(
                "must cover the contract amount and the works accounted in SAL: at least € {}",
                euro_decimal(committed)
            ),
        );
        v.into_result()?;
        check_unique(&txn, &data, Some(id)).await?;
        bump(&txn, p, descriptive(&data), now)
            .await
            .map_err(|e| match e {
                ServiceError::Database(db) => conflict(db),
                other => other,
            })?;
        funding::Entity::delete_many()
            .filter(funding::Column::ProjectId.eq(id))
            .exec(&txn)
            .await?;
        insert_chunks(&txn, funding_rows(id, &data)).await?;
        let view = view_of(&txn, id).await?;
        txn.commit().await?;
        Ok(view)
    }

    /// Moves work `id` to state `to` on `date` with `note`.
    #[allow(clippy::too_many_arguments)]
    pub async fn advance(
        &self,
        id: &str,
        to: State,
        date: NaiveDate,
        note: &str,
        guard: Guard<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProjectView, ServiceError> {
        let txn = self.db().begin().await?;
        let view = view_of(&txn, id).await?;
        let p = &view.project;
        guard(&p.istat_code)?;
        state::check_transition(state_of(p), to, &readiness(&view))?;
        if let Some(last) = view.history.last()
            && date < last.date
        {
            return Err(ServiceError::invalid(
                "date",
                format!(
                    "must not be before the previous change ({}, {})",
                    state_name(State::try_from(last.state).unwrap_or(State::Unspecified)),
                    iso_day(last.date)
                ),
            ));
        }
        let changes = project::ActiveModel {
            state: Set(to as i32),
            ..Default::default()
        };
        bump(&txn, p, changes, now).await?;
        let seq = view.history.last().map_or(1, |h| h.seq + 1);
        insert_chunks(
            &txn,
            vec![history_row(
                id,
                seq,
                &HistoryEntry {
                    state: to,
                    date,
                    note: note.to_owned(),
                },
                now,
            )],
        )
        .await?;
        let view = view_of(&txn, id).await?;
        txn.commit().await?;
        Ok(view)
    }

    /// Records the award of work `id`: CIG `cig`, and on the first award the contractor and the
    /// contract amount; a later award adds the CIG, replaces the contractor when one is given and
    /// adds the amount of the further lot when one is given.
    pub async fn award(
        &self,
        id: &str,
        cig_code: &str,
        contractor: Option<Contractor>,
        amount_cents: Option<i64>,
        guard: Guard<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProjectView, ServiceError> {
        let txn = self.db().begin().await?;
        let view = view_of(&txn, id).await?;
        let p = &view.project;
        guard(&p.istat_code)?;
        let current = state_of(p);
        if !state::allows_award(current) {
            return Err(ServiceError::FailedPrecondition(format!(
                "a contract is awarded from AFFIDAMENTO to ULTIMATO; public work {id} is {}",
                state_name(current)
            )));
        }
        if view.cigs.iter().any(|c| c == cig_code) {
            return Err(ServiceError::AlreadyExists(format!(
                "CIG {cig_code} is already recorded for public work {id}"
            )));
        }
        if view.cigs.len() >= MAX_CIGS {
            return Err(ServiceError::FailedPrecondition(format!(
                "public work {id} already has {MAX_CIGS} CIGs, the most one work may carry"
            )));
        }
        let first = p.contractor_vat.is_empty();
        let mut v = Violations::new();
        if first {
            v.check(
                contractor.is_some(),
                "contractor",
                "must be set on the first award of a work",
            );
            v.check(
                amount_cents.is_some(),
                "contract_amount",
                "must be set on the first award of a work",
            );
        }
        let total = p
            .contract_amount_cents
            .unwrap_or(0)
            .saturating_add(amount_cents.unwrap_or(0));
        v.check(
            total <= p.budget_cents,
            "contract_amount.cents",
            format!(
                "the contract would total € {}, more than the budget of € {}",
                euro_decimal(total),
                euro_decimal(p.budget_cents)
            ),
        );
        v.into_result()?;
        let mut changes = project::ActiveModel::default();
        if let Some(c) = contractor {
            changes.contractor_name = Set(c.name);
            changes.contractor_vat = Set(c.vat_number);
        }
        if amount_cents.is_some() {
            changes.contract_amount_cents = Set(Some(total));
        }
        bump(&txn, p, changes, now).await?;
        insert_chunks(
            &txn,
            vec![cig::ActiveModel {
                project_id: Set(id.to_owned()),
                cig: Set(cig_code.to_owned()),
                position: Set(view.cigs.len() as i32),
            }],
        )
        .await?;
        let view = view_of(&txn, id).await?;
        txn.commit().await?;
        Ok(view)
    }

    /// Sets or clears the incompiuta flag of work `id`.
    pub async fn set_incompiuta(
        &self,
        id: &str,
        incompiuta: bool,
        note: &str,
        guard: Guard<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProjectView, ServiceError> {
        let txn = self.db().begin().await?;
        let view = view_of(&txn, id).await?;
        let p = &view.project;
        guard(&p.istat_code)?;
        let current = state_of(p);
        if incompiuta && !state::allows_incompiuta(current) {
            return Err(ServiceError::FailedPrecondition(format!(
                "only works handed over and not collaudato (CONSEGNA to ULTIMATO) can be incompiute; public work {id} is {}",
                state_name(current)
            )));
        }
        let changes = project::ActiveModel {
            incompiuta: Set(incompiuta),
            incompiuta_note: Set(if incompiuta {
                note.to_owned()
            } else {
                String::new()
            }),
            ..Default::default()
        };
        bump(&txn, p, changes, now).await?;
        let view = view_of(&txn, id).await?;
        txn.commit().await?;
        Ok(view)
    }

    /// Records the next SAL of work `id`, its certificate due with the comune's terms.
    pub async fn record_sal(
        &self,
        id: &str,
        new: NewSal,
        guard: Guard<'_>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<SalOutcome, ServiceError> {
        let txn = self.db().begin().await?;
        let view = view_of(&txn, id).await?;
        let p = &view.project;
        guard(&p.istat_code)?;
        let current = state_of(p);
        if !state::allows_sal(current) {
            return Err(ServiceError::FailedPrecondition(format!(
                "a SAL is recorded in IN_ESECUZIONE, SOSPESO or ULTIMATO; public work {id} is {}",
                state_name(current)
            )));
        }
        if view.sal.len() >= MAX_SAL {
            return Err(ServiceError::FailedPrecondition(format!(
                "public work {id} already has {MAX_SAL} SAL, the most one work may carry"
            )));
        }
        let facts = view.sal_facts();
        let started = view
            .history
            .iter()
            .find(|h| h.state == State::InEsecuzione as i32)
            .map(|h| h.date);
        let accounted = facts
            .iter()
            .fold(0i64, |acc, s| acc.saturating_add(s.amount_cents));
        sal_rules::check_new_sal(
            &new,
            facts.last(),
            started,
            accounted,
            p.budget_cents,
            today,
        )?;
        let terms = terms_of(&txn, &p.istat_code).await?;
        bump(&txn, p, project::ActiveModel::default(), now).await?;
        let entry = Sal {
            number: facts.last().map_or(1, |s| s.number + 1),
            date: new.date,
            progress_basis_points: new.progress_basis_points,
            amount_cents: new.amount_cents,
            certificate_due: terms.certificate_due(new.date),
            certificate: None,
            payment_due: None,
            payment: None,
        };
        insert_chunks(&txn, vec![sal_row(id, &entry)]).await?;
        let view = view_of(&txn, id).await?;
        txn.commit().await?;
        sal_outcome(view, entry.number)
    }

    /// Records the certificate of SAL `number` of work `id`; payment falls due with the comune's
    /// terms.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_certificate(
        &self,
        id: &str,
        number: i32,
        issued: NaiveDate,
        amount_cents: i64,
        guard: Guard<'_>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<SalOutcome, ServiceError> {
        let txn = self.db().begin().await?;
        let view = view_of(&txn, id).await?;
        let p = &view.project;
        guard(&p.istat_code)?;
        let row = find_sal(&view, number)?;
        sal_rules::check_certificate(&sal_facts(row), issued, amount_cents, today)?;
        let terms = terms_of(&txn, &p.istat_code).await?;
        bump(&txn, p, project::ActiveModel::default(), now).await?;
        sal::Entity::update_many()
            .set(sal::ActiveModel {
                certificate_issued_date: Set(Some(issued)),
                certificate_amount_cents: Set(Some(amount_cents)),
                payment_due_date: Set(Some(terms.payment_due(issued))),
                ..Default::default()
            })
            .filter(sal::Column::ProjectId.eq(id))
            .filter(sal::Column::Number.eq(number))
            .exec(&txn)
            .await?;
        let view = view_of(&txn, id).await?;
        txn.commit().await?;
        sal_outcome(view, number)
    }

    /// Records the payment of the certificate of SAL `number` of work `id`.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_payment(
        &self,
        id: &str,
        number: i32,
        paid: NaiveDate,
        amount_cents: i64,
        guard: Guard<'_>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<SalOutcome, ServiceError> {
        let txn = self.db().begin().await?;
        let view = view_of(&txn, id).await?;
        let p = &view.project;
        guard(&p.istat_code)?;
        let row = find_sal(&view, number)?;
        sal_rules::check_payment(&sal_facts(row), paid, amount_cents, today)?;
        bump(&txn, p, project::ActiveModel::default(), now).await?;
        sal::Entity::update_many()
            .set(sal::ActiveModel {
                paid_date: Set(Some(paid)),
                paid_amount_cents: Set(Some(amount_cents)),
                ..Default::default()
            })
            .filter(sal::Column::ProjectId.eq(id))
            .filter(sal::Column::Number.eq(number))
            .exec(&txn)
            .await?;
        let view = view_of(&txn, id).await?;
        txn.commit().await?;
        sal_outcome(view, number)
    }

    /// Writes validated import rows (row number, work) of one comune, all or none: a row whose CUP
    /// or external reference names a stored work updates it, the others are created. Conflicts
    /// between rows and stored works reject the whole import with one error per row.
    pub async fn import(
        &self,
        rows: Vec<(i32, ImportedWork)>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<ImportOutcome, ServiceError> {
        let txn = self.db().begin().await?;
        let cups: Vec<String> = rows
            .iter()
            .filter_map(|(_, w)| w.data.cup.clone())
            .collect();
        let refs: Vec<(String, String)> = rows
            .iter()
            .filter(|(_, w)| !w.data.external_ref.is_empty())
            .map(|(_, w)| (w.data.istat_code.clone(), w.data.external_ref.clone()))
            .collect();
        let mut by_cup: HashMap<String, project::Model> = HashMap::new();
        for chunk in cups.chunks(IN_CHUNK) {
            for p in project::Entity::find()
                .filter(project::Column::Cup.is_in(chunk.iter().cloned()))
                .all(&txn)
                .await?
            {
                by_cup.insert(p.cup.clone(), p);
            }
        }
        let mut by_ref: HashMap<(String, String), project::Model> = HashMap::new();
        let comuni: BTreeSet<&String> = refs.iter().map(|(c, _)| c).collect();
        for comune in comuni {
            let wanted: Vec<String> = refs
                .iter()
                .filter(|(c, _)| c == comune)
                .map(|(_, r)| r.clone())
                .collect();
            for chunk in wanted.chunks(IN_CHUNK) {
                for p in project::Entity::find()
                    .filter(project::Column::IstatCode.eq(comune.as_str()))
                    .filter(project::Column::ExternalRef.is_in(chunk.iter().cloned()))
                    .all(&txn)
                    .await?
                {
                    by_ref.insert((p.istat_code.clone(), p.external_ref.clone()), p);
                }
            }
        }

        let mut errors = Vec::new();
        let mut seen_cups: HashMap<String, i32> = HashMap::new();
        let mut seen_refs: HashMap<String, i32> = HashMap::new();
        let mut seen_ids: HashMap<String, i32> = HashMap::new();
        let mut plan: Vec<(i32, Option<project::Model>, ImportedWork)> = Vec::new();
        for (row, work) in rows {
            let mut error = |field: &str, description: String| {
                errors.push(RowError {
                    row,
                    field: field.to_owned(),
                    description,
                })
            };
            let cup_match = work.data.cup.as_ref().and_then(|c| by_cup.get(c));
            let ref_match =
                by_ref.get(&(work.data.istat_code.clone(), work.data.external_ref.clone()));
            if let Some(cup) = &work.data.cup
                && let Some(first) = seen_cups.insert(cup.clone(), row)
            {
                error("project.cup", format!("CUP {cup} is also in row {first}"));
            }
            if !work.data.external_ref.is_empty()
                && let Some(first) = seen_refs.insert(work.data.external_ref.clone(), row)
            {
                error(
                    "project.external_ref",
                    format!(
                        "external_ref {} is also in row {first}",
                        work.data.external_ref
                    ),
                );
            }
            let existing = match (cup_match, ref_match) {
                (Some(a), Some(b)) if a.id != b.id => {
                    error(
                        "project.external_ref",
                        format!(
                            "names public work {} while the CUP names public work {}",
                            b.id, a.id
                        ),
                    );
                    None
                }
                (Some(a), _) if a.istat_code != work.data.istat_code => {
                    error(
                        "project.cup",
                        format!(
                            "already names public work {} of comune {}",
                            a.id, a.istat_code
                        ),
                    );
                    None
                }
                (a, b) => a.or(b).cloned(),
            };
            if let Some(p) = &existing
                && let Some(first) = seen_ids.insert(p.id.clone(), row)
            {
                error(
                    "project",
                    format!("updates public work {} as row {first} does", p.id),
                );
            }
            plan.push((row, existing, work));
        }
        if !errors.is_empty() {
            // Nothing was written: dropping the transaction rolls the reads back.
            return Ok(ImportOutcome::Rejected(errors));
        }

        let count = plan.len();
        let mut rows = WorkRows::default();
        for (_, existing, work) in plan {
            match existing {
                None => rows.add_new(&uuid::Uuid::new_v4().to_string(), &work, today, now),
                Some(p) => {
                    // A row without history keeps the stored one while the state is unchanged.
                    let keep_history = work.history.is_empty() && p.state == work.state as i32;
                    bump(&txn, &p, whole(&work), now).await?;
                    delete_children(&txn, &p.id, !keep_history).await?;
                    let history = if keep_history {
                        Vec::new()
                    } else {
                        history_or_imported(&work, today)
                    };
                    rows.children(&p.id, &work, &history, now);
                }
            }
        }
        rows.insert(&txn).await.map_err(conflict)?;
        txn.commit().await?;
        Ok(ImportOutcome::Imported(count))
    }
}

fn find_sal(view: &ProjectView, number: i32) -> Result<&sal::Model, ServiceError> {
    view.sal.iter().find(|s| s.number == number).ok_or_else(|| {
        ServiceError::not_found(
            "SAL",
            format!("{number} of public work {}", view.project.id),
        )
    })
}

fn sal_outcome(view: ProjectView, number: i32) -> Result<SalOutcome, ServiceError> {
    let sal = view
        .sal
        .iter()
        .find(|s| s.number == number)
        .cloned()
        .ok_or_else(|| ServiceError::Internal(format!("SAL {number} vanished after its write")))?;
    Ok(SalOutcome { sal, view })
}
