//! The public-works database: reads here, writes in [`ops`], each write in one transaction.
//!
//! A work is one `projects` row and its children (CIGs, funding sources, SAL, state changes). Every
//! write bumps the row's `revision` first, conditionally on the revision it read, and only then
//! touches the children: of two concurrent changes of one work the second waits for the first, finds
//! the revision moved and is refused with a request to retry, instead of half-overwriting it.

pub(crate) mod entities;
pub mod migration;
pub(crate) mod ops;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use patto_service_kit::error::ServiceError;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::domain::sal::{Sal, SalTerms};
pub(crate) use entities::{cig, funding, project, sal, sal_terms, state_change};
pub use ops::{ImportOutcome, RowError, SalOutcome};

/// Ids per `IN (…)` list: far below the bind-parameter limits of SQLite and PostgreSQL.
const IN_CHUNK: usize = 500;

/// A work with everything that belongs to it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectView {
    /// The work's row.
    pub project: project::Model,
    /// CIGs, in the order recorded.
    pub cigs: Vec<String>,
    /// Funding sources, in the order given.
    pub funding: Vec<funding::Model>,
    /// SAL, by number.
    pub sal: Vec<sal::Model>,
    /// State changes, oldest first.
    pub history: Vec<state_change::Model>,
}

impl ProjectView {
    /// The SAL as the domain rules see them.
    pub fn sal_facts(&self) -> Vec<Sal> {
        self.sal.iter().map(sal_facts).collect()
    }
}

/// A stored SAL as the domain rules see it.
pub fn sal_facts(s: &sal::Model) -> Sal {
    Sal {
        number: s.number,
        date: s.date,
        progress_basis_points: s.progress_basis_points,
        amount_cents: s.amount_cents,
        certificate_due: s.certificate_due_date,
        certificate: s
            .certificate_issued_date
            .map(|d| (d, s.certificate_amount_cents.unwrap_or(0))),
        payment_due: s.payment_due_date,
        payment: s.paid_date.map(|d| (d, s.paid_amount_cents.unwrap_or(0))),
    }
}

/// Filters of a listing of works.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    /// Only this comune.
    pub istat_code: Option<String>,
    /// Only these states (enum numbers); empty means all.
    pub states: Vec<i32>,
    /// Only works funded by one of these sources; empty means all.
    pub funding_sources: Vec<i32>,
    /// Only these categories; empty means all.
    pub categories: Vec<i32>,
    /// Only works in a programme covering this year.
    pub programme_year: Option<i32>,
    /// Only works in the elenco annuale (of `programme_year`, when given).
    pub annual_list_only: bool,
    /// Only opere incompiute.
    pub incompiuta_only: bool,
    /// Only works with a late certificate or payment on `today`.
    pub late_only: bool,
    /// Words of the title or description, or a CUP or CIG.
    pub text: Option<String>,
    /// The Italian day lateness is judged on.
    pub today: NaiveDate,
}

