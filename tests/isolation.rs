//! The isolation matrix the identity issue asks for: seven services × six callers × {read, write},
//! every cell asserted, over GraphQL (through the gateway) and over direct gRPC, on the real
//! all-in-one platform with real token verification (tokens signed by its dev issuer).
//!
//! The callers: citizen C (born in Palermo, a fresh codice fiscale so every record of theirs is one
//! this test made), another citizen D, an operator of Palermo (082053, the comune that holds C's
//! records), an operator and a system of Bagheria (082006), and an anonymous caller.
//!
//! Per service one write and one read:
//!
//! | service     | write (an act for C in Palermo)                       | read (C's records)                     |
//! |-------------|-------------------------------------------------------|----------------------------------------|
//! | social      | `createBenefitApplicationDraft` on a Palermo scheme   | `Citizen.benefitApplications`          |
//! | building    | `createBuildingPermitDraft` (PdC in Palermo)          | `Citizen.buildingPermits`              |
//! | culture     | `bookEvent` on a Palermo event                        | `Citizen.eventBookings`                |
//! | employment  | `applyToJobOffer` on a Palermo offer                  | `Citizen.jobApplications`              |
//! | taxes       | `submitTariDeclaration` (START of an utenza)          | `Citizen.tariRegistrations`            |
//! | environment | `createEnvironmentReport` signed by C                 | `Citizen.environmentReports`           |
//! | publicworks | `createPublicWork` in Palermo (a comune act)          | `publicWorks(istatCode: "082053")` (public) |
//!
//! Over gRPC the same acts are the `Create…`/`Submit…`/`Publish…` RPCs behind those mutations and the
//! reads are the `ListCitizen…` RPCs with `keys: [C]` (`ListProjects` for public works).
//!
//! Every write gets a target of its own (a fresh scheme, event or offer published by Palermo's
//! system beforehand, a fresh address or spot), so every allowed write can succeed and a refusal is
//! never a domain conflict in disguise. The writes all run first, so C owns records in every service
//! when the reads run. Failures are collected and reported together, cell by cell.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use patto::{Options, Platform, TokenArgs};
use patto_proto::building::v1 as building;
use patto_proto::common::v1 as common;
use patto_proto::culture::v1 as culture;
use patto_proto::employment::v1 as employment;
use patto_proto::environment::v1 as environment;
use patto_proto::publicworks::v1 as publicworks;
use patto_proto::social::v1 as social;
use patto_proto::taxes::v1 as taxes;
use serde_json::{Value, json};
use tonic::transport::Channel;

const PALERMO: &str = "082053";
const BAGHERIA: &str = "082006";
/// A demo venue of Palermo.
const TEATRO_MASSIMO: &str = "ven-082053-01";

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Service {
    Social,
    Building,
    Culture,
    Employment,
    Taxes,
    Environment,
    PublicWorks,
}

impl Service {
    /// The name the platform (and the audit log) knows the service by.
    fn name(self) -> &'static str {
        match self {
            Service::Social => "social",
            Service::Building => "building",
            Service::Culture => "culture",
            Service::Employment => "employment",
            Service::Taxes => "taxes",
            Service::Environment => "environment",
            Service::PublicWorks => "publicworks",
        }
    }

    /// What the service's audit log calls the record the read returns (none: public data).
    fn audited_as(self) -> Option<&'static str> {
        match self {
            Service::Social => Some("social.BenefitApplication"),
            Service::Building => Some("building.BuildingPermit"),
            Service::Culture => Some("culture.Booking"),
            Service::Employment => Some("employment.JobApplication"),
            Service::Taxes => Some("taxes.TariRegistration"),
            Service::Environment => Some("environment.EnvironmentReport"),
            Service::PublicWorks => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// C, whose records these are.
    TheCitizen,
    /// D.
    AnotherCitizen,
    /// An operator of Palermo, the comune that holds C's records.
    OperatorOfTheComune,
    /// An operator of Bagheria.
    OperatorOfAnotherComune,
    /// A system (protocollo, ERP) of Bagheria.
    SystemOfAnotherComune,
    /// No credentials.
    Anonymous,
}

