//! The employment service end to end over real gRPC, on SQLite and on PostgreSQL: 100 concurrent
//! enrolments on 20 seats fill the seats and the waiting list in arrival order, withdrawals promote
//! the head of the list, the watch stream follows an enrolment through it, bad input names its
//! field, imports are all-or-nothing, job applications go through their review, the access rule
//! holds cell by cell, reads of personal data by others are audited, and completed interactions show
//! in the indicators.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use patto_employment::{Migrator, demo, store::Store};
use patto_proto::common::v1 as common;
use patto_proto::common::v1::indicators_service_client::IndicatorsServiceClient;
use patto_proto::employment::v1 as pb;
use patto_proto::employment::v1::employment_service_client::EmploymentServiceClient;
use patto_service_kit::demo::citizen;
use patto_service_kit::testing::{
    self, HeaderPrincipal, TestPostgres, TestServer, Who, assert_refused, code_of,
    personal_data_reads, read_row,
};
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

const SALT: &str = "test-salt";
const PALERMO: &str = "082053";
const BAGHERIA: &str = "082006";

/// `message` from an operator of Palermo, whose courses and offers most of the suite runs.
fn op<T>(message: T) -> Request<T> {
    Who::operator(PALERMO).request(message)
}

/// `message` from the system of Bagheria, which imports its catalogue.
fn bagheria<T>(message: T) -> Request<T> {
    Who::system(BAGHERIA).request(message)
}

/// The citizen's own request, sent by them: an online interaction.
trait Applicant {
    fn fiscal_code(&self) -> &str;
}

impl Applicant for pb::CreateEnrolmentRequest {
    fn fiscal_code(&self) -> &str {
        &self.fiscal_code
    }
}

impl Applicant for pb::CreateJobApplicationRequest {
    fn fiscal_code(&self) -> &str {
        &self.fiscal_code
    }
}

fn by_applicant<T: Applicant>(message: T) -> Request<T> {
    Who::citizen(message.fiscal_code()).request(message)
}

/// A server over `store` that reads the caller from the test header.
async fn serve(store: Store) -> TestServer {
    TestServer::start(patto_employment::app(store).with_authenticator(Arc::new(HeaderPrincipal)))
        .await
}

struct Fixture {
    server: TestServer,
    client: EmploymentServiceClient<Channel>,
    indicators: IndicatorsServiceClient<Channel>,
}

async fn start(db: DatabaseConnection) -> Fixture {
    let store = Store::new(db, SALT);
    let seeded = demo::seed(&store, Utc::now()).await.expect("seed");
    assert!(seeded.offers > 82 && seeded.courses >= 82, "{seeded:?}");
    let server = serve(store).await;
    let channel = server.channel().await;
    Fixture {
        client: EmploymentServiceClient::new(channel.clone()),
        indicators: IndicatorsServiceClient::new(channel),
        server,
    }
}

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

fn course(istat: &str, seats: i32, waitlist_limit: i32) -> pb::TrainingCourse {
    pb::TrainingCourse {
        istat_code: istat.into(),
        title: "Operatore della ristorazione".into(),
        description: "Corso con stage in azienda.".into(),
        provider: Some(pb::TrainingProvider {
            name: "Ente di formazione Esempio".into(),
            tax_code: "00743110157".into(),
            accreditation_code: "AR00001".into(),
        }),
        eqf_level: 3,
        qualification: "Operatore della ristorazione".into(),
        hours: 600,
        seats,
        waitlist_limit,
        start_date: day(40),
        end_date: day(200),
        enrolment_deadline: day(30),
        cost: Some(common::Money { cents: 0 }),
        delivery_mode: pb::TrainingDeliveryMode::Online as i32,
        profession_codes: vec!["5.2.2.1.0".into()],
        funding_programme: "FSE+ Sicilia 2021-2027".into(),
        ..Default::default()
    }
}

async fn publish_course(
    client: &mut EmploymentServiceClient<Channel>,
    c: pb::TrainingCourse,
) -> pb::TrainingCourse {
    client
        .publish_training_course(op(pb::PublishTrainingCourseRequest {
            training_course: Some(c),
        }))
        .await
        .expect("publish course")
        .into_inner()
        .training_course
        .expect("course")
}

fn enrolment(course_id: &str, n: usize) -> pb::CreateEnrolmentRequest {
    pb::CreateEnrolmentRequest {
        training_course_id: course_id.into(),
        fiscal_code: citizen(n).fiscal_code,
        requirements_declared: true,
        contact_email: format!("citizen{n}@example.it"),
        contact_phone: String::new(),
    }
}

async fn enrol(
    client: &mut EmploymentServiceClient<Channel>,
    course_id: &str,
    n: usize,
) -> pb::Enrolment {
    client
        .create_enrolment(by_applicant(enrolment(course_id, n)))
        .await
        .expect("enrol")
        .into_inner()
        .enrolment
        .expect("enrolment")
}

async fn lookup_enrolment(
    client: &mut EmploymentServiceClient<Channel>,
    who: &Who,
    id: &str,
) -> pb::Enrolment {
    client
        .lookup_enrolments(who.request(pb::LookupEnrolmentsRequest {
            keys: vec![id.into()],
        }))
        .await
        .expect("lookup")
        .into_inner()
        .items
        .pop()
        .and_then(|i| i.enrolment)
        .expect("enrolment found")
}

async fn lookup_course(
    client: &mut EmploymentServiceClient<Channel>,
    id: &str,
) -> pb::TrainingCourse {
    client
        .lookup_training_courses(pb::LookupTrainingCoursesRequest {
            keys: vec![id.into()],
        })
        .await
        .expect("lookup")
        .into_inner()
        .items
        .pop()
        .and_then(|i| i.training_course)
        .expect("course found")
}

/// Every enrolment of a course, through ListEnrolments' pages.
async fn all_enrolments(
    client: &mut EmploymentServiceClient<Channel>,
    course_id: &str,
    statuses: Vec<i32>,
) -> Vec<pb::Enrolment> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = client
            .list_enrolments(op(pb::ListEnrolmentsRequest {
                training_course_id: course_id.into(),
                statuses: statuses.clone(),
                page: Some(common::PageRequest {
                    first: 30,
                    after: after.clone(),
                }),
            }))
            .await
            .expect("list enrolments")
            .into_inner();
        out.extend(page.enrolments);
        let info = page.page_info.expect("page info");
        if !info.has_next_page {
            assert_eq!(info.total_count as usize, out.len());
            return out;
        }
        after = info.end_cursor;
    }
}

fn status(e: &pb::Enrolment) -> pb::EnrolmentStatus {
    pb::EnrolmentStatus::try_from(e.status).unwrap()
}

fn time(e: &pb::Enrolment) -> (i64, i32) {
    let t = e.created_time.as_ref().expect("created time");
    (t.seconds, t.nanos)
}

