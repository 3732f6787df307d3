//! Training courses and enrolments in the database: seats and the waiting list under the course's
//! row lock.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use patto_proto::employment::v1 as pb;
use patto_service_kit::error::ServiceError;
use patto_service_kit::indicators;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::{CourseFilter, Store, codes_like, enrolment, row_error, seats, training_course};
use crate::domain::course::{self, NewCourse, NewEnrolment, Placement};
use crate::domain::{self, italian_day};

const ENROLLED: i32 = pb::EnrolmentStatus::Enrolled as i32;
const WAITLISTED: i32 = pb::EnrolmentStatus::Waitlisted as i32;

fn open_on(today: NaiveDate) -> Condition {
    Condition::all()
        .add(training_course::Column::Status.eq(pb::TrainingCourseStatus::Open as i32))
        .add(training_course::Column::EnrolmentDeadline.gte(today))
}

fn with_seats() -> Condition {
    Condition::all()
        .add(training_course::Column::Status.ne(pb::TrainingCourseStatus::Cancelled as i32))
        .add(
            Expr::col(training_course::Column::SeatsTaken)
                .lt(Expr::col(training_course::Column::Seats)),
        )
}

fn course_search_text(c: &NewCourse) -> String {
    domain::search_text(&[&c.title, &c.description, &c.qualification, &c.provider_name])
}

/// Sets every field a client may send; seats taken, the waiting list, status and times stay.
fn fill_course(m: &mut training_course::ActiveModel, c: NewCourse) {
    m.search_text = Set(course_search_text(&c));
    m.has_address = Set(c.address.is_some());
    let place = c.address.unwrap_or_default();
    m.street = Set(place.street);
    m.house_number = Set(place.house_number);
    m.postal_code = Set(place.postal_code);
    m.locality = Set(place.locality);
    m.profession_codes = Set(course::join_codes(&c.profession_codes));
    m.istat_code = Set(c.istat_code);
    m.external_ref = Set(c.external_ref);
    m.title = Set(c.title);
    m.description = Set(c.description);
    m.provider_name = Set(c.provider_name);
    m.provider_tax_code = Set(c.provider_tax_code);
    m.provider_accreditation = Set(c.provider_accreditation);
    m.eqf_level = Set(c.eqf_level);
    m.qualification = Set(c.qualification);
    m.hours = Set(c.hours);
    m.seats = Set(c.seats);
    m.waitlist_limit = Set(c.waitlist_limit);
    m.start_date = Set(c.start_date);
    m.end_date = Set(c.end_date);
    m.enrolment_deadline = Set(c.enrolment_deadline);
    m.cost_cents = Set(c.cost_cents);
    m.requirements = Set(c.requirements);
    m.delivery_mode = Set(c.delivery_mode as i32);
    m.funding_programme = Set(c.funding_programme);
}

/// Inserts a new open course with the given id (demo data uses stable ids, clients get UUIDs).
pub(crate) async fn insert_course(
    c: &impl ConnectionTrait,
    course: NewCourse,
    id: String,
    now: DateTime<Utc>,
) -> Result<training_course::Model, ServiceError> {
    let (istat, reference) = (course.istat_code.clone(), course.external_ref.clone());
    let mut m = training_course::ActiveModel {
        id: Set(id),
        seats_taken: Set(0),
        waitlist_length: Set(0),
        sequence: Set(0),
        status: Set(pb::TrainingCourseStatus::Open as i32),
        published_at: Set(now),
        closure_note: Set(String::new()),
        ..Default::default()
    };
    fill_course(&mut m, course);
    m.insert(c).await.map_err(|e| {
        if super::unique_violation(&e) {
            ServiceError::AlreadyExists(format!(
                "comune {istat} already has a training course with external_ref `{reference}`; import it to update that course"
            ))
        } else {
            e.into()
        }
    })
}

/// The course with this id, its row locked until the transaction ends (PostgreSQL; SQLite's single
/// writer serialises anyway). Every change to seats or the waiting list starts here.
async fn lock_course(
    c: &impl ConnectionTrait,
    id: &str,
) -> Result<training_course::Model, ServiceError> {
    training_course::Entity::find_by_id(id)
        .lock_exclusive()
        .one(c)
        .await?
        .ok_or_else(|| ServiceError::not_found("training course", id))
}