/// Access to the public-works database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The connection, for the indicators service and demo data.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A page of the works matching `f`, most recently updated first, and the total.
    pub async fn list_projects(
        &self,
        f: &ProjectFilter,
        page: Page,
    ) -> Result<(Vec<ProjectView>, u64), DbErr> {
        let q = project::Entity::find().filter(condition(f));
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_desc(project::Column::UpdatedAt)
            .order_by_asc(project::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((views(&self.db, rows).await?, total))
    }

    /// The works with these ids (unknown ids are left out).
    pub async fn projects_by_id(&self, ids: &[String]) -> Result<Vec<ProjectView>, DbErr> {
        let mut rows = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            rows.extend(
                project::Entity::find()
                    .filter(project::Column::Id.is_in(chunk.iter().cloned()))
                    .all(&self.db)
                    .await?,
            );
        }
        views(&self.db, rows).await
    }

    /// Up to `per_comune` works of each comune, most recently updated first, optionally only in
    /// `states` and funded by `source`.
    pub async fn by_comune(
        &self,
        codes: &[String],
        per_comune: usize,
        states: &[i32],
        source: Option<i32>,
    ) -> Result<BTreeMap<String, Vec<ProjectView>>, DbErr> {
        let f = ProjectFilter {
            states: states.to_vec(),
            funding_sources: source.into_iter().collect(),
            ..Default::default()
        };
        let rows = project::Entity::find()
            .select_only()
            .column(project::Column::Id)
            .column(project::Column::IstatCode)
            .filter(condition(&f))
            .filter(project::Column::IstatCode.is_in(codes.iter().cloned()))
            .order_by_asc(project::Column::IstatCode)
            .order_by_desc(project::Column::UpdatedAt)
            .order_by_asc(project::Column::Id)
            .into_tuple::<(String, String)>()
            .all(&self.db)
            .await?;
        let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, istat) in rows {
            let list = kept.entry(istat).or_default();
            if list.len() < per_comune {
                list.push(id);
            }
        }
        let ids: Vec<String> = kept.values().flatten().cloned().collect();
        let mut found: HashMap<String, ProjectView> = self
            .projects_by_id(&ids)
            .await?
            .into_iter()
            .map(|v| (v.project.id.clone(), v))
            .collect();
        Ok(kept
            .into_iter()
            .map(|(istat, ids)| {
                let views = ids.iter().filter_map(|id| found.remove(id)).collect();
                (istat, views)
            })
            .collect())
    }

    /// Every work of a comune (optionally only in `states`), oldest first: the open-data export,
    /// in a stable order so that successive exports diff cleanly.
    pub async fn comune_works(
        &self,
        istat_code: &str,
        states: &[i32],
    ) -> Result<Vec<ProjectView>, DbErr> {
        let mut q = project::Entity::find().filter(project::Column::IstatCode.eq(istat_code));
        if !states.is_empty() {
            q = q.filter(project::Column::State.is_in(states.iter().copied()));
        }
        let rows = q
            .order_by_asc(project::Column::CreatedAt)
            .order_by_asc(project::Column::Id)
            .all(&self.db)
            .await?;
        views(&self.db, rows).await
    }

    /// The SAL terms of a comune (the legal defaults when it has no row).
    pub async fn sal_terms(&self, istat_code: &str) -> Result<SalTerms, DbErr> {
        terms_of(&self.db, istat_code).await
    }

    /// Sets the SAL terms of a comune: they apply to SAL and certificates recorded from now on.
    pub async fn set_sal_terms(
        &self,
        istat_code: &str,
        terms: SalTerms,
    ) -> Result<(), ServiceError> {
        terms.validate()?;
        let row = sal_terms::ActiveModel {
            istat_code: Set(istat_code.to_owned()),
            certificate_days: Set(terms.certificate_days),
            payment_days: Set(terms.payment_days),
        };
        let exists = sal_terms::Entity::find_by_id(istat_code)
            .one(&self.db)
            .await?
            .is_some();
        if exists {
            row.update(&self.db).await?;
        } else {
            row.insert(&self.db).await?;
        }
        Ok(())
    }
}

/// The SAL terms of a comune over `conn` (the legal defaults when it has no row).
pub(crate) async fn terms_of(
    conn: &impl ConnectionTrait,
    istat_code: &str,
) -> Result<SalTerms, DbErr> {
    Ok(sal_terms::Entity::find_by_id(istat_code)
        .one(conn)
        .await?
        .map_or_else(SalTerms::default, |t| SalTerms {
            certificate_days: t.certificate_days,
            payment_days: t.payment_days,
        }))
}

/// The SQL form of a listing's filters.
fn condition(f: &ProjectFilter) -> Condition {
    let mut cond = Condition::all();
    if let Some(code) = &f.istat_code {
        cond = cond.add(project::Column::IstatCode.eq(code.as_str()));
    }
    if !f.states.is_empty() {
        cond = cond.add(project::Column::State.is_in(f.states.iter().copied()));
    }
    if !f.categories.is_empty() {
        cond = cond.add(project::Column::Category.is_in(f.categories.iter().copied()));
    }
    if !f.funding_sources.is_empty() {
        cond = cond.add(
            project::Column::Id.in_subquery(
                Query::select()
                    .column(funding::Column::ProjectId)
                    .from(funding::Entity)
                    .and_where(funding::Column::Source.is_in(f.funding_sources.iter().copied()))
                    .to_owned(),
            ),
        );
    }
    if let Some(year) = f.programme_year {
        cond = cond
            .add(project::Column::ProgrammeFirstYear.gt(0))
            .add(project::Column::ProgrammeFirstYear.lte(year))
            .add(project::Column::ProgrammeLastYear.gte(year));
        if f.annual_list_only {
            // The elenco annuale of a year is the first year of that year's programme.
            cond = cond.add(project::Column::ProgrammeFirstYear.eq(year));
        }
    }
    if f.annual_list_only {
        cond = cond.add(project::Column::InAnnualList.eq(true));
    }
    if f.incompiuta_only {
        cond = cond.add(project::Column::Incompiuta.eq(true));
    }
    if f.late_only {
        cond = cond.add(project::Column::Id.in_subquery(late_sal(f.today)));
    }
    if let Some(text) = &f.text {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
        let code = text.trim().to_ascii_uppercase();
        cond = cond.add(
            Condition::any()
                .add(
                    Expr::expr(Func::lower(Expr::col((
                        project::Entity,
                        project::Column::Title,
                    ))))
                    .like(like()),
                )
                .add(
                    Expr::expr(Func::lower(Expr::col((
                        project::Entity,
                        project::Column::Description,
                    ))))
                    .like(like()),
                )
                .add(project::Column::Cup.eq(code.as_str()))
                .add(
                    project::Column::Id.in_subquery(
                        Query::select()
                            .column(cig::Column::ProjectId)
                            .from(cig::Entity)
                            .and_where(cig::Column::Cig.eq(code.as_str()))
                            .to_owned(),
                    ),
                ),
        );
    }
    cond
}

