//! The environment service end to end over real gRPC, on SQLite and on PostgreSQL: duplicate
//! reports linked within 50 m and 7 days (and not beyond), the report workflow and its watch
//! stream, "what is collected here on this date" with calendar changes, bulky-waste bookings
//! against the day's capacity, PM10 exceedances through the exceedance RPC, the all-or-nothing
//! readings import, a meaningful status for an empty request to every unary RPC, the access rule
//! cell by cell, and the audit of reads of personal data.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc, Weekday};
use futures::StreamExt;
use patto_environment::domain::air::day_start;
use patto_environment::domain::geo::Point;
use patto_environment::domain::{italian_day, reports::validate_create, rome_to_utc};
use patto_environment::store::Store;
use patto_environment::{Migrator, demo};
use patto_proto::common::v1 as common;
use patto_proto::common::v1::indicators_service_client::IndicatorsServiceClient;
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::environment_service_client::EnvironmentServiceClient;
use patto_proto::environment::v1::{
    AirPollutant as Pollutant, EnvironmentReportCategory as Category,
    EnvironmentReportStatus as Status, WasteFraction as Fraction, WasteUserType as UserType,
};
use patto_service_kit::demo::citizen;
use patto_service_kit::testing::{
    self, HeaderPrincipal, TestPostgres, TestServer, Who, assert_refused, code_of,
    personal_data_reads, read_row,
};
use patto_service_kit::time::to_timestamp;
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

const SALT: &str = "test-salt";
const PALERMO: &str = "082053";
const ALIA: &str = "082001";

/// `message` from an operator of Palermo, whose reports and pickups the suite works on.
fn op<T>(message: T) -> Request<T> {
    Who::operator(PALERMO).request(message)
}

/// `message` from the system of Alia, which runs its calendar, pickups and air-quality network.
fn alia<T>(message: T) -> Request<T> {
    Who::system(ALIA).request(message)
}

/// A request a citizen makes for themselves.
trait ForCitizen {
    fn fiscal_code(&self) -> &str;
    fn istat_code(&self) -> &str;
}

impl ForCitizen for pb::CreateEnvironmentReportRequest {
    fn fiscal_code(&self) -> &str {
        &self.fiscal_code
    }
    fn istat_code(&self) -> &str {
        &self.istat_code
    }
}

impl ForCitizen for pb::BookBulkyWastePickupRequest {
    fn fiscal_code(&self) -> &str {
        &self.fiscal_code
    }
    fn istat_code(&self) -> &str {
        self.address.as_ref().map_or("", |a| a.istat_code.as_str())
    }
}

/// `message` from the citizen it is for; one naming no citizen comes from an operator of its
/// comune (a report taken by phone).
fn by_citizen<T: ForCitizen>(message: T) -> Request<T> {
    let who = match (message.fiscal_code(), message.istat_code()) {
        ("", "") => Who::operator(PALERMO),
        ("", comune) => Who::operator(comune),
        (cf, _) => Who::citizen(cf),
    };
    who.request(message)
}

/// A server over `store` that reads the caller from the test header.
async fn serve(store: Store) -> TestServer {
    TestServer::start(patto_environment::app(store).with_authenticator(Arc::new(HeaderPrincipal)))
        .await
}

struct Fixture {
    store: Store,
    server: TestServer,
    client: EnvironmentServiceClient<Channel>,
    indicators: IndicatorsServiceClient<Channel>,
}

async fn start(db: DatabaseConnection) -> Fixture {
    let store = Store::new(db, SALT);
    let started = std::time::Instant::now();
    let readings = demo::seed(&store, Utc::now()).await.expect("seed");
    eprintln!(
        "demo data: {readings} readings seeded in {:?}",
        started.elapsed()
    );
    assert!(readings > 10_000, "{readings}");
    let server = serve(store.clone()).await;
    let channel = server.channel().await;
    Fixture {
        store,
        client: EnvironmentServiceClient::new(channel.clone()),
        indicators: IndicatorsServiceClient::new(channel),
        server,
    }
}

fn today() -> NaiveDate {
    italian_day(Utc::now())
}

/// A spot in southern Palermo, away from the demo reports; scenario `k` is `k` km north of it.
fn spot(k: i32) -> Point {
    Point {
        lat: 38.0600,
        lon: 13.3400,
    }
    .offset(f64::from(k) * 1000.0, 0.0)
}

fn report_at(p: Point, category: Category, n: usize) -> pb::CreateEnvironmentReportRequest {
    pb::CreateEnvironmentReportRequest {
        istat_code: PALERMO.into(),
        category: category as i32,
        description: "Rifiuti abbandonati sul marciapiede da giorni.".into(),
        geo: Some(p.to_proto()),
        fiscal_code: citizen(n).fiscal_code,
        ..Default::default()
    }
}

async fn file(f: &mut Fixture, p: Point, category: Category, n: usize) -> pb::EnvironmentReport {
    f.client
        .create_environment_report(by_citizen(report_at(p, category, n)))
        .await
        .expect("create report")
        .into_inner()
        .environment_report
        .expect("report")
}

