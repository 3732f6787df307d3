//! The gRPC face of the culture service: request validation, access checks, conversions between
//! stored rows and protobuf messages, and the availability feed behind the watch RPC.
//!
//! Venues, events and their availability are public. Bookings are personal data of the citizen who
//! holds them, held by the comune of the event: only that citizen and the comune's operators and
//! systems read, make or cancel them, and every read by someone else is recorded
//! ([`patto_service_kit::audit`]) before it is answered. Publishing, cancelling and importing events
//! is the work of the event's comune.

use std::collections::BTreeSet;

use chrono::Utc;
use futures::StreamExt;
use patto_proto::common::v1::{Address, GeoPoint, Money};
use patto_proto::culture::v1 as pb;
use patto_proto::culture::v1::culture_service_server::CultureService;
use patto_service_kit::access::{self, Act, Record};
use patto_service_kit::audit::{Caller, Reads};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::host::Draining;
use patto_service_kit::paging::Page;
use patto_service_kit::stream::spawn_stream;
use patto_service_kit::{ids, time};
use tokio::sync::broadcast;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain;
use crate::store::{self, EventFilter, HeldBooking, Store, booking, event, venue};
use patto_service_kit::validate::{
    any_id, asked_keys, batch_keys, fiscal_code_key, istat_key, optional_enum,
};

/// Most rows one import stream may carry; larger programmes go in several imports.
pub const MAX_IMPORT_ROWS: usize = 50_000;

/// The `patto.culture.v1.CultureService` implementation.
#[derive(Clone)]
pub struct CultureApi {
    store: Store,
    updates: broadcast::Sender<pb::WatchEventAvailabilityResponse>,
}

impl CultureApi {
    /// The API over `store`.
    pub fn new(store: Store) -> Self {
        let (updates, _) = broadcast::channel(1024);
        Self { store, updates }
    }

    fn publish(&self, e: &event::Model) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.updates.send(availability_message(e));
    }
}

fn availability_message(e: &event::Model) -> pb::WatchEventAvailabilityResponse {
    pb::WatchEventAvailabilityResponse {
        event_id: e.id.clone(),
        seats_available: store::availability(e).seats_available(),
        status: e.status,
    }
}

fn venue_to_pb(v: venue::Model) -> pb::Venue {
    pb::Venue {
        id: v.id,
        address: Some(Address {
            street: v.street,
            house_number: v.house_number,
            postal_code: v.postal_code,
            istat_code: v.istat_code.clone(),
            locality: v.locality,
        }),
        istat_code: v.istat_code,
        name: v.name,
        kind: v.kind,
        // 0,0 (in the Gulf of Guinea) stands for "position not surveyed".
        geo: (v.latitude != 0.0 || v.longitude != 0.0).then_some(GeoPoint {
            latitude: v.latitude,
            longitude: v.longitude,
        }),
        capacity: v.capacity,
        wheelchair_accessible: v.wheelchair_accessible,
        opening_hours: v.opening_hours,
        description: v.description,
    }
}

fn event_to_pb(e: event::Model) -> pb::Event {
    let seats_available = store::availability(&e).seats_available();
    pb::Event {
        id: e.id,
        istat_code: e.istat_code,
        name: e.name,
        description: e.description,
        category: e.category,
        start_time: Some(time::to_timestamp(e.start_time)),
        end_time: Some(time::to_timestamp(e.end_time)),
        venue_id: e.venue_id,
        organizer: e.organizer,
        status: e.status,
        attendance_mode: e.attendance_mode,
        price: Some(Money {
            cents: e.price_cents,
        }),
        capacity: e.capacity,
        seats_available,
        audience: e.audience,
        url: e.url,
    }
}

fn booking_to_pb(b: booking::Model) -> pb::Booking {
    pb::Booking {
        id: b.id,
        event_id: b.event_id,
        fiscal_code: b.fiscal_code,
        seats: b.seats,
        status: b.status,
        code: b.code,
        created_time: Some(time::to_timestamp(b.created_at)),
        cancelled_time: b.cancelled_at.map(time::to_timestamp),
    }
}