/// Ids of the works with a late SAL on `today`: the same rule as
/// [`crate::domain::sal::lateness`], in SQL so that the listing can page over it.
fn late_sal(today: NaiveDate) -> sea_orm::sea_query::SelectStatement {
    let col = |c: sal::Column| Expr::col((sal::Entity, c));
    let certificate_late = Condition::any()
        .add(
            Condition::all()
                .add(sal::Column::CertificateIssuedDate.is_null())
                .add(sal::Column::CertificateDueDate.lt(today)),
        )
        .add(col(sal::Column::CertificateIssuedDate).gt(col(sal::Column::CertificateDueDate)));
    let payment_late = Condition::all()
        .add(sal::Column::PaymentDueDate.is_not_null())
        .add(
            Condition::any()
                .add(
                    Condition::all()
                        .add(sal::Column::PaidDate.is_null())
                        .add(sal::Column::PaymentDueDate.lt(today)),
                )
                .add(col(sal::Column::PaidDate).gt(col(sal::Column::PaymentDueDate))),
        );
    Query::select()
        .column(sal::Column::ProjectId)
        .from(sal::Entity)
        .cond_where(Condition::any().add(certificate_late).add(payment_late))
        .to_owned()
}

/// Loads the children of `rows` in a few bulk queries and assembles the views, in `rows`' order.
pub(crate) async fn views(
    conn: &impl ConnectionTrait,
    rows: Vec<project::Model>,
) -> Result<Vec<ProjectView>, DbErr> {
    let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
    let mut cigs: HashMap<String, Vec<String>> = HashMap::new();
    let mut fundings: HashMap<String, Vec<funding::Model>> = HashMap::new();
    let mut sals: HashMap<String, Vec<sal::Model>> = HashMap::new();
    let mut histories: HashMap<String, Vec<state_change::Model>> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let chunk = chunk.iter().cloned();
        for c in cig::Entity::find()
            .filter(cig::Column::ProjectId.is_in(chunk.clone()))
            .order_by_asc(cig::Column::ProjectId)
            .order_by_asc(cig::Column::Position)
            .all(conn)
            .await?
        {
            cigs.entry(c.project_id).or_default().push(c.cig);
        }
        for f in funding::Entity::find()
            .filter(funding::Column::ProjectId.is_in(chunk.clone()))
            .order_by_asc(funding::Column::ProjectId)
            .order_by_asc(funding::Column::Position)
            .all(conn)
            .await?
        {
            fundings.entry(f.project_id.clone()).or_default().push(f);
        }
        for s in sal::Entity::find()
            .filter(sal::Column::ProjectId.is_in(chunk.clone()))
            .order_by_asc(sal::Column::ProjectId)
            .order_by_asc(sal::Column::Number)
            .all(conn)
            .await?
        {
            sals.entry(s.project_id.clone()).or_default().push(s);
        }
        for h in state_change::Entity::find()
            .filter(state_change::Column::ProjectId.is_in(chunk))
            .order_by_asc(state_change::Column::ProjectId)
            .order_by_asc(state_change::Column::Seq)
            .all(conn)
            .await?
        {
            histories.entry(h.project_id.clone()).or_default().push(h);
        }
    }
    Ok(rows
        .into_iter()
        .map(|project| ProjectView {
            cigs: cigs.remove(&project.id).unwrap_or_default(),
            funding: fundings.remove(&project.id).unwrap_or_default(),
            sal: sals.remove(&project.id).unwrap_or_default(),
            history: histories.remove(&project.id).unwrap_or_default(),
            project,
        })
        .collect())
}

/// The work with this id and its children, over `conn`.
pub(crate) async fn view_of(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<ProjectView, ServiceError> {
    let row = project::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| ServiceError::not_found("public work", id))?;
    views(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::not_found("public work", id))
}