const CALLERS: [Who; 6] = [
    Who::TheCitizen,
    Who::AnotherCitizen,
    Who::OperatorOfTheComune,
    Who::OperatorOfAnotherComune,
    Who::SystemOfAnotherComune,
    Who::Anonymous,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Read answered, with every record written for C in this service (public works: the public
    /// list, not empty).
    Sees,
    /// Read answered without error, with none of C's Palermo records.
    Hidden,
    /// Write done: the record was created.
    Done,
    /// Refused: signed in, not allowed (gRPC PERMISSION_DENIED, GraphQL FORBIDDEN).
    Forbidden,
    /// Refused: sign in first (UNAUTHENTICATED on both transports).
    Unauthenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    GraphQl,
    Grpc,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    service: Service,
    who: Who,
    op: Op,
    expect: Expect,
}

/// The matrix, one row per service, one (read, write) pair per caller, in the order of [`CALLERS`]:
/// the citizen, another citizen, Palermo's operator, Bagheria's operator, Bagheria's system,
/// anonymous. The same table runs over GraphQL and over gRPC.
fn table() -> Vec<Cell> {
    use Expect::{Done, Forbidden as No, Hidden, Sees, Unauthenticated as SignIn};
    let personal = [
        (Sees, Done),
        (No, No),
        (Sees, Done),
        (Hidden, No),
        (Hidden, No),
        (SignIn, SignIn),
    ];
    let rows: [(Service, [(Expect, Expect); 6]); 7] = [
        (Service::Social, personal),
        (Service::Building, personal),
        (Service::Culture, personal),
        (Service::Employment, personal),
        (Service::Taxes, personal),
        (Service::Environment, personal),
        // No personal data: everyone reads the public list; only Palermo's own people publish a
        // Palermo work (Bagheria's system included among those refused).
        (
            Service::PublicWorks,
            [
                (Sees, No),
                (Sees, No),
                (Sees, Done),
                (Sees, No),
                (Sees, No),
                (Sees, SignIn),
            ],
        ),
    ];
    rows.into_iter()
        .flat_map(|(service, cells)| {
            CALLERS
                .into_iter()
                .zip(cells)
                .flat_map(move |(who, (read, write))| {
                    [
                        Cell {
                            service,
                            who,
                            op: Op::Read,
                            expect: read,
                        },
                        Cell {
                            service,
                            who,
                            op: Op::Write,
                            expect: write,
                        },
                    ]
                })
        })
        .collect()
}

/// Whether the gateway refuses this cell itself, before any backend call: every mutation of an
/// anonymous caller, and `citizen(fiscalCode: C)` for anyone but C and the comuni's people.
fn decided_at_the_gateway(cell: &Cell) -> bool {
    match cell.op {
        Op::Write => cell.who == Who::Anonymous,
        Op::Read => {
            cell.service != Service::PublicWorks
                && matches!(cell.who, Who::AnotherCitizen | Who::Anonymous)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a call answered
// ---------------------------------------------------------------------------------------------

/// A call's answer, the same for both transports: the ids it returned, or the refusal's code
/// (gRPC codes named as the gateway names them: PERMISSION_DENIED is FORBIDDEN).
#[derive(Debug, Clone)]
enum Seen {
    Answered(Vec<String>),
    Refused { code: String, message: String },
}

fn from_grpc<T>(
    answer: Result<tonic::Response<T>, tonic::Status>,
    ids: impl FnOnce(T) -> Vec<String>,
) -> Seen {
    match answer {
        Ok(a) => Seen::Answered(ids(a.into_inner())),
        Err(status) => Seen::Refused {
            code: match status.code() {
                tonic::Code::PermissionDenied => "FORBIDDEN".to_owned(),
                tonic::Code::Unauthenticated => "UNAUTHENTICATED".to_owned(),
                other => format!("gRPC {other:?}"),
            },
            message: status.message().to_owned(),
        },
    }
}

/// The ids at `path` in a GraphQL answer's data (a list of objects, one object, or null), or the
/// first error.
fn from_graphql(out: &Value, path: &[&str]) -> Seen {
    if let Some(error) = out["errors"].as_array().and_then(|e| e.first()) {
        return Seen::Refused {
            code: error["extensions"]["code"]
                .as_str()
                .unwrap_or("(no code)")
                .to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
        };
    }
    let mut at = &out["data"];
    for step in path {
        at = &at[*step];
    }
    let id = |v: &Value| v["id"].as_str().map(str::to_owned);
    Seen::Answered(match at {
        Value::Array(items) => items.iter().filter_map(id).collect(),
        Value::Object(_) => id(at).into_iter().collect(),
        _ => Vec::new(),
    })
}

fn grpc_ids<T>(items: impl IntoIterator<Item = T>, id: impl Fn(T) -> String) -> Vec<String> {
    items.into_iter().map(id).collect()
}

/// Checks one cell's answer; `created` are the ids written in this service so far (C's records;
/// for public works, the works published in Palermo).
fn check(cell: &Cell, seen: &Seen, created: &BTreeSet<String>) -> Result<(), String> {
    match (cell.expect, seen) {
        (Expect::Done, Seen::Answered(ids)) if ids.len() == 1 => Ok(()),
        (Expect::Sees, Seen::Answered(ids)) if cell.service == Service::PublicWorks => {
            // Public: everyone sees Palermo's list, with the works its operator just published
            // (most recently updated first).
            let missing: Vec<&String> = created.iter().filter(|id| !ids.contains(id)).collect();
            if created.is_empty() {
                Err("Palermo's operator published no work, so there is nothing to see".into())
            } else if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "the works {missing:?} just published are missing from {ids:?}"
                ))
            }
        }
        (Expect::Sees, Seen::Answered(ids)) => {
            let missing: Vec<&String> = created.iter().filter(|id| !ids.contains(id)).collect();
            if created.is_empty() {
                Err("no record was written for C, so there is nothing to see".into())
            } else if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("C's records {missing:?} missing from {ids:?}"))
            }
        }
        (Expect::Hidden, Seen::Answered(ids)) => {
            let shown: Vec<&String> = ids.iter().filter(|id| created.contains(*id)).collect();
            if created.is_empty() {
                Err("no record was written for C, so hiding them proves nothing".into())
            } else if shown.is_empty() {
                Ok(())
            } else {
                Err(format!("shows C's Palermo records {shown:?}"))
            }
        }
        (Expect::Forbidden, Seen::Refused { code, .. }) if code == "FORBIDDEN" => Ok(()),
        (Expect::Unauthenticated, Seen::Refused { code, .. }) if code == "UNAUTHENTICATED" => {
            Ok(())
        }
        (_, Seen::Answered(ids)) => Err(format!("answered with {ids:?}")),
        (_, Seen::Refused { code, message }) => Err(format!("refused with {code}: {message}")),
    }
}

