//! The audit of personal-data reads, end to end over gRPC: reads noted by a handler are listed to the
//! citizen concerned and to their comune's operators, and to no one else.

use std::sync::Arc;

use patto_proto::common::v1 as pb;
use patto_proto::common::v1::audit_service_client::AuditServiceClient;
use patto_service_kit::access::Record;
use patto_service_kit::audit::{AuditServer, Caller, Reads};
use patto_service_kit::testing::{
    self, HeaderPrincipal, TestServer, Who, assert_refused, personal_data_reads, read_row,
};
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

async fn start() -> (DatabaseConnection, TestServer, Channel) {
    let db = testing::sqlite::<BaseMigrator>().await;
    let app = GrpcApp::new()
        .add_service(AuditServer::new(db.clone(), "social").into_service())
        .with_authenticator(Arc::new(HeaderPrincipal));
    let server = TestServer::start(app).await;
    let channel = server.channel().await;
    (db, server, channel)
}

#[tokio::test]
async fn reads_by_others_are_listed_to_the_citizen_and_the_comune() {
    let (db, _server, channel) = start().await;

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
    let mine = personal_data_reads(&channel, &Who::citizen(ME), "", "")
        .await
        .unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let read = &mine[0];
    assert_eq!(
        read_row(read),
        [
            "operator",
            "operator@082053",
            PALERMO,
            ME,
            PALERMO,
            "social.BenefitApplication",
            "purpose-42",
            "social",
        ]
    );
    assert!(read.read_at.is_some());
    // The page says how many there are in all.
    let page = AuditServiceClient::new(channel.clone())
        .list_personal_data_reads(
            Who::citizen(ME).request(pb::ListPersonalDataReadsRequest::default()),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.page_info.unwrap().total_count, 1);

    // Palermo's operators and systems see both citizens' reads; filtering by citizen narrows.
    let palermo = personal_data_reads(&channel, &Who::operator(PALERMO), "", "")
        .await
        .unwrap();
    assert_eq!(palermo.len(), 2);
    let system = personal_data_reads(&channel, &Who::system(PALERMO), OTHER, "")
        .await
        .unwrap();
    assert_eq!(system.len(), 1);
    assert_eq!(system[0].fiscal_code, OTHER);

    // Bagheria holds none of this data.
    let bagheria = personal_data_reads(&channel, &Who::operator(BAGHERIA), "", "")
        .await
        .unwrap();
    assert!(bagheria.is_empty());
}

#[tokio::test]
async fn the_log_is_refused_to_everyone_else() {
    let (_db, _server, channel) = start().await;
    let cases = [
        (Who::Anonymous, "", "", Code::Unauthenticated),
        (Who::citizen(OTHER), ME, "", Code::PermissionDenied),
        (Who::operator(BAGHERIA), "", PALERMO, Code::PermissionDenied),
        (Who::system(BAGHERIA), ME, PALERMO, Code::PermissionDenied),
        (Who::citizen(ME), "not-a-code", "", Code::InvalidArgument),
        (Who::operator(PALERMO), "", "99", Code::InvalidArgument),
    ];
    for (who, cf, istat, code) in cases {
        let answer = personal_data_reads(&channel, &who, cf, istat).await;
        let err = assert_refused(answer, code, &format!("{who:?} {cf} {istat}"));
        assert!(!err.message().contains(ME), "names no one: {err:?}");
    }
}

#[tokio::test]
async fn the_purpose_header_is_read_from_the_call() {
    let request = Who::operator(PALERMO).request_with_purpose((), "pdnd-7");
    let caller = Caller::of(&request);
    // The test authenticator has not run on a bare request: the principal is anonymous.
    assert_eq!(caller.principal, Principal::Anonymous);
    assert_eq!(caller.purpose.as_deref(), Some("pdnd-7"));
}