/// What the audit of personal-data reads calls a booking.
const BOOKING: &str = "culture.Booking";

/// A booking as the access rule sees it: personal data of its holder, held by the event's comune.
fn booking_record(b: &HeldBooking) -> Record<'_> {
    Record::personal(&b.booking.fiscal_code, &b.istat_code)
}

/// Refuses anonymous callers before anything is looked up: they read no personal data and change
/// nothing.
fn required_id(value: &str, field: &str) -> Result<String, ServiceError> {
    any_id(value).map_err(|msg| ServiceError::invalid(field, msg))
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CultureService for CultureApi {
    async fn list_venues(
        &self,
        request: Request<pb::ListVenuesRequest>,
    ) -> Answer<pb::ListVenuesResponse> {
        let req = request.into_inner();
        let mut v = Violations::new();
        v.check(
            ids::is_known_istat_code(&req.istat_code),
            "istat_code",
            "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
        );
        let kind = optional_enum::<pb::VenueKind>(req.kind, "kind", &mut v);
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let (rows, total) = self
            .store
            .list_venues(&req.istat_code, kind, page)
            .await
            .map_err(ServiceError::from)?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListVenuesResponse {
            venues: rows.into_iter().map(venue_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_venues(
        &self,
        request: Request<pb::LookupVenuesRequest>,
    ) -> Answer<pb::LookupVenuesResponse> {
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let rows = self
            .store
            .venues_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::LookupVenuesResponse {
            items: rows
                .into_iter()
                .map(|v| pb::LookupVenuesItem {
                    key: v.id.clone(),
                    venue: Some(venue_to_pb(v)),
                })
                .collect(),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Answer<pb::ListEventsResponse> {
        let req = request.into_inner();
        let mut v = Violations::new();
        v.check(
            req.istat_code.is_empty() || ids::is_known_istat_code(&req.istat_code),
            "istat_code",
            "must be empty (every comune) or the ISTAT code of a comune of the Città Metropolitana di Palermo",
        );
        let category = optional_enum::<pb::EventCategory>(req.category, "category", &mut v);
        let after = match &req.starts_after {
            None => Some(Utc::now()),
            Some(t) => time::from_timestamp(t),
        };
        v.check(after.is_some(), "starts_after", "is not a valid timestamp");
        let before = req.starts_before.as_ref().map(time::from_timestamp);
        v.check(
            !matches!(before, Some(None)),
            "starts_before",
            "is not a valid timestamp",
        );
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let filter = EventFilter {
            istat_code: Some(req.istat_code).filter(|s| !s.is_empty()),
            venue_id: Some(req.venue_id).filter(|s| !s.is_empty()),
            category,
            starts_after: after.unwrap_or_else(Utc::now),
            starts_before: before.flatten(),
        };
        let (rows, total) = self
            .store
            .list_events(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListEventsResponse {
            events: rows.into_iter().map(event_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Answer<pb::LookupEventsResponse> {
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let rows = self
            .store
            .events_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::LookupEventsResponse {
            items: rows
                .into_iter()
                .map(|e| pb::LookupEventsItem {
                    key: e.id.clone(),
                    event: Some(event_to_pb(e)),
                })
                .collect(),
        }))
    }

    async fn list_municipality_events(
        &self,
        request: Request<pb::ListMunicipalityEventsRequest>,
    ) -> Answer<pb::ListMunicipalityEventsResponse> {
        let req = request.into_inner();
        let keys = batch_keys(&req.keys, istat_key)?;
        let mut v = Violations::new();
        v.check(
            (0..=100).contains(&req.first),
            "first",
            "must be between 1 and 100 (0 means 10)",
        );
        let category = optional_enum::<pb::EventCategory>(req.category, "category", &mut v);
        v.into_result()?;
        let per_comune = if req.first == 0 {
            10
        } else {
            req.first as usize
        };
        let rows = self
            .store
            .upcoming_by_comune(&keys, per_comune, category, Utc::now())
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::ListMunicipalityEventsResponse {
            items: rows
                .into_iter()
                .map(|(key, events)| pb::ListMunicipalityEventsItem {
                    key,
                    events: events.into_iter().map(event_to_pb).collect(),
                })
                .collect(),
        }))
    }

    async fn list_citizen_bookings(
        &self,
        request: Request<pb::ListCitizenBookingsRequest>,
    ) -> Answer<pb::ListCitizenBookingsResponse> {
        let caller = Caller::of(&request);
        access::signed_in(&caller.principal, "bookings are personal data")?;
        let req = request.into_inner();
        // Answer under the key the caller sent, even when it is an omocodic variant.
        let canonical = batch_keys(&req.keys, fiscal_code_key)?;
        for cf in &canonical {
            access::authorize_citizen_listing(&caller.principal, cf)?;
        }
        let asked = asked_keys(&req.keys, fiscal_code_key);
        let rows = self
            .store
            .bookings_by_citizen(&canonical)
            .await
            .map_err(ServiceError::from)?;
        // Operators and systems get the bookings of their comune's events only.
        let mut reads = Reads::new(caller, BOOKING);
        let mut items = Vec::new();
        for (key, cf) in asked {
            let mut bookings = Vec::new();
            for b in rows.iter().filter(|b| b.booking.fiscal_code == cf) {
                if reads.allows(&booking_record(b)) {
                    bookings.push(booking_to_pb(b.booking.clone()));
                }
            }
            if !bookings.is_empty() {
                items.push(pb::ListCitizenBookingsItem { key, bookings });
            }
        }
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListCitizenBookingsResponse { items }))
    }

    async fn create_event(
        &self,
        request: Request<pb::CreateEventRequest>,
    ) -> Answer<pb::CreateEventResponse> {
        let who = principal(&request);
        access::signed_in(&who, "publishing events is the comune's work")?;
        let req = request.into_inner();
        let Some(event) = req.event else {
            return Err(ServiceError::invalid("event", "must be set").into());
        };
        let venues = self
            .store
            .venue_facts(std::slice::from_ref(&event.venue_id))
            .await
            .map_err(ServiceError::from)?;
        let new = domain::validate_event(&event, "event", venues.get(&event.venue_id), Utc::now())
            .map_err(ServiceError::InvalidArgument)?;
        access::authorize_write(&who, &Act::for_comune(&new.istat_code))?;
        let stored = self
            .store
            .create_events(vec![new], Utc::now())
            .await
            .map_err(ServiceError::from)?;
        let event = stored
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Internal("no event stored".into()))?;
        Ok(Response::new(pb::CreateEventResponse {
            event: Some(event_to_pb(event)),
        }))
    }

    async fn cancel_event(
        &self,
        request: Request<pb::CancelEventRequest>,
    ) -> Answer<pb::CancelEventResponse> {
        let who = principal(&request);
        access::signed_in(&who, "cancelling events is the comune's work")?;
        let req = request.into_inner();
        let id = required_id(&req.event_id, "event_id")?;
        if req.reason.chars().count() > domain::MAX_TEXT_LEN {
            return Err(ServiceError::invalid("reason", "must be at most 4000 characters").into());
        }
        let current = self
            .store
            .event(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("event", &id))?;
        access::authorize_write(&who, &Act::for_comune(&current.istat_code))?;
        let (event, cancelled) = self
            .store
            .cancel_event(&id, req.reason.trim(), Utc::now())
            .await?;
        self.publish(&event);
        Ok(Response::new(pb::CancelEventResponse {
            event: Some(event_to_pb(event)),
            bookings_cancelled: cancelled as i32,
        }))
    }

    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Answer<pb::CreateBookingResponse> {
        let who = principal(&request);
        access::signed_in(&who, "booking is done by the citizen or for them")?;
        let req = domain::validate_booking(&request.into_inner())?;
        let event = self
            .store
            .event(&req.event_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("event", &req.event_id))?;
        access::authorize_write(&who, &Act::for_citizen(&req.fiscal_code, &event.istat_code))?;
        let (booking, event) = self.store.book(&req, Utc::now()).await?;
        self.publish(&event);
        Ok(Response::new(pb::CreateBookingResponse {
            booking: Some(booking_to_pb(booking)),
        }))
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Answer<pb::CancelBookingResponse> {
        let who = principal(&request);
        access::signed_in(&who, "bookings are personal data")?;
        let id = required_id(&request.into_inner().booking_id, "booking_id")?;
        let held = self
            .store
            .booking(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("booking", &id))?;
        access::authorize_write(
            &who,
            &Act::for_citizen(&held.booking.fiscal_code, &held.istat_code),
        )?;
        let (booking, event) = self.store.cancel_booking(&id, Utc::now()).await?;
        self.publish(&event);
        Ok(Response::new(pb::CancelBookingResponse {
            booking: Some(booking_to_pb(booking)),
        }))
    }

    async fn watch_event_availability(
        &self,
        request: Request<pb::WatchEventAvailabilityRequest>,
    ) -> Answer<BoxStream<pb::WatchEventAvailabilityResponse>> {
        let draining = Draining::of(&request);
        let id = required_id(&request.into_inner().event_id, "event_id")?;
        // Subscribe before reading the current state, so no change falls between the two.
        let mut updates = self.updates.subscribe();
        let current = self
            .store
            .event(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("event", &id))?;
        let store = self.store.clone();
        let stream = spawn_stream(draining, move |tx| async move {
            if tx.send(Ok(availability_message(&current))).await.is_err() {
                return;
            }
            loop {
                let next = match updates.recv().await {
                    Ok(update) if update.event_id == id => update,
                    Ok(_) => continue,
                    // Fell behind: what matters is the latest state, so read it afresh.
                    Err(broadcast::error::RecvError::Lagged(_)) => match store.event(&id).await {
                        Ok(Some(e)) => availability_message(&e),
                        _ => continue,
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(Ok(next)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn import_events(
        &self,
        request: Request<Streaming<pb::ImportEventsRequest>>,
    ) -> Answer<pb::ImportEventsResponse> {
        // Importing is the work of a comune, for its own events: refused before a row is read.
        let who = principal(&request);
        let comune = who.comune().unwrap_or_default().to_owned();
        access::authorize_write(&who, &Act::for_comune(&comune))?;
        let mut stream = request.into_inner();
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await {
            rows.push(row?);
            if rows.len() > MAX_IMPORT_ROWS {
                return Err(ServiceError::invalid(
                    "event",
                    format!(
                        "an import carries at most {MAX_IMPORT_ROWS} rows; split the programme"
                    ),
                )
                .into());
            }
        }
        let venue_ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.event.as_ref().map(|e| e.venue_id.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let venues = self
            .store
            .venue_facts(&venue_ids)
            .await
            .map_err(ServiceError::from)?;
        let now = Utc::now();
        let mut valid = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let number = i as i32 + 1;
            let Some(event) = &row.event else {
                errors.push(pb::ImportRowError {
                    row: number,
                    field: "event".into(),
                    description: "must be set".into(),
                });
                continue;
            };
            match domain::validate_event(event, "event", venues.get(&event.venue_id), now) {
                Ok(e) if e.istat_code != comune => errors.push(pb::ImportRowError {
                    row: number,
                    field: "event.istat_code".into(),
                    description: format!("must be {comune}: a comune imports its own events only"),
                }),
                Ok(e) => valid.push(e),
                Err(v) => errors.extend(v.as_slice().iter().map(|f| pb::ImportRowError {
                    row: number,
                    field: f.field.clone(),
                    description: f.description.clone(),
                })),
            }
        }
        if !errors.is_empty() {
            return Ok(Response::new(pb::ImportEventsResponse {
                imported: 0,
                errors,
            }));
        }
        let stored = self
            .store
            .create_events(valid, now)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::ImportEventsResponse {
            imported: stored.len() as i32,
            errors: Vec::new(),
        }))
    }
}
