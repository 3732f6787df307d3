//! Reports in the database: filing (with the duplicate check in the same transaction), the
//! workflow steps (the linked reports follow in the same transaction), and the reads that assemble a
//! report with its history.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use patto_proto::environment::v1::EnvironmentReportStatus as Status;
use patto_service_kit::comuni;
use patto_service_kit::error::ServiceError;
use patto_service_kit::indicators;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::{Store, lock, report, report_update};
use crate::domain::REPORT;
use crate::domain::geo::{self, Point};
use crate::domain::reports::{
    self as rules, Action, Candidate, LINK_WINDOW_DAYS, NewReport, OPEN, Photo, Place,
};

/// A report with its history as the reporter sees it: for a linked report, its own entries and
/// those of the report it is linked to from the moment of the link.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportView {
    /// The stored report (a linked report's status fields follow its primary's).
    pub report: report::Model,
    /// History, oldest first.
    pub history: Vec<report_update::Model>,
}

/// Filters of a report listing.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Only this comune.
    pub istat_code: Option<String>,
    /// Only these categories (empty: all).
    pub categories: Vec<i32>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<i32>,
    /// Only within this many metres of this point.
    pub near: Option<(Point, f64)>,
    /// Filed at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Filed before.
    pub created_before: Option<DateTime<Utc>>,
    /// Include linked reports.
    pub include_linked: bool,
}

/// A workflow step, with what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportAct {
    /// Take in charge.
    Acknowledge {
        /// Office assigned.
        assigned_to: String,
        /// Expected resolution day.
        expected: Option<NaiveDate>,
        /// Note for the citizen.
        note: String,
    },
    /// Start the work.
    Start {
        /// Note.
        note: String,
    },
    /// Close as fixed.
    Resolve {
        /// What was done.
        note: String,
    },
    /// Close as not acted upon.
    Reject {
        /// Why.
        reason: String,
    },
    /// Add a note.
    Note {
        /// The note.
        note: String,
    },
}

impl ReportAct {
    fn action(&self) -> Action {
        match self {
            Self::Acknowledge { .. } => Action::Acknowledge,
            Self::Start { .. } => Action::Start,
            Self::Resolve { .. } => Action::Resolve,
            Self::Reject { .. } => Action::Reject,
            Self::Note { .. } => Action::Note,
        }
    }

    fn note(&self) -> &str {
        match self {
            Self::Acknowledge { note, .. }
            | Self::Start { note }
            | Self::Resolve { note }
            | Self::Note { note } => note,
            Self::Reject { reason } => reason,
        }
    }
}

fn status_of(r: &report::Model) -> Status {
    Status::try_from(r.status).unwrap_or(Status::Unspecified)
}

/// Where a stored report is, for duplicate detection.
pub(crate) fn place_of(r: &report::Model) -> Place {
    Place {
        point: match (r.latitude, r.longitude) {
            (Some(lat), Some(lon)) => Some(Point { lat, lon }),
            _ => None,
        },
        address_key: rules::address_key(&r.street, &r.house_number),
    }
}

/// The photos of a stored report.
pub(crate) fn photos_of(r: &report::Model) -> Vec<Photo> {
    // Written by this service from validated metadata; an unreadable value shows no photo rather
    // than failing the whole answer.
    serde_json::from_str(&r.photos).unwrap_or_default()
}

fn candidate(r: &report::Model) -> Candidate {
    Candidate {
        id: r.id.clone(),
        category: patto_proto::environment::v1::EnvironmentReportCategory::try_from(r.category)
            .unwrap_or_default(),
        status: status_of(r),
        linked_to: r.linked_to.clone(),
        created_at: r.created_at,
        place: place_of(r),
    }
}

/// Who writes an entry: the office in charge, else the comune.
fn author_of(r: &report::Model, assigned_to: &str) -> String {
    if !assigned_to.is_empty() {
        return assigned_to.to_owned();
    }
    comuni::by_istat(&r.istat_code)
        .map(|c| format!("Comune di {}", c.name))
        .unwrap_or_default()
}

