//! The social service end to end over real gRPC, on SQLite and on PostgreSQL: an application from
//! draft to completed payments through the ISEE check, the review, the graduatoria and the
//! reasoned decision; the watch stream; bad input with field violations and a meaningful status
//! for an empty request to every unary RPC; the all-or-nothing ISEE import; the access rule for
//! citizens, operators, systems and anonymous callers, cell by cell; and the audit of the reads of
//! personal data.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use futures::StreamExt;
use patto_proto::common::v1 as common;
use patto_proto::common::v1::indicators_service_client::IndicatorsServiceClient;
use patto_proto::social::v1 as pb;
use patto_proto::social::v1::social_service_client::SocialServiceClient;
use patto_service_kit::demo::citizen;
use patto_service_kit::testing::{
    self, HeaderPrincipal, TestPostgres, TestServer, Who, assert_refused, code_of,
    personal_data_reads, read_row,
};
use patto_social::domain::italian_day;
use patto_social::store::Store;
use patto_social::{Migrator, demo};
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

const SALT: &str = "test-salt";
const PALERMO: &str = "082053";
const BAGHERIA: &str = "082006";
const IBAN: &str = "IT60X0542811101000000123456";

/// A server over `store` that reads the caller from the test header.
async fn serve(store: Store) -> TestServer {
    TestServer::start(patto_social::app(store).with_authenticator(Arc::new(HeaderPrincipal))).await
}

struct Fixture {
    server: TestServer,
    client: SocialServiceClient<Channel>,
    indicators: IndicatorsServiceClient<Channel>,
}

async fn start(db: DatabaseConnection) -> Fixture {
    let store = Store::new(db, SALT);
    assert!(demo::seed(&store, Utc::now()).await.expect("seed") > 82);
    let server = serve(store).await;
    let channel = server.channel().await;
    Fixture {
        client: SocialServiceClient::new(channel.clone()),
        indicators: IndicatorsServiceClient::new(channel),
        server,
    }
}

fn today() -> chrono::NaiveDate {
    italian_day(Utc::now())
}

fn money(cents: i64) -> Option<common::Money> {
    Some(common::Money { cents })
}

fn fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// A ranked scheme of Palermo funding two places of € 250 × 2 months.
fn ranked_scheme(code: &str) -> pb::BenefitScheme {
    pb::BenefitScheme {
        istat_code: PALERMO.into(),
        code: code.into(),
        name: "Contributo per le famiglie in difficoltà".into(),
        kind: pb::BenefitKind::EconomicSupport as i32,
        status: pb::BenefitSchemeStatus::Open as i32,
        application_period: Some(common::Period {
            start_date: (today() - chrono::Duration::days(10)).to_string(),
            end_date: (today() + chrono::Duration::days(30)).to_string(),
        }),
        isee_threshold: money(1_014_000),
        household_rules: Some(pb::BenefitHouseholdRules {
            requires_residence: true,
            ..Default::default()
        }),
        amount: money(25_000),
        frequency: pb::BenefitFrequency::Monthly as i32,
        payment_count: 2,
        budget: money(100_000),
        ranking_criterion: pb::RankingCriterion::IseeAscending as i32,
        required_documents: vec!["documento di identità".into()],
        fully_online: true,
        ..Default::default()
    }
}

fn declaration(
    n: usize,
    isee_cents: i64,
    dsu: chrono::NaiveDate,
    tag: char,
) -> pb::IseeDeclaration {
    pb::IseeDeclaration {
        fiscal_code: citizen(n).fiscal_code,
        dsu_protocol: format!("INPS-ISEE-{}-{:08}{tag}-00", dsu.year(), n),
        kind: pb::IseeKind::Ordinario as i32,
        isee: money(isee_cents),
        isr: money(isee_cents),
        household_size: 1,
        dsu_date: dsu.to_string(),
        ..Default::default()
    }
}

async fn register(
    c: &mut SocialServiceClient<Channel>,
    d: pb::IseeDeclaration,
) -> pb::IseeDeclaration {
    let who = Who::Citizen(d.fiscal_code.clone());
    c.register_isee_declaration(Who::request(
        &who,
        pb::RegisterIseeDeclarationRequest {
            declaration: Some(d),
        },
    ))
    .await
    .expect("register ISEE")
    .into_inner()
    .declaration
    .expect("declaration")
}

fn identity_document() -> pb::BenefitAttachment {
    pb::BenefitAttachment {
        name: "carta-identita.pdf".into(),
        sha256: "0f".repeat(32),
        size_bytes: 240_000,
        media_type: "application/pdf".into(),
        document_type: "documento di identità".into(),
        ..Default::default()
    }
}

fn draft(scheme_id: &str, n: usize, isee_id: &str) -> pb::BenefitApplicationDraft {
    pb::BenefitApplicationDraft {
        scheme_id: scheme_id.into(),
        applicant_fiscal_code: citizen(n).fiscal_code,
        isee_declaration_id: isee_id.into(),
        iban: IBAN.into(),
        contact: "famiglia@example.it".into(),
        statement: "Spese per l'affitto e le utenze".into(),
        attachments: vec![identity_document()],
        ..Default::default()
    }
}

fn status_of(a: &pb::BenefitApplication) -> pb::BenefitApplicationStatus {
    pb::BenefitApplicationStatus::try_from(a.status).unwrap()
}

async fn next(
    s: &mut tonic::Streaming<pb::WatchBenefitApplicationResponse>,
) -> pb::WatchBenefitApplicationResponse {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("update in time")
        .expect("stream open")
        .expect("update")
}

