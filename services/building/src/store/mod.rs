//! The building database: reads, and writes that each run in one transaction.
//!
//! Every permit write loads the permit under a row lock (PostgreSQL; SQLite serialises writers),
//! first lets the clock make any move that fell due ([`permit::settle`](crate::domain::permit::settle)),
//! then asks the state machine whether the requested move is legal, and stores the new status, its
//! deadlines, the history entry, the documents and the online interaction together. Reads first
//! materialise the moves the clock made since the last write, so a PdC past its deadline reads as
//! SILENZIO_ASSENSO wherever it is looked at.

pub(crate) mod entities;
pub mod migration;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use patto_proto::building::v1 as pb;
use patto_service_kit::comuni;
use patto_service_kit::error::ServiceError;
use patto_service_kit::indicators;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use crate::domain::application::{DraftSummary, NewAttachment, NewDraft, Parcel, submission_gaps};
use crate::domain::cadastre::{NewUnit, sort_key};
use crate::domain::permit::{self as workflow, Action, Deadlines, PermitFacts, Status};
use crate::domain::terms::PermitTerms;
use crate::domain::{self, status_name};
pub(crate) use entities::{attachment, counter, ownership, permit, transition, unit};

/// Rows per multi-row INSERT: well inside SQLite's and PostgreSQL's bound-parameter limits.
const INSERT_CHUNK: usize = 300;
/// Keys per `IN (…)` list.
const IN_CHUNK: usize = 2000;

/// A cadastral unit with its holders, in register order.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRecord {
    /// The unit.
    pub unit: unit::Model,
    /// Its holders.
    pub owners: Vec<ownership::Model>,
}

/// A permit with its documents and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitRecord {
    /// The permit.
    pub permit: permit::Model,
    /// Documents, in upload order.
    pub attachments: Vec<attachment::Model>,
    /// Status changes, oldest first.
    pub history: Vec<transition::Model>,
}

/// Filters of a cadastral search; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct UnitFilter {
    /// The comune (required).
    pub istat_code: String,
    /// Register.
    pub register: Option<i32>,
    /// Sezione.
    pub sezione: Option<String>,
    /// Foglio.
    pub foglio: Option<String>,
    /// Particella.
    pub particella: Option<String>,
    /// Subalterno.
    pub subalterno: Option<String>,
    /// A canonical categoria (`A/2`) or a group letter (`A`).
    pub categoria: Option<String>,
    /// Units on which this code holds a right on `today`.
    pub owner: Option<String>,
    /// Street containing this text, any case.
    pub street: Option<String>,
    /// Include units suppressed before `today`.
    pub include_ended: bool,
    /// The day "current" refers to.
    pub today: NaiveDate,
}

/// Filters of a permit listing.
#[derive(Debug, Clone, Default)]
pub struct PermitFilter {
    /// Only this comune.
    pub istat_code: Option<String>,
    /// Only this kind.
    pub kind: Option<i32>,
    /// Only this status.
    pub status: Option<i32>,
    /// Only this applicant.
    pub applicant: Option<String>,
    /// Filed at or after.
    pub submitted_after: Option<DateTime<Utc>>,
    /// Filed before.
    pub submitted_before: Option<DateTime<Utc>>,
    /// With an operators' deadline before.
    pub deadline_before: Option<DateTime<Utc>>,
}

/// Who causes a permit's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Role.
    pub role: pb::PermitActorRole,
    /// Codice fiscale, when known.
    pub id: String,
}

/// A requested change of a permit, with the data it carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// File the draft.
    Submit,
    /// Withdraw, with the reason (required once filed).
    Withdraw {
        /// Why.
        reason: String,
    },
    /// Name the responsabile.
    Assign {
        /// Name of the responsabile del procedimento.
        officer: String,
    },
    /// Ask for documents.
    RequestIntegration {
        /// What is asked.
        note: String,
    },
    /// Send the documents.
    SubmitIntegration {
        /// Documents.
        attachments: Vec<NewAttachment>,
        /// Note.
        note: String,
    },
    /// Convene a conferenza di servizi.
    Convene {
        /// Administrations and subject.
        note: String,
    },
    /// Close the review with a proposal.
    Propose {
        /// Outcome proposed.
        outcome: pb::PermitProposalOutcome,
        /// Motivation.
        motivation: String,
        /// Contributo di costruzione, cents.
        contribution_cents: i64,
    },
    /// Decide.
    Decide {
        /// Outcome.
        outcome: pb::PermitDecisionOutcome,
        /// Motivation.
        motivation: String,
        /// Protocol number of the act, when the comune's protocollo gave one.
        protocol_number: String,
    },
    /// Observations against a preavviso.
    Observations {
        /// The observations.
        text: String,
        /// Supporting documents.
        attachments: Vec<NewAttachment>,
    },
    /// Attest the silenzio-assenso.
    Attest {
        /// Protocol number of the attestation, when given.
        protocol_number: String,
    },
    /// Start of works.
    StartWorks {
        /// Day.
        date: NaiveDate,
        /// Contractor.
        contractor: String,
        /// Director of works.
        director: String,
    },
    /// End of works.
    EndWorks {
        /// Day.
        date: NaiveDate,
    },
    /// File the SCA agibilità.
    FileAgibility {
        /// Documents.
        attachments: Vec<NewAttachment>,
    },
}

