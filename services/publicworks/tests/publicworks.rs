//! The public works service end to end over real gRPC, on SQLite and on PostgreSQL: CUP and CIG
//! checked at the edge, the state machine, SAL deadlines and late flags, the open-data export
//! stream (metadata first, CSV that parses back), an empty request to every unary RPC, the
//! all-or-nothing import, the write rule, and the demo data for the 82 comuni.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use futures::StreamExt;
use patto_proto::common::v1 as common;
use patto_proto::common::v1::indicators_service_client::IndicatorsServiceClient;
use patto_proto::publicworks::v1 as pb;
use patto_proto::publicworks::v1::ProjectState as State;
use patto_proto::publicworks::v1::public_works_service_client::PublicWorksServiceClient;
use patto_publicworks::domain::sal::SalTerms;
use patto_publicworks::domain::{italian_day, state_name};
use patto_publicworks::{Migrator, demo, store::Store};
use patto_service_kit::procurement::{parse_cig, parse_cup};
use patto_service_kit::testing::{
    self, HeaderPrincipal, TestPostgres, TestServer, Who, assert_refused, personal_data_reads,
};
use sea_orm::DatabaseConnection;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const PALERMO: &str = "082053";
const ALIA: &str = "082001";
const BAGHERIA: &str = "082006";

type Client = PublicWorksServiceClient<Channel>;

struct Fixture {
    server: TestServer,
    client: Client,
    channel: Channel,
    store: Store,
}

async fn start(db: DatabaseConnection) -> Fixture {
    let store = Store::new(db);
    assert!(demo::seed(&store, Utc::now()).await.expect("seed") > 0);
    let server = TestServer::start(
        patto_publicworks::app(store.clone()).with_authenticator(Arc::new(HeaderPrincipal)),
    )
    .await;
    let channel = server.channel().await;
    Fixture {
        client: PublicWorksServiceClient::new(channel.clone()),
        channel,
        server,
        store,
    }
}

/// `message` from an operator of Palermo, whose works most of the suite changes. Reads go
/// unsigned: public works are public.
fn op<T>(message: T) -> tonic::Request<T> {
    Who::operator(PALERMO).request(message)
}

/// `message` from the system of Alia, which imports its programme.
fn alia<T>(message: T) -> tonic::Request<T> {
    Who::system(ALIA).request(message)
}

fn today() -> NaiveDate {
    italian_day(Utc::now())
}

