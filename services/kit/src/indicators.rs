//! The programme indicators, answered the same way by every service.
//!
//! Each service lists the online procedures it offers and records every online interaction a
//! citizen completes (in the same transaction as the interaction itself). The record keeps a salted
//! hash of the fiscal code, never the code; [`IndicatorsServer`] answers
//! `patto.common.v1.IndicatorsService` with per-comune counts and a HyperLogLog [`Sketch`] of those
//! hashes, which the gateway merges across services to count distinct citizens.

use chrono::{DateTime, NaiveDate, Utc};
use patto_proto::common::v1 as pb;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, QuerySelect, Set};
use sea_orm_migration::prelude::{Index, MigrationName, MigrationTrait, SchemaManager, Table};
use sha2::{Digest, Sha256};

use crate::comuni;
use crate::error::{ServiceError, Violations};

/// A procedure a service offers to citizens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Procedure {
    /// Stable code, e.g. `culture.event-booking`.
    pub code: &'static str,
    /// Name shown to citizens, in Italian.
    pub name: &'static str,
    /// Whether it can be started, followed and finished online.
    pub fully_online: bool,
}

pub(crate) mod interaction {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "online_interactions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub istat_code: String,
        pub procedure_code: String,
        pub citizen_hash: String,
        pub completed_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Migration creating the `online_interactions` table; every service lists it in its migrator.
pub struct CreateOnlineInteractions;

#[derive(sea_orm::DeriveIden)]
enum OnlineInteractions {
    Table,
    Id,
    IstatCode,
    ProcedureCode,
    CitizenHash,
    CompletedAt,
}

impl MigrationName for CreateOnlineInteractions {
    fn name(&self) -> &str {
        "m20261126_000001_kit_online_interactions"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateOnlineInteractions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use sea_orm_migration::prelude::ColumnDef;
        manager
            .create_table(
                Table::create()
                    .table(OnlineInteractions::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OnlineInteractions::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OnlineInteractions::IstatCode)
                            .string_len(6)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OnlineInteractions::ProcedureCode)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OnlineInteractions::CitizenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OnlineInteractions::CompletedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_online_interactions_comune_time")
                    .table(OnlineInteractions::Table)
                    .col(OnlineInteractions::IstatCode)
                    .col(OnlineInteractions::CompletedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}

/// Hex SHA-256 of `salt` and the fiscal code: the only form in which a citizen enters the
/// indicators. The same salt across services makes hashes, and so sketches, mergeable.
pub fn citizen_hash(salt: &str, fiscal_code: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(fiscal_code.trim().to_ascii_uppercase().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Records one completed online interaction; call it inside the transaction that completes it.
pub async fn record(
    conn: &impl ConnectionTrait,
    salt: &str,
    istat_code: &str,
    procedure: &Procedure,
    fiscal_code: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    interaction::ActiveModel {
        istat_code: Set(istat_code.to_owned()),
        procedure_code: Set(procedure.code.to_owned()),
        citizen_hash: Set(citizen_hash(salt, fiscal_code)),
        completed_at: Set(at),
        ..Default::default()
    }
    .insert(conn)
    .await
    .map(|_| ())
}

/// Precision of the sketches: 2^12 registers, about 1.6 % standard error, 4 KiB per comune.
pub const SKETCH_PRECISION: u32 = 12;

/// A HyperLogLog sketch of citizen hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sketch {
    precision: u32,
    registers: Vec<u8>,
}

impl Default for Sketch {
    fn default() -> Self {
        Self::new(SKETCH_PRECISION)
    }
}

impl Sketch {
    /// An empty sketch with 2^`precision` registers (precision 4 to 16).
    pub fn new(precision: u32) -> Self {
        let precision = precision.clamp(4, 16);
        Self {
            precision,
            registers: vec![0; 1 << precision],
        }
    }

    /// Adds a citizen hash (hex, as [`citizen_hash`] makes it).
    pub fn insert_hash(&mut self, hex_hash: &str) {
        let x = hex_hash
            .get(..16)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| {
                u64::from_be_bytes(Sha256::digest(hex_hash)[..8].try_into().unwrap_or([0; 8]))
            });
        let p = self.precision;
        let index = (x >> (64 - p)) as usize;
        let rest = x << p;
        let rank = (rest.leading_zeros().min(64 - p) + 1) as u8;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    /// Merges another sketch of the same precision into this one (register-wise maximum).
    pub fn merge(&mut self, other: &Sketch) -> Result<(), String> {
        if other.precision != self.precision {
            return Err(format!(
                "precision {} cannot merge with {}",
                other.precision, self.precision
            ));
        }
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
        Ok(())
    }

    /// Estimated number of distinct hashes inserted.
    pub fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let alpha = match self.registers.len() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        // Small ranges: linear counting is far more accurate while registers are still empty.
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::CitizenSketch {
        pb::CitizenSketch {
            precision: self.precision,
            registers: self.registers.clone(),
        }
    }

    /// Reads the wire form, refusing malformed sketches.
    pub fn from_proto(p: &pb::CitizenSketch) -> Result<Self, String> {
        if !(4..=16).contains(&p.precision) || p.registers.len() != 1 << p.precision {
            return Err(format!(
                "sketch of precision {} has {} registers",
                p.precision,
                p.registers.len()
            ));
        }
        Ok(Self {
            precision: p.precision,
            registers: p.registers.clone(),
        })
    }
}

/// Parses an ISO `YYYY-MM-DD` day, naming `field` when it is not one.
pub fn parse_day(value: &str, field: &str, violations: &mut Violations) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            violations.add(field, format!("`{value}` is not a date; use YYYY-MM-DD"));
            None
        }
    }
}

/// Serves `patto.common.v1.IndicatorsService` for one service's procedures and database.
#[derive(Clone)]
pub struct IndicatorsServer {
    db: DatabaseConnection,
    procedures: &'static [Procedure],
}

impl IndicatorsServer {
    /// Indicators over `db` for a service offering `procedures` in every comune.
    pub fn new(db: DatabaseConnection, procedures: &'static [Procedure]) -> Self {
        Self { db, procedures }
    }

