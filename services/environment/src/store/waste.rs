//! Waste collection in the database: a comune's setup replaced in one transaction, the calendar
//! reads behind "what is collected here on this date", calendar changes, collection centres, and
//! bulky-waste pickups booked against the per-day capacity in one transaction.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::{WasteFraction as Fraction, WasteUserType as UserType};
use patto_service_kit::comuni;
use patto_service_kit::error::ServiceError;
use patto_service_kit::indicators;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::{
    Store, calendar_change, centre, insert_rows, list_member, lock, number_list, parse_number_list,
    pickup, schedule, zone, zone_street,
};
use crate::domain::waste::{
    self as rules, BookingRequest, Change, NewChange, Schedule, Setup, Stretch, ZoneStreets,
};
use crate::domain::{BULKY_WASTE_PICKUP, parse_hhmm};

/// A zone with its streets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneView {
    /// The zone.
    pub zone: zone::Model,
    /// Its stretches, in the order given.
    pub streets: Vec<zone_street::Model>,
}

/// Filters of a pickup listing.
#[derive(Debug, Clone, Default)]
pub struct PickupFilter {
    /// The comune.
    pub istat_code: String,
    /// Only this day.
    pub pickup_date: Option<NaiveDate>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<i32>,
}

fn day_text(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn parse_day_text(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The domain form of a stored schedule.
pub fn schedule_from_row(m: &schedule::Model) -> Schedule {
    Schedule {
        id: m.id.clone(),
        zone_id: m.zone_id.clone(),
        user_type: UserType::try_from(m.user_type).unwrap_or_default(),
        fraction: Fraction::try_from(m.fraction).unwrap_or_default(),
        eer_codes: split_codes(&m.eer_codes),
        weekdays: parse_number_list(&m.weekdays)
            .into_iter()
            .filter_map(|d| u32::try_from(d).ok())
            .collect(),
        every_weeks: u32::try_from(m.every_weeks).unwrap_or(1).max(1),
        anchor_date: parse_day_text(&m.anchor_date),
        set_out_from: parse_hhmm(&m.set_out_from).unwrap_or_default(),
        set_out_until: parse_hhmm(&m.set_out_until).unwrap_or_default(),
        set_out_evening_before: m.set_out_evening_before,
        container: m.container.clone(),
        valid_from: parse_day_text(&m.valid_from),
        valid_to: parse_day_text(&m.valid_to),
        notes: m.notes.clone(),
    }
}

fn schedule_row(istat_code: &str, s: &Schedule) -> schedule::ActiveModel {
    schedule::ActiveModel {
        id: Set(s.id.clone()),
        istat_code: Set(istat_code.to_owned()),
        zone_id: Set(s.zone_id.clone()),
        user_type: Set(s.user_type as i32),
        fraction: Set(s.fraction as i32),
        eer_codes: Set(s.eer_codes.join(",")),
        weekdays: Set(number_list(s.weekdays.iter().map(|d| *d as i32))),
        every_weeks: Set(s.every_weeks as i32),
        anchor_date: Set(day_text(s.anchor_date)),
        set_out_from: Set(s.set_out_from.format("%H:%M").to_string()),
        set_out_until: Set(s.set_out_until.format("%H:%M").to_string()),
        set_out_evening_before: Set(s.set_out_evening_before),
        container: Set(s.container.clone()),
        valid_from: Set(day_text(s.valid_from)),
        valid_to: Set(day_text(s.valid_to)),
        notes: Set(s.notes.clone()),
    }
}

/// EER codes as stored: comma-separated (the codes hold spaces, never commas).
pub(crate) fn split_codes(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The domain form of a stored change.
pub(crate) fn change_from_row(m: &calendar_change::Model) -> Change {
    Change {
        id: m.id.clone(),
        date: parse_day_text(&m.date).unwrap_or_default(),
        zone_id: Some(m.zone_id.clone()).filter(|z| !z.is_empty()),
        user_type: UserType::try_from(m.user_type)
            .ok()
            .filter(|u| *u != UserType::Unspecified),
        fraction: Fraction::try_from(m.fraction)
            .ok()
            .filter(|f| *f != Fraction::Unspecified),
        moved_to: parse_day_text(&m.moved_to_date),
        reason: m.reason.clone(),
        created_at: m.created_at,
    }
}

fn change_row(istat_code: &str, c: &Change) -> calendar_change::ActiveModel {
    calendar_change::ActiveModel {
        id: Set(c.id.clone()),
        istat_code: Set(istat_code.to_owned()),
        date: Set(c.date.to_string()),
        zone_id: Set(c.zone_id.clone().unwrap_or_default()),
        user_type: Set(c.user_type.map_or(0, |u| u as i32)),
        fraction: Set(c.fraction.map_or(0, |f| f as i32)),
        moved_to_date: Set(day_text(c.moved_to)),
        reason: Set(c.reason.clone()),
        created_at: Set(c.created_at),
    }
}

/// Writes a comune's setup, replacing whatever it had; `now` stamps the changes.
pub(crate) async fn write_setup(
    conn: &impl ConnectionTrait,
    setup: &Setup,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let code = setup.istat_code.as_str();
    // Children first: the schedules and streets point at the zones.
    zone_street::Entity::delete_many()
        .filter(zone_street::Column::IstatCode.eq(code))
        .exec(conn)
        .await?;
    schedule::Entity::delete_many()
        .filter(schedule::Column::IstatCode.eq(code))
        .exec(conn)
        .await?;
    zone::Entity::delete_many()
        .filter(zone::Column::IstatCode.eq(code))
        .exec(conn)
        .await?;
    centre::Entity::delete_many()
        .filter(centre::Column::IstatCode.eq(code))
        .exec(conn)
        .await?;
    calendar_change::Entity::delete_many()
        .filter(calendar_change::Column::IstatCode.eq(code))
        .exec(conn)
        .await?;

    insert_rows(
        conn,
        setup
            .zones
            .iter()
            .map(|z| zone::ActiveModel {
                id: Set(z.id.clone()),
                istat_code: Set(code.to_owned()),
                name: Set(z.name.clone()),
                description: Set(z.description.clone()),
            })
            .collect(),
    )
    .await?;
    insert_rows(
        conn,
        setup
            .zones
            .iter()
            .flat_map(|z| {
                z.streets
                    .iter()
                    .enumerate()
                    .map(move |(i, s)| zone_street::ActiveModel {
                        zone_id: Set(z.id.clone()),
                        istat_code: Set(code.to_owned()),
                        position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
                        street: Set(s.street.clone()),
                        street_key: Set(rules::street_key(&s.street)),
                        from_number: Set(s.from_number),
                        to_number: Set(s.to_number),
                        side: Set(s.side as i32),
                        ..Default::default()
                    })
            })
            .collect(),
    )
    .await?;
    insert_rows(
        conn,
        setup
            .schedules
            .iter()
            .map(|s| schedule_row(code, s))
            .collect(),
    )
    .await?;
    insert_rows(
        conn,
        setup
            .centres
            .iter()
            .map(|c| {
                let a = c.address.clone().unwrap_or_default();
                centre::ActiveModel {
                    id: Set(c.id.clone()),
                    istat_code: Set(code.to_owned()),
                    name: Set(c.name.clone()),
                    street: Set(a.street),
                    house_number: Set(a.house_number),
                    postal_code: Set(a.postal_code),
                    locality: Set(a.locality),
                    latitude: Set(c.point.map(|p| p.lat)),
                    longitude: Set(c.point.map(|p| p.lon)),
                    opening_hours: Set(c.opening_hours.clone()),
                    fractions: Set(number_list(c.fractions.iter().map(|f| *f as i32))),
                    eer_codes: Set(c.eer_codes.join(",")),
                    user_types: Set(number_list(c.user_types.iter().map(|u| *u as i32))),
                    notes: Set(c.notes.clone()),
                }
            })
            .collect(),
    )
    .await?;
    insert_rows(
        conn,
        setup
            .changes
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if c.id.is_empty() {
                    c.id = uuid::Uuid::new_v4().to_string();
                }
                c.created_at = now;
                change_row(code, &c)
            })
            .collect(),
    )
    .await
}

impl Store {
    /// Replaces a comune's whole waste-collection setup in one transaction.
    pub async fn replace_setup(&self, setup: &Setup, now: DateTime<Utc>) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        write_setup(&txn, setup, now).await?;
        txn.commit().await
    }

    /// A page of a comune's zones, by name, and the total.
    pub async fn list_zones(
        &self,
        istat_code: &str,
        page: Page,
    ) -> Result<(Vec<ZoneView>, u64), DbErr> {
        let q = zone::Entity::find().filter(zone::Column::IstatCode.eq(istat_code));
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(zone::Column::Name)
            .order_by_asc(zone::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((self.zone_views(rows).await?, total))
    }

    /// The zones with these ids (unknown ids are left out).
    pub async fn zones_by_id(&self, ids: &[String]) -> Result<Vec<ZoneView>, DbErr> {
        let rows = zone::Entity::find()
            .filter(zone::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(zone::Column::Id)
            .all(&self.db)
            .await?;
        self.zone_views(rows).await
    }

    async fn zone_views(&self, rows: Vec<zone::Model>) -> Result<Vec<ZoneView>, DbErr> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let streets = zone_street::Entity::find()
            .filter(zone_street::Column::ZoneId.is_in(rows.iter().map(|z| z.id.clone())))
            .order_by_asc(zone_street::Column::ZoneId)
            .order_by_asc(zone_street::Column::Position)
            .all(&self.db)
            .await?;
        let mut by_zone: BTreeMap<String, Vec<zone_street::Model>> = BTreeMap::new();
        for s in streets {
            by_zone.entry(s.zone_id.clone()).or_default().push(s);
        }
        Ok(rows
            .into_iter()
            .map(|z| ZoneView {
                streets: by_zone.remove(&z.id).unwrap_or_default(),
                zone: z,
            })
            .collect())
    }

    /// What address resolution needs of a comune's zones: the zones listing `street` (by key), and
    /// the zones listing no street at all (zona unica).
    pub async fn zones_for_street(
        &self,
        istat_code: &str,
        street: &str,
    ) -> Result<Vec<ZoneStreets>, DbErr> {
        let key = rules::street_key(street);
        let stretches = zone_street::Entity::find()
            .filter(zone_street::Column::IstatCode.eq(istat_code))
            .filter(zone_street::Column::StreetKey.eq(key))
            .order_by_asc(zone_street::Column::ZoneId)
            .order_by_asc(zone_street::Column::Position)
            .all(&self.db)
            .await?;
        let with_streets: BTreeSet<String> = zone_street::Entity::find()
            .select_only()
            .column(zone_street::Column::ZoneId)
            .distinct()
            .filter(zone_street::Column::IstatCode.eq(istat_code))
            .into_tuple::<String>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        let zones = zone::Entity::find()
            .filter(zone::Column::IstatCode.eq(istat_code))
            .order_by_asc(zone::Column::Id)
            .all(&self.db)
            .await?;
        let mut out: Vec<ZoneStreets> = Vec::new();
        for z in zones {
            let listed: Vec<Stretch> = stretches
                .iter()
                .filter(|s| s.zone_id == z.id)
                .map(|s| Stretch {
                    street: s.street.clone(),
                    from_number: s.from_number,
                    to_number: s.to_number,
                    side: pb::WasteZoneStreetSide::try_from(s.side).unwrap_or_default(),
                })
                .collect();
            if !listed.is_empty() {
                out.push(ZoneStreets {
                    zone_id: z.id,
                    stretches: listed,
                });
            } else if !with_streets.contains(&z.id) {
                out.push(ZoneStreets {
                    zone_id: z.id,
                    stretches: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    /// The schedules of these comuni (of one zone, one user type, one fraction when given), by
    /// comune, zone, user type and fraction.
    pub async fn schedules(
        &self,
        istat_codes: &[String],
        zone_id: Option<&str>,
        user_type: Option<i32>,
        fraction: Option<i32>,
    ) -> Result<Vec<schedule::Model>, DbErr> {
        schedules_where(&self.db, istat_codes, zone_id, user_type, fraction).await
    }

    /// The changes of a comune dated in `[from, to]` or moving collections into it.
    pub async fn changes_touching(
        &self,
        istat_code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Change>, DbErr> {
        changes_touching(&self.db, istat_code, from, to).await
    }

    /// A page of a comune's changes dated in `[from, to]` (affecting `zone_id` or every zone, when
    /// given), by date, and the total.
    pub async fn list_changes(
        &self,
        istat_code: &str,
        from: NaiveDate,
        to: Option<NaiveDate>,
        zone_id: Option<&str>,
        page: Page,
    ) -> Result<(Vec<calendar_change::Model>, u64), DbErr> {
        let mut q = calendar_change::Entity::find()
            .filter(calendar_change::Column::IstatCode.eq(istat_code))
            .filter(calendar_change::Column::Date.gte(from.to_string()));
        if let Some(to) = to {
            q = q.filter(calendar_change::Column::Date.lte(to.to_string()));
        }
        if let Some(z) = zone_id {
            q = q.filter(calendar_change::Column::ZoneId.is_in([z.to_owned(), String::new()]));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(calendar_change::Column::Date)
            .order_by_asc(calendar_change::Column::CreatedAt)
            .order_by_asc(calendar_change::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// True when `zone_id` is a zone of comune `istat_code`.
    pub async fn zone_in_comune(&self, zone_id: &str, istat_code: &str) -> Result<bool, DbErr> {
        Ok(zone::Entity::find_by_id(zone_id)
            .one(&self.db)
            .await?
            .is_some_and(|z| z.istat_code == istat_code))
    }

    /// Records a calendar change.
    pub async fn add_change(
        &self,
        istat_code: &str,
        change: NewChange,
        now: DateTime<Utc>,
    ) -> Result<calendar_change::Model, DbErr> {
        let change = change.into_change(uuid::Uuid::new_v4().to_string(), now);
        change_row(istat_code, &change).insert(&self.db).await
    }

    /// A page of collection centres (of a comune, accepting a fraction, when given), by name.
    pub async fn list_centres(
        &self,
        istat_code: Option<&str>,
        fraction: Option<i32>,
        page: Page,
    ) -> Result<(Vec<centre::Model>, u64), DbErr> {
        let mut q = centre::Entity::find();
        if let Some(code) = istat_code {
            q = q.filter(centre::Column::IstatCode.eq(code));
        }
        if let Some(f) = fraction {
            q = q.filter(centre::Column::Fractions.like(list_member(f)));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(centre::Column::Name)
            .order_by_asc(centre::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The centres with these ids (unknown ids are left out).
    pub async fn centres_by_id(&self, ids: &[String]) -> Result<Vec<centre::Model>, DbErr> {
        centre::Entity::find()
            .filter(centre::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(centre::Column::Id)
            .all(&self.db)
            .await
    }

    /// A page of a comune's pickups, by pickup day, and the total.
    pub async fn list_pickups(
        &self,
        f: &PickupFilter,
        page: Page,
    ) -> Result<(Vec<pickup::Model>, u64), DbErr> {
        let mut q =
            pickup::Entity::find().filter(pickup::Column::IstatCode.eq(f.istat_code.as_str()));
        if let Some(d) = f.pickup_date {
            q = q.filter(pickup::Column::PickupDate.eq(d.to_string()));
        }
        if !f.statuses.is_empty() {
            q = q.filter(pickup::Column::Status.is_in(f.statuses.iter().copied()));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(pickup::Column::PickupDate)
            .order_by_asc(pickup::Column::CreatedAt)
            .order_by_asc(pickup::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The pickups with these ids (unknown ids are left out).
    pub async fn pickups_by_id(&self, ids: &[String]) -> Result<Vec<pickup::Model>, DbErr> {
        pickup::Entity::find()
            .filter(pickup::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(pickup::Column::Id)
            .all(&self.db)
            .await
    }

    /// Pickups booked by these citizens (canonical fiscal codes), newest first.
    pub async fn pickups_by_citizen(
        &self,
        fiscal_codes: &[String],
    ) -> Result<Vec<pickup::Model>, DbErr> {
        pickup::Entity::find()
            .filter(pickup::Column::FiscalCode.is_in(fiscal_codes.iter().cloned()))
            .order_by_desc(pickup::Column::CreatedAt)
            .order_by_asc(pickup::Column::Id)
            .all(&self.db)
            .await
    }

    /// Books a pickup in zone `zone_id`: in one transaction, finds the first day on or after the
    /// earliest allowed on which the zone's bulky-waste crew collects and the comune's day is not
    /// full, stores the booking and records the online interaction.
    pub async fn book_pickup(
        &self,
        req: &BookingRequest,
        zone_id: &str,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<pickup::Model, ServiceError> {
        let capacity = comuni::by_istat(&req.istat_code)
            .map_or(0, |c| rules::daily_capacity(c.population_2011));
        let txn = self.db.begin().await?;
        // The count of a day's bookings and the new booking must be one step.
        lock(&txn, &format!("bulky:{}", req.istat_code)).await?;
        let bulky: Vec<Schedule> = schedules_where(
            &txn,
            std::slice::from_ref(&req.istat_code),
            Some(zone_id),
            Some(UserType::Domestic as i32),
            Some(Fraction::Bulky as i32),
        )
        .await?
        .iter()
        .map(schedule_from_row)
        .collect();
        if bulky.is_empty() {
            return Err(ServiceError::FailedPrecondition(format!(
                "comune {} offers no kerbside bulky-waste pickup in zone {zone_id}: bring bulky waste to a collection centre (ListWasteCollectionCentres)",
                req.istat_code
            )));
        }
        let start = rules::earliest_pickup(today, req.earliest_date);
        let last = today + Duration::days(rules::BOOKING_HORIZON_DAYS);
        let changes = changes_touching(&txn, &req.istat_code, start, last).await?;
        let booked: Vec<String> = pickup::Entity::find()
            .select_only()
            .column(pickup::Column::PickupDate)
            .filter(pickup::Column::IstatCode.eq(req.istat_code.as_str()))
            .filter(pickup::Column::PickupDate.gte(start.to_string()))
            .filter(pickup::Column::PickupDate.lte(last.to_string()))
            .filter(pickup::Column::Status.ne(pb::BulkyWastePickupStatus::Cancelled as i32))
            .into_tuple::<String>()
            .all(&txn)
            .await?;
        let mut per_day: BTreeMap<String, u32> = BTreeMap::new();
        for d in booked {
            *per_day.entry(d).or_default() += 1;
        }
        let collects = |d: NaiveDate| {
            rules::collections_on(d, zone_id, UserType::Domestic, &bulky, &changes)
                .iter()
                .any(|c| !c.cancelled)
        };
        let day = rules::first_free_day(start, today, capacity, collects, |d| {
            per_day.get(&d.to_string()).copied().unwrap_or(0)
        })
        .ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "no pickup day with free capacity between {start} and {last} in comune {}: try again later or bring the items to a collection centre",
                req.istat_code
            ))
        })?;
        let id = uuid::Uuid::new_v4();
        let items = serde_json::to_string(&req.items)
            .map_err(|e| ServiceError::Internal(format!("pickup items: {e}")))?;
        let row = pickup::ActiveModel {
            id: Set(id.to_string()),
            istat_code: Set(req.istat_code.clone()),
            fiscal_code: Set(req.fiscal_code.clone()),
            street: Set(req.address.street.clone()),
            house_number: Set(req.address.house_number.clone()),
            postal_code: Set(req.address.postal_code.clone()),
            locality: Set(req.address.locality.clone()),
            zone_id: Set(zone_id.to_owned()),
            items: Set(items),
            pickup_date: Set(day.to_string()),
            status: Set(pb::BulkyWastePickupStatus::Booked as i32),
            code: Set(rules::pickup_code(&id)),
            contact_phone: Set(req.contact_phone.clone()),
            notes: Set(req.notes.clone()),
            outcome_note: Set(String::new()),
            created_at: Set(now),
            closed_at: Set(None),
        }
        .insert(&txn)
        .await?;
        indicators::record(
            &txn,
            &self.salt,
            &req.istat_code,
            &BULKY_WASTE_PICKUP,
            &req.fiscal_code,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    /// The pickup with this id.
    pub async fn pickup(&self, id: &str) -> Result<Option<pickup::Model>, DbErr> {
        pickup::Entity::find_by_id(id).one(&self.db).await
    }

    /// Moves a BOOKED pickup to a final status, conditionally on it still being booked. `check`
    /// explains a refusal from the stored row.
    pub async fn close_pickup(
        &self,
        id: &str,
        to: pb::BulkyWastePickupStatus,
        outcome_note: &str,
        now: DateTime<Utc>,
        check: impl Fn(&pickup::Model) -> Option<ServiceError>,
    ) -> Result<pickup::Model, ServiceError> {
        let txn = self.db.begin().await?;
        let row = pickup::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("bulky-waste pickup", id))?;
        if let Some(refusal) = check(&row) {
            return Err(refusal);
        }
        let updated = pickup::Entity::update_many()
            .col_expr(pickup::Column::Status, Expr::value(to as i32))
            .col_expr(pickup::Column::OutcomeNote, Expr::value(outcome_note))
            .col_expr(pickup::Column::ClosedAt, Expr::value(Some(now)))
            .filter(pickup::Column::Id.eq(id))
            .filter(pickup::Column::Status.eq(pb::BulkyWastePickupStatus::Booked as i32))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(ServiceError::FailedPrecondition(format!(
                "pickup {id} changed meanwhile; read it again"
            )));
        }
        let row = pickup::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("bulky-waste pickup", id))?;
        txn.commit().await?;
        Ok(row)
    }
}

async fn schedules_where(
    conn: &impl ConnectionTrait,
    istat_codes: &[String],
    zone_id: Option<&str>,
    user_type: Option<i32>,
    fraction: Option<i32>,
) -> Result<Vec<schedule::Model>, DbErr> {
    let mut q = schedule::Entity::find()
        .filter(schedule::Column::IstatCode.is_in(istat_codes.iter().cloned()));
    if let Some(z) = zone_id {
        q = q.filter(schedule::Column::ZoneId.eq(z));
    }
    if let Some(u) = user_type {
        q = q.filter(schedule::Column::UserType.eq(u));
    }
    if let Some(f) = fraction {
        q = q.filter(schedule::Column::Fraction.eq(f));
    }
    q.order_by_asc(schedule::Column::IstatCode)
        .order_by_asc(schedule::Column::ZoneId)
        .order_by_asc(schedule::Column::UserType)
        .order_by_asc(schedule::Column::Fraction)
        .order_by_asc(schedule::Column::Id)
        .all(conn)
        .await
}

async fn changes_touching(
    conn: &impl ConnectionTrait,
    istat_code: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Change>, DbErr> {
    let find = |cond: Condition| {
        calendar_change::Entity::find()
            .filter(calendar_change::Column::IstatCode.eq(istat_code))
            .filter(cond)
            .order_by_asc(calendar_change::Column::Date)
            .order_by_asc(calendar_change::Column::Id)
    };
    let (first, last) = (from.to_string(), to.to_string());
    let mut rows = find(
        Condition::any()
            .add(calendar_change::Column::Date.between(first.clone(), last.clone()))
            .add(calendar_change::Column::MovedToDate.between(first.clone(), last.clone())),
    )
    .all(conn)
    .await?;
    // A collection moved in from outside the window is ruled by the narrowest change of its own
    // day, so every change of those days is needed, not only the one moving it.
    let origins: BTreeSet<String> = rows
        .iter()
        .filter(|c| c.date < first || c.date > last)
        .map(|c| c.date.clone())
        .collect();
    if !origins.is_empty() {
        let known: BTreeSet<String> = rows.iter().map(|c| c.id.clone()).collect();
        let more = find(Condition::all().add(calendar_change::Column::Date.is_in(origins)))
            .all(conn)
            .await?;
        rows.extend(more.into_iter().filter(|c| !known.contains(&c.id)));
    }
    Ok(rows.iter().map(change_from_row).collect())
}
