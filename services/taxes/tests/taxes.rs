//! The taxes service end to end over real gRPC, on SQLite and on PostgreSQL, next to a real building
//! service: IMU is computed from the Catasto fetched over gRPC in one batched call; TARI carries TEFA
//! apart; yearly notices become pagoPA debt positions with valid NAV/IUV and QR payloads; receipts
//! are recorded once per IUV and move the positions through their states, which a watcher follows;
//! a 10,000-row tax roll with three bad rows reports exactly those and writes nothing, a clean one
//! imports in one call; every unary RPC answers an empty request with a meaningful status. Every
//! call carries its caller (the kit's header test authenticator), and taxes forwards it to building:
//! taxpayers compute and file their own, the comune's operators and systems issue notices, record
//! receipts and import rolls; who may read and change what is tabled in `access_matrix`, the record
//! of reads in `operators_reads_are_recorded_here_and_in_building`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{Datelike, Utc};
use futures::StreamExt;
use patto_proto::common::v1 as common;
use patto_proto::common::v1::indicators_service_client::IndicatorsServiceClient;
use patto_proto::taxes::v1 as pb;
use patto_proto::taxes::v1::taxes_service_client::TaxesServiceClient;
use patto_service_kit::auth::Authenticator;
use patto_service_kit::demo::citizen;
use patto_service_kit::pagopa;
use patto_service_kit::testing::{
    self, HeaderPrincipal, Outcome, PRINCIPAL_HEADER, TestPostgres, TestServer, Who,
    personal_data_reads, read_row,
};
use patto_service_kit::token::{self, DevIssuer};
use patto_taxes::store::Store;
use patto_taxes::{BuildingClient, Credentials, Migrator, demo};
use sea_orm::DatabaseConnection;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const SALT: &str = "test-salt";
const PALERMO: &str = "082053";
const ALTAVILLA: &str = "082001";
const BAGHERIA: &str = "082006";

/// Counts the calls reaching the building service (through the kit's authentication hook), whose
/// callers the header test authenticator names.
struct CallCounter(Arc<AtomicUsize>);

impl Authenticator for CallCounter {
    fn authenticate<'a>(
        &'a self,
        headers: &'a http::HeaderMap,
    ) -> futures::future::BoxFuture<'a, Result<patto_service_kit::Principal, tonic::Status>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        HeaderPrincipal.authenticate(headers)
    }
}

/// The client of building as the tests set it up: the caller's test header is forwarded with the
/// rest, and the service's own calls (the demo roll) are made as each comune's system.
fn building_client(url: &str) -> BuildingClient {
    BuildingClient::connect_lazy(url)
        .expect("building endpoint")
        .forwarding(PRINCIPAL_HEADER)
        .with_system_credentials(|istat| {
            Credentials::header(PRINCIPAL_HEADER, &format!("system:{istat}")).unwrap()
        })
}

/// The taxes app as the tests host it: callers named by the `x-test-principal` header.
fn taxes_app(store: Store, building: BuildingClient) -> patto_service_kit::GrpcApp {
    patto_taxes::app(store, building).with_authenticator(Arc::new(HeaderPrincipal))
}

/// A caller holding a bearer token.
struct Bearer(String);

impl Bearer {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.0).parse().unwrap(),
        );
        request
    }
}

/// Demo citizen `n` as a caller.
fn citizen_who(n: usize) -> Who {
    Who::citizen(&citizen(n).fiscal_code)
}

struct Fixture {
    building: TestServer,
    taxes: TestServer,
    store: Store,
    client: TaxesServiceClient<Channel>,
    channel: Channel,
    building_calls: Arc<AtomicUsize>,
}

async fn start(building_db: DatabaseConnection, taxes_db: DatabaseConnection) -> Fixture {
    let now = Utc::now();
    let building_store = patto_building::store::Store::new(building_db, SALT);
    patto_building::demo::seed(&building_store, now)
        .await
        .expect("building demo");
    let building_calls = Arc::new(AtomicUsize::new(0));
    let building = TestServer::start(
        patto_building::app(building_store)
            .with_authenticator(Arc::new(CallCounter(building_calls.clone()))),
    )
    .await;
    let client = building_client(&building.url());
    let store = Store::new(taxes_db, SALT);
    let seeded = demo::seed(&store, &client, now).await.expect("taxes demo");
    assert_eq!(seeded.comuni, 82, "{seeded:?}");
    assert!(
        seeded.tax_positions > 82 * 4 && seeded.debt_positions == seeded.tax_positions,
        "{seeded:?}"
    );
    assert!(seeded.payments > 50, "{seeded:?}");
    let taxes = TestServer::start(taxes_app(store.clone(), client)).await;
    let channel = taxes.channel().await;
    Fixture {
        client: TaxesServiceClient::new(channel.clone()),
        channel,
        store,
        building,
        taxes,
        building_calls,
    }
}

