//! Culture rules, free of I/O: what makes an event valid, when seats can be booked, and why a
//! booking is refused. The store applies the same rules atomically; this module explains them.

use chrono::{DateTime, Utc};
use patto_proto::culture::v1 as pb;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::indicators::Procedure;
use patto_service_kit::{ids, time};

/// Most seats one booking may hold.
pub const MAX_SEATS_PER_BOOKING: i32 = 10;
/// Longest event name accepted.
pub const MAX_NAME_LEN: usize = 200;
/// Longest free-text field accepted (descriptions).
pub const MAX_TEXT_LEN: usize = 4000;

/// Booking seats online: the procedure this service offers fully online in every comune.
pub const EVENT_BOOKING: Procedure = Procedure {
    code: "culture.event-booking",
    name: "Prenotazione di posti per eventi culturali",
    fully_online: true,
};

/// Every procedure of the culture service.
pub const PROCEDURES: &[Procedure] = &[EVENT_BOOKING];

/// Event statuses under which seats can be booked.
pub const BOOKABLE: [pb::EventStatus; 2] =
    [pb::EventStatus::Scheduled, pb::EventStatus::Rescheduled];

/// What the store knows of a venue when an event is placed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueFacts {
    /// ISTAT code of the venue's comune.
    pub istat_code: String,
    /// Seats of the venue.
    pub capacity: i32,
}

/// A validated new event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// ISTAT code of the organising comune.
    pub istat_code: String,
    /// Venue id.
    pub venue_id: String,
    /// Title.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: pb::EventCategory,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End.
    pub end_time: DateTime<Utc>,
    /// Organiser.
    pub organizer: String,
    /// Attendance mode.
    pub attendance_mode: pb::AttendanceMode,
    /// Price in cents.
    pub price_cents: i64,
    /// Seats offered.
    pub capacity: i32,
    /// Audience.
    pub audience: String,
    /// Information page.
    pub url: String,
}

/// Validates an event as a client sent it; `prefix` is its path in the request (e.g. `event`), and
/// `venue` what the store knows of the venue it names (`None` when there is no such venue).
pub fn validate_event(
    event: &pb::Event,
    prefix: &str,
    venue: Option<&VenueFacts>,
    now: DateTime<Utc>,
) -> Result<NewEvent, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");

    v.check(
        ids::is_known_istat_code(&event.istat_code),
        f("istat_code"),
        "must be the 6-digit ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    let name = event.name.trim();
    v.check(!name.is_empty(), f("name"), "must not be empty");
    v.check(
        name.chars().count() <= MAX_NAME_LEN,
        f("name"),
        format!("must be at most {MAX_NAME_LEN} characters"),
    );
    v.check(
        event.description.chars().count() <= MAX_TEXT_LEN,
        f("description"),
        format!("must be at most {MAX_TEXT_LEN} characters"),
    );
    let category =
        pb::EventCategory::try_from(event.category).unwrap_or(pb::EventCategory::Unspecified);
    v.check(
        category != pb::EventCategory::Unspecified,
        f("category"),
        "must be one of the EventCategory values",
    );
    let attendance_mode = match pb::AttendanceMode::try_from(event.attendance_mode) {
        Ok(pb::AttendanceMode::Unspecified) => pb::AttendanceMode::Offline,
        Ok(mode) => mode,
        Err(_) => {
            v.add(
                f("attendance_mode"),
                "must be one of the AttendanceMode values",
            );
            pb::AttendanceMode::Offline
        }
    };

    let start = event.start_time.as_ref().and_then(time::from_timestamp);
    let end = event.end_time.as_ref().and_then(time::from_timestamp);
    match (start, end) {
        (None, _) => v.add(f("start_time"), "must be set to a valid time"),
        (Some(s), _) if s <= now => v.add(f("start_time"), "must be in the future"),
        _ => {}
    }
    match (start, end) {
        (_, None) => v.add(f("end_time"), "must be set to a valid time"),
        (Some(s), Some(e)) if e <= s => v.add(f("end_time"), "must be after start_time"),
        _ => {}
    }

    let price_cents = event.price.as_ref().map_or(0, |p| p.cents);
    v.check(
        price_cents >= 0,
        f("price.cents"),
        "must not be negative (0 means free)",
    );

    match venue {
        None => v.add(
            f("venue_id"),
            format!(
                "no venue has id `{}`; list venues with ListVenues",
                event.venue_id
            ),
        ),
        Some(venue) => {
            v.check(
                venue.istat_code == event.istat_code,
                f("venue_id"),
                format!(
                    "the venue belongs to comune {}, not {}",
                    venue.istat_code, event.istat_code
                ),
            );
            v.check(
                (1..=venue.capacity).contains(&event.capacity),
                f("capacity"),
                format!(
                    "must be between 1 and the venue's capacity ({})",
                    venue.capacity
                ),
            );
        }
    }
    v.check(
        event.url.is_empty()
            || event.url.starts_with("https://")
            || event.url.starts_with("http://"),
        f("url"),
        "must be an http(s) URL or empty",
    );
    if !v.is_empty() {
        return Err(v);
    }

    Ok(NewEvent {
        istat_code: event.istat_code.clone(),
        venue_id: event.venue_id.clone(),
        name: name.to_owned(),
        description: event.description.trim().to_owned(),
        category,
        start_time: start.unwrap_or(now),
        end_time: end.unwrap_or(now),
        organizer: event.organizer.trim().to_owned(),
        attendance_mode,
        price_cents,
        capacity: event.capacity,
        audience: event.audience.trim().to_owned(),
        url: event.url.clone(),
    })
}

