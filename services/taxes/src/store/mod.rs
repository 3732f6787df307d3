//! The taxes database: reads, and writes that each run in one transaction.
//!
//! A debt position is issued, paid or cancelled together with its tax position under a row lock
//! (PostgreSQL; SQLite serialises writers); a payment is recorded once per IUV, and the same receipt
//! again changes nothing. Reads first move positions the clock moved (a published position becomes
//! payable, an unpaid one expires past its last due day, a tax position becomes overdue). A tax roll
//! is written with multi-row INSERTs in one transaction: all of it or nothing.

pub(crate) mod entities;
pub mod migration;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use patto_proto::taxes::v1 as pb;
use patto_service_kit::comuni;
use patto_service_kit::error::ServiceError;
use patto_service_kit::indicators;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use crate::domain::debt::{self, Creditor, Part, Payment, PaymentRefusal, TefaBeneficiary};
use crate::domain::rates::ImuRates;
use crate::domain::roll::{NewImuDeclaration, NewTariRegistration, NewTaxPosition};
use crate::domain::tariffs::Tariffs;
use crate::domain::{self, tribute_name};
pub(crate) use entities::{
    counter, creditor, debt_position, imu_declaration, imu_rates, payment_option,
    tari_registration, tari_tariffs, tax_position,
};

/// Rows per multi-row INSERT: inside SQLite's and PostgreSQL's bound-parameter limits for the
/// widest table (20 columns).
const INSERT_CHUNK: usize = 500;
/// Keys per `IN (…)` list.
const IN_CHUNK: usize = 2000;
/// ISTAT code of the Città Metropolitana di Palermo, the TEFA beneficiary.
pub const CITTA_METROPOLITANA: &str = "282";
/// Days after the event within which a TARI declaration is due (ARERA TQRIF, del. 15/2022).
pub const TARI_DECLARATION_DAYS: i64 = 90;

/// Debt statuses in which a position still stands (it is not cancelled or expired).
const ACTIVE_DEBT: [pb::DebtPositionStatus; 6] = [
    pb::DebtPositionStatus::Draft,
    pb::DebtPositionStatus::Published,
    pb::DebtPositionStatus::Valid,
    pb::DebtPositionStatus::PartiallyPaid,
    pb::DebtPositionStatus::Paid,
    pb::DebtPositionStatus::Reported,
];

/// A debt position with its payment options (rata unica first, then instalments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebtRecord {
    /// The position.
    pub position: debt_position::Model,
    /// Its options.
    pub options: Vec<payment_option::Model>,
}

/// A tax position with its debt positions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionRecord {
    /// The position.
    pub position: tax_position::Model,
    /// Its debt positions.
    pub debts: Vec<DebtRecord>,
}

/// A position computed by this service, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    /// Taxpayer.
    pub fiscal_code: String,
    /// Taxpayer's name, as registered.
    pub name: String,
    /// Tribute.
    pub tribute: pb::Tribute,
    /// Year.
    pub year: i32,
    /// Amount due (TARI: TEFA included), cents.
    pub amount_due: i64,
    /// The protobuf encoding of the assessment.
    pub assessment: Vec<u8>,
    /// Instalments.
    pub parts: Vec<Part>,
    /// Below the comune's minimum.
    pub below_minimum: bool,
}

/// Outcome of a yearly issue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generated {
    /// Tax positions computed.
    pub positions: i32,
    /// Debt positions issued.
    pub debt_positions: i32,
    /// Skipped below the minimum.
    pub below_minimum: i32,
    /// Total of the debt positions issued, cents.
    pub total_amount: i64,
}

/// Filters of a tax position listing.
#[derive(Debug, Clone, Default)]
pub struct PositionFilter {
    /// Comune.
    pub istat_code: Option<String>,
    /// Taxpayer.
    pub fiscal_code: Option<String>,
    /// Tribute.
    pub tribute: Option<i32>,
    /// Year.
    pub year: Option<i32>,
    /// Status.
    pub status: Option<i32>,
}

/// Filters of a debt position listing.
#[derive(Debug, Clone, Default)]
pub struct DebtFilter {
    /// Comune.
    pub istat_code: Option<String>,
    /// Debtor.
    pub debtor: Option<String>,
    /// Status.
    pub status: Option<i32>,
    /// Statuses when no single one is asked (e.g. everything but DRAFT).
    pub statuses: Option<Vec<i32>>,
    /// Tribute.
    pub tribute: Option<i32>,
    /// Year.
    pub year: Option<i32>,
    /// With an option of this IUV.
    pub iuv: Option<String>,
    /// With an option of this notice number.
    pub nav: Option<String>,
}

/// A tax roll row, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollRow {
    /// An IMU declaration.
    Imu(NewImuDeclaration),
    /// A TARI registration.
    Tari(NewTariRegistration),
    /// A position computed elsewhere, with its last due day.
    Position(NewTaxPosition, NaiveDate),
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// IMU declarations.
    pub imu_declarations: i32,
    /// TARI registrations.
    pub tari_registrations: i32,
    /// Tax positions.
    pub tax_positions: i32,
}

/// A payment receipt from pagoPA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Receipt id.
    pub receipt_id: String,
    /// PSP id.
    pub psp_id: String,
    /// PSP name.
    pub psp_name: String,
    /// Amount, cents.
    pub amount: i64,
    /// When it was paid.
    pub payment_time: DateTime<Utc>,
}

/// A TARI declaration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TariDeclaration {
    /// Start of occupation.
    Start(NewTariRegistration),
    /// Change, from the event day.
    Change {
        /// The registration changed.
        id: String,
        /// Its new content.
        registration: NewTariRegistration,
    },
    /// End of occupation.
    End {
        /// The registration ended.
        id: String,
    },
}

/// Access to the taxes database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    salt: String,
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, ServiceError> {
    serde_json::to_string(value).map_err(|e| ServiceError::Internal(format!("json: {e}")))
}

