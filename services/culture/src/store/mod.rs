//! The culture database: reads, and writes that each run in one transaction.
//!
//! Overbooking is impossible by construction: a booking takes its seats with one conditional
//! `UPDATE … SET seats_booked = seats_booked + n WHERE seats_booked + n <= capacity`, which the
//! database applies atomically (row lock on PostgreSQL, the single writer on SQLite), and a CHECK
//! constraint refuses any row with more seats booked than offered.

pub(crate) mod entities;
pub mod migration;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use patto_proto::culture::v1 as pb;
use patto_service_kit::error::ServiceError;
use patto_service_kit::indicators;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};

use crate::domain::{self, Availability, BookingRequest, NewEvent, VenueFacts};
pub(crate) use entities::{booking, event, venue};

/// Filters of an event listing.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this comune.
    pub istat_code: Option<String>,
    /// Only this venue.
    pub venue_id: Option<String>,
    /// Only this category.
    pub category: Option<i32>,
    /// Starting at or after.
    pub starts_after: DateTime<Utc>,
    /// Starting before.
    pub starts_before: Option<DateTime<Utc>>,
}

/// A booking with the comune of its event: the comune that holds this personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldBooking {
    /// The booking.
    pub booking: booking::Model,
    /// ISTAT code of the event's comune.
    pub istat_code: String,
}

/// Access to the culture database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    salt: String,
}