/// A validated booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    /// Event id.
    pub event_id: String,
    /// Canonical codice fiscale of the citizen.
    pub fiscal_code: String,
    /// Seats wanted.
    pub seats: i32,
}

/// Validates a `CreateBookingRequest`.
pub fn validate_booking(req: &pb::CreateBookingRequest) -> Result<BookingRequest, ServiceError> {
    let mut v = Violations::new();
    v.check(
        !req.event_id.trim().is_empty(),
        "event_id",
        "must be the id of the event to book",
    );
    let fiscal_code = match ids::canonical_fiscal_code(&req.fiscal_code) {
        Ok(cf) => cf,
        Err(e) => {
            v.add("fiscal_code", format!("is not a valid codice fiscale: {e}"));
            String::new()
        }
    };
    v.check(
        (1..=MAX_SEATS_PER_BOOKING).contains(&req.seats),
        "seats",
        format!("must be between 1 and {MAX_SEATS_PER_BOOKING}"),
    );
    v.into_result()?;
    Ok(BookingRequest {
        event_id: req.event_id.trim().to_owned(),
        fiscal_code,
        seats: req.seats,
    })
}

/// The seat-relevant state of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    /// Status.
    pub status: pb::EventStatus,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// Seats offered.
    pub capacity: i32,
    /// Seats held by confirmed bookings.
    pub seats_booked: i32,
}

impl Availability {
    /// Seats still free for booking: none while the event is not bookable.
    pub fn seats_available(&self) -> i32 {
        if BOOKABLE.contains(&self.status) {
            (self.capacity - self.seats_booked).max(0)
        } else {
            0
        }
    }
}

/// Why `seats` cannot be booked for an event in state `a` at `now`; `None` when they can.
pub fn booking_refusal(
    event_id: &str,
    a: &Availability,
    seats: i32,
    now: DateTime<Utc>,
) -> Option<ServiceError> {
    if !BOOKABLE.contains(&a.status) {
        let status = a
            .status
            .as_str_name()
            .trim_start_matches("EVENT_STATUS_")
            .to_ascii_lowercase();
        return Some(ServiceError::FailedPrecondition(format!(
            "event {event_id} cannot be booked: it is {status}"
        )));
    }
    if a.start_time <= now {
        return Some(ServiceError::FailedPrecondition(format!(
            "event {event_id} cannot be booked: it has already started"
        )));
    }
    let left = (a.capacity - a.seats_booked).max(0);
    if seats > left {
        return Some(ServiceError::FailedPrecondition(if left == 0 {
            format!("event {event_id} is sold out")
        } else {
            format!("event {event_id} has only {left} seat(s) left, {seats} asked")
        }));
    }
    None
}