async fn find_enrolment(
    c: &impl ConnectionTrait,
    id: &str,
) -> Result<enrolment::Model, ServiceError> {
    enrolment::Entity::find_by_id(id)
        .one(c)
        .await?
        .ok_or_else(|| ServiceError::not_found("enrolment", id))
}

async fn find_course(
    c: &impl ConnectionTrait,
    id: &str,
) -> Result<training_course::Model, ServiceError> {
    training_course::Entity::find_by_id(id)
        .one(c)
        .await?
        .ok_or_else(|| ServiceError::not_found("training course", id))
}

/// Moves a locked course's counters by the given amounts. The lock already makes every
/// enrolment see the ones before it; updating relative to the stored values as well means the
/// CHECK on seats taken would refuse an overbooking even if a change ever ran without the lock.
async fn bump(
    c: &impl ConnectionTrait,
    course_id: &str,
    taken: i32,
    waitlist: i32,
    sequence: i64,
) -> Result<(), ServiceError> {
    training_course::Entity::update_many()
        .col_expr(
            training_course::Column::SeatsTaken,
            Expr::col(training_course::Column::SeatsTaken).add(taken),
        )
        .col_expr(
            training_course::Column::WaitlistLength,
            Expr::col(training_course::Column::WaitlistLength).add(waitlist),
        )
        .col_expr(
            training_course::Column::Sequence,
            Expr::col(training_course::Column::Sequence).add(sequence),
        )
        .filter(training_course::Column::Id.eq(course_id))
        .exec(c)
        .await?;
    Ok(())
}