async fn lookup(f: &mut Fixture, id: &str) -> pb::EnvironmentReport {
    f.client
        .lookup_environment_reports(pb::LookupEnvironmentReportsRequest {
            keys: vec![id.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .items
        .pop()
        .and_then(|i| i.environment_report)
        .expect("report found")
}

/// Files a report as if it had been filed `days` days ago, through the store (the gRPC edge always
/// files at the present moment).
async fn file_days_ago(f: &Fixture, p: Point, days: i64) -> String {
    let new = validate_create(&report_at(p, Category::AbandonedWaste, 300)).unwrap();
    let (view, linked) = f
        .store
        .create_report(new, Some(Utc::now() - chrono::Duration::days(days)))
        .await
        .unwrap();
    assert!(linked.is_none());
    view.report.id
}

async fn acknowledge(f: &mut Fixture, id: &str) -> pb::EnvironmentReport {
    f.client
        .acknowledge_environment_report(op(pb::AcknowledgeEnvironmentReportRequest {
            report_id: id.into(),
            assigned_to: "RAP - Servizio rimozione rifiuti".into(),
            expected_resolution_date: (today() + chrono::Duration::days(3)).to_string(),
            note: "Squadra programmata.".into(),
        }))
        .await
        .expect("acknowledge")
        .into_inner()
        .environment_report
        .unwrap()
}

/// The duplicate rule over gRPC: 30 m and within 7 days of an open report of the same category
/// → linked; 60 m, 8 days, another category or a resolved first report → not linked.
async fn duplicates_are_linked(f: &mut Fixture) {
    let first = file(f, spot(0), Category::AbandonedWaste, 52).await;
    assert_eq!(first.status, Status::Open as i32);
    assert_eq!(
        (first.linked_to_report_id.as_str(), first.supporters_count),
        ("", 1)
    );

    let near = file(f, spot(0).offset(30.0, 0.0), Category::AbandonedWaste, 134).await;
    assert_eq!(near.linked_to_report_id, first.id, "30 m away: linked");
    assert_eq!(
        (near.supporters_count, near.status),
        (0, Status::Open as i32)
    );
    assert_eq!(lookup(f, &first.id).await.supporters_count, 2);

    let far = file(f, spot(0).offset(0.0, 60.0), Category::AbandonedWaste, 216).await;
    assert_eq!(far.linked_to_report_id, "", "60 m away: not linked");
    let other = file(f, spot(0).offset(10.0, 0.0), Category::Bin, 298).await;
    assert_eq!(other.linked_to_report_id, "", "other category: not linked");

    // Eight days before: too old to absorb a new report; six days before: still open to it.
    let old = file_days_ago(f, spot(1), 8).await;
    let late = file(f, spot(1).offset(30.0, 0.0), Category::AbandonedWaste, 52).await;
    assert_eq!(
        late.linked_to_report_id, "",
        "8 days later: not linked ({old})"
    );
    let recent = file_days_ago(f, spot(2), 6).await;
    let joined = file(f, spot(2).offset(30.0, 0.0), Category::AbandonedWaste, 52).await;
    assert_eq!(joined.linked_to_report_id, recent, "6 days later: linked");

    // Once the first report is resolved, a new one opens a case of its own.
    let done = file(f, spot(3), Category::AbandonedWaste, 52).await;
    acknowledge(f, &done.id).await;
    f.client
        .resolve_environment_report(op(pb::ResolveEnvironmentReportRequest {
            report_id: done.id.clone(),
            note: "Rifiuti rimossi.".into(),
        }))
        .await
        .unwrap();
    let after = file(f, spot(3).offset(30.0, 0.0), Category::AbandonedWaste, 134).await;
    assert_eq!(
        after.linked_to_report_id, "",
        "first one resolved: not linked"
    );

    // Resolving the first report closes the one linked to it.
    acknowledge(f, &first.id).await;
    let resolved = f
        .client
        .resolve_environment_report(op(pb::ResolveEnvironmentReportRequest {
            report_id: first.id.clone(),
            note: "Area ripulita.".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.linked_reports_closed, 1);
    let linked = lookup(f, &near.id).await;
    assert_eq!(linked.status, Status::Resolved as i32);
    assert!(linked.closed_time.is_some());
    assert!(
        linked.history.iter().any(|h| h.note == "Area ripulita."),
        "the linked report shows the primary's history from the link on: {:?}",
        linked.history
    );

    // Ten citizens report the same problem at the same moment: one case, nine linked to it.
    let calls = (0..10).map(|n| {
        let mut client = f.client.clone();
        let req = report_at(spot(4), Category::IllegalDump, 400 + n);
        tokio::spawn(async move { client.create_environment_report(by_citizen(req)).await })
    });
    let reports: Vec<pb::EnvironmentReport> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            r.expect("task")
                .expect("create")
                .into_inner()
                .environment_report
                .unwrap()
        })
        .collect();
    let primaries: Vec<&pb::EnvironmentReport> = reports
        .iter()
        .filter(|r| r.linked_to_report_id.is_empty())
        .collect();
    assert_eq!(primaries.len(), 1, "concurrent duplicates open one case");
    let primary = primaries[0].id.clone();
    assert!(
        reports
            .iter()
            .all(|r| r.id == primary || r.linked_to_report_id == primary)
    );
    assert_eq!(lookup(f, &primary).await.supporters_count, 10);

    // Listing near a point finds the open cases only, unless linked ones are asked for.
    let near_list = f
        .client
        .list_environment_reports(pb::ListEnvironmentReportsRequest {
            near: Some(spot(4).to_proto()),
            radius_meters: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(near_list.page_info.unwrap().total_count, 1);
    let with_linked = f
        .client
        .list_environment_reports(pb::ListEnvironmentReportsRequest {
            near: Some(spot(4).to_proto()),
            radius_meters: 100,
            include_linked: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(with_linked.page_info.unwrap().total_count, 10);
}

/// Illegal steps are refused naming both states; linked reports are steered to their primary.
async fn workflow(f: &mut Fixture) {
    let r = file(f, spot(5), Category::RoadDamage, 52).await;
    let refused = f
        .client
        .start_environment_report(op(pb::StartEnvironmentReportRequest {
            report_id: r.id.clone(),
            note: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("from OPEN to IN_PROGRESS"),
        "{}",
        refused.message()
    );

    let linked = file(f, spot(5).offset(20.0, 0.0), Category::RoadDamage, 134).await;
    let steered = f
        .client
        .add_environment_report_note(op(pb::AddEnvironmentReportNoteRequest {
            report_id: linked.id.clone(),
            note: "nota".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(steered.code(), Code::FailedPrecondition);
    assert!(steered.message().contains(&r.id), "{}", steered.message());

    let acked = acknowledge(f, &r.id).await;
    assert_eq!(acked.status, Status::Acknowledged as i32);
    assert_eq!(acked.assigned_to, "RAP - Servizio rimozione rifiuti");
    let started = f
        .client
        .start_environment_report(op(pb::StartEnvironmentReportRequest {
            report_id: r.id.clone(),
            note: "Cantiere aperto.".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .environment_report
        .unwrap();
    assert_eq!(started.status, Status::InProgress as i32);
    let noted = f
        .client
        .add_environment_report_note(op(pb::AddEnvironmentReportNoteRequest {
            report_id: r.id.clone(),
            note: "Materiale ordinato.".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .environment_report
        .unwrap();
    assert_eq!(noted.status, Status::InProgress as i32);
    let statuses: Vec<i32> = noted.history.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Open as i32,
            Status::Acknowledged as i32,
            Status::InProgress as i32,
            Status::InProgress as i32
        ]
    );
    let rejected = f
        .client
        .reject_environment_report(op(pb::RejectEnvironmentReportRequest {
            report_id: r.id.clone(),
            reason: "Strada provinciale: competenza della Città Metropolitana.".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.linked_reports_closed, 1);
    let again = f
        .client
        .resolve_environment_report(op(pb::ResolveEnvironmentReportRequest {
            report_id: r.id.clone(),
            note: "fatto".into(),
        }))
        .await
        .unwrap_err();
    assert!(
        again.message().contains("from REJECTED to RESOLVED"),
        "{}",
        again.message()
    );
    let missing = f
        .client
        .acknowledge_environment_report(op(pb::AcknowledgeEnvironmentReportRequest {
            report_id: "no-such-report".into(),
            assigned_to: "RAP".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // The citizen's reports, under the key they were asked with (an omocodic variant included).
    let mine = f
        .client
        .list_citizen_environment_reports(op(pb::ListCitizenEnvironmentReportsRequest {
            keys: vec![citizen(52).fiscal_code],
            statuses: vec![Status::Rejected as i32],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.items.len(), 1);
    assert!(
        mine.items[0]
            .environment_reports
            .iter()
            .any(|x| x.id == r.id && x.fiscal_code == citizen(52).fiscal_code)
    );
}

async fn next(
    s: &mut tonic::Streaming<pb::WatchEnvironmentReportResponse>,
) -> pb::EnvironmentReport {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("update in time")
        .expect("stream open")
        .expect("update")
        .environment_report
        .expect("report")
}

/// The watch stream: the current state, then every change; a linked report follows its primary.
async fn watch(f: &mut Fixture) {
    let primary = file(f, spot(6), Category::PublicGreen, 52).await;
    let mut on_primary = f
        .client
        .watch_environment_report(pb::WatchEnvironmentReportRequest {
            report_id: primary.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut on_primary).await.status, Status::Open as i32);

    let linked = file(f, spot(6).offset(25.0, 0.0), Category::PublicGreen, 134).await;
    assert_eq!(linked.linked_to_report_id, primary.id);
    assert_eq!(
        next(&mut on_primary).await.supporters_count,
        2,
        "a citizen joining shows"
    );
    let mut on_linked = f
        .client
        .watch_environment_report(pb::WatchEnvironmentReportRequest {
            report_id: linked.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut on_linked).await.linked_to_report_id, primary.id);

    acknowledge(f, &primary.id).await;
    assert_eq!(
        next(&mut on_primary).await.status,
        Status::Acknowledged as i32
    );
    let followed = next(&mut on_linked).await;
    assert_eq!(followed.status, Status::Acknowledged as i32);
    assert!(
        followed
            .history
            .iter()
            .any(|h| h.note == "Squadra programmata.")
    );
    f.client
        .resolve_environment_report(op(pb::ResolveEnvironmentReportRequest {
            report_id: primary.id.clone(),
            note: "Albero potato.".into(),
        }))
        .await
        .unwrap();
    assert_eq!(next(&mut on_primary).await.status, Status::Resolved as i32);
    assert_eq!(next(&mut on_linked).await.status, Status::Resolved as i32);

    let missing = f
        .client
        .watch_environment_report(pb::WatchEnvironmentReportRequest {
            report_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let empty = f
        .client
        .watch_environment_report(pb::WatchEnvironmentReportRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
}

fn monday_after(d: NaiveDate) -> NaiveDate {
    d.iter_days()
        .find(|x| x.weekday() == Weekday::Mon)
        .unwrap_or(d)
}

fn schedule(
    zone: &str,
    user_type: UserType,
    fraction: Fraction,
    weekdays: Vec<i32>,
) -> pb::WasteCollectionSchedule {
    pb::WasteCollectionSchedule {
        zone_id: zone.into(),
        user_type: user_type as i32,
        fraction: fraction as i32,
        weekdays,
        set_out_from: "20:00".into(),
        set_out_until: "06:00".into(),
        set_out_evening_before: true,
        container: "mastello".into(),
        ..Default::default()
    }
}

/// Alia's calendar as a test knows it: zone A (Via Roma 1–99) with organic on Monday, Wednesday
/// and Friday, paper on Tuesday, bulky waste on Wednesday; the rest of the comune (zona unica)
/// with residual on Thursday; the organic of `holiday` moved to the next day.
fn alia_setup(holiday: NaiveDate) -> pb::ReplaceWasteCalendarRequest {
    pb::ReplaceWasteCalendarRequest {
        istat_code: ALIA.into(),
        zones: vec![
            pb::WasteZone {
                id: "082001-A".into(),
                name: "Zona A - Centro".into(),
                streets: vec![pb::WasteZoneStreet {
                    street: "Via Roma".into(),
                    from_number: 1,
                    to_number: 99,
                    ..Default::default()
                }],
                ..Default::default()
            },
            pb::WasteZone {
                id: "082001-U".into(),
                name: "Zona unica".into(),
                ..Default::default()
            },
        ],
        schedules: vec![
            schedule(
                "082001-A",
                UserType::Domestic,
                Fraction::Organic,
                vec![1, 3, 5],
            ),
            schedule("082001-A", UserType::Domestic, Fraction::Paper, vec![2]),
            schedule("082001-A", UserType::Domestic, Fraction::Bulky, vec![3]),
            schedule("082001-U", UserType::Domestic, Fraction::Residual, vec![4]),
        ],
        centres: vec![pb::WasteCollectionCentre {
            name: "CCR di Alia".into(),
            opening_hours: "Mo-Sa 08:00-12:00".into(),
            accepted_fractions: vec![Fraction::Bulky as i32, Fraction::Weee as i32],
            ..Default::default()
        }],
        changes: vec![pb::WasteCalendarChange {
            date: holiday.to_string(),
            fraction: Fraction::Organic as i32,
            moved_to_date: (holiday + chrono::Duration::days(1)).to_string(),
            reason: "Festa patronale".into(),
            ..Default::default()
        }],
    }
}

async fn collections(
    f: &mut Fixture,
    street: &str,
    number: &str,
    date: NaiveDate,
    days: i32,
) -> Result<pb::ListWasteCollectionsResponse, tonic::Status> {
    f.client
        .list_waste_collections(pb::ListWasteCollectionsRequest {
            address: Some(common::Address {
                street: street.into(),
                house_number: number.into(),
                istat_code: ALIA.into(),
                ..Default::default()
            }),
            user_type: UserType::Domestic as i32,
            date: date.to_string(),
            days,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

fn fractions(r: &pb::ListWasteCollectionsResponse) -> Vec<(i32, bool, &str)> {
    r.collections
        .iter()
        .map(|c| (c.fraction, c.cancelled, c.moved_from_date.as_str()))
        .collect()
}

/// "What is collected at this address on this date", with a holiday moving a collection.
async fn waste_calendar(f: &mut Fixture) {
    let holiday = monday_after(today() + chrono::Duration::days(8));
    let normal = holiday - chrono::Duration::days(7);
    let stored = f
        .client
        .replace_waste_calendar(alia(alia_setup(holiday)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            stored.zone_count,
            stored.schedule_count,
            stored.centre_count,
            stored.change_count
        ),
        (2, 4, 1, 1)
    );

    // A plain Monday in Via Roma 5: organic, put out from Sunday 20:00 to Monday 06:00.
    let monday = collections(f, "Via Roma", "5", normal, 0).await.unwrap();
    assert_eq!(monday.waste_zone.as_ref().unwrap().id, "082001-A");
    assert_eq!(fractions(&monday), [(Fraction::Organic as i32, false, "")]);
    let organic = &monday.collections[0];
    assert_eq!(organic.eer_codes, ["20 01 08"]);
    let sunday_evening = rome_to_utc(
        (normal - chrono::Duration::days(1))
            .and_hms_opt(20, 0, 0)
            .unwrap(),
    );
    assert_eq!(organic.set_out_from, Some(to_timestamp(sunday_evening)));

    // The holiday: organic cancelled here, collected the next day with the paper.
    let on_holiday = collections(f, "V. Roma", "5/B", holiday, 0).await.unwrap();
    assert_eq!(
        fractions(&on_holiday),
        [(Fraction::Organic as i32, true, "")]
    );
    assert!(
        on_holiday.collections[0]
            .change_reason
            .starts_with("Festa patronale")
    );
    let next_day = holiday + chrono::Duration::days(1);
    let tuesday = collections(f, "Via Roma", "5", next_day, 1).await.unwrap();
    let holiday_text = holiday.to_string();
    assert_eq!(
        fractions(&tuesday),
        [
            (Fraction::Organic as i32, false, holiday_text.as_str()),
            (Fraction::Paper as i32, false, "")
        ]
    );

    // A week: organic three times, paper once, bulky-waste crew on Wednesday.
    let week = collections(f, "Via Roma", "5", normal, 7).await.unwrap();
    assert_eq!(week.collections.len(), 5, "{:?}", fractions(&week));

    // Outside the listed stretch: the zona unica, with its residual on Thursday.
    let thursday = normal + chrono::Duration::days(3);
    let elsewhere = collections(f, "Via Roma", "120", thursday, 0)
        .await
        .unwrap();
    assert_eq!(elsewhere.waste_zone.as_ref().unwrap().id, "082001-U");
    assert_eq!(
        fractions(&elsewhere),
        [(Fraction::Residual as i32, false, "")]
    );
    let unknown = f
        .client
        .list_waste_collections(pb::ListWasteCollectionsRequest {
            zone_id: "082001-Z".into(),
            user_type: UserType::Domestic as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // An operator cancels Wednesday's organic for a strike: the calendar shows it.
    let wednesday = normal + chrono::Duration::days(2);
    let change = f
        .client
        .reschedule_waste_collection(alia(pb::RescheduleWasteCollectionRequest {
            istat_code: ALIA.into(),
            date: wednesday.to_string(),
            zone_id: "082001-A".into(),
            fraction: Fraction::Organic as i32,
            reason: "Sciopero del personale".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(change.moved_to_date, "");
    let strike = collections(f, "Via Roma", "5", wednesday, 0).await.unwrap();
    assert_eq!(
        fractions(&strike),
        [
            (Fraction::Organic as i32, true, ""),
            (Fraction::Bulky as i32, false, "")
        ]
    );
    let past = f
        .client
        .reschedule_waste_collection(alia(pb::RescheduleWasteCollectionRequest {
            istat_code: ALIA.into(),
            date: "2020-01-01".into(),
            reason: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument);
    let changes = f
        .client
        .list_waste_calendar_changes(pb::ListWasteCalendarChangesRequest {
            istat_code: ALIA.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changes.changes.len(), 2);

    // A bad setup is refused whole, naming the item: the calendar stays as it was.
    let mut bad = alia_setup(holiday);
    bad.zones.truncate(1);
    bad.schedules[1].weekdays = vec![9];
    let refused = f
        .client
        .replace_waste_calendar(alia(bad))
        .await
        .unwrap_err();
    let details = refused.get_error_details();
    let fields: Vec<&str> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(
        fields,
        ["schedules[1].weekdays[0]", "schedules[3].zone_id"],
        "{refused:?}"
    );
    let zones = f
        .client
        .list_waste_zones(pb::ListWasteZonesRequest {
            istat_code: ALIA.into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zones.waste_zones.len(), 2, "nothing was written");

    let calendars = f
        .client
        .list_municipality_waste_calendars(pb::ListMunicipalityWasteCalendarsRequest {
            keys: vec![ALIA.into(), PALERMO.into()],
            fraction: Fraction::Organic as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(&str, usize)> = calendars
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.schedules.len()))
        .collect();
    assert_eq!(counts, [(ALIA, 1), (PALERMO, 10)]);

    let weee = f
        .client
        .list_waste_collection_centres(pb::ListWasteCollectionCentresRequest {
            istat_code: PALERMO.into(),
            fraction: Fraction::Weee as i32,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(weee.waste_collection_centres.len(), 3);
}

fn booking(n: usize, number: &str, pieces: i32) -> pb::BookBulkyWastePickupRequest {
    pb::BookBulkyWastePickupRequest {
        fiscal_code: citizen(n).fiscal_code,
        address: Some(common::Address {
            street: "Via Roma".into(),
            house_number: number.into(),
            istat_code: ALIA.into(),
            ..Default::default()
        }),
        items: vec![pb::BulkyWasteItem {
            description: "materasso".into(),
            fraction: Fraction::Bulky as i32,
            quantity: pieces,
        }],
        contact_phone: "+39 091 555 0101".into(),
        ..Default::default()
    }
}

/// Bulky waste in Alia (capacity 3 a day): the first three bookings take the first Wednesday, the
/// fourth the one after; limits and cancellations.
async fn bulky_pickups(f: &mut Fixture) {
    let first_wednesday = (today() + chrono::Duration::days(2))
        .iter_days()
        .find(|d| d.weekday() == Weekday::Wed)
        .unwrap();
    let mut days = Vec::new();
    let mut ids = Vec::new();
    for n in 0..4 {
        let p = f
            .client
            .book_bulky_waste_pickup(by_citizen(booking(600 + n, "7", 2)))
            .await
            .expect("book")
            .into_inner()
            .bulky_waste_pickup
            .unwrap();
        assert_eq!(p.status, pb::BulkyWastePickupStatus::Booked as i32);
        assert!(p.code.starts_with("ING-"));
        days.push(p.pickup_date);
        ids.push(p.id);
    }
    let next_wednesday = first_wednesday + chrono::Duration::days(7);
    assert_eq!(
        days,
        [
            first_wednesday.to_string(),
            first_wednesday.to_string(),
            first_wednesday.to_string(),
            next_wednesday.to_string()
        ]
    );

    let too_many = f
        .client
        .book_bulky_waste_pickup(by_citizen(booking(700, "7", 6)))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::FailedPrecondition);
    let no_service = f
        .client
        .book_bulky_waste_pickup(by_citizen(booking(701, "150", 1)))
        .await
        .unwrap_err();
    assert_eq!(
        no_service.code(),
        Code::FailedPrecondition,
        "{no_service:?}"
    );
    assert!(no_service.message().contains("no kerbside"));

    // Cancelling frees the seat on that day; a second cancel is refused.
    let cancelled = f
        .client
        .cancel_bulky_waste_pickup(alia(pb::CancelBulkyWastePickupRequest {
            pickup_id: ids[0].clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .bulky_waste_pickup
        .unwrap();
    assert_eq!(
        cancelled.status,
        pb::BulkyWastePickupStatus::Cancelled as i32
    );
    let again = f
        .client
        .cancel_bulky_waste_pickup(alia(pb::CancelBulkyWastePickupRequest {
            pickup_id: ids[0].clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let refill = f
        .client
        .book_bulky_waste_pickup(by_citizen(booking(702, "9", 1)))
        .await
        .unwrap()
        .into_inner()
        .bulky_waste_pickup
        .unwrap();
    assert_eq!(refill.pickup_date, first_wednesday.to_string());

    // Outcomes: not before the day; the demo's pickups due today can be recorded.
    let early = f
        .client
        .complete_bulky_waste_pickup(alia(pb::CompleteBulkyWastePickupRequest {
            pickup_id: ids[1].clone(),
            status: pb::BulkyWastePickupStatus::Collected as i32,
            note: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    let due = f
        .client
        .list_bulky_waste_pickups(op(pb::ListBulkyWastePickupsRequest {
            istat_code: PALERMO.into(),
            pickup_date: today().to_string(),
            statuses: vec![pb::BulkyWastePickupStatus::Booked as i32],
            page: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .bulky_waste_pickups;
    assert!(!due.is_empty());
    let missed = f
        .client
        .complete_bulky_waste_pickup(op(pb::CompleteBulkyWastePickupRequest {
            pickup_id: due[0].id.clone(),
            status: pb::BulkyWastePickupStatus::Missed as i32,
            note: "Nessun ingombrante esposto al civico.".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .bulky_waste_pickup
        .unwrap();
    assert_eq!(missed.status, pb::BulkyWastePickupStatus::Missed as i32);

    let mine = f
        .client
        .list_citizen_bulky_waste_pickups(alia(pb::ListCitizenBulkyWastePickupsRequest {
            keys: vec![citizen(600).fiscal_code, citizen(601).fiscal_code],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.items.len(), 2);

    // Bookings and reports counted in Alia's indicators.
    let period = common::Period {
        start_date: (today() - chrono::Duration::days(1)).to_string(),
        end_date: (today() + chrono::Duration::days(1)).to_string(),
    };
    let answer = f
        .indicators
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![ALIA.into()],
            period: Some(period),
        })
        .await
        .unwrap()
        .into_inner();
    let alia = &answer.items[0];
    let codes: Vec<&str> = alia.procedures.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(
        codes,
        ["environment.report", "environment.bulky-waste-pickup"]
    );
    assert!(
        alia.completed_interactions >= 5,
        "{}",
        alia.completed_interactions
    );
}

fn pm10_day(
    station: &str,
    day: NaiveDate,
    value: f64,
    valid: bool,
) -> pb::ImportAirQualityReadingsRequest {
    pb::ImportAirQualityReadingsRequest {
        reading: Some(pb::AirQualityReading {
            station_id: station.into(),
            pollutant: Pollutant::Pm10 as i32,
            averaging: pb::AirQualityAveraging::Day as i32,
            start_time: Some(to_timestamp(day_start(day))),
            concentration: value,
            validity: if valid {
                pb::AirQualityValidity::Valid as i32
            } else {
                pb::AirQualityValidity::Invalid as i32
            },
            verified: true,
        }),
    }
}

async fn pm10_exceedances(
    f: &mut Fixture,
    station: &str,
    year: i32,
) -> (pb::AirQualityExceedance, pb::AirQualityExceedance) {
    let rows = f
        .client
        .list_air_quality_exceedances(pb::ListAirQualityExceedancesRequest {
            station_ids: vec![station.into()],
            year,
            pollutant: Pollutant::Pm10 as i32,
            standard: pb::AirQualityStandard::Eu200850 as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .exceedances;
    assert_eq!(rows.len(), 2, "{rows:?}");
    (rows[0].clone(), rows[1].clone())
}

/// A year of PM10 daily values imported, counted against 50 µg/m³ with 35 days allowed; a
/// correction follows into the count.
async fn air_quality(f: &mut Fixture) {
    let station = f
        .client
        .save_air_quality_station(alia(pb::SaveAirQualityStationRequest {
            station: Some(pb::AirQualityStation {
                name: "Alia - Scuola".into(),
                istat_code: ALIA.into(),
                network: "ARPA Sicilia".into(),
                station_type: pb::AirQualityStationType::Background as i32,
                area_type: pb::AirQualityAreaType::Rural as i32,
                geo: Some(common::GeoPoint {
                    latitude: 37.78,
                    longitude: 13.71,
                }),
                altitude_meters: 720,
                pollutants: vec![Pollutant::Pm10 as i32, Pollutant::No2 as i32],
                active: true,
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .station
        .unwrap();
    let id = station.id.clone();
    let year = today().year() - 1;
    let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| d.year() == year).collect();
    // 36 days at 51 µg/m³, one at 50.4 (rounds to 50: not over), one invalid at 80, the rest 30.
    let rows: Vec<_> = days
        .iter()
        .enumerate()
        .map(|(i, d)| match i {
            0..36 => pm10_day(&id, *d, 51.0, true),
            36 => pm10_day(&id, *d, 50.4, true),
            37 => pm10_day(&id, *d, 80.0, false),
            _ => pm10_day(&id, *d, 30.0, true),
        })
        .collect();
    let answer = f
        .client
        .import_air_quality_readings(alia(futures::stream::iter(rows)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            answer.imported as usize,
            answer.replaced,
            answer.error_count
        ),
        (days.len(), 0, 0)
    );
    let (daily, annual) = pm10_exceedances(f, &id, year).await;
    assert_eq!(daily.metric, pb::AirQualityMetric::DailyMean as i32);
    assert_eq!((daily.limit, daily.allowed_exceedances), (50.0, 35));
    assert_eq!(
        (daily.exceedances, daily.valid_periods, daily.complies),
        (36, days.len() as i32 - 1, false)
    );
    assert_eq!(annual.metric, pb::AirQualityMetric::AnnualMean as i32);
    assert!(annual.annual_mean.unwrap() < 40.0 && annual.complies);

    // The network corrects one day: 35 exceedances are within the allowance.
    let fix = pm10_day(&id, days[0], 45.0, true);
    let answer = f
        .client
        .import_air_quality_readings(alia(futures::stream::iter(vec![fix])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.replaced), (1, 1));
    let (daily, _) = pm10_exceedances(f, &id, year).await;
    assert_eq!((daily.exceedances, daily.complies), (35, true));

    // The daily aggregate follows the readings.
    let summaries = f
        .client
        .list_air_quality_daily_summaries(pb::ListAirQualityDailySummariesRequest {
            station_id: id.clone(),
            pollutant: Pollutant::Pm10 as i32,
            from_date: days[0].to_string(),
            to_date: days[1].to_string(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .daily_summaries;
    let means: Vec<(f64, bool)> = summaries.iter().map(|s| (s.mean, s.complete)).collect();
    assert_eq!(means, [(45.0, true), (51.0, true)]);

    // All or nothing: three wrong rows among a hundred hourly values, nothing written.
    let start = day_start(today() - chrono::Duration::days(10));
    let hourly = |h: i64, value: f64| pb::ImportAirQualityReadingsRequest {
        reading: Some(pb::AirQualityReading {
            station_id: id.clone(),
            pollutant: Pollutant::No2 as i32,
            averaging: pb::AirQualityAveraging::Hour as i32,
            start_time: Some(to_timestamp(start + chrono::Duration::hours(h))),
            concentration: value,
            validity: pb::AirQualityValidity::Valid as i32,
            verified: false,
        }),
    };
    let good: Vec<_> = (0..100)
        .map(|h| hourly(h, 20.0 + (h % 24) as f64))
        .collect();
    let mut bad = good.clone();
    bad[9].reading.as_mut().unwrap().station_id = "no-such-station".into();
    bad[49].reading.as_mut().unwrap().start_time =
        Some(to_timestamp(Utc::now() + chrono::Duration::days(2)));
    bad[89].reading.as_mut().unwrap().concentration = -3.0;
    bad.push(good[0].clone());
    let refused = f
        .client
        .import_air_quality_readings(alia(futures::stream::iter(bad)))
        .await
        .unwrap()
        .into_inner();
    let errors: Vec<(i32, &str)> = refused
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (10, "reading.station_id"),
            (50, "reading.start_time"),
            (90, "reading.concentration"),
            (101, "reading.start_time")
        ]
    );
    assert_eq!((refused.imported, refused.error_count), (0, 4));
    let window = pb::ListAirQualityReadingsRequest {
        station_id: id.clone(),
        pollutant: Pollutant::No2 as i32,
        from_time: Some(to_timestamp(start)),
        to_time: Some(to_timestamp(start + chrono::Duration::hours(100))),
        page: Some(common::PageRequest {
            first: 100,
            after: String::new(),
        }),
        ..Default::default()
    };
    let stored = f
        .client
        .list_air_quality_readings(window.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stored.page_info.unwrap().total_count,
        0,
        "a failed import writes nothing"
    );

    let answer = f
        .client
        .import_air_quality_readings(alia(futures::stream::iter(good)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.replaced), (100, 0));
    let stored = f
        .client
        .list_air_quality_readings(window)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.readings.len(), 100);
    let no2_day = f
        .client
        .list_air_quality_daily_summaries(pb::ListAirQualityDailySummariesRequest {
            station_id: id.clone(),
            pollutant: Pollutant::No2 as i32,
            from_date: (today() - chrono::Duration::days(10)).to_string(),
            to_date: (today() - chrono::Duration::days(10)).to_string(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .daily_summaries;
    assert_eq!(no2_day.len(), 1);
    assert_eq!(
        (
            no2_day[0].mean,
            no2_day[0].max_hourly,
            no2_day[0].valid_hours
        ),
        (31.5, Some(43.0), 24)
    );

    // The demo network: Palermo's stations with their latest values.
    let palermo = f
        .client
        .list_municipality_air_quality(pb::ListMunicipalityAirQualityRequest {
            keys: vec![PALERMO.into(), ALIA.into()],
            pollutant: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let per_comune: Vec<(&str, usize)> = palermo
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.stations.len()))
        .collect();
    assert_eq!(per_comune, [(ALIA, 1), (PALERMO, 4)]);
    assert!(
        palermo.items[1]
            .stations
            .iter()
            .all(|s| !s.latest_readings.is_empty() && !s.latest_daily_summaries.is_empty())
    );
    let demo = f
        .client
        .list_air_quality_exceedances(pb::ListAirQualityExceedancesRequest {
            istat_code: PALERMO.into(),
            pollutant: Pollutant::Pm10 as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .exceedances;
    assert_eq!(
        demo.len(),
        4 * 4,
        "4 stations × PM10 daily and annual of both standards"
    );
}

fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => {
            if s.code() == Code::InvalidArgument {
                let details = s.get_error_details();
                assert!(
                    details
                        .bad_request()
                        .is_some_and(|b| !b.field_violations.is_empty()),
                    "INVALID_ARGUMENT without field violations: {s:?}"
                );
            }
            s.code()
        }
    }
}

/// Every unary RPC answers an empty request with a meaningful status, never UNIMPLEMENTED,
/// INTERNAL or UNKNOWN.
async fn empty_requests(f: &mut Fixture) {
    let c = &mut f.client;
    let invalid = Code::InvalidArgument;
    let ok = Code::Ok;
    let cases: Vec<(&str, Code, Code)> = vec![
        (
            "ListEnvironmentReports",
            code(
                c.list_environment_reports(pb::ListEnvironmentReportsRequest::default())
                    .await,
            ),
            ok,
        ),
        (
            "LookupEnvironmentReports",
            code(
                c.lookup_environment_reports(pb::LookupEnvironmentReportsRequest::default())
                    .await,
            ),
            ok,
        ),
        (
            "ListCitizenEnvironmentReports",
            code(
                c.list_citizen_environment_reports(op(
                    pb::ListCitizenEnvironmentReportsRequest::default(),
                ))
                .await,
            ),
            ok,
        ),
        (
            "CreateEnvironmentReport",
            code(
                c.create_environment_report(by_citizen(
                    pb::CreateEnvironmentReportRequest::default(),
                ))
                .await,
            ),
            invalid,
        ),
        (
            "AcknowledgeEnvironmentReport",
            code(
                c.acknowledge_environment_report(op(
                    pb::AcknowledgeEnvironmentReportRequest::default(),
                ))
                .await,
            ),
            invalid,
        ),
        (
            "StartEnvironmentReport",
            code(
                c.start_environment_report(op(pb::StartEnvironmentReportRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "ResolveEnvironmentReport",
            code(
                c.resolve_environment_report(op(pb::ResolveEnvironmentReportRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "RejectEnvironmentReport",
            code(
                c.reject_environment_report(op(pb::RejectEnvironmentReportRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "AddEnvironmentReportNote",
            code(
                c.add_environment_report_note(op(pb::AddEnvironmentReportNoteRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "ListWasteZones",
            code(
                c.list_waste_zones(pb::ListWasteZonesRequest::default())
                    .await,
            ),
            invalid,
        ),
        (
            "LookupWasteZones",
            code(
                c.lookup_waste_zones(pb::LookupWasteZonesRequest::default())
                    .await,
            ),
            ok,
        ),
        (
            "ListWasteCollections",
            code(
                c.list_waste_collections(pb::ListWasteCollectionsRequest::default())
                    .await,
            ),
            invalid,
        ),
        (
            "ListMunicipalityWasteCalendars",
            code(
                c.list_municipality_waste_calendars(
                    pb::ListMunicipalityWasteCalendarsRequest::default(),
                )
                .await,
            ),
            ok,
        ),
        (
            "ListWasteCalendarChanges",
            code(
                c.list_waste_calendar_changes(pb::ListWasteCalendarChangesRequest::default())
                    .await,
            ),
            invalid,
        ),
        (
            "RescheduleWasteCollection",
            code(
                c.reschedule_waste_collection(
                    alia(pb::RescheduleWasteCollectionRequest::default()),
                )
                .await,
            ),
            invalid,
        ),
        (
            "ReplaceWasteCalendar",
            code(
                c.replace_waste_calendar(alia(pb::ReplaceWasteCalendarRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "ListWasteCollectionCentres",
            code(
                c.list_waste_collection_centres(pb::ListWasteCollectionCentresRequest::default())
                    .await,
            ),
            ok,
        ),
        (
            "LookupWasteCollectionCentres",
            code(
                c.lookup_waste_collection_centres(
                    pb::LookupWasteCollectionCentresRequest::default(),
                )
                .await,
            ),
            ok,
        ),
        (
            "ListBulkyWastePickups",
            code(
                c.list_bulky_waste_pickups(op(pb::ListBulkyWastePickupsRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "LookupBulkyWastePickups",
            code(
                c.lookup_bulky_waste_pickups(op(pb::LookupBulkyWastePickupsRequest::default()))
                    .await,
            ),
            ok,
        ),
        (
            "ListCitizenBulkyWastePickups",
            code(
                c.list_citizen_bulky_waste_pickups(alia(
                    pb::ListCitizenBulkyWastePickupsRequest::default(),
                ))
                .await,
            ),
            ok,
        ),
        (
            "BookBulkyWastePickup",
            code(
                c.book_bulky_waste_pickup(by_citizen(pb::BookBulkyWastePickupRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "CancelBulkyWastePickup",
            code(
                c.cancel_bulky_waste_pickup(alia(pb::CancelBulkyWastePickupRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "CompleteBulkyWastePickup",
            code(
                c.complete_bulky_waste_pickup(alia(pb::CompleteBulkyWastePickupRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "ListAirQualityStations",
            code(
                c.list_air_quality_stations(pb::ListAirQualityStationsRequest::default())
                    .await,
            ),
            ok,
        ),
        (
            "LookupAirQualityStations",
            code(
                c.lookup_air_quality_stations(pb::LookupAirQualityStationsRequest::default())
                    .await,
            ),
            ok,
        ),
        (
            "SaveAirQualityStation",
            code(
                c.save_air_quality_station(alia(pb::SaveAirQualityStationRequest::default()))
                    .await,
            ),
            invalid,
        ),
        (
            "ListAirQualityReadings",
            code(
                c.list_air_quality_readings(pb::ListAirQualityReadingsRequest::default())
                    .await,
            ),
            invalid,
        ),
        (
            "ListAirQualityDailySummaries",
            code(
                c.list_air_quality_daily_summaries(
                    pb::ListAirQualityDailySummariesRequest::default(),
                )
                .await,
            ),
            invalid,
        ),
        (
            "ListAirQualityExceedances",
            code(
                c.list_air_quality_exceedances(pb::ListAirQualityExceedancesRequest::default())
                    .await,
            ),
            invalid,
        ),
        (
            "ListMunicipalityAirQuality",
            code(
                c.list_municipality_air_quality(pb::ListMunicipalityAirQualityRequest::default())
                    .await,
            ),
            ok,
        ),
    ];
    assert_eq!(cases.len(), 31, "every unary RPC of EnvironmentService");
    for (rpc, got, want) in &cases {
        assert_eq!(got, want, "{rpc}");
    }
    let empty_import = c
        .import_air_quality_readings(alia(futures::stream::iter(Vec::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty_import.imported, 0);

    // Field violations name every missing field of a report.
    let status = c
        .create_environment_report(by_citizen(pb::CreateEnvironmentReportRequest::default()))
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
    assert_eq!(fields, ["istat_code", "category", "description", "geo"]);
}

/// Personal data only for the citizen and the comune's operators, and the reporter's fiscal code
/// hidden from everyone else.
async fn access_rule(f: &mut Fixture) {
    let me = citizen(52).fiscal_code;
    let filed = f
        .client
        .create_environment_report(
            Who::citizen(&me).request(pb::CreateEnvironmentReportRequest {
                fiscal_code: String::new(),
                ..report_at(spot(7), Category::Noise, 52)
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .environment_report
        .unwrap();
    assert_eq!(filed.fiscal_code, me, "the reporter sees their own code");
    let anonymous = f
        .client
        .lookup_environment_reports(pb::LookupEnvironmentReportsRequest {
            keys: vec![filed.id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        anonymous.items[0]
            .environment_report
            .as_ref()
            .unwrap()
            .fiscal_code,
        ""
    );
    let operator = f
        .client
        .lookup_environment_reports(Who::operator("082053").request(
            pb::LookupEnvironmentReportsRequest {
                keys: vec![filed.id.clone()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        operator.items[0]
            .environment_report
            .as_ref()
            .unwrap()
            .fiscal_code,
        me
    );

    let refused = f
        .client
        .acknowledge_environment_report(Who::operator("082006").request(
            pb::AcknowledgeEnvironmentReportRequest {
                report_id: filed.id.clone(),
                assigned_to: "Polizia Municipale".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let anonymous_filing = f
        .client
        .create_environment_report(report_at(spot(7), Category::Noise, 52))
        .await
        .unwrap_err();
    assert_eq!(anonymous_filing.code(), Code::Unauthenticated);
    let for_another = f
        .client
        .book_bulky_waste_pickup(Who::citizen(&me).request(booking(600, "7", 1)))
        .await
        .unwrap_err();
    assert_eq!(for_another.code(), Code::PermissionDenied);
    let list = f
        .client
        .list_bulky_waste_pickups(pb::ListBulkyWastePickupsRequest {
            istat_code: ALIA.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(list.code(), Code::Unauthenticated);
    let list = f
        .client
        .list_bulky_waste_pickups(Who::operator("082001").request(
            pb::ListBulkyWastePickupsRequest {
                istat_code: ALIA.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(list.bulky_waste_pickups.len() >= 4);
    // A citizen lists their own pickups; naming another citizen too is refused whole.
    let as_600 = Who::citizen(&citizen(600).fiscal_code);
    let mixed = f
        .client
        .list_citizen_bulky_waste_pickups(as_600.request(pb::ListCitizenBulkyWastePickupsRequest {
            keys: vec![citizen(600).fiscal_code, citizen(601).fiscal_code],
        }))
        .await
        .unwrap_err();
    assert_eq!(mixed.code(), Code::PermissionDenied);
    let visible = f
        .client
        .list_citizen_bulky_waste_pickups(as_600.request(pb::ListCitizenBulkyWastePickupsRequest {
            keys: vec![citizen(600).fiscal_code],
        }))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = visible.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, [citizen(600).fiscal_code.as_str()], "their own");
    // Palermo's operator asks for the same citizens: Alia's pickups are not Palermo's to see.
    let elsewhere = f
        .client
        .list_citizen_bulky_waste_pickups(op(pb::ListCitizenBulkyWastePickupsRequest {
            keys: vec![citizen(600).fiscal_code, citizen(601).fiscal_code],
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(elsewhere.items.is_empty(), "{elsewhere:?}");
}

async fn whole_suite(db: DatabaseConnection) {
    let mut f = start(db).await;
    duplicates_are_linked(&mut f).await;
    workflow(&mut f).await;
    watch(&mut f).await;
    waste_calendar(&mut f).await;
    bulky_pickups(&mut f).await;
    air_quality(&mut f).await;
    empty_requests(&mut f).await;
    access_rule(&mut f).await;
    f.server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environment_on_sqlite() {
    whole_suite(testing::sqlite::<Migrator>().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environment_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    whole_suite(pg.migrated::<Migrator>().await.expect("migrate")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_covers_every_comune_and_seeds_once() {
    let store = Store::new(testing::sqlite::<Migrator>().await, SALT);
    let now = Utc::now();
    assert!(demo::seed(&store, now).await.unwrap() > 0);
    assert_eq!(
        demo::seed(&store, now).await.unwrap(),
        0,
        "a second seed adds nothing"
    );
    let server = serve(store).await;
    let mut client = EnvironmentServiceClient::new(server.channel().await);
    for comune in patto_service_kit::comuni::all() {
        let week = client
            .list_waste_collections(pb::ListWasteCollectionsRequest {
                address: Some(common::Address {
                    street: "Via Roma".into(),
                    house_number: "1".into(),
                    istat_code: comune.istat_code.clone(),
                    ..Default::default()
                }),
                user_type: UserType::Domestic as i32,
                days: 7,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(week.collections.len() >= 6, "{}", comune.name);
        let reports = client
            .list_environment_reports(pb::ListEnvironmentReportsRequest {
                istat_code: comune.istat_code.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!reports.environment_reports.is_empty(), "{}", comune.name);
    }
    server.stop().await.expect("clean stop");
}

/// A fresh service with Alia's calendar (bulky waste on Wednesdays in Via Roma 1–99).
async fn alia_service() -> (TestServer, EnvironmentServiceClient<Channel>) {
    let server = serve(Store::new(testing::sqlite::<Migrator>().await, SALT)).await;
    let mut client = EnvironmentServiceClient::new(server.channel().await);
    client
        .replace_waste_calendar(alia(alia_setup(monday_after(
            today() + chrono::Duration::days(60),
        ))))
        .await
        .expect("Alia's calendar");
    (server, client)
}

/// The access rule over real gRPC, cell by cell, on a citizen's bulky-waste pickup in Alia and a
/// report they filed there: the comune's list of pickups, the citizen's pickups listed under their
/// fiscal code (and how many show), a lookup (which leaves out what the caller may not see), the
/// reporter's code on the report, and cancelling the pickup (a change for the citizen).
#[tokio::test]
async fn access_matrix() {
    let (server, mut client) = alia_service().await;
    let me = citizen(801).fiscal_code;
    let report = client
        .create_environment_report(
            Who::citizen(&me).request(pb::CreateEnvironmentReportRequest {
                istat_code: ALIA.into(),
                ..report_at(spot(9), Category::Noise, 801)
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .environment_report
        .unwrap();
    let ok = None;
    let denied = Some(Code::PermissionDenied);
    let unauthenticated = Some(Code::Unauthenticated);
    // (caller, comune list, (citizen listing, rows), lookup rows, reporter named, cancel)
    let cases = [
        (
            "the citizen",
            Who::citizen(&me),
            denied,
            (ok, 1),
            1,
            true,
            ok,
        ),
        (
            "another citizen",
            Who::citizen(&citizen(802).fiscal_code),
            denied,
            (denied, 0),
            0,
            false,
            denied,
        ),
        (
            "operator, same comune",
            Who::operator(ALIA),
            ok,
            (ok, 1),
            1,
            true,
            ok,
        ),
        (
            "system, same comune",
            Who::system(ALIA),
            ok,
            (ok, 1),
            1,
            true,
            ok,
        ),
        (
            "operator, other comune",
            Who::operator(PALERMO),
            denied,
            (ok, 0),
            0,
            false,
            denied,
        ),
        (
            "system, other comune",
            Who::system(PALERMO),
            denied,
            (ok, 0),
            0,
            false,
            denied,
        ),
        (
            "anonymous",
            Who::Anonymous,
            unauthenticated,
            (unauthenticated, 0),
            0,
            false,
            unauthenticated,
        ),
    ];
    for (name, who, comune_list, (listing, listed), looked_up, named, cancel) in cases {
        let mine = client
            .book_bulky_waste_pickup(Who::citizen(&me).request(booking(801, "7", 1)))
            .await
            .unwrap_or_else(|e| panic!("{name}: book: {e:?}"))
            .into_inner()
            .bulky_waste_pickup
            .unwrap();
        let shows =
            |items: Vec<pb::BulkyWastePickup>| items.iter().filter(|p| p.id == mine.id).count();

        let got = client
            .list_bulky_waste_pickups(who.request(pb::ListBulkyWastePickupsRequest {
                istat_code: ALIA.into(),
                ..Default::default()
            }))
            .await;
        assert_eq!(code_of(&got), comune_list, "{name}: comune list");
        if let Ok(answer) = got {
            assert_eq!(shows(answer.into_inner().bulky_waste_pickups), 1, "{name}");
        }

        let got = client
            .list_citizen_bulky_waste_pickups(who.request(
                pb::ListCitizenBulkyWastePickupsRequest {
                    keys: vec![me.clone()],
                },
            ))
            .await;
        assert_eq!(code_of(&got), listing, "{name}: citizen listing");
        if let Ok(answer) = got {
            let items = answer.into_inner().items;
            let rows = items
                .into_iter()
                .flat_map(|i| i.bulky_waste_pickups)
                .collect();
            assert_eq!(shows(rows), listed, "{name}: citizen listing rows");
        }

        let found = client
            .lookup_bulky_waste_pickups(who.request(pb::LookupBulkyWastePickupsRequest {
                keys: vec![mine.id.clone()],
            }))
            .await
            .unwrap_or_else(|e| panic!("{name}: lookup: {e:?}"))
            .into_inner()
            .items;
        assert_eq!(found.len(), looked_up, "{name}: lookup");

        let shown = client
            .lookup_environment_reports(who.request(pb::LookupEnvironmentReportsRequest {
                keys: vec![report.id.clone()],
            }))
            .await
            .unwrap_or_else(|e| panic!("{name}: report: {e:?}"))
            .into_inner()
            .items
            .remove(0)
            .environment_report
            .unwrap();
        let want = if named { me.as_str() } else { "" };
        assert_eq!(shown.fiscal_code, want, "{name}: reporter");

        let got = client
            .cancel_bulky_waste_pickup(who.request(pb::CancelBulkyWastePickupRequest {
                pickup_id: mine.id.clone(),
            }))
            .await;
        assert_eq!(code_of(&got), cancel, "{name}: cancel");
        let now = client
            .lookup_bulky_waste_pickups(Who::citizen(&me).request(
                pb::LookupBulkyWastePickupsRequest {
                    keys: vec![mine.id.clone()],
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .items
            .remove(0)
            .bulky_waste_pickup
            .unwrap();
        let want = if got.is_ok() {
            pb::BulkyWastePickupStatus::Cancelled
        } else {
            pb::BulkyWastePickupStatus::Booked
        };
        assert_eq!(
            now.status, want as i32,
            "{name}: a refused change changes nothing"
        );
        if got.is_err() {
            // Free the day for the next row.
            client
                .cancel_bulky_waste_pickup(Who::citizen(&me).request(
                    pb::CancelBulkyWastePickupRequest {
                        pickup_id: mine.id.clone(),
                    },
                ))
                .await
                .unwrap();
        }
    }
    server.stop().await.expect("clean stop");
}

/// Reads of a citizen's data by others are recorded before the answer leaves; each side lists its
/// own log.
#[tokio::test]
async fn audit_of_personal_data_reads() {
    let (server, mut client) = alia_service().await;
    let channel = server.channel().await;
    let me = citizen(811).fiscal_code;
    let mine = client
        .book_bulky_waste_pickup(Who::citizen(&me).request(booking(811, "7", 1)))
        .await
        .unwrap()
        .into_inner()
        .bulky_waste_pickup
        .unwrap();

    // Alia's operator reads the pickup, declaring the purpose.
    let request = Who::operator(ALIA).request_with_purpose(
        pb::LookupBulkyWastePickupsRequest {
            keys: vec![mine.id.clone()],
        },
        "purpose-ingombranti",
    );
    let found = client
        .lookup_bulky_waste_pickups(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.items.len(), 1);
    // The citizen's own read, and Palermo's operator who sees nothing, record nothing.
    for who in [Who::citizen(&me), Who::operator(PALERMO)] {
        client
            .lookup_bulky_waste_pickups(who.request(pb::LookupBulkyWastePickupsRequest {
                keys: vec![mine.id.clone()],
            }))
            .await
            .unwrap();
    }
    let entries = personal_data_reads(&channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        read_row(&entries[0]),
        [
            "operator",
            "operator@082001",
            ALIA,
            me.as_str(),
            ALIA,
            "environment.BulkyWastePickup",
            "purpose-ingombranti",
            "environment",
        ]
    );
    let alia = personal_data_reads(&channel, &Who::system(ALIA), "", ALIA).await;
    assert_eq!(alia.unwrap().len(), 1);
    assert_refused(
        personal_data_reads(&channel, &Who::operator(PALERMO), "", ALIA).await,
        Code::PermissionDenied,
        "another comune's log",
    );
    assert_refused(
        personal_data_reads(&channel, &Who::Anonymous, "", "").await,
        Code::Unauthenticated,
        "an anonymous caller",
    );

    // Naming the reporter of a report is a read of their data too; a public listing is not.
    let report = client
        .create_environment_report(
            Who::citizen(&me).request(pb::CreateEnvironmentReportRequest {
                istat_code: ALIA.into(),
                ..report_at(spot(9), Category::Noise, 811)
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .environment_report
        .unwrap();
    let public = client
        .list_environment_reports(pb::ListEnvironmentReportsRequest {
            istat_code: ALIA.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        public
            .environment_reports
            .iter()
            .all(|r| r.fiscal_code.is_empty())
    );
    let listed = client
        .list_environment_reports(
            Who::system(ALIA).request(pb::ListEnvironmentReportsRequest {
                istat_code: ALIA.into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .environment_reports
            .iter()
            .any(|r| r.id == report.id && r.fiscal_code == me)
    );
    let entries = personal_data_reads(&channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        (entries[0].reader_role.as_str(), entries[0].what.as_str()),
        ("system", "environment.EnvironmentReport"),
        "newest first"
    );
    server.stop().await.expect("clean stop");
}