fn ago(days: i64) -> String {
    (today() - Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

fn money(cents: i64) -> Option<common::Money> {
    Some(common::Money { cents })
}

/// The fields a BadRequest names.
fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn new_project(cup: &str, title: &str) -> pb::Project {
    pb::Project {
        istat_code: PALERMO.into(),
        cup: cup.into(),
        title: title.into(),
        description: "Opera di prova".into(),
        category: pb::ProjectCategory::Schools as i32,
        programme: Some(pb::ProjectProgramme {
            first_year: today().format("%Y").to_string().parse().unwrap(),
            in_annual_list: true,
            ..Default::default()
        }),
        budget: money(100_000_000),
        funding: vec![pb::ProjectFunding {
            source: pb::ProjectFundingSource::PonMetro as i32,
            amount: money(80_000_000),
            reference: "PA2.2.1".into(),
        }],
        ..Default::default()
    }
}

async fn create(client: &mut Client, cup: &str, title: &str) -> pb::Project {
    client
        .create_project(op(pb::CreateProjectRequest {
            project: Some(new_project(cup, title)),
        }))
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
}

async fn advance(
    client: &mut Client,
    id: &str,
    state: State,
    date: &str,
    note: &str,
) -> Result<pb::Project, tonic::Status> {
    client
        .advance_project_state(op(pb::AdvanceProjectStateRequest {
            project_id: id.into(),
            state: state as i32,
            date: date.into(),
            note: note.into(),
        }))
        .await
        .map(|r| r.into_inner().project.expect("project"))
}

fn contractor() -> Option<pb::ProjectContractor> {
    Some(pb::ProjectContractor {
        name: "Costruzioni Esempio s.r.l.".into(),
        vat_number: "00743110157".into(),
    })
}

/// CUP format and CIG check characters, at the edge of the service.
async fn cup_and_cig(f: &mut Fixture) {
    for bad in [
        "J87G2200036000",
        "187G22000360002",
        "J87G2X000360002",
        "J87G99000360002",
    ] {
        let err = f
            .client
            .create_project(op(pb::CreateProjectRequest {
                project: Some(new_project(bad, "CUP sbagliato")),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(fields(&err), ["project.cup"], "{bad}");
    }
    let p = create(&mut f.client, "j99b24000010001", "Scuola di prova").await;
    assert_eq!(p.cup, "J99B24000010001", "stored in canonical form");
    assert_eq!(p.state, State::Programmato as i32);
    assert_eq!(
        p.programme.as_ref().unwrap().last_year,
        p.programme.as_ref().unwrap().first_year + 2
    );
    let dup = f
        .client
        .create_project(op(pb::CreateProjectRequest {
            project: Some(new_project("J99B24000010001", "Doppione")),
        }))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");

    advance(&mut f.client, &p.id, State::Progettazione, "", "")
        .await
        .unwrap();
    advance(&mut f.client, &p.id, State::Affidamento, "", "")
        .await
        .unwrap();
    let award = |cig: &str, first: bool| pb::AwardProjectContractRequest {
        project_id: p.id.clone(),
        cig: cig.into(),
        contractor: if first { contractor() } else { None },
        contract_amount: if first { money(70_000_000) } else { None },
    };
    // (CIG, valid): the DOMAIN.md §12 vectors and their corruptions.
    let vectors = [
        ("8874674CA8", false),
        ("8874675CA7", false),
        ("Z073947806", false),
        ("W063947806", false),
        ("8874674CA", false),
        ("", false),
        ("8874674CA7", true),
        ("z063947806", true),
    ];
    let mut first = true;
    for (cig, valid) in vectors {
        let answer = f.client.award_project_contract(op(award(cig, first))).await;
        if valid {
            let project = answer
                .unwrap_or_else(|e| panic!("{cig}: {e:?}"))
                .into_inner()
                .project
                .unwrap();
            assert!(project.cigs.contains(&cig.to_ascii_uppercase()), "{cig}");
            first = false;
        } else {
            let err = answer.unwrap_err();
            assert_eq!(
                (err.code(), fields(&err)),
                (Code::InvalidArgument, vec!["cig".to_owned()]),
                "{cig}"
            );
        }
    }
    let again = f
        .client
        .award_project_contract(op(award("8874674CA7", false)))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let bad_vat = f
        .client
        .award_project_contract(op(pb::AwardProjectContractRequest {
            contractor: Some(pb::ProjectContractor {
                name: "X".into(),
                vat_number: "00743110158".into(),
            }),
            ..award("9999999ED7", false)
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&bad_vat), ["cig", "contractor.vat_number"]);
}

/// Every illegal move of a demo work in each state is refused naming both states; a new work goes
/// the whole way, with what each state needs.
async fn state_machine(f: &mut Fixture) {
    use State as S;
    let all = [
        S::Programmato,
        S::Progettazione,
        S::Affidamento,
        S::Consegna,
        S::InEsecuzione,
        S::Sospeso,
        S::Ultimato,
        S::Collaudato,
    ];
    let legal = [
        (S::Programmato, S::Progettazione),
        (S::Progettazione, S::Affidamento),
        (S::Affidamento, S::Consegna),
        (S::Consegna, S::InEsecuzione),
        (S::InEsecuzione, S::Sospeso),
        (S::Sospeso, S::InEsecuzione),
        (S::InEsecuzione, S::Ultimato),
        (S::Ultimato, S::Collaudato),
    ];
    for from in all {
        let work = f
            .client
            .list_projects(pb::ListProjectsRequest {
                istat_code: PALERMO.into(),
                states: vec![from as i32],
                page: Some(common::PageRequest {
                    first: 1,
                    after: String::new(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .projects
            .pop()
            .unwrap_or_else(|| panic!("a demo work in {from:?}"));
        for to in all {
            if legal.contains(&(from, to)) {
                continue;
            }
            let err = advance(&mut f.client, &work.id, to, "", "motivo")
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition, "{from:?} → {to:?}");
            assert!(
                err.message()
                    .contains(&format!("from {} to {}", state_name(from), state_name(to))),
                "{}",
                err.message()
            );
        }
    }

    // A whole life, with what each step needs.
    let p = create(&mut f.client, "", "Ciclo completo").await;
    let no_cup = advance(&mut f.client, &p.id, S::Progettazione, "", "")
        .await
        .unwrap_err();
    assert_eq!(no_cup.code(), Code::FailedPrecondition);
    assert!(no_cup.message().contains("a CUP"), "{}", no_cup.message());
    let mut with_cup = p.clone();
    with_cup.cup = "J99B24000020002".into();
    f.client
        .update_project(op(pb::UpdateProjectRequest {
            project: Some(with_cup),
        }))
        .await
        .unwrap();
    advance(&mut f.client, &p.id, S::Progettazione, "", "")
        .await
        .unwrap();
    let back = advance(&mut f.client, &p.id, S::Affidamento, &ago(1), "")
        .await
        .unwrap_err();
    assert_eq!(
        (back.code(), fields(&back)),
        (Code::InvalidArgument, vec!["date".to_owned()])
    );
    let future = advance(&mut f.client, &p.id, S::Affidamento, &ago(-1), "")
        .await
        .unwrap_err();
    assert_eq!(fields(&future), ["date"]);
    advance(&mut f.client, &p.id, S::Affidamento, "", "")
        .await
        .unwrap();
    let no_award = advance(&mut f.client, &p.id, S::Consegna, "", "")
        .await
        .unwrap_err();
    assert_eq!(no_award.code(), Code::FailedPrecondition);
    assert!(no_award.message().contains("a CIG") && no_award.message().contains("a contractor"));
    f.client
        .award_project_contract(op(pb::AwardProjectContractRequest {
            project_id: p.id.clone(),
            cig: "8874674CA7".into(),
            contractor: contractor(),
            contract_amount: money(90_000_000),
        }))
        .await
        .unwrap();
    advance(&mut f.client, &p.id, S::Consegna, "", "Verbale di consegna")
        .await
        .unwrap();
    advance(&mut f.client, &p.id, S::InEsecuzione, "", "")
        .await
        .unwrap();
    let no_reason = advance(&mut f.client, &p.id, S::Sospeso, "", " ")
        .await
        .unwrap_err();
    assert_eq!(fields(&no_reason), ["note"]);
    advance(
        &mut f.client,
        &p.id,
        S::Sospeso,
        "",
        "Variante in corso d'opera",
    )
    .await
    .unwrap();
    let incompiuta = f
        .client
        .set_project_incompiuta(op(pb::SetProjectIncompiutaRequest {
            project_id: p.id.clone(),
            incompiuta: true,
            note: "Finanziamento esaurito".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert!(incompiuta.incompiuta);
    advance(&mut f.client, &p.id, S::InEsecuzione, "", "")
        .await
        .unwrap();
    advance(&mut f.client, &p.id, S::Ultimato, "", "")
        .await
        .unwrap();
    let incomplete = advance(&mut f.client, &p.id, S::Collaudato, "", "")
        .await
        .unwrap_err();
    assert_eq!(incomplete.code(), Code::FailedPrecondition);
    assert!(
        incomplete.message().contains("incompiuta"),
        "{}",
        incomplete.message()
    );
    f.client
        .set_project_incompiuta(op(pb::SetProjectIncompiutaRequest {
            project_id: p.id.clone(),
            incompiuta: false,
            note: String::new(),
        }))
        .await
        .unwrap();
    let done = advance(&mut f.client, &p.id, S::Collaudato, "", "")
        .await
        .unwrap();
    let path: Vec<i32> = done.history.iter().map(|h| h.state).collect();
    assert_eq!(
        path,
        [
            S::Programmato,
            S::Progettazione,
            S::Affidamento,
            S::Consegna,
            S::InEsecuzione,
            S::Sospeso,
            S::InEsecuzione,
            S::Ultimato,
            S::Collaudato
        ]
        .map(|s| s as i32)
    );
    assert_eq!(
        done.history.last().unwrap().date,
        ago(0),
        "no date means today"
    );
    let marked = f
        .client
        .set_project_incompiuta(op(pb::SetProjectIncompiutaRequest {
            project_id: p.id.clone(),
            incompiuta: true,
            note: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(marked.code(), Code::FailedPrecondition);
}

/// A work in execution with its SAL: deadlines from the comune's terms, late flags from the dates.
async fn sal_deadlines(f: &mut Fixture) {
    let programmed = create(&mut f.client, "", "Non ancora iniziata").await;
    let early = f
        .client
        .record_sal(op(pb::RecordSalRequest {
            project_id: programmed.id.clone(),
            date: ago(0),
            progress_basis_points: 100,
            amount: money(1),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        early.code(),
        Code::FailedPrecondition,
        "no SAL before the works start"
    );

    // A work that started 90 days ago arrives by import, with its past; its SAL come by RPC.
    let mut row = import_row(0);
    {
        let w = row.project.as_mut().unwrap();
        w.istat_code = PALERMO.into();
        w.cup = "J99B24000030003".into();
        w.title = "Lavori con SAL".into();
        w.external_ref = "SAL-1".into();
        w.cigs = vec!["Z063947806".into()];
        w.contract_amount = money(80_000_000);
        w.sal_entries.clear();
        w.history[3].date = ago(100);
        w.history[4].date = ago(90);
    }
    let answer = f
        .client
        .import_projects(op(futures::stream::iter([row])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.imported, answer.error_count),
        (1, 0),
        "{:?}",
        answer.errors
    );
    let p = f
        .client
        .list_projects(pb::ListProjectsRequest {
            text: "J99B24000030003".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .projects
        .pop()
        .expect("the imported work");
    assert_eq!(p.state, State::InEsecuzione as i32);

    let sal = |date: String, progress: i32, cents: i64| pb::RecordSalRequest {
        project_id: p.id.clone(),
        date,
        progress_basis_points: progress,
        amount: money(cents),
    };
    let first = f
        .client
        .record_sal(op(sal(ago(60), 2000, 16_000_000)))
        .await
        .unwrap()
        .into_inner();
    let s1 = first.sal_entry.unwrap();
    assert_eq!(
        (s1.number, s1.certificate_due_date.as_str()),
        (1, ago(53).as_str())
    );
    assert!(
        s1.certificate_late,
        "no certificate 53 days after it was due"
    );
    assert!(!s1.payment_late && s1.payment_due_date.is_empty());

    let certificate = |n: i32, date: String, cents: i64| pb::IssueSalCertificateRequest {
        project_id: p.id.clone(),
        sal_number: n,
        issued_date: date,
        amount: money(cents),
    };
    let s1 = f
        .client
        .issue_sal_certificate(op(certificate(1, ago(50), 15_200_000)))
        .await
        .unwrap()
        .into_inner()
        .sal_entry
        .unwrap();
    assert!(s1.certificate_late, "issued three days after its due day");
    assert_eq!(s1.payment_due_date, ago(20));
    assert!(s1.payment_late, "unpaid twenty days after its due day");
    let s1 = f
        .client
        .record_sal_payment(op(pb::RecordSalPaymentRequest {
            project_id: p.id.clone(),
            sal_number: 1,
            paid_date: ago(10),
            amount: money(15_200_000),
        }))
        .await
        .unwrap()
        .into_inner()
        .sal_entry
        .unwrap();
    assert!(s1.payment_late, "paid ten days after its due day");

    let before = f
        .client
        .record_sal(op(sal(ago(61), 3000, 1)))
        .await
        .unwrap_err();
    assert_eq!(fields(&before), ["date"]);
    let backwards = f
        .client
        .record_sal(op(sal(ago(30), 1000, 1)))
        .await
        .unwrap_err();
    assert_eq!(fields(&backwards), ["progress_basis_points"]);
    let over = f
        .client
        .record_sal(op(sal(ago(30), 3000, 90_000_000)))
        .await
        .unwrap_err();
    assert_eq!(fields(&over), ["amount.cents"]);

    f.client
        .record_sal(op(sal(ago(30), 4000, 16_000_000)))
        .await
        .unwrap();
    let s2 = f
        .client
        .issue_sal_certificate(op(certificate(2, ago(25), 15_200_000)))
        .await
        .unwrap()
        .into_inner()
        .sal_entry
        .unwrap();
    assert!(!s2.certificate_late && !s2.payment_late, "{s2:?}");
    assert_eq!(s2.payment_due_date, ago(-5));
    let too_much = f
        .client
        .issue_sal_certificate(op(certificate(1, ago(5), 1)))
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition, "already issued");
    let missing = f
        .client
        .issue_sal_certificate(op(certificate(9, ago(5), 1)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // The comune's terms are data: 15 and 60 days apply to what is recorded from now on.
    f.store
        .set_sal_terms(
            PALERMO,
            SalTerms {
                certificate_days: 15,
                payment_days: 60,
            },
        )
        .await
        .unwrap();
    let third = f
        .client
        .record_sal(op(sal(ago(0), 6000, 16_000_000)))
        .await
        .unwrap()
        .into_inner();
    let s3 = third.sal_entry.unwrap();
    assert_eq!(
        (s3.number, s3.certificate_due_date.as_str()),
        (3, ago(-15).as_str())
    );
    assert!(!s3.certificate_late);
    let unpaid = f
        .client
        .record_sal_payment(op(pb::RecordSalPaymentRequest {
            project_id: p.id.clone(),
            sal_number: 3,
            paid_date: ago(0),
            amount: money(1),
        }))
        .await
        .unwrap_err();
    assert_eq!(unpaid.code(), Code::FailedPrecondition);
    f.store
        .set_sal_terms(PALERMO, SalTerms::default())
        .await
        .unwrap();

    let project = third.project.unwrap();
    assert_eq!(project.progress_basis_points, 6000);
    assert_eq!(project.paid_amount.unwrap().cents, 15_200_000);
    let late = f
        .client
        .list_projects(pb::ListProjectsRequest {
            istat_code: PALERMO.into(),
            late_only: true,
            text: "j99b24000030003".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(late.projects.len(), 1, "found by CUP, and late");
    let by_cig = f
        .client
        .list_projects(pb::ListProjectsRequest {
            text: "Z063947806".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(by_cig.projects.iter().any(|x| x.id == p.id));
}

/// A minimal RFC 4180 reader, written apart from the service's writer: quoted fields, doubled
/// quotes, line breaks inside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty() && !was_quoted, "stray quote in {field:?}");
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                was_quoted = false;
            }
            _ => {
                assert!(!was_quoted, "text after a closing quote");
                field.push(c);
            }
        }
    }
    assert!(!quoted, "unterminated quoted field");
    record.push(field);
    records.push(record);
    records
}

async fn export(
    client: &mut Client,
    format: pb::ProjectExportFormat,
) -> (pb::ProjectExportMetadata, Vec<pb::ProjectExportRow>) {
    let mut stream = client
        .export_projects(pb::ExportProjectsRequest {
            istat_code: PALERMO.into(),
            format: format as i32,
            states: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    let Some(pb::export_projects_response::Content::Metadata(meta)) = first.content else {
        panic!("the first message must be the metadata: {first:?}");
    };
    let mut rows = Vec::new();
    while let Some(message) = stream.next().await {
        match message.unwrap().content {
            Some(pb::export_projects_response::Content::Row(row)) => rows.push(row),
            other => panic!("only rows follow the metadata: {other:?}"),
        }
    }
    (meta, rows)
}

/// The export: metadata first, then the rows; the CSV parses back to the works, tricky text intact.
async fn export_stream(f: &mut Fixture) {
    let mut tricky = create(
        &mut f.client,
        "J99B24000040004",
        "Piazza \"Magione\", lotto 2",
    )
    .await;
    tricky.description = "Prima riga, con virgola\nseconda riga \"citata\"".into();
    f.client
        .update_project(op(pb::UpdateProjectRequest {
            project: Some(tricky.clone()),
        }))
        .await
        .unwrap();
    let total = f
        .client
        .list_projects(pb::ListProjectsRequest {
            istat_code: PALERMO.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .page_info
        .unwrap()
        .total_count;

    let (meta, rows) = export(&mut f.client, pb::ProjectExportFormat::Csv).await;
    assert_eq!(meta.title, "Opere pubbliche del Comune di Palermo");
    assert_eq!(meta.publisher_name, "Comune di Palermo");
    assert_eq!(meta.publisher_istat_code, PALERMO);
    assert_eq!(
        meta.licence_url,
        "https://creativecommons.org/licenses/by/4.0/"
    );
    assert_eq!(meta.media_type, "text/csv");
    assert_eq!(
        meta.modified,
        ago(0),
        "the work just updated is the latest change"
    );
    assert!(meta.keywords.iter().any(|k| k == "PON Metro"));
    assert_eq!(meta.row_count, total);
    assert_eq!(
        rows.len() as i64,
        total + 1,
        "the header, then one row per work"
    );
    let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
    assert_eq!(numbers, (0..=total).collect::<Vec<_>>());

    let file = rows
        .iter()
        .map(|r| r.line.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let records = parse_csv(&file);
    assert_eq!(records.len() as i64, total + 1);
    assert_eq!(records[0], meta.columns);
    let column = |name: &str| meta.columns.iter().position(|c| c == name).unwrap();
    assert!(records.iter().all(|r| r.len() == meta.columns.len()));
    let row = records
        .iter()
        .find(|r| r[column("id")] == tricky.id)
        .expect("the tricky work");
    assert_eq!(row[column("title")], "Piazza \"Magione\", lotto 2");
    assert_eq!(row[column("description")], tricky.description);
    assert_eq!(row[column("comune")], "Palermo");
    assert_eq!(row[column("budget")], "1000000.00");
    assert_eq!(row[column("funding_sources")], "PON_METRO");
    let cups: BTreeSet<&str> = records[1..]
        .iter()
        .map(|r| r[column("cup")].as_str())
        .filter(|c| !c.is_empty())
        .collect();
    assert!(cups.iter().all(|c| parse_cup(c).is_ok()));
    assert!(cups.contains("J99B24000040004"));
    for record in &records[1..] {
        for cig in record[column("cigs")].split('|').filter(|c| !c.is_empty()) {
            assert!(parse_cig(cig).is_ok(), "{cig}");
        }
    }

    let (meta, rows) = export(&mut f.client, pb::ProjectExportFormat::Json).await;
    assert_eq!(meta.media_type, "application/x-ndjson");
    assert_eq!(rows.len() as i64, total, "no header in JSON Lines");
    assert_eq!(rows[0].number, 1);
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.line).expect("one JSON object per line"))
        .collect();
    let tricky_json = objects
        .iter()
        .find(|o| o["id"] == tricky.id.as_str())
        .unwrap();
    assert_eq!(tricky_json["description"], tricky.description.as_str());
    assert_eq!(
        tricky_json["funding_sources"],
        serde_json::json!(["PON_METRO"])
    );

    for (request, field) in [
        (pb::ExportProjectsRequest::default(), "istat_code"),
        (
            pb::ExportProjectsRequest {
                istat_code: PALERMO.into(),
                ..Default::default()
            },
            "format",
        ),
    ] {
        let err = f
            .client
            .export_projects(request)
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(fields(&err).contains(&field.to_owned()), "{err:?}");
    }
}

/// An empty request to every unary RPC: reads answer (an empty filter is a filter), changes say
/// which fields they need. Never UNIMPLEMENTED, INTERNAL or UNKNOWN.
async fn bad_input(f: &mut Fixture) {
    let c = &mut f.client;
    let code = |r: Result<(), tonic::Status>| r.err().map(|s| (s.code(), fields(&s)));
    let invalid = |names: &[&str]| {
        Some((
            Code::InvalidArgument,
            names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        ))
    };
    assert_eq!(
        code(
            c.list_projects(pb::ListProjectsRequest::default())
                .await
                .map(|_| ())
        ),
        None
    );
    assert_eq!(
        code(
            c.lookup_projects(pb::LookupProjectsRequest::default())
                .await
                .map(|_| ())
        ),
        None
    );
    assert_eq!(
        code(
            c.list_municipality_projects(pb::ListMunicipalityProjectsRequest::default())
                .await
                .map(|_| ())
        ),
        None
    );
    assert_eq!(
        code(
            c.create_project(op(pb::CreateProjectRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project"])
    );
    assert_eq!(
        code(
            c.update_project(op(pb::UpdateProjectRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project"])
    );
    assert_eq!(
        code(
            c.advance_project_state(op(pb::AdvanceProjectStateRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project_id", "state"])
    );
    assert_eq!(
        code(
            c.award_project_contract(op(pb::AwardProjectContractRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project_id", "cig"])
    );
    assert_eq!(
        code(
            c.set_project_incompiuta(op(pb::SetProjectIncompiutaRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project_id"])
    );
    assert_eq!(
        code(
            c.record_sal(op(pb::RecordSalRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project_id", "date", "amount"])
    );
    assert_eq!(
        code(
            c.issue_sal_certificate(op(pb::IssueSalCertificateRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project_id", "sal_number", "issued_date", "amount"])
    );
    assert_eq!(
        code(
            c.record_sal_payment(op(pb::RecordSalPaymentRequest::default()))
                .await
                .map(|_| ())
        ),
        invalid(&["project_id", "sal_number", "paid_date", "amount"])
    );
    // An empty project names every required field.
    let empty = c
        .create_project(op(pb::CreateProjectRequest {
            project: Some(pb::Project::default()),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&empty),
        [
            "project.istat_code",
            "project.title",
            "project.category",
            "project.budget.cents"
        ]
    );
    // Unknown works are NOT_FOUND, whatever the change.
    let unknown = advance(c, "nope", State::Progettazione, "", "")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let unknown = c
        .update_project(op(pb::UpdateProjectRequest {
            project: Some(pb::Project {
                id: "nope".into(),
                ..new_project("", "x")
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    // Filters name their bad values.
    let bad = c
        .list_projects(pb::ListProjectsRequest {
            istat_code: "123".into(),
            states: vec![0, 99],
            page: Some(common::PageRequest {
                first: 101,
                after: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["istat_code", "states[0]", "states[1]"]);
    let bad = c
        .list_municipality_projects(pb::ListMunicipalityProjectsRequest {
            keys: vec!["082053".into(), "999999".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["keys[1]"]);
}

/// Listings: lookups by id, per-comune extension batches, paging.
async fn listings(f: &mut Fixture) {
    let per_comune = f
        .client
        .list_municipality_projects(pb::ListMunicipalityProjectsRequest {
            keys: vec![PALERMO.into(), ALIA.into(), PALERMO.into()],
            first: 2,
            funding_source: pb::ProjectFundingSource::PonMetro as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<(&str, usize)> = per_comune
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.projects.len()))
        .collect();
    assert_eq!(
        keys,
        [(ALIA, 2), (PALERMO, 2)],
        "keys once each, at most `first` works"
    );
    for item in &per_comune.items {
        assert!(item.projects.iter().all(|p| p.istat_code == item.key));
        assert!(item.projects.iter().all(|p| {
            p.funding
                .iter()
                .any(|x| x.source == pb::ProjectFundingSource::PonMetro as i32)
        }));
        let times: Vec<i64> = item
            .projects
            .iter()
            .map(|p| p.updated_time.unwrap().seconds)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "most recently updated first"
        );
    }
    let ids = vec!["opera-082053-001".to_owned(), "nope".to_owned()];
    let found = f
        .client
        .lookup_projects(pb::LookupProjectsRequest { keys: ids })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].key, "opera-082053-001");

    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = f
            .client
            .list_projects(pb::ListProjectsRequest {
                istat_code: BAGHERIA.into(),
                page: Some(common::PageRequest { first: 2, after }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let info = page.page_info.unwrap();
        seen.extend(page.projects.into_iter().map(|p| p.id));
        if !info.has_next_page {
            assert_eq!(info.total_count as usize, seen.len());
            break;
        }
        after = info.end_cursor;
    }
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len());
    assert!(seen.len() >= 3);
}

fn import_row(n: usize) -> pb::ImportProjectsRequest {
    let mut p = new_project(
        &format!("E10F24{:09}", 500_000 + n),
        &format!("Manutenzione strade, lotto {n}"),
    );
    p.istat_code = ALIA.into();
    p.external_ref = format!("ALIA-{n:04}");
    p.state = State::InEsecuzione as i32;
    p.cigs = vec![patto_service_kit::procurement::ordinary_cig(5_000_000 + n as u32).unwrap()];
    p.contractor = contractor();
    p.contract_amount = money(60_000_000);
    let change = |s: State, d: i64| pb::ProjectStateChange {
        state: s as i32,
        date: ago(d),
        note: String::new(),
        recorded_time: None,
    };
    p.history = vec![
        change(State::Programmato, 400),
        change(State::Progettazione, 350),
        change(State::Affidamento, 300),
        change(State::Consegna, 200),
        change(State::InEsecuzione, 190),
    ];
    p.sal_entries = vec![pb::SalEntry {
        number: 1,
        date: ago(100),
        progress_basis_points: 3000,
        amount: money(18_000_000),
        certificate_issued_date: ago(96),
        certificate_amount: money(17_000_000),
        ..Default::default()
    }];
    pb::ImportProjectsRequest { project: Some(p) }
}

async fn count(client: &mut Client, istat: &str) -> i64 {
    client
        .list_projects(pb::ListProjectsRequest {
            istat_code: istat.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .page_info
        .unwrap()
        .total_count
}

/// Import: a few wrong rows among many reject everything, each wrong row named; a clean stream is
/// written whole, and a second import updates by CUP or external reference.
async fn import_all_or_nothing(f: &mut Fixture) {
    let before = count(&mut f.client, ALIA).await;
    let mut rows: Vec<_> = (0..200).map(import_row).collect();
    rows[10].project.as_mut().unwrap().cigs = vec!["8874674CA8".into()];
    rows[50].project.as_mut().unwrap().history.remove(3);
    rows[99].project = None;
    rows[120].project.as_mut().unwrap().istat_code = PALERMO.into();
    rows[150].project.as_mut().unwrap().sal_entries[0].paid_date = ago(97);
    rows[150].project.as_mut().unwrap().sal_entries[0].paid_amount = money(1);
    let answer = f
        .client
        .import_projects(alia(futures::stream::iter(rows)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.error_count), (0, 5));
    let bad: Vec<(i32, &str)> = answer
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(
        bad,
        [
            (11, "project.cigs[0]"),
            (51, "project.history[3].state"),
            (100, "project"),
            (121, "project.istat_code"),
            (151, "project.sal_entries[0].paid_date"),
        ]
    );
    assert_eq!(
        count(&mut f.client, ALIA).await,
        before,
        "a rejected import writes nothing"
    );

    // A stored CUP of another comune is a conflict found only against the database.
    let mut clash: Vec<_> = (0..3).map(import_row).collect();
    clash[2].project.as_mut().unwrap().cup = "J99B24000010001".into();
    let answer = f
        .client
        .import_projects(alia(futures::stream::iter(clash)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 0);
    assert_eq!(
        (answer.errors[0].row, answer.errors[0].field.as_str()),
        (3, "project.cup")
    );
    assert!(
        answer.errors[0].description.contains(PALERMO),
        "{}",
        answer.errors[0].description
    );
    assert_eq!(count(&mut f.client, ALIA).await, before);

    let answer = f
        .client
        .import_projects(alia(futures::stream::iter((0..200).map(import_row))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.imported, answer.error_count),
        (200, 0),
        "{:?}",
        answer.errors.first()
    );
    assert_eq!(count(&mut f.client, ALIA).await, before + 200);

    // The same rows again, retitled: they update by CUP and external_ref, adding nothing.
    let again = (0..200).map(|n| {
        let mut row = import_row(n);
        row.project.as_mut().unwrap().title = format!("Strade, lotto {n} (aggiornato)");
        row
    });
    let answer = f
        .client
        .import_projects(alia(futures::stream::iter(again)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.imported, answer.error_count), (200, 0));
    assert_eq!(count(&mut f.client, ALIA).await, before + 200);
    let updated = f
        .client
        .list_projects(pb::ListProjectsRequest {
            text: "E10F24000500007".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let work = &updated.projects[0];
    assert_eq!(work.title, "Strade, lotto 7 (aggiornato)");
    assert_eq!(work.history.len(), 5);
    let sal = &work.sal_entries[0];
    assert_eq!(sal.certificate_due_date, ago(93));
    assert!(sal.payment_late, "certified 96 days ago, paid never");
}

/// Ten SAL recorded at once for one work: each either lands with the next number or is refused
/// with a request to retry; no number is taken twice and none is skipped.
async fn concurrent_sal(f: &mut Fixture) {
    let mut row = import_row(900);
    row.project.as_mut().unwrap().sal_entries.clear();
    let answer = f
        .client
        .import_projects(alia(futures::stream::iter([row])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 1, "{:?}", answer.errors);
    let id = f
        .client
        .list_projects(pb::ListProjectsRequest {
            text: "E10F24000500900".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .projects[0]
        .id
        .clone();
    let calls = (0..10).map(|n| {
        let mut client = f.client.clone();
        let request = pb::RecordSalRequest {
            project_id: id.clone(),
            date: ago(5),
            progress_basis_points: 1000,
            amount: money(1_000_000 + n),
        };
        tokio::spawn(async move {
            client
                .record_sal(Who::operator(ALIA).request(request))
                .await
        })
    });
    let mut landed = 0;
    for result in futures::future::join_all(calls).await {
        match result.unwrap() {
            Ok(_) => landed += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(status.message().contains("retry"), "{}", status.message());
            }
        }
    }
    assert!(landed >= 1);
    let work = f
        .client
        .lookup_projects(pb::LookupProjectsRequest { keys: vec![id] })
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0)
        .project
        .unwrap();
    let numbers: Vec<i32> = work.sal_entries.iter().map(|s| s.number).collect();
    assert_eq!(numbers, (1..=landed).collect::<Vec<i32>>());
}

/// No citizen procedure, no interaction: the indicators say so for every comune.
async fn indicators(f: &mut Fixture) {
    let answer = IndicatorsServiceClient::new(f.channel.clone())
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![PALERMO.into()],
            period: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.items.len(), 1);
    assert!(answer.items[0].procedures.is_empty());
    assert_eq!(answer.items[0].completed_interactions, 0);
}

async fn whole_suite(db: DatabaseConnection) {
    let mut f = start(db).await;
    cup_and_cig(&mut f).await;
    state_machine(&mut f).await;
    sal_deadlines(&mut f).await;
    export_stream(&mut f).await;
    bad_input(&mut f).await;
    listings(&mut f).await;
    import_all_or_nothing(&mut f).await;
    concurrent_sal(&mut f).await;
    indicators(&mut f).await;
    f.server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publicworks_on_sqlite() {
    whole_suite(testing::sqlite::<Migrator>().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publicworks_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    whole_suite(pg.migrated::<Migrator>().await.expect("migrate")).await;
}

/// The demo: every comune has works sized by its population, with valid codes, PON Metro for
/// many, SAL histories and some late; seeded once.
#[tokio::test]
async fn demo_data_covers_every_comune_and_seeds_once() {
    let store = Store::new(testing::sqlite::<Migrator>().await);
    let seeded = demo::seed(&store, Utc::now()).await.unwrap();
    assert_eq!(
        demo::seed(&store, Utc::now()).await.unwrap(),
        0,
        "a second seed adds nothing"
    );
    let server = TestServer::start(patto_publicworks::app(store)).await;
    let mut client = PublicWorksServiceClient::new(server.channel().await);
    let mut total = 0;
    let mut pon_metro = 0;
    let mut with_sal = 0;
    for comune in patto_service_kit::comuni::all() {
        let mut after = String::new();
        let mut works = Vec::new();
        loop {
            let page = client
                .list_projects(pb::ListProjectsRequest {
                    istat_code: comune.istat_code.clone(),
                    page: Some(common::PageRequest { first: 100, after }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            works.extend(page.projects);
            let info = page.page_info.unwrap();
            if !info.has_next_page {
                break;
            }
            after = info.end_cursor;
        }
        assert_eq!(works.len(), demo::works_for(comune), "{}", comune.name);
        for w in &works {
            assert!(w.cup.is_empty() || parse_cup(&w.cup).is_ok(), "{}", w.cup);
            assert!(w.cigs.iter().all(|c| parse_cig(c).is_ok()), "{:?}", w.cigs);
            let funded: i64 = w.funding.iter().map(|x| x.amount.unwrap().cents).sum();
            assert!(funded <= w.budget.unwrap().cents);
        }
        total += works.len();
        pon_metro += works
            .iter()
            .filter(|w| {
                w.funding
                    .iter()
                    .any(|x| x.source == pb::ProjectFundingSource::PonMetro as i32)
            })
            .count();
        with_sal += works.iter().filter(|w| !w.sal_entries.is_empty()).count();
    }
    assert_eq!(total, seeded);
    assert!(
        pon_metro * 2 > total,
        "PON Metro funds many works: {pon_metro} of {total}"
    );
    assert!(with_sal * 3 > total, "{with_sal} of {total} have SAL");
    let palermo = patto_service_kit::comuni::by_istat(PALERMO).unwrap();
    assert!(
        demo::works_for(palermo)
            > 10 * demo::works_for(patto_service_kit::comuni::by_istat(ALIA).unwrap()) / 3
    );
    let late = client
        .list_projects(pb::ListProjectsRequest {
            late_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let late_total = late.page_info.unwrap().total_count;
    assert!(
        late_total > 0 && (late_total as usize) < with_sal,
        "some late, not all: {late_total}"
    );
    assert!(late.projects.iter().all(|p| {
        p.sal_entries
            .iter()
            .any(|s| s.certificate_late || s.payment_late)
    }));
    let incompiute = client
        .list_projects(pb::ListProjectsRequest {
            incompiuta_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(incompiute.page_info.unwrap().total_count > 0);
    let year: i32 = today().format("%Y").to_string().parse().unwrap();
    let annual = client
        .list_projects(pb::ListProjectsRequest {
            programme_year: year - 1,
            annual_list_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !annual.projects.is_empty(),
        "an elenco annuale for last year"
    );
    assert!(annual.projects.iter().all(|p| {
        let prog = p.programme.as_ref().unwrap();
        prog.first_year == year - 1 && prog.in_annual_list
    }));
}

/// Who may read and change public works, cell by cell: anyone reads; only the operators and systems
/// of the work's comune change it, and a refused change leaves the work as it was.
#[tokio::test]
async fn access_matrix() {
    let store = Store::new(testing::sqlite::<Migrator>().await);
    let server = TestServer::start(
        patto_publicworks::app(store).with_authenticator(Arc::new(HeaderPrincipal)),
    )
    .await;
    let mut client = PublicWorksServiceClient::new(server.channel().await);
    let work = create(&mut client, "", "Opera di Palermo").await;
    let ok = None;
    let denied = Some(Code::PermissionDenied);
    let unauthenticated = Some(Code::Unauthenticated);
    // (caller, read, update of the work, import of a Palermo row)
    let cases = [
        (
            "the citizen",
            Who::citizen("RSSMRA80A01G273Z"),
            ok,
            denied,
            denied,
        ),
        (
            "another citizen",
            Who::citizen("VRDLGU75B12G273D"),
            ok,
            denied,
            denied,
        ),
        ("operator, same comune", Who::operator(PALERMO), ok, ok, ok),
        ("system, same comune", Who::system(PALERMO), ok, ok, ok),
        (
            "operator, other comune",
            Who::operator(BAGHERIA),
            ok,
            denied,
            denied,
        ),
        (
            "system, other comune",
            Who::system(BAGHERIA),
            ok,
            denied,
            denied,
        ),
        (
            "anonymous",
            Who::Anonymous,
            ok,
            unauthenticated,
            unauthenticated,
        ),
    ];
    let mut title = work.title.clone();
    for (n, (name, who, read, update, import)) in cases.into_iter().enumerate() {
        let got = client
            .lookup_projects(who.request(pb::LookupProjectsRequest {
                keys: vec![work.id.clone()],
            }))
            .await;
        assert_eq!(got.as_ref().err().map(|s| s.code()), read, "{name}: read");
        if let Ok(answer) = got {
            assert_eq!(answer.into_inner().items.len(), 1, "{name}: read");
        }

        let current = client
            .lookup_projects(pb::LookupProjectsRequest {
                keys: vec![work.id.clone()],
            })
            .await
            .unwrap()
            .into_inner()
            .items
            .remove(0)
            .project
            .unwrap();
        let retitled = format!("Opera di Palermo, versione {n}");
        let got = client
            .update_project(who.request(pb::UpdateProjectRequest {
                project: Some(pb::Project {
                    title: retitled.clone(),
                    ..current
                }),
            }))
            .await;
        assert_eq!(
            got.as_ref().err().map(|s| s.code()),
            update,
            "{name}: update"
        );
        if got.is_ok() {
            title = retitled;
        }
        let stored = client
            .lookup_projects(pb::LookupProjectsRequest {
                keys: vec![work.id.clone()],
            })
            .await
            .unwrap()
            .into_inner()
            .items
            .remove(0)
            .project
            .unwrap();
        assert_eq!(
            stored.title, title,
            "{name}: a refused change changes nothing"
        );

        let mut row = import_row(700 + n);
        row.project.as_mut().unwrap().istat_code = PALERMO.into();
        let before = count(&mut client, PALERMO).await;
        let got = client
            .import_projects(who.request(futures::stream::iter([row])))
            .await;
        assert_eq!(
            got.as_ref().err().map(|s| s.code()),
            import,
            "{name}: import"
        );
        let after = count(&mut client, PALERMO).await;
        assert_eq!(after - before, i64::from(got.is_ok()), "{name}: import");
    }
    // An import names its comune in the rows: another comune's rows are refused as a whole.
    let denied = client
        .import_projects(
            Who::operator(BAGHERIA).request(futures::stream::iter((0..2).map(import_row))),
        )
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Code::PermissionDenied,
        "an import of Alia by Bagheria"
    );
    server.stop().await.expect("clean stop");
}

/// Public works hold no personal data: reading them records nothing, and the audit log answers
/// each comune about its own data only.
#[tokio::test]
async fn audit_of_personal_data_reads() {
    let store = Store::new(testing::sqlite::<Migrator>().await);
    demo::seed(&store, Utc::now()).await.unwrap();
    let server = TestServer::start(
        patto_publicworks::app(store).with_authenticator(Arc::new(HeaderPrincipal)),
    )
    .await;
    let channel = server.channel().await;
    let mut client = PublicWorksServiceClient::new(channel.clone());
    let request = Who::operator(PALERMO).request_with_purpose(
        pb::ListProjectsRequest {
            istat_code: PALERMO.into(),
            ..Default::default()
        },
        "purpose-42",
    );
    let listed = client.list_projects(request).await.unwrap().into_inner();
    assert!(!listed.projects.is_empty());
    let log = personal_data_reads(&channel, &Who::operator(PALERMO), "", "")
        .await
        .unwrap();
    assert!(log.is_empty(), "public data: no read recorded");
    assert_refused(
        personal_data_reads(&channel, &Who::operator(BAGHERIA), "", PALERMO).await,
        Code::PermissionDenied,
        "Bagheria listing Palermo's log",
    );
    assert_refused(
        personal_data_reads(&channel, &Who::Anonymous, "", "").await,
        Code::Unauthenticated,
        "an anonymous caller",
    );
    server.stop().await.expect("clean stop");
}