/// The short code a citizen shows at the entrance, derived from the booking id.
pub fn booking_code(booking_id: &uuid::Uuid) -> String {
    let hex = booking_id.simple().to_string().to_ascii_uppercase();
    format!("{}-{}", &hex[..4], &hex[4..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use patto_service_kit::time::to_timestamp;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn good_event() -> pb::Event {
        pb::Event {
            istat_code: "082053".into(),
            name: "Concerto di Natale".into(),
            category: pb::EventCategory::Concert as i32,
            start_time: Some(to_timestamp(now() + Duration::days(3))),
            end_time: Some(to_timestamp(now() + Duration::days(3) + Duration::hours(2))),
            venue_id: "ven-1".into(),
            capacity: 100,
            ..Default::default()
        }
    }

    fn venue() -> VenueFacts {
        VenueFacts {
            istat_code: "082053".into(),
            capacity: 300,
        }
    }

    #[test]
    fn a_good_event_passes_with_defaults() {
        let e = validate_event(&good_event(), "event", Some(&venue()), now()).unwrap();
        assert_eq!(e.attendance_mode, pb::AttendanceMode::Offline);
        assert_eq!(e.price_cents, 0);
    }

    #[test]
    fn event_violations_name_their_field() {
        type Edit = fn(&mut pb::Event);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "bad comune",
                |e| e.istat_code = "000000".into(),
                "event.istat_code",
            ),
            ("empty name", |e| e.name = "  ".into(), "event.name"),
            ("no category", |e| e.category = 0, "event.category"),
            ("unknown category", |e| e.category = 99, "event.category"),
            (
                "past start",
                |e| e.start_time = Some(to_timestamp(now() - Duration::hours(1))),
                "event.start_time",
            ),
            ("no start", |e| e.start_time = None, "event.start_time"),
            (
                "end before start",
                |e| e.end_time = Some(to_timestamp(now() + Duration::days(1))),
                "event.end_time",
            ),
            (
                "negative price",
                |e| e.price = Some(patto_proto::common::v1::Money { cents: -1 }),
                "event.price.cents",
            ),
            ("too many seats", |e| e.capacity = 301, "event.capacity"),
            ("no seats", |e| e.capacity = 0, "event.capacity"),
            (
                "other comune's venue",
                |e| e.istat_code = "082001".into(),
                "event.venue_id",
            ),
            ("bad url", |e| e.url = "ftp://x".into(), "event.url"),
        ];
        for (case, edit, field) in cases {
            let mut e = good_event();
            edit(&mut e);
            let v = validate_event(&e, "event", Some(&venue()), now()).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
        let v = validate_event(&good_event(), "event", None, now()).unwrap_err();
        assert_eq!(v.as_slice()[0].field, "event.venue_id");
    }

    #[test]
    fn booking_requests() {
        let ok = pb::CreateBookingRequest {
            event_id: "e1".into(),
            fiscal_code: "rccmnl83s18d96vw".into(),
            seats: 2,
        };
        assert_eq!(
            validate_booking(&ok).unwrap().fiscal_code,
            "RCCMNL83S18D969H"
        );
        let cases = [
            (
                pb::CreateBookingRequest {
                    seats: 0,
                    ..ok.clone()
                },
                "seats",
            ),
            (
                pb::CreateBookingRequest {
                    seats: 11,
                    ..ok.clone()
                },
                "seats",
            ),
            (
                pb::CreateBookingRequest {
                    fiscal_code: "RCCMNL83S18D969A".into(),
                    ..ok.clone()
                },
                "fiscal_code",
            ),
            (
                pb::CreateBookingRequest {
                    event_id: String::new(),
                    ..ok.clone()
                },
                "event_id",
            ),
        ];
        for (req, field) in cases {
            match validate_booking(&req) {
                Err(ServiceError::InvalidArgument(v)) => assert_eq!(v.as_slice()[0].field, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn refusals() {
        let open = Availability {
            status: pb::EventStatus::Scheduled,
            start_time: now() + Duration::days(1),
            capacity: 50,
            seats_booked: 48,
        };
        assert!(booking_refusal("e", &open, 2, now()).is_none());
        let msg =
            |a: &Availability, seats| booking_refusal("e", a, seats, now()).map(|e| e.to_string());
        assert_eq!(
            msg(&open, 3).unwrap(),
            "event e has only 2 seat(s) left, 3 asked"
        );
        assert_eq!(
            msg(
                &Availability {
                    seats_booked: 50,
                    ..open
                },
                1
            )
            .unwrap(),
            "event e is sold out"
        );
        assert!(
            msg(
                &Availability {
                    status: pb::EventStatus::Cancelled,
                    ..open
                },
                1
            )
            .unwrap()
            .contains("cancelled")
        );
        assert!(
            msg(
                &Availability {
                    status: pb::EventStatus::Postponed,
                    ..open
                },
                1
            )
            .unwrap()
            .contains("postponed")
        );
        assert!(
            msg(
                &Availability {
                    start_time: now(),
                    ..open
                },
                1
            )
            .unwrap()
            .contains("started")
        );
        assert!(
            booking_refusal(
                "e",
                &Availability {
                    status: pb::EventStatus::Rescheduled,
                    ..open
                },
                1,
                now()
            )
            .is_none()
        );
    }

    #[test]
    fn codes_are_short_and_stable() {
        let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_0000_0000_0000_0000);
        assert_eq!(booking_code(&id), "1234-5678");
    }
}