    /// The tonic service to add to a [`crate::GrpcApp`].
    pub fn into_service(self) -> pb::indicators_service_server::IndicatorsServiceServer<Self> {
        pb::indicators_service_server::IndicatorsServiceServer::new(self)
    }

    async fn indicators(
        &self,
        req: pb::GetIndicatorsRequest,
    ) -> Result<pb::GetIndicatorsResponse, ServiceError> {
        let mut v = Violations::new();
        for (i, code) in req.istat_codes.iter().enumerate() {
            v.check(
                comuni::by_istat(code).is_some(),
                format!("istat_codes[{i}]"),
                format!("`{code}` is not the ISTAT code of a comune of the Città Metropolitana di Palermo"),
            );
        }
        let (start, end) = match &req.period {
            None => {
                // No period: the current calendar year.
                let y = chrono::Datelike::year(&Utc::now());
                (
                    NaiveDate::from_ymd_opt(y, 1, 1),
                    NaiveDate::from_ymd_opt(y, 12, 31),
                )
            }
            Some(p) => (
                parse_day(&p.start_date, "period.start_date", &mut v),
                parse_day(&p.end_date, "period.end_date", &mut v),
            ),
        };
        if let (Some(s), Some(e)) = (start, end) {
            v.check(
                s <= e,
                "period.end_date",
                "must not be before period.start_date",
            );
        }
        v.into_result()?;
        let (Some(start), Some(end)) = (start, end) else {
            return Err(ServiceError::Internal(
                "period bounds missing after validation".into(),
            ));
        };
        let from = start.and_hms_opt(0, 0, 0).map(|d| d.and_utc());
        let to = end
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());

