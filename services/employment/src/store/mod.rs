//! The employment database: reads, and writes that each run in one transaction.
//!
//! Seat limits and the waiting list hold under concurrency by construction: every write that
//! touches a course's seats first takes the course's row lock (`SELECT … FOR UPDATE` on
//! PostgreSQL; SQLite has one writer, and the kit gives it one connection). Enrolments in one
//! course therefore run one after another, in the order the database grants the lock, which is the
//! order they commit: each sees every earlier one, takes a seat while one is left and otherwise the
//! next waiting-list position. A freed seat goes to position 1 and everyone behind moves up, in the
//! same transaction. CHECK constraints and partial unique indexes refuse what the code must never
//! write (more seats taken than offered, two live enrolments of one citizen in one course).
//!
//! Job offers work the same way for applications: the offer's row lock orders them and keeps the
//! count of applications exact. A citizen's online enrolment, and the outcome of an online job
//! application, record the completed interaction for the programme indicators in the same
//! transaction.

mod courses;
pub(crate) mod entities;
pub mod migration;
mod offers;

use chrono::NaiveDate;
use patto_proto::employment::v1 as pb;
use sea_orm::{DatabaseConnection, DbErr, SqlErr};

use crate::domain::course::Seats;
pub(crate) use courses::{enrol_in, insert_course};
pub(crate) use entities::{enrolment, job_application, job_offer, training_course};
pub(crate) use offers::{apply_in, insert_offer, review_in};

/// Filters of a job-offer search.
#[derive(Debug, Clone, Default)]
pub struct OfferFilter {
    /// Only these comuni; empty means all.
    pub istat_codes: Vec<String>,
    /// Folded words that must all occur.
    pub words: Vec<String>,
    /// CP2021 code at any level.
    pub profession_code: Option<String>,
    /// ATECO 2025 prefix.
    pub ateco_prefix: Option<String>,
    /// Only these contract types; empty means all.
    pub contract_types: Vec<i32>,
    /// At least these weekly hours.
    pub min_weekly_hours: Option<i32>,
    /// At most these weekly hours.
    pub max_weekly_hours: Option<i32>,
    /// Deadline on or after this day.
    pub deadline_from: Option<NaiveDate>,
    /// Closed and expired offers too.
    pub include_closed: bool,
}

/// Filters of a training-course search.
#[derive(Debug, Clone, Default)]
pub struct CourseFilter {
    /// Only these comuni; empty means all.
    pub istat_codes: Vec<String>,
    /// Folded words that must all occur.
    pub words: Vec<String>,
    /// At least this EQF level.
    pub min_eqf_level: Option<i32>,
    /// At most this EQF level.
    pub max_eqf_level: Option<i32>,
    /// Only this delivery mode.
    pub delivery_mode: Option<i32>,
    /// Only free courses.
    pub free_only: bool,
    /// Only courses with a seat left.
    pub with_seats_only: bool,
    /// Starting on or after.
    pub starts_from: Option<NaiveDate>,
    /// Starting on or before.
    pub starts_until: Option<NaiveDate>,
    /// CP2021 code at any level.
    pub profession_code: Option<String>,
    /// Closed and cancelled courses too.
    pub include_closed: bool,
}

/// Filters of a listing of job applications.
#[derive(Debug, Clone, Default)]
pub struct ApplicationFilter {
    /// Only applications to this offer.
    pub job_offer_id: Option<String>,
    /// The comune whose offers' applications are listed.
    pub istat_code: String,
    /// Only these statuses; empty means all.
    pub statuses: Vec<i32>,
}

/// Access to the employment database.
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

    /// The salt of citizen hashes in the indicators.
    pub(crate) fn salt(&self) -> &str {
        &self.salt
    }
}

/// The seat state of a stored course.
pub fn seats(c: &training_course::Model) -> Seats {
    Seats {
        status: pb::TrainingCourseStatus::try_from(c.status)
            .unwrap_or(pb::TrainingCourseStatus::Unspecified),
        seats: c.seats,
        taken: c.seats_taken,
        waitlist: c.waitlist_length,
        waitlist_limit: c.waitlist_limit,
        start_date: c.start_date,
        enrolment_deadline: c.enrolment_deadline,
    }
}

fn unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// A row error of an import.
pub(crate) fn row_error(
    row: i32,
    field: &str,
    description: impl Into<String>,
) -> pb::EmploymentImportError {
    pb::EmploymentImportError {
        row,
        field: field.to_owned(),
        description: description.into(),
    }
}

/// `LIKE` patterns matching a CP2021 code and everything below it, in a `|a|b|` list.
fn codes_like(prefix: &str) -> [String; 2] {
    [format!("%|{prefix}|%"), format!("%|{prefix}.%")]
}
