//! The audit of personal-data reads, end to end over gRPC: reads noted by a handler are listed to the
//! citizen concerned and to their comune's operators, and to no one else.

use std::sync::Arc;

use patto_proto::common::v1 as pb;
use patto_proto::common::v1::audit_service_client::AuditServiceClient;
use patto_service_kit::access::Record;
use patto_service_kit::audit::{AuditServer, Caller, PURPOSE_HEADER, Reads};
use patto_service_kit::testing::{self, HeaderPrincipal, TestServer, Who};
use patto_service_kit::{BaseMigrator, GrpcApp, Principal};
use sea_orm::DatabaseConnection;
use tonic::Code;
use tonic::transport::Channel;

const ME: &str = "RSSMRA80A01G273Z";
const OTHER: &str = "VRDLGU75B12G273D";
const PALERMO: &str = "082053";
const BAGHERIA: &str = "082006";

fn operator(istat: &str) -> Principal {
    Principal::Operator {
        istat_code: istat.into(),
        subject: format!("operator@{istat}"),
    }
}

async fn start() -> (DatabaseConnection, TestServer, AuditServiceClient<Channel>) {
    let db = testing::sqlite::<BaseMigrator>().await;
    let app = GrpcApp::new()
        .add_service(AuditServer::new(db.clone(), "social").into_service())
        .with_authenticator(Arc::new(HeaderPrincipal));
    let server = TestServer::start(app).await;
    let client = AuditServiceClient::new(server.channel().await);
    (db, server, client)
}

async fn list(
    client: &mut AuditServiceClient<Channel>,
    who: &Who,
    fiscal_code: &str,
    istat_code: &str,
) -> Result<pb::ListPersonalDataReadsResponse, tonic::Status> {
    client
        .list_personal_data_reads(who.request(pb::ListPersonalDataReadsRequest {
            fiscal_code: fiscal_code.into(),
            istat_code: istat_code.into(),
            page: None,
        }))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn reads_by_others_are_listed_to_the_citizen_and_the_comune() {
    let (db, _server, mut client) = start().await;

    // An operator of Palermo reads two of ME's records (one row: same citizen, same comune) and one
    // of OTHER's, declaring a purpose.
    let mut reads = Reads::new(
        Caller {
            principal: operator(PALERMO),
            purpose: Some("purpose-42".into()),
        },
        "social.BenefitApplication",
    );
    reads.check(&Record::personal(ME, PALERMO)).unwrap();
    reads.check(&Record::personal(ME, PALERMO)).unwrap();
    assert!(reads.allows(&Record::personal(OTHER, PALERMO)));
    assert!(
        !reads.allows(&Record::personal(OTHER, BAGHERIA)),
        "filtered, not noted"
    );
    assert_eq!(reads.len(), 2);
    reads.save(&db).await.unwrap();

    // ME reads their own record: nothing to record.
    let mut own = Reads::new(
        Caller {
            principal: Principal::Citizen {
                fiscal_code: ME.to_ascii_lowercase(),
            },
            purpose: None,
        },
        "social.BenefitApplication",
    );
    own.check(&Record::personal(ME, PALERMO)).unwrap();
    assert!(own.is_empty());
    own.save(&db).await.unwrap();

    // ME lists the reads of their data: one, by the Palermo operator, with the purpose.
    let mine = list(&mut client, &Who::citizen(ME), "", "").await.unwrap();
    assert_eq!(mine.items.len(), 1, "{mine:?}");
    let read = &mine.items[0];
    assert_eq!(read.reader_role, "operator");
    assert_eq!(read.reader_subject, "operator@082053");
    assert_eq!(read.reader_istat_code, PALERMO);
    assert_eq!(read.fiscal_code, ME);
    assert_eq!(read.istat_code, PALERMO);
    assert_eq!(read.what, "social.BenefitApplication");
    assert_eq!(read.purpose_id, "purpose-42");
    assert_eq!(read.service, "social");
    assert!(read.read_at.is_some());
    assert_eq!(mine.page_info.unwrap().total_count, 1);

    // Palermo's operators and systems see both citizens' reads; filtering by citizen narrows.
    let palermo = list(&mut client, &Who::operator(PALERMO), "", "")
        .await
        .unwrap();
    assert_eq!(palermo.items.len(), 2);
    let system = list(&mut client, &Who::system(PALERMO), OTHER, "")
        .await
        .unwrap();
    assert_eq!(system.items.len(), 1);
    assert_eq!(system.items[0].fiscal_code, OTHER);

    // Bagheria holds none of this data.
    let bagheria = list(&mut client, &Who::operator(BAGHERIA), "", "")
        .await
        .unwrap();
    assert!(bagheria.items.is_empty());
}

#[tokio::test]
async fn the_log_is_refused_to_everyone_else() {
    let (_db, _server, mut client) = start().await;
    let cases = [
        (Who::Anonymous, "", "", Code::Unauthenticated),
        (Who::citizen(OTHER), ME, "", Code::PermissionDenied),
        (Who::operator(BAGHERIA), "", PALERMO, Code::PermissionDenied),
        (Who::system(BAGHERIA), ME, PALERMO, Code::PermissionDenied),
        (Who::citizen(ME), "not-a-code", "", Code::InvalidArgument),
        (Who::operator(PALERMO), "", "99", Code::InvalidArgument),
    ];
    for (who, cf, istat, code) in cases {
        let err = list(&mut client, &who, cf, istat).await.unwrap_err();
        assert_eq!(err.code(), code, "{who:?} {cf} {istat}: {err:?}");
        assert!(!err.message().contains(ME), "names no one: {err:?}");
    }
}

#[tokio::test]
async fn the_purpose_header_is_read_from_the_call() {
    let mut request = Who::operator(PALERMO).request(());
    request
        .metadata_mut()
        .insert(PURPOSE_HEADER, "pdnd-7".parse().unwrap());
    let caller = Caller::of(&request);
    // The test authenticator has not run on a bare request: the principal is anonymous.
    assert_eq!(caller.principal, Principal::Anonymous);
    assert_eq!(caller.purpose.as_deref(), Some("pdnd-7"));
}
