//! The building service end to end over real gRPC, on SQLite and on PostgreSQL: the Catasto is
//! searched, paged and extended onto citizens; a cadastral import is all-or-nothing; a permit goes
//! through its whole workflow; an illegal move is refused naming both statuses; a PdC left without
//! a decision past its deadline reads (and streams) as silenzio-assenso; every unary RPC answers an
//! empty request with a meaningful status; filings count in the indicators. Every call carries its
//! caller (the kit's header test authenticator): the Catasto is searched by the comune's operators,
//! permits are filed and moved by their applicants and decided by the comune's operators; who may
//! read and change what is tabled in `access_matrix`, the record of reads in
//! `operators_reads_of_permits_are_recorded_for_the_applicant`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use futures::StreamExt;
use patto_building::store::{Actor, Edit, Store};
use patto_building::{Migrator, demo};
use patto_proto::building::v1 as pb;
use patto_proto::building::v1::building_service_client::BuildingServiceClient;
use patto_proto::common::v1 as common;
use patto_proto::common::v1::indicators_service_client::IndicatorsServiceClient;
use patto_service_kit::demo::citizen;
use patto_service_kit::testing::{
    self, HeaderPrincipal, Outcome, TestPostgres, TestServer, Who, personal_data_reads, read_row,
};
use sea_orm::DatabaseConnection;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const SALT: &str = "test-salt";
const PALERMO: &str = "082053";
const ALTAVILLA: &str = "082001";
const BAGHERIA: &str = "082006";

/// The building app as the tests host it: callers named by the `x-test-principal` header.
fn app(store: Store) -> patto_service_kit::GrpcApp {
    patto_building::app(store).with_authenticator(Arc::new(HeaderPrincipal))
}

/// Demo citizen `n` as a caller.
fn citizen_who(n: usize) -> Who {
    Who::citizen(&citizen(n).fiscal_code)
}

struct Fixture {
    server: TestServer,
    store: Store,
    client: BuildingServiceClient<Channel>,
    channel: Channel,
}