fn cents(m: &Option<common::Money>) -> i64 {
    m.as_ref().map_or(0, |m| m.cents)
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// IMU from the Catasto over real gRPC, one building call per request: Palermo's A/1 main
/// residence at 0.6 % with the € 200 detrazione and its two pertinenze; an exempt A/2 home; an
/// office held seven months of last year.
async fn imu(f: &mut Fixture) {
    let year = Utc::now().year();
    let signorile = citizen(52).fiscal_code; // Palermo's first demo citizen: A/1 + C/6 + C/2
    let before = f.building_calls.load(Ordering::SeqCst);
    let answer = f
        .client
        .compute_imu(Who::citizen(&signorile).request(pb::ComputeImuRequest {
            fiscal_code: signorile.clone(),
            year,
            istat_code: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        f.building_calls.load(Ordering::SeqCst) - before,
        1,
        "one batched call to building per request, not one per unit"
    );
    let a = &answer.assessments[0];
    assert_eq!((a.istat_code.as_str(), a.lines.len()), (PALERMO, 3));
    let line = |cat: &str| a.lines.iter().find(|l| l.categoria == cat).unwrap().clone();
    // Rendita 1,980 € × 1.05 × 160 = 332,640 € at 0.6 % = 1,995.84 − 200 = 1,795.84
    let home = line("A/1");
    assert!(home.main_residence && !home.exempt);
    assert_eq!(
        (home.rate_bp, cents(&home.deduction), cents(&home.tax)),
        (60, 20_000, 179_584)
    );
    assert_eq!(home.f24_comune_code, "3912");
    // The pertinenze of a main residence di lusso pay at its rate: 83.87 and 31.25
    assert!(line("C/6").pertinenza && line("C/2").pertinenza);
    assert_eq!(
        (cents(&line("C/6").tax), cents(&line("C/2").tax)),
        (8_387, 3_125)
    );
    assert_eq!(cents(&a.total), 191_096);
    assert_eq!(cents(&a.acconto) + cents(&a.saldo), cents(&a.total));
    assert_eq!(a.acconto_due_date, format!("{year}-06-16"));

    let exempt = f
        .client
        .compute_imu(citizen_who(52 + 82).request(pb::ComputeImuRequest {
            fiscal_code: citizen(52 + 82).fiscal_code,
            year,
            istat_code: PALERMO.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let a = &exempt.assessments[0];
    assert!(
        a.lines.iter().all(|l| l.exempt),
        "an A/2 main residence and its garage: {:?}",
        a.lines
    );
    assert_eq!(cents(&a.total), 0);

    // The office bought on 1 June of last year: 7 months, rendita 1,200 € × 1.05 × 80 × 1.06 % × 7/12.
    // Computed by Palermo's tax office, for the taxpayer.
    let office = f
        .client
        .compute_imu(Who::operator(PALERMO).request(pb::ComputeImuRequest {
            fiscal_code: citizen(52 + 82 * 3).fiscal_code,
            year: year - 1,
            istat_code: PALERMO.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let l = office.assessments[0]
        .lines
        .iter()
        .find(|l| l.categoria == "A/10")
        .unwrap();
    assert_eq!((l.months, l.multiplier, cents(&l.tax)), (7, 80, 62_328));

    let rossi = patto_service_kit::ids::fiscal_code_with_check("RSSMRA80A01G273");
    let nobody = f
        .client
        .compute_imu(Who::citizen(&rossi).request(pb::ComputeImuRequest {
            fiscal_code: rossi.clone(),
            year,
            istat_code: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(nobody.assessments.is_empty());
    let bad = f
        .client
        .compute_imu(Who::operator(PALERMO).request(pb::ComputeImuRequest {
            fiscal_code: "RSSMRA80A01G273A".into(),
            year: 1990,
            istat_code: "999999".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["fiscal_code", "year", "istat_code"]);
}

/// TARI with TEFA apart, in the comune's instalments.
async fn tari(f: &mut Fixture) {
    let year = Utc::now().year();
    let answer = f
        .client
        .compute_tari(citizen_who(52).request(pb::ComputeTariRequest {
            fiscal_code: citizen(52).fiscal_code,
            year,
            istat_code: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let a = &answer.assessments[0];
    assert_eq!(a.istat_code, PALERMO);
    assert_eq!(
        cents(&a.tefa),
        (cents(&a.tari) * 5 + 50) / 100,
        "TEFA is 5 % of TARI"
    );
    assert_eq!(cents(&a.total), cents(&a.tari) + cents(&a.tefa));
    assert_eq!(a.instalments.len(), 4, "Palermo bills TARI in four rate");
    let sum: i64 = a
        .instalments
        .iter()
        .map(|i| cents(&i.tari) + cents(&i.tefa))
        .sum();
    assert_eq!(sum, cents(&a.total));
    let tariffs = f
        .client
        .get_tari_tariffs(pb::GetTariTariffsRequest {
            istat_code: PALERMO.into(),
            year,
        })
        .await
        .unwrap()
        .into_inner()
        .tariffs
        .unwrap();
    assert_eq!(
        (tariffs.tefa_rate_bp, tariffs.household_coefficients.len()),
        (500, 6)
    );
    let missing = f
        .client
        .get_tari_tariffs(pb::GetTariTariffsRequest {
            istat_code: PALERMO.into(),
            year: 2014,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Rates are data with legal ranges.
async fn rates(f: &mut Fixture) {
    let year = Utc::now().year();
    let palermo = f
        .client
        .get_imu_rates(pb::GetImuRatesRequest {
            istat_code: PALERMO.into(),
            year,
        })
        .await
        .unwrap()
        .into_inner()
        .rates
        .unwrap();
    assert_eq!(
        (palermo.ordinary_rate_bp, palermo.main_residence_rate_bp),
        (106, 60)
    );
    // Years nobody resolved carry the last rates over.
    let later = f
        .client
        .get_imu_rates(pb::GetImuRatesRequest {
            istat_code: PALERMO.into(),
            year: year + 3,
        })
        .await
        .unwrap()
        .into_inner()
        .rates
        .unwrap();
    assert_eq!(later.ordinary_rate_bp, 106);
    assert_eq!(later.saldo_due_date, format!("{}-12-16", year + 3));
    let bad = f
        .client
        .set_imu_rates(Who::operator(ALTAVILLA).request(pb::SetImuRatesRequest {
            rates: Some(pb::ImuRateSet {
                istat_code: ALTAVILLA.into(),
                year,
                ordinary_rate_bp: 120,
                group_d_rate_bp: 50,
                ..Default::default()
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&bad),
        ["rates.ordinary_rate_bp", "rates.group_d_rate_bp"]
    );
}

fn check_notice(d: &pb::DebtPosition) {
    for o in &d.payment_options {
        assert_eq!(pagopa::validate_nav(&o.nav), Ok(()), "{}", o.nav);
        assert_eq!(o.nav, pagopa::nav_of_iuv(&o.iuv));
        assert_eq!(
            o.qr_payload,
            format!(
                "PAGOPA|002|{}|{}|{}",
                o.nav,
                d.creditor_fiscal_code,
                cents(&o.amount)
            )
        );
        let sum: i64 = o.transfers.iter().map(|t| cents(&t.amount)).sum();
        assert_eq!(sum, cents(&o.amount), "transfers add up to the option");
    }
}

/// Notices, payments by IUV (idempotent), states, and a watcher following them.
async fn notices(f: &mut Fixture) {
    use pb::DebtPositionStatus as S;
    let year = Utc::now().year();
    // The demo notices: TARI carries a TEFA transfer to the Città Metropolitana.
    let mine = f
        .client
        .list_citizen_debt_positions(
            citizen_who(52).request(pb::ListCitizenDebtPositionsRequest {
                keys: vec![citizen(52).fiscal_code],
                status: 0,
                tribute: pb::Tribute::Tari as i32,
            }),
        )
        .await
        .unwrap()
        .into_inner();
    let tari = &mine.items[0].debt_positions[0];
    check_notice(tari);
    let unica = &tari.payment_options[0];
    assert!(!unica.instalment);
    assert_eq!(unica.transfers[1].kind, pb::DebtTransferKind::Tefa as i32);
    assert_eq!(unica.transfers[1].beneficiary_fiscal_code, "80021470820");

    // Next year's IMU notices for Altavilla (rates carried over): rata unica, acconto, saldo.
    let generated = f
        .client
        .generate_tax_notices(
            Who::operator(ALTAVILLA).request(pb::GenerateTaxNoticesRequest {
                istat_code: ALTAVILLA.into(),
                tribute: pb::Tribute::Imu as i32,
                year: year + 1,
                dry_run: true,
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(generated.positions > 0 && generated.debt_positions == generated.positions);
    let before = f.store.roll_counts(ALTAVILLA).await.unwrap();
    let real = f
        .client
        .generate_tax_notices(
            Who::operator(ALTAVILLA).request(pb::GenerateTaxNoticesRequest {
                istat_code: ALTAVILLA.into(),
                tribute: pb::Tribute::Imu as i32,
                year: year + 1,
                dry_run: false,
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            real.positions,
            real.debt_positions,
            cents(&real.total_amount)
        ),
        (
            generated.positions,
            generated.debt_positions,
            cents(&generated.total_amount)
        ),
        "a dry run counts what the real issue writes"
    );
    let after = f.store.roll_counts(ALTAVILLA).await.unwrap();
    assert_eq!(after.2, before.2 + real.positions as u64);
    let again = f
        .client
        .generate_tax_notices(
            Who::operator(ALTAVILLA).request(pb::GenerateTaxNoticesRequest {
                istat_code: ALTAVILLA.into(),
                tribute: pb::Tribute::Imu as i32,
                year: year + 1,
                dry_run: false,
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.positions, 0,
        "positions with a standing notice are left alone"
    );

    let listed = f
        .client
        .list_tax_positions(
            Who::operator(ALTAVILLA).request(pb::ListTaxPositionsRequest {
                istat_code: ALTAVILLA.into(),
                tribute: pb::Tribute::Imu as i32,
                year: year + 1,
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    let position = listed
        .positions
        .iter()
        .find(|p| {
            p.debt_positions
                .first()
                .is_some_and(|d| d.payment_options.len() == 3)
        })
        .expect("a notice with acconto and saldo")
        .clone();
    let debt = position.debt_positions[0].clone();
    check_notice(&debt);
    assert_eq!(debt.status, S::Valid as i32);
    let (unica, acconto, saldo) = (
        &debt.payment_options[0],
        &debt.payment_options[1],
        &debt.payment_options[2],
    );
    assert_eq!(acconto.due_date, format!("{}-06-16", year + 1));
    assert_eq!(
        cents(&unica.amount),
        cents(&acconto.amount) + cents(&saldo.amount)
    );

    let duplicate = f
        .client
        .issue_debt_position(
            Who::operator(ALTAVILLA).request(pb::IssueDebtPositionRequest {
                tax_position_id: position.id.clone(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    // The debtor follows their notice.
    let mut stream = f
        .client
        .watch_debt_position(Who::citizen(&position.fiscal_code).request(
            pb::WatchDebtPositionRequest {
                iupd: debt.iupd.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await;
    assert_eq!(first.status, S::Valid as i32);

    let receipt = |id: &str, amount: i64| pb::RecordDebtPaymentRequest {
        creditor_fiscal_code: debt.creditor_fiscal_code.clone(),
        iuv: String::new(),
        receipt: Some(pb::DebtPaymentReceipt {
            receipt_id: id.into(),
            psp_id: "UNCRITMMXXX".into(),
            psp_name: "UniCredit".into(),
            amount: Some(common::Money { cents: amount }),
            ..Default::default()
        }),
    };
    // Receipts arrive from Altavilla's pagoPA connector, its system.
    let pay = |iuv: &str, id: &str, amount: i64| {
        Who::system(ALTAVILLA).request(pb::RecordDebtPaymentRequest {
            iuv: iuv.into(),
            ..receipt(id, amount)
        })
    };
    let wrong = f
        .client
        .record_debt_payment(pay(&acconto.iuv, "RT-1", cents(&acconto.amount) + 1))
        .await
        .unwrap_err();
    assert_eq!(fields(&wrong), ["receipt.amount.cents"]);
    // Neither the debtor nor another comune's connector records a receipt: nothing is written.
    for who in [Who::citizen(&position.fiscal_code), Who::system(BAGHERIA)] {
        let refused = f
            .client
            .record_debt_payment(who.request(pb::RecordDebtPaymentRequest {
                iuv: acconto.iuv.clone(),
                ..receipt("RT-0", cents(&acconto.amount))
            }))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{who:?}: {refused:?}"
        );
    }
    let paid = f
        .client
        .record_debt_payment(pay(&acconto.iuv, "RT-1", cents(&acconto.amount)))
        .await
        .unwrap()
        .into_inner();
    assert!(!paid.already_recorded);
    assert_eq!(paid.debt_position.unwrap().status, S::PartiallyPaid as i32);
    assert_eq!(next(&mut stream).await.status, S::PartiallyPaid as i32);
    let same = f
        .client
        .record_debt_payment(pay(&acconto.iuv, "RT-1", cents(&acconto.amount)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        same.already_recorded,
        "the same receipt again changes nothing"
    );
    let other = f
        .client
        .record_debt_payment(pay(&acconto.iuv, "RT-2", cents(&acconto.amount)))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    let whole = f
        .client
        .record_debt_payment(pay(&unica.iuv, "RT-3", cents(&unica.amount)))
        .await
        .unwrap_err();
    assert_eq!(
        whole.code(),
        Code::FailedPrecondition,
        "{}",
        whole.message()
    );
    let done = f
        .client
        .record_debt_payment(pay(&saldo.iuv, "RT-4", cents(&saldo.amount)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.debt_position.unwrap().status, S::Paid as i32);
    assert_eq!(next(&mut stream).await.status, S::Paid as i32);
    let settled = f
        .client
        .lookup_tax_positions(
            Who::operator(ALTAVILLA).request(pb::LookupTaxPositionsRequest {
                keys: vec![position.id.clone()],
            }),
        )
        .await
        .unwrap()
        .into_inner();
    let p = settled.items[0].position.as_ref().unwrap();
    assert_eq!(p.status, pb::TaxPositionStatus::Paid as i32);
    assert_eq!(cents(&p.amount_paid), cents(&p.amount_due));
    let unknown = f
        .client
        .record_debt_payment(pay(
            &pagopa::iuv(1, 9_999_999_999_999).unwrap(),
            "RT-9",
            100,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let paid_off = f
        .client
        .invalidate_debt_position(Who::operator(ALTAVILLA).request(
            pb::InvalidateDebtPositionRequest {
                iupd: debt.iupd.clone(),
                reason: "sgravio".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(paid_off.code(), Code::FailedPrecondition);

    // An unpaid notice can be cancelled and issued again, as a single payment.
    let unpaid = listed
        .positions
        .iter()
        .find(|p| p.id != position.id && !p.debt_positions.is_empty())
        .expect("another notice")
        .clone();
    let cancelled = f
        .client
        .invalidate_debt_position(Who::operator(ALTAVILLA).request(
            pb::InvalidateDebtPositionRequest {
                iupd: unpaid.debt_positions[0].iupd.clone(),
                reason: "sgravio per rettifica della rendita".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .debt_position
        .unwrap();
    assert_eq!(cancelled.status, S::Invalid as i32);
    // The taxpayer asks for the new notice.
    let reissued = f
        .client
        .issue_debt_position(Who::citizen(&unpaid.fiscal_code).request(
            pb::IssueDebtPositionRequest {
                tax_position_id: unpaid.id.clone(),
                single_payment_only: true,
                validity_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .debt_position
        .unwrap();
    assert_eq!(
        (reissued.status, reissued.payment_options.len()),
        (S::Valid as i32, 1)
    );
    let by_nav = f
        .client
        .list_debt_positions(
            Who::operator(ALTAVILLA).request(pb::ListDebtPositionsRequest {
                nav: reissued.payment_options[0].nav.clone(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_nav.debt_positions.len(), 1);
    let bad_nav = f
        .client
        .list_debt_positions(
            Who::operator(ALTAVILLA).request(pb::ListDebtPositionsRequest {
                nav: "301000000000012374".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(fields(&bad_nav), ["nav"]);

    let summaries = f
        .client
        .list_municipality_tax_summaries(Who::operator(PALERMO).request(
            pb::ListMunicipalityTaxSummariesRequest {
                keys: vec![PALERMO.into()],
                year,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let s = &summaries.items[0].summaries;
    assert_eq!(s.len(), 2, "IMU and TARI");
    assert!(
        s.iter()
            .all(|x| x.positions > 0 && cents(&x.amount_due) > 0 && cents(&x.amount_paid) > 0)
    );
    // Collection figures are internal to the comune: Altavilla's operators get none of Palermo's,
    // citizens none at all.
    let foreign = f
        .client
        .list_municipality_tax_summaries(Who::operator(ALTAVILLA).request(
            pb::ListMunicipalityTaxSummariesRequest {
                keys: vec![PALERMO.into(), ALTAVILLA.into()],
                year,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = foreign.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, [ALTAVILLA]);
    let citizen_asks = f
        .client
        .list_municipality_tax_summaries(citizen_who(52).request(
            pb::ListMunicipalityTaxSummariesRequest {
                keys: vec![PALERMO.into()],
                year,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(citizen_asks.code(), Code::PermissionDenied);
}

async fn next(
    s: &mut tonic::Streaming<pb::WatchDebtPositionResponse>,
) -> pb::WatchDebtPositionResponse {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("update in time")
        .unwrap()
        .unwrap()
}

/// A row of a 10,000-row roll for Altavilla: registrations, declarations and arrears in turn.
fn roll_row(i: usize) -> pb::ImportTaxRollRequest {
    use pb::import_tax_roll_request::Row;
    let cf = citizen(10_000 + i).fiscal_code;
    let row = match i % 3 {
        0 => Row::TariRegistration(pb::TariRegistration {
            istat_code: ALTAVILLA.into(),
            holder_fiscal_code: cf,
            kind: pb::TariUseKind::Domestic as i32,
            address: Some(common::Address {
                street: "Via del Roll".into(),
                house_number: i.to_string(),
                ..Default::default()
            }),
            surface_sqm: 60 + (i % 90) as i32,
            household_size: 1 + (i % 5) as i32,
            resident: true,
            start_date: "2018-03-01".into(),
            ..Default::default()
        }),
        1 => Row::ImuDeclaration(pb::ImuDeclaration {
            fiscal_code: cf,
            istat_code: ALTAVILLA.into(),
            year: 2025,
            cadastral_unit_id: format!("cu-roll-{i}"),
            canone_concordato: true,
            start_date: "2025-01-01".into(),
            ..Default::default()
        }),
        _ => Row::TaxPosition(pb::TaxPosition {
            fiscal_code: cf,
            istat_code: ALTAVILLA.into(),
            tribute: pb::Tribute::Imu as i32,
            year: 2019,
            amount_due: Some(common::Money {
                cents: 31_200 + i as i64,
            }),
            amount_paid: Some(common::Money { cents: 0 }),
            ..Default::default()
        }),
    };
    pb::ImportTaxRollRequest { row: Some(row) }
}

/// 10,000 rows with three bad ones: exactly those three reported, nothing written; the clean roll
/// imports in one call.
async fn roll(f: &mut Fixture) {
    use pb::import_tax_roll_request::Row;
    let before = f.store.roll_counts(ALTAVILLA).await.unwrap();
    let mut rows: Vec<_> = (0..10_000).map(roll_row).collect();
    if let Some(Row::TariRegistration(r)) = rows[1_233].row.as_mut() {
        r.surface_sqm = 0;
    }
    if let Some(Row::ImuDeclaration(d)) = rows[5_677].row.as_mut() {
        d.fiscal_code = "RSSMRA80A01G273A".into();
    }
    if let Some(Row::TaxPosition(p)) = rows[8_999].row.as_mut() {
        p.amount_paid = Some(common::Money { cents: 99_999_999 });
    }
    let started = Instant::now();
    let system = Who::system(ALTAVILLA);
    let answer = f
        .client
        .import_tax_roll(system.request(futures::stream::iter(rows)))
        .await
        .unwrap()
        .into_inner();
    let bad: Vec<(i32, &str)> = answer
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(
        bad,
        [
            (1_234, "tari_registration.surface_sqm"),
            (5_678, "imu_declaration.fiscal_code"),
            (9_000, "tax_position.amount_paid.cents"),
        ]
    );
    assert_eq!(answer.imported, 0);
    assert_eq!(
        f.store.roll_counts(ALTAVILLA).await.unwrap(),
        before,
        "a failed roll writes nothing"
    );

    let good: Vec<_> = (0..10_000).map(roll_row).collect();
    // Another comune's system has every row refused; a citizen is refused before a row is read.
    let foreign = f
        .client
        .import_tax_roll(Who::system(BAGHERIA).request(futures::stream::iter(good.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(foreign.imported, 0);
    assert_eq!(foreign.errors.len(), 10_000);
    let citizen_import = f
        .client
        .import_tax_roll(citizen_who(1).request(futures::stream::iter(good.clone())))
        .await
        .unwrap_err();
    assert_eq!(citizen_import.code(), Code::PermissionDenied);
    assert_eq!(f.store.roll_counts(ALTAVILLA).await.unwrap(), before);
    let answer = f
        .client
        .import_tax_roll(system.request(futures::stream::iter(good)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer.errors.is_empty(),
        "{:?}",
        &answer.errors[..answer.errors.len().min(3)]
    );
    assert_eq!(
        (
            answer.imported,
            answer.tari_registrations,
            answer.imu_declarations,
            answer.tax_positions
        ),
        (10_000, 3_334, 3_333, 3_333)
    );
    let after = f.store.roll_counts(ALTAVILLA).await.unwrap();
    assert_eq!(
        after,
        (before.0 + 3_333, before.1 + 3_334, before.2 + 3_333)
    );
    eprintln!("two 10,000-row rolls in {:?}", started.elapsed());

    // Arrears imported as computed elsewhere are overdue and payable through a new notice.
    let arrears = f
        .client
        .list_tax_positions(
            Who::operator(ALTAVILLA).request(pb::ListTaxPositionsRequest {
                istat_code: ALTAVILLA.into(),
                year: 2019,
                status: pb::TaxPositionStatus::Overdue as i32,
                page: Some(common::PageRequest {
                    first: 1,
                    after: String::new(),
                }),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(arrears.page_info.unwrap().total_count, 3_333);
    let p = &arrears.positions[0];
    assert!(p.imported && p.assessment.is_none());
    let notice = f
        .client
        .issue_debt_position(
            Who::operator(ALTAVILLA).request(pb::IssueDebtPositionRequest {
                tax_position_id: p.id.clone(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .debt_position
        .unwrap();
    assert_eq!(notice.payment_options.len(), 1);
    assert_eq!(
        cents(&notice.payment_options[0].amount),
        cents(&p.amount_due)
    );
}

/// Declarations filed online: IMU checked against the Catasto over gRPC, TARI start, change, end.
async fn declarations(f: &mut Fixture) {
    let year = Utc::now().year();
    let who = citizen(0).fiscal_code;
    let unknown = f
        .client
        .submit_imu_declaration(Who::citizen(&who).request(pb::SubmitImuDeclarationRequest {
            declaration: Some(pb::ImuDeclaration {
                fiscal_code: who.clone(),
                istat_code: ALTAVILLA.into(),
                year,
                cadastral_unit_id: "cu-none".into(),
                start_date: format!("{year}-01-01"),
                canone_concordato: true,
                ..Default::default()
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&unknown), ["declaration.cadastral_unit_id"]);
    let units = f
        .client
        .compute_imu(Who::citizen(&who).request(pb::ComputeImuRequest {
            fiscal_code: who.clone(),
            year,
            istat_code: ALTAVILLA.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let unit = units.assessments[0].lines[0].cadastral_unit_id.clone();
    let filed = f
        .client
        .submit_imu_declaration(Who::citizen(&who).request(pb::SubmitImuDeclarationRequest {
            declaration: Some(pb::ImuDeclaration {
                fiscal_code: who.clone(),
                istat_code: ALTAVILLA.into(),
                year,
                cadastral_unit_id: unit,
                base_reduction: pb::ImuBaseReduction::Unusable as i32,
                reduction_start_date: format!("{year}-07-01"),
                start_date: format!("{year}-07-01"),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .declaration
        .unwrap();
    assert!(
        filed
            .protocol_number
            .starts_with(&format!("{ALTAVILLA}/TRIB/"))
    );

    let start = f
        .client
        .submit_tari_declaration(
            Who::citizen(&who).request(pb::SubmitTariDeclarationRequest {
                kind: pb::TariDeclarationKind::Start as i32,
                registration: Some(pb::TariRegistration {
                    istat_code: ALTAVILLA.into(),
                    holder_fiscal_code: who.clone(),
                    kind: pb::TariUseKind::Domestic as i32,
                    address: Some(common::Address {
                        street: "Via Nuova".into(),
                        house_number: "7".into(),
                        ..Default::default()
                    }),
                    surface_sqm: 80,
                    household_size: 2,
                    resident: true,
                    ..Default::default()
                }),
                event_date: (Utc::now().date_naive() - chrono::Duration::days(200)).to_string(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(start.late, "filed more than 90 days after the event");
    let id = start.registration.unwrap().id;
    let change = f
        .client
        .submit_tari_declaration(
            Who::citizen(&who).request(pb::SubmitTariDeclarationRequest {
                kind: pb::TariDeclarationKind::Change as i32,
                registration_id: id.clone(),
                registration: Some(pb::TariRegistration {
                    istat_code: ALTAVILLA.into(),
                    holder_fiscal_code: who.clone(),
                    kind: pb::TariUseKind::Domestic as i32,
                    address: Some(common::Address {
                        street: "Via Nuova".into(),
                        house_number: "7".into(),
                        ..Default::default()
                    }),
                    surface_sqm: 80,
                    household_size: 3,
                    resident: true,
                    ..Default::default()
                }),
                event_date: (Utc::now().date_naive() - chrono::Duration::days(10)).to_string(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(!change.late);
    let new_id = change.registration.unwrap().id;
    let ended = f
        .client
        .submit_tari_declaration(
            Who::citizen(&who).request(pb::SubmitTariDeclarationRequest {
                kind: pb::TariDeclarationKind::End as i32,
                registration_id: new_id.clone(),
                event_date: Utc::now().date_naive().to_string(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(!ended.registration.unwrap().end_date.is_empty());
    let all = f
        .client
        .list_citizen_tari_registrations(Who::citizen(&who).request(
            pb::ListCitizenTariRegistrationsRequest {
                keys: vec![who.clone()],
                include_ended: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mine: Vec<_> = all.items[0]
        .registrations
        .iter()
        .filter(|r| r.id == id || r.id == new_id)
        .collect();
    assert_eq!(
        mine.len(),
        2,
        "the change closed the old situation and opened a new one"
    );
    let twice = f
        .client
        .submit_tari_declaration(
            Who::citizen(&who).request(pb::SubmitTariDeclarationRequest {
                kind: pb::TariDeclarationKind::End as i32,
                registration_id: new_id,
                event_date: Utc::now().date_naive().to_string(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
}

/// Every unary RPC answers an empty request with a meaningful status, asked by an operator, who
/// may call every one of them.
async fn empty_requests(f: &mut Fixture) {
    let operator = Who::operator(PALERMO);
    let c = &mut f.client;
    macro_rules! code {
        ($call:ident, $req:ty) => {
            match c.$call(operator.request(<$req>::default())).await {
                Ok(_) => (stringify!($call), Code::Ok),
                Err(s) => (stringify!($call), s.code()),
            }
        };
    }
    let answers = [
        code!(compute_imu, pb::ComputeImuRequest),
        code!(compute_tari, pb::ComputeTariRequest),
        code!(get_imu_rates, pb::GetImuRatesRequest),
        code!(set_imu_rates, pb::SetImuRatesRequest),
        code!(get_tari_tariffs, pb::GetTariTariffsRequest),
        code!(set_tari_tariffs, pb::SetTariTariffsRequest),
        code!(list_tax_positions, pb::ListTaxPositionsRequest),
        code!(lookup_tax_positions, pb::LookupTaxPositionsRequest),
        code!(
            list_citizen_tax_positions,
            pb::ListCitizenTaxPositionsRequest
        ),
        code!(
            list_citizen_tari_registrations,
            pb::ListCitizenTariRegistrationsRequest
        ),
        code!(
            list_citizen_debt_positions,
            pb::ListCitizenDebtPositionsRequest
        ),
        code!(
            list_municipality_tax_summaries,
            pb::ListMunicipalityTaxSummariesRequest
        ),
        code!(list_tari_registrations, pb::ListTariRegistrationsRequest),
        code!(submit_tari_declaration, pb::SubmitTariDeclarationRequest),
        code!(list_imu_declarations, pb::ListImuDeclarationsRequest),
        code!(submit_imu_declaration, pb::SubmitImuDeclarationRequest),
        code!(list_debt_positions, pb::ListDebtPositionsRequest),
        code!(lookup_debt_positions, pb::LookupDebtPositionsRequest),
        code!(issue_debt_position, pb::IssueDebtPositionRequest),
        code!(invalidate_debt_position, pb::InvalidateDebtPositionRequest),
        code!(generate_tax_notices, pb::GenerateTaxNoticesRequest),
        code!(record_debt_payment, pb::RecordDebtPaymentRequest),
    ];
    let ok = [
        "list_tax_positions",
        "lookup_tax_positions",
        "list_citizen_tax_positions",
        "list_citizen_tari_registrations",
        "list_citizen_debt_positions",
        "list_municipality_tax_summaries",
        "list_imu_declarations",
        "list_debt_positions",
        "lookup_debt_positions",
    ];
    for (rpc, code) in answers {
        let expected = if ok.contains(&rpc) {
            Code::Ok
        } else {
            Code::InvalidArgument
        };
        assert_eq!(code, expected, "{rpc}");
    }
    let missing = c
        .issue_debt_position(operator.request(pb::IssueDebtPositionRequest {
            tax_position_id: "tp-none".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Online declarations and payments count in the indicators.
async fn indicators(f: &mut Fixture) {
    let mut client = IndicatorsServiceClient::new(f.channel.clone());
    let answer = client
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![PALERMO.into(), ALTAVILLA.into()],
            period: None,
        })
        .await
        .unwrap()
        .into_inner();
    for item in &answer.items {
        assert!(
            item.procedures
                .iter()
                .any(|p| p.code == "taxes.imu-payment" && p.fully_online)
        );
        assert!(item.completed_interactions > 0, "{}", item.istat_code);
    }
}

async fn whole_suite(building_db: DatabaseConnection, taxes_db: DatabaseConnection) {
    let started = Instant::now();
    let mut f = start(building_db, taxes_db).await;
    eprintln!("demo data for the 82 comuni in {:?}", started.elapsed());
    imu(&mut f).await;
    tari(&mut f).await;
    rates(&mut f).await;
    notices(&mut f).await;
    roll(&mut f).await;
    declarations(&mut f).await;
    empty_requests(&mut f).await;
    indicators(&mut f).await;
    f.taxes.stop().await.expect("clean stop");
    f.building.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taxes_on_sqlite() {
    whole_suite(
        testing::sqlite::<patto_building::Migrator>().await,
        testing::sqlite::<Migrator>().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taxes_on_postgres() {
    let (Some(building), Some(taxes)) =
        (TestPostgres::create().await, TestPostgres::create().await)
    else {
        return;
    };
    whole_suite(
        building
            .migrated::<patto_building::Migrator>()
            .await
            .expect("migrate building"),
        taxes.migrated::<Migrator>().await.expect("migrate taxes"),
    )
    .await;
}

/// With the building service down, IMU answers UNAVAILABLE naming it; what needs no Catasto works.
#[tokio::test]
async fn building_down_means_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = building_client(&format!("http://127.0.0.1:{port}"));
    let store = Store::new(testing::sqlite::<Migrator>().await, SALT);
    let server = TestServer::start(taxes_app(store, client)).await;
    let mut taxes = TaxesServiceClient::new(server.channel().await);
    let down = taxes
        .compute_imu(citizen_who(1).request(pb::ComputeImuRequest {
            fiscal_code: citizen(1).fiscal_code,
            year: 2025,
            istat_code: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable);
    assert!(
        down.message().contains("building service"),
        "{}",
        down.message()
    );
    let rates = taxes
        .get_imu_rates(pb::GetImuRatesRequest {
            istat_code: ALTAVILLA.into(),
            year: 2025,
        })
        .await
        .unwrap()
        .into_inner()
        .rates
        .unwrap();
    assert_eq!(
        rates.ordinary_rate_bp, 86,
        "the legal default where a comune resolved nothing"
    );
    let no_creditor = taxes
        .generate_tax_notices(
            Who::operator(ALTAVILLA).request(pb::GenerateTaxNoticesRequest {
                istat_code: ALTAVILLA.into(),
                tribute: pb::Tribute::Tari as i32,
                year: 2025,
                dry_run: false,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        no_creditor.code(),
        Code::FailedPrecondition,
        "{}",
        no_creditor.message()
    );
}

/// The services' own `run`, as the all-in-one launcher calls them: both start at once on SQLite
/// files with demo data and verify the tokens of a dev issuer; taxes, given system tokens of that
/// issuer for its own calls (`run_with`), seeds its roll and notices from building's Catasto, read
/// as each comune's system, once building has seeded and serves; a citizen's token then reads
/// their positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_seeds_the_demo_next_to_a_starting_building_service() {
    use std::collections::HashMap;

    use patto_service_kit::ServiceConfig;
    use tokio::net::TcpListener;

    let dir = std::env::temp_dir().join(format!("patto-taxes-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("dev-issuer-key.pem");
    let issuer = Arc::new(DevIssuer::load_or_create(&key).expect("dev issuer"));
    let building_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taxes_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let building_url = format!("http://{}", building_listener.local_addr().unwrap());
    let taxes_url = format!("http://{}", taxes_listener.local_addr().unwrap());
    let config = |service, db: &str| {
        let source: HashMap<&'static str, String> = HashMap::from([
            (
                "DATABASE_URL",
                format!("sqlite://{}/{db}.db?mode=rwc", dir.display()),
            ),
            ("PATTO_DEMO_DATA", "true".to_owned()),
            ("BUILDING_GRPC_URL", building_url.clone()),
            (token::DEV_ISSUER_KEY_VAR, key.display().to_string()),
        ]);
        ServiceConfig::from_source(service, &source).unwrap()
    };
    let (stop_taxes, taxes_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_building, building_stopped) = tokio::sync::oneshot::channel::<()>();
    let taxes = tokio::spawn(patto_taxes::run_with(
        config(patto_taxes::SERVICE, "taxes"),
        taxes_listener,
        async {
            let _ = taxes_stopped.await;
        },
        {
            let issuer = issuer.clone();
            move |client: BuildingClient| {
                client
                    .with_system_credentials(patto_taxes::building::dev_system_credentials(issuer))
            }
        },
    ));
    let building = tokio::spawn(patto_building::run(
        config(patto_building::SERVICE, "building"),
        building_listener,
        async {
            let _ = building_stopped.await;
        },
    ));
    let channel = tonic::transport::Endpoint::from_shared(taxes_url)
        .unwrap()
        .connect_lazy();
    let mut client = TaxesServiceClient::new(channel);
    let citizen_token = Bearer(
        issuer
            .issue(
                &patto_service_kit::Principal::Citizen {
                    fiscal_code: citizen(52).fiscal_code,
                },
                Duration::from_secs(300),
            )
            .expect("citizen token"),
    );
    let answer = tokio::time::timeout(
        Duration::from_secs(120),
        client.list_citizen_tax_positions(citizen_token.request(
            pb::ListCitizenTaxPositionsRequest {
                keys: vec![citizen(52).fiscal_code],
                ..Default::default()
            },
        )),
    )
    .await
    .expect("taxes serves within two minutes")
    .unwrap()
    .into_inner();
    let tributes: Vec<i32> = answer.items[0]
        .positions
        .iter()
        .map(|p| p.tribute)
        .collect();
    assert!(
        tributes.contains(&(pb::Tribute::Imu as i32))
            && tributes.contains(&(pb::Tribute::Tari as i32)),
        "{tributes:?}"
    );
    let _ = stop_taxes.send(());
    let _ = stop_building.send(());
    taxes.await.unwrap().expect("taxes stops cleanly");
    building.await.unwrap().expect("building stops cleanly");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tari_start(holder: &str, street: &str) -> pb::SubmitTariDeclarationRequest {
    pb::SubmitTariDeclarationRequest {
        kind: pb::TariDeclarationKind::Start as i32,
        registration: Some(pb::TariRegistration {
            istat_code: PALERMO.into(),
            holder_fiscal_code: holder.into(),
            kind: pb::TariUseKind::Domestic as i32,
            address: Some(common::Address {
                street: street.into(),
                house_number: "1".into(),
                ..Default::default()
            }),
            surface_sqm: 40,
            household_size: 1,
            resident: false,
            ..Default::default()
        }),
        event_date: (Utc::now().date_naive() - chrono::Duration::days(5)).to_string(),
        ..Default::default()
    }
}

/// Who may list a taxpayer's positions, compute their IMU, file a TARI declaration for them and
/// set Palermo's rates: the taxpayer (Palermo's first demo citizen), another citizen, an operator of
/// Palermo, an operator and a system of Bagheria, an anonymous caller. Every cell is asserted over
/// real gRPC; rates stay public.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_matrix() {
    use Outcome::*;
    let mut f = start(
        testing::sqlite::<patto_building::Migrator>().await,
        testing::sqlite::<Migrator>().await,
    )
    .await;
    let year = Utc::now().year();
    let me = citizen(52).fiscal_code;
    let other = citizen(53).fiscal_code;
    // Public: anyone reads the rates, anonymous callers too.
    let rates = f
        .client
        .get_imu_rates(pb::GetImuRatesRequest {
            istat_code: PALERMO.into(),
            year: year + 5,
        })
        .await
        .expect("rates are public")
        .into_inner()
        .rates
        .unwrap();

    let cases = [
        (Who::citizen(&me), Sees, Sees, Done, Denied),
        (Who::citizen(&other), Denied, Denied, Denied, Denied),
        (Who::operator(PALERMO), Sees, Sees, Done, Done),
        (Who::operator(BAGHERIA), Nothing, Nothing, Denied, Denied),
        (Who::system(BAGHERIA), Nothing, Nothing, Denied, Denied),
        (Who::Anonymous, SignIn, SignIn, SignIn, SignIn),
    ];
    for (who, list, compute, file, set_rates) in cases {
        let positions = f
            .client
            .list_citizen_tax_positions(who.request(pb::ListCitizenTaxPositionsRequest {
                keys: vec![me.clone()],
                ..Default::default()
            }))
            .await;
        match list {
            Sees => {
                let items = positions.expect("lists").into_inner().items;
                assert!(
                    items[0].positions.iter().any(|p| p.istat_code == PALERMO),
                    "{who:?}"
                );
            }
            Nothing => assert!(
                positions
                    .expect("answers")
                    .into_inner()
                    .items
                    .iter()
                    .flat_map(|i| &i.positions)
                    .all(|p| p.istat_code == BAGHERIA),
                "{who:?} sees none of Palermo's positions"
            ),
            refused => refused.assert_refused(positions, &format!("{who:?} listing")),
        }

        let imu = f
            .client
            .compute_imu(who.request(pb::ComputeImuRequest {
                fiscal_code: me.clone(),
                year,
                istat_code: String::new(),
            }))
            .await;
        match compute {
            Sees => {
                let a = imu.expect("computes").into_inner().assessments;
                assert_eq!(a[0].istat_code, PALERMO, "{who:?}");
                assert!(!a[0].lines.is_empty(), "{who:?}");
            }
            Nothing => assert!(
                imu.expect("answers")
                    .into_inner()
                    .assessments
                    .iter()
                    .all(|a| a.istat_code == BAGHERIA),
                "{who:?} computes nothing of Palermo's"
            ),
            refused => refused.assert_refused(imu, &format!("{who:?} computing")),
        }

        let street = format!("Via {who:?}");
        let filed = f
            .client
            .submit_tari_declaration(who.request(tari_start(&me, &street)))
            .await;
        if file == Done {
            let r = filed.expect("files").into_inner().registration.unwrap();
            assert_eq!(r.holder_fiscal_code, me, "{who:?}");
        } else {
            file.assert_refused(filed, &format!("{who:?} filing"));
        }

        let set = f
            .client
            .set_imu_rates(who.request(pb::SetImuRatesRequest {
                rates: Some(rates.clone()),
            }))
            .await;
        if set_rates == Done {
            set.expect("sets the rates");
        } else {
            set_rates.assert_refused(set, &format!("{who:?} setting rates"));
        }
    }

    // Only the allowed declarations were written.
    let registrations = f
        .client
        .list_citizen_tari_registrations(Who::citizen(&me).request(
            pb::ListCitizenTariRegistrationsRequest {
                keys: vec![me.clone()],
                include_ended: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut streets: Vec<String> = registrations.items[0]
        .registrations
        .iter()
        .filter_map(|r| r.address.as_ref().map(|a| a.street.clone()))
        .filter(|s| {
            s.starts_with("Via Citizen")
                || s.starts_with("Via Operator")
                || s.starts_with("Via System")
                || s.starts_with("Via Anonymous")
        })
        .collect();
    streets.sort();
    assert_eq!(
        streets,
        [
            format!("Via Citizen(\"{me}\")"),
            "Via Operator(\"082053\")".to_owned()
        ]
    );
    f.taxes.stop().await.expect("clean stop");
    f.building.stop().await.expect("clean stop");
}

/// An operator's reads of a taxpayer's data are recorded with their purpose and listed to the
/// taxpayer, in taxes and, for the Catasto read to compute IMU, in building (the purpose forwarded);
/// the taxpayer's own reads are not; another comune cannot list Palermo's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_reads_are_recorded_here_and_in_building() {
    let mut f = start(
        testing::sqlite::<patto_building::Migrator>().await,
        testing::sqlite::<Migrator>().await,
    )
    .await;
    let year = Utc::now().year();
    let me = citizen(52).fiscal_code;
    let building = f.building.channel().await;
    // The taxpayer reads and computes their own: nothing recorded.
    let own = Who::citizen(&me);
    f.client
        .list_citizen_tax_positions(own.request(pb::ListCitizenTaxPositionsRequest {
            keys: vec![me.clone()],
            ..Default::default()
        }))
        .await
        .unwrap();
    f.client
        .compute_imu(own.request(pb::ComputeImuRequest {
            fiscal_code: me.clone(),
            year,
            istat_code: String::new(),
        }))
        .await
        .unwrap();
    let mine = personal_data_reads(&f.channel, &own, "", "").await.unwrap();
    assert!(mine.is_empty(), "own reads are not recorded: {mine:?}");

    // Palermo's tax office lists the positions and computes the IMU, declaring the purpose.
    let operator = Who::operator(PALERMO);
    f.client
        .list_citizen_tax_positions(operator.request_with_purpose(
            pb::ListCitizenTaxPositionsRequest {
                keys: vec![me.clone()],
                ..Default::default()
            },
            "pdnd-tributi-3",
        ))
        .await
        .unwrap();
    f.client
        .compute_imu(operator.request_with_purpose(
            pb::ComputeImuRequest {
                fiscal_code: me.clone(),
                year,
                istat_code: String::new(),
            },
            "pdnd-tributi-3",
        ))
        .await
        .unwrap();

    let mine = personal_data_reads(&f.channel, &own, "", "").await.unwrap();
    let mut rows: Vec<[&str; 8]> = mine.iter().map(read_row).collect();
    rows.sort_by_key(|row| row[5]);
    let read_of = |what| {
        [
            "operator",
            "operator@082053",
            PALERMO,
            me.as_str(),
            PALERMO,
            what,
            "pdnd-tributi-3",
            "taxes",
        ]
    };
    assert_eq!(
        rows,
        [read_of("taxes.ImuAssessment"), read_of("taxes.TaxPosition")],
        "{mine:?}"
    );

    // Building recorded the Catasto read made for the operator, with the purpose forwarded.
    let catasto = personal_data_reads(&building, &own, "", "").await.unwrap();
    assert!(
        catasto.iter().any(|r| r.reader_role == "operator"
            && r.reader_subject == "operator@082053"
            && r.what == "building.CadastralUnit"
            && r.purpose_id == "pdnd-tributi-3"),
        "{catasto:?}"
    );

    // Bagheria may not list Palermo's log.
    let denied = personal_data_reads(&f.channel, &Who::operator(BAGHERIA), "", PALERMO).await;
    testing::assert_refused(
        denied,
        Code::PermissionDenied,
        "Bagheria listing Palermo's log",
    );
    let palermo = personal_data_reads(&f.channel, &operator, "", "")
        .await
        .unwrap();
    assert_eq!(palermo.len(), 2);
    f.taxes.stop().await.expect("clean stop");
    f.building.stop().await.expect("clean stop");
}