/// Draft → submit (ISEE checked) → review with an integration → evaluation → graduatoria →
/// reasoned decisions → payment schedule → completion, with the watch stream following along.
async fn workflow(f: &mut Fixture) {
    let op = Who::operator(PALERMO);
    let c = &mut f.client;
    let scheme = c
        .create_benefit_scheme(Who::request(
            &op,
            pb::CreateBenefitSchemeRequest {
                scheme: Some(ranked_scheme("TEST-WORKFLOW")),
            },
        ))
        .await
        .expect("create scheme")
        .into_inner()
        .scheme
        .unwrap();
    assert_eq!(scheme.code, "TEST-WORKFLOW");
    let dup = c
        .create_benefit_scheme(Who::request(
            &op,
            pb::CreateBenefitSchemeRequest {
                scheme: Some(ranked_scheme("test-workflow")),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");

    let before = palermo_interactions(&mut f.indicators).await;
    let c = &mut f.client;

    // Three applicants: A (ISEE € 5.000), B (€ 3.000), C (€ 8.000); D is above the threshold and
    // E's attestation has expired.
    let (a, b, cc, d, e) = (1001, 1002, 1003, 1004, 1005);
    let isee_a = register(c, declaration(a, 500_000, today(), 'W')).await;
    let isee_b = register(c, declaration(b, 300_000, today(), 'W')).await;
    let isee_c = register(c, declaration(cc, 800_000, today(), 'W')).await;
    let isee_d = register(c, declaration(d, 1_200_000, today(), 'W')).await;
    let last_year = chrono::NaiveDate::from_ymd_opt(today().year() - 1, 12, 15).unwrap();
    let isee_e = register(c, declaration(e, 400_000, last_year, 'W')).await;
    assert_eq!(isee_e.valid_until, format!("{}-12-31", today().year() - 1));
    assert_eq!(isee_a.source, pb::IseeSource::Citizen as i32);
    assert!(!isee_a.verified, "no INPS e-service: stored as declared");
    let again = c
        .register_isee_declaration(Who::request(
            &Who::Citizen(citizen(a).fiscal_code),
            pb::RegisterIseeDeclarationRequest {
                declaration: Some(declaration(a, 500_000, today(), 'W')),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);

    let mut apps = Vec::new();
    for (n, isee) in [
        (a, &isee_a),
        (b, &isee_b),
        (cc, &isee_c),
        (d, &isee_d),
        (e, &isee_e),
    ] {
        let who = Who::Citizen(citizen(n).fiscal_code);
        let app = c
            .create_benefit_application_draft(Who::request(
                &who,
                pb::CreateBenefitApplicationDraftRequest {
                    draft: Some(draft(&scheme.id, n, &isee.id)),
                },
            ))
            .await
            .expect("draft")
            .into_inner()
            .application
            .unwrap();
        assert_eq!(status_of(&app), pb::BenefitApplicationStatus::Draft);
        assert_eq!(app.istat_code, PALERMO);
        apps.push((who, app));
    }
    let twice = c
        .create_benefit_application_draft(Who::request(
            &apps[0].0,
            pb::CreateBenefitApplicationDraftRequest {
                draft: Some(draft(&scheme.id, a, &isee_a.id)),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        twice.code(),
        Code::AlreadyExists,
        "one live application per scheme"
    );

    let submit = |c: &mut SocialServiceClient<Channel>, who: &Who, id: &str| {
        let mut c = c.clone();
        let r = Who::request(
            who,
            pb::SubmitBenefitApplicationRequest {
                application_id: id.into(),
            },
        );
        async move { c.submit_benefit_application(r).await }
    };
    // The ISEE is checked on the day of submission: above the threshold, or expired, is refused.
    let over = submit(c, &apps[3].0, &apps[3].1.id).await.unwrap_err();
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert!(
        over.message()
            .contains("the ISEE € 12.000,00 is above the scheme's threshold € 10.140,00"),
        "{}",
        over.message()
    );
    let expired = submit(c, &apps[4].0, &apps[4].1.id).await.unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition);
    assert!(
        expired.message().contains("expired on"),
        "{}",
        expired.message()
    );
    // E files a current attestation and fixes the draft; D gives up.
    let fresh_e = register(c, declaration(e, 400_000, today(), 'X')).await;
    let mut fixed = draft(&scheme.id, e, &fresh_e.id);
    fixed.statement = "Aggiornata con ISEE corrente".into();
    let updated = c
        .update_benefit_application_draft(Who::request(
            &apps[4].0,
            pb::UpdateBenefitApplicationDraftRequest {
                application_id: apps[4].1.id.clone(),
                draft: Some(fixed),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(updated.isee_declaration_id, fresh_e.id);
    c.withdraw_benefit_application(Who::request(
        &apps[3].0,
        pb::WithdrawBenefitApplicationRequest {
            application_id: apps[3].1.id.clone(),
            reason: "ISEE oltre la soglia".into(),
        },
    ))
    .await
    .unwrap();

    for i in [0, 1, 2, 4] {
        let (who, app) = &apps[i];
        let submitted = submit(c, who, &app.id).await.expect("submit").into_inner();
        let s = submitted.application.unwrap();
        assert_eq!(status_of(&s), pb::BenefitApplicationStatus::Submitted);
        assert!(
            s.protocol_number
                .starts_with(&format!("SOC-{PALERMO}-{}-", today().year())),
            "{}",
            s.protocol_number
        );
        assert!(s.isee.is_some() && s.submitted_time.is_some());
        apps[i].1 = s;
    }
    let resubmit = submit(c, &apps[0].0, &apps[0].1.id).await.unwrap_err();
    assert_eq!(resubmit.code(), Code::FailedPrecondition);
    assert!(
        resubmit
            .message()
            .contains("cannot go from SUBMITTED to SUBMITTED"),
        "{}",
        resubmit.message()
    );

    // The comune lowers the threshold after these submissions: they keep the rules they were
    // submitted under (the evaluation below still passes A's € 5.000 ISEE).
    let mut changed = ranked_scheme("TEST-WORKFLOW");
    changed.id = scheme.id.clone();
    changed.name = "Contributo famiglie (soglia ridotta)".into();
    changed.isee_threshold = money(100_000);
    let updated = c
        .update_benefit_scheme(Who::request(
            &op,
            pb::UpdateBenefitSchemeRequest {
                scheme: Some(changed.clone()),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .scheme
        .unwrap();
    assert_eq!(updated.isee_threshold, money(100_000));
    let mut moved = changed.clone();
    moved.istat_code = BAGHERIA.into();
    let status = c
        .update_benefit_scheme(Who::request(
            &op,
            pb::UpdateBenefitSchemeRequest {
                scheme: Some(moved),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["scheme.istat_code"]);
    let mut unpublished = changed;
    unpublished.status = pb::BenefitSchemeStatus::Draft as i32;
    let status = c
        .update_benefit_scheme(Who::request(
            &op,
            pb::UpdateBenefitSchemeRequest {
                scheme: Some(unpublished),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("from OPEN to DRAFT"),
        "{}",
        status.message()
    );

    // A's applicant follows the application.
    let mut watch = c
        .watch_benefit_application(Who::request(
            &apps[0].0,
            pb::WatchBenefitApplicationRequest {
                application_id: apps[0].1.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut watch).await;
    assert_eq!(first.status, pb::BenefitApplicationStatus::Submitted as i32);
    assert!(
        first.transition.is_none(),
        "the first message is the current state"
    );

    let caseworker = citizen(7).fiscal_code;
    for (_, app) in &apps {
        if status_of(app) != pb::BenefitApplicationStatus::Submitted {
            continue;
        }
        c.assign_benefit_application(Who::request(
            &op,
            pb::AssignBenefitApplicationRequest {
                application_id: app.id.clone(),
                caseworker: caseworker.clone(),
            },
        ))
        .await
        .expect("assign");
    }
    let update = next(&mut watch).await;
    let t = update.transition.unwrap();
    assert_eq!(
        (t.from_status, t.to_status),
        (
            pb::BenefitApplicationStatus::Submitted as i32,
            pb::BenefitApplicationStatus::UnderReview as i32
        )
    );

    // The caseworker asks A for a document; A sends it.
    c.request_benefit_application_integration(Who::request(
        &op,
        pb::RequestBenefitApplicationIntegrationRequest {
            application_id: apps[0].1.id.clone(),
            note: "Allegare il contratto di locazione".into(),
        },
    ))
    .await
    .unwrap();
    assert_eq!(
        next(&mut watch).await.status,
        pb::BenefitApplicationStatus::IntegrationRequested as i32
    );
    let integrated = c
        .submit_benefit_application_integration(Who::request(
            &apps[0].0,
            pb::SubmitBenefitApplicationIntegrationRequest {
                application_id: apps[0].1.id.clone(),
                attachments: vec![pb::BenefitAttachment {
                    name: "contratto.pdf".into(),
                    document_type: "contratto di locazione".into(),
                    ..identity_document()
                }],
                note: "Ecco il contratto".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(integrated.attachments.len(), 2);
    assert_eq!(
        next(&mut watch).await.status,
        pb::BenefitApplicationStatus::UnderReview as i32
    );

    // Evaluation: a residence check is required by the scheme; the service adds ISEE and household.
    let no_residence = c
        .evaluate_benefit_application(Who::request(
            &op,
            pb::EvaluateBenefitApplicationRequest {
                application_id: apps[0].1.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&no_residence), ["checks"]);
    let residence = pb::EligibilityCheck {
        criterion: pb::EligibilityCriterion::Residence as i32,
        passed: true,
        detail: "residente a Palermo (ANPR)".into(),
    };
    for i in [0, 1, 2, 4] {
        let evaluated = c
            .evaluate_benefit_application(Who::request(
                &op,
                pb::EvaluateBenefitApplicationRequest {
                    application_id: apps[i].1.id.clone(),
                    checks: vec![residence.clone()],
                    note: "istruttoria completata".into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("evaluate")
            .into_inner()
            .application
            .unwrap();
        assert_eq!(
            status_of(&evaluated),
            pb::BenefitApplicationStatus::Admissible
        );
        let criteria: Vec<i32> = evaluated.checks.iter().map(|x| x.criterion).collect();
        assert_eq!(
            criteria,
            [2, 1, 3],
            "residence, then the service's ISEE and household"
        );
        apps[i].1 = evaluated;
    }
    assert_eq!(
        next(&mut watch).await.status,
        pb::BenefitApplicationStatus::Admissible as i32
    );

    // Not before the graduatoria is approved.
    let early = c
        .decide_benefit_application(Who::request(
            &op,
            pb::DecideBenefitApplicationRequest {
                application_id: apps[0].1.id.clone(),
                outcome: pb::BenefitDecisionOutcome::Grant as i32,
                motivation: "Requisiti verificati".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(
        early.message().contains("not approved"),
        "{}",
        early.message()
    );

    let ranking = c
        .compute_benefit_ranking(Who::request(
            &op,
            pb::ComputeBenefitRankingRequest {
                scheme_id: scheme.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ranking
        .unwrap();
    assert_eq!(ranking.status, pb::BenefitRankingStatus::Provisional as i32);
    let order: Vec<(&str, bool)> = ranking
        .entries
        .iter()
        .map(|x| (x.application_id.as_str(), x.funded))
        .collect();
    // Lowest ISEE first: B € 3.000, E € 4.000, A € 5.000, C € 8.000; the budget funds two places.
    assert_eq!(
        order,
        [
            (apps[1].1.id.as_str(), true),
            (apps[4].1.id.as_str(), true),
            (apps[0].1.id.as_str(), false),
            (apps[2].1.id.as_str(), false),
        ]
    );
    assert_eq!(ranking.funded_amount, money(100_000));

    let no_act = c
        .approve_benefit_ranking(Who::request(
            &op,
            pb::ApproveBenefitRankingRequest {
                scheme_id: scheme.id.clone(),
                approval_act: " ".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&no_act), ["approval_act"]);
    let approved = c
        .approve_benefit_ranking(Who::request(
            &op,
            pb::ApproveBenefitRankingRequest {
                scheme_id: scheme.id.clone(),
                approval_act: "Determina dirigenziale n. 123".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ranking
        .unwrap();
    assert_eq!(approved.status, pb::BenefitRankingStatus::Approved as i32);
    let recompute = c
        .compute_benefit_ranking(Who::request(
            &op,
            pb::ComputeBenefitRankingRequest {
                scheme_id: scheme.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(recompute.code(), Code::FailedPrecondition);

    let decide = |id: &str, outcome: pb::BenefitDecisionOutcome, motivation: &str| {
        Who::request(
            &op,
            pb::DecideBenefitApplicationRequest {
                application_id: id.into(),
                outcome: outcome as i32,
                motivation: motivation.into(),
                decision_act: "Determina n. 124".into(),
                ..Default::default()
            },
        )
    };
    let unmotivated = c
        .decide_benefit_application(decide(&apps[1].1.id, pb::BenefitDecisionOutcome::Grant, ""))
        .await
        .unwrap_err();
    assert_eq!(fields(&unmotivated), ["motivation"]);
    let unfunded = c
        .decide_benefit_application(decide(
            &apps[0].1.id,
            pb::BenefitDecisionOutcome::Grant,
            "Requisiti verificati",
        ))
        .await
        .unwrap_err();
    assert_eq!(unfunded.code(), Code::FailedPrecondition);
    assert!(
        unfunded.message().contains("beyond the budget"),
        "{}",
        unfunded.message()
    );
    let granted_b = c
        .decide_benefit_application(decide(
            &apps[1].1.id,
            pb::BenefitDecisionOutcome::Grant,
            "Utilmente collocato in graduatoria",
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(status_of(&granted_b), pb::BenefitApplicationStatus::Granted);
    assert_eq!(granted_b.granted_amount, money(50_000));
    let schedule: Vec<(i32, i64)> = granted_b
        .payments
        .iter()
        .map(|p| (p.number, p.amount.unwrap().cents))
        .collect();
    assert_eq!(schedule, [(1, 25_000), (2, 25_000)]);
    c.decide_benefit_application(decide(
        &apps[4].1.id,
        pb::BenefitDecisionOutcome::Grant,
        "Utilmente collocato in graduatoria",
    ))
    .await
    .unwrap();
    for i in [0, 2] {
        let denied = c
            .decide_benefit_application(decide(
                &apps[i].1.id,
                pb::BenefitDecisionOutcome::Deny,
                "Non finanziabile per esaurimento dei fondi",
            ))
            .await
            .unwrap()
            .into_inner()
            .application
            .unwrap();
        assert_eq!(status_of(&denied), pb::BenefitApplicationStatus::Denied);
        assert!(denied.decision_time.is_some());
    }
    let update = next(&mut watch).await;
    assert_eq!(update.status, pb::BenefitApplicationStatus::Denied as i32);
    assert_eq!(
        update.transition.unwrap().note,
        "Non finanziabile per esaurimento dei fondi"
    );

    // B's schedule is set to three instalments; more than granted is refused.
    let pay = |n: i32, cents: i64| pb::BenefitPayment {
        number: n,
        due_date: (today() + chrono::Duration::days(30 * i64::from(n))).to_string(),
        amount: money(cents),
        ..Default::default()
    };
    let too_much = c
        .schedule_benefit_payments(Who::request(
            &op,
            pb::ScheduleBenefitPaymentsRequest {
                application_id: apps[1].1.id.clone(),
                payments: vec![pay(1, 30_000), pay(2, 30_000)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&too_much), ["payments"]);
    let rescheduled = c
        .schedule_benefit_payments(Who::request(
            &op,
            pb::ScheduleBenefitPaymentsRequest {
                application_id: apps[1].1.id.clone(),
                payments: vec![pay(1, 20_000), pay(2, 20_000), pay(3, 10_000)],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(rescheduled.payments.len(), 3);

    let mut watch_b = c
        .watch_benefit_application(Who::request(
            &apps[1].0,
            pb::WatchBenefitApplicationRequest {
                application_id: apps[1].1.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next(&mut watch_b).await.status,
        pb::BenefitApplicationStatus::Granted as i32
    );
    let record = |n: i32, status: pb::BenefitPaymentStatus| {
        Who::request(
            &op,
            pb::RecordBenefitPaymentRequest {
                application_id: apps[1].1.id.clone(),
                number: n,
                status: status as i32,
                paid_date: today().to_string(),
                payment_reference: format!("mandato n. {n}/2025"),
                note: String::new(),
            },
        )
    };
    c.record_benefit_payment(record(1, pb::BenefitPaymentStatus::Paid))
        .await
        .unwrap();
    let twice = c
        .record_benefit_payment(record(1, pb::BenefitPaymentStatus::Cancelled))
        .await
        .unwrap_err();
    assert!(
        twice
            .message()
            .contains("instalment 1 cannot go from PAID to CANCELLED"),
        "{}",
        twice.message()
    );
    let missing = c
        .record_benefit_payment(record(9, pb::BenefitPaymentStatus::Paid))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    c.record_benefit_payment(record(2, pb::BenefitPaymentStatus::Paid))
        .await
        .unwrap();
    let done = c
        .record_benefit_payment(record(3, pb::BenefitPaymentStatus::Cancelled))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(status_of(&done), pb::BenefitApplicationStatus::Completed);
    let completed = next(&mut watch_b).await;
    assert_eq!(
        completed.status,
        pb::BenefitApplicationStatus::Completed as i32
    );
    assert_eq!(
        completed.transition.unwrap().actor_role,
        pb::BenefitActorRole::System as i32
    );
    let history: Vec<i32> = done.history.iter().map(|t| t.to_status).collect();
    use pb::BenefitApplicationStatus as S;
    assert_eq!(
        history,
        [
            S::Draft as i32,
            S::Submitted as i32,
            S::UnderReview as i32,
            S::Admissible as i32,
            S::Granted as i32,
            S::Completed as i32
        ]
    );
    let late = c
        .withdraw_benefit_application(Who::request(
            &apps[1].0,
            pb::WithdrawBenefitApplicationRequest {
                application_id: apps[1].1.id.clone(),
                reason: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(
        late.message()
            .contains("cannot go from COMPLETED to WITHDRAWN"),
        "{}",
        late.message()
    );

    // E's benefit is revoked: the unpaid instalments are cancelled.
    let revoked = c
        .revoke_benefit(Who::request(
            &op,
            pb::RevokeBenefitRequest {
                application_id: apps[4].1.id.clone(),
                motivation: "Dichiarazione non veritiera accertata".into(),
                decision_act: "Determina n. 200".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(status_of(&revoked), pb::BenefitApplicationStatus::Revoked);
    assert!(
        revoked
            .payments
            .iter()
            .all(|p| p.status == pb::BenefitPaymentStatus::Cancelled as i32)
    );

    // The scheme's applications list in submission order; the citizen sees theirs.
    let listed = c
        .list_benefit_applications(Who::request(
            &op,
            pb::ListBenefitApplicationsRequest {
                scheme_id: scheme.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.page_info.unwrap().total_count, 5);
    let mine = c
        .list_citizen_benefit_applications(Who::request(
            &apps[0].0,
            pb::ListCitizenBenefitApplicationsRequest {
                keys: vec![citizen(a).fiscal_code],
                status: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        mine.items[0]
            .applications
            .iter()
            .any(|x| x.id == apps[0].1.id)
    );

    // Four online submissions and one integration count in Palermo's indicators.
    let after = palermo_interactions(&mut f.indicators).await;
    assert_eq!(after - before, 5, "{before} → {after}");
}

async fn palermo_interactions(c: &mut IndicatorsServiceClient<Channel>) -> i64 {
    let answer = c
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![PALERMO.into()],
            period: Some(common::Period {
                start_date: (today() - chrono::Duration::days(400)).to_string(),
                end_date: (today() + chrono::Duration::days(1)).to_string(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let palermo = &answer.items[0];
    assert!(
        palermo
            .procedures
            .iter()
            .any(|p| p.code == "social.benefit-application" && p.fully_online)
    );
    palermo.completed_interactions
}

/// Bad input names its fields; an empty request to every unary RPC answers a meaningful status.
async fn bad_input(f: &mut Fixture) {
    let c = &mut f.client;
    // Bad input from a caller the rule lets through, so the answer is about the input.
    let op = Who::operator(PALERMO);
    let mut scheme = ranked_scheme("BAD");
    scheme.istat_code = "999999".into();
    scheme.payment_count = 0;
    scheme.isee_threshold = money(-1);
    let status = c
        .create_benefit_scheme(Who::request(
            &op,
            pb::CreateBenefitSchemeRequest {
                scheme: Some(scheme),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&status),
        [
            "scheme.istat_code",
            "scheme.isee_threshold.cents",
            "scheme.payment_count"
        ]
    );

    let mut d = declaration(1100, 500_000, today(), 'Z');
    d.fiscal_code = "RSSMRA80A01G273A".into();
    d.isee = money(123);
    d.household_size = 0;
    let status = c
        .register_isee_declaration(Who::request(
            &op,
            pb::RegisterIseeDeclarationRequest {
                declaration: Some(d),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        ["declaration.fiscal_code", "declaration.household_size"]
    );

    let mut bad = draft("sch-082053-contributo", 1101, "");
    bad.iban = "IT60X0542811101000000123457".into();
    bad.attachments[0].sha256 = "not-a-hash".into();
    let status = c
        .create_benefit_application_draft(Who::request(
            &op,
            pb::CreateBenefitApplicationDraftRequest { draft: Some(bad) },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        ["draft.iban", "draft.attachments[0].sha256"]
    );
    let status = c
        .create_benefit_application_draft(Who::request(
            &op,
            pb::CreateBenefitApplicationDraftRequest {
                draft: Some(draft("no-such-scheme", 1101, "")),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["draft.scheme_id"]);
    let status = c
        .decide_benefit_application(Who::request(
            &op,
            pb::DecideBenefitApplicationRequest {
                application_id: "app-00052".into(),
                outcome: 7,
                granted_amount: money(-5),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&status),
        ["outcome", "motivation", "granted_amount.cents"]
    );
    let missing = c
        .submit_benefit_application(Who::request(
            &op,
            pb::SubmitBenefitApplicationRequest {
                application_id: "no-such-application".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let missing = c
        .get_benefit_ranking(Who::request(
            &op,
            pb::GetBenefitRankingRequest {
                scheme_id: "no-such-scheme".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Every unary RPC with an empty request.
    fn code<T>(r: Result<tonic::Response<T>, Status>) -> Code {
        match r {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        }
    }
    let codes = [
        (
            "ListBenefitSchemes",
            code(
                c.list_benefit_schemes(Who::request(&op, pb::ListBenefitSchemesRequest::default()))
                    .await,
            ),
        ),
        (
            "LookupBenefitSchemes",
            code(
                c.lookup_benefit_schemes(Who::request(
                    &op,
                    pb::LookupBenefitSchemesRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "ListMunicipalityBenefitSchemes",
            code(
                c.list_municipality_benefit_schemes(Who::request(
                    &op,
                    pb::ListMunicipalityBenefitSchemesRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "CreateBenefitScheme",
            code(
                c.create_benefit_scheme(Who::request(
                    &op,
                    pb::CreateBenefitSchemeRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "UpdateBenefitScheme",
            code(
                c.update_benefit_scheme(Who::request(
                    &op,
                    pb::UpdateBenefitSchemeRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "LookupIseeDeclarations",
            code(
                c.lookup_isee_declarations(Who::request(
                    &op,
                    pb::LookupIseeDeclarationsRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "ListCitizenIseeDeclarations",
            code(
                c.list_citizen_isee_declarations(Who::request(
                    &op,
                    pb::ListCitizenIseeDeclarationsRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "RegisterIseeDeclaration",
            code(
                c.register_isee_declaration(Who::request(
                    &op,
                    pb::RegisterIseeDeclarationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "ListBenefitApplications",
            code(
                c.list_benefit_applications(Who::request(
                    &op,
                    pb::ListBenefitApplicationsRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "LookupBenefitApplications",
            code(
                c.lookup_benefit_applications(Who::request(
                    &op,
                    pb::LookupBenefitApplicationsRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "ListCitizenBenefitApplications",
            code(
                c.list_citizen_benefit_applications(Who::request(
                    &op,
                    pb::ListCitizenBenefitApplicationsRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "CreateBenefitApplicationDraft",
            code(
                c.create_benefit_application_draft(Who::request(
                    &op,
                    pb::CreateBenefitApplicationDraftRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "UpdateBenefitApplicationDraft",
            code(
                c.update_benefit_application_draft(Who::request(
                    &op,
                    pb::UpdateBenefitApplicationDraftRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "SubmitBenefitApplication",
            code(
                c.submit_benefit_application(Who::request(
                    &op,
                    pb::SubmitBenefitApplicationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "WithdrawBenefitApplication",
            code(
                c.withdraw_benefit_application(Who::request(
                    &op,
                    pb::WithdrawBenefitApplicationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "AssignBenefitApplication",
            code(
                c.assign_benefit_application(Who::request(
                    &op,
                    pb::AssignBenefitApplicationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "RequestBenefitApplicationIntegration",
            code(
                c.request_benefit_application_integration(Who::request(
                    &op,
                    pb::RequestBenefitApplicationIntegrationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "SubmitBenefitApplicationIntegration",
            code(
                c.submit_benefit_application_integration(Who::request(
                    &op,
                    pb::SubmitBenefitApplicationIntegrationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "EvaluateBenefitApplication",
            code(
                c.evaluate_benefit_application(Who::request(
                    &op,
                    pb::EvaluateBenefitApplicationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "DecideBenefitApplication",
            code(
                c.decide_benefit_application(Who::request(
                    &op,
                    pb::DecideBenefitApplicationRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "RevokeBenefit",
            code(
                c.revoke_benefit(Who::request(&op, pb::RevokeBenefitRequest::default()))
                    .await,
            ),
        ),
        (
            "GetBenefitRanking",
            code(
                c.get_benefit_ranking(Who::request(&op, pb::GetBenefitRankingRequest::default()))
                    .await,
            ),
        ),
        (
            "ComputeBenefitRanking",
            code(
                c.compute_benefit_ranking(Who::request(
                    &op,
                    pb::ComputeBenefitRankingRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "ApproveBenefitRanking",
            code(
                c.approve_benefit_ranking(Who::request(
                    &op,
                    pb::ApproveBenefitRankingRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "ScheduleBenefitPayments",
            code(
                c.schedule_benefit_payments(Who::request(
                    &op,
                    pb::ScheduleBenefitPaymentsRequest::default(),
                ))
                .await,
            ),
        ),
        (
            "RecordBenefitPayment",
            code(
                c.record_benefit_payment(Who::request(
                    &op,
                    pb::RecordBenefitPaymentRequest::default(),
                ))
                .await,
            ),
        ),
    ];
    let reads = [
        "ListBenefitSchemes",
        "LookupBenefitSchemes",
        "ListMunicipalityBenefitSchemes",
        "LookupIseeDeclarations",
        "ListCitizenIseeDeclarations",
        "ListBenefitApplications",
        "LookupBenefitApplications",
        "ListCitizenBenefitApplications",
    ];
    for (rpc, got) in codes {
        let want = if reads.contains(&rpc) {
            Code::Ok
        } else {
            Code::InvalidArgument
        };
        assert_eq!(got, want, "{rpc}");
    }
    let watch = c
        .watch_benefit_application(Who::request(
            &op,
            pb::WatchBenefitApplicationRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::InvalidArgument);
    let watch = c
        .watch_benefit_application(Who::request(
            &op,
            pb::WatchBenefitApplicationRequest {
                application_id: "nope".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::NotFound);
}

fn import_row(i: usize, year: i32) -> pb::ImportIseeDeclarationsRequest {
    let mut d = declaration(
        20_000 + i,
        200_000 + (i as i64 % 100) * 10_000,
        today(),
        'I',
    );
    d.dsu_protocol = format!("INPS-ISEE-{year}-{:08}I-01", i);
    pb::ImportIseeDeclarationsRequest {
        declaration: Some(d),
    }
}

/// Import: three bad rows among 3,000 are reported and nothing is written; the clean extract is
/// written whole; a protocol of another declarant is a row error too.
async fn import(f: &mut Fixture) {
    let op = Who::operator(PALERMO);
    let year = today().year();
    let mut rows: Vec<_> = (0..3_000).map(|i| import_row(i, year)).collect();
    rows[10].declaration.as_mut().unwrap().fiscal_code = "XYZ".into();
    rows[499].declaration = None;
    rows[1499].declaration.as_mut().unwrap().dsu_protocol =
        rows[2].declaration.as_ref().unwrap().dsu_protocol.clone();
    let answer = f
        .client
        .import_isee_declarations(Who::request(&op, futures::stream::iter(rows.clone())))
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
            (11, "declaration.fiscal_code"),
            (500, "declaration"),
            (1500, "declaration.dsu_protocol")
        ]
    );
    let probe = |i: usize| pb::ListCitizenIseeDeclarationsRequest {
        keys: vec![citizen(20_000 + i).fiscal_code],
        valid_only: false,
    };
    let found = f
        .client
        .list_citizen_isee_declarations(Who::request(&op, probe(0)))
        .await
        .unwrap()
        .into_inner();
    assert!(found.items.is_empty(), "a failed import writes nothing");

    let good: Vec<_> = (0..3_000).map(|i| import_row(i, year)).collect();
    let answer = f
        .client
        .import_isee_declarations(Who::request(&op, futures::stream::iter(good)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.errors.len()), (3_000, 0));
    let found = f
        .client
        .list_citizen_isee_declarations(Who::request(&op, probe(2_999)))
        .await
        .unwrap()
        .into_inner();
    let d = &found.items[0].declarations[0];
    assert_eq!(d.source, pb::IseeSource::Import as i32);
    // Imported by Palermo: its operators may read it.
    let by_palermo = f
        .client
        .lookup_isee_declarations(Who::request(
            &op,
            pb::LookupIseeDeclarationsRequest {
                keys: vec![d.id.clone()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_palermo.items.len(), 1);

    // Re-importing replaces by protocol and keeps the id; a protocol of another declarant fails.
    let mut again = import_row(2_999, year);
    again.declaration.as_mut().unwrap().isee = money(210_000);
    again.declaration.as_mut().unwrap().isr = money(210_000);
    let mut stolen = import_row(5, year);
    stolen.declaration.as_mut().unwrap().fiscal_code = citizen(30_000).fiscal_code;
    let answer = f
        .client
        .import_isee_declarations(Who::request(
            &op,
            futures::stream::iter(vec![again.clone(), stolen]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 0);
    assert_eq!(answer.errors[0].row, 2);
    assert_eq!(answer.errors[0].field, "declaration.dsu_protocol");
    let answer = f
        .client
        .import_isee_declarations(Who::request(&op, futures::stream::iter(vec![again])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 1);
    let replaced = f
        .client
        .lookup_isee_declarations(Who::request(
            &Who::system(PALERMO),
            pb::LookupIseeDeclarationsRequest {
                keys: vec![d.id.clone()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        replaced.items[0].declaration.as_ref().unwrap().isee,
        money(210_000)
    );

    // Only a comune's operator or system imports.
    let refused = f
        .client
        .import_isee_declarations(Who::request(
            &Who::Citizen(citizen(1).fiscal_code),
            futures::stream::iter(vec![import_row(9_999, year)]),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

/// The access rule for every kind of caller, on the demo data.
async fn access_rule(f: &mut Fixture) {
    let palermo_index = patto_service_kit::comuni::all()
        .iter()
        .position(|c| c.istat_code == PALERMO)
        .unwrap();
    let app_id = format!("app-{palermo_index:05}");
    let owner = Who::Citizen(citizen(palermo_index).fiscal_code);
    let stranger = Who::Citizen(citizen(palermo_index + 1).fiscal_code);
    let (op, other_op, sys) = (
        Who::operator(PALERMO),
        Who::operator(BAGHERIA),
        Who::system(PALERMO),
    );
    let s = &mut f.client;

    // Reads of one application: owner, same-comune operator and system yes; others left out. The
    // citizen's ISEE listed under their fiscal code: refused to other citizens and anonymous callers,
    // empty for another comune.
    let cases = [
        (&Who::Anonymous, false, Some(Code::Unauthenticated)),
        (&owner, true, None),
        (&stranger, false, Some(Code::PermissionDenied)),
        (&op, true, None),
        (&sys, true, None),
        (&other_op, false, None),
    ];
    for (who, readable, isee_refusal) in cases {
        let found = s
            .lookup_benefit_applications(Who::request(
                who,
                pb::LookupBenefitApplicationsRequest {
                    keys: vec![app_id.clone()],
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.items.len() == 1, readable, "{who:?} lookup");
        let watch = s
            .watch_benefit_application(Who::request(
                who,
                pb::WatchBenefitApplicationRequest {
                    application_id: app_id.clone(),
                },
            ))
            .await;
        match (watch, readable) {
            (Ok(_), true) => {}
            (Err(e), false) => assert_eq!(
                e.code(),
                if *who == Who::Anonymous {
                    Code::Unauthenticated
                } else {
                    Code::PermissionDenied
                },
                "{who:?}: {e:?}"
            ),
            (got, _) => panic!("{who:?} watch: {:?}", got.map(|_| ())),
        }
        let isee = s
            .list_citizen_isee_declarations(Who::request(
                who,
                pb::ListCitizenIseeDeclarationsRequest {
                    keys: vec![citizen(palermo_index).fiscal_code],
                    valid_only: false,
                },
            ))
            .await;
        assert_eq!(
            isee.as_ref().err().map(Status::code),
            isee_refusal,
            "{who:?} ISEE"
        );
        if let Ok(isee) = isee {
            // The demo ISEE was registered by the citizen and relied on by a Palermo application.
            assert_eq!(
                !isee.into_inner().items.is_empty(),
                readable,
                "{who:?} ISEE"
            );
        }
    }

    // Listings are narrowed to what the caller may see; asking for more is refused.
    let list = |who: &Who, istat: &str, applicant: &str| {
        Who::request(
            who,
            pb::ListBenefitApplicationsRequest {
                istat_code: istat.into(),
                applicant_fiscal_code: applicant.into(),
                page: Some(common::PageRequest {
                    first: 100,
                    after: String::new(),
                }),
                ..Default::default()
            },
        )
    };
    let mine = s
        .list_benefit_applications(list(&owner, "", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!mine.applications.is_empty());
    assert!(
        mine.applications
            .iter()
            .all(|a| a.applicant_fiscal_code == citizen(palermo_index).fiscal_code)
    );
    let theirs = s
        .list_benefit_applications(list(&stranger, "", &citizen(palermo_index).fiscal_code))
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::PermissionDenied);
    let comune = s
        .list_benefit_applications(list(&op, "", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(comune.page_info.unwrap().total_count >= 24);
    assert!(comune.applications.iter().all(|a| a.istat_code == PALERMO));
    let elsewhere = s
        .list_benefit_applications(list(&other_op, PALERMO, ""))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied);
    let anonymous = s
        .list_benefit_applications(list(&Who::Anonymous, "", ""))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    // Public: published schemes for anyone, drafts for the comune's operators only.
    let draft_id = demo::scheme_id(PALERMO, "nido");
    for (who, sees_draft) in [(&Who::Anonymous, false), (&other_op, false), (&op, true)] {
        let schemes = s
            .list_benefit_schemes(Who::request(
                who,
                pb::ListBenefitSchemesRequest {
                    istat_code: PALERMO.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(schemes.schemes.len() >= 4, "{who:?}");
        assert_eq!(
            schemes.schemes.iter().any(|x| x.id == draft_id),
            sees_draft,
            "{who:?}"
        );
        let looked = s
            .lookup_benefit_schemes(Who::request(
                who,
                pb::LookupBenefitSchemesRequest {
                    keys: vec![draft_id.clone()],
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(looked.items.len() == 1, sees_draft, "{who:?}");
    }
    let drafts = s
        .list_benefit_schemes(Who::request(
            &Who::Anonymous,
            pb::ListBenefitSchemesRequest {
                status: pb::BenefitSchemeStatus::Draft as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(drafts.code(), Code::Unauthenticated);

    // Rankings: anonymised for the public, named for the comune.
    let contributo = demo::scheme_id(PALERMO, "contributo");
    for (who, named) in [
        (&Who::Anonymous, false),
        (&other_op, false),
        (&owner, false),
        (&op, true),
    ] {
        let ranking = s
            .get_benefit_ranking(Who::request(
                who,
                pb::GetBenefitRankingRequest {
                    scheme_id: contributo.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .ranking
            .unwrap();
        assert_eq!(ranking.status, pb::BenefitRankingStatus::Approved as i32);
        assert!(!ranking.entries.is_empty());
        for e in &ranking.entries {
            assert!(e.protocol_number.starts_with("SOC-082053-"));
            assert_eq!(!e.application_id.is_empty(), named, "{who:?}");
            assert_eq!(e.isee.is_some(), named, "{who:?}");
        }
        if named {
            // The named ranking showed each applicant's ISEE to the operator: each applicant's
            // log says so.
            let first = s
                .lookup_benefit_applications(Who::request(
                    &sys,
                    pb::LookupBenefitApplicationsRequest {
                        keys: vec![ranking.entries[0].application_id.clone()],
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .items
                .remove(0)
                .application
                .unwrap();
            let applicant = Who::Citizen(first.applicant_fiscal_code.clone());
            let log = personal_data_reads(&f.server.channel().await, &applicant, "", "")
                .await
                .unwrap();
            assert!(
                log.iter().any(|r| r.what == "social.BenefitRanking"
                    && r.reader_role == "operator"
                    && r.reader_istat_code == PALERMO),
                "{log:?}"
            );
        }
    }

    // Changes: the citizen acts for themself, the comune for its own records.
    let assign = |who: &Who| {
        Who::request(
            who,
            pb::AssignBenefitApplicationRequest {
                application_id: app_id.clone(),
                caseworker: citizen(7).fiscal_code,
            },
        )
    };
    let e = s
        .assign_benefit_application(assign(&owner))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = s
        .assign_benefit_application(assign(&other_op))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = s
        .assign_benefit_application(assign(&Who::Anonymous))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let scheme = demo::scheme_id(BAGHERIA, "maternita");
    let for_someone_else = s
        .create_benefit_application_draft(Who::request(
            &stranger,
            pb::CreateBenefitApplicationDraftRequest {
                draft: Some(draft(&scheme, palermo_index + 2, "")),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(for_someone_else.code(), Code::PermissionDenied);
    let own = s
        .create_benefit_application_draft(Who::request(
            &Who::Citizen(citizen(palermo_index + 2).fiscal_code),
            pb::CreateBenefitApplicationDraftRequest {
                draft: Some(draft(&scheme, palermo_index + 2, "")),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(own.istat_code, BAGHERIA);
    let by_operator = s
        .create_benefit_application_draft(Who::request(
            &Who::operator(BAGHERIA),
            pb::CreateBenefitApplicationDraftRequest {
                draft: Some(draft(&scheme, palermo_index + 3, "")),
            },
        ))
        .await;
    assert!(
        by_operator.is_ok(),
        "an operator files on the citizen's behalf"
    );
}

async fn whole_suite(db: DatabaseConnection) {
    let mut f = start(db).await;
    workflow(&mut f).await;
    bad_input(&mut f).await;
    import(&mut f).await;
    access_rule(&mut f).await;
    f.server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn social_on_sqlite() {
    whole_suite(testing::sqlite::<Migrator>().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn social_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    whole_suite(pg.migrated::<Migrator>().await.expect("migrate")).await;
}

#[tokio::test]
async fn demo_data_covers_every_comune_and_seeds_once() {
    let store = Store::new(testing::sqlite::<Migrator>().await, SALT);
    let now = Utc::now();
    let created = demo::seed(&store, now).await.unwrap();
    assert!(created > 82 + 24, "{created}");
    assert_eq!(
        demo::seed(&store, now).await.unwrap(),
        0,
        "a second seed adds nothing"
    );
    let server = serve(store).await;
    let mut client = SocialServiceClient::new(server.channel().await);
    let keys: Vec<String> = patto_service_kit::comuni::all()
        .iter()
        .map(|c| c.istat_code.clone())
        .collect();
    let per_comune = client
        .list_municipality_benefit_schemes(pb::ListMunicipalityBenefitSchemesRequest {
            keys,
            open_only: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(per_comune.items.len(), 82);
    for item in &per_comune.items {
        let kinds: Vec<i32> = item.schemes.iter().map(|s| s.kind).collect();
        assert!(
            kinds.contains(&(pb::BenefitKind::MaternityAllowance as i32)),
            "{}",
            item.key
        );
        let maternity = item
            .schemes
            .iter()
            .find(|s| s.kind == pb::BenefitKind::MaternityAllowance as i32)
            .unwrap();
        assert_eq!(maternity.isee_threshold, money(2_038_290));
        assert_eq!(
            (maternity.amount, maternity.payment_count),
            (money(40_740), 5)
        );
    }
    // Every stage of the procedure is represented, and some benefits were paid: each comune's
    // system lists its own applications.
    let mut statuses = std::collections::BTreeSet::new();
    let mut paid = 0;
    for comune in patto_service_kit::comuni::all() {
        let mut after = String::new();
        loop {
            let page = client
                .list_benefit_applications(Who::system(&comune.istat_code).request(
                    pb::ListBenefitApplicationsRequest {
                        page: Some(common::PageRequest {
                            first: 100,
                            after: after.clone(),
                        }),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            for a in &page.applications {
                assert_eq!(a.istat_code, comune.istat_code);
                statuses.insert(a.status);
                paid += a
                    .payments
                    .iter()
                    .filter(|p| p.status == pb::BenefitPaymentStatus::Paid as i32)
                    .count();
            }
            let info = page.page_info.unwrap();
            if !info.has_next_page {
                break;
            }
            after = info.end_cursor;
        }
    }
    use pb::BenefitApplicationStatus as S;
    for s in [
        S::Draft,
        S::Submitted,
        S::UnderReview,
        S::IntegrationRequested,
        S::Admissible,
        S::NotAdmissible,
        S::Granted,
        S::Denied,
    ] {
        assert!(statuses.contains(&(s as i32)), "{s:?} in {statuses:?}");
    }
    assert!(paid > 0);
    let ranking = client
        .get_benefit_ranking(pb::GetBenefitRankingRequest {
            scheme_id: demo::scheme_id(PALERMO, "contributo"),
        })
        .await
        .unwrap()
        .into_inner()
        .ranking
        .unwrap();
    let funded = ranking.entries.iter().filter(|e| e.funded).count();
    assert!((1..=10).contains(&funded), "{funded}");
}

/// A fresh service with Palermo's ranked scheme and citizen `n`'s draft application on it.
async fn one_application(
    n: usize,
) -> (
    TestServer,
    SocialServiceClient<Channel>,
    pb::BenefitApplication,
) {
    let server = serve(Store::new(testing::sqlite::<Migrator>().await, SALT)).await;
    let mut client = SocialServiceClient::new(server.channel().await);
    let scheme = client
        .create_benefit_scheme(
            Who::operator(PALERMO).request(pb::CreateBenefitSchemeRequest {
                scheme: Some(ranked_scheme("TEST-ACCESS")),
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .scheme
        .unwrap();
    let isee = register(&mut client, declaration(n, 500_000, today(), 'A')).await;
    let application = client
        .create_benefit_application_draft(Who::citizen(&citizen(n).fiscal_code).request(
            pb::CreateBenefitApplicationDraftRequest {
                draft: Some(draft(&scheme.id, n, &isee.id)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    (server, client, application)
}

/// The access rule over real gRPC, cell by cell, on a citizen's benefit application: watching it
/// and listing it under the citizen's fiscal code (personal reads; a lookup leaves out what the
/// caller may not see), and editing the draft (a change for the citizen).
#[tokio::test]
async fn access_matrix() {
    let (server, mut client, mine) = one_application(2001).await;
    let me = citizen(2001).fiscal_code;
    let ok = None;
    let denied = Some(Code::PermissionDenied);
    let unauthenticated = Some(Code::Unauthenticated);
    // (caller, watch, (citizen listing, rows), lookup rows, draft edit)
    let cases = [
        ("the citizen", Who::citizen(&me), ok, (ok, 1), 1, ok),
        (
            "another citizen",
            Who::citizen(&citizen(2002).fiscal_code),
            denied,
            (denied, 0),
            0,
            denied,
        ),
        (
            "operator, same comune",
            Who::operator(PALERMO),
            ok,
            (ok, 1),
            1,
            ok,
        ),
        (
            "system, same comune",
            Who::system(PALERMO),
            ok,
            (ok, 1),
            1,
            ok,
        ),
        (
            "operator, other comune",
            Who::operator(BAGHERIA),
            denied,
            (ok, 0),
            0,
            denied,
        ),
        (
            "system, other comune",
            Who::system(BAGHERIA),
            denied,
            (ok, 0),
            0,
            denied,
        ),
        (
            "anonymous",
            Who::Anonymous,
            unauthenticated,
            (unauthenticated, 0),
            0,
            unauthenticated,
        ),
    ];
    let mut statement = mine.statement.clone();
    for (n, (name, who, watch, (listing, listed), looked_up, edit)) in cases.into_iter().enumerate()
    {
        let got = client
            .watch_benefit_application(who.request(pb::WatchBenefitApplicationRequest {
                application_id: mine.id.clone(),
            }))
            .await;
        assert_eq!(code_of(&got), watch, "{name}: watch");
        drop(got);

        let got = client
            .list_citizen_benefit_applications(who.request(
                pb::ListCitizenBenefitApplicationsRequest {
                    keys: vec![me.clone()],
                    status: 0,
                },
            ))
            .await;
        assert_eq!(code_of(&got), listing, "{name}: citizen listing");
        if let Ok(answer) = got {
            let rows = answer
                .into_inner()
                .items
                .iter()
                .flat_map(|i| i.applications.iter())
                .filter(|a| a.id == mine.id)
                .count();
            assert_eq!(rows, listed, "{name}: citizen listing rows");
        }

        let found = client
            .lookup_benefit_applications(who.request(pb::LookupBenefitApplicationsRequest {
                keys: vec![mine.id.clone()],
            }))
            .await
            .unwrap_or_else(|e| panic!("{name}: lookup: {e:?}"))
            .into_inner()
            .items;
        assert_eq!(found.len(), looked_up, "{name}: lookup");

        let mut changed = draft(&mine.scheme_id, 2001, &mine.isee_declaration_id);
        changed.statement = format!("Spese per l'affitto, versione {n}");
        let got = client
            .update_benefit_application_draft(who.request(
                pb::UpdateBenefitApplicationDraftRequest {
                    application_id: mine.id.clone(),
                    draft: Some(changed.clone()),
                },
            ))
            .await;
        assert_eq!(code_of(&got), edit, "{name}: edit the draft");
        if got.is_ok() {
            statement = changed.statement;
        }
        let now = client
            .lookup_benefit_applications(Who::citizen(&me).request(
                pb::LookupBenefitApplicationsRequest {
                    keys: vec![mine.id.clone()],
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .items
            .remove(0)
            .application
            .unwrap();
        assert_eq!(
            now.statement, statement,
            "{name}: a refused change changes nothing"
        );
    }
    server.stop().await.expect("clean stop");
}

/// Reads of a citizen's application by others are recorded before the answer leaves; the citizen
/// lists the reads of their data, the comune the reads of the data it holds, nobody else's.
#[tokio::test]
async fn audit_of_personal_data_reads() {
    let (server, mut client, mine) = one_application(2101).await;
    let me = citizen(2101).fiscal_code;
    let channel = server.channel().await;

    // Palermo's operator reads the application, declaring the purpose.
    let request = Who::operator(PALERMO).request_with_purpose(
        pb::LookupBenefitApplicationsRequest {
            keys: vec![mine.id.clone()],
        },
        "purpose-istruttoria",
    );
    let found = client
        .lookup_benefit_applications(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.items.len(), 1);
    // The citizen's own reads, and Bagheria's operator who sees nothing, record nothing.
    for who in [Who::citizen(&me), Who::operator(BAGHERIA)] {
        client
            .lookup_benefit_applications(who.request(pb::LookupBenefitApplicationsRequest {
                keys: vec![mine.id.clone()],
            }))
            .await
            .unwrap();
    }
    client
        .list_citizen_benefit_applications(Who::citizen(&me).request(
            pb::ListCitizenBenefitApplicationsRequest {
                keys: vec![me.clone()],
                status: 0,
            },
        ))
        .await
        .unwrap();

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
            "social.BenefitApplication",
            "purpose-istruttoria",
            "social",
        ]
    );
    assert!(read.read_at.is_some());

    // The comune lists its own log; another comune, another citizen and anonymous callers may not.
    let palermo = personal_data_reads(&channel, &Who::system(PALERMO), &me, "").await;
    assert_eq!(palermo.unwrap().len(), 1);
    assert_refused(
        personal_data_reads(&channel, &Who::operator(BAGHERIA), "", PALERMO).await,
        Code::PermissionDenied,
        "Bagheria listing Palermo's log",
    );
    let bagheria = personal_data_reads(&channel, &Who::operator(BAGHERIA), &me, "").await;
    assert!(
        bagheria.unwrap().is_empty(),
        "Bagheria's log holds no read of Palermo's data"
    );
    let other = Who::citizen(&citizen(2102).fiscal_code);
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

    // A watch is a read too, recorded when it opens; the comune's system listing its applications
    // reads them all.
    drop(
        client
            .watch_benefit_application(Who::system(PALERMO).request(
                pb::WatchBenefitApplicationRequest {
                    application_id: mine.id.clone(),
                },
            ))
            .await
            .unwrap(),
    );
    let listed = client
        .list_benefit_applications(
            Who::system(PALERMO).request(pb::ListBenefitApplicationsRequest::default()),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.applications.len(), 1);
    let entries = personal_data_reads(&channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    let who_read: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.reader_subject.as_str(), e.purpose_id.as_str()))
        .collect();
    assert_eq!(
        who_read,
        [
            ("system@082053", ""),
            ("system@082053", ""),
            ("operator@082053", "purpose-istruttoria")
        ],
        "newest first"
    );
    server.stop().await.expect("clean stop");
}