fn bookable_statuses() -> [i32; 2] {
    domain::BOOKABLE.map(|s| s as i32)
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

    /// What is known of the venues with these ids.
    pub async fn venue_facts(&self, ids: &[String]) -> Result<HashMap<String, VenueFacts>, DbErr> {
        Ok(venue::Entity::find()
            .filter(venue::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|v| {
                (
                    v.id,
                    VenueFacts {
                        istat_code: v.istat_code,
                        capacity: v.capacity,
                    },
                )
            })
            .collect())
    }

    /// A page of a comune's venues, by name, and the total.
    pub async fn list_venues(
        &self,
        istat_code: &str,
        kind: Option<i32>,
        page: Page,
    ) -> Result<(Vec<venue::Model>, u64), DbErr> {
        let mut q = venue::Entity::find().filter(venue::Column::IstatCode.eq(istat_code));
        if let Some(kind) = kind {
            q = q.filter(venue::Column::Kind.eq(kind));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(venue::Column::Name)
            .order_by_asc(venue::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The venues with these ids (unknown ids are left out).
    pub async fn venues_by_id(&self, ids: &[String]) -> Result<Vec<venue::Model>, DbErr> {
        venue::Entity::find()
            .filter(venue::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await
    }

    /// A page of events matching `f`, soonest first, and the total.
    pub async fn list_events(
        &self,
        f: &EventFilter,
        page: Page,
    ) -> Result<(Vec<event::Model>, u64), DbErr> {
        let mut cond = Condition::all().add(event::Column::StartTime.gte(f.starts_after));
        if let Some(code) = &f.istat_code {
            cond = cond.add(event::Column::IstatCode.eq(code.as_str()));
        }
        if let Some(venue_id) = &f.venue_id {
            cond = cond.add(event::Column::VenueId.eq(venue_id.as_str()));
        }
        if let Some(category) = f.category {
            cond = cond.add(event::Column::Category.eq(category));
        }
        if let Some(before) = f.starts_before {
            cond = cond.add(event::Column::StartTime.lt(before));
        }
        let q = event::Entity::find().filter(cond);
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(event::Column::StartTime)
            .order_by_asc(event::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The events with these ids (unknown ids are left out).
    pub async fn events_by_id(&self, ids: &[String]) -> Result<Vec<event::Model>, DbErr> {
        event::Entity::find()
            .filter(event::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await
    }

    /// Up to `per_comune` upcoming events of each comune, soonest first, in one query.
    pub async fn upcoming_by_comune(
        &self,
        codes: &[String],
        per_comune: usize,
        category: Option<i32>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Vec<event::Model>>, DbErr> {
        let mut q = event::Entity::find()
            .filter(event::Column::IstatCode.is_in(codes.iter().cloned()))
            .filter(event::Column::StartTime.gte(now))
            .filter(event::Column::Status.ne(pb::EventStatus::Cancelled as i32));
        if let Some(category) = category {
            q = q.filter(event::Column::Category.eq(category));
        }
        let rows = q
            .order_by_asc(event::Column::IstatCode)
            .order_by_asc(event::Column::StartTime)
            .order_by_asc(event::Column::Id)
            .all(&self.db)
            .await?;
        let mut out: BTreeMap<String, Vec<event::Model>> = BTreeMap::new();
        for e in rows {
            let list = out.entry(e.istat_code.clone()).or_default();
            if list.len() < per_comune {
                list.push(e);
            }
        }
        Ok(out)
    }

    /// Bookings of these citizens (canonical fiscal codes), newest first, each with the comune of
    /// its event (the comune that holds it).
    pub async fn bookings_by_citizen(
        &self,
        fiscal_codes: &[String],
    ) -> Result<Vec<HeldBooking>, DbErr> {
        let bookings = booking::Entity::find()
            .filter(booking::Column::FiscalCode.is_in(fiscal_codes.iter().cloned()))
            .order_by_desc(booking::Column::CreatedAt)
            .order_by_asc(booking::Column::Id)
            .all(&self.db)
            .await?;
        self.held(bookings).await
    }

    /// The booking with this id, with the comune of its event.
    pub async fn booking(&self, id: &str) -> Result<Option<HeldBooking>, DbErr> {
        let Some(b) = booking::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(self.held(vec![b]).await?.pop())
    }

    async fn held(&self, bookings: Vec<booking::Model>) -> Result<Vec<HeldBooking>, DbErr> {
        if bookings.is_empty() {
            return Ok(Vec::new());
        }
        let event_ids: Vec<String> = bookings
            .iter()
            .map(|b| b.event_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let comuni: HashMap<String, String> = event::Entity::find()
            .filter(event::Column::Id.is_in(event_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|e| (e.id, e.istat_code))
            .collect();
        Ok(bookings
            .into_iter()
            .map(|booking| HeldBooking {
                istat_code: comuni.get(&booking.event_id).cloned().unwrap_or_default(),
                booking,
            })
            .collect())
    }

    /// Stores validated events in one transaction: all or none.
    pub async fn create_events(
        &self,
        events: Vec<NewEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<event::Model>, DbErr> {
        let txn = self.db.begin().await?;
        let mut stored = Vec::with_capacity(events.len());
        for e in events {
            stored.push(insert_event(&txn, e, uuid::Uuid::new_v4().to_string(), now).await?);
        }
        txn.commit().await?;
        Ok(stored)
    }

    /// Cancels an event and its confirmed bookings; returns the event and how many bookings fell.
    pub async fn cancel_event(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(event::Model, u64), ServiceError> {
        let txn = self.db.begin().await?;
        let cancelled = pb::EventStatus::Cancelled as i32;
        let updated = event::Entity::update_many()
            .col_expr(event::Column::Status, Expr::value(cancelled))
            .col_expr(event::Column::SeatsBooked, Expr::value(0))
            .col_expr(event::Column::CancelReason, Expr::value(reason))
            .filter(event::Column::Id.eq(id))
            .filter(event::Column::Status.ne(cancelled))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Err(match event::Entity::find_by_id(id).one(&txn).await? {
                None => ServiceError::not_found("event", id),
                Some(_) => {
                    ServiceError::FailedPrecondition(format!("event {id} is already cancelled"))
                }
            });
        }
        let bookings = booking::Entity::update_many()
            .col_expr(
                booking::Column::Status,
                Expr::value(pb::BookingStatus::Cancelled as i32),
            )
            .col_expr(booking::Column::CancelledAt, Expr::value(Some(now)))
            .filter(booking::Column::EventId.eq(id))
            .filter(booking::Column::Status.eq(pb::BookingStatus::Confirmed as i32))
            .exec(&txn)
            .await?;
        let event = find_event(&txn, id).await?;
        txn.commit().await?;
        Ok((event, bookings.rows_affected))
    }

    /// Books seats: takes them atomically, stores the booking and records the online interaction,
    /// all in one transaction. Returns the booking and the event after it.
    pub async fn book(
        &self,
        req: &BookingRequest,
        now: DateTime<Utc>,
    ) -> Result<(booking::Model, event::Model), ServiceError> {
        let txn = self.db.begin().await?;
        let taken = event::Entity::update_many()
            .col_expr(
                event::Column::SeatsBooked,
                Expr::col(event::Column::SeatsBooked).add(req.seats),
            )
            .filter(event::Column::Id.eq(req.event_id.as_str()))
            .filter(event::Column::Status.is_in(bookable_statuses()))
            .filter(event::Column::StartTime.gt(now))
            .filter(
                Expr::col(event::Column::SeatsBooked)
                    .add(req.seats)
                    .lte(Expr::col(event::Column::Capacity)),
            )
            .exec(&txn)
            .await?;
        if taken.rows_affected == 0 {
            // Nothing was written; explain from the current state.
            return Err(
                match event::Entity::find_by_id(req.event_id.as_str())
                    .one(&txn)
                    .await?
                {
                    None => ServiceError::not_found("event", &req.event_id),
                    Some(e) => domain::booking_refusal(&e.id, &availability(&e), req.seats, now)
                        .unwrap_or_else(|| {
                            ServiceError::FailedPrecondition(format!(
                                "event {} changed while booking; retry",
                                e.id
                            ))
                        }),
                },
            );
        }
        let id = uuid::Uuid::new_v4();
        let inserted = booking::ActiveModel {
            id: Set(id.to_string()),
            event_id: Set(req.event_id.clone()),
            fiscal_code: Set(req.fiscal_code.clone()),
            seats: Set(req.seats),
            status: Set(pb::BookingStatus::Confirmed as i32),
            code: Set(domain::booking_code(&id)),
            created_at: Set(now),
            cancelled_at: Set(None),
        }
        .insert(&txn)
        .await;
        let booking = match inserted {
            Ok(b) => b,
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(ServiceError::AlreadyExists(format!(
                    "this citizen already holds a confirmed booking for event {}; cancel it to book again",
                    req.event_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let event = find_event(&txn, &req.event_id).await?;
        indicators::record(
            &txn,
            &self.salt,
            &event.istat_code,
            &domain::EVENT_BOOKING,
            &req.fiscal_code,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok((booking, event))
    }

    /// Cancels a confirmed booking and gives its seats back, in one transaction.
    pub async fn cancel_booking(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(booking::Model, event::Model), ServiceError> {
        let txn = self.db.begin().await?;
        let Some(booking) = booking::Entity::find_by_id(id).one(&txn).await? else {
            return Err(ServiceError::not_found("booking", id));
        };
        let event = find_event(&txn, &booking.event_id).await?;
        if booking.status != pb::BookingStatus::Confirmed as i32 {
            return Err(ServiceError::FailedPrecondition(format!(
                "booking {id} is already cancelled"
            )));
        }
        if event.start_time <= now {
            return Err(ServiceError::FailedPrecondition(format!(
                "booking {id} cannot be cancelled: event {} has already started",
                event.id
            )));
        }
        let updated = booking::Entity::update_many()
            .col_expr(
                booking::Column::Status,
                Expr::value(pb::BookingStatus::Cancelled as i32),
            )
            .col_expr(booking::Column::CancelledAt, Expr::value(Some(now)))
            .filter(booking::Column::Id.eq(id))
            .filter(booking::Column::Status.eq(pb::BookingStatus::Confirmed as i32))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Err(ServiceError::FailedPrecondition(format!(
                "booking {id} is already cancelled"
            )));
        }
        event::Entity::update_many()
            .col_expr(
                event::Column::SeatsBooked,
                Expr::col(event::Column::SeatsBooked).sub(booking.seats),
            )
            .filter(event::Column::Id.eq(event.id.as_str()))
            .filter(event::Column::SeatsBooked.gte(booking.seats))
            .exec(&txn)
            .await?;
        let booking = booking::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("booking", id))?;
        let event = find_event(&txn, &event.id).await?;
        txn.commit().await?;
        Ok((booking, event))
    }

    /// The event with this id.
    pub async fn event(&self, id: &str) -> Result<Option<event::Model>, DbErr> {
        event::Entity::find_by_id(id).one(&self.db).await
    }
}

async fn find_event(
    conn: &impl sea_orm::ConnectionTrait,
    id: &str,
) -> Result<event::Model, ServiceError> {
    event::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| ServiceError::not_found("event", id))
}

/// Inserts one event with the given id (demo data uses stable ids, clients get UUIDs).
pub(crate) async fn insert_event(
    conn: &impl sea_orm::ConnectionTrait,
    e: NewEvent,
    id: String,
    now: DateTime<Utc>,
) -> Result<event::Model, DbErr> {
    event::ActiveModel {
        id: Set(id),
        istat_code: Set(e.istat_code),
        venue_id: Set(e.venue_id),
        name: Set(e.name),
        description: Set(e.description),
        category: Set(e.category as i32),
        start_time: Set(e.start_time),
        end_time: Set(e.end_time),
        organizer: Set(e.organizer),
        status: Set(pb::EventStatus::Scheduled as i32),
        attendance_mode: Set(e.attendance_mode as i32),
        price_cents: Set(e.price_cents),
        capacity: Set(e.capacity),
        seats_booked: Set(0),
        audience: Set(e.audience),
        url: Set(e.url),
        cancel_reason: Set(String::new()),
        created_at: Set(now),
    }
    .insert(conn)
    .await
}

/// The seat-relevant state of a stored event.
pub fn availability(e: &event::Model) -> Availability {
    Availability {
        status: pb::EventStatus::try_from(e.status).unwrap_or(pb::EventStatus::Unspecified),
        start_time: e.start_time,
        capacity: e.capacity,
        seats_booked: e.seats_booked,
    }
}