/// Once a course has started, whoever is still waitlisted will get no seat: their enrolments
/// become EXPIRED. Reads show this from the start date alone; writes under the lock make it so.
async fn expire_if_started(
    c: &impl ConnectionTrait,
    course: training_course::Model,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<training_course::Model, ServiceError> {
    if !seats(&course).started(today) || course.waitlist_length == 0 {
        return Ok(course);
    }
    enrolment::Entity::update_many()
        .col_expr(
            enrolment::Column::Status,
            Expr::value(pb::EnrolmentStatus::Expired as i32),
        )
        .col_expr(enrolment::Column::WaitlistPosition, Expr::value(0))
        .col_expr(enrolment::Column::EndedAt, Expr::value(Some(now)))
        .filter(enrolment::Column::TrainingCourseId.eq(course.id.as_str()))
        .filter(enrolment::Column::Status.eq(WAITLISTED))
        .exec(c)
        .await?;
    bump(c, &course.id, 0, -course.waitlist_length, 0).await?;
    find_course(c, &course.id).await
}

/// Gives the free seats of a locked course to the head of its waiting list, in position order,
/// and moves everyone behind up; returns the course after it.
async fn promote(
    c: &impl ConnectionTrait,
    course: training_course::Model,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<training_course::Model, ServiceError> {
    let due = seats(&course).promotions_due(today);
    if due <= 0 {
        return Ok(course);
    }
    let heads = enrolment::Entity::find()
        .filter(enrolment::Column::TrainingCourseId.eq(course.id.as_str()))
        .filter(enrolment::Column::Status.eq(WAITLISTED))
        .order_by_asc(enrolment::Column::WaitlistPosition)
        .limit(due as u64)
        .all(c)
        .await?;
    let n = heads.len() as i32;
    let mut sequence = course.sequence;
    for head in heads {
        sequence += 1;
        enrolment::Entity::update_many()
            .col_expr(enrolment::Column::Status, Expr::value(ENROLLED))
            .col_expr(enrolment::Column::WaitlistPosition, Expr::value(0))
            .col_expr(enrolment::Column::EnrolledAt, Expr::value(Some(now)))
            .col_expr(enrolment::Column::Promoted, Expr::value(true))
            .col_expr(enrolment::Column::SeatSeq, Expr::value(sequence))
            .filter(enrolment::Column::Id.eq(head.id.as_str()))
            .exec(c)
            .await?;
    }
    enrolment::Entity::update_many()
        .col_expr(
            enrolment::Column::WaitlistPosition,
            Expr::col(enrolment::Column::WaitlistPosition).sub(n),
        )
        .filter(enrolment::Column::TrainingCourseId.eq(course.id.as_str()))
        .filter(enrolment::Column::Status.eq(WAITLISTED))
        .exec(c)
        .await?;
    bump(c, &course.id, n, -n, sequence - course.sequence).await?;
    find_course(c, &course.id).await
}

/// The stored-status condition for enrolments showing one of `statuses` in a course that has
/// (or has not) started: a started course's waitlisted enrolments show as EXPIRED.
fn shown_status_condition(statuses: &[pb::EnrolmentStatus], started: bool) -> Condition {
    use pb::EnrolmentStatus as S;
    let mut any = Condition::any();
    for s in statuses {
        any = match s {
            S::Waitlisted if started => any,
            S::Expired if started => {
                any.add(enrolment::Column::Status.is_in([S::Expired as i32, WAITLISTED]))
            }
            s => any.add(enrolment::Column::Status.eq(*s as i32)),
        };
    }
    any
}

/// The body of [`Store::enrol`] over a connection in a transaction, with the id given (demo data
/// enrols many in one transaction, with stable ids).
pub(crate) async fn enrol_in(
    conn: &impl ConnectionTrait,
    salt: &str,
    e: NewEnrolment,
    online: bool,
    now: DateTime<Utc>,
    id: String,
) -> Result<(enrolment::Model, training_course::Model), ServiceError> {
    let c = lock_course(conn, &e.training_course_id).await?;
    let live = enrolment::Entity::find()
        .filter(enrolment::Column::TrainingCourseId.eq(c.id.as_str()))
        .filter(enrolment::Column::FiscalCode.eq(e.fiscal_code.as_str()))
        .filter(enrolment::Column::Status.is_in([ENROLLED, WAITLISTED]))
        .count(conn)
        .await?;
    if live > 0 {
        return Err(ServiceError::AlreadyExists(format!(
            "this citizen is already enrolled or waitlisted in training course {}",
            c.id
        )));
    }
    let placement = course::place(&c.id, &seats(&c), italian_day(now))?;
    // The arrival instant is read under the lock, so arrival times follow the commit order
    // as positions do.
    let arrived = std::cmp::max(Utc::now(), now);
    let sequence = c.sequence + 1;
    let (status, position, seat, place) = match placement {
        Placement::Enrolled => (ENROLLED, 0, 1, 0),
        Placement::Waitlisted(p) => (WAITLISTED, p, 0, 1),
    };
    let enrolled = status == ENROLLED;
    let stored = enrolment::ActiveModel {
        id: Set(id),
        training_course_id: Set(c.id.clone()),
        istat_code: Set(c.istat_code.clone()),
        fiscal_code: Set(e.fiscal_code.clone()),
        status: Set(status),
        waitlist_position: Set(position),
        requirements_declared: Set(true),
        contact_email: Set(e.contact_email),
        contact_phone: Set(e.contact_phone),
        created_at: Set(arrived),
        enrolled_at: Set(enrolled.then_some(arrived)),
        promoted: Set(false),
        ended_at: Set(None),
        arrival_seq: Set(sequence),
        seat_seq: Set(if enrolled { sequence } else { 0 }),
    }
    .insert(conn)
    .await?;
    bump(conn, &c.id, seat, place, 1).await?;
    if online {
        indicators::record(
            conn,
            salt,
            &c.istat_code,
            &domain::COURSE_ENROLMENT,
            &e.fiscal_code,
            arrived,
        )
        .await?;
    }
    let after = find_course(conn, &c.id).await?;
    Ok((stored, after))
}

impl Store {
    /// A page of courses matching `f` on `today`, soonest start first, and the total.
    pub async fn list_courses(
        &self,
        f: &CourseFilter,
        page: Page,
        today: NaiveDate,
    ) -> Result<(Vec<training_course::Model>, u64), ServiceError> {
        let mut cond = Condition::all();
        if !f.istat_codes.is_empty() {
            cond =
                cond.add(training_course::Column::IstatCode.is_in(f.istat_codes.iter().cloned()));
        }
        for w in &f.words {
            cond = cond.add(training_course::Column::SearchText.like(format!("% {w}%")));
        }
        if let Some(l) = f.min_eqf_level {
            cond = cond.add(training_course::Column::EqfLevel.gte(l));
        }
        if let Some(l) = f.max_eqf_level {
            cond = cond.add(training_course::Column::EqfLevel.lte(l));
        }
        if let Some(m) = f.delivery_mode {
            cond = cond.add(training_course::Column::DeliveryMode.eq(m));
        }
        if f.free_only {
            cond = cond.add(training_course::Column::CostCents.eq(0));
        }
        if f.with_seats_only {
            cond = cond.add(with_seats());
        }
        if let Some(d) = f.starts_from {
            cond = cond.add(training_course::Column::StartDate.gte(d));
        }
        if let Some(d) = f.starts_until {
            cond = cond.add(training_course::Column::StartDate.lte(d));
        }
        if let Some(code) = &f.profession_code {
            let [exact, below] = codes_like(code);
            cond = cond.add(
                Condition::any()
                    .add(training_course::Column::ProfessionCodes.like(exact))
                    .add(training_course::Column::ProfessionCodes.like(below)),
            );
        }
        if !f.include_closed {
            cond = cond.add(open_on(today));
        }
        let q = training_course::Entity::find().filter(cond);
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(training_course::Column::StartDate)
            .order_by_asc(training_course::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The courses with these ids (unknown ids are left out).
    pub async fn courses_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<training_course::Model>, ServiceError> {
        Ok(training_course::Entity::find()
            .filter(training_course::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    /// The course with this id.
    pub async fn course(&self, id: &str) -> Result<Option<training_course::Model>, ServiceError> {
        Ok(training_course::Entity::find_by_id(id)
            .one(&self.db)
            .await?)
    }

    /// Up to `per_comune` courses open for enrolment in each comune, soonest start first.
    pub async fn open_courses_by_comune(
        &self,
        codes: &[String],
        per_comune: u64,
        with_seats_only: bool,
        today: NaiveDate,
    ) -> Result<BTreeMap<String, Vec<training_course::Model>>, ServiceError> {
        let mut out = BTreeMap::new();
        for code in codes {
            let mut cond = open_on(today).add(training_course::Column::IstatCode.eq(code.as_str()));
            if with_seats_only {
                cond = cond.add(with_seats());
            }
            let rows = training_course::Entity::find()
                .filter(cond)
                .order_by_asc(training_course::Column::StartDate)
                .order_by_asc(training_course::Column::Id)
                .limit(per_comune)
                .all(&self.db)
                .await?;
            if !rows.is_empty() {
                out.insert(code.clone(), rows);
            }
        }
        Ok(out)
    }

    /// Publishes a validated course.
    pub async fn publish_course(
        &self,
        c: NewCourse,
        now: DateTime<Utc>,
    ) -> Result<training_course::Model, ServiceError> {
        insert_course(&self.db, c, uuid::Uuid::new_v4().to_string(), now).await
    }

    /// Closes enrolment to an open course; seats and the waiting list stay as they are.
    pub async fn close_course(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<training_course::Model, ServiceError> {
        let txn = self.db.begin().await?;
        let c = lock_course(&txn, id).await?;
        match seats(&c).status_on(italian_day(now)) {
            pb::TrainingCourseStatus::Open => {}
            pb::TrainingCourseStatus::Cancelled => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "training course {id} is cancelled"
                )));
            }
            _ => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "enrolment to training course {id} is already closed"
                )));
            }
        }
        let mut m: training_course::ActiveModel = c.into();
        m.status = Set(pb::TrainingCourseStatus::Closed as i32);
        m.closure_note = Set(note.to_owned());
        let closed = m.update(&txn).await?;
        txn.commit().await?;
        Ok(closed)
    }

    /// Cancels a course that has not ended, with every enrolled or waitlisted enrolment; returns
    /// the course and how many enrolments fell with it.
    pub async fn cancel_course(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(training_course::Model, u64), ServiceError> {
        let today = italian_day(now);
        let txn = self.db.begin().await?;
        let c = lock_course(&txn, id).await?;
        if c.status == pb::TrainingCourseStatus::Cancelled as i32 {
            return Err(ServiceError::FailedPrecondition(format!(
                "training course {id} is already cancelled"
            )));
        }
        if today > c.end_date {
            return Err(ServiceError::FailedPrecondition(format!(
                "training course {id} ended on {}: it took place and cannot be cancelled",
                c.end_date
            )));
        }
        let c = expire_if_started(&txn, c, today, now).await?;
        let fallen = enrolment::Entity::update_many()
            .col_expr(
                enrolment::Column::Status,
                Expr::value(pb::EnrolmentStatus::Cancelled as i32),
            )
            .col_expr(enrolment::Column::WaitlistPosition, Expr::value(0))
            .col_expr(enrolment::Column::EndedAt, Expr::value(Some(now)))
            .filter(enrolment::Column::TrainingCourseId.eq(id))
            .filter(enrolment::Column::Status.is_in([ENROLLED, WAITLISTED]))
            .exec(&txn)
            .await?;
        bump(&txn, &c.id, -c.seats_taken, -c.waitlist_length, 0).await?;
        let mut m: training_course::ActiveModel = find_course(&txn, id).await?.into();
        m.status = Set(pb::TrainingCourseStatus::Cancelled as i32);
        m.closure_note = Set(reason.to_owned());
        let cancelled = m.update(&txn).await?;
        txn.commit().await?;
        Ok((cancelled, fallen.rows_affected))
    }

    /// Writes an import in one transaction: a row whose external reference the comune already
    /// used updates that course (seats never below those taken; new seats go to the waiting
    /// list at once), any other creates one. Either every row is written (the ids of the courses
    /// touched come back) or, when a row conflicts with the stored course, none is and the row
    /// errors come back.
    pub async fn import_courses(
        &self,
        rows: Vec<(i32, NewCourse)>,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<String>, Vec<pb::EmploymentImportError>>, ServiceError> {
        let today = italian_day(now);
        let txn = self.db.begin().await?;
        let mut touched = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        for (row, c) in rows {
            let existing = if c.external_ref.is_empty() {
                None
            } else {
                training_course::Entity::find()
                    .filter(training_course::Column::IstatCode.eq(c.istat_code.as_str()))
                    .filter(training_course::Column::ExternalRef.eq(c.external_ref.as_str()))
                    .lock_exclusive()
                    .one(&txn)
                    .await?
            };
            let Some(stored) = existing else {
                let created = insert_course(&txn, c, uuid::Uuid::new_v4().to_string(), now).await?;
                touched.push(created.id);
                continue;
            };
            if stored.status == pb::TrainingCourseStatus::Cancelled as i32 {
                errors.push(row_error(
                    row,
                    "training_course.external_ref",
                    format!(
                        "the course {} is cancelled and cannot be updated",
                        stored.id
                    ),
                ));
                continue;
            }
            if c.seats < stored.seats_taken {
                errors.push(row_error(
                    row,
                    "training_course.seats",
                    format!(
                        "{} seats are already taken: seats cannot drop below that",
                        stored.seats_taken
                    ),
                ));
                continue;
            }
            if c.waitlist_limit > 0 && c.waitlist_limit < stored.waitlist_length {
                errors.push(row_error(
                    row,
                    "training_course.waitlist_limit",
                    format!(
                        "{} enrolments are waiting: the limit cannot drop below that (0 means none)",
                        stored.waitlist_length
                    ),
                ));
                continue;
            }
            if !errors.is_empty() {
                // Nothing will be written: spare the updates, keep looking for row errors.
                continue;
            }
            let id = stored.id.clone();
            let mut m: training_course::ActiveModel = stored.into();
            fill_course(&mut m, c);
            let updated = m.update(&txn).await?;
            promote(&txn, updated, today, now).await?;
            touched.push(id);
        }
        if !errors.is_empty() {
            // Dropping the transaction rolls back the rows already written.
            return Ok(Err(errors));
        }
        txn.commit().await?;
        Ok(Ok(touched))
    }

    /// A page of a course's enrolments showing one of `statuses` (all when empty): enrolled in
    /// seat order, then the waiting list by position, then the others by arrival.
    pub async fn list_enrolments(
        &self,
        course: &training_course::Model,
        statuses: &[pb::EnrolmentStatus],
        page: Page,
        today: NaiveDate,
    ) -> Result<(Vec<enrolment::Model>, u64), ServiceError> {
        let mut q = enrolment::Entity::find()
            .filter(enrolment::Column::TrainingCourseId.eq(course.id.as_str()));
        if !statuses.is_empty() {
            q = q.filter(shown_status_condition(
                statuses,
                seats(course).started(today),
            ));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by(
                Expr::cust("CASE status WHEN 1 THEN 0 WHEN 2 THEN 1 ELSE 2 END"),
                Order::Asc,
            )
            .order_by(
                Expr::cust(
                    "CASE status WHEN 1 THEN seat_seq WHEN 2 THEN waitlist_position ELSE arrival_seq END",
                ),
                Order::Asc,
            )
            .order_by_asc(enrolment::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The enrolments with these ids (unknown ids are left out).
    pub async fn enrolments_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<enrolment::Model>, ServiceError> {
        Ok(enrolment::Entity::find()
            .filter(enrolment::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    /// The enrolment with this id.
    pub async fn enrolment(&self, id: &str) -> Result<Option<enrolment::Model>, ServiceError> {
        Ok(enrolment::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Enrolments of these citizens (canonical fiscal codes), newest first.
    pub async fn enrolments_by_citizen(
        &self,
        fiscal_codes: &[String],
    ) -> Result<Vec<enrolment::Model>, ServiceError> {
        Ok(enrolment::Entity::find()
            .filter(enrolment::Column::FiscalCode.is_in(fiscal_codes.iter().cloned()))
            .order_by_desc(enrolment::Column::CreatedAt)
            .order_by_desc(enrolment::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Enrols a citizen: under the course's row lock, refuses a second live enrolment, takes a
    /// seat while one is left or the next waiting-list position otherwise, and records the online
    /// interaction, in one transaction. Returns the enrolment and the course after it.
    pub async fn enrol(
        &self,
        e: NewEnrolment,
        online: bool,
        now: DateTime<Utc>,
    ) -> Result<(enrolment::Model, training_course::Model), ServiceError> {
        let txn = self.db.begin().await?;
        let id = uuid::Uuid::new_v4().to_string();
        let out = enrol_in(&txn, &self.salt, e, online, now, id).await?;
        txn.commit().await?;
        Ok(out)
    }

    /// Withdraws an enrolled or waitlisted enrolment under the course's row lock. A freed seat
    /// goes to the head of the waiting list; a freed place moves everyone behind it up. Returns
    /// the enrolment and the course after it.
    pub async fn withdraw_enrolment(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(enrolment::Model, training_course::Model), ServiceError> {
        let today = italian_day(now);
        let txn = self.db.begin().await?;
        let first = find_enrolment(&txn, id).await?;
        let c = lock_course(&txn, &first.training_course_id).await?;
        let c = expire_if_started(&txn, c, today, now).await?;
        // Read again under the lock: a promotion or a concurrent withdrawal may have come first.
        let e = find_enrolment(&txn, id).await?;
        let shown = course::enrolment_status(e.status, seats(&c).started(today));
        if let Some(refusal) = course::withdrawal_refusal(id, shown) {
            return Err(refusal);
        }
        let position = e.waitlist_position;
        let mut m: enrolment::ActiveModel = e.into();
        m.status = Set(pb::EnrolmentStatus::Withdrawn as i32);
        m.waitlist_position = Set(0);
        m.ended_at = Set(Some(now));
        let withdrawn = m.update(&txn).await?;
        if shown == pb::EnrolmentStatus::Enrolled {
            bump(&txn, &c.id, -1, 0, 0).await?;
            let freed = find_course(&txn, &c.id).await?;
            promote(&txn, freed, today, now).await?;
        } else {
            enrolment::Entity::update_many()
                .col_expr(
                    enrolment::Column::WaitlistPosition,
                    Expr::col(enrolment::Column::WaitlistPosition).sub(1),
                )
                .filter(enrolment::Column::TrainingCourseId.eq(c.id.as_str()))
                .filter(enrolment::Column::Status.eq(WAITLISTED))
                .filter(enrolment::Column::WaitlistPosition.gt(position))
                .exec(&txn)
                .await?;
            bump(&txn, &c.id, 0, -1, 0).await?;
        }
        let after = find_course(&txn, &c.id).await?;
        txn.commit().await?;
        Ok((withdrawn, after))
    }
}