// ---------------------------------------------------------------------------------------------
// The platform and its callers
// ---------------------------------------------------------------------------------------------

/// A valid codice fiscale from its first 15 characters.
fn fiscal_code(first15: &str) -> String {
    patto_service_kit::ids::fiscal_code_with_check(first15)
}

/// `YYYY-MM-DD`, `offset` days from today (UTC; the offsets used keep clear of the day boundary).
fn day(offset: i64) -> String {
    let z = unix_now().div_euclid(86_400) + offset + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn this_year() -> i32 {
    day(0)[..4].parse().unwrap()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

struct World {
    gateway: SocketAddr,
    channels: BTreeMap<&'static str, Channel>,
    /// `Bearer …` of each caller (none for anonymous), and of Palermo's system, which prepares
    /// the targets of the writes.
    tokens: Vec<(Who, Option<String>)>,
    setup: String,
    c: String,
    d: String,
    designer: String,
    /// Ids of the records written for C per service (public works: the works published in
    /// Palermo).
    created: BTreeMap<Service, BTreeSet<String>>,
    /// Tells one write's inputs from another's.
    n: u32,
    failures: Vec<String>,
}

fn token(data_dir: &std::path::Path, args: TokenArgs) -> String {
    format!(
        "Bearer {}",
        patto::dev_token(data_dir, &args).expect("a dev token")
    )
}

fn citizen_args(cf: &str) -> TokenArgs {
    TokenArgs {
        citizen: Some(cf.to_owned()),
        operator: false,
        system: false,
        comune: None,
        subject: None,
        ttl_minutes: 60,
    }
}

fn comune_args(system: bool, comune: &str, subject: &str) -> TokenArgs {
    TokenArgs {
        citizen: None,
        operator: !system,
        system,
        comune: Some(comune.to_owned()),
        subject: Some(subject.to_owned()),
        ttl_minutes: 60,
    }
}

/// `message` with `token` in `authorization`.
fn request<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(t) = token {
        request
            .metadata_mut()
            .insert("authorization", t.parse().expect("a header value"));
    }
    request
}

/// A `google.protobuf.Timestamp` `secs` after the epoch (named through a field: the root crate
/// does not depend on prost-types).
macro_rules! timestamp {
    ($secs:expr) => {{
        let mut t = culture::Event::default().start_time.unwrap_or_default();
        t.seconds = $secs;
        Some(t)
    }};
}

impl World {
    fn token(&self, who: Who) -> Option<String> {
        self.tokens
            .iter()
            .find(|(w, _)| *w == who)
            .and_then(|(_, t)| t.clone())
    }

    fn channel(&self, service: Service) -> Channel {
        self.channels[service.name()].clone()
    }

    fn next(&mut self) -> u32 {
        self.n += 1;
        self.n
    }

    async fn graphql(&self, who: Option<&str>, query: &str, variables: Value) -> (Value, u64) {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let mut headers = vec![
            ("accept", "application/graphql-response+json"),
            ("x-patto-debug", "calls"),
        ];
        if let Some(t) = who {
            headers.push(("authorization", t));
        }
        let (status, answer) =
            patto_service_kit::testing::post_json(self.gateway, "/graphql", &headers, &body).await;
        let out: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| json!({ "errors": [{ "message": format!("HTTP {status}, not JSON ({e}): {answer}") }] }));
        let calls = out["extensions"]["backendCalls"]["total"]
            .as_u64()
            .unwrap_or(u64::MAX);
        (out, calls)
    }

    // --- targets of the writes, published by Palermo's system -------------------------------

    async fn new_scheme(&self, n: u32) -> String {
        let mut client =
            social::social_service_client::SocialServiceClient::new(self.channel(Service::Social));
        let scheme = social::BenefitScheme {
            istat_code: PALERMO.into(),
            code: format!("ISOLAMENTO-{n}"),
            name: format!("Contributo di prova dell'isolamento {n}"),
            kind: social::BenefitKind::EconomicSupport as i32,
            status: social::BenefitSchemeStatus::Open as i32,
            application_period: Some(common::Period {
                start_date: day(-10),
                end_date: day(30),
            }),
            isee_threshold: Some(common::Money { cents: 1_014_000 }),
            household_rules: Some(social::BenefitHouseholdRules {
                requires_residence: true,
                ..Default::default()
            }),
            amount: Some(common::Money { cents: 25_000 }),
            frequency: social::BenefitFrequency::Monthly as i32,
            payment_count: 2,
            budget: Some(common::Money { cents: 100_000 }),
            ranking_criterion: social::RankingCriterion::IseeAscending as i32,
            required_documents: vec!["documento di identità".into()],
            fully_online: true,
            ..Default::default()
        };
        client
            .create_benefit_scheme(request(
                Some(&self.setup),
                social::CreateBenefitSchemeRequest {
                    scheme: Some(scheme),
                },
            ))
            .await
            .expect("Palermo's system creates a scheme")
            .into_inner()
            .scheme
            .expect("scheme")
            .id
    }

    async fn new_event(&self, n: u32) -> String {
        let mut client = culture::culture_service_client::CultureServiceClient::new(
            self.channel(Service::Culture),
        );
        let start = unix_now() + 10 * 86_400 + i64::from(n) * 3_600;
        let event = culture::Event {
            istat_code: PALERMO.into(),
            name: format!("Tosca, replica {n}"),
            category: culture::EventCategory::Theatre as i32,
            start_time: timestamp!(start),
            end_time: timestamp!(start + 3 * 3_600),
            venue_id: TEATRO_MASSIMO.into(),
            capacity: 10,
            price: Some(common::Money { cents: 2_500 }),
            ..Default::default()
        };
        client
            .create_event(request(
                Some(&self.setup),
                culture::CreateEventRequest { event: Some(event) },
            ))
            .await
            .expect("Palermo's system publishes an event")
            .into_inner()
            .event
            .expect("event")
            .id
    }

    async fn new_offer(&self, n: u32) -> String {
        let mut client = employment::employment_service_client::EmploymentServiceClient::new(
            self.channel(Service::Employment),
        );
        let offer = employment::JobOffer {
            istat_code: PALERMO.into(),
            title: format!("Cuoco per osteria, posto {n}"),
            description: "Cucina tradizionale siciliana, turni serali.".into(),
            profession_code: "5.2.2.1.0".into(),
            ateco_code: "56.11.10".into(),
            employer: Some(employment::Employer {
                name: "Osteria dei Vespri s.r.l.".into(),
                tax_code: "00743110157".into(),
                anonymous: false,
            }),
            contract_type: employment::JobContractType::FixedTerm as i32,
            weekly_hours: 40,
            duration_months: 6,
            positions: 1,
            application_deadline: day(20),
            requirements: "Attestato HACCP.".into(),
            annual_gross_pay_min: Some(common::Money { cents: 2_000_000 }),
            annual_gross_pay_max: Some(common::Money { cents: 2_300_000 }),
            ..Default::default()
        };
        client
            .publish_job_offer(request(
                Some(&self.setup),
                employment::PublishJobOfferRequest {
                    job_offer: Some(offer),
                },
            ))
            .await
            .expect("Palermo's system publishes an offer")
            .into_inner()
            .job_offer
            .expect("offer")
            .id
    }

    /// A spot in Palermo of its own for write `n` (duplicate reports link within 50 m).
    fn spot(n: u32) -> (f64, f64) {
        (38.100 + f64::from(n) * 0.002, 13.350)
    }

    // --- writes -------------------------------------------------------------------------------

    async fn write(&mut self, transport: Transport, cell: &Cell) -> (Seen, u64) {
        let n = self.next();
        let target = match cell.service {
            Service::Social => self.new_scheme(n).await,
            Service::Culture => self.new_event(n).await,
            Service::Employment => self.new_offer(n).await,
            _ => String::new(),
        };
        let token = self.token(cell.who);
        match transport {
            Transport::Grpc => (
                self.grpc_write(cell.service, token.as_deref(), n, &target)
                    .await,
                0,
            ),
            Transport::GraphQl => {
                self.graphql_write(cell.service, token.as_deref(), n, &target)
                    .await
            }
        }
    }

    async fn grpc_write(
        &self,
        service: Service,
        token: Option<&str>,
        n: u32,
        target: &str,
    ) -> Seen {
        let c = self.c.clone();
        let channel = self.channel(service);
        match service {
            Service::Social => {
                let draft = social::BenefitApplicationDraft {
                    scheme_id: target.into(),
                    applicant_fiscal_code: c,
                    iban: "IT60X0542811101000000123456".into(),
                    contact: "famiglia@example.it".into(),
                    statement: format!("Spese per l'affitto e le utenze ({n})"),
                    attachments: vec![social::BenefitAttachment {
                        name: "carta-identita.pdf".into(),
                        sha256: "0f".repeat(32),
                        size_bytes: 240_000,
                        media_type: "application/pdf".into(),
                        document_type: "documento di identità".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let answer = social::social_service_client::SocialServiceClient::new(channel)
                    .create_benefit_application_draft(request(
                        token,
                        social::CreateBenefitApplicationDraftRequest { draft: Some(draft) },
                    ))
                    .await;
                from_grpc(answer, |a| grpc_ids(a.application, |x| x.id))
            }
            Service::Building => {
                let draft = building::BuildingPermitDraft {
                    istat_code: PALERMO.into(),
                    kind: building::BuildingPermitKind::Pdc as i32,
                    applicant_fiscal_code: c,
                    designer_fiscal_code: self.designer.clone(),
                    subject: format!("Ampliamento ({n})"),
                    intervention_category: building::InterventionCategory::NuovaCostruzione as i32,
                    address: Some(common::Address {
                        street: "Via Maqueda".into(),
                        house_number: n.to_string(),
                        ..Default::default()
                    }),
                    parcels: vec![building::BuildingPermitParcel {
                        foglio: "7".into(),
                        particella: format!("{}", 200 + n),
                        ..Default::default()
                    }],
                    attachments: vec![building::BuildingPermitAttachment {
                        name: "relazione.pdf".into(),
                        sha256: "ab".repeat(32),
                        size_bytes: 123_456,
                        media_type: "application/pdf".into(),
                        document_type: "relazione tecnica asseverata".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let answer = building::building_service_client::BuildingServiceClient::new(channel)
                    .create_building_permit_draft(request(
                        token,
                        building::CreateBuildingPermitDraftRequest { draft: Some(draft) },
                    ))
                    .await;
                from_grpc(answer, |a| grpc_ids(a.permit, |x| x.id))
            }
            Service::Culture => {
                let answer = culture::culture_service_client::CultureServiceClient::new(channel)
                    .create_booking(request(
                        token,
                        culture::CreateBookingRequest {
                            event_id: target.into(),
                            fiscal_code: c,
                            seats: 1,
                        },
                    ))
                    .await;
                from_grpc(answer, |a| grpc_ids(a.booking, |x| x.id))
            }
            Service::Employment => {
                let answer =
                    employment::employment_service_client::EmploymentServiceClient::new(channel)
                        .create_job_application(request(
                            token,
                            employment::CreateJobApplicationRequest {
                                job_offer_id: target.into(),
                                fiscal_code: c,
                                message: "Ho lavorato tre anni in trattoria.".into(),
                                contact_email: "candidato@example.it".into(),
                                contact_phone: "+39 333 1234567".into(),
                                consent_to_share: true,
                                ..Default::default()
                            },
                        ))
                        .await;
                from_grpc(answer, |a| grpc_ids(a.job_application, |x| x.id))
            }
            Service::Taxes => {
                let answer = taxes::taxes_service_client::TaxesServiceClient::new(channel)
                    .submit_tari_declaration(request(
                        token,
                        taxes::SubmitTariDeclarationRequest {
                            kind: taxes::TariDeclarationKind::Start as i32,
                            registration: Some(taxes::TariRegistration {
                                istat_code: PALERMO.into(),
                                holder_fiscal_code: c,
                                kind: taxes::TariUseKind::Domestic as i32,
                                address: Some(common::Address {
                                    street: format!("Via dell'Isolamento {n}"),
                                    house_number: "1".into(),
                                    ..Default::default()
                                }),
                                surface_sqm: 40,
                                household_size: 1,
                                ..Default::default()
                            }),
                            event_date: day(-5),
                            ..Default::default()
                        },
                    ))
                    .await;
                from_grpc(answer, |a| grpc_ids(a.registration, |x| x.id))
            }
            Service::Environment => {
                let (latitude, longitude) = Self::spot(n);
                let answer =
                    environment::environment_service_client::EnvironmentServiceClient::new(channel)
                        .create_environment_report(request(
                            token,
                            environment::CreateEnvironmentReportRequest {
                                istat_code: PALERMO.into(),
                                category: environment::EnvironmentReportCategory::AbandonedWaste
                                    as i32,
                                description: "Rifiuti abbandonati sul marciapiede da giorni."
                                    .into(),
                                geo: Some(common::GeoPoint {
                                    latitude,
                                    longitude,
                                }),
                                fiscal_code: c,
                                ..Default::default()
                            },
                        ))
                        .await;
                from_grpc(answer, |a| grpc_ids(a.environment_report, |x| x.id))
            }
            Service::PublicWorks => {
                let answer =
                    publicworks::public_works_service_client::PublicWorksServiceClient::new(
                        channel,
                    )
                    .create_project(request(
                        token,
                        publicworks::CreateProjectRequest {
                            project: Some(publicworks::Project {
                                istat_code: PALERMO.into(),
                                title: format!("Scuola dell'isolamento {n}"),
                                description: "Opera di prova".into(),
                                category: publicworks::ProjectCategory::Schools as i32,
                                programme: Some(publicworks::ProjectProgramme {
                                    first_year: this_year(),
                                    in_annual_list: true,
                                    ..Default::default()
                                }),
                                budget: Some(common::Money { cents: 100_000_000 }),
                                funding: vec![publicworks::ProjectFunding {
                                    source: publicworks::ProjectFundingSource::PonMetro as i32,
                                    amount: Some(common::Money { cents: 80_000_000 }),
                                    reference: "PA2.2.1".into(),
                                }],
                                ..Default::default()
                            }),
                        },
                    ))
                    .await;
                from_grpc(answer, |a| grpc_ids(a.project, |x| x.id))
            }
        }
    }

    async fn graphql_write(
        &self,
        service: Service,
        token: Option<&str>,
        n: u32,
        target: &str,
    ) -> (Seen, u64) {
        let c = self.c.as_str();
        let (query, variables, path): (&str, Value, [&str; 2]) = match service {
            Service::Social => (
                "mutation($draft: BenefitApplicationDraftInput) {
                   createBenefitApplicationDraft(draft: $draft) { application { id } } }",
                json!({ "draft": {
                    "schemeId": target,
                    "applicantFiscalCode": c,
                    "iban": "IT60X0542811101000000123456",
                    "contact": "famiglia@example.it",
                    "statement": format!("Spese per l'affitto e le utenze ({n})"),
                    "attachments": [{
                        "name": "carta-identita.pdf",
                        "sha256": "0f".repeat(32),
                        "sizeBytes": "240000",
                        "mediaType": "application/pdf",
                        "documentType": "documento di identità",
                    }],
                } }),
                ["createBenefitApplicationDraft", "application"],
            ),
            Service::Building => (
                "mutation($draft: BuildingPermitDraftInput) {
                   createBuildingPermitDraft(draft: $draft) { permit { id } } }",
                json!({ "draft": {
                    "istatCode": PALERMO,
                    "kind": "PDC",
                    "applicantFiscalCode": c,
                    "designerFiscalCode": self.designer,
                    "subject": format!("Ampliamento ({n})"),
                    "interventionCategory": "NUOVA_COSTRUZIONE",
                    "address": { "street": "Via Maqueda", "houseNumber": n.to_string() },
                    "parcels": [{ "foglio": "7", "particella": format!("{}", 200 + n) }],
                    "attachments": [{
                        "name": "relazione.pdf",
                        "sha256": "ab".repeat(32),
                        "sizeBytes": "123456",
                        "mediaType": "application/pdf",
                        "documentType": "relazione tecnica asseverata",
                    }],
                } }),
                ["createBuildingPermitDraft", "permit"],
            ),
            Service::Culture => (
                "mutation($event: String, $cf: String) {
                   bookEvent(eventId: $event, fiscalCode: $cf, seats: 1) { booking { id } } }",
                json!({ "event": target, "cf": c }),
                ["bookEvent", "booking"],
            ),
            Service::Employment => (
                "mutation($offer: String, $cf: String) {
                   applyToJobOffer(jobOfferId: $offer, fiscalCode: $cf,
                     message: \"Ho lavorato tre anni in trattoria.\",
                     contactEmail: \"candidato@example.it\", contactPhone: \"+39 333 1234567\",
                     consentToShare: true) { jobApplication { id } } }",
                json!({ "offer": target, "cf": c }),
                ["applyToJobOffer", "jobApplication"],
            ),
            Service::Taxes => (
                "mutation($registration: TariRegistrationInput, $date: String) {
                   submitTariDeclaration(kind: START, registration: $registration, eventDate: $date) {
                     registration { id } } }",
                json!({
                    "registration": {
                        "istatCode": PALERMO,
                        "holderFiscalCode": c,
                        "kind": "DOMESTIC",
                        "address": { "street": format!("Via dell'Isolamento {n}"), "houseNumber": "1" },
                        "surfaceSqm": 40,
                        "householdSize": 1,
                    },
                    "date": day(-5),
                }),
                ["submitTariDeclaration", "registration"],
            ),
            Service::Environment => {
                let (latitude, longitude) = Self::spot(n);
                (
                    "mutation($geo: GeoPointInput, $cf: String) {
                       createEnvironmentReport(istatCode: \"082053\", category: ABANDONED_WASTE,
                         description: \"Rifiuti abbandonati sul marciapiede da giorni.\",
                         geo: $geo, fiscalCode: $cf) { environmentReport { id } } }",
                    json!({ "geo": { "latitude": latitude, "longitude": longitude }, "cf": c }),
                    ["createEnvironmentReport", "environmentReport"],
                )
            }
            Service::PublicWorks => (
                "mutation($project: ProjectInput) {
                   createPublicWork(project: $project) { project { id } } }",
                json!({ "project": {
                    "istatCode": PALERMO,
                    "title": format!("Scuola dell'isolamento {n}"),
                    "description": "Opera di prova",
                    "category": "SCHOOLS",
                    "programme": { "firstYear": this_year(), "inAnnualList": true },
                    "budget": { "cents": "100000000" },
                    "funding": [{
                        "source": "PON_METRO",
                        "amount": { "cents": "80000000" },
                        "reference": "PA2.2.1",
                    }],
                } }),
                ["createPublicWork", "project"],
            ),
        };
        let (out, calls) = self.graphql(token, query, variables).await;
        (from_graphql(&out, &path), calls)
    }

    // --- reads --------------------------------------------------------------------------------

    async fn read(&self, transport: Transport, cell: &Cell) -> (Seen, u64) {
        let token = self.token(cell.who);
        match transport {
            Transport::Grpc => (self.grpc_read(cell.service, token.as_deref()).await, 0),
            Transport::GraphQl => self.graphql_read(cell.service, token.as_deref()).await,
        }
    }

    async fn grpc_read(&self, service: Service, token: Option<&str>) -> Seen {
        let keys = vec![self.c.clone()];
        let channel = self.channel(service);
        match service {
            Service::Social => {
                let answer = social::social_service_client::SocialServiceClient::new(channel)
                    .list_citizen_benefit_applications(request(
                        token,
                        social::ListCitizenBenefitApplicationsRequest {
                            keys,
                            ..Default::default()
                        },
                    ))
                    .await;
                from_grpc(answer, |a| {
                    grpc_ids(a.items.into_iter().flat_map(|i| i.applications), |x| x.id)
                })
            }
            Service::Building => {
                let answer = building::building_service_client::BuildingServiceClient::new(channel)
                    .list_citizen_building_permits(request(
                        token,
                        building::ListCitizenBuildingPermitsRequest {
                            keys,
                            ..Default::default()
                        },
                    ))
                    .await;
                from_grpc(answer, |a| {
                    grpc_ids(a.items.into_iter().flat_map(|i| i.permits), |x| x.id)
                })
            }
            Service::Culture => {
                let answer = culture::culture_service_client::CultureServiceClient::new(channel)
                    .list_citizen_bookings(request(
                        token,
                        culture::ListCitizenBookingsRequest { keys },
                    ))
                    .await;
                from_grpc(answer, |a| {
                    grpc_ids(a.items.into_iter().flat_map(|i| i.bookings), |x| x.id)
                })
            }
            Service::Employment => {
                let answer =
                    employment::employment_service_client::EmploymentServiceClient::new(channel)
                        .list_citizen_job_applications(request(
                            token,
                            employment::ListCitizenJobApplicationsRequest {
                                keys,
                                ..Default::default()
                            },
                        ))
                        .await;
                from_grpc(answer, |a| {
                    grpc_ids(a.items.into_iter().flat_map(|i| i.job_applications), |x| {
                        x.id
                    })
                })
            }
            Service::Taxes => {
                let answer = taxes::taxes_service_client::TaxesServiceClient::new(channel)
                    .list_citizen_tari_registrations(request(
                        token,
                        taxes::ListCitizenTariRegistrationsRequest {
                            keys,
                            ..Default::default()
                        },
                    ))
                    .await;
                from_grpc(answer, |a| {
                    grpc_ids(a.items.into_iter().flat_map(|i| i.registrations), |x| x.id)
                })
            }
            Service::Environment => {
                let answer =
                    environment::environment_service_client::EnvironmentServiceClient::new(channel)
                        .list_citizen_environment_reports(request(
                            token,
                            environment::ListCitizenEnvironmentReportsRequest {
                                keys,
                                ..Default::default()
                            },
                        ))
                        .await;
                from_grpc(answer, |a| {
                    grpc_ids(
                        a.items.into_iter().flat_map(|i| i.environment_reports),
                        |x| x.id,
                    )
                })
            }
            Service::PublicWorks => {
                let answer =
                    publicworks::public_works_service_client::PublicWorksServiceClient::new(
                        channel,
                    )
                    .list_projects(request(
                        token,
                        publicworks::ListProjectsRequest {
                            istat_code: PALERMO.into(),
                            page: Some(common::PageRequest {
                                first: 5,
                                after: String::new(),
                            }),
                            ..Default::default()
                        },
                    ))
                    .await;
                from_grpc(answer, |a| grpc_ids(a.projects, |x| x.id))
            }
        }
    }

    async fn graphql_read(&self, service: Service, token: Option<&str>) -> (Seen, u64) {
        if service == Service::PublicWorks {
            let (out, calls) = self
                .graphql(
                    token,
                    "{ publicWorks(istatCode: \"082053\", first: 5) { nodes { id } } }",
                    json!({}),
                )
                .await;
            return (from_graphql(&out, &["publicWorks", "nodes"]), calls);
        }
        let field = match service {
            Service::Social => "benefitApplications",
            Service::Building => "buildingPermits",
            Service::Culture => "eventBookings",
            Service::Employment => "jobApplications",
            Service::Taxes => "tariRegistrations",
            Service::Environment => "environmentReports",
            Service::PublicWorks => unreachable!("public works are read above"),
        };
        let (out, calls) = self
            .graphql(
                token,
                &format!(
                    "query($cf: String!) {{ citizen(fiscalCode: $cf) {{ {field} {{ id }} }} }}"
                ),
                json!({ "cf": self.c }),
            )
            .await;
        (from_graphql(&out, &["citizen", field]), calls)
    }

    // --- the matrix ---------------------------------------------------------------------------

    async fn run(&mut self, transport: Transport, op: Op) {
        for cell in table().into_iter().filter(|c| c.op == op) {
            let (seen, calls) = match op {
                Op::Write => self.write(transport, &cell).await,
                Op::Read => self.read(transport, &cell).await,
            };
            let created = self.created.entry(cell.service).or_default().clone();
            let mut verdict = check(&cell, &seen, &created);
            if verdict.is_ok()
                && transport == Transport::GraphQl
                && decided_at_the_gateway(&cell)
                && calls != 0
            {
                verdict = Err(format!(
                    "refused as expected, but after {calls} backend calls: the gateway should refuse it before any"
                ));
            }
            if let Err(why) = verdict {
                self.failures.push(format!(
                    "[{transport:?}] {} / {:?} / {:?}: expected {:?}, {why}",
                    cell.service.name(),
                    cell.who,
                    cell.op,
                    cell.expect
                ));
            }
            // Whatever a write created is C's (Palermo's, for public works), allowed or not: the
            // reads must find (or hide) it too.
            if op == Op::Write
                && let Seen::Answered(ids) = seen
            {
                self.created.entry(cell.service).or_default().extend(ids);
            }
        }
    }

    /// C's log of reads of their data, over GraphQL with C's token: Palermo's operator read C's
    /// records in every service that holds personal data, once per transport (each listing that
    /// returns a citizen's records records one read per citizen and comune, `Reads::save`);
    /// Bagheria, which saw nothing, left no trace, and nor did anyone else.
    async fn audit(&mut self) {
        let c = self.token(Who::TheCitizen);
        let (out, _) = self
            .graphql(
                c.as_deref(),
                "{ me { personalDataReads(first: 100) {
                     readerRole readerSubject readerIstatCode fiscalCode istatCode what service } } }",
                json!({}),
            )
            .await;
        let Some(reads) = out["data"]["me"]["personalDataReads"].as_array() else {
            self.failures.push(format!(
                "[audit] C cannot list the reads of their data: {out}"
            ));
            return;
        };
        for read in reads {
            let by_palermo = read["readerRole"] == "operator"
                && read["readerIstatCode"] == PALERMO
                && read["readerSubject"] == "isolation-operator-palermo";
            if !by_palermo || read["fiscalCode"] != self.c.as_str() || read["istatCode"] != PALERMO
            {
                self.failures.push(format!(
                    "[audit] a read of C's data by someone other than Palermo's operator (or not of Palermo's records): {read}"
                ));
            }
        }
        for service in [
            Service::Social,
            Service::Building,
            Service::Culture,
            Service::Employment,
            Service::Taxes,
            Service::Environment,
            Service::PublicWorks,
        ] {
            let recorded = reads
                .iter()
                .filter(|r| r["service"] == service.name())
                .filter(|r| service.audited_as().is_some_and(|what| r["what"] == what))
                .count();
            match service.audited_as() {
                Some(what) if recorded != 2 => self.failures.push(format!(
                    "[audit] {}: {recorded} reads of {what} by Palermo's operator recorded, expected exactly one per transport (2): {reads:?}",
                    service.name()
                )),
                None if reads.iter().any(|r| r["service"] == service.name()) => {
                    self.failures.push(format!(
                        "[audit] {} holds no personal data but recorded a read",
                        service.name()
                    ))
                }
                _ => {}
            }
        }
        if reads.iter().any(|r| r["readerIstatCode"] == BAGHERIA) {
            self.failures
                .push("[audit] Bagheria saw nothing, yet a read by it is recorded".into());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolation_matrix_over_graphql_and_grpc() {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("patto-isolation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let platform = Platform::start(&Options::ephemeral(dir.clone()))
        .await
        .expect("the platform starts");
    let mut channels = BTreeMap::new();
    for (name, addr) in &platform.listening.services {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        channels.insert(*name, channel);
    }

    // C, born in Palermo (G273), a codice fiscale no demo citizen has; D, another citizen.
    let c = fiscal_code("SLNMRT85M41G273");
    let d = fiscal_code("FRRPLA79C12G273");
    let designer = fiscal_code("BNCGNN70A01G273");
    let tokens = vec![
        (Who::TheCitizen, Some(token(&dir, citizen_args(&c)))),
        (Who::AnotherCitizen, Some(token(&dir, citizen_args(&d)))),
        (
            Who::OperatorOfTheComune,
            Some(token(
                &dir,
                comune_args(false, PALERMO, "isolation-operator-palermo"),
            )),
        ),
        (
            Who::OperatorOfAnotherComune,
            Some(token(
                &dir,
                comune_args(false, BAGHERIA, "isolation-operator-bagheria"),
            )),
        ),
        (
            Who::SystemOfAnotherComune,
            Some(token(
                &dir,
                comune_args(true, BAGHERIA, "isolation-system-bagheria"),
            )),
        ),
        (Who::Anonymous, None),
    ];
    let setup = token(&dir, comune_args(true, PALERMO, "isolation-setup"));
    let mut world = World {
        gateway: platform.listening.gateway,
        channels,
        tokens,
        setup,
        c,
        d,
        designer,
        created: BTreeMap::new(),
        n: 0,
        failures: Vec::new(),
    };
    assert_ne!(world.c, world.d);

    // Writes first, so that C owns records in every service; then the reads.
    world.run(Transport::GraphQl, Op::Write).await;
    world.run(Transport::Grpc, Op::Write).await;
    world.run(Transport::GraphQl, Op::Read).await;
    world.run(Transport::Grpc, Op::Read).await;
    world.audit().await;

    // Every allowed write of both transports left one record: C and Palermo's operator, over
    // each transport, in the six services holding personal data; Palermo's operator alone, over
    // each transport, in public works. Refused writes left none.
    for (service, ids) in &world.created {
        let expected = if *service == Service::PublicWorks {
            2
        } else {
            4
        };
        if ids.len() != expected {
            world.failures.push(format!(
                "{}: {} records written, expected {expected} (one per allowed write): {ids:?}",
                service.name(),
                ids.len()
            ));
        }
    }

    let cells = table().len() * 2;
    let failures = std::mem::take(&mut world.failures);
    platform.stop().await.expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "isolation matrix: {cells} cells (7 services × 6 callers × read/write × 2 transports) in {:.1?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {cells} cells (or audit checks) broke the rule:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