async fn start(db: DatabaseConnection) -> Fixture {
    let store = Store::new(db, SALT);
    let seeded = demo::seed(&store, Utc::now()).await.expect("seed");
    assert!(seeded.units > 82 * 4 && seeded.permits >= 82, "{seeded:?}");
    let server = TestServer::start(app(store.clone())).await;
    let channel = server.channel().await;
    Fixture {
        client: BuildingServiceClient::new(channel.clone()),
        channel,
        store,
        server,
    }
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Searching a comune's Catasto, as its operators do: paging with opaque cursors, filters, batch
/// lookup and the `Citizen.properties` extension with the tax year as filter.
async fn cadastre(f: &mut Fixture) {
    let palermo = Who::operator(PALERMO);
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = f
            .client
            .list_cadastral_units(palermo.request(pb::ListCadastralUnitsRequest {
                istat_code: PALERMO.into(),
                page: Some(common::PageRequest {
                    first: 9,
                    after: after.clone(),
                }),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let info = page.page_info.unwrap();
        seen.extend(
            page.units
                .into_iter()
                .map(|u| (u.foglio, u.particella, u.subalterno, u.id)),
        );
        if !info.has_next_page {
            assert_eq!(info.total_count as usize, seen.len());
            break;
        }
        after = info.end_cursor;
    }
    assert!(seen.len() >= 30, "Palermo's demo Catasto: {}", seen.len());
    // Natural order: foglio 10 … 21, by particella and subalterno.
    let keys: Vec<(u32, u32, u32)> = seen
        .iter()
        .map(|(f, p, s, _)| (f.parse().unwrap(), p.parse().unwrap(), s.parse().unwrap()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let signorile = f
        .client
        .list_cadastral_units(palermo.request(pb::ListCadastralUnitsRequest {
            istat_code: PALERMO.into(),
            categoria: "a/1".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(signorile.units.len(), 1);
    let a1 = &signorile.units[0];
    assert_eq!(
        (a1.categoria.as_str(), a1.belfiore_code.as_str()),
        ("A/1", "G273")
    );
    assert_eq!(a1.consistenza_unit, pb::ConsistenzaUnit::Vani as i32);
    let owner = a1.owners[0].fiscal_code.clone();

    let by_owner = f
        .client
        .list_cadastral_units(palermo.request(pb::ListCadastralUnitsRequest {
            istat_code: PALERMO.into(),
            owner_fiscal_code: owner.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        by_owner
            .units
            .iter()
            .all(|u| u.owners.iter().any(|o| o.fiscal_code == owner))
    );
    assert!(by_owner.units.iter().any(|u| u.categoria == "C/6"));
    // The owner themself finds the same units, and only theirs, without naming themself.
    let own = f
        .client
        .list_cadastral_units(Who::citizen(&owner).request(pb::ListCadastralUnitsRequest {
            istat_code: PALERMO.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let ids = |units: &[pb::CadastralUnit]| {
        units
            .iter()
            .map(|u| u.id.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(ids(&own.units), ids(&by_owner.units));

    let garages = f
        .client
        .list_cadastral_units(palermo.request(pb::ListCadastralUnitsRequest {
            istat_code: PALERMO.into(),
            categoria: "C".into(),
            street: "LIBERT".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        garages.units.iter().all(|u| u.categoria.starts_with("C/")
            && u.address.as_ref().unwrap().street.contains("Libert"))
    );

    let looked = f
        .client
        .lookup_cadastral_units(palermo.request(pb::LookupCadastralUnitsRequest {
            keys: vec![a1.id.clone(), "cu-none".into(), a1.id.clone()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        looked.items.len(),
        1,
        "unknown ids are left out, duplicates sent once"
    );

    // Citizen.properties, for last year: the office bought in June of last year counts, the flat
    // sold this spring too; today only what is still held.
    let year = Utc::now().year();
    let c3 = citizen(52 + 82 * 3).fiscal_code; // Palermo's fourth demo citizen holds the office
    let c2 = citizen(52 + 82 * 2).fiscal_code; // the third sold a flat this year
    let omocodic = {
        // Same person, omocodic form: answered under the key as sent.
        let mut chars: Vec<char> = c3.chars().collect();
        chars[14] = "LMNPQRSTUV"
            .chars()
            .nth(chars[14].to_digit(10).unwrap() as usize)
            .unwrap();
        let first15: String = chars[..15].iter().collect();
        patto_service_kit::ids::fiscal_code_with_check(&first15)
    };
    let props = f
        .client
        .list_citizen_properties(palermo.request(pb::ListCitizenPropertiesRequest {
            keys: vec![
                c3.clone(),
                c2.clone(),
                omocodic.clone(),
                patto_service_kit::ids::fiscal_code_with_check("RSSMRA80A01G273"),
            ],
            year: year - 1,
            istat_code: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = props.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, [c3.as_str(), c2.as_str(), omocodic.as_str()]);
    let office = props.items[0]
        .holdings
        .iter()
        .find(|h| h.unit.as_ref().unwrap().categoria == "A/10")
        .expect("the office");
    assert_eq!(
        office.ownership.as_ref().unwrap().start_date,
        format!("{}-06-01", year - 1)
    );
    let sold = |items: &[pb::ListCitizenPropertiesItem]| {
        items
            .iter()
            .find(|i| i.key == c2)
            .map(|i| {
                i.holdings
                    .iter()
                    .any(|h| !h.ownership.as_ref().unwrap().end_date.is_empty())
            })
            .unwrap_or(false)
    };
    assert!(sold(&props.items));
    let today = f
        .client
        .list_citizen_properties(Who::citizen(&c2).request(pb::ListCitizenPropertiesRequest {
            keys: vec![c2.clone()],
            year: 0,
            istat_code: PALERMO.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let sale = chrono::NaiveDate::from_ymd_opt(year, 4, 20).unwrap();
    if Utc::now().date_naive() > sale {
        assert!(!sold(&today.items), "a right that ended is not held today");
    }

    let bad = f
        .client
        .list_cadastral_units(palermo.request(pb::ListCadastralUnitsRequest {
            istat_code: PALERMO.into(),
            particella: "12".into(),
            categoria: "Z/9".into(),
            owner_fiscal_code: "nobody".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&bad),
        ["particella", "categoria", "owner_fiscal_code"]
    );
}

fn import_row(n: usize) -> pb::ImportCadastralUnitsRequest {
    pb::ImportCadastralUnitsRequest {
        unit: Some(pb::CadastralUnit {
            istat_code: ALTAVILLA.into(),
            foglio: "500".into(),
            particella: (1000 + n).to_string(),
            subalterno: "1".into(),
            categoria: "A/3".into(),
            classe: "2".into(),
            consistenza: 5.0,
            rendita: Some(common::Money { cents: 30_987 }),
            surface_sqm: 95,
            surface_excluding_uncovered_sqm: 90,
            owners: vec![pb::CadastralOwnership {
                fiscal_code: citizen(n).fiscal_code,
                name: "DEMO".into(),
                right: pb::OwnershipRight::Proprieta as i32,
                share_numerator: 1,
                share_denominator: 1,
                start_date: "2015-02-01".into(),
                end_date: String::new(),
            }],
            ..Default::default()
        }),
    }
}

/// An extract with three bad rows reports exactly those and writes nothing; a clean one is
/// written whole, by the comune's operator only; the same extract again updates by natural key.
async fn import(f: &mut Fixture) {
    let altavilla = Who::operator(ALTAVILLA);
    let count = |f: &Fixture| {
        let mut c = f.client.clone();
        async move {
            c.list_cadastral_units(Who::operator(ALTAVILLA).request(
                pb::ListCadastralUnitsRequest {
                    istat_code: ALTAVILLA.into(),
                    foglio: "500".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .page_info
            .unwrap()
            .total_count
        }
    };
    let mut rows: Vec<_> = (0..400).map(import_row).collect();
    rows[10].unit.as_mut().unwrap().categoria = "A/99".into();
    rows[200].unit.as_mut().unwrap().owners[0].share_numerator = 2;
    rows[350].unit = None;
    let answer = f
        .client
        .import_cadastral_units(altavilla.request(futures::stream::iter(rows)))
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
            (11, "unit.categoria"),
            (201, "unit.owners[0].share_numerator"),
            (351, "unit")
        ]
    );
    assert_eq!(answer.imported, 0);
    assert_eq!(count(f).await, 0, "a failed import writes nothing");

    let good: Vec<_> = (0..400).map(import_row).collect();
    // Only the comune imports its Catasto: a citizen and an anonymous caller are refused before a
    // row is read, another comune's system has every row refused.
    for (who, code) in [
        (citizen_who(1), Code::PermissionDenied),
        (Who::Anonymous, Code::Unauthenticated),
    ] {
        let refused = f
            .client
            .import_cadastral_units(who.request(futures::stream::iter(good.clone())))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), code, "{who:?}: {refused:?}");
    }
    let foreign = f
        .client
        .import_cadastral_units(Who::system(BAGHERIA).request(futures::stream::iter(good.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(foreign.imported, 0);
    assert!(
        foreign.errors.iter().all(|e| e.field == "unit.istat_code"),
        "{:?}",
        foreign.errors.first()
    );
    assert_eq!(count(f).await, 0);
    let answer = f
        .client
        .import_cadastral_units(altavilla.request(futures::stream::iter(good.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.imported, answer.created, answer.updated),
        (400, 400, 0)
    );
    assert_eq!(count(f).await, 400);
    let again = f
        .client
        .import_cadastral_units(altavilla.request(futures::stream::iter(good)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.imported, again.created, again.updated),
        (400, 0, 400)
    );
    assert_eq!(count(f).await, 400);

    let mut mixed = vec![import_row(1), import_row(1)];
    mixed[1].unit.as_mut().unwrap().istat_code = PALERMO.into();
    let answer = f
        .client
        .import_cadastral_units(altavilla.request(futures::stream::iter(mixed)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.errors[0].field, "unit.istat_code");
}

fn attachment(name: &str) -> pb::BuildingPermitAttachment {
    pb::BuildingPermitAttachment {
        name: name.into(),
        sha256: "ab".repeat(32),
        size_bytes: 123_456,
        media_type: "application/pdf".into(),
        document_type: "relazione tecnica asseverata".into(),
        ..Default::default()
    }
}

fn new_draft(kind: pb::BuildingPermitKind, n: usize) -> pb::BuildingPermitDraft {
    pb::BuildingPermitDraft {
        istat_code: ALTAVILLA.into(),
        kind: kind as i32,
        applicant_fiscal_code: citizen(n).fiscal_code,
        designer_fiscal_code: citizen(n + 1).fiscal_code,
        subject: "Ampliamento".into(),
        intervention_category: pb::InterventionCategory::NuovaCostruzione as i32,
        address: Some(common::Address {
            street: "Via Roma".into(),
            house_number: "3".into(),
            ..Default::default()
        }),
        parcels: vec![pb::BuildingPermitParcel {
            foglio: "7".into(),
            particella: "210".into(),
            ..Default::default()
        }],
        attachments: vec![attachment("relazione.pdf")],
        ..Default::default()
    }
}

/// The applicant files `draft` themself.
async fn create(f: &mut Fixture, draft: pb::BuildingPermitDraft) -> pb::BuildingPermit {
    let applicant = Who::citizen(&draft.applicant_fiscal_code);
    f.client
        .create_building_permit_draft(
            applicant.request(pb::CreateBuildingPermitDraftRequest { draft: Some(draft) }),
        )
        .await
        .expect("create draft")
        .into_inner()
        .permit
        .unwrap()
}

fn status(p: &pb::BuildingPermit) -> pb::BuildingPermitStatus {
    pb::BuildingPermitStatus::try_from(p.status).unwrap()
}

/// A PdC from the citizen's draft to the SCA, with its protocol numbers, deadlines and history;
/// an illegal move is refused naming both statuses.
async fn workflow(f: &mut Fixture) {
    use pb::BuildingPermitStatus as S;
    let mut draft = new_draft(pb::BuildingPermitKind::Pdc, 1);
    draft.attachments.clear();
    let p = create(f, draft.clone()).await;
    assert_eq!(status(&p), S::Bozza);
    assert_eq!(p.history.len(), 1);
    let id = p.id.clone();

    let incomplete = f
        .client
        .submit_building_permit(citizen_who(1).request(pb::SubmitBuildingPermitRequest {
            permit_id: id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(incomplete.code(), Code::FailedPrecondition);
    assert!(
        incomplete.message().contains("attachments"),
        "{}",
        incomplete.message()
    );

    draft.attachments = vec![attachment("relazione.pdf"), attachment("grafici.pdf")];
    let updated = f
        .client
        .update_building_permit_draft(citizen_who(1).request(
            pb::UpdateBuildingPermitDraftRequest {
                permit_id: id.clone(),
                draft: Some(draft.clone()),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .permit
        .unwrap();
    assert_eq!(updated.attachments.len(), 2);

    let filed = f
        .client
        .submit_building_permit(citizen_who(1).request(pb::SubmitBuildingPermitRequest {
            permit_id: id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .permit
        .unwrap();
    assert_eq!(status(&filed), S::Protocollata);
    assert!(
        filed
            .protocol_number
            .starts_with(&format!("{ALTAVILLA}/SUE/")),
        "{}",
        filed.protocol_number
    );
    let d = filed.deadlines.as_ref().unwrap();
    let submitted = filed.submitted_time.unwrap().seconds;
    assert_eq!(d.review_due_time.unwrap().seconds - submitted, 60 * 86_400);
    assert_eq!(
        d.silenzio_assenso_time.unwrap().seconds - submitted,
        90 * 86_400
    );
    assert!(!filed.silenzio_assenso_excluded);

    // Deciding a permit still waiting for its review is illegal: both statuses are named.
    let illegal = f
        .client
        .decide_building_permit(
            Who::operator(ALTAVILLA).request(pb::DecideBuildingPermitRequest {
                permit_id: id.clone(),
                outcome: pb::PermitDecisionOutcome::Grant as i32,
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(illegal.code(), Code::FailedPrecondition);
    assert!(
        illegal
            .message()
            .contains("from PROTOCOLLATA to RILASCIATO"),
        "{}",
        illegal.message()
    );
    let edit = f
        .client
        .update_building_permit_draft(citizen_who(1).request(
            pb::UpdateBuildingPermitDraftRequest {
                permit_id: id.clone(),
                draft: Some(draft),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(edit.code(), Code::FailedPrecondition);

    // The review is Altavilla's: neither the applicant nor Palermo's operators assign it.
    for who in [citizen_who(1), Who::operator(PALERMO)] {
        let refused = f
            .client
            .assign_building_permit(who.request(pb::AssignBuildingPermitRequest {
                permit_id: id.clone(),
                responsible_officer: "Ing. Salvatore Lo Bue".into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{who:?}: {refused:?}"
        );
    }

    let c = &mut f.client;
    c.assign_building_permit(
        Who::operator(ALTAVILLA).request(pb::AssignBuildingPermitRequest {
            permit_id: id.clone(),
            responsible_officer: "Ing. Salvatore Lo Bue".into(),
        }),
    )
    .await
    .unwrap();
    c.request_building_permit_integration(Who::operator(ALTAVILLA).request(
        pb::RequestBuildingPermitIntegrationRequest {
            permit_id: id.clone(),
            note: "Relazione geologica".into(),
        },
    ))
    .await
    .unwrap();
    let back = c
        .submit_building_permit_integration(citizen_who(1).request(
            pb::SubmitBuildingPermitIntegrationRequest {
                permit_id: id.clone(),
                attachments: vec![attachment("relazione-geologica.pdf")],
                note: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .permit
        .unwrap();
    assert_eq!(status(&back), S::Istruttoria);
    assert_eq!(back.attachments.last().unwrap().integration_round, 1);
    let twice = c
        .request_building_permit_integration(Who::operator(ALTAVILLA).request(
            pb::RequestBuildingPermitIntegrationRequest {
                permit_id: id.clone(),
                note: "Altro".into(),
            },
        ))
        .await
        .unwrap_err();
    assert!(
        twice.message().contains("one integration request only"),
        "{}",
        twice.message()
    );
    c.propose_building_permit_decision(Who::operator(ALTAVILLA).request(
        pb::ProposeBuildingPermitDecisionRequest {
            permit_id: id.clone(),
            outcome: pb::PermitProposalOutcome::Favourable as i32,
            motivation: "Conforme".into(),
            construction_contribution: Some(common::Money { cents: 850_000 }),
        },
    ))
    .await
    .unwrap();
    let granted = c
        .decide_building_permit(
            Who::operator(ALTAVILLA).request(pb::DecideBuildingPermitRequest {
                permit_id: id.clone(),
                outcome: pb::PermitDecisionOutcome::Grant as i32,
                motivation: String::new(),
                protocol_number: String::new(),
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .permit
        .unwrap();
    assert_eq!(status(&granted), S::Rilasciato);
    assert!(!granted.decision_protocol_number.is_empty());
    let today = Utc::now().date_naive().to_string();
    c.start_building_works(citizen_who(1).request(pb::StartBuildingWorksRequest {
        permit_id: id.clone(),
        start_date: today.clone(),
        contractor_fiscal_code: "00743110157".into(),
        works_director_fiscal_code: citizen(9).fiscal_code,
    }))
    .await
    .unwrap();
    c.end_building_works(citizen_who(1).request(pb::EndBuildingWorksRequest {
        permit_id: id.clone(),
        end_date: today,
    }))
    .await
    .unwrap();
    let done = c
        .file_agibility_certification(citizen_who(1).request(
            pb::FileAgibilityCertificationRequest {
                permit_id: id.clone(),
                attachments: vec![attachment("dichiarazione-direttore-lavori.pdf")],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .permit
        .unwrap();
    assert_eq!(status(&done), S::Sca);
    let path: Vec<i32> = done.history.iter().map(|t| t.to_status).collect();
    let expected: Vec<i32> = [
        S::Bozza,
        S::Protocollata,
        S::Istruttoria,
        S::Integrazioni,
        S::Istruttoria,
        S::Proposta,
        S::Rilasciato,
        S::InizioLavori,
        S::FineLavori,
        S::Sca,
    ]
    .iter()
    .map(|s| *s as i32)
    .collect();
    assert_eq!(path, expected);
    assert!(!done.agibility_protocol_number.is_empty());

    let withdrawn = c
        .withdraw_building_permit(citizen_who(1).request(pb::WithdrawBuildingPermitRequest {
            permit_id: id.clone(),
            reason: "ripensamento".into(),
        }))
        .await
        .unwrap_err();
    assert!(
        withdrawn.message().contains("from SCA to ARCHIVIATA"),
        "{}",
        withdrawn.message()
    );

    let mine = c
        .list_citizen_building_permits(citizen_who(1).request(
            pb::ListCitizenBuildingPermitsRequest {
                keys: vec![citizen(1).fiscal_code],
                status: S::Sca as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(mine.items[0].permits.iter().any(|p| p.id == id));
}

async fn next(
    s: &mut tonic::Streaming<pb::WatchBuildingPermitResponse>,
) -> pb::WatchBuildingPermitResponse {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("update in time")
        .unwrap()
        .unwrap()
}

/// A PdC whose decision term passed reads as SILENZIO_ASSENSO, by a SYSTEM transition at the
/// deadline; a watcher sees it happen when the deadline passes; a vincolo excludes it.
async fn silenzio_assenso(f: &mut Fixture) {
    use pb::BuildingPermitStatus as S;
    let operator = Actor {
        role: pb::PermitActorRole::Operator,
        id: String::new(),
    };
    let applicant = Actor {
        role: pb::PermitActorRole::Citizen,
        id: citizen(2).fiscal_code,
    };

    // Filed 100 days ago: 60 days of review and 30 of decision have passed.
    let old = create(f, new_draft(pb::BuildingPermitKind::Pdc, 2)).await;
    let filed = Utc::now() - chrono::Duration::days(100);
    f.store
        .act(&old.id, Edit::Submit, &applicant, filed)
        .await
        .unwrap();
    f.store
        .act(
            &old.id,
            Edit::Assign {
                officer: "Arch. Rizzo".into(),
            },
            &operator,
            filed + chrono::Duration::days(5),
        )
        .await
        .unwrap();
    let read = f
        .client
        .lookup_building_permits(Who::operator(ALTAVILLA).request(
            pb::LookupBuildingPermitsRequest {
                keys: vec![old.id.clone()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let p = read.items[0].permit.as_ref().unwrap();
    assert_eq!(status(p), S::SilenzioAssenso);
    let last = p.history.last().unwrap();
    assert_eq!(last.actor_role, pb::PermitActorRole::System as i32);
    assert_eq!(last.from_status, S::Istruttoria as i32);
    assert_eq!(
        last.time.unwrap().seconds,
        p.deadlines
            .as_ref()
            .unwrap()
            .silenzio_assenso_time
            .unwrap()
            .seconds
    );
    let listed = f
        .client
        .list_building_permits(
            Who::operator(ALTAVILLA).request(pb::ListBuildingPermitsRequest {
                istat_code: ALTAVILLA.into(),
                status: S::SilenzioAssenso as i32,
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(listed.permits.iter().any(|x| x.id == old.id));
    let late = f
        .client
        .propose_building_permit_decision(Who::operator(ALTAVILLA).request(
            pb::ProposeBuildingPermitDecisionRequest {
                permit_id: old.id.clone(),
                outcome: pb::PermitProposalOutcome::Unfavourable as i32,
                motivation: "Troppo tardi".into(),
                construction_contribution: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(
        late.message().contains("from SILENZIO_ASSENSO to PROPOSTA"),
        "{}",
        late.message()
    );
    let attested = f
        .client
        .attest_silenzio_assenso(Who::operator(ALTAVILLA).request(
            pb::AttestSilenzioAssensoRequest {
                permit_id: old.id.clone(),
                protocol_number: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .permit
        .unwrap();
    assert!(!attested.silenzio_assenso_attestation.is_empty());

    // A watcher sees the silence become assent the moment the deadline passes.
    let soon = create(f, new_draft(pb::BuildingPermitKind::Pdc, 3)).await;
    let filed = Utc::now() - chrono::Duration::days(90) + chrono::Duration::seconds(2);
    f.store
        .act(&soon.id, Edit::Submit, &applicant, filed)
        .await
        .unwrap();
    let mut stream = f
        .client
        .watch_building_permit(citizen_who(3).request(pb::WatchBuildingPermitRequest {
            permit_id: soon.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await;
    assert_eq!(
        (first.status, first.transition),
        (S::Protocollata as i32, None)
    );
    let moved = next(&mut stream).await;
    assert_eq!(moved.status, S::SilenzioAssenso as i32);
    let t = moved.transition.unwrap();
    assert_eq!(t.actor_role, pb::PermitActorRole::System as i32);

    // A vincolo on the area excludes silenzio-assenso: the permit waits for an express decision.
    let mut constrained = new_draft(pb::BuildingPermitKind::Pdc, 4);
    constrained.constraints = vec![pb::LandConstraint::Paesaggistico as i32];
    let bound = create(f, constrained).await;
    f.store
        .act(
            &bound.id,
            Edit::Submit,
            &applicant,
            Utc::now() - chrono::Duration::days(200),
        )
        .await
        .unwrap();
    let read = f
        .client
        .lookup_building_permits(Who::operator(ALTAVILLA).request(
            pb::LookupBuildingPermitsRequest {
                keys: vec![bound.id.clone()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let p = read.items[0].permit.as_ref().unwrap();
    assert_eq!(status(p), S::Protocollata);
    assert!(p.silenzio_assenso_excluded);
    assert!(
        p.deadlines
            .as_ref()
            .unwrap()
            .silenzio_assenso_time
            .is_none()
    );
    let overdue = f
        .client
        .list_building_permits(
            Who::operator(ALTAVILLA).request(pb::ListBuildingPermitsRequest {
                istat_code: ALTAVILLA.into(),
                deadline_before: Some(patto_service_kit::time::to_timestamp(Utc::now())),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(
        overdue.permits.iter().any(|x| x.id == bound.id),
        "the operators' to-do list"
    );

    let missing = f
        .client
        .watch_building_permit(citizen_who(3).request(pb::WatchBuildingPermitRequest {
            permit_id: "bp-none".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Terms are data: the defaults (doubled by law in Palermo) until a comune sets its own.
async fn terms(f: &mut Fixture) {
    let palermo = f
        .client
        .get_building_permit_terms(pb::GetBuildingPermitTermsRequest {
            istat_code: PALERMO.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert!(palermo.terms_doubled);
    assert_eq!((palermo.review_days, palermo.decision_days), (60, 30));
    assert!(palermo.updated_time.is_none());
    let set = f
        .client
        .set_building_permit_terms(Who::operator(ALTAVILLA).request(
            pb::SetBuildingPermitTermsRequest {
                terms: Some(pb::BuildingPermitTerms {
                    istat_code: ALTAVILLA.into(),
                    review_days: 45,
                    integration_reply_days: 60,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(
        (
            set.review_days,
            set.decision_days,
            set.integration_reply_days
        ),
        (45, 30, 60)
    );
    let p = create(f, new_draft(pb::BuildingPermitKind::Pdc, 5)).await;
    let filed = f
        .client
        .submit_building_permit(
            citizen_who(5).request(pb::SubmitBuildingPermitRequest { permit_id: p.id }),
        )
        .await
        .unwrap()
        .into_inner()
        .permit
        .unwrap();
    let d = filed.deadlines.unwrap();
    assert_eq!(
        d.review_due_time.unwrap().seconds - filed.submitted_time.unwrap().seconds,
        45 * 86_400
    );
    let bad = f
        .client
        .set_building_permit_terms(Who::operator(ALTAVILLA).request(
            pb::SetBuildingPermitTermsRequest {
                terms: Some(pb::BuildingPermitTerms {
                    istat_code: ALTAVILLA.into(),
                    review_days: -3,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["terms.review_days"]);
    // Put the defaults back for the other suites.
    f.client
        .set_building_permit_terms(Who::operator(ALTAVILLA).request(
            pb::SetBuildingPermitTermsRequest {
                terms: Some(pb::BuildingPermitTerms {
                    istat_code: ALTAVILLA.into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap();
}

/// Every unary RPC answers an empty request with a meaningful status, never UNIMPLEMENTED,
/// INTERNAL or UNKNOWN.
async fn empty_requests(f: &mut Fixture) {
    // Asked by an operator, who may call every one of them.
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
        code!(list_cadastral_units, pb::ListCadastralUnitsRequest),
        code!(lookup_cadastral_units, pb::LookupCadastralUnitsRequest),
        code!(list_citizen_properties, pb::ListCitizenPropertiesRequest),
        code!(list_building_permits, pb::ListBuildingPermitsRequest),
        code!(lookup_building_permits, pb::LookupBuildingPermitsRequest),
        code!(
            list_citizen_building_permits,
            pb::ListCitizenBuildingPermitsRequest
        ),
        code!(
            list_municipality_building_permits,
            pb::ListMunicipalityBuildingPermitsRequest
        ),
        code!(get_building_permit_terms, pb::GetBuildingPermitTermsRequest),
        code!(set_building_permit_terms, pb::SetBuildingPermitTermsRequest),
        code!(
            create_building_permit_draft,
            pb::CreateBuildingPermitDraftRequest
        ),
        code!(
            update_building_permit_draft,
            pb::UpdateBuildingPermitDraftRequest
        ),
        code!(submit_building_permit, pb::SubmitBuildingPermitRequest),
        code!(withdraw_building_permit, pb::WithdrawBuildingPermitRequest),
        code!(assign_building_permit, pb::AssignBuildingPermitRequest),
        code!(
            request_building_permit_integration,
            pb::RequestBuildingPermitIntegrationRequest
        ),
        code!(
            submit_building_permit_integration,
            pb::SubmitBuildingPermitIntegrationRequest
        ),
        code!(
            convene_building_permit_conference,
            pb::ConveneBuildingPermitConferenceRequest
        ),
        code!(
            propose_building_permit_decision,
            pb::ProposeBuildingPermitDecisionRequest
        ),
        code!(decide_building_permit, pb::DecideBuildingPermitRequest),
        code!(
            submit_building_permit_observations,
            pb::SubmitBuildingPermitObservationsRequest
        ),
        code!(attest_silenzio_assenso, pb::AttestSilenzioAssensoRequest),
        code!(start_building_works, pb::StartBuildingWorksRequest),
        code!(end_building_works, pb::EndBuildingWorksRequest),
        code!(
            file_agibility_certification,
            pb::FileAgibilityCertificationRequest
        ),
    ];
    for (rpc, code) in answers {
        assert!(
            !matches!(code, Code::Unimplemented | Code::Internal | Code::Unknown),
            "{rpc}: {code:?}"
        );
        let lists = rpc.starts_with("list_") || rpc.starts_with("lookup_");
        if lists && rpc != "list_cadastral_units" {
            assert_eq!(code, Code::Ok, "{rpc}");
        } else {
            assert_eq!(code, Code::InvalidArgument, "{rpc}");
        }
    }
    let missing = c
        .submit_building_permit(operator.request(pb::SubmitBuildingPermitRequest {
            permit_id: "bp-none".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// Online filings count in the indicators of the comune.
async fn indicators(f: &mut Fixture) {
    let mut client = IndicatorsServiceClient::new(f.channel.clone());
    let today = Utc::now().date_naive();
    let answer = client
        .get_indicators(common::GetIndicatorsRequest {
            istat_codes: vec![ALTAVILLA.into()],
            period: Some(common::Period {
                start_date: (today - chrono::Duration::days(1)).to_string(),
                end_date: (today + chrono::Duration::days(1)).to_string(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let a = &answer.items[0];
    assert!(
        a.procedures
            .iter()
            .any(|p| p.code == "building.pdc" && p.fully_online)
    );
    assert!(
        a.completed_interactions >= 2,
        "{}",
        a.completed_interactions
    );
}

async fn whole_suite(db: DatabaseConnection) {
    let mut f = start(db).await;
    cadastre(&mut f).await;
    import(&mut f).await;
    workflow(&mut f).await;
    silenzio_assenso(&mut f).await;
    terms(&mut f).await;
    empty_requests(&mut f).await;
    indicators(&mut f).await;
    f.server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn building_on_sqlite() {
    whole_suite(testing::sqlite::<Migrator>().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn building_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    whole_suite(pg.migrated::<Migrator>().await.expect("migrate")).await;
}

#[tokio::test]
async fn demo_data_covers_every_comune_and_seeds_once() {
    let store = Store::new(testing::sqlite::<Migrator>().await, SALT);
    let now = Utc::now();
    let seeded = demo::seed(&store, now).await.unwrap();
    assert_eq!(
        demo::seed(&store, now).await.unwrap().units,
        0,
        "a second seed adds nothing"
    );
    let server = TestServer::start(app(store)).await;
    let mut client = BuildingServiceClient::new(server.channel().await);
    let mut permits = 0;
    let mut silent = 0;
    for comune in patto_service_kit::comuni::all() {
        // Each comune's system reads its own Catasto and register.
        let system = Who::system(&comune.istat_code);
        let units = client
            .list_cadastral_units(system.request(pb::ListCadastralUnitsRequest {
                istat_code: comune.istat_code.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(units.units.len() >= 4, "{}", comune.name);
        for u in &units.units {
            for o in &u.owners {
                assert!(
                    patto_service_kit::ids::canonical_fiscal_code(&o.fiscal_code).is_ok()
                        || patto_service_kit::ids::validate_partita_iva(&o.fiscal_code).is_ok(),
                    "{}",
                    o.fiscal_code
                );
            }
        }
        let listed = client
            .list_building_permits(system.request(pb::ListBuildingPermitsRequest {
                istat_code: comune.istat_code.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(!listed.permits.is_empty(), "{}", comune.name);
        permits += listed.permits.len();
        silent += listed
            .permits
            .iter()
            .filter(|p| p.status == pb::BuildingPermitStatus::SilenzioAssenso as i32)
            .count();
    }
    assert_eq!(permits, seeded.permits);
    assert!(
        silent >= 5,
        "some demo PdC were granted by silence: {silent}"
    );
}

/// Who may follow a citizen's permit, list their permits and properties, edit their draft and
/// assign their filed permit: the citizen, another citizen, an operator of the permit's comune
/// (Altavilla), an operator and a system of Bagheria, an anonymous caller. Every cell is asserted
/// over real gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix() {
    use Outcome::*;
    let mut f = start(testing::sqlite::<Migrator>().await).await;
    let me = citizen(30).fiscal_code;
    let other = citizen(31).fiscal_code;
    let draft = new_draft(pb::BuildingPermitKind::Pdc, 30);
    let editable = create(&mut f, draft.clone()).await;
    let filed = create(&mut f, draft.clone()).await;
    f.client
        .submit_building_permit(Who::citizen(&me).request(pb::SubmitBuildingPermitRequest {
            permit_id: filed.id.clone(),
        }))
        .await
        .expect("filed");
    // Palermo's first demo citizen holds units in Palermo.
    let owner = citizen(52).fiscal_code;

    let cases = [
        (
            Who::citizen(&me),
            Who::citizen(&owner),
            Sees,
            Sees,
            Done,
            Denied,
        ),
        (
            Who::citizen(&other),
            Who::citizen(&other),
            Denied,
            Denied,
            Denied,
            Denied,
        ),
        (
            Who::operator(ALTAVILLA),
            Who::operator(PALERMO),
            Sees,
            Sees,
            Done,
            Done,
        ),
        (
            Who::operator(BAGHERIA),
            Who::operator(BAGHERIA),
            Denied,
            Nothing,
            Denied,
            Denied,
        ),
        (
            Who::system(BAGHERIA),
            Who::system(BAGHERIA),
            Denied,
            Nothing,
            Denied,
            Denied,
        ),
        (
            Who::Anonymous,
            Who::Anonymous,
            SignIn,
            SignIn,
            SignIn,
            SignIn,
        ),
    ];
    for (who, who_for_owner, follow, list, edit, assign) in cases {
        // Reading one permit: the watch answers its current state first.
        let answer = f
            .client
            .watch_building_permit(who.request(pb::WatchBuildingPermitRequest {
                permit_id: filed.id.clone(),
            }))
            .await;
        if follow == Sees {
            let mut stream = answer.expect("follows").into_inner();
            assert_eq!(next(&mut stream).await.permit_id, filed.id, "{who:?}");
        } else {
            follow.assert_refused(answer, &format!("{who:?} following"));
        }

        // Listing the citizen's permits, and the owner's properties (the same rule, on units).
        let permits = f
            .client
            .list_citizen_building_permits(who.request(pb::ListCitizenBuildingPermitsRequest {
                keys: vec![me.clone()],
                status: 0,
            }))
            .await;
        let properties = f
            .client
            .list_citizen_properties(who_for_owner.request(pb::ListCitizenPropertiesRequest {
                keys: vec![owner.clone()],
                year: 0,
                istat_code: String::new(),
            }))
            .await;
        match list {
            Sees => {
                let permits = permits.expect("lists permits").into_inner();
                assert!(
                    permits.items[0].permits.iter().any(|p| p.id == filed.id),
                    "{who:?}"
                );
                let properties = properties.expect("lists properties").into_inner();
                assert!(
                    !properties.items[0].holdings.is_empty(),
                    "{who_for_owner:?}"
                );
            }
            Nothing => {
                let permits = permits.expect("answers").into_inner();
                assert!(
                    permits
                        .items
                        .iter()
                        .flat_map(|i| &i.permits)
                        .all(|p| p.istat_code == BAGHERIA),
                    "{who:?} sees only Bagheria's permits"
                );
                let properties = properties.expect("answers").into_inner();
                assert!(
                    properties.items.iter().flat_map(|i| &i.holdings).all(|h| h
                        .unit
                        .as_ref()
                        .unwrap()
                        .istat_code
                        == BAGHERIA),
                    "{who_for_owner:?} sees only Bagheria's units"
                );
            }
            refused => {
                refused.assert_refused(permits, &format!("{who:?} listing permits"));
                refused
                    .assert_refused(properties, &format!("{who_for_owner:?} listing properties"));
            }
        }

        // An applicant-side change: editing the draft.
        let mut changed = draft.clone();
        changed.subject = format!("Ampliamento ({who:?})");
        let answer = f
            .client
            .update_building_permit_draft(who.request(pb::UpdateBuildingPermitDraftRequest {
                permit_id: editable.id.clone(),
                draft: Some(changed.clone()),
            }))
            .await;
        if edit == Done {
            let p = answer.expect("edits").into_inner().permit.unwrap();
            assert_eq!(p.subject, changed.subject, "{who:?}");
        } else {
            edit.assert_refused(answer, &format!("{who:?} editing"));
        }

        // An operator-side move: assigning the filed permit.
        let answer = f
            .client
            .assign_building_permit(who.request(pb::AssignBuildingPermitRequest {
                permit_id: filed.id.clone(),
                responsible_officer: format!("{who:?}"),
            }))
            .await;
        if assign == Done {
            let p = answer.expect("assigns").into_inner().permit.unwrap();
            assert_eq!(status(&p), pb::BuildingPermitStatus::Istruttoria);
        } else {
            assign.assert_refused(answer, &format!("{who:?} assigning"));
        }
    }

    // Only the allowed changes were made.
    let p = f
        .client
        .lookup_building_permits(Who::citizen(&me).request(pb::LookupBuildingPermitsRequest {
            keys: vec![editable.id.clone(), filed.id.clone()],
        }))
        .await
        .unwrap()
        .into_inner();
    let by_id = |id: &str| {
        p.items
            .iter()
            .find(|i| i.key == id)
            .and_then(|i| i.permit.clone())
            .unwrap()
    };
    assert!(by_id(&editable.id).subject.contains("Operator(\"082001\")"));
    assert_eq!(by_id(&filed.id).responsible_officer, "Operator(\"082001\")");
    f.server.stop().await.expect("clean stop");
}

/// An operator's read of a citizen's permit is recorded with its purpose and listed to that
/// citizen; the citizen's own reads are not; another comune cannot list Altavilla's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_reads_of_permits_are_recorded_for_the_applicant() {
    let mut f = start(testing::sqlite::<Migrator>().await).await;
    let me = citizen(40).fiscal_code;
    let permit = create(&mut f, new_draft(pb::BuildingPermitKind::Cila, 40)).await;
    let lookup = |who: Who| {
        let request = who.request_with_purpose(
            pb::LookupBuildingPermitsRequest {
                keys: vec![permit.id.clone()],
            },
            "pdnd-sue-7",
        );
        let mut client = f.client.clone();
        async move { client.lookup_building_permits(request).await }
    };

    // The applicant reads their own permit: nothing to record.
    let own = lookup(Who::citizen(&me)).await.unwrap().into_inner();
    assert_eq!(own.items.len(), 1);
    let mine = personal_data_reads(&f.channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert!(mine.is_empty(), "own reads are not recorded: {mine:?}");

    // An Altavilla operator reads it, declaring the purpose; Bagheria's sees nothing, and nothing
    // is recorded of what it did not read.
    let read = lookup(Who::operator(ALTAVILLA)).await.unwrap().into_inner();
    assert_eq!(read.items.len(), 1);
    let none = lookup(Who::operator(BAGHERIA)).await.unwrap().into_inner();
    assert!(none.items.is_empty());

    let mine = personal_data_reads(&f.channel, &Who::citizen(&me), "", "")
        .await
        .unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        read_row(&mine[0]),
        [
            "operator",
            "operator@082001",
            ALTAVILLA,
            me.as_str(),
            ALTAVILLA,
            "building.BuildingPermit",
            "pdnd-sue-7",
            "building",
        ]
    );
    assert!(mine[0].read_at.is_some());

    let altavilla = personal_data_reads(&f.channel, &Who::operator(ALTAVILLA), &me, "")
        .await
        .unwrap();
    assert_eq!(altavilla.len(), 1);
    let denied = personal_data_reads(&f.channel, &Who::operator(BAGHERIA), "", ALTAVILLA).await;
    testing::assert_refused(
        denied,
        Code::PermissionDenied,
        "Bagheria listing Altavilla's log",
    );
    let bagheria = personal_data_reads(&f.channel, &Who::operator(BAGHERIA), &me, "")
        .await
        .unwrap();
    assert!(bagheria.is_empty(), "{bagheria:?}");
    f.server.stop().await.expect("clean stop");
}