impl Store {
    /// Files a report: in one transaction, looks for an open report it duplicates, links it there
    /// (one more supporter) or stores it open, writes its first history entry and records the
    /// online interaction of an identified reporter. `filed_at` is when it was filed: `None` for
    /// now (the moment the lock is held), a past time for reports taken on paper and entered later.
    /// Returns the report and, when linked, the id of the report it joined.
    pub async fn create_report(
        &self,
        new: NewReport,
        filed_at: Option<DateTime<Utc>>,
    ) -> Result<(ReportView, Option<String>), ServiceError> {
        let txn = self.db.begin().await?;
        // Two reports of one problem filed at the same moment must not both open a case.
        lock(
            &txn,
            &format!("report:{}:{}", new.istat_code, new.category as i32),
        )
        .await?;
        // The time is read once the lock is held: a report that waited for it is later than the
        // one that held it, never earlier, so the one that held it is within the window.
        let now = filed_at.unwrap_or_else(Utc::now);
        let place = new.place();
        let mut q = report::Entity::find()
            .filter(report::Column::IstatCode.eq(new.istat_code.as_str()))
            .filter(report::Column::Category.eq(new.category as i32))
            .filter(report::Column::Status.is_in(OPEN.map(|s| s as i32)))
            .filter(report::Column::LinkedTo.is_null())
            .filter(report::Column::CreatedAt.gte(now - Duration::days(LINK_WINDOW_DAYS)))
            .filter(report::Column::CreatedAt.lte(now));
        // Prefilter: points in the box around the new point, and reports at the same house
        // number (compared by address when a point is missing on either side).
        let mut near = Condition::any();
        if let Some(p) = place.point {
            let ((lat0, lat1), (lon0, lon1)) = geo::bounding_box(p, rules::LINK_RADIUS_M);
            near = near.add(
                Condition::all()
                    .add(report::Column::Latitude.between(lat0, lat1))
                    .add(report::Column::Longitude.between(lon0, lon1)),
            );
        }
        if let Some(a) = new.address.as_ref().filter(|a| !a.house_number.is_empty()) {
            near = near.add(
                Condition::all()
                    .add(report::Column::Street.ne(""))
                    .add(report::Column::HouseNumber.eq(a.house_number.as_str())),
            );
        }
        if place.point.is_none() && place.address_key.is_none() {
            near = near.add(report::Column::Id.eq(""));
        }
        q = q.filter(near);
        let nearby: Vec<Candidate> = q.all(&txn).await?.iter().map(candidate).collect();
        let target = rules::link_target(&nearby, new.category, &place, now).map(|c| c.id.clone());

        let mut primary: Option<report::Model> = None;
        if let Some(target) = &target {
            // The target may have been closed since it was read; then this report stands alone.
            let joined = report::Entity::update_many()
                .col_expr(
                    report::Column::SupportersCount,
                    Expr::col(report::Column::SupportersCount).add(1),
                )
                .col_expr(report::Column::UpdatedAt, Expr::value(now))
                .filter(report::Column::Id.eq(target.as_str()))
                .filter(report::Column::Status.is_in(OPEN.map(|s| s as i32)))
                .exec(&txn)
                .await?;
            if joined.rows_affected == 1 {
                primary = report::Entity::find_by_id(target.as_str())
                    .one(&txn)
                    .await?;
            }
        }

        let id = uuid::Uuid::new_v4().to_string();
        let address = new.address.clone().unwrap_or_default();
        let photos = serde_json::to_string(&new.photos)
            .map_err(|e| ServiceError::Internal(format!("photo metadata: {e}")))?;
        let (status, assigned_to, expected, linked_to, supporters) = match &primary {
            Some(p) => (
                p.status,
                p.assigned_to.clone(),
                p.expected_resolution_date.clone(),
                Some(p.id.clone()),
                0,
            ),
            None => (Status::Open as i32, String::new(), String::new(), None, 1),
        };
        let row = report::ActiveModel {
            id: Set(id.clone()),
            istat_code: Set(new.istat_code.clone()),
            category: Set(new.category as i32),
            description: Set(new.description),
            latitude: Set(new.point.map(|p| p.lat)),
            longitude: Set(new.point.map(|p| p.lon)),
            street: Set(address.street),
            house_number: Set(address.house_number),
            postal_code: Set(address.postal_code),
            locality: Set(address.locality),
            location_note: Set(new.location_note),
            photos: Set(photos),
            status: Set(status),
            fiscal_code: Set(new.fiscal_code.clone().unwrap_or_default()),
            linked_to: Set(linked_to),
            supporters_count: Set(supporters),
            assigned_to: Set(assigned_to),
            expected_resolution_date: Set(expected),
            created_at: Set(now),
            updated_at: Set(now),
            closed_at: Set(None),
        }
        .insert(&txn)
        .await?;
        let note = match &primary {
            Some(p) => format!(
                "Segnalazione collegata alla segnalazione {} sullo stesso problema, già aperta nelle vicinanze: ne segue l'andamento.",
                p.id
            ),
            None => String::new(),
        };
        add_entry(&txn, &id, now, status, &note, "").await?;
        if let Some(cf) = &new.fiscal_code {
            indicators::record(&txn, &self.salt, &new.istat_code, &REPORT, cf, now).await?;
        }
        txn.commit().await?;
        let view = self
            .views(vec![row])
            .await?
            .pop()
            .ok_or_else(|| ServiceError::Internal("report vanished after insert".into()))?;
        Ok((view, primary.map(|p| p.id)))
    }

