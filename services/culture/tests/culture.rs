//! The culture service end to end over real gRPC, on SQLite and on PostgreSQL: bookings never
//! exceed capacity under concurrency, bad input names its field, imports are all-or-nothing, the
//! watch stream follows availability, and completed bookings show in the indicators. Every call
//! carries its caller (the kit's header test authenticator): events and venues are read
//! anonymously, bookings are made by their citizens, events published by the comune's operators;
//! who may read and change what is tabled in `access_matrix`, the record of reads in
//! `operators_reads_of_bookings_are_recorded_for_the_citizen`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use patto_culture::{Migrator, demo, store::Store};
use patto_proto::common::v1 as common;
use patto_proto::common::v1::indicators_service_client::IndicatorsServiceClient;
use patto_proto::culture::v1 as pb;
use patto_proto::culture::v1::culture_service_client::CultureServiceClient;
use patto_service_kit::demo::citizen;
use patto_service_kit::testing::{
    self, HeaderPrincipal, Outcome, TestPostgres, TestServer, Who, personal_data_reads, read_row,
};
use patto_service_kit::time::to_timestamp;
use sea_orm::DatabaseConnection;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const SALT: &str = "test-salt";
const PALERMO: &str = "082053";
const BAGHERIA: &str = "082006";
const TEATRO_MASSIMO: &str = "ven-082053-01";

/// The operator who publishes Palermo's events.
fn palermo() -> Who {
    Who::operator(PALERMO)
}

/// Demo citizen `n` as a caller.
fn citizen_who(n: usize) -> Who {
    Who::citizen(&citizen(n).fiscal_code)
}

/// The culture app as the tests host it: callers named by the `x-test-principal` header.
fn app(store: Store) -> patto_service_kit::GrpcApp {
    patto_culture::app(store).with_authenticator(Arc::new(HeaderPrincipal))
}

struct Fixture {
    server: TestServer,
    client: CultureServiceClient<Channel>,
    channel: Channel,
}

async fn start(db: DatabaseConnection) -> Fixture {
    let store = Store::new(db, SALT);
    let today = Utc::now() - chrono::Duration::hours(1);
    assert!(demo::seed(&store, today).await.expect("seed") > 0);
    let server = TestServer::start(app(store)).await;
    let channel = server.channel().await;
    Fixture {
        client: CultureServiceClient::new(channel.clone()),
        channel,
        server,
    }
}

fn new_event(capacity: i32) -> pb::Event {
    let start = Utc::now() + chrono::Duration::days(10);
    pb::Event {
        istat_code: PALERMO.into(),
        name: "Tosca".into(),
        category: pb::EventCategory::Theatre as i32,
        start_time: Some(to_timestamp(start)),
        end_time: Some(to_timestamp(start + chrono::Duration::hours(3))),
        venue_id: TEATRO_MASSIMO.into(),
        capacity,
        price: Some(common::Money { cents: 2500 }),
        ..Default::default()
    }
}

async fn create_event(client: &mut CultureServiceClient<Channel>, capacity: i32) -> pb::Event {
    client
        .create_event(palermo().request(pb::CreateEventRequest {
            event: Some(new_event(capacity)),
        }))
        .await
        .expect("create event")
        .into_inner()
        .event
        .expect("event")
}

/// Demo citizen `n` books `seats` seats of `event_id` for themself.
fn booking(event_id: &str, n: usize, seats: i32) -> tonic::Request<pb::CreateBookingRequest> {
    citizen_who(n).request(pb::CreateBookingRequest {
        event_id: event_id.into(),
        fiscal_code: citizen(n).fiscal_code,
        seats,
    })
}