/// The stored instalments of a tax position.
pub fn parts(p: &tax_position::Model) -> Vec<Part> {
    serde_json::from_str(&p.parts_json).unwrap_or_default()
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

/// Reserves `n` protocol numbers of the comune's tax office for `year`: `<ISTAT>/TRIB/<year>/<n>`.
async fn protocols(
    conn: &impl ConnectionTrait,
    istat_code: &str,
    year: i32,
    n: usize,
) -> Result<Vec<String>, DbErr> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let first = reserve_numbers(conn, &format!("trib:{istat_code}:{year}"), n as i64).await?;
    Ok((0..n as i64)
        .map(|i| format!("{istat_code}/TRIB/{year}/{:06}", first + i))
        .collect())
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

async fn insert_chunked<A>(conn: &impl ConnectionTrait, rows: Vec<A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(INSERT_CHUNK).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

fn today(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive()
}

fn creditor_of(m: creditor::Model) -> Creditor {
    Creditor {
        fiscal_code: m.fiscal_code,
        name: m.name,
        iban: m.iban,
        segregation_code: u8::try_from(m.segregation_code).unwrap_or(0),
        imu_taxonomy: m.imu_taxonomy,
        tari_taxonomy: m.tari_taxonomy,
    }
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

    // ---- pagoPA registration -------------------------------------------------------------

    /// Registers (or replaces) a creditor: a comune, or the Città Metropolitana for TEFA.
    pub async fn put_creditor(&self, istat_code: &str, c: &Creditor) -> Result<(), DbErr> {
        let row = creditor::ActiveModel {
            istat_code: Set(istat_code.to_owned()),
            fiscal_code: Set(c.fiscal_code.clone()),
            name: Set(c.name.clone()),
            iban: Set(c.iban.clone()),
            segregation_code: Set(i32::from(c.segregation_code)),
            imu_taxonomy: Set(c.imu_taxonomy.clone()),
            tari_taxonomy: Set(c.tari_taxonomy.clone()),
        };
        creditor::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(creditor::Column::IstatCode)
                    .update_columns([
                        creditor::Column::FiscalCode,
                        creditor::Column::Name,
                        creditor::Column::Iban,
                        creditor::Column::SegregationCode,
                        creditor::Column::ImuTaxonomy,
                        creditor::Column::TariTaxonomy,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn creditors(
        conn: &impl ConnectionTrait,
        istat_code: &str,
    ) -> Result<(Creditor, Option<TefaBeneficiary>), ServiceError> {
        let Some(c) = creditor::Entity::find_by_id(istat_code.to_owned())
            .one(conn)
            .await?
        else {
            let name = comuni::by_istat(istat_code).map_or(istat_code, |c| c.name.as_str());
            return Err(ServiceError::FailedPrecondition(format!(
                "the comune of {name} ({istat_code}) is not registered with pagoPA as a creditor: no notice can be issued"
            )));
        };
        let tefa = creditor::Entity::find_by_id(CITTA_METROPOLITANA.to_owned())
            .one(conn)
            .await?
            .map(|t| TefaBeneficiary {
                fiscal_code: t.fiscal_code,
                name: t.name,
                iban: t.iban,
                taxonomy: t.tari_taxonomy,
            });
        Ok((creditor_of(c), tefa))
    }

    // ---- rates and tariffs ---------------------------------------------------------------

    /// The IMU rates of a comune for a year and when they were set: the year's own, else the last
    /// resolved carried over, else the legal defaults (`None`: nothing was ever set).
    pub async fn imu_rates(
        &self,
        istat_code: &str,
        year: i32,
    ) -> Result<(ImuRates, Option<DateTime<Utc>>), DbErr> {
        let row = imu_rates::Entity::find()
            .filter(imu_rates::Column::IstatCode.eq(istat_code))
            .filter(imu_rates::Column::Year.lte(year))
            .order_by_desc(imu_rates::Column::Year)
            .one(&self.db)
            .await?;
        Ok(match row {
            Some(r) => {
                let rates: ImuRates = serde_json::from_str(&r.rates_json)
                    .unwrap_or_else(|_| ImuRates::defaults(r.year));
                if r.year == year {
                    (rates, Some(r.updated_at))
                } else {
                    (rates.carried_to(year), Some(r.updated_at))
                }
            }
            None => (ImuRates::defaults(year), None),
        })
    }

    /// This year's and last year's rates of a comune.
    pub async fn rate_context(
        &self,
        istat_code: &str,
        year: i32,
    ) -> Result<(ImuRates, ImuRates), DbErr> {
        let (current, _) = self.imu_rates(istat_code, year).await?;
        let (previous, _) = self.imu_rates(istat_code, year - 1).await?;
        Ok((current, previous))
    }

    /// Replaces the rates of a comune for a year.
    pub async fn set_imu_rates(
        &self,
        istat_code: &str,
        year: i32,
        rates: &ImuRates,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        imu_rates::Entity::insert(imu_rates::ActiveModel {
            istat_code: Set(istat_code.to_owned()),
            year: Set(year),
            rates_json: Set(json(rates)?),
            updated_at: Set(now),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                imu_rates::Column::IstatCode,
                imu_rates::Column::Year,
            ])
            .update_columns([imu_rates::Column::RatesJson, imu_rates::Column::UpdatedAt])
            .to_owned(),
        )
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// The TARI tariffs of a comune for a year: the year's own, else the last approved carried
    /// over; `None` when the comune never set any.
    pub async fn tari_tariffs(
        &self,
        istat_code: &str,
        year: i32,
    ) -> Result<Option<(Tariffs, DateTime<Utc>)>, DbErr> {
        let row = tari_tariffs::Entity::find()
            .filter(tari_tariffs::Column::IstatCode.eq(istat_code))
            .filter(tari_tariffs::Column::Year.lte(year))
            .order_by_desc(tari_tariffs::Column::Year)
            .one(&self.db)
            .await?;
        Ok(row.and_then(|r| {
            let t: Tariffs = serde_json::from_str(&r.tariffs_json).ok()?;
            Some((
                if r.year == year {
                    t
                } else {
                    t.carried_to(year)
                },
                r.updated_at,
            ))
        }))
    }

    /// Replaces the TARI tariffs of a comune for a year.
    pub async fn set_tari_tariffs(
        &self,
        istat_code: &str,
        year: i32,
        tariffs: &Tariffs,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        tari_tariffs::Entity::insert(tari_tariffs::ActiveModel {
            istat_code: Set(istat_code.to_owned()),
            year: Set(year),
            tariffs_json: Set(json(tariffs)?),
            updated_at: Set(now),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                tari_tariffs::Column::IstatCode,
                tari_tariffs::Column::Year,
            ])
            .update_columns([
                tari_tariffs::Column::TariffsJson,
                tari_tariffs::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec(&self.db)
        .await?;
        Ok(())
    }

    // ---- IMU declarations ----------------------------------------------------------------

    /// Declarations of these taxpayers in force at some time in `year` (filed for that year or
    /// before: a declaration holds until the situation changes).
    pub async fn declarations_for(
        &self,
        codes: &[String],
        year: i32,
        istat_code: Option<&str>,
    ) -> Result<Vec<imu_declaration::Model>, DbErr> {
        let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            return Ok(Vec::new());
        };
        let db = &self.db;
        in_chunks(codes, |chunk| {
            let mut q = imu_declaration::Entity::find()
                .filter(imu_declaration::Column::FiscalCode.is_in(chunk))
                .filter(imu_declaration::Column::Year.lte(year))
                .filter(imu_declaration::Column::StartDate.lte(last))
                .filter(
                    Condition::any()
                        .add(imu_declaration::Column::EndDate.is_null())
                        .add(imu_declaration::Column::EndDate.gte(first)),
                );
            if let Some(c) = istat_code {
                q = q.filter(imu_declaration::Column::IstatCode.eq(c));
            }
            q.order_by_asc(imu_declaration::Column::SubmittedAt).all(db)
        })
        .await
    }

    /// A page of declarations, newest first, and the total.
    pub async fn list_declarations(
        &self,
        istat_code: Option<&str>,
        fiscal_code: Option<&str>,
        year: Option<i32>,
        page: Page,
    ) -> Result<(Vec<imu_declaration::Model>, u64), DbErr> {
        let mut q = imu_declaration::Entity::find();
        if let Some(c) = istat_code {
            q = q.filter(imu_declaration::Column::IstatCode.eq(c));
        }
        if let Some(c) = fiscal_code {
            q = q.filter(imu_declaration::Column::FiscalCode.eq(c));
        }
        if let Some(y) = year {
            q = q.filter(imu_declaration::Column::Year.eq(y));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_desc(imu_declaration::Column::SubmittedAt)
            .order_by_asc(imu_declaration::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// Files a declaration with a protocol number; records the online interaction when the
    /// taxpayer filed it.
    pub async fn submit_imu_declaration(
        &self,
        d: NewImuDeclaration,
        online: bool,
        now: DateTime<Utc>,
    ) -> Result<imu_declaration::Model, ServiceError> {
        let txn = self.db.begin().await?;
        let protocol = protocols(&txn, &d.istat_code, now.year(), 1)
            .await?
            .pop()
            .unwrap_or_default();
        let row = declaration_row(
            format!("imu-{}", uuid::Uuid::new_v4().simple()),
            d,
            protocol,
            now,
        )
        .insert(&txn)
        .await?;
        if online {
            indicators::record(
                &txn,
                &self.salt,
                &row.istat_code,
                &domain::IMU_DECLARATION,
                &row.fiscal_code,
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(row)
    }

    // ---- TARI registrations --------------------------------------------------------------

    /// A page of a comune's registrations, by address, and the total.
    pub async fn list_registrations(
        &self,
        istat_code: &str,
        holder: Option<&str>,
        kind: Option<i32>,
        include_ended: bool,
        today: NaiveDate,
        page: Page,
    ) -> Result<(Vec<tari_registration::Model>, u64), DbErr> {
        let mut q = tari_registration::Entity::find()
            .filter(tari_registration::Column::IstatCode.eq(istat_code));
        if let Some(h) = holder {
            q = q.filter(tari_registration::Column::HolderFiscalCode.eq(h));
        }
        if let Some(k) = kind {
            q = q.filter(tari_registration::Column::Kind.eq(k));
        }
        if !include_ended {
            q = q.filter(
                Condition::any()
                    .add(tari_registration::Column::EndDate.is_null())
                    .add(tari_registration::Column::EndDate.gte(today)),
            );
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(tari_registration::Column::Street)
            .order_by_asc(tari_registration::Column::HouseNumber)
            .order_by_asc(tari_registration::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// Registrations of these holders, newest first.
    pub async fn registrations_of(
        &self,
        codes: &[String],
        include_ended: bool,
        today: NaiveDate,
    ) -> Result<Vec<tari_registration::Model>, DbErr> {
        let db = &self.db;
        let mut rows = in_chunks(codes, |chunk| {
            let mut q = tari_registration::Entity::find()
                .filter(tari_registration::Column::HolderFiscalCode.is_in(chunk));
            if !include_ended {
                q = q.filter(
                    Condition::any()
                        .add(tari_registration::Column::EndDate.is_null())
                        .add(tari_registration::Column::EndDate.gte(today)),
                );
            }
            q.all(db)
        })
        .await?;
        rows.sort_by(|a, b| b.start_date.cmp(&a.start_date).then(a.id.cmp(&b.id)));
        Ok(rows)
    }

    /// Registrations occupied at some time in `year`, of a comune (and a holder, if given).
    pub async fn registrations_in_year(
        &self,
        istat_code: Option<&str>,
        holder: Option<&str>,
        year: i32,
    ) -> Result<Vec<tari_registration::Model>, DbErr> {
        let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            return Ok(Vec::new());
        };
        let mut q = tari_registration::Entity::find()
            .filter(tari_registration::Column::StartDate.lte(last))
            .filter(
                Condition::any()
                    .add(tari_registration::Column::EndDate.is_null())
                    .add(tari_registration::Column::EndDate.gte(first)),
            );
        if let Some(c) = istat_code {
            q = q.filter(tari_registration::Column::IstatCode.eq(c));
        }
        if let Some(h) = holder {
            q = q.filter(tari_registration::Column::HolderFiscalCode.eq(h));
        }
        q.order_by_asc(tari_registration::Column::HolderFiscalCode)
            .order_by_asc(tari_registration::Column::StartDate)
            .all(&self.db)
            .await
    }

    /// The registration with this id.
    pub async fn registration(&self, id: &str) -> Result<Option<tari_registration::Model>, DbErr> {
        tari_registration::Entity::find_by_id(id)
            .one(&self.db)
            .await
    }

    /// Files a TARI declaration: creates, changes (from the event day) or ends a registration,
    /// gives it a protocol number and records the online interaction when the holder filed it.
    /// Returns the registration as it now stands, the protocol number and whether it was late.
    pub async fn submit_tari_declaration(
        &self,
        declaration: TariDeclaration,
        event: NaiveDate,
        online: bool,
        now: DateTime<Utc>,
    ) -> Result<(tari_registration::Model, String, bool), ServiceError> {
        let txn = self.db.begin().await?;
        let late = (today(now) - event).num_days() > TARI_DECLARATION_DAYS;
        let (row, protocol) = match declaration {
            TariDeclaration::Start(r) => {
                let protocol = protocols(&txn, &r.istat_code, now.year(), 1)
                    .await?
                    .pop()
                    .unwrap_or_default();
                let row = registration_row(
                    format!("tari-{}", uuid::Uuid::new_v4().simple()),
                    r,
                    protocol.clone(),
                    now,
                )
                .insert(&txn)
                .await?;
                (row, protocol)
            }
            TariDeclaration::Change { id, registration } => {
                let old = locked_registration(&txn, &id).await?;
                if old.end_date.is_some_and(|e| e < event) {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "registration {id} ended on {}: declare a new start of occupation instead",
                        old.end_date.map(|d| d.to_string()).unwrap_or_default()
                    )));
                }
                let Some(day_before) = event.pred_opt().filter(|d| *d >= old.start_date) else {
                    return Err(ServiceError::invalid(
                        "event_date",
                        format!(
                            "must be after the registration's start ({})",
                            old.start_date
                        ),
                    ));
                };
                let protocol = protocols(&txn, &old.istat_code, now.year(), 1)
                    .await?
                    .pop()
                    .unwrap_or_default();
                // The old situation ends the day before; the new one runs from the event day, so
                // the per-day computation charges each for its own days.
                let mut closed: tari_registration::ActiveModel = old.clone().into();
                closed.end_date = Set(Some(day_before));
                closed.updated_at = Set(now);
                closed.update(&txn).await?;
                let new = NewTariRegistration {
                    start_date: event,
                    end_date: old.end_date.or(registration.end_date),
                    ..registration
                };
                let row = registration_row(
                    format!("tari-{}", uuid::Uuid::new_v4().simple()),
                    new,
                    protocol.clone(),
                    now,
                )
                .insert(&txn)
                .await?;
                (row, protocol)
            }
            TariDeclaration::End { id } => {
                let old = locked_registration(&txn, &id).await?;
                if event < old.start_date {
                    return Err(ServiceError::invalid(
                        "event_date",
                        format!(
                            "must not be before the registration's start ({})",
                            old.start_date
                        ),
                    ));
                }
                if let Some(end) = old.end_date {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "registration {id} already ended on {end}"
                    )));
                }
                let protocol = protocols(&txn, &old.istat_code, now.year(), 1)
                    .await?
                    .pop()
                    .unwrap_or_default();
                let mut ended: tari_registration::ActiveModel = old.into();
                ended.end_date = Set(Some(event));
                ended.declaration_protocol_number = Set(protocol.clone());
                ended.updated_at = Set(now);
                (ended.update(&txn).await?, protocol)
            }
        };
        if online {
            indicators::record(
                &txn,
                &self.salt,
                &row.istat_code,
                &domain::TARI_DECLARATION,
                &row.holder_fiscal_code,
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok((row, protocol, late))
    }

    // ---- the clock -----------------------------------------------------------------------

    /// Moves what the clock moved by `now`: published positions whose validity began become
    /// VALID, unpaid ones past their last due day EXPIRED, unpaid tax positions past their last due
    /// day OVERDUE. Returns the IUPDs of the debt positions that changed.
    pub async fn settle(&self, now: DateTime<Utc>) -> Result<Vec<String>, DbErr> {
        use pb::DebtPositionStatus as S;
        let valid_now = Condition::all()
            .add(debt_position::Column::Status.eq(S::Published as i32))
            .add(debt_position::Column::ValidityAt.lte(now));
        let expired_now = Condition::all()
            .add(debt_position::Column::Status.is_in([S::Published as i32, S::Valid as i32]))
            .add(debt_position::Column::ExpiresAt.lte(now));
        let changed: Vec<String> = debt_position::Entity::find()
            .select_only()
            .column(debt_position::Column::Iupd)
            .filter(
                Condition::any()
                    .add(valid_now.clone())
                    .add(expired_now.clone()),
            )
            .into_tuple::<String>()
            .all(&self.db)
            .await?;
        if !changed.is_empty() {
            debt_position::Entity::update_many()
                .col_expr(debt_position::Column::Status, Expr::value(S::Valid as i32))
                .col_expr(debt_position::Column::UpdatedAt, Expr::value(now))
                .filter(valid_now)
                .exec(&self.db)
                .await?;
            debt_position::Entity::update_many()
                .col_expr(
                    debt_position::Column::Status,
                    Expr::value(S::Expired as i32),
                )
                .col_expr(debt_position::Column::UpdatedAt, Expr::value(now))
                .filter(expired_now)
                .exec(&self.db)
                .await?;
        }
        tax_position::Entity::update_many()
            .col_expr(
                tax_position::Column::Status,
                Expr::value(pb::TaxPositionStatus::Overdue as i32),
            )
            .filter(tax_position::Column::Status.is_in([
                pb::TaxPositionStatus::Due as i32,
                pb::TaxPositionStatus::PartiallyPaid as i32,
            ]))
            .filter(tax_position::Column::LastDueDate.lt(today(now)))
            .exec(&self.db)
            .await?;
        Ok(changed)
    }

    // ---- tax positions: reads ------------------------------------------------------------

    async fn debts_of_positions(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<DebtRecord>>, DbErr> {
        let db = &self.db;
        let debts = in_chunks(ids, |chunk| {
            debt_position::Entity::find()
                .filter(debt_position::Column::TaxPositionId.is_in(chunk))
                .order_by_desc(debt_position::Column::CreatedAt)
                .order_by_asc(debt_position::Column::Iupd)
                .all(db)
        })
        .await?;
        let mut out: HashMap<String, Vec<DebtRecord>> = HashMap::new();
        for d in self.with_options(debts).await? {
            out.entry(d.position.tax_position_id.clone())
                .or_default()
                .push(d);
        }
        Ok(out)
    }

    async fn with_debts(
        &self,
        rows: Vec<tax_position::Model>,
    ) -> Result<Vec<PositionRecord>, DbErr> {
        let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
        let mut debts = self.debts_of_positions(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|position| PositionRecord {
                debts: debts.remove(&position.id).unwrap_or_default(),
                position,
            })
            .collect())
    }

    fn position_condition(f: &PositionFilter) -> Condition {
        let mut cond = Condition::all();
        if let Some(c) = &f.istat_code {
            cond = cond.add(tax_position::Column::IstatCode.eq(c.as_str()));
        }
        if let Some(c) = &f.fiscal_code {
            cond = cond.add(tax_position::Column::FiscalCode.eq(c.as_str()));
        }
        if let Some(t) = f.tribute {
            cond = cond.add(tax_position::Column::Tribute.eq(t));
        }
        if let Some(y) = f.year {
            cond = cond.add(tax_position::Column::Year.eq(y));
        }
        if let Some(s) = f.status {
            cond = cond.add(tax_position::Column::Status.eq(s));
        }
        cond
    }

    /// A page of positions matching `f`, newest year first, and the total.
    pub async fn list_positions(
        &self,
        f: &PositionFilter,
        page: Page,
    ) -> Result<(Vec<PositionRecord>, u64), DbErr> {
        let q = tax_position::Entity::find().filter(Self::position_condition(f));
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_desc(tax_position::Column::Year)
            .order_by_asc(tax_position::Column::Tribute)
            .order_by_asc(tax_position::Column::FiscalCode)
            .order_by_asc(tax_position::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((self.with_debts(rows).await?, total))
    }

    /// The positions with these ids.
    pub async fn positions_by_id(&self, ids: &[String]) -> Result<Vec<PositionRecord>, DbErr> {
        let db = &self.db;
        let rows = in_chunks(ids, |chunk| {
            tax_position::Entity::find()
                .filter(tax_position::Column::Id.is_in(chunk))
                .all(db)
        })
        .await?;
        self.with_debts(rows).await
    }

    /// The positions of these taxpayers, newest year first.
    pub async fn positions_of(
        &self,
        codes: &[String],
        f: &PositionFilter,
    ) -> Result<Vec<PositionRecord>, DbErr> {
        let db = &self.db;
        let cond = Self::position_condition(f);
        let mut rows = in_chunks(codes, |chunk| {
            tax_position::Entity::find()
                .filter(cond.clone())
                .filter(tax_position::Column::FiscalCode.is_in(chunk))
                .all(db)
        })
        .await?;
        rows.sort_by(|a, b| {
            b.year
                .cmp(&a.year)
                .then(a.tribute.cmp(&b.tribute))
                .then(a.id.cmp(&b.id))
        });
        self.with_debts(rows).await
    }

    /// Collection figures per comune and tribute for a year: (positions, due, paid) and debt
    /// positions counted by status.
    #[allow(clippy::type_complexity)]
    pub async fn summaries(
        &self,
        codes: &[String],
        year: i32,
    ) -> Result<BTreeMap<String, BTreeMap<i32, (i64, i64, i64, HashMap<i32, i64>)>>, DbErr> {
        // PostgreSQL sums BIGINT into NUMERIC: cast back so both backends answer an integer.
        let big = |col: tax_position::Column| {
            Expr::expr(Func::cast_as(
                Func::sum(Expr::col(col)),
                Alias::new("BIGINT"),
            ))
        };
        let sums: Vec<(String, i32, i64, Option<i64>, Option<i64>)> = tax_position::Entity::find()
            .select_only()
            .column(tax_position::Column::IstatCode)
            .column(tax_position::Column::Tribute)
            .column_as(tax_position::Column::Id.count(), "positions")
            .column_as(big(tax_position::Column::AmountDueCents), "due")
            .column_as(big(tax_position::Column::AmountPaidCents), "paid")
            .filter(tax_position::Column::IstatCode.is_in(codes.iter().cloned()))
            .filter(tax_position::Column::Year.eq(year))
            .group_by(tax_position::Column::IstatCode)
            .group_by(tax_position::Column::Tribute)
            .into_tuple()
            .all(&self.db)
            .await?;
        let counts: Vec<(String, i32, i32, i64)> = debt_position::Entity::find()
            .select_only()
            .column(debt_position::Column::IstatCode)
            .column(debt_position::Column::Tribute)
            .column(debt_position::Column::Status)
            .column_as(debt_position::Column::Iupd.count(), "n")
            .filter(debt_position::Column::IstatCode.is_in(codes.iter().cloned()))
            .filter(debt_position::Column::Year.eq(year))
            .group_by(debt_position::Column::IstatCode)
            .group_by(debt_position::Column::Tribute)
            .group_by(debt_position::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut out: BTreeMap<String, BTreeMap<i32, (i64, i64, i64, HashMap<i32, i64>)>> =
            BTreeMap::new();
        for (istat, tribute, n, due, paid) in sums {
            out.entry(istat).or_default().insert(
                tribute,
                (n, due.unwrap_or(0), paid.unwrap_or(0), HashMap::new()),
            );
        }
        for (istat, tribute, status, n) in counts {
            if let Some(entry) = out.get_mut(&istat).and_then(|t| t.get_mut(&tribute)) {
                entry.3.insert(status, n);
            }
        }
        Ok(out)
    }

    // ---- tax positions: writes -----------------------------------------------------------

    /// Stores the positions computed for a comune, tribute and year, and issues their debt
    /// positions, in one transaction with multi-row INSERTs (nothing at all on a dry run).
    /// Positions that already have a standing debt position are left as they are; those below the
    /// comune's minimum are skipped.
    pub async fn generate(
        &self,
        istat_code: &str,
        tribute: pb::Tribute,
        year: i32,
        computed: Vec<Computed>,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Generated, ServiceError> {
        let txn = self.db.begin().await?;
        let creditors = if dry_run {
            None
        } else {
            Some(Self::creditors(&txn, istat_code).await?)
        };
        let existing: HashMap<String, tax_position::Model> = tax_position::Entity::find()
            .filter(tax_position::Column::IstatCode.eq(istat_code))
            .filter(tax_position::Column::Tribute.eq(tribute as i32))
            .filter(tax_position::Column::Year.eq(year))
            .all(&txn)
            .await?
            .into_iter()
            .map(|p| (p.fiscal_code.clone(), p))
            .collect();
        let ids: Vec<String> = existing.values().map(|p| p.id.clone()).collect();
        let issued: HashSet<String> = in_chunks(&ids, |chunk| {
            debt_position::Entity::find()
                .select_only()
                .column(debt_position::Column::TaxPositionId)
                .filter(debt_position::Column::TaxPositionId.is_in(chunk))
                .filter(debt_position::Column::Status.is_in(ACTIVE_DEBT.map(|s| s as i32)))
                .into_tuple::<String>()
                .all(&txn)
        })
        .await?
        .into_iter()
        .collect();
        let mut out = Generated::default();
        let mut inserts = Vec::new();
        let mut to_issue = Vec::new();
        for c in computed {
            if c.amount_due <= 0 {
                continue;
            }
            if c.below_minimum {
                out.below_minimum += 1;
                continue;
            }
            let current = existing.get(&c.fiscal_code);
            if current.is_some_and(|p| issued.contains(&p.id)) {
                continue;
            }
            out.positions += 1;
            let last_due = c
                .parts
                .iter()
                .map(|p| p.due)
                .max()
                .unwrap_or(now.date_naive());
            let paid = current.map_or(0, |p| p.amount_paid_cents);
            let model = tax_position::Model {
                id: current.map_or_else(
                    || format!("tp-{}", uuid::Uuid::new_v4().simple()),
                    |p| p.id.clone(),
                ),
                fiscal_code: c.fiscal_code.clone(),
                istat_code: istat_code.to_owned(),
                tribute: tribute as i32,
                year,
                status: debt::tax_position_status(c.amount_due, paid, false, last_due, today(now))
                    as i32,
                amount_due_cents: c.amount_due,
                amount_paid_cents: paid,
                assessment: c.assessment.clone(),
                parts_json: json(&c.parts)?,
                imported: false,
                taxpayer_name: c.name.clone(),
                last_due_date: last_due,
                updated_at: now,
            };
            if dry_run {
                if c.amount_due > paid {
                    out.debt_positions += 1;
                    out.total_amount += c.amount_due - paid;
                }
                continue;
            }
            if current.is_some() {
                tax_position::ActiveModel::from(model.clone())
                    .reset_all()
                    .update(&txn)
                    .await?;
            } else {
                inserts.push(tax_position::ActiveModel::from(model.clone()));
            }
            to_issue.push(model);
        }
        if dry_run {
            txn.rollback().await?;
            return Ok(out);
        }
        insert_chunked(&txn, inserts).await?;
        if let Some((creditor, tefa)) = &creditors {
            let mut planned = Vec::with_capacity(to_issue.len());
            for p in &to_issue {
                if p.amount_due_cents > p.amount_paid_cents {
                    planned.push((p, plan_for(p, false, now, creditor, tefa.as_ref())?));
                }
            }
            let count: i64 = planned.iter().map(|(_, o)| o.len() as i64).sum();
            let mut next = reserve_numbers(&txn, &iuv_sequence(creditor), count).await?;
            let mut positions = Vec::with_capacity(planned.len());
            let mut options = Vec::new();
            for (p, plan) in planned {
                let (d, o) = debt_rows(p, &plan, next, now, creditor, now)?;
                next += plan.len() as i64;
                out.debt_positions += 1;
                out.total_amount += o.first().map_or(0, |x| x.amount_cents);
                positions.push(debt_position::ActiveModel::from(d));
                options.extend(o.into_iter().map(payment_option::ActiveModel::from));
            }
            insert_chunked(&txn, positions).await?;
            insert_chunked(&txn, options).await?;
        }
        txn.commit().await?;
        Ok(out)
    }

    /// Issues the debt position of a tax position (refused when one stands already).
    pub async fn issue_debt_position(
        &self,
        tax_position_id: &str,
        single_only: bool,
        validity: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DebtRecord, ServiceError> {
        let txn = self.db.begin().await?;
        let p = tax_position::Entity::find_by_id(tax_position_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("tax position", tax_position_id))?;
        if p.status == pb::TaxPositionStatus::Cancelled as i32 {
            return Err(ServiceError::FailedPrecondition(format!(
                "tax position {tax_position_id} was cancelled (sgravio): nothing is due"
            )));
        }
        let standing = debt_position::Entity::find()
            .filter(debt_position::Column::TaxPositionId.eq(tax_position_id))
            .filter(debt_position::Column::Status.is_in(ACTIVE_DEBT.map(|s| s as i32)))
            .one(&txn)
            .await?;
        if let Some(d) = standing {
            let expired = debt::effective_status(
                pb::DebtPositionStatus::try_from(d.status).unwrap_or(pb::DebtPositionStatus::Valid),
                d.validity_at,
                d.expires_at,
                now,
            ) == pb::DebtPositionStatus::Expired;
            if !expired {
                return Err(ServiceError::AlreadyExists(format!(
                    "tax position {tax_position_id} already has debt position {}; invalidate it first",
                    d.iupd
                )));
            }
        }
        let (creditor, tefa) = Self::creditors(&txn, &p.istat_code).await?;
        let record = issue_in(
            &txn,
            &p,
            single_only,
            validity,
            &creditor,
            tefa.as_ref(),
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(record)
    }

    /// Cancels an unpaid debt position.
    pub async fn invalidate(
        &self,
        iupd: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<DebtRecord, ServiceError> {
        use pb::DebtPositionStatus as S;
        let txn = self.db.begin().await?;
        let d = debt_position::Entity::find_by_id(iupd)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("debt position", iupd))?;
        let status = debt::effective_status(
            S::try_from(d.status).unwrap_or(S::Unspecified),
            d.validity_at,
            d.expires_at,
            now,
        );
        if !matches!(status, S::Draft | S::Published | S::Valid | S::Expired) {
            let name = status
                .as_str_name()
                .trim_start_matches("DEBT_POSITION_STATUS_");
            return Err(ServiceError::FailedPrecondition(format!(
                "debt position {iupd} is {name}: only an unpaid position can be cancelled"
            )));
        }
        let mut row: debt_position::ActiveModel = d.into();
        row.status = Set(S::Invalid as i32);
        row.invalidation_reason = Set(reason.to_owned());
        row.updated_at = Set(now);
        row.update(&txn).await?;
        txn.commit().await?;
        self.debt(iupd)
            .await?
            .ok_or_else(|| ServiceError::not_found("debt position", iupd))
    }

    /// Records a pagoPA receipt for an IUV, idempotently: the same receipt again answers
    /// `already_recorded`; another receipt for a paid IUV is refused. `authorize` is asked, with the
    /// debt position the IUV belongs to, before anything is written.
    pub async fn record_payment(
        &self,
        creditor_fiscal_code: &str,
        iuv: &str,
        receipt: &Receipt,
        now: DateTime<Utc>,
        authorize: impl FnOnce(&debt_position::Model) -> Result<(), ServiceError>,
    ) -> Result<(DebtRecord, bool), ServiceError> {
        use pb::DebtPositionStatus as S;
        let txn = self.db.begin().await?;
        let Some(option) = payment_option::Entity::find()
            .filter(payment_option::Column::CreditorFiscalCode.eq(creditor_fiscal_code))
            .filter(payment_option::Column::Iuv.eq(iuv))
            .one(&txn)
            .await?
        else {
            return Err(ServiceError::not_found(
                "payment option",
                format!("{creditor_fiscal_code}/{iuv}"),
            ));
        };
        let position = debt_position::Entity::find_by_id(option.iupd.as_str())
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("debt position", &option.iupd))?;
        // May the caller record it? Asked before anything is written.
        authorize(&position)?;
        let options = payment_option::Entity::find()
            .filter(payment_option::Column::Iupd.eq(position.iupd.as_str()))
            .all(&txn)
            .await?;
        let status = debt::effective_status(
            S::try_from(position.status).unwrap_or(S::Unspecified),
            position.validity_at,
            position.expires_at,
            now,
        );
        let states: Vec<debt::OptionState> = options
            .iter()
            .map(|o| debt::OptionState {
                iuv: o.iuv.clone(),
                instalment: o.instalment,
                paid: o.status != pb::DebtPaymentOptionStatus::Unpaid as i32,
                receipt_id: o.receipt_id.clone(),
                amount: o.amount_cents,
            })
            .collect();
        let outcome = debt::pay(
            status,
            &states,
            iuv,
            &receipt.receipt_id,
            receipt.amount,
            position.validity_at,
        )
        .map_err(|r| match r {
            PaymentRefusal::NotPayable(m) => {
                ServiceError::FailedPrecondition(format!("debt position {}: {m}", position.iupd))
            }
            PaymentRefusal::AlreadyPaid(m) => ServiceError::AlreadyExists(m),
            PaymentRefusal::WrongAmount(m) => ServiceError::invalid("receipt.amount.cents", m),
        })?;
        let Payment::Recorded(new_status) = outcome else {
            drop(txn);
            let record = self
                .debt(&position.iupd)
                .await?
                .ok_or_else(|| ServiceError::not_found("debt position", &position.iupd))?;
            return Ok((record, true));
        };
        let mut paid: payment_option::ActiveModel = option.clone().into();
        paid.status = Set(pb::DebtPaymentOptionStatus::Paid as i32);
        paid.receipt_id = Set(receipt.receipt_id.clone());
        paid.psp_id = Set(receipt.psp_id.clone());
        paid.psp_name = Set(receipt.psp_name.clone());
        paid.receipt_amount_cents = Set(receipt.amount);
        paid.payment_at = Set(Some(receipt.payment_time));
        paid.recorded_at = Set(Some(now));
        let paid = paid.update(&txn).await?;
        let open_due = options
            .iter()
            .filter(|o| {
                o.instalment
                    && o.nav != option.nav
                    && o.status == pb::DebtPaymentOptionStatus::Unpaid as i32
            })
            .map(|o| o.due_date)
            .min();
        let mut row: debt_position::ActiveModel = position.clone().into();
        row.status = Set(new_status as i32);
        if new_status == S::Paid {
            row.paid_at = Set(Some(receipt.payment_time));
        }
        if let Some(due) = open_due.filter(|_| new_status == S::PartiallyPaid) {
            row.next_due_date = Set(due);
        }
        row.updated_at = Set(now);
        let updated = row.update(&txn).await?;
        let tp = tax_position::Entity::find_by_id(position.tax_position_id.as_str())
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("tax position", &position.tax_position_id))?;
        let paid_total = tp.amount_paid_cents + receipt.amount;
        let mut tp_row: tax_position::ActiveModel = tp.clone().into();
        tp_row.amount_paid_cents = Set(paid_total);
        tp_row.status = Set(debt::tax_position_status(
            tp.amount_due_cents,
            paid_total,
            false,
            tp.last_due_date,
            today(now),
        ) as i32);
        tp_row.updated_at = Set(now);
        tp_row.update(&txn).await?;
        let tribute = pb::Tribute::try_from(position.tribute).unwrap_or(pb::Tribute::Imu);
        indicators::record(
            &txn,
            &self.salt,
            &position.istat_code,
            domain::payment_procedure(tribute),
            &position.debtor_fiscal_code,
            now,
        )
        .await?;
        txn.commit().await?;
        let mut options = options;
        for o in options.iter_mut().filter(|o| o.nav == paid.nav) {
            *o = paid.clone();
        }
        options.sort_by_key(|o| o.instalment_number);
        Ok((
            DebtRecord {
                position: updated,
                options,
            },
            false,
        ))
    }

    // ---- debt positions: reads -----------------------------------------------------------

    async fn with_options(
        &self,
        rows: Vec<debt_position::Model>,
    ) -> Result<Vec<DebtRecord>, DbErr> {
        let ids: Vec<String> = rows.iter().map(|d| d.iupd.clone()).collect();
        let db = &self.db;
        let mut options: HashMap<String, Vec<payment_option::Model>> = HashMap::new();
        for o in in_chunks(&ids, |chunk| {
            payment_option::Entity::find()
                .filter(payment_option::Column::Iupd.is_in(chunk))
                .order_by_asc(payment_option::Column::InstalmentNumber)
                .all(db)
        })
        .await?
        {
            options.entry(o.iupd.clone()).or_default().push(o);
        }
        Ok(rows
            .into_iter()
            .map(|position| DebtRecord {
                options: options.remove(&position.iupd).unwrap_or_default(),
                position,
            })
            .collect())
    }

    /// The debt position with this IUPD.
    pub async fn debt(&self, iupd: &str) -> Result<Option<DebtRecord>, DbErr> {
        let Some(d) = debt_position::Entity::find_by_id(iupd)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(self.with_options(vec![d]).await?.pop())
    }

    /// The debt positions with these IUPDs.
    pub async fn debts_by_iupd(&self, keys: &[String]) -> Result<Vec<DebtRecord>, DbErr> {
        let db = &self.db;
        let rows = in_chunks(keys, |chunk| {
            debt_position::Entity::find()
                .filter(debt_position::Column::Iupd.is_in(chunk))
                .all(db)
        })
        .await?;
        self.with_options(rows).await
    }

    fn debt_condition(&self, f: &DebtFilter) -> Condition {
        let mut cond = Condition::all();
        if let Some(c) = &f.istat_code {
            cond = cond.add(debt_position::Column::IstatCode.eq(c.as_str()));
        }
        if let Some(c) = &f.debtor {
            cond = cond.add(debt_position::Column::DebtorFiscalCode.eq(c.as_str()));
        }
        if let Some(s) = f.status {
            cond = cond.add(debt_position::Column::Status.eq(s));
        } else if let Some(list) = &f.statuses {
            cond = cond.add(debt_position::Column::Status.is_in(list.clone()));
        }
        if let Some(t) = f.tribute {
            cond = cond.add(debt_position::Column::Tribute.eq(t));
        }
        if let Some(y) = f.year {
            cond = cond.add(debt_position::Column::Year.eq(y));
        }
        let by_option = |col: payment_option::Column, value: &str| {
            debt_position::Column::Iupd.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(payment_option::Column::Iupd)
                    .from(payment_option::Entity)
                    .and_where(col.eq(value))
                    .to_owned(),
            )
        };
        if let Some(iuv) = &f.iuv {
            cond = cond.add(by_option(payment_option::Column::Iuv, iuv));
        }
        if let Some(nav) = &f.nav {
            cond = cond.add(by_option(payment_option::Column::Nav, nav));
        }
        cond
    }

    /// A page of debt positions matching `f`, soonest due first, and the total.
    pub async fn list_debts(
        &self,
        f: &DebtFilter,
        page: Page,
    ) -> Result<(Vec<DebtRecord>, u64), DbErr> {
        let q = debt_position::Entity::find().filter(self.debt_condition(f));
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(debt_position::Column::NextDueDate)
            .order_by_asc(debt_position::Column::Iupd)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((self.with_options(rows).await?, total))
    }

    /// The debt positions of these debtors, soonest due first.
    pub async fn debts_of(
        &self,
        codes: &[String],
        f: &DebtFilter,
    ) -> Result<Vec<DebtRecord>, DbErr> {
        let db = &self.db;
        let cond = self.debt_condition(f);
        let mut rows = in_chunks(codes, |chunk| {
            debt_position::Entity::find()
                .filter(cond.clone())
                .filter(debt_position::Column::DebtorFiscalCode.is_in(chunk))
                .all(db)
        })
        .await?;
        rows.sort_by(|a, b| {
            a.next_due_date
                .cmp(&b.next_due_date)
                .then(a.iupd.cmp(&b.iupd))
        });
        self.with_options(rows).await
    }

    // ---- the tax roll --------------------------------------------------------------------

    /// Writes a validated roll of one comune in one transaction. Rows matching a stored one by
    /// their key (declaration: taxpayer, year, unit, start; registration: holder, address, start;
    /// position: taxpayer, tribute, year) replace it; the others are added.
    pub async fn import_roll(
        &self,
        istat_code: &str,
        rows: Vec<RollRow>,
        now: DateTime<Utc>,
    ) -> Result<Imported, ServiceError> {
        let txn = self.db.begin().await?;
        let mut imu = Vec::new();
        let mut tari = Vec::new();
        let mut positions = Vec::new();
        for row in rows {
            match row {
                RollRow::Imu(d) => imu.push(d),
                RollRow::Tari(r) => tari.push(r),
                RollRow::Position(p, due) => positions.push((p, due)),
            }
        }
        let out = Imported {
            imu_declarations: imu.len() as i32,
            tari_registrations: tari.len() as i32,
            tax_positions: positions.len() as i32,
        };

        if !imu.is_empty() {
            let existing: HashMap<(String, i32, String, NaiveDate), String> =
                imu_declaration::Entity::find()
                    .filter(imu_declaration::Column::IstatCode.eq(istat_code))
                    .all(&txn)
                    .await?
                    .into_iter()
                    .map(|d| {
                        (
                            (d.fiscal_code, d.year, d.cadastral_unit_id, d.start_date),
                            d.id,
                        )
                    })
                    .collect();
            let without_protocol = imu.iter().filter(|d| d.protocol_number.is_empty()).count();
            let mut numbers = protocols(&txn, istat_code, now.year(), without_protocol)
                .await?
                .into_iter();
            let mut replaced = Vec::new();
            let mut rows = Vec::with_capacity(imu.len());
            for d in imu {
                let id = match existing.get(&d.key()) {
                    Some(id) => {
                        replaced.push(id.clone());
                        id.clone()
                    }
                    None => format!("imu-{}", uuid::Uuid::new_v4().simple()),
                };
                let protocol = if d.protocol_number.is_empty() {
                    numbers.next().unwrap_or_default()
                } else {
                    d.protocol_number.clone()
                };
                rows.push(declaration_row(id, d, protocol, now));
            }
            for chunk in replaced.chunks(IN_CHUNK) {
                imu_declaration::Entity::delete_many()
                    .filter(imu_declaration::Column::Id.is_in(chunk.iter().cloned()))
                    .exec(&txn)
                    .await?;
            }
            insert_chunked(&txn, rows).await?;
        }

        if !tari.is_empty() {
            let existing: HashMap<(String, String, NaiveDate), String> =
                tari_registration::Entity::find()
                    .filter(tari_registration::Column::IstatCode.eq(istat_code))
                    .all(&txn)
                    .await?
                    .into_iter()
                    .map(|r| {
                        (
                            (
                                r.holder_fiscal_code,
                                format!("{} {}", r.street, r.house_number).to_lowercase(),
                                r.start_date,
                            ),
                            r.id,
                        )
                    })
                    .collect();
            let mut replaced = Vec::new();
            let mut rows = Vec::with_capacity(tari.len());
            for r in tari {
                let id = match existing.get(&r.key()) {
                    Some(id) => {
                        replaced.push(id.clone());
                        id.clone()
                    }
                    None => format!("tari-{}", uuid::Uuid::new_v4().simple()),
                };
                let protocol = r.protocol_number.clone();
                rows.push(registration_row(id, r, protocol, now));
            }
            for chunk in replaced.chunks(IN_CHUNK) {
                tari_registration::Entity::delete_many()
                    .filter(tari_registration::Column::Id.is_in(chunk.iter().cloned()))
                    .exec(&txn)
                    .await?;
            }
            insert_chunked(&txn, rows).await?;
        }

        if !positions.is_empty() {
            let existing: HashMap<(String, i32, i32), tax_position::Model> =
                tax_position::Entity::find()
                    .filter(tax_position::Column::IstatCode.eq(istat_code))
                    .all(&txn)
                    .await?
                    .into_iter()
                    .map(|p| ((p.fiscal_code.clone(), p.tribute, p.year), p))
                    .collect();
            let mut rows = Vec::new();
            for (p, due) in positions {
                let status = debt::tax_position_status(
                    p.amount_due,
                    p.amount_paid,
                    p.cancelled,
                    due,
                    today(now),
                ) as i32;
                let parts = vec![Part {
                    amount: p.amount_due - p.amount_paid,
                    tefa: 0,
                    due,
                }];
                match existing.get(&p.key()) {
                    // A stored position (maybe with notices) keeps its id: updated in place.
                    Some(old) => {
                        let mut row: tax_position::ActiveModel = old.clone().into();
                        row.amount_due_cents = Set(p.amount_due);
                        row.amount_paid_cents = Set(p.amount_paid);
                        row.status = Set(status);
                        row.assessment = Set(Vec::new());
                        row.parts_json = Set(json(&parts)?);
                        row.imported = Set(true);
                        row.last_due_date = Set(due);
                        row.updated_at = Set(now);
                        row.update(&txn).await?;
                    }
                    None => rows.push(tax_position::ActiveModel {
                        id: Set(format!("tp-{}", uuid::Uuid::new_v4().simple())),
                        fiscal_code: Set(p.fiscal_code),
                        istat_code: Set(p.istat_code),
                        tribute: Set(p.tribute),
                        year: Set(p.year),
                        status: Set(status),
                        amount_due_cents: Set(p.amount_due),
                        amount_paid_cents: Set(p.amount_paid),
                        assessment: Set(Vec::new()),
                        parts_json: Set(json(&parts)?),
                        imported: Set(true),
                        taxpayer_name: Set(String::new()),
                        last_due_date: Set(due),
                        updated_at: Set(now),
                    }),
                }
            }
            insert_chunked(&txn, rows).await?;
        }
        txn.commit().await?;
        Ok(out)
    }

    /// Counts of a comune's roll (declarations, registrations, positions): what tests and the
    /// demo use to see that an import wrote all or nothing.
    pub async fn roll_counts(&self, istat_code: &str) -> Result<(u64, u64, u64), DbErr> {
        Ok((
            imu_declaration::Entity::find()
                .filter(imu_declaration::Column::IstatCode.eq(istat_code))
                .count(&self.db)
                .await?,
            tari_registration::Entity::find()
                .filter(tari_registration::Column::IstatCode.eq(istat_code))
                .count(&self.db)
                .await?,
            tax_position::Entity::find()
                .filter(tax_position::Column::IstatCode.eq(istat_code))
                .count(&self.db)
                .await?,
        ))
    }
}

async fn locked_registration(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<tari_registration::Model, ServiceError> {
    tari_registration::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| ServiceError::not_found("TARI registration", id))
}

fn declaration_row(
    id: String,
    d: NewImuDeclaration,
    protocol: String,
    now: DateTime<Utc>,
) -> imu_declaration::ActiveModel {
    imu_declaration::ActiveModel {
        id: Set(id),
        fiscal_code: Set(d.fiscal_code),
        istat_code: Set(d.istat_code),
        year: Set(d.year),
        cadastral_unit_id: Set(d.cadastral_unit_id),
        asset_kind: Set(d.asset_kind),
        main_residence: Set(d.main_residence),
        main_residence_unit_id: Set(d.main_residence_unit_id),
        base_reduction: Set(d.base_reduction),
        reduction_start_date: Set(d.reduction_start),
        reduction_end_date: Set(d.reduction_end),
        canone_concordato: Set(d.canone_concordato),
        building_land_value_cents: Set(d.building_land_value_cents),
        exemption_reason: Set(d.exemption_reason),
        start_date: Set(d.start_date),
        end_date: Set(d.end_date),
        protocol_number: Set(protocol),
        submitted_at: Set(now),
    }
}

fn registration_row(
    id: String,
    r: NewTariRegistration,
    protocol: String,
    now: DateTime<Utc>,
) -> tari_registration::ActiveModel {
    tari_registration::ActiveModel {
        id: Set(id),
        istat_code: Set(r.istat_code),
        holder_fiscal_code: Set(r.holder_fiscal_code),
        kind: Set(r.kind),
        street: Set(r.street),
        house_number: Set(r.house_number),
        postal_code: Set(r.postal_code),
        locality: Set(r.locality),
        cadastral_unit_id: Set(r.cadastral_unit_id),
        surface_sqm: Set(r.surface_sqm),
        household_size: Set(r.household_size),
        resident: Set(r.resident),
        non_domestic_category: Set(r.non_domestic_category),
        ateco_code: Set(r.ateco_code),
        reduction_codes_json: Set(
            serde_json::to_string(&r.reduction_codes).unwrap_or_else(|_| "[]".into())
        ),
        start_date: Set(r.start_date),
        end_date: Set(r.end_date),
        declaration_protocol_number: Set(protocol),
        updated_at: Set(now),
    }
}

/// The payment options of `p`: its instalments as computed, or, once something was paid, the rest
/// as one payment by the last due day.
fn plan_for(
    p: &tax_position::Model,
    single_only: bool,
    validity: DateTime<Utc>,
    creditor: &Creditor,
    tefa: Option<&TefaBeneficiary>,
) -> Result<Vec<debt::PlannedOption>, ServiceError> {
    let tribute = pb::Tribute::try_from(p.tribute).unwrap_or(pb::Tribute::Imu);
    let left = p.amount_due_cents - p.amount_paid_cents;
    if left <= 0 {
        return Err(ServiceError::FailedPrecondition(format!(
            "tax position {} is paid: nothing is left to pay",
            p.id
        )));
    }
    let stored = parts(p);
    let parts = if p.amount_paid_cents > 0 || stored.is_empty() {
        // TEFA keeps its proportion of what is left.
        let tefa_share = if tribute == pb::Tribute::Tari {
            let total_tefa: i64 = stored.iter().map(|x| x.tefa).sum();
            crate::domain::div_round(
                i128::from(left) * i128::from(total_tefa),
                i128::from(Ord::max(p.amount_due_cents, 1)),
            )
        } else {
            0
        };
        vec![Part {
            amount: left - tefa_share,
            tefa: tefa_share,
            due: p.last_due_date,
        }]
    } else {
        stored
    };
    debt::plan(
        tribute,
        p.year,
        &parts,
        single_only,
        validity.date_naive(),
        creditor,
        tefa,
    )
    .map_err(|e| ServiceError::FailedPrecondition(format!("tax position {}: {e}", p.id)))
}

/// The rows of a debt position of `p` whose options are numbered from the IUV base `first`.
fn debt_rows(
    p: &tax_position::Model,
    options: &[debt::PlannedOption],
    first: i64,
    validity: DateTime<Utc>,
    creditor: &Creditor,
    now: DateTime<Utc>,
) -> Result<(debt_position::Model, Vec<payment_option::Model>), ServiceError> {
    let tribute = pb::Tribute::try_from(p.tribute).unwrap_or(pb::Tribute::Imu);
    let iupd = format!("{}-{}", creditor.fiscal_code, uuid::Uuid::new_v4().simple());
    let comune = comuni::by_istat(&p.istat_code).map_or(p.istat_code.as_str(), |c| c.name.as_str());
    let status = if validity <= now {
        pb::DebtPositionStatus::Valid
    } else {
        pb::DebtPositionStatus::Published
    };
    let position = debt_position::Model {
        iupd: iupd.clone(),
        istat_code: p.istat_code.clone(),
        creditor_fiscal_code: creditor.fiscal_code.clone(),
        debtor_fiscal_code: p.fiscal_code.clone(),
        debtor_name: if p.taxpayer_name.is_empty() {
            p.fiscal_code.clone()
        } else {
            p.taxpayer_name.clone()
        },
        tax_position_id: p.id.clone(),
        tribute: p.tribute,
        year: p.year,
        description: format!("{} {} - Comune di {comune}", tribute_name(tribute), p.year),
        status: status as i32,
        validity_at: validity,
        published_at: Some(now),
        paid_at: None,
        expires_at: debt::expiry(options),
        invalidation_reason: String::new(),
        next_due_date: options
            .iter()
            .map(|o| o.due)
            .min()
            .unwrap_or(p.last_due_date),
        created_at: now,
        updated_at: now,
    };
    let mut rows = Vec::with_capacity(options.len());
    for (i, o) in options.iter().enumerate() {
        let base = u64::try_from(first + i as i64).unwrap_or(0);
        let (iuv, nav, qr) =
            debt::identifiers(creditor, base, o.amount).map_err(ServiceError::Internal)?;
        rows.push(payment_option::Model {
            nav,
            iuv,
            creditor_fiscal_code: creditor.fiscal_code.clone(),
            iupd: iupd.clone(),
            amount_cents: o.amount,
            due_date: o.due,
            instalment: o.instalment,
            instalment_number: o.number,
            description: o.description.clone(),
            status: pb::DebtPaymentOptionStatus::Unpaid as i32,
            qr_payload: qr,
            transfers_json: json(
                &o.transfers
                    .iter()
                    .map(TransferJson::from)
                    .collect::<Vec<_>>(),
            )?,
            receipt_id: String::new(),
            psp_id: String::new(),
            psp_name: String::new(),
            receipt_amount_cents: 0,
            payment_at: None,
            recorded_at: None,
        });
    }
    Ok((position, rows))
}

/// The IUV sequence of a creditor's segregation code. The platform is one pagoPA intermediary
/// numbering every comune's IUVs from one sequence per segregation code, so an IUV is unique
/// across creditors too.
fn iuv_sequence(creditor: &Creditor) -> String {
    format!("iuv:{:02}", creditor.segregation_code)
}

/// Issues the debt position of `p` inside `conn`'s transaction: plans the options, numbers their
/// IUVs from the creditor's sequence, stores the position and the options.
async fn issue_in(
    conn: &impl ConnectionTrait,
    p: &tax_position::Model,
    single_only: bool,
    validity: DateTime<Utc>,
    creditor: &Creditor,
    tefa: Option<&TefaBeneficiary>,
    now: DateTime<Utc>,
) -> Result<DebtRecord, ServiceError> {
    let options = plan_for(p, single_only, validity, creditor, tefa)?;
    let first = reserve_numbers(conn, &iuv_sequence(creditor), options.len() as i64).await?;
    let (position, options) = debt_rows(p, &options, first, validity, creditor, now)?;
    debt_position::ActiveModel::from(position.clone())
        .insert(conn)
        .await?;
    insert_chunked(
        conn,
        options
            .iter()
            .cloned()
            .map(payment_option::ActiveModel::from)
            .collect(),
    )
    .await?;
    Ok(DebtRecord { position, options })
}

/// A transfer as stored (the protobuf message has no serde form).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferJson {
    /// Transfer number.
    pub transfer_id: i32,
    /// Beneficiary kind (protobuf number).
    pub kind: i32,
    /// Beneficiary codice fiscale.
    pub beneficiary_fiscal_code: String,
    /// Beneficiary name.
    pub beneficiary_name: String,
    /// Amount, cents.
    pub amount_cents: i64,
    /// Causale.
    pub remittance_information: String,
    /// Taxonomy.
    pub taxonomy: String,
    /// IBAN.
    pub iban: String,
}

impl From<&pb::DebtTransfer> for TransferJson {
    fn from(t: &pb::DebtTransfer) -> Self {
        Self {
            transfer_id: t.transfer_id,
            kind: t.kind,
            beneficiary_fiscal_code: t.beneficiary_fiscal_code.clone(),
            beneficiary_name: t.beneficiary_name.clone(),
            amount_cents: t.amount.as_ref().map_or(0, |m| m.cents),
            remittance_information: t.remittance_information.clone(),
            taxonomy: t.taxonomy.clone(),
            iban: t.iban.clone(),
        }
    }
}

impl From<TransferJson> for pb::DebtTransfer {
    fn from(t: TransferJson) -> Self {
        Self {
            transfer_id: t.transfer_id,
            kind: t.kind,
            beneficiary_fiscal_code: t.beneficiary_fiscal_code,
            beneficiary_name: t.beneficiary_name,
            amount: Some(patto_proto::common::v1::Money {
                cents: t.amount_cents,
            }),
            remittance_information: t.remittance_information,
            taxonomy: t.taxonomy,
            iban: t.iban,
        }
    }
}