impl Edit {
    fn action(&self) -> Action {
        match self {
            Self::Submit => Action::Submit,
            Self::Withdraw { .. } => Action::Withdraw,
            Self::Assign { .. } => Action::Assign,
            Self::RequestIntegration { .. } => Action::RequestIntegration,
            Self::SubmitIntegration { .. } => Action::SubmitIntegration,
            Self::Convene { .. } => Action::Convene,
            Self::Propose { .. } => Action::Propose,
            Self::Decide { outcome, .. } => Action::Decide(*outcome),
            Self::Observations { .. } => Action::SubmitObservations,
            Self::Attest { .. } => Action::AttestSilenzioAssenso,
            Self::StartWorks { date, .. } => Action::StartWorks(*date),
            Self::EndWorks { date } => Action::EndWorks(*date),
            Self::FileAgibility { .. } => Action::FileAgibility,
        }
    }
}

/// Access to the building database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    salt: String,
}

/// The state-machine view of a stored permit.
pub fn facts(m: &permit::Model) -> PermitFacts {
    let kind =
        pb::BuildingPermitKind::try_from(m.kind).unwrap_or(pb::BuildingPermitKind::Unspecified);
    let constraints: Vec<i32> = serde_json::from_str(&m.constraints_json).unwrap_or_default();
    let terms = serde_json::from_str::<PermitTerms>(&m.terms_json).unwrap_or_else(|_| {
        comuni::by_istat(&m.istat_code)
            .map(PermitTerms::defaults_for)
            .unwrap_or(domain::terms::DEFAULT_TERMS)
    });
    PermitFacts {
        kind,
        status: Status::try_from(m.status).unwrap_or(Status::Unspecified),
        has_constraints: !constraints.is_empty(),
        terms,
        deadlines: serde_json::from_str(&m.deadlines_json).unwrap_or_default(),
        submitted_at: m.submitted_at,
        integration_requests: m.integration_requests,
        observations_submitted: !m.observations.is_empty(),
        decision_at: m.decision_at,
        works_start_date: m.works_start_date,
        attested: !m.silenzio_assenso_attestation.is_empty(),
    }
}

/// The parcels of a stored permit.
pub fn parcels(m: &permit::Model) -> Vec<Parcel> {
    serde_json::from_str(&m.parcels_json).unwrap_or_default()
}

/// The vincoli of a stored permit (protobuf numbers).
pub fn constraints(m: &permit::Model) -> Vec<i32> {
    serde_json::from_str(&m.constraints_json).unwrap_or_default()
}