/// 200 concurrent single-seat bookings for 50 seats: exactly 50 confirmed, 150 refused.
async fn no_overbooking(f: &mut Fixture) {
    let event = create_event(&mut f.client, 50).await;
    let calls = (0..200).map(|n| {
        let mut client = f.client.clone();
        let req = booking(&event.id, 1000 + n, 1);
        tokio::spawn(async move { client.create_booking(req).await })
    });
    let results = futures::future::join_all(calls).await;
    let mut confirmed = 0;
    let mut refused = 0;
    for r in results {
        match r.expect("task") {
            Ok(resp) => {
                assert_eq!(
                    resp.into_inner().booking.unwrap().status,
                    pb::BookingStatus::Confirmed as i32
                );
                confirmed += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(
                    status.message().contains("sold out"),
                    "{}",
                    status.message()
                );
                refused += 1;
            }
        }
    }
    assert_eq!((confirmed, refused), (50, 150));
    // Events are public: read anonymously.
    let after = f
        .client
        .lookup_events(pb::LookupEventsRequest {
            keys: vec![event.id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.items[0].event.as_ref().unwrap().seats_available, 0);
}

/// Cancelling gives the seats back, once; a cancelled event refuses bookings and takes its
/// bookings with it.
async fn cancellation(f: &mut Fixture) {
    let event = create_event(&mut f.client, 3).await;
    let b = f
        .client
        .create_booking(booking(&event.id, 1, 3))
        .await
        .unwrap()
        .into_inner()
        .booking
        .unwrap();
    let full = f
        .client
        .create_booking(booking(&event.id, 2, 1))
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition);

    // The same citizen cannot hold two bookings for one event.
    let twice = f
        .client
        .create_booking(booking(&event.id, 1, 1))
        .await
        .unwrap_err();
    assert_eq!(
        twice.code(),
        Code::FailedPrecondition,
        "no seat left is checked first"
    );

    // Another citizen cannot cancel it; its holder can.
    let foreign = f
        .client
        .cancel_booking(citizen_who(2).request(pb::CancelBookingRequest {
            booking_id: b.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied, "{foreign:?}");
    let cancelled = f
        .client
        .cancel_booking(citizen_who(1).request(pb::CancelBookingRequest {
            booking_id: b.id.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(
        cancelled.into_inner().booking.unwrap().status,
        pb::BookingStatus::Cancelled as i32
    );
    let again = f
        .client
        .cancel_booking(citizen_who(1).request(pb::CancelBookingRequest {
            booking_id: b.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    f.client
        .create_booking(booking(&event.id, 1, 1))
        .await
        .expect("seats are back");
    let dup = f
        .client
        .create_booking(booking(&event.id, 1, 1))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");

    // Cancelling an event is Palermo's work, not Bagheria's.
    let elsewhere = f
        .client
        .cancel_event(Who::operator(BAGHERIA).request(pb::CancelEventRequest {
            event_id: event.id.clone(),
            reason: "maltempo".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied, "{elsewhere:?}");
    let c = f
        .client
        .cancel_event(palermo().request(pb::CancelEventRequest {
            event_id: event.id.clone(),
            reason: "maltempo".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.bookings_cancelled, 1);
    assert_eq!(c.event.unwrap().status, pb::EventStatus::Cancelled as i32);
    let refused = f
        .client
        .create_booking(booking(&event.id, 5, 1))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("cancelled"),
        "{}",
        refused.message()
    );

    let missing = f
        .client
        .create_booking(booking("no-such-event", 1, 1))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Bad input answers INVALID_ARGUMENT with one BadRequest violation per bad field.
async fn bad_input(f: &mut Fixture) {
    let status = f
        .client
        .create_booking(citizen_who(1).request(pb::CreateBookingRequest {
            event_id: String::new(),
            fiscal_code: "XYZ".into(),
            seats: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let fields: Vec<&str> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["event_id", "fiscal_code", "seats"]);

    let mut event = new_event(5000);
    event.end_time = event.start_time;
    let status = f
        .client
        .create_event(palermo().request(pb::CreateEventRequest { event: Some(event) }))
        .await
        .unwrap_err();
    let details = status.get_error_details();
    let fields: Vec<&str> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["event.end_time", "event.capacity"]);

    let status = f
        .client
        .list_venues(pb::ListVenuesRequest {
            istat_code: "999999".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Every unary RPC answers an empty request from a caller who may use it with a meaningful
    // status, never UNIMPLEMENTED.
    let c = &mut f.client;
    let codes = [
        c.list_venues(pb::ListVenuesRequest::default())
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        c.create_event(palermo().request(pb::CreateEventRequest::default()))
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        c.cancel_event(palermo().request(pb::CancelEventRequest::default()))
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        c.create_booking(citizen_who(1).request(pb::CreateBookingRequest::default()))
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        c.cancel_booking(citizen_who(1).request(pb::CancelBookingRequest::default()))
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
    ];
    assert!(
        codes.iter().all(|c| *c == Code::InvalidArgument),
        "{codes:?}"
    );
    assert!(
        c.list_events(pb::ListEventsRequest::default())
            .await
            .is_ok()
    );
    assert!(
        c.lookup_venues(pb::LookupVenuesRequest::default())
            .await
            .is_ok()
    );
    assert!(
        c.list_citizen_bookings(citizen_who(1).request(pb::ListCitizenBookingsRequest::default()))
            .await
            .is_ok()
    );
}

/// Listing pages through a comune's events with opaque cursors; extensions batch by key.
async fn listings(f: &mut Fixture) {
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = f
            .client
            .list_events(pb::ListEventsRequest {
                istat_code: PALERMO.into(),
                page: Some(common::PageRequest {
                    first: 7,
                    after: after.clone(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let info = page.page_info.unwrap();
        seen.extend(page.events.into_iter().map(|e| e.id));
        if !info.has_next_page {
            assert_eq!(info.total_count as usize, seen.len());
            break;
        }
        after = info.end_cursor;
    }
    assert!(
        seen.len() >= 24,
        "Palermo's six venues hold four events each: {}",
        seen.len()
    );
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    let per_comune = f
        .client
        .list_municipality_events(pb::ListMunicipalityEventsRequest {
            keys: vec![PALERMO.into(), "082001".into(), PALERMO.into()],
            first: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = per_comune
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.events.len()))
        .collect();
    assert_eq!(
        keys,
        [("082001", 3), (PALERMO, 3)],
        "keys deduplicated, at most `first` each"
    );

    let venues = f
        .client
        .list_venues(pb::ListVenuesRequest {
            istat_code: PALERMO.into(),
            kind: pb::VenueKind::Theatre as i32,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(venues.venues.len(), 3);
    assert!(venues.venues.iter().all(|v| v.geo.is_some()));
}

/// Import: three bad rows out of many, and one of another comune, are reported and nothing is
/// written; a clean programme is written whole, by an operator of its comune only.
async fn import(f: &mut Fixture) {
    let before = f
        .client
        .list_events(pb::ListEventsRequest {
            venue_id: "ven-082001-01".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .page_info
        .unwrap()
        .total_count;
    let row = |n: usize| {
        let mut e = new_event(20);
        e.istat_code = "082001".into();
        e.venue_id = "ven-082001-01".into();
        e.name = format!("Lettura {n}");
        pb::ImportEventsRequest { event: Some(e) }
    };
    let altavilla = Who::operator("082001");
    let mut rows: Vec<_> = (0..300).map(row).collect();
    rows[10].event.as_mut().unwrap().name.clear();
    rows[100].event.as_mut().unwrap().venue_id = "nowhere".into();
    // A valid event, but Palermo's: Altavilla imports its own programme only.
    rows[200].event = Some(new_event(20));
    rows[250].event = None;
    let answer = f
        .client
        .import_events(altavilla.request(futures::stream::iter(rows.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 0);
    let bad: Vec<(i32, &str)> = answer
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(
        bad,
        [
            (11, "event.name"),
            (101, "event.venue_id"),
            (201, "event.istat_code"),
            (251, "event")
        ]
    );
    let count = |f: &mut Fixture| {
        let mut c = f.client.clone();
        async move {
            c.list_events(pb::ListEventsRequest {
                venue_id: "ven-082001-01".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .page_info
            .unwrap()
            .total_count
        }
    };
    assert_eq!(count(f).await, before, "a failed import writes nothing");

    let good: Vec<_> = (0..300).map(row).collect();
    // Only a comune imports: a citizen and an anonymous caller are refused before any row is read.
    for (who, code) in [
        (citizen_who(1), Code::PermissionDenied),
        (Who::Anonymous, Code::Unauthenticated),
    ] {
        let refused = f
            .client
            .import_events(who.request(futures::stream::iter(good.clone())))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), code, "{who:?}: {refused:?}");
    }
    assert_eq!(count(f).await, before);
    let answer = f
        .client
        .import_events(altavilla.request(futures::stream::iter(good)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.errors.len()), (300, 0));
    assert_eq!(count(f).await, before + 300);
}

/// The watch stream sends the current availability, then every change.
async fn next(
    s: &mut tonic::Streaming<pb::WatchEventAvailabilityResponse>,
) -> pb::WatchEventAvailabilityResponse {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("update in time")
        .unwrap()
        .unwrap()
}

async fn watch(f: &mut Fixture) {
    let event = create_event(&mut f.client, 10).await;
    // Availability is public: followed anonymously.
    let mut stream = f
        .client
        .watch_event_availability(pb::WatchEventAvailabilityRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut stream).await.seats_available, 10);
    f.client
        .create_booking(booking(&event.id, 7, 4))
        .await
        .unwrap();
    assert_eq!(next(&mut stream).await.seats_available, 6);
    f.client
        .cancel_event(palermo().request(pb::CancelEventRequest {
            event_id: event.id.clone(),
            reason: String::new(),
        }))
        .await
        .unwrap();
    let last = next(&mut stream).await;
    assert_eq!(
        (last.seats_available, last.status),
        (0, pb::EventStatus::Cancelled as i32)
    );

    let missing = f
        .client
        .watch_event_availability(pb::WatchEventAvailabilityRequest {
            event_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Completed bookings count in the indicators, and distinct citizens arrive as a sketch.
async fn indicators(f: &mut Fixture) {
    let mut client = IndicatorsServiceClient::new(f.channel.clone());
    let today = Utc::now().date_naive();
    let period = common::Period {
        start_date: (today - chrono::Duration::days(1)).to_string(),
        end_date: (today + chrono::Duration::days(1)).to_string(),
    };
    let answer = client
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![PALERMO.into()],
            period: Some(period),
        })
        .await
        .unwrap()
        .into_inner();
    let palermo = &answer.items[0];
    assert_eq!(palermo.istat_code, PALERMO);
    assert!(
        palermo
            .procedures
            .iter()
            .any(|p| p.code == "culture.event-booking" && p.fully_online)
    );
    assert!(
        palermo.completed_interactions >= 50,
        "{}",
        palermo.completed_interactions
    );
    let sketch =
        patto_service_kit::indicators::Sketch::from_proto(palermo.citizens.as_ref().unwrap())
            .unwrap();
    assert!(sketch.estimate() >= 50);

    let bad = client
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec!["123".into()],
            period: Some(common::Period {
                start_date: "2026-13-01".into(),
                end_date: "2026-01-01".into(),
            }),
        })
        .await
        .unwrap_err();
    let details = bad.get_error_details();
    let fields: Vec<&str> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["istat_codes[0]", "period.start_date"]);
}

async fn whole_suite(db: DatabaseConnection) {
    let mut f = start(db).await;
    no_overbooking(&mut f).await;
    cancellation(&mut f).await;
    bad_input(&mut f).await;
    listings(&mut f).await;
    import(&mut f).await;
    watch(&mut f).await;
    indicators(&mut f).await;
    f.server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn culture_on_sqlite() {
    whole_suite(testing::sqlite::<Migrator>().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn culture_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    whole_suite(pg.migrated::<Migrator>().await.expect("migrate")).await;
}

#[tokio::test]
async fn demo_data_covers_every_comune_and_seeds_once() {
    let store = Store::new(testing::sqlite::<Migrator>().await, SALT);
    let today = Utc::now();
    let events = demo::seed(&store, today).await.unwrap();
    assert!(events > 82 * 4, "{events}");
    assert_eq!(
        demo::seed(&store, today).await.unwrap(),
        0,
        "a second seed adds nothing"
    );
    let server = TestServer::start(app(store)).await;
    let mut client = CultureServiceClient::new(server.channel().await);
    for comune in patto_service_kit::comuni::all() {
        let venues = client
            .list_venues(pb::ListVenuesRequest {
                istat_code: comune.istat_code.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(venues.venues.len() >= 2, "{}", comune.name);
    }
}

/// Shutdown: health turns NOT_SERVING for the watchers, and a stream still open (a citizen
/// following an event) does not keep the process alive past the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_not_serving_and_ends_within_grace() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let store = Store::new(testing::sqlite::<Migrator>().await, SALT);
    demo::seed(&store, Utc::now()).await.unwrap();
    let grace = Duration::from_secs(2);
    let server = TestServer::start_with_grace(app(store), grace).await;
    let channel = server.channel().await;

    let mut health = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "patto.culture.v1.CultureService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = health.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    let mut follow = CultureServiceClient::new(channel)
        .watch_event_availability(pb::WatchEventAvailabilityRequest {
            event_id: "evt-082053-01-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    next(&mut follow).await;

    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.stop());
    let update = tokio::time::timeout(Duration::from_secs(5), health.next())
        .await
        .expect("health update");
    assert_eq!(
        update.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    // A health watcher that saw NOT_SERVING goes away, as load balancers do.
    drop(health);
    stopping.await.unwrap().expect("clean stop");
    // The open stream was ended by the drain, telling the client to reconnect elsewhere.
    let ended = tokio::time::timeout(Duration::from_secs(5), follow.next())
        .await
        .expect("stream ends");
    match ended {
        Some(Err(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
    assert!(
        started.elapsed() < grace,
        "the open stream did not hold the shutdown: {:?}",
        started.elapsed()
    );
}

/// Tells the test when the `n`-th call has reached the server (through the kit's authentication
/// hook, which sees every call).
struct ArrivalSignal {
    seen: std::sync::atomic::AtomicUsize,
    nth: usize,
    tx: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl patto_service_kit::auth::Authenticator for ArrivalSignal {
    fn authenticate<'a>(
        &'a self,
        _: &'a http::HeaderMap,
    ) -> futures::future::BoxFuture<'a, Result<patto_service_kit::Principal, tonic::Status>> {
        if self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.nth
            && let Some(tx) = self.tx.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
        Box::pin(std::future::ready(Ok(
            patto_service_kit::Principal::Anonymous,
        )))
    }
}

/// A call in flight when shutdown starts still completes: the server drains before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_calls_finish_during_drain() {
    use sea_orm::TransactionTrait;

    let db = testing::sqlite::<Migrator>().await;
    let store = Store::new(db.clone(), SALT);
    demo::seed(&store, Utc::now()).await.unwrap();
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    // Call 1 is the health watch below, call 2 the one held in flight.
    let app = patto_culture::app(store).with_authenticator(std::sync::Arc::new(ArrivalSignal {
        seen: std::sync::atomic::AtomicUsize::new(0),
        nth: 2,
        tx: std::sync::Mutex::new(Some(arrived_tx)),
    }));
    let server = TestServer::start_with_grace(app, Duration::from_secs(20)).await;
    let mut client = CultureServiceClient::new(server.channel().await);
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await)
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    health.next().await.unwrap().unwrap();

    // The embedded SQLite has one connection: holding it keeps the call below waiting in the server.
    let hold = db.begin().await.unwrap();
    let call = tokio::spawn(async move {
        client
            .list_venues(pb::ListVenuesRequest {
                istat_code: PALERMO.into(),
                ..Default::default()
            })
            .await
    });
    arrived.await.expect("the call reached the server");
    let stopping = tokio::spawn(server.stop());
    // Release the database only once the server has begun shutting down (health NOT_SERVING).
    let not_serving = health.next().await.unwrap().unwrap();
    assert_eq!(
        not_serving.status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    drop(health);
    hold.commit().await.unwrap();

    let answer = call.await.unwrap().expect("the in-flight call completes");
    assert_eq!(answer.into_inner().venues.len(), 6);
    stopping.await.unwrap().expect("clean stop");
}

/// Who may read a citizen's bookings, book for them and publish a Palermo event: the citizen,
/// another citizen, an operator of Palermo (the event's comune), an operator and a system of
/// Bagheria, an anonymous caller. Every cell is asserted over real gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix() {
    use Outcome::*;
    let mut f = start(testing::sqlite::<Migrator>().await).await;
    let me = citizen(3).fiscal_code;
    let other = citizen(4).fiscal_code;
    let event = create_event(&mut f.client, 100).await;
    f.client
        .create_booking(booking(&event.id, 3, 2))
        .await
        .expect("my booking");
    let cases = [
        (Who::citizen(&me), Sees, Done, Denied),
        (Who::citizen(&other), Denied, Denied, Denied),
        (Who::operator(PALERMO), Sees, Done, Done),
        (Who::operator(BAGHERIA), Nothing, Denied, Denied),
        (Who::system(BAGHERIA), Nothing, Denied, Denied),
        (Who::Anonymous, SignIn, SignIn, SignIn),
    ];
    for (who, read, book, publish) in cases {
        // Personal read: the citizen's bookings.
        let answer = f
            .client
            .list_citizen_bookings(who.request(pb::ListCitizenBookingsRequest {
                keys: vec![me.clone()],
            }))
            .await;
        match (read, answer) {
            (Sees, Ok(a)) => {
                let a = a.into_inner();
                assert_eq!(a.items.len(), 1, "{who:?}");
                assert!(
                    a.items[0]
                        .bookings
                        .iter()
                        .any(|b| b.event_id == event.id && b.fiscal_code == me),
                    "{who:?}"
                );
            }
            (Nothing, Ok(a)) => {
                // Only bookings of Bagheria's own events, if the citizen holds any there.
                let event_ids: Vec<String> = a
                    .into_inner()
                    .items
                    .iter()
                    .flat_map(|i| i.bookings.iter().map(|b| b.event_id.clone()))
                    .collect();
                assert!(!event_ids.contains(&event.id), "{who:?}");
                let events = f
                    .client
                    .lookup_events(pb::LookupEventsRequest { keys: event_ids })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(
                    events
                        .items
                        .iter()
                        .all(|i| i.event.as_ref().unwrap().istat_code == BAGHERIA),
                    "{who:?} sees none of Palermo's bookings"
                );
            }
            (expected, got) => {
                expected.assert_refused(got, &format!("{who:?} reading"));
            }
        }

        // Personal write: a booking for the citizen, each on an event of its own.
        let fresh = create_event(&mut f.client, 10).await;
        let answer = f
            .client
            .create_booking(who.request(pb::CreateBookingRequest {
                event_id: fresh.id.clone(),
                fiscal_code: me.clone(),
                seats: 1,
            }))
            .await;
        match book.refusal() {
            None => assert_eq!(
                answer
                    .expect("booked")
                    .into_inner()
                    .booking
                    .unwrap()
                    .fiscal_code,
                me,
                "{who:?}"
            ),
            Some(code) => {
                let e = testing::assert_refused(answer, code, &format!("{who:?} booking"));
                assert!(!e.message().contains(&me), "names no one: {e:?}");
            }
        }

        // The comune's own work: publishing an event of Palermo.
        let answer = f
            .client
            .create_event(who.request(pb::CreateEventRequest {
                event: Some(new_event(10)),
            }))
            .await;
        assert_eq!(
            answer.as_ref().err().map(tonic::Status::code),
            publish.refusal(),
            "{who:?} publishing: {answer:?}"
        );
    }

    // Seats were taken only by the allowed bookings: the refused ones changed nothing.
    let seats: Vec<i32> = f
        .client
        .list_events(pb::ListEventsRequest {
            istat_code: PALERMO.into(),
            venue_id: TEATRO_MASSIMO.into(),
            page: Some(common::PageRequest {
                first: 100,
                after: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .iter()
        .filter(|e| e.name == "Tosca" && e.capacity == 10)
        .map(|e| e.capacity - e.seats_available)
        .collect();
    assert_eq!(seats.iter().sum::<i32>(), 2, "{seats:?}");
    f.server.stop().await.expect("clean stop");
}

/// An operator's read of a citizen's bookings is recorded with its purpose and listed to that
/// citizen; the citizen's own reads are not; another comune cannot list Palermo's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_reads_of_bookings_are_recorded_for_the_citizen() {
    let mut f = start(testing::sqlite::<Migrator>().await).await;
    let me = citizen(5).fiscal_code;
    let event = create_event(&mut f.client, 50).await;
    f.client
        .create_booking(booking(&event.id, 5, 1))
        .await
        .unwrap();
    let mine = personal_data_reads(&f.channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert!(mine.is_empty(), "nothing read yet: {mine:?}");

    // The citizen reads their own bookings: nothing to record.
    f.client
        .list_citizen_bookings(Who::citizen(&me).request(pb::ListCitizenBookingsRequest {
            keys: vec![me.clone()],
        }))
        .await
        .unwrap();
    let mine = personal_data_reads(&f.channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert!(mine.is_empty(), "own reads are not recorded: {mine:?}");

    // A Palermo operator reads them, declaring the purpose.
    let request = Who::operator(PALERMO).request_with_purpose(
        pb::ListCitizenBookingsRequest {
            keys: vec![me.clone()],
        },
        "pdnd-culture-1",
    );
    let read = f
        .client
        .list_citizen_bookings(request)
        .await
        .unwrap()
        .into_inner();
    assert!(
        read.items[0]
            .bookings
            .iter()
            .any(|b| b.event_id == event.id)
    );

    let mine = personal_data_reads(&f.channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        read_row(&mine[0]),
        [
            "operator",
            "operator@082053",
            PALERMO,
            me.as_str(),
            PALERMO,
            "culture.Booking",
            "pdnd-culture-1",
            "culture",
        ]
    );
    assert!(mine[0].read_at.is_some());

    // Palermo's operators list it too; Bagheria's may not ask for Palermo's log, and its own
    // holds nothing of it.
    let palermo_log = personal_data_reads(&f.channel, &Who::operator(PALERMO), &me, "")
        .await
        .unwrap();
    assert_eq!(palermo_log.len(), 1);
    let denied = personal_data_reads(&f.channel, &Who::operator(BAGHERIA), "", PALERMO).await;
    testing::assert_refused(
        denied,
        Code::PermissionDenied,
        "Bagheria listing Palermo's log",
    );
    let bagheria = personal_data_reads(&f.channel, &Who::operator(BAGHERIA), &me, "")
        .await
        .unwrap();
    assert!(bagheria.is_empty(), "{bagheria:?}");
    let anonymous = personal_data_reads(&f.channel, &Who::Anonymous, &me, "").await;
    testing::assert_refused(anonymous, Code::Unauthenticated, "an anonymous caller");
    f.server.stop().await.expect("clean stop");
}