fn positions(list: &[pb::Enrolment]) -> Vec<i32> {
    list.iter().map(|e| e.waitlist_position).collect()
}

async fn next(s: &mut tonic::Streaming<pb::WatchEnrolmentResponse>) -> pb::WatchEnrolmentResponse {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("update in time")
        .expect("stream open")
        .expect("update")
}

/// 100 concurrent enrolments on 20 seats: exactly 20 enrolled and 80 waitlisted at positions
/// 1..=80 in the order the database committed them. Withdrawals then promote the head of the list
/// and move everyone up, and a watcher follows one enrolment through it all.
async fn seats_and_waiting_list(f: &mut Fixture) {
    let c = publish_course(&mut f.client, course(PALERMO, 20, 0)).await;
    assert_eq!((c.seats_left, c.waitlist_length), (20, 0));
    let calls = (0..100).map(|n| {
        let mut client = f.client.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            client
                .create_enrolment(by_applicant(enrolment(&id, 1_000 + n)))
                .await
        })
    });
    let mut answers = Vec::new();
    for r in futures::future::join_all(calls).await {
        answers.push(
            r.expect("task")
                .expect("every enrolment is accepted")
                .into_inner()
                .enrolment
                .unwrap(),
        );
    }
    let enrolled: Vec<_> = answers
        .iter()
        .filter(|e| status(e) == pb::EnrolmentStatus::Enrolled)
        .collect();
    let mut waiting: Vec<_> = answers
        .iter()
        .filter(|e| status(e) == pb::EnrolmentStatus::Waitlisted)
        .cloned()
        .collect();
    assert_eq!((enrolled.len(), waiting.len()), (20, 80));
    assert!(
        enrolled
            .iter()
            .all(|e| e.waitlist_position == 0 && e.enrolled_time.is_some())
    );
    // Arrival order: by the instant each was committed, the positions run 1..=80 with no gap or
    // repeat, and every seat went to an earlier arrival than any waiting place.
    waiting.sort_by_key(time);
    assert_eq!(positions(&waiting), (1..=80).collect::<Vec<_>>());
    let last_seat = enrolled.iter().map(|e| time(e)).max().unwrap();
    assert!(last_seat <= time(&waiting[0]), "seats went first");

    let listed = all_enrolments(&mut f.client, &c.id, vec![]).await;
    assert_eq!(listed.len(), 100);
    assert!(
        listed[..20]
            .iter()
            .all(|e| status(e) == pb::EnrolmentStatus::Enrolled)
    );
    assert_eq!(positions(&listed[20..]), (1..=80).collect::<Vec<_>>());
    let after = lookup_course(&mut f.client, &c.id).await;
    assert_eq!((after.seats_left, after.waitlist_length), (0, 80));

    // The watcher follows the second in line.
    let watched = listed[21].clone();
    assert_eq!(watched.waitlist_position, 2);
    let mut stream = f
        .client
        .watch_enrolment(op(pb::WatchEnrolmentRequest {
            enrolment_id: watched.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await;
    assert_eq!(
        (
            first.enrolment.as_ref().unwrap().waitlist_position,
            first.seats_left,
            first.waitlist_length
        ),
        (2, 0, 80)
    );

    // A seat frees: the first in line takes it at once, and everyone behind moves up.
    let head = listed[20].clone();
    let withdrawn = f
        .client
        .withdraw_enrolment(op(pb::WithdrawEnrolmentRequest {
            enrolment_id: listed[0].id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .enrolment
        .unwrap();
    assert_eq!(status(&withdrawn), pb::EnrolmentStatus::Withdrawn);
    assert!(withdrawn.ended_time.is_some());
    let promoted = lookup_enrolment(&mut f.client, &Who::operator(PALERMO), &head.id).await;
    assert_eq!(status(&promoted), pb::EnrolmentStatus::Enrolled);
    assert!(promoted.promoted && promoted.enrolled_time.is_some());
    assert_eq!(promoted.waitlist_position, 0);
    let update = next(&mut stream).await;
    assert_eq!(
        (
            update.enrolment.as_ref().unwrap().waitlist_position,
            update.seats_left,
            update.waitlist_length
        ),
        (1, 0, 79)
    );
    let waiting = all_enrolments(
        &mut f.client,
        &c.id,
        vec![pb::EnrolmentStatus::Waitlisted as i32],
    )
    .await;
    assert_eq!(positions(&waiting), (1..=79).collect::<Vec<_>>());
    assert_eq!(waiting[0].id, watched.id);

    // A waiting place frees: those behind it move up, those ahead stay.
    let fifth = waiting[4].clone();
    f.client
        .withdraw_enrolment(op(pb::WithdrawEnrolmentRequest {
            enrolment_id: fifth.id.clone(),
        }))
        .await
        .unwrap();
    let update = next(&mut stream).await;
    assert_eq!(
        (
            update.enrolment.as_ref().unwrap().waitlist_position,
            update.waitlist_length
        ),
        (1, 78)
    );
    let again = all_enrolments(
        &mut f.client,
        &c.id,
        vec![pb::EnrolmentStatus::Waitlisted as i32],
    )
    .await;
    assert_eq!(positions(&again), (1..=78).collect::<Vec<_>>());
    assert_eq!(again[3].id, waiting[3].id);
    assert_eq!(again[4].id, waiting[5].id);

    // Another seat frees: the watched enrolment is promoted, and the stream says so.
    f.client
        .withdraw_enrolment(op(pb::WithdrawEnrolmentRequest {
            enrolment_id: listed[1].id.clone(),
        }))
        .await
        .unwrap();
    let update = next(&mut stream).await;
    let e = update.enrolment.as_ref().unwrap();
    assert_eq!(
        (status(e), e.waitlist_position, e.promoted),
        (pb::EnrolmentStatus::Enrolled, 0, true)
    );
    assert_eq!((update.seats_left, update.waitlist_length), (0, 77));

    // Withdrawing it ends the stream: a withdrawn enrolment cannot change any more.
    f.client
        .withdraw_enrolment(op(pb::WithdrawEnrolmentRequest {
            enrolment_id: watched.id.clone(),
        }))
        .await
        .unwrap();
    let last = next(&mut stream).await;
    assert_eq!(
        status(last.enrolment.as_ref().unwrap()),
        pb::EnrolmentStatus::Withdrawn
    );
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("stream ends");
    assert!(end.is_none(), "{end:?}");

    let twice = f
        .client
        .withdraw_enrolment(op(pb::WithdrawEnrolmentRequest {
            enrolment_id: watched.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    // 100 arrived, 4 withdrew (2 seats, 2 places), each freed seat went to the list: 20 + 76.
    let enrolled = all_enrolments(
        &mut f.client,
        &c.id,
        vec![pb::EnrolmentStatus::Enrolled as i32],
    )
    .await;
    let waiting = all_enrolments(
        &mut f.client,
        &c.id,
        vec![pb::EnrolmentStatus::Waitlisted as i32],
    )
    .await;
    assert_eq!((enrolled.len(), waiting.len()), (20, 76));
    assert_eq!(positions(&waiting), (1..=76).collect::<Vec<_>>());
}

/// Duplicates, a full waiting list, closing and cancelling.
async fn enrolment_rules(f: &mut Fixture) {
    let c = publish_course(&mut f.client, course(PALERMO, 1, 1)).await;
    assert_eq!(
        status(&enrol(&mut f.client, &c.id, 1).await),
        pb::EnrolmentStatus::Enrolled
    );
    let dup = f
        .client
        .create_enrolment(by_applicant(enrolment(&c.id, 1)))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
    // The omocodic variant of a code is the same citizen.
    let mut variant = enrolment(&c.id, 1);
    variant.fiscal_code = omocodic(&variant.fiscal_code);
    let dup = f
        .client
        .create_enrolment(by_applicant(variant))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
    let w = enrol(&mut f.client, &c.id, 2).await;
    assert_eq!(
        (status(&w), w.waitlist_position),
        (pb::EnrolmentStatus::Waitlisted, 1)
    );
    let full = f
        .client
        .create_enrolment(by_applicant(enrolment(&c.id, 3)))
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition);
    assert!(
        full.message().contains("waiting list is full"),
        "{}",
        full.message()
    );

    let closed = f
        .client
        .close_training_course(op(pb::CloseTrainingCourseRequest {
            training_course_id: c.id.clone(),
            note: "Iscrizioni chiuse in anticipo".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .training_course
        .unwrap();
    assert_eq!(closed.status, pb::TrainingCourseStatus::Closed as i32);
    let refused = f
        .client
        .create_enrolment(by_applicant(enrolment(&c.id, 4)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("closed"),
        "{}",
        refused.message()
    );

    let cancelled = f
        .client
        .cancel_training_course(op(pb::CancelTrainingCourseRequest {
            training_course_id: c.id.clone(),
            reason: "Numero minimo di partecipanti non raggiunto".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.enrolments_cancelled, 2);
    let course = cancelled.training_course.unwrap();
    assert_eq!(
        (course.status, course.seats_left, course.waitlist_length),
        (pb::TrainingCourseStatus::Cancelled as i32, 0, 0)
    );
    assert_eq!(
        status(&lookup_enrolment(&mut f.client, &Who::operator(PALERMO), &w.id).await),
        pb::EnrolmentStatus::Cancelled
    );
    let again = f
        .client
        .cancel_training_course(op(pb::CancelTrainingCourseRequest {
            training_course_id: c.id.clone(),
            reason: "di nuovo".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let missing = f
        .client
        .create_enrolment(by_applicant(enrolment("no-such-course", 1)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let mine = f
        .client
        .list_citizen_enrolments(Who::citizen(&citizen(2).fiscal_code).request(
            pb::ListCitizenEnrolmentsRequest {
                keys: vec![citizen(2).fiscal_code],
                statuses: vec![pb::EnrolmentStatus::Cancelled as i32],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.items.len(), 1);
    assert!(mine.items[0].enrolments.iter().any(|e| e.id == w.id));
}

/// Replaces the last digit of a codice fiscale that can take an omocodia letter.
fn omocodic(cf: &str) -> String {
    let mut chars: Vec<char> = cf.chars().collect();
    let d = chars[14].to_digit(10).expect("digit at position 15") as usize;
    chars[14] = "LMNPQRSTUV".chars().nth(d).unwrap();
    let first15: String = chars[..15].iter().collect();
    patto_service_kit::ids::fiscal_code_with_check(&first15)
}

fn offer(title: &str, anonymous: bool) -> pb::JobOffer {
    pb::JobOffer {
        istat_code: PALERMO.into(),
        title: title.into(),
        description: "Cucina tradizionale siciliana, turni serali.".into(),
        profession_code: "5.2.2.1.0".into(),
        ateco_code: "56.11.10".into(),
        employer: Some(pb::Employer {
            name: "Osteria dei Vespri s.r.l.".into(),
            tax_code: "00743110157".into(),
            anonymous,
        }),
        contract_type: pb::JobContractType::FixedTerm as i32,
        weekly_hours: 40,
        duration_months: 6,
        positions: 1,
        application_deadline: day(20),
        requirements: "Attestato HACCP.".into(),
        annual_gross_pay_min: Some(common::Money { cents: 2_000_000 }),
        annual_gross_pay_max: Some(common::Money { cents: 2_300_000 }),
        ..Default::default()
    }
}

fn application(offer_id: &str, n: usize) -> pb::CreateJobApplicationRequest {
    pb::CreateJobApplicationRequest {
        job_offer_id: offer_id.into(),
        fiscal_code: citizen(n).fiscal_code,
        message: "Ho lavorato tre anni in trattoria.".into(),
        cv: Some(pb::JobApplicationAttachment {
            file_name: "cv.pdf".into(),
            sha256: "0f".repeat(32),
            size_bytes: 180_000,
            media_type: "application/pdf".into(),
        }),
        contact_email: format!("citizen{n}@example.it"),
        contact_phone: "+39 333 1234567".into(),
        consent_to_share: true,
    }
}

async fn palermo_interactions(f: &mut Fixture) -> i64 {
    let today = Utc::now().date_naive();
    f.indicators
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![PALERMO.into()],
            period: Some(common::Period {
                start_date: (today - chrono::Duration::days(1)).to_string(),
                end_date: (today + chrono::Duration::days(1)).to_string(),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .items[0]
        .completed_interactions
}

/// Offers: published, found by the filters, applied to once per citizen, reviewed to an outcome
/// (which counts in the indicators), closed.
async fn offers_and_applications(f: &mut Fixture) {
    let published = f
        .client
        .publish_job_offer(op(pb::PublishJobOfferRequest {
            job_offer: Some(offer("Cuoco per osteria dei Vespri", true)),
        }))
        .await
        .unwrap()
        .into_inner()
        .job_offer
        .unwrap();
    assert_eq!(published.status, pb::JobOfferStatus::Open as i32);
    assert_eq!(published.profession_name, "Cuochi in alberghi e ristoranti");
    assert_eq!(
        published.employer.as_ref().unwrap().name,
        "Osteria dei Vespri s.r.l."
    );

    // Found by words (accents and case folded), profession prefix, sector prefix and contract type;
    // the anonymous employer is hidden from the public.
    let found = f
        .client
        .list_job_offers(pb::ListJobOffersRequest {
            istat_codes: vec![PALERMO.into()],
            text: "OSTERIA vespri".into(),
            profession_code: "5.2".into(),
            ateco_code: "56.11".into(),
            contract_types: vec![pb::JobContractType::FixedTerm as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.job_offers.len(), 1, "{:?}", found.job_offers);
    let shown = found.job_offers[0].employer.as_ref().unwrap();
    assert!(shown.anonymous && shown.name.is_empty() && shown.tax_code.is_empty());
    let none = f
        .client
        .list_job_offers(pb::ListJobOffersRequest {
            text: "osteria vespri".into(),
            profession_code: "2.1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.job_offers.is_empty());

    let before = palermo_interactions(f).await;
    let a = f
        .client
        .create_job_application(by_applicant(application(&published.id, 7)))
        .await
        .unwrap()
        .into_inner()
        .job_application
        .unwrap();
    assert_eq!(a.status, pb::JobApplicationStatus::Submitted as i32);
    assert_eq!(a.istat_code, PALERMO);
    assert!(a.cv.is_some());
    let dup = f
        .client
        .create_job_application(by_applicant(application(&published.id, 7)))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let b = f
        .client
        .create_job_application(by_applicant(application(&published.id, 8)))
        .await
        .unwrap()
        .into_inner()
        .job_application
        .unwrap();
    let withdrawn = f
        .client
        .withdraw_job_application(op(pb::WithdrawJobApplicationRequest {
            job_application_id: b.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .job_application
        .unwrap();
    assert_eq!(withdrawn.status, pb::JobApplicationStatus::Withdrawn as i32);
    let count = f
        .client
        .lookup_job_offers(pb::LookupJobOffersRequest {
            keys: vec![published.id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .items[0]
        .job_offer
        .as_ref()
        .unwrap()
        .applications_count;
    assert_eq!(count, 1, "withdrawn applications do not count");

    let listed = f
        .client
        .list_job_applications(op(pb::ListJobApplicationsRequest {
            job_offer_id: published.id.clone(),
            statuses: vec![pb::JobApplicationStatus::Submitted as i32],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.job_applications.len(), 1);
    assert_eq!(listed.page_info.unwrap().total_count, 1);

    // A refusal must say why; reviews move forward; an outcome finishes the procedure.
    let review = |status: pb::JobApplicationStatus, note: &str| pb::ReviewJobApplicationRequest {
        job_application_id: a.id.clone(),
        status: status as i32,
        note: note.into(),
    };
    let why = f
        .client
        .review_job_application(op(review(pb::JobApplicationStatus::NotSelected, "")))
        .await
        .unwrap_err();
    assert_eq!(fields(&why), ["note"]);
    f.client
        .review_job_application(op(review(
            pb::JobApplicationStatus::Shortlisted,
            "Colloquio il 3 alle 10",
        )))
        .await
        .unwrap();
    let back = f
        .client
        .review_job_application(op(review(pb::JobApplicationStatus::UnderReview, "")))
        .await
        .unwrap_err();
    assert_eq!(back.code(), Code::FailedPrecondition);
    let hired = f
        .client
        .review_job_application(op(review(
            pb::JobApplicationStatus::Hired,
            "Assunzione dal 1° del mese",
        )))
        .await
        .unwrap()
        .into_inner()
        .job_application
        .unwrap();
    assert_eq!(hired.status, pb::JobApplicationStatus::Hired as i32);
    assert_eq!(
        palermo_interactions(f).await,
        before + 1,
        "the outcome is the completed interaction"
    );
    let late = f
        .client
        .withdraw_job_application(op(pb::WithdrawJobApplicationRequest {
            job_application_id: a.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);

    let mine = f
        .client
        .list_citizen_job_applications(op(pb::ListCitizenJobApplicationsRequest {
            keys: vec![citizen(7).fiscal_code.to_lowercase()],
            statuses: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(
        mine.items[0].key,
        citizen(7).fiscal_code.to_lowercase(),
        "answered under the key sent"
    );

    let closed = f
        .client
        .close_job_offer(op(pb::CloseJobOfferRequest {
            job_offer_id: published.id.clone(),
            note: "Posizione coperta".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .job_offer
        .unwrap();
    assert_eq!(closed.status, pb::JobOfferStatus::Closed as i32);
    assert!(closed.closed_time.is_some());
    let refused = f
        .client
        .create_job_application(by_applicant(application(&published.id, 9)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let again = f
        .client
        .close_job_offer(op(pb::CloseJobOfferRequest {
            job_offer_id: published.id.clone(),
            note: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let gone = f
        .client
        .list_job_offers(pb::ListJobOffersRequest {
            text: "osteria vespri".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        gone.job_offers.is_empty(),
        "closed offers are left out by default"
    );
    let missing = f
        .client
        .create_job_application(by_applicant(application("no-such-offer", 1)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

fn fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Bad input answers INVALID_ARGUMENT naming each field; every unary RPC answers an empty request
/// with a meaningful status, never UNIMPLEMENTED, INTERNAL or UNKNOWN.
async fn bad_input(f: &mut Fixture) {
    let status = f
        .client
        .create_enrolment(by_applicant(pb::CreateEnrolmentRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&status),
        [
            "training_course_id",
            "fiscal_code",
            "requirements_declared",
            "contact_email"
        ]
    );
    let mut o = offer("x", false);
    o.profession_code = "5.2.2".into();
    o.ateco_code = "45.20.00".into();
    o.weekly_hours = 60;
    let status = f
        .client
        .publish_job_offer(op(pb::PublishJobOfferRequest { job_offer: Some(o) }))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        [
            "job_offer.profession_code",
            "job_offer.ateco_code",
            "job_offer.weekly_hours"
        ]
    );
    let status = f
        .client
        .list_job_offers(pb::ListJobOffersRequest {
            istat_codes: vec!["999999".into()],
            ateco_code: "5".into(),
            contract_types: vec![0, 99],
            min_weekly_hours: 30,
            max_weekly_hours: 20,
            page: Some(common::PageRequest {
                first: 500,
                after: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        [
            "istat_codes[0]",
            "ateco_code",
            "contract_types[0]",
            "contract_types[1]",
            "max_weekly_hours",
            "page.first"
        ]
    );

    fn code<T>(r: Result<tonic::Response<T>, Status>) -> Code {
        match r {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        }
    }
    let c = &mut f.client;
    let codes = [
        (
            "ListJobOffers",
            code(c.list_job_offers(pb::ListJobOffersRequest::default()).await),
        ),
        (
            "LookupJobOffers",
            code(
                c.lookup_job_offers(pb::LookupJobOffersRequest::default())
                    .await,
            ),
        ),
        (
            "ListMunicipalityJobOffers",
            code(
                c.list_municipality_job_offers(pb::ListMunicipalityJobOffersRequest::default())
                    .await,
            ),
        ),
        (
            "PublishJobOffer",
            code(
                c.publish_job_offer(op(pb::PublishJobOfferRequest::default()))
                    .await,
            ),
        ),
        (
            "CloseJobOffer",
            code(
                c.close_job_offer(op(pb::CloseJobOfferRequest::default()))
                    .await,
            ),
        ),
        (
            "ListJobApplications",
            code(
                c.list_job_applications(op(pb::ListJobApplicationsRequest::default()))
                    .await,
            ),
        ),
        (
            "LookupJobApplications",
            code(
                c.lookup_job_applications(op(pb::LookupJobApplicationsRequest::default()))
                    .await,
            ),
        ),
        (
            "ListCitizenJobApplications",
            code(
                c.list_citizen_job_applications(op(
                    pb::ListCitizenJobApplicationsRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "CreateJobApplication",
            code(
                c.create_job_application(by_applicant(pb::CreateJobApplicationRequest::default()))
                    .await,
            ),
        ),
        (
            "WithdrawJobApplication",
            code(
                c.withdraw_job_application(op(pb::WithdrawJobApplicationRequest::default()))
                    .await,
            ),
        ),
        (
            "ReviewJobApplication",
            code(
                c.review_job_application(op(pb::ReviewJobApplicationRequest::default()))
                    .await,
            ),
        ),
        (
            "ListTrainingCourses",
            code(
                c.list_training_courses(pb::ListTrainingCoursesRequest::default())
                    .await,
            ),
        ),
        (
            "LookupTrainingCourses",
            code(
                c.lookup_training_courses(pb::LookupTrainingCoursesRequest::default())
                    .await,
            ),
        ),
        (
            "ListMunicipalityTrainingCourses",
            code(
                c.list_municipality_training_courses(
                    pb::ListMunicipalityTrainingCoursesRequest::default(),
                )
                .await,
            ),
        ),
        (
            "PublishTrainingCourse",
            code(
                c.publish_training_course(op(pb::PublishTrainingCourseRequest::default()))
                    .await,
            ),
        ),
        (
            "CloseTrainingCourse",
            code(
                c.close_training_course(op(pb::CloseTrainingCourseRequest::default()))
                    .await,
            ),
        ),
        (
            "CancelTrainingCourse",
            code(
                c.cancel_training_course(op(pb::CancelTrainingCourseRequest::default()))
                    .await,
            ),
        ),
        (
            "ListEnrolments",
            code(
                c.list_enrolments(op(pb::ListEnrolmentsRequest::default()))
                    .await,
            ),
        ),
        (
            "LookupEnrolments",
            code(
                c.lookup_enrolments(op(pb::LookupEnrolmentsRequest::default()))
                    .await,
            ),
        ),
        (
            "ListCitizenEnrolments",
            code(
                c.list_citizen_enrolments(op(pb::ListCitizenEnrolmentsRequest::default()))
                    .await,
            ),
        ),
        (
            "CreateEnrolment",
            code(
                c.create_enrolment(by_applicant(pb::CreateEnrolmentRequest::default()))
                    .await,
            ),
        ),
        (
            "WithdrawEnrolment",
            code(
                c.withdraw_enrolment(op(pb::WithdrawEnrolmentRequest::default()))
                    .await,
            ),
        ),
        (
            "WatchEnrolment",
            code(
                c.watch_enrolment(op(pb::WatchEnrolmentRequest::default()))
                    .await,
            ),
        ),
    ];
    let expected_ok = [
        "ListJobOffers",
        "LookupJobOffers",
        "ListMunicipalityJobOffers",
        "LookupJobApplications",
        "ListCitizenJobApplications",
        "ListTrainingCourses",
        "LookupTrainingCourses",
        "ListMunicipalityTrainingCourses",
        "LookupEnrolments",
        "ListCitizenEnrolments",
    ];
    for (rpc, got) in codes {
        let want = if expected_ok.contains(&rpc) {
            Code::Ok
        } else {
            Code::InvalidArgument
        };
        assert_eq!(got, want, "{rpc}");
    }
    // Unknown ids are NOT_FOUND, not INTERNAL.
    let missing = [
        code(
            c.close_job_offer(op(pb::CloseJobOfferRequest {
                job_offer_id: "nope".into(),
                note: String::new(),
            }))
            .await,
        ),
        code(
            c.withdraw_enrolment(op(pb::WithdrawEnrolmentRequest {
                enrolment_id: "nope".into(),
            }))
            .await,
        ),
        code(
            c.watch_enrolment(op(pb::WatchEnrolmentRequest {
                enrolment_id: "nope".into(),
            }))
            .await,
        ),
        code(
            c.list_enrolments(op(pb::ListEnrolmentsRequest {
                training_course_id: "nope".into(),
                ..Default::default()
            }))
            .await,
        ),
        code(
            c.review_job_application(op(pb::ReviewJobApplicationRequest {
                job_application_id: "nope".into(),
                status: pb::JobApplicationStatus::Hired as i32,
                note: String::new(),
            }))
            .await,
        ),
    ];
    assert!(missing.iter().all(|c| *c == Code::NotFound), "{missing:?}");
    // Empty imports write nothing and say so.
    let empty = c
        .import_training_courses(bagheria(futures::stream::iter(Vec::<
            pb::ImportTrainingCoursesRequest,
        >::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((empty.imported, empty.error_count), (0, 0));
}

fn import_row(n: usize) -> pb::ImportTrainingCoursesRequest {
    let mut c = course(BAGHERIA, 2, 0);
    c.title = format!("Corso importato numero {n}");
    c.external_ref = format!("IMP-{n:03}");
    pb::ImportTrainingCoursesRequest {
        training_course: Some(c),
    }
}

async fn imported_count(f: &mut Fixture) -> i64 {
    f.client
        .list_training_courses(pb::ListTrainingCoursesRequest {
            istat_codes: vec![BAGHERIA.into()],
            text: "corso importato".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .page_info
        .unwrap()
        .total_count
}

/// Imports are all-or-nothing: wrong rows are listed and nothing is written; a clean import is
/// written whole; known references update their course, never below the seats taken, and new
/// seats go to the waiting list at once.
async fn imports(f: &mut Fixture) {
    let before = imported_count(f).await;
    let mut rows: Vec<_> = (0..60).map(import_row).collect();
    rows[4].training_course.as_mut().unwrap().seats = 0;
    rows[19].training_course.as_mut().unwrap().istat_code = PALERMO.into();
    rows[32].training_course = None;
    rows[45].training_course.as_mut().unwrap().external_ref = "IMP-001".into();
    let answer = f
        .client
        .import_training_courses(bagheria(futures::stream::iter(rows)))
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
            (5, "training_course.seats"),
            (20, "training_course.istat_code"),
            (33, "training_course"),
            (46, "training_course.external_ref")
        ]
    );
    assert_eq!(answer.error_count, 4);
    assert_eq!(
        imported_count(f).await,
        before,
        "a failed import writes nothing"
    );

    let answer = f
        .client
        .import_training_courses(bagheria(futures::stream::iter(
            (0..60).map(import_row).collect::<Vec<_>>(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.error_count), (60, 0));
    assert_eq!(imported_count(f).await, before + 60);

    // Course IMP-001 has 2 seats: fill them and put a third citizen on the waiting list.
    let id = f
        .client
        .list_training_courses(pb::ListTrainingCoursesRequest {
            istat_codes: vec![BAGHERIA.into()],
            text: "corso importato numero 1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .training_courses
        .into_iter()
        .find(|c| c.external_ref == "IMP-001")
        .unwrap()
        .id;
    for n in 40..42 {
        enrol(&mut f.client, &id, n).await;
    }
    let third = enrol(&mut f.client, &id, 42).await;
    assert_eq!(status(&third), pb::EnrolmentStatus::Waitlisted);

    // Seats below those taken: the row is refused and the other row is not written either.
    let mut shrink = import_row(1);
    shrink.training_course.as_mut().unwrap().seats = 1;
    let mut rename = import_row(2);
    rename.training_course.as_mut().unwrap().title = "Titolo cambiato".into();
    let answer = f
        .client
        .import_training_courses(bagheria(futures::stream::iter(vec![
            rename.clone(),
            shrink,
        ])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 0);
    assert_eq!(answer.errors[0].row, 2);
    assert_eq!(answer.errors[0].field, "training_course.seats");
    assert_eq!(
        imported_count(f).await,
        before + 60,
        "the renamed row was rolled back"
    );

    // More seats: the waiting list is promoted in the same import.
    let mut grow = import_row(1);
    grow.training_course.as_mut().unwrap().seats = 3;
    let answer = f
        .client
        .import_training_courses(bagheria(futures::stream::iter(vec![grow])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.error_count), (1, 0));
    let promoted = lookup_enrolment(&mut f.client, &Who::system(BAGHERIA), &third.id).await;
    assert_eq!(
        (status(&promoted), promoted.promoted),
        (pb::EnrolmentStatus::Enrolled, true)
    );
    assert_eq!(
        imported_count(f).await,
        before + 60,
        "updated, not duplicated"
    );

    // Job offers: the same all-or-nothing rule.
    let offer_row = |n: usize| {
        let mut o = offer(&format!("Offerta importata {n}"), false);
        o.istat_code = BAGHERIA.into();
        o.external_ref = format!("OFF-IMP-{n}");
        pb::ImportJobOffersRequest { job_offer: Some(o) }
    };
    let offers_count = |f: &mut Fixture| {
        let mut c = f.client.clone();
        async move {
            c.list_job_offers(pb::ListJobOffersRequest {
                istat_codes: vec![BAGHERIA.into()],
                text: "offerta importata".into(),
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
    let mut rows: Vec<_> = (0..10).map(offer_row).collect();
    rows[6].job_offer.as_mut().unwrap().application_deadline = "2020-01-01".into();
    let answer = f
        .client
        .import_job_offers(bagheria(futures::stream::iter(rows)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 0);
    assert_eq!(
        (answer.errors[0].row, answer.errors[0].field.as_str()),
        (7, "job_offer.application_deadline")
    );
    assert_eq!(offers_count(f).await, 0);
    let rows: Vec<_> = (0..10).map(offer_row).collect();
    let answer = f
        .client
        .import_job_offers(bagheria(futures::stream::iter(rows.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 10);
    let answer = f
        .client
        .import_job_offers(bagheria(futures::stream::iter(rows)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 10);
    assert_eq!(
        offers_count(f).await,
        10,
        "known references update, not duplicate"
    );
}

/// Search pages with opaque cursors; extensions batch by key.
async fn listings(f: &mut Fixture) {
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = f
            .client
            .list_job_offers(pb::ListJobOffersRequest {
                istat_codes: vec![PALERMO.into()],
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
        seen.extend(page.job_offers);
        if !info.has_next_page {
            assert_eq!(info.total_count as usize, seen.len());
            break;
        }
        after = info.end_cursor;
    }
    assert!(seen.len() >= 27, "Palermo's demo offers: {}", seen.len());
    let times: Vec<_> = seen
        .iter()
        .map(|o| o.published_time.as_ref().map(|t| (t.seconds, t.nanos)))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let unique: std::collections::BTreeSet<_> = seen.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(unique.len(), seen.len());

    let sector = f
        .client
        .list_job_offers(pb::ListJobOffersRequest {
            ateco_code: "56".into(),
            page: Some(common::PageRequest {
                first: 100,
                after: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!sector.job_offers.is_empty());
    assert!(
        sector
            .job_offers
            .iter()
            .all(|o| o.ateco_code.starts_with("56."))
    );

    let per_comune = f
        .client
        .list_municipality_job_offers(pb::ListMunicipalityJobOffersRequest {
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
        .map(|i| (i.key.as_str(), i.job_offers.len()))
        .collect();
    assert_eq!(
        keys,
        [("082001", 1), (PALERMO, 3)],
        "keys deduplicated, at most `first` each"
    );

    let courses = f
        .client
        .list_training_courses(pb::ListTrainingCoursesRequest {
            profession_code: "5.2.2".into(),
            page: Some(common::PageRequest {
                first: 100,
                after: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!courses.training_courses.is_empty());
    for c in &courses.training_courses {
        assert!(
            c.profession_codes
                .iter()
                .any(|p| p == "5.2.2" || p.starts_with("5.2.2.")),
            "{:?}",
            c.profession_codes
        );
    }
    let starts: Vec<_> = courses
        .training_courses
        .iter()
        .map(|c| c.start_date.clone())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "soonest start first"
    );

    let free = f
        .client
        .list_municipality_training_courses(pb::ListMunicipalityTrainingCoursesRequest {
            keys: vec![PALERMO.into()],
            first: 100,
            with_seats_only: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        free.items[0]
            .training_courses
            .iter()
            .all(|c| c.seats_left > 0)
    );
}

/// Personal data only for the citizen concerned and the comune's operators; anonymous employers
/// named to their comune's operators only.
async fn access(f: &mut Fixture) {
    let s = &mut f.client;
    let c = course(PALERMO, 5, 0);
    let anonymous = s
        .publish_training_course(Who::request(
            &Who::Anonymous,
            pb::PublishTrainingCourseRequest {
                training_course: Some(c.clone()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let elsewhere = s
        .publish_training_course(Who::request(
            &Who::operator(BAGHERIA),
            pb::PublishTrainingCourseRequest {
                training_course: Some(c.clone()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied);
    let published = s
        .publish_training_course(Who::request(
            &Who::operator(PALERMO),
            pb::PublishTrainingCourseRequest {
                training_course: Some(c),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .training_course
        .unwrap();

    let me = Who::Citizen(citizen(77).fiscal_code);
    let other = Who::Citizen(citizen(78).fiscal_code);
    let for_someone_else = s
        .create_enrolment(Who::request(&other, enrolment(&published.id, 77)))
        .await
        .unwrap_err();
    assert_eq!(for_someone_else.code(), Code::PermissionDenied);
    let mine = s
        .create_enrolment(Who::request(&me, enrolment(&published.id, 77)))
        .await
        .unwrap()
        .into_inner()
        .enrolment
        .unwrap();
    // An operator of the comune enrols a citizen at the desk.
    s.create_enrolment(Who::request(
        &Who::operator(PALERMO),
        enrolment(&published.id, 79),
    ))
    .await
    .unwrap();

    let lookup = |who: &Who| {
        Who::request(
            who,
            pb::LookupEnrolmentsRequest {
                keys: vec![mine.id.clone()],
            },
        )
    };
    assert_eq!(
        s.lookup_enrolments(lookup(&me))
            .await
            .unwrap()
            .into_inner()
            .items
            .len(),
        1
    );
    assert_eq!(
        s.lookup_enrolments(lookup(&Who::operator(PALERMO)))
            .await
            .unwrap()
            .into_inner()
            .items
            .len(),
        1
    );
    assert!(
        s.lookup_enrolments(lookup(&other))
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty()
    );
    assert!(
        s.lookup_enrolments(lookup(&Who::Anonymous))
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty()
    );
    let list = |who: &Who| {
        Who::request(
            who,
            pb::ListEnrolmentsRequest {
                training_course_id: published.id.clone(),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        s.list_enrolments(list(&me)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        s.list_enrolments(list(&Who::operator(BAGHERIA)))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        s.list_enrolments(list(&Who::operator(PALERMO)))
            .await
            .unwrap()
            .into_inner()
            .enrolments
            .len(),
        2
    );
    let watch = s
        .watch_enrolment(Who::request(
            &other,
            pb::WatchEnrolmentRequest {
                enrolment_id: mine.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::PermissionDenied);
    let withdraw = s
        .withdraw_enrolment(Who::request(
            &other,
            pb::WithdrawEnrolmentRequest {
                enrolment_id: mine.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(withdraw.code(), Code::PermissionDenied);
    s.withdraw_enrolment(Who::request(
        &me,
        pb::WithdrawEnrolmentRequest {
            enrolment_id: mine.id.clone(),
        },
    ))
    .await
    .unwrap();

    // Anonymous employers: named to Palermo's operators only.
    let published = s
        .publish_job_offer(Who::request(
            &Who::operator(PALERMO),
            pb::PublishJobOfferRequest {
                job_offer: Some(offer("Aiuto cuoco riservato", true)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .job_offer
        .unwrap();
    let employer = |who: &Who| {
        let mut s = s.clone();
        let r = Who::request(
            who,
            pb::LookupJobOffersRequest {
                keys: vec![published.id.clone()],
            },
        );
        async move {
            s.lookup_job_offers(r).await.unwrap().into_inner().items[0]
                .job_offer
                .as_ref()
                .unwrap()
                .employer
                .clone()
                .unwrap()
                .name
        }
    };
    assert_eq!(
        employer(&Who::operator(PALERMO)).await,
        "Osteria dei Vespri s.r.l."
    );
    assert_eq!(employer(&Who::operator(BAGHERIA)).await, "");
    assert_eq!(employer(&Who::Anonymous).await, "");
    let review = s
        .review_job_application(Who::request(
            &me,
            pb::ReviewJobApplicationRequest {
                job_application_id: "app-demo-0001".into(),
                status: pb::JobApplicationStatus::Hired as i32,
                note: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(review.code(), Code::PermissionDenied);
}

/// Completed interactions show in the indicators, with both procedures listed as fully online.
async fn indicators(f: &mut Fixture) {
    let answer = f
        .indicators
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![PALERMO.into()],
            period: None,
        })
        .await
        .unwrap()
        .into_inner();
    let palermo = &answer.items[0];
    let codes: Vec<_> = palermo
        .procedures
        .iter()
        .filter(|p| p.fully_online)
        .map(|p| p.code.as_str())
        .collect();
    assert_eq!(
        codes,
        ["employment.job-application", "employment.course-enrolment"]
    );
    // 24 demo enrolments and 100 concurrent ones at least, each a completed online enrolment.
    assert!(
        palermo.completed_interactions >= 124,
        "{}",
        palermo.completed_interactions
    );
}

async fn whole_suite(db: DatabaseConnection) {
    let mut f = start(db).await;
    seats_and_waiting_list(&mut f).await;
    enrolment_rules(&mut f).await;
    offers_and_applications(&mut f).await;
    bad_input(&mut f).await;
    imports(&mut f).await;
    listings(&mut f).await;
    access(&mut f).await;
    indicators(&mut f).await;
    f.server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn employment_on_sqlite() {
    whole_suite(testing::sqlite::<Migrator>().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn employment_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    whole_suite(pg.migrated::<Migrator>().await.expect("migrate")).await;
}

#[tokio::test]
async fn demo_data_covers_every_comune_and_seeds_once() {
    let store = Store::new(testing::sqlite::<Migrator>().await, SALT);
    let seeded = demo::seed(&store, Utc::now()).await.unwrap();
    assert!(
        seeded.offers >= 82 + 26 && seeded.courses >= 82 + 10,
        "{seeded:?}"
    );
    assert!(
        seeded.enrolments >= 24 + 81 * 2 && seeded.applications >= 40,
        "{seeded:?}"
    );
    assert_eq!(
        demo::seed(&store, Utc::now()).await.unwrap(),
        demo::Seeded::default(),
        "a second seed adds nothing"
    );
    let server = serve(store).await;
    let mut client = EmploymentServiceClient::new(server.channel().await);
    let keys: Vec<String> = patto_service_kit::comuni::all()
        .iter()
        .map(|c| c.istat_code.clone())
        .collect();
    let offers = client
        .list_municipality_job_offers(pb::ListMunicipalityJobOffersRequest {
            keys: keys.clone(),
            first: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(offers.items.len(), 82, "every comune has open offers");
    let courses = client
        .list_municipality_training_courses(pb::ListMunicipalityTrainingCoursesRequest {
            keys,
            first: 100,
            with_seats_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(courses.items.len(), 82, "every comune has courses");
    // Palermo's first course filled its seats with 24 demo citizens and opened its waiting list.
    let seats = lookup_course(&mut client, "crs-082053-01").await.seats as usize;
    assert!(seats < 24, "{seats}");
    let palermo = all_enrolments(&mut client, "crs-082053-01", vec![]).await;
    let enrolled = palermo
        .iter()
        .filter(|e| status(e) == pb::EnrolmentStatus::Enrolled)
        .count();
    assert_eq!(enrolled, seats);
    assert_eq!(
        positions(&palermo[enrolled..]),
        (1..=(24 - seats) as i32).collect::<Vec<_>>()
    );
}

/// The access rule over real gRPC, cell by cell: who may watch a citizen's enrolment and list it
/// under their fiscal code (personal reads), and who may withdraw it (a change for the citizen).
#[tokio::test]
async fn access_matrix() {
    let server = serve(Store::new(testing::sqlite::<Migrator>().await, SALT)).await;
    let mut client = EmploymentServiceClient::new(server.channel().await);
    let me = citizen(501).fiscal_code;
    let ok = None;
    let denied = Some(Code::PermissionDenied);
    let unauthenticated = Some(Code::Unauthenticated);
    // (caller, watch, citizen listing and the rows it shows, withdrawal)
    let cases = [
        ("the citizen", Who::citizen(&me), ok, (ok, 1), ok),
        (
            "another citizen",
            Who::citizen(&citizen(502).fiscal_code),
            denied,
            (denied, 0),
            denied,
        ),
        (
            "operator, same comune",
            Who::operator(PALERMO),
            ok,
            (ok, 1),
            ok,
        ),
        ("system, same comune", Who::system(PALERMO), ok, (ok, 1), ok),
        (
            "operator, other comune",
            Who::operator(BAGHERIA),
            denied,
            (ok, 0),
            denied,
        ),
        (
            "system, other comune",
            Who::system(BAGHERIA),
            denied,
            (ok, 0),
            denied,
        ),
        (
            "anonymous",
            Who::Anonymous,
            unauthenticated,
            (unauthenticated, 0),
            unauthenticated,
        ),
    ];
    for (name, who, watch, (listing, rows), withdraw) in cases {
        // A course and an enrolment of the citizen's own for each caller.
        let course = publish_course(&mut client, course(PALERMO, 5, 0)).await;
        let mine = client
            .create_enrolment(Who::citizen(&me).request(enrolment(&course.id, 501)))
            .await
            .unwrap()
            .into_inner()
            .enrolment
            .unwrap();

        let got = client
            .watch_enrolment(who.request(pb::WatchEnrolmentRequest {
                enrolment_id: mine.id.clone(),
            }))
            .await;
        assert_eq!(code_of(&got), watch, "{name}: watch");
        drop(got);

        let got = client
            .list_citizen_enrolments(who.request(pb::ListCitizenEnrolmentsRequest {
                keys: vec![me.clone()],
                statuses: vec![],
            }))
            .await;
        assert_eq!(code_of(&got), listing, "{name}: citizen listing");
        if let Ok(answer) = got {
            let shown = answer
                .into_inner()
                .items
                .iter()
                .flat_map(|i| i.enrolments.iter())
                .filter(|e| e.id == mine.id)
                .count();
            assert_eq!(shown, rows, "{name}: citizen listing rows");
        }

        let got = client
            .withdraw_enrolment(who.request(pb::WithdrawEnrolmentRequest {
                enrolment_id: mine.id.clone(),
            }))
            .await;
        assert_eq!(code_of(&got), withdraw, "{name}: withdraw");
        let now = lookup_enrolment(&mut client, &Who::citizen(&me), &mine.id).await;
        let want = if got.is_ok() {
            pb::EnrolmentStatus::Withdrawn
        } else {
            pb::EnrolmentStatus::Enrolled
        };
        assert_eq!(
            status(&now),
            want,
            "{name}: a refused change changes nothing"
        );
    }
    server.stop().await.expect("clean stop");
}

/// Reads of a citizen's data by others are recorded before the answer leaves, and each side lists
/// its own log: the citizen theirs, the comune's operators their comune's.
#[tokio::test]
async fn audit_of_personal_data_reads() {
    let server = serve(Store::new(testing::sqlite::<Migrator>().await, SALT)).await;
    let channel = server.channel().await;
    let mut client = EmploymentServiceClient::new(channel.clone());
    let me = citizen(601).fiscal_code;
    let course = publish_course(&mut client, course(PALERMO, 5, 0)).await;
    let mine = client
        .create_enrolment(Who::citizen(&me).request(enrolment(&course.id, 601)))
        .await
        .unwrap()
        .into_inner()
        .enrolment
        .unwrap();
    assert!(
        personal_data_reads(&channel, &Who::citizen(&me), "", "")
            .await
            .unwrap()
            .is_empty(),
        "nothing read yet"
    );

    // The operator reads the enrolment, declaring the purpose.
    let request = Who::operator(PALERMO).request_with_purpose(
        pb::LookupEnrolmentsRequest {
            keys: vec![mine.id.clone()],
        },
        "purpose-7",
    );
    let found = client
        .lookup_enrolments(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.items.len(), 1);
    // The citizen's own read, and an operator of another comune who sees nothing, record nothing.
    lookup_enrolment(&mut client, &Who::citizen(&me), &mine.id).await;
    let none = client
        .lookup_enrolments(
            Who::operator(BAGHERIA).request(pb::LookupEnrolmentsRequest {
                keys: vec![mine.id.clone()],
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(none.items.is_empty());

    let entries = personal_data_reads(&channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let read = &entries[0];
    assert_eq!(
        read_row(read),
        [
            "operator",
            "operator@082053",
            PALERMO,
            me.as_str(),
            PALERMO,
            "employment.Enrolment",
            "purpose-7",
            "employment",
        ]
    );
    assert!(read.read_at.is_some());
    // The comune lists its own log; another comune may not; nor may another citizen list hers.
    let palermo = personal_data_reads(&channel, &Who::operator(PALERMO), "", PALERMO).await;
    assert_eq!(palermo.unwrap().len(), 1);
    assert_refused(
        personal_data_reads(&channel, &Who::operator(BAGHERIA), "", PALERMO).await,
        Code::PermissionDenied,
        "Bagheria listing Palermo's log",
    );
    let other = Who::citizen(&citizen(602).fiscal_code);
    assert_refused(
        personal_data_reads(&channel, &other, &me, "").await,
        Code::PermissionDenied,
        "another citizen listing hers",
    );
    assert_refused(
        personal_data_reads(&channel, &Who::Anonymous, "", "").await,
        Code::Unauthenticated,
        "an anonymous caller",
    );

    // Listing what the comune received is a read of each applicant's data too.
    let offer = client
        .publish_job_offer(op(pb::PublishJobOfferRequest {
            job_offer: Some(offer("Cameriere", false)),
        }))
        .await
        .unwrap()
        .into_inner()
        .job_offer
        .unwrap();
    client
        .create_job_application(by_applicant(application(&offer.id, 601)))
        .await
        .unwrap();
    let listed = client
        .list_job_applications(
            Who::system(PALERMO).request(pb::ListJobApplicationsRequest {
                job_offer_id: offer.id.clone(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.job_applications.len(), 1);
    let entries = personal_data_reads(&channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0].reader_role.as_str(),
            entries[0].what.as_str(),
            entries[0].purpose_id.as_str()
        ),
        ("system", "employment.JobApplication", ""),
        "newest first"
    );
    server.stop().await.expect("clean stop");
}