/// The deadlines of a stored permit.
pub fn deadlines(m: &permit::Model) -> Deadlines {
    serde_json::from_str(&m.deadlines_json).unwrap_or_default()
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, ServiceError> {
    serde_json::to_string(value).map_err(|e| ServiceError::Internal(format!("json: {e}")))
}

/// Recomputes the columns derived from the workflow state: the next automatic move and the
/// operators' next deadline, which listings filter on.
fn derive_schedule(m: &mut permit::Model) {
    let f = facts(m);
    m.automatic_at = workflow::pending_automatic(&f).map(|(_, at)| at);
    m.operator_due_at = workflow::operator_due(&f);
}

/// Reserves `n` consecutive numbers of the sequence `name` and returns the first. The UPDATE takes
/// the row lock on PostgreSQL, so concurrent transactions get disjoint ranges.
pub(crate) async fn reserve_numbers(
    conn: &impl ConnectionTrait,
    name: &str,
    n: i64,
) -> Result<i64, DbErr> {
    counter::Entity::insert(counter::ActiveModel {
        name: Set(name.to_owned()),
        value: Set(0),
    })
    .on_conflict_do_nothing_on([counter::Column::Name])
    .exec(conn)
    .await?;
    counter::Entity::update_many()
        .col_expr(
            counter::Column::Value,
            Expr::col(counter::Column::Value).add(n),
        )
        .filter(counter::Column::Name.eq(name))
        .exec(conn)
        .await?;
    let last = counter::Entity::find_by_id(name.to_owned())
        .one(conn)
        .await?
        .map_or(n, |c| c.value);
    Ok(last - n + 1)
}

/// The next SUE protocol number of a comune: `<ISTAT>/SUE/<year>/<number>`, numbered per year.
async fn next_protocol(
    conn: &impl ConnectionTrait,
    istat_code: &str,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let year = now.year();
    let n = reserve_numbers(conn, &format!("sue:{istat_code}:{year}"), 1).await?;
    Ok(format!("{istat_code}/SUE/{year}/{n:06}"))
}

async fn in_chunks<T, F, Fut>(keys: &[String], mut query: F) -> Result<Vec<T>, DbErr>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, DbErr>>,
{
    let mut out = Vec::new();
    for chunk in keys.chunks(IN_CHUNK) {
        out.extend(query(chunk.to_vec()).await?);
    }
    Ok(out)
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

    // ---- cadastre ------------------------------------------------------------------------

    async fn owners_of(
        conn: &impl ConnectionTrait,
        unit_ids: &[String],
    ) -> Result<HashMap<String, Vec<ownership::Model>>, DbErr> {
        let rows = in_chunks(unit_ids, |chunk| {
            ownership::Entity::find()
                .filter(ownership::Column::UnitId.is_in(chunk))
                .order_by_asc(ownership::Column::UnitId)
                .order_by_asc(ownership::Column::Position)
                .all(conn)
        })
        .await?;
        let mut out: HashMap<String, Vec<ownership::Model>> = HashMap::new();
        for o in rows {
            out.entry(o.unit_id.clone()).or_default().push(o);
        }
        Ok(out)
    }

    async fn with_owners(&self, units: Vec<unit::Model>) -> Result<Vec<UnitRecord>, DbErr> {
        let ids: Vec<String> = units.iter().map(|u| u.id.clone()).collect();
        let mut owners = Self::owners_of(&self.db, &ids).await?;
        Ok(units
            .into_iter()
            .map(|unit| UnitRecord {
                owners: owners.remove(&unit.id).unwrap_or_default(),
                unit,
            })
            .collect())
    }

    /// A page of a comune's units matching `f`, in register order, and the total.
    pub async fn list_units(
        &self,
        f: &UnitFilter,
        page: Page,
    ) -> Result<(Vec<UnitRecord>, u64), DbErr> {
        let mut cond = Condition::all().add(unit::Column::IstatCode.eq(f.istat_code.as_str()));
        if let Some(r) = f.register {
            cond = cond.add(unit::Column::Register.eq(r));
        }
        for (col, value) in [
            (unit::Column::Sezione, &f.sezione),
            (unit::Column::Foglio, &f.foglio),
            (unit::Column::Particella, &f.particella),
            (unit::Column::Subalterno, &f.subalterno),
        ] {
            if let Some(value) = value {
                cond = cond.add(col.eq(value.as_str()));
            }
        }
        if let Some(cat) = &f.categoria {
            cond = cond.add(if cat.len() == 1 {
                unit::Column::Categoria.starts_with(format!("{cat}/"))
            } else {
                unit::Column::Categoria.eq(cat.as_str())
            });
        }
        if let Some(owner) = &f.owner {
            let held_today = Query::select()
                .column(ownership::Column::UnitId)
                .from(ownership::Entity)
                .and_where(ownership::Column::FiscalCode.eq(owner.as_str()))
                .and_where(ownership::Column::StartDate.lte(f.today))
                .cond_where(
                    Condition::any()
                        .add(ownership::Column::EndDate.is_null())
                        .add(ownership::Column::EndDate.gte(f.today)),
                )
                .to_owned();
            cond = cond.add(unit::Column::Id.in_subquery(held_today));
        }
        if let Some(street) = &f.street {
            let escaped = street
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            cond = cond.add(
                Expr::expr(Func::lower(Expr::col((unit::Entity, unit::Column::Street))))
                    .like(sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            );
        }
        if !f.include_ended {
            cond = cond.add(
                Condition::any()
                    .add(unit::Column::EndDate.is_null())
                    .add(unit::Column::EndDate.gte(f.today)),
            );
        }
        let q = unit::Entity::find().filter(cond);
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(unit::Column::SortKey)
            .order_by_asc(unit::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((self.with_owners(rows).await?, total))
    }

    /// The units with these ids (unknown ids are left out).
    pub async fn units_by_id(&self, ids: &[String]) -> Result<Vec<UnitRecord>, DbErr> {
        let db = &self.db;
        let rows = in_chunks(ids, |chunk| {
            unit::Entity::find()
                .filter(unit::Column::Id.is_in(chunk))
                .order_by_asc(unit::Column::SortKey)
                .all(db)
        })
        .await?;
        self.with_owners(rows).await
    }

    /// The rights these holders hold at some time between `from` and `to`, each with its unit
    /// (and all the unit's holders), optionally only in one comune.
    pub async fn holdings(
        &self,
        codes: &[String],
        from: NaiveDate,
        to: NaiveDate,
        istat_code: Option<&str>,
    ) -> Result<Vec<(ownership::Model, UnitRecord)>, DbErr> {
        let db = &self.db;
        let rights = in_chunks(codes, |chunk| {
            ownership::Entity::find()
                .filter(ownership::Column::FiscalCode.is_in(chunk))
                .filter(ownership::Column::StartDate.lte(to))
                .filter(
                    Condition::any()
                        .add(ownership::Column::EndDate.is_null())
                        .add(ownership::Column::EndDate.gte(from)),
                )
                .order_by_asc(ownership::Column::StartDate)
                .order_by_asc(ownership::Column::Id)
                .all(db)
        })
        .await?;
        let unit_ids: Vec<String> = rights
            .iter()
            .map(|o| o.unit_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let units: HashMap<String, UnitRecord> = self
            .units_by_id(&unit_ids)
            .await?
            .into_iter()
            .filter(|r| istat_code.is_none_or(|c| r.unit.istat_code == c))
            .map(|r| (r.unit.id.clone(), r))
            .collect();
        let mut out: Vec<(ownership::Model, UnitRecord)> = rights
            .into_iter()
            .filter_map(|o| units.get(&o.unit_id).cloned().map(|u| (o, u)))
            .collect();
        out.sort_by(|a, b| {
            (&a.1.unit.istat_code, &a.1.unit.sort_key, a.0.start_date).cmp(&(
                &b.1.unit.istat_code,
                &b.1.unit.sort_key,
                b.0.start_date,
            ))
        });
        Ok(out)
    }

    /// Writes a validated cadastral extract in one transaction: units matched by natural key are
    /// updated (their holders replaced), the others created. Returns (created, updated).
    pub async fn import_units(
        &self,
        rows: Vec<NewUnit>,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), DbErr> {
        let txn = self.db.begin().await?;
        let belfiori: Vec<String> = rows
            .iter()
            .map(|r| r.belfiore_code.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let existing: HashMap<(String, String, String, String, String), String> =
            unit::Entity::find()
                .select_only()
                .column(unit::Column::BelfioreCode)
                .column(unit::Column::Sezione)
                .column(unit::Column::Foglio)
                .column(unit::Column::Particella)
                .column(unit::Column::Subalterno)
                .column(unit::Column::Id)
                .filter(unit::Column::BelfioreCode.is_in(belfiori))
                .into_tuple::<(String, String, String, String, String, String)>()
                .all(&txn)
                .await?
                .into_iter()
                .map(|(b, s, f, p, sub, id)| ((b, s, f, p, sub), id))
                .collect();
        let mut replaced = Vec::new();
        let mut units = Vec::with_capacity(rows.len());
        let mut owners = Vec::new();
        for row in rows {
            let id = match existing.get(&row.natural_key()) {
                Some(id) => {
                    replaced.push(id.clone());
                    id.clone()
                }
                None => format!("cu-{}", uuid::Uuid::new_v4().simple()),
            };
            let (u, o) = unit_models(id, row, now);
            units.push(u);
            owners.extend(o);
        }
        for chunk in replaced.chunks(IN_CHUNK) {
            ownership::Entity::delete_many()
                .filter(ownership::Column::UnitId.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await?;
            unit::Entity::delete_many()
                .filter(unit::Column::Id.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await?;
        }
        let total = units.len();
        insert_units(&txn, units, owners).await?;
        txn.commit().await?;
        Ok((total - replaced.len(), replaced.len()))
    }

    // ---- permit terms --------------------------------------------------------------------

    /// The terms in force in a comune and when they were set (`None`: the defaults).
    pub async fn terms(
        &self,
        istat_code: &str,
    ) -> Result<(PermitTerms, Option<DateTime<Utc>>), ServiceError> {
        terms_in(&self.db, istat_code).await
    }

    /// Replaces a comune's terms.
    pub async fn set_terms(
        &self,
        istat_code: &str,
        terms: &PermitTerms,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let row = entities::terms::ActiveModel {
            istat_code: Set(istat_code.to_owned()),
            terms_json: Set(json(terms)?),
            updated_at: Set(now),
        };
        entities::terms::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(entities::terms::Column::IstatCode)
                    .update_columns([
                        entities::terms::Column::TermsJson,
                        entities::terms::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    // ---- permits: reads ------------------------------------------------------------------

    async fn details(&self, permits: Vec<permit::Model>) -> Result<Vec<PermitRecord>, DbErr> {
        let ids: Vec<String> = permits.iter().map(|p| p.id.clone()).collect();
        let db = &self.db;
        let mut attachments: HashMap<String, Vec<attachment::Model>> = HashMap::new();
        for a in in_chunks(&ids, |chunk| {
            attachment::Entity::find()
                .filter(attachment::Column::PermitId.is_in(chunk))
                .order_by_asc(attachment::Column::UploadedAt)
                .order_by_asc(attachment::Column::Id)
                .all(db)
        })
        .await?
        {
            attachments.entry(a.permit_id.clone()).or_default().push(a);
        }
        let mut history: HashMap<String, Vec<transition::Model>> = HashMap::new();
        for t in in_chunks(&ids, |chunk| {
            transition::Entity::find()
                .filter(transition::Column::PermitId.is_in(chunk))
                .order_by_asc(transition::Column::Id)
                .all(db)
        })
        .await?
        {
            history.entry(t.permit_id.clone()).or_default().push(t);
        }
        Ok(permits
            .into_iter()
            .map(|p| PermitRecord {
                attachments: attachments.remove(&p.id).unwrap_or_default(),
                history: history.remove(&p.id).unwrap_or_default(),
                permit: p,
            })
            .collect())
    }

    /// The permit with this id.
    pub async fn permit(&self, id: &str) -> Result<Option<PermitRecord>, DbErr> {
        let Some(p) = permit::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(self.details(vec![p]).await?.pop())
    }

    /// The permits with these ids (unknown ids are left out).
    pub async fn permits_by_id(&self, ids: &[String]) -> Result<Vec<PermitRecord>, DbErr> {
        let db = &self.db;
        let rows = in_chunks(ids, |chunk| {
            permit::Entity::find()
                .filter(permit::Column::Id.is_in(chunk))
                .all(db)
        })
        .await?;
        self.details(rows).await
    }

    /// A page of permits matching `f`, newest first, and the total.
    pub async fn list_permits(
        &self,
        f: &PermitFilter,
        page: Page,
    ) -> Result<(Vec<PermitRecord>, u64), DbErr> {
        let mut cond = Condition::all();
        if let Some(c) = &f.istat_code {
            cond = cond.add(permit::Column::IstatCode.eq(c.as_str()));
        }
        if let Some(k) = f.kind {
            cond = cond.add(permit::Column::Kind.eq(k));
        }
        if let Some(s) = f.status {
            cond = cond.add(permit::Column::Status.eq(s));
        }
        if let Some(a) = &f.applicant {
            cond = cond.add(permit::Column::ApplicantFiscalCode.eq(a.as_str()));
        }
        if let Some(t) = f.submitted_after {
            cond = cond.add(permit::Column::SubmittedAt.gte(t));
        }
        if let Some(t) = f.submitted_before {
            cond = cond.add(permit::Column::SubmittedAt.lt(t));
        }
        if let Some(t) = f.deadline_before {
            cond = cond.add(permit::Column::OperatorDueAt.lt(t));
        }
        let q = permit::Entity::find().filter(cond);
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_desc(permit::Column::CreatedAt)
            .order_by_asc(permit::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((self.details(rows).await?, total))
    }

    /// The permits these applicants filed, newest first.
    pub async fn permits_by_applicant(
        &self,
        codes: &[String],
        status: Option<i32>,
    ) -> Result<Vec<PermitRecord>, DbErr> {
        let db = &self.db;
        let mut rows = in_chunks(codes, |chunk| {
            let mut q =
                permit::Entity::find().filter(permit::Column::ApplicantFiscalCode.is_in(chunk));
            if let Some(s) = status {
                q = q.filter(permit::Column::Status.eq(s));
            }
            q.all(db)
        })
        .await?;
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        self.details(rows).await
    }

    /// Up to `per_comune` latest permits of each comune, newest first.
    pub async fn latest_by_comune(
        &self,
        codes: &[String],
        per_comune: u64,
        status: Option<i32>,
        kind: Option<i32>,
    ) -> Result<BTreeMap<String, Vec<PermitRecord>>, DbErr> {
        let mut out = BTreeMap::new();
        for code in codes {
            let mut q = permit::Entity::find().filter(permit::Column::IstatCode.eq(code.as_str()));
            if let Some(s) = status {
                q = q.filter(permit::Column::Status.eq(s));
            }
            if let Some(k) = kind {
                q = q.filter(permit::Column::Kind.eq(k));
            }
            let rows = q
                .order_by_desc(permit::Column::CreatedAt)
                .order_by_asc(permit::Column::Id)
                .limit(per_comune)
                .all(&self.db)
                .await?;
            if !rows.is_empty() {
                out.insert(code.clone(), self.details(rows).await?);
            }
        }
        Ok(out)
    }

    // ---- permits: the clock --------------------------------------------------------------

    /// Makes every move the clock owes by `now` (silenzio-assenso, archiving) and returns the
    /// permits that moved.
    pub async fn settle_due(&self, now: DateTime<Utc>) -> Result<Vec<PermitRecord>, ServiceError> {
        let due: Vec<String> = permit::Entity::find()
            .select_only()
            .column(permit::Column::Id)
            .filter(permit::Column::AutomaticAt.lte(now))
            .into_tuple::<String>()
            .all(&self.db)
            .await?;
        let mut moved = Vec::new();
        for id in due {
            if let Some(p) = self.settle_one(&id, now).await? {
                moved.push(p);
            }
        }
        Ok(moved)
    }

    /// Makes the move the clock owes one permit by `now`, if any.
    pub async fn settle_one(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PermitRecord>, ServiceError> {
        let txn = self.db.begin().await?;
        let Some(mut m) = permit::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let moved = settle_in(&txn, &mut m, now).await?;
        txn.commit().await?;
        if !moved {
            return Ok(None);
        }
        Ok(self.permit(id).await?)
    }

    // ---- permits: writes -----------------------------------------------------------------

    /// Stores a new draft (status BOZZA) with its documents and the history entry of its creation.
    pub async fn create_draft(
        &self,
        d: NewDraft,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<PermitRecord, ServiceError> {
        let (terms, _) = self.terms(&d.istat_code).await?;
        let id = format!("bp-{}", uuid::Uuid::new_v4().simple());
        let txn = self.db.begin().await?;
        let m = permit::Model {
            id: id.clone(),
            istat_code: d.istat_code.clone(),
            kind: d.kind as i32,
            status: Status::Bozza as i32,
            applicant_fiscal_code: d.applicant_fiscal_code.clone(),
            designer_fiscal_code: String::new(),
            designer_registration: String::new(),
            subject: String::new(),
            description: String::new(),
            intervention_category: 0,
            street: String::new(),
            house_number: String::new(),
            postal_code: String::new(),
            locality: String::new(),
            parcels_json: "[]".into(),
            constraints_json: "[]".into(),
            protocol_number: String::new(),
            submitted_at: None,
            terms_doubled: terms.terms_doubled,
            terms_json: String::new(),
            deadlines_json: json(&Deadlines::default())?,
            responsible_officer: String::new(),
            integration_requests: 0,
            integration_request_note: String::new(),
            proposal_outcome: 0,
            proposal_motivation: String::new(),
            observations: String::new(),
            decision_motivation: String::new(),
            decision_protocol_number: String::new(),
            decision_at: None,
            silenzio_assenso_attestation: String::new(),
            construction_contribution_cents: 0,
            secretariat_fees_cents: 0,
            works_start_date: None,
            works_end_date: None,
            contractor_fiscal_code: String::new(),
            works_director_fiscal_code: String::new(),
            agibility_protocol_number: String::new(),
            automatic_at: None,
            operator_due_at: None,
            created_at: now,
            updated_at: now,
        };
        let m = with_content(m, &d)?;
        permit::ActiveModel::from(m).insert(&txn).await?;
        insert_attachments(&txn, &id, &d.attachments, 0, now).await?;
        insert_transition(
            &txn,
            &id,
            Status::Unspecified,
            Status::Bozza,
            now,
            actor,
            "",
            "",
        )
        .await?;
        txn.commit().await?;
        self.permit(&id)
            .await?
            .ok_or_else(|| ServiceError::not_found("building permit", &id))
    }

    /// Replaces the content of a draft and its documents.
    pub async fn update_draft(
        &self,
        id: &str,
        d: NewDraft,
        now: DateTime<Utc>,
    ) -> Result<PermitRecord, ServiceError> {
        let txn = self.db.begin().await?;
        let m = permit::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("building permit", id))?;
        if m.status != Status::Bozza as i32 {
            let status = Status::try_from(m.status).unwrap_or(Status::Unspecified);
            return Err(ServiceError::FailedPrecondition(format!(
                "building permit {id} is {}: only a draft (BOZZA) can be edited",
                status_name(status)
            )));
        }
        let mut m = with_content(m, &d)?;
        m.kind = d.kind as i32;
        m.updated_at = now;
        permit::ActiveModel::from(m)
            .reset_all()
            .update(&txn)
            .await?;
        attachment::Entity::delete_many()
            .filter(attachment::Column::PermitId.eq(id))
            .filter(attachment::Column::IntegrationRound.eq(0))
            .exec(&txn)
            .await?;
        insert_attachments(&txn, id, &d.attachments, 0, now).await?;
        txn.commit().await?;
        self.permit(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("building permit", id))
    }

    /// Applies a workflow change in one transaction; returns the permit after it and how many
    /// status changes were written (the clock's, if one fell due, and the requested one), so each
    /// reaches the watchers.
    pub async fn act(
        &self,
        id: &str,
        edit: Edit,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(PermitRecord, usize), ServiceError> {
        let txn = self.db.begin().await?;
        let mut m = permit::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("building permit", id))?;
        let mut changes = usize::from(settle_in(&txn, &mut m, now).await?);
        let mut f = facts(&m);
        if matches!(edit, Edit::Submit) {
            // The permit runs on the terms in force when it is filed.
            f.terms = terms_in(&txn, &m.istat_code).await?.0;
        }
        let action = edit.action();
        let step = workflow::apply(&f, &action, now)
            .map_err(|r| ServiceError::FailedPrecondition(format!("building permit {id}: {r}")))?;
        let from = f.status;
        let mut transition_protocol = String::new();
        let mut note = String::new();
        let mut round_attachments: Option<(&[NewAttachment], i32)> = None;
        let mut interaction = None;
        match &edit {
            Edit::Submit => {
                let gaps = submission_gaps(&DraftSummary {
                    kind: f.kind,
                    designer_fiscal_code: &m.designer_fiscal_code,
                    intervention_category: m.intervention_category,
                    street: &m.street,
                    parcels: parcels(&m).len(),
                    attachments: attachment::Entity::find()
                        .filter(attachment::Column::PermitId.eq(id))
                        .count(&txn)
                        .await? as usize,
                });
                if !gaps.is_empty() {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "building permit {id} cannot be filed yet: {}",
                        gaps.join("; ")
                    )));
                }
                m.protocol_number = next_protocol(&txn, &m.istat_code, now).await?;
                transition_protocol = m.protocol_number.clone();
                m.submitted_at = Some(now);
                m.terms_json = json(&f.terms)?;
                m.terms_doubled = f.terms.terms_doubled;
                interaction = Some(domain::filing_procedure(f.kind));
            }
            Edit::Withdraw { reason } => {
                if from != Status::Bozza && reason.is_empty() {
                    return Err(ServiceError::invalid(
                        "reason",
                        "must say why a filed application is withdrawn",
                    ));
                }
                note = reason.clone();
            }
            Edit::Assign { officer } => {
                m.responsible_officer = officer.clone();
                note = format!("responsabile del procedimento: {officer}");
            }
            Edit::RequestIntegration { note: n } => {
                m.integration_requests += 1;
                m.integration_request_note = n.clone();
                note = n.clone();
            }
            Edit::SubmitIntegration {
                attachments,
                note: n,
            } => {
                note = n.clone();
                round_attachments = Some((attachments, Ord::max(m.integration_requests, 1)));
            }
            Edit::Convene { note: n } => note = n.clone(),
            Edit::Propose {
                outcome,
                motivation,
                contribution_cents,
            } => {
                m.proposal_outcome = *outcome as i32;
                m.proposal_motivation = motivation.clone();
                m.construction_contribution_cents = *contribution_cents;
                note = motivation.clone();
            }
            Edit::Decide {
                outcome,
                motivation,
                protocol_number,
            } => {
                let protocol = if protocol_number.is_empty() {
                    next_protocol(&txn, &m.istat_code, now).await?
                } else {
                    protocol_number.clone()
                };
                m.decision_motivation = motivation.clone();
                if *outcome != pb::PermitDecisionOutcome::PreavvisoDiniego {
                    m.decision_protocol_number = protocol.clone();
                    m.decision_at = Some(now);
                }
                transition_protocol = protocol;
                note = motivation.clone();
            }
            Edit::Observations { text, attachments } => {
                m.observations = text.clone();
                round_attachments = Some((attachments, m.integration_requests));
            }
            Edit::Attest { protocol_number } => {
                m.silenzio_assenso_attestation = if protocol_number.is_empty() {
                    next_protocol(&txn, &m.istat_code, now).await?
                } else {
                    protocol_number.clone()
                };
            }
            Edit::StartWorks {
                date,
                contractor,
                director,
            } => {
                m.works_start_date = Some(*date);
                m.contractor_fiscal_code = contractor.clone();
                m.works_director_fiscal_code = director.clone();
            }
            Edit::EndWorks { date } => m.works_end_date = Some(*date),
            Edit::FileAgibility { attachments } => {
                m.agibility_protocol_number = next_protocol(&txn, &m.istat_code, now).await?;
                transition_protocol = m.agibility_protocol_number.clone();
                round_attachments = Some((attachments, m.integration_requests));
                interaction = Some(&domain::AGIBILITY_FILING);
            }
        }
        m.status = step.to as i32;
        m.deadlines_json = json(&step.deadlines)?;
        m.updated_at = now;
        derive_schedule(&mut m);
        let istat = m.istat_code.clone();
        let applicant = m.applicant_fiscal_code.clone();
        permit::ActiveModel::from(m)
            .reset_all()
            .update(&txn)
            .await?;
        if step.to != from {
            insert_transition(
                &txn,
                id,
                from,
                step.to,
                now,
                actor,
                &transition_protocol,
                &note,
            )
            .await?;
            changes += 1;
        }
        if let Some((list, round)) = round_attachments {
            insert_attachments(&txn, id, list, round, now).await?;
        }
        if let Some(procedure) = interaction
            && actor.role == pb::PermitActorRole::Citizen
        {
            indicators::record(&txn, &self.salt, &istat, procedure, &applicant, now).await?;
        }
        txn.commit().await?;
        let record = self
            .permit(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("building permit", id))?;
        Ok((record, changes))
    }
}

async fn terms_in(
    conn: &impl ConnectionTrait,
    istat_code: &str,
) -> Result<(PermitTerms, Option<DateTime<Utc>>), ServiceError> {
    let comune = comuni::by_istat(istat_code).ok_or_else(|| {
        ServiceError::invalid(
            "istat_code",
            "is not a comune of the Città Metropolitana di Palermo",
        )
    })?;
    match entities::terms::Entity::find_by_id(istat_code.to_owned())
        .one(conn)
        .await?
    {
        Some(row) => {
            let terms = serde_json::from_str(&row.terms_json)
                .unwrap_or_else(|_| PermitTerms::defaults_for(comune));
            Ok((terms, Some(row.updated_at)))
        }
        None => Ok((PermitTerms::defaults_for(comune), None)),
    }
}

/// Applies the move the clock owes `m` by `now` inside `conn`'s transaction; true when it moved.
async fn settle_in(
    conn: &impl ConnectionTrait,
    m: &mut permit::Model,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let f = facts(m);
    let Some(auto) = workflow::settle(&f, now) else {
        if m.automatic_at.is_some_and(|at| at <= now) {
            // Stale schedule (e.g. the state changed under older code): recompute it.
            derive_schedule(m);
            permit::ActiveModel::from(m.clone())
                .reset_all()
                .update(conn)
                .await?;
        }
        return Ok(false);
    };
    let note = match auto.to {
        Status::SilenzioAssenso => {
            m.decision_at = Some(auto.at);
            "the decision term passed without a decision: permit granted by silenzio-assenso (art. 20 c. 8 DPR 380/2001)"
        }
        _ => "the requested integration did not arrive within its term: application archived",
    };
    m.status = auto.to as i32;
    m.deadlines_json = json(&auto.deadlines)?;
    m.updated_at = now;
    derive_schedule(m);
    permit::ActiveModel::from(m.clone())
        .reset_all()
        .update(conn)
        .await?;
    let system = Actor {
        role: pb::PermitActorRole::System,
        id: String::new(),
    };
    insert_transition(conn, &m.id, f.status, auto.to, auto.at, &system, "", note).await?;
    Ok(true)
}

fn with_content(mut m: permit::Model, d: &NewDraft) -> Result<permit::Model, ServiceError> {
    m.designer_fiscal_code = d.designer_fiscal_code.clone();
    m.designer_registration = d.designer_registration.clone();
    m.subject = d.subject.clone();
    m.description = d.description.clone();
    m.intervention_category = d.intervention_category;
    m.street = d.street.clone();
    m.house_number = d.house_number.clone();
    m.postal_code = d.postal_code.clone();
    m.locality = d.locality.clone();
    m.parcels_json = json(&d.parcels)?;
    m.constraints_json = json(&d.constraints)?;
    Ok(m)
}

#[allow(clippy::too_many_arguments)]
async fn insert_transition(
    conn: &impl ConnectionTrait,
    permit_id: &str,
    from: Status,
    to: Status,
    at: DateTime<Utc>,
    actor: &Actor,
    protocol_number: &str,
    note: &str,
) -> Result<(), DbErr> {
    transition::ActiveModel {
        permit_id: Set(permit_id.to_owned()),
        from_status: Set(from as i32),
        to_status: Set(to as i32),
        at: Set(at),
        actor_role: Set(actor.role as i32),
        actor: Set(actor.id.clone()),
        protocol_number: Set(protocol_number.to_owned()),
        note: Set(note.to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map(|_| ())
}

async fn insert_attachments(
    conn: &impl ConnectionTrait,
    permit_id: &str,
    list: &[NewAttachment],
    round: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows: Vec<attachment::ActiveModel> = list
        .iter()
        .map(|a| attachment::ActiveModel {
            id: Set(format!("att-{}", uuid::Uuid::new_v4().simple())),
            permit_id: Set(permit_id.to_owned()),
            name: Set(a.name.clone()),
            sha256: Set(a.sha256.clone()),
            size_bytes: Set(a.size_bytes),
            media_type: Set(a.media_type.clone()),
            document_type: Set(a.document_type.clone()),
            integration_round: Set(round),
            uploaded_at: Set(now),
        })
        .collect();
    attachment::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

/// The rows of one unit: the unit itself and its holders.
pub(crate) fn unit_models(
    id: String,
    u: NewUnit,
    now: DateTime<Utc>,
) -> (unit::ActiveModel, Vec<ownership::ActiveModel>) {
    let owners = u
        .owners
        .iter()
        .enumerate()
        .map(|(i, o)| ownership::ActiveModel {
            unit_id: Set(id.clone()),
            position: Set(i as i32),
            fiscal_code: Set(o.fiscal_code.clone()),
            name: Set(o.name.clone()),
            right_kind: Set(o.right),
            share_numerator: Set(o.share_numerator),
            share_denominator: Set(o.share_denominator),
            start_date: Set(o.start_date),
            end_date: Set(o.end_date),
            ..Default::default()
        })
        .collect();
    let unit = unit::ActiveModel {
        id: Set(id),
        sort_key: Set(sort_key(
            &u.sezione,
            &u.foglio,
            &u.particella,
            &u.subalterno,
        )),
        istat_code: Set(u.istat_code),
        belfiore_code: Set(u.belfiore_code),
        register: Set(u.register),
        sezione: Set(u.sezione),
        foglio: Set(u.foglio),
        particella: Set(u.particella),
        subalterno: Set(u.subalterno),
        categoria: Set(u.categoria),
        classe: Set(u.classe),
        consistenza: Set(u.consistenza),
        consistenza_unit: Set(u.consistenza_unit),
        rendita_cents: Set(u.rendita_cents),
        qualita: Set(u.qualita),
        reddito_dominicale_cents: Set(u.reddito_dominicale_cents),
        reddito_agrario_cents: Set(u.reddito_agrario_cents),
        surface_sqm: Set(u.surface_sqm),
        surface_excluding_uncovered_sqm: Set(u.surface_excluding_uncovered_sqm),
        street: Set(u.street),
        house_number: Set(u.house_number),
        postal_code: Set(u.postal_code),
        locality: Set(u.locality),
        floor: Set(u.floor),
        internal_number: Set(u.internal_number),
        latitude: Set(u.geo.map(|g| g.0)),
        longitude: Set(u.geo.map(|g| g.1)),
        heritage_listed: Set(u.heritage_listed),
        start_date: Set(u.start_date),
        end_date: Set(u.end_date),
        updated_at: Set(now),
    };
    (unit, owners)
}

/// Inserts units and their holders with multi-row INSERTs (units first: holders reference them).
pub(crate) async fn insert_units(
    conn: &impl ConnectionTrait,
    units: Vec<unit::ActiveModel>,
    owners: Vec<ownership::ActiveModel>,
) -> Result<(), DbErr> {
    let mut units = units.into_iter().peekable();
    while units.peek().is_some() {
        let chunk: Vec<_> = units.by_ref().take(INSERT_CHUNK / 3).collect();
        unit::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    let mut owners = owners.into_iter().peekable();
    while owners.peek().is_some() {
        let chunk: Vec<_> = owners.by_ref().take(INSERT_CHUNK).collect();
        ownership::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}