    /// Takes a workflow step on report `id`: checks the transition, writes the report, its history
    /// entry and the reports linked to it, in one transaction. Returns the report and how many
    /// linked reports it closed.
    pub async fn act_on_report(
        &self,
        id: &str,
        act: ReportAct,
        now: DateTime<Utc>,
    ) -> Result<(ReportView, i32), ServiceError> {
        let action = act.action();
        let txn = self.db.begin().await?;
        let row = report::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("report", id))?;
        if let Some(primary) = &row.linked_to {
            return Err(rules::linked_refusal(id, primary, action));
        }
        let from = status_of(&row);
        let to = rules::transition(id, from, action)?;
        let (assigned_to, expected) = match &act {
            ReportAct::Acknowledge {
                assigned_to,
                expected,
                ..
            } => (
                assigned_to.clone(),
                expected.map(|d| d.to_string()).unwrap_or_default(),
            ),
            _ => (
                row.assigned_to.clone(),
                row.expected_resolution_date.clone(),
            ),
        };
        let closed_at = rules::CLOSED.contains(&to).then_some(now);
        // Conditional on the status read: a concurrent step makes this one fail, never both apply.
        let updated = report::Entity::update_many()
            .col_expr(report::Column::Status, Expr::value(to as i32))
            .col_expr(report::Column::AssignedTo, Expr::value(assigned_to.clone()))
            .col_expr(
                report::Column::ExpectedResolutionDate,
                Expr::value(expected.clone()),
            )
            .col_expr(report::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                report::Column::ClosedAt,
                Expr::value(closed_at.or(row.closed_at)),
            )
            .filter(report::Column::Id.eq(id))
            .filter(report::Column::Status.eq(from as i32))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(ServiceError::FailedPrecondition(format!(
                "report {id} changed while this step was taken; read it again and retry"
            )));
        }
        add_entry(
            &txn,
            id,
            now,
            to as i32,
            act.note(),
            &author_of(&row, &assigned_to),
        )
        .await?;
        let linked = report::Entity::update_many()
            .col_expr(report::Column::Status, Expr::value(to as i32))
            .col_expr(report::Column::AssignedTo, Expr::value(assigned_to))
            .col_expr(
                report::Column::ExpectedResolutionDate,
                Expr::value(expected),
            )
            .col_expr(report::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                report::Column::ClosedAt,
                Expr::value(closed_at.or(row.closed_at)),
            )
            .filter(report::Column::LinkedTo.eq(id))
            .exec(&txn)
            .await?;
        let row = report::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("report", id))?;
        txn.commit().await?;
        let closed = if closed_at.is_some() {
            i32::try_from(linked.rows_affected).unwrap_or(i32::MAX)
        } else {
            0
        };
        let view = self
            .views(vec![row])
            .await?
            .pop()
            .ok_or_else(|| ServiceError::not_found("report", id))?;
        Ok((view, closed))
    }

    /// The report with this id.
    pub async fn report(&self, id: &str) -> Result<Option<ReportView>, DbErr> {
        let rows = report::Entity::find_by_id(id).all(&self.db).await?;
        Ok(self.views(rows).await?.pop())
    }

    /// The reports with these ids (unknown ids are left out).
    pub async fn reports_by_id(&self, ids: &[String]) -> Result<Vec<ReportView>, DbErr> {
        let rows = report::Entity::find()
            .filter(report::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?;
        self.views(rows).await
    }

    /// Reports filed by these citizens (canonical fiscal codes), in these statuses (all when
    /// empty), newest first.
    pub async fn reports_by_citizen(
        &self,
        fiscal_codes: &[String],
        statuses: &[i32],
    ) -> Result<Vec<ReportView>, DbErr> {
        let mut q = report::Entity::find()
            .filter(report::Column::FiscalCode.is_in(fiscal_codes.iter().cloned()));
        if !statuses.is_empty() {
            q = q.filter(report::Column::Status.is_in(statuses.iter().copied()));
        }
        let rows = q
            .order_by_desc(report::Column::CreatedAt)
            .order_by_asc(report::Column::Id)
            .all(&self.db)
            .await?;
        self.views(rows).await
    }

    /// A page of reports matching `f`, newest first, and the total.
    pub async fn list_reports(
        &self,
        f: &ReportFilter,
        page: Page,
    ) -> Result<(Vec<ReportView>, u64), DbErr> {
        let mut cond = Condition::all();
        if let Some(code) = &f.istat_code {
            cond = cond.add(report::Column::IstatCode.eq(code.as_str()));
        }
        if !f.categories.is_empty() {
            cond = cond.add(report::Column::Category.is_in(f.categories.iter().copied()));
        }
        if !f.statuses.is_empty() {
            cond = cond.add(report::Column::Status.is_in(f.statuses.iter().copied()));
        }
        if let Some(t) = f.created_after {
            cond = cond.add(report::Column::CreatedAt.gte(t));
        }
        if let Some(t) = f.created_before {
            cond = cond.add(report::Column::CreatedAt.lt(t));
        }
        if !f.include_linked {
            cond = cond.add(report::Column::LinkedTo.is_null());
        }
        if let Some((center, radius)) = f.near {
            let ((lat0, lat1), (lon0, lon1)) = geo::bounding_box(center, radius);
            cond = cond
                .add(report::Column::Latitude.between(lat0, lat1))
                .add(report::Column::Longitude.between(lon0, lon1));
        }
        let q = report::Entity::find()
            .filter(cond)
            .order_by_desc(report::Column::CreatedAt)
            .order_by_asc(report::Column::Id);
        let (rows, total) = match f.near {
            // The exact distance is decided here, so paging follows it in memory; the box keeps
            // the candidates to a few streets' worth.
            Some((center, radius)) => {
                let inside: Vec<report::Model> = q
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .filter(|r| {
                        place_of(r)
                            .point
                            .is_some_and(|p| geo::distance_m(center, p) <= radius)
                    })
                    .collect();
                let total = inside.len() as u64;
                let rows = inside
                    .into_iter()
                    .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
                    .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
                    .collect();
                (rows, total)
            }
            None => {
                let total = q.clone().count(&self.db).await?;
                let rows = q
                    .offset(page.offset)
                    .limit(page.limit)
                    .all(&self.db)
                    .await?;
                (rows, total)
            }
        };
        Ok((self.views(rows).await?, total))
    }

    /// Assembles reports with their history, in the order given.
    async fn views(&self, rows: Vec<report::Model>) -> Result<Vec<ReportView>, DbErr> {
        let ids: BTreeSet<String> = rows
            .iter()
            .flat_map(|r| std::iter::once(r.id.clone()).chain(r.linked_to.clone()))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let entries = report_update::Entity::find()
            .filter(report_update::Column::ReportId.is_in(ids))
            .order_by_asc(report_update::Column::Time)
            .order_by_asc(report_update::Column::Id)
            .all(&self.db)
            .await?;
        let mut by_report: BTreeMap<&str, Vec<&report_update::Model>> = BTreeMap::new();
        for e in &entries {
            by_report.entry(e.report_id.as_str()).or_default().push(e);
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let own = by_report.get(r.id.as_str()).cloned().unwrap_or_default();
                let mut history: Vec<report_update::Model> = own.into_iter().cloned().collect();
                if let Some(primary) = &r.linked_to {
                    history.extend(
                        by_report
                            .get(primary.as_str())
                            .into_iter()
                            .flatten()
                            .filter(|e| e.time > r.created_at)
                            .map(|e| (*e).clone()),
                    );
                    history.sort_by_key(|e| (e.time, e.id));
                }
                ReportView { report: r, history }
            })
            .collect())
    }
}

async fn add_entry(
    conn: &impl ConnectionTrait,
    report_id: &str,
    time: DateTime<Utc>,
    status: i32,
    note: &str,
    author: &str,
) -> Result<(), DbErr> {
    report_update::ActiveModel {
        report_id: Set(report_id.to_owned()),
        time: Set(time),
        status: Set(status),
        note: Set(note.to_owned()),
        author: Set(author.to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map(|_| ())
}

/// Stores a report as the demo has it (status, office and history included), bypassing the
/// workflow checks the demo script follows by construction.
pub(crate) async fn insert_demo_report(
    conn: &impl ConnectionTrait,
    row: report::Model,
    history: &[(DateTime<Utc>, Status, &str)],
) -> Result<(), DbErr> {
    let author = author_of(&row, &row.assigned_to);
    let id = row.id.clone();
    report::ActiveModel::from(row).insert(conn).await?;
    for (time, status, note) in history {
        let by = if note.is_empty() { "" } else { author.as_str() };
        add_entry(conn, &id, *time, *status as i32, note, by).await?;
    }
    Ok(())
}