        let codes: Vec<String> = if req.istat_codes.is_empty() {
            comuni::all().iter().map(|c| c.istat_code.clone()).collect()
        } else {
            req.istat_codes.clone()
        };
        let mut query = interaction::Entity::find()
            .select_only()
            .column(interaction::Column::IstatCode)
            .column(interaction::Column::CitizenHash)
            .column_as(interaction::Column::Id.count(), "n")
            .filter(interaction::Column::IstatCode.is_in(codes.clone()))
            .group_by(interaction::Column::IstatCode)
            .group_by(interaction::Column::CitizenHash);
        if let Some(from) = from {
            query = query.filter(interaction::Column::CompletedAt.gte(from));
        }
        if let Some(to) = to {
            query = query.filter(interaction::Column::CompletedAt.lt(to));
        }
        let rows: Vec<(String, String, i64)> = query.into_tuple().all(&self.db).await?;

        let mut per_comune: std::collections::BTreeMap<String, (i64, Sketch)> = codes
            .iter()
            .map(|c| (c.clone(), (0, Sketch::default())))
            .collect();
        for (istat, hash, n) in rows {
            if let Some((count, sketch)) = per_comune.get_mut(&istat) {
                *count += n;
                sketch.insert_hash(&hash);
            }
        }
        let procedures: Vec<pb::OnlineProcedure> = self
            .procedures
            .iter()
            .map(|p| pb::OnlineProcedure {
                code: p.code.into(),
                name: p.name.into(),
                fully_online: p.fully_online,
            })
            .collect();
        Ok(pb::GetIndicatorsResponse {
            items: per_comune
                .into_iter()
                .map(
                    |(istat_code, (completed, sketch))| pb::MunicipalityIndicators {
                        istat_code,
                        procedures: procedures.clone(),
                        completed_interactions: completed,
                        citizens: Some(sketch.to_proto()),
                    },
                )
                .collect(),
        })
    }
}

#[tonic::async_trait]
impl pb::indicators_service_server::IndicatorsService for IndicatorsServer {
    async fn get_indicators(
        &self,
        request: tonic::Request<pb::GetIndicatorsRequest>,
    ) -> Result<tonic::Response<pb::GetIndicatorsResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            self.indicators(request.into_inner()).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_estimates_distinct_citizens_and_merges() {
        let mut a = Sketch::default();
        let mut b = Sketch::default();
        for i in 0..3000 {
            a.insert_hash(&citizen_hash("s", &format!("CF{i}")));
        }
        for i in 2000..5000 {
            b.insert_hash(&citizen_hash("s", &format!("CF{i}")));
        }
        // Re-inserting the same citizens changes nothing.
        for i in 0..3000 {
            a.insert_hash(&citizen_hash("s", &format!("CF{i}")));
        }
        let within = |est: u64, truth: f64| ((est as f64 - truth) / truth).abs() < 0.05;
        assert!(within(a.estimate(), 3000.0), "{}", a.estimate());
        a.merge(&b).unwrap();
        assert!(within(a.estimate(), 5000.0), "{}", a.estimate());
        let round = Sketch::from_proto(&a.to_proto()).unwrap();
        assert_eq!(round, a);
    }

    #[test]
    fn small_counts_are_exact_enough() {
        let mut s = Sketch::default();
        for i in 0..10 {
            s.insert_hash(&citizen_hash("s", &format!("X{i}")));
        }
        assert_eq!(s.estimate(), 10);
        assert_eq!(Sketch::default().estimate(), 0);
    }

    #[test]
    fn malformed_sketches_are_refused() {
        assert!(
            Sketch::from_proto(&pb::CitizenSketch {
                precision: 12,
                registers: vec![0; 10]
            })
            .is_err()
        );
        assert!(
            Sketch::from_proto(&pb::CitizenSketch {
                precision: 40,
                registers: vec![]
            })
            .is_err()
        );
        assert!(Sketch::new(12).merge(&Sketch::new(10)).is_err());
    }

    #[test]
    fn hash_is_salted_and_normalised() {
        assert_eq!(
            citizen_hash("a", "rssmra80a01g273x"),
            citizen_hash("a", "RSSMRA80A01G273X")
        );
        assert_ne!(
            citizen_hash("a", "RSSMRA80A01G273X"),
            citizen_hash("b", "RSSMRA80A01G273X")
        );
    }
}
