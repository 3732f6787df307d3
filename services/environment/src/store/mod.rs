//! The environment database: reads, and writes that each run in one transaction.
//!
//! Two writes decide on what other writes did: filing a report (is there an open report nearby to
//! link to?) and booking a pickup (is the day full?). Each takes a transaction-scoped lock on its
//! scope first (a PostgreSQL advisory lock; SQLite's single connection serialises transactions
//! anyway), so the check and the insert behave as one step under concurrency.

mod air;
pub(crate) mod entities;
pub mod migration;
mod reports;
mod waste;

pub use air::{ReadingRow, ReadingWindow};
pub use reports::{ReportAct, ReportFilter, ReportView};
pub use waste::{PickupFilter, ZoneView, schedule_from_row};

pub(crate) use air::load_fresh_readings;
pub(crate) use reports::{insert_demo_report, photos_of};
pub(crate) use waste::{split_codes, write_setup};

pub(crate) use entities::{
    calendar_change, centre, daily, pickup, reading, report, report_update, schedule, station,
    zone, zone_street,
};

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Statement,
};

/// Rows written per INSERT statement: well under SQLite's 32 766 and PostgreSQL's 65 535 bound
/// parameters for the widest table.
pub(crate) const BATCH_ROWS: usize = 1_000;

/// Access to the environment database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    salt: String,
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

    /// The salt of citizen hashes, for demo data recorded in the indicators.
    pub(crate) fn salt(&self) -> &str {
        &self.salt
    }
}

/// FNV-1a of `scope`: a lock key every replica derives alike, whatever its build.
fn lock_key(scope: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in scope.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Takes the transaction-scoped lock of `scope` (released at commit or rollback).
pub(crate) async fn lock(conn: &impl ConnectionTrait, scope: &str) -> Result<(), DbErr> {
    if patto_service_kit::db::is_postgres(conn) {
        conn.query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [lock_key(scope).into()],
        ))
        .await?;
    }
    Ok(())
}

/// Inserts `models` in batches of [`BATCH_ROWS`].
pub(crate) async fn insert_rows<A>(conn: &impl ConnectionTrait, models: Vec<A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
{
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        A::Entity::insert_many(models.by_ref().take(BATCH_ROWS).collect::<Vec<_>>())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// A list of numbers as stored: `,1,5,`.
pub(crate) fn number_list(values: impl IntoIterator<Item = i32>) -> String {
    let mut out = String::from(",");
    for v in values {
        out.push_str(&v.to_string());
        out.push(',');
    }
    out
}

/// The numbers of a stored list.
pub(crate) fn parse_number_list(stored: &str) -> Vec<i32> {
    stored
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The `LIKE` pattern finding `value` in a stored list.
pub(crate) fn list_member(value: i32) -> String {
    format!("%,{value},%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_lists() {
        assert_eq!(number_list([1, 5, 6001]), ",1,5,6001,");
        assert_eq!(number_list([]), ",");
        assert_eq!(parse_number_list(",1,5,6001,"), [1, 5, 6001]);
        assert_eq!(parse_number_list(""), Vec::<i32>::new());
        assert_eq!(list_member(5), "%,5,%");
    }

    #[test]
    fn lock_keys_are_stable() {
        assert_eq!(lock_key(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(lock_key("report:082053:1"), lock_key("report:082053:2"));
    }
}
