//! Deterministic demo data for the 82 comuni: the shared demo citizens (kit `demo::citizen`) hold
//! their homes, garages, cellars, shops and seaside flats in the Catasto, companies hold the
//! productive units, and some citizens have building permits at every stage of the workflow.
//! Seeded once, into an empty database, so restarts keep what users did. Categorie, classi and
//! rendite follow the orders of magnitude of the Palermo area (rendita = tariffa × consistenza).
//!
//! Permits are moved through the same store paths as clients' calls, with back-dated clocks, so
//! their histories, protocol numbers and deadlines are real; one PdC per few comuni was filed long
//! enough ago to be granted by silenzio-assenso the first time it is read.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use patto_proto::building::v1 as pb;
use patto_proto::common::v1::{Address, Money};
use patto_service_kit::comuni::{self, Comune};
use patto_service_kit::demo::{self, DemoCitizen};
use patto_service_kit::error::ServiceError;
use patto_service_kit::ids;
use sea_orm::{DbErr, EntityTrait, PaginatorTrait, TransactionTrait};

use std::collections::HashMap;

use crate::domain::application::{UnitFacts, validate_draft};
use crate::domain::cadastre::validate_unit;
use crate::store::{Actor, Edit, Store, insert_units, unit, unit_models};

/// What the seeding wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Cadastral units.
    pub units: usize,
    /// Building permits.
    pub permits: usize,
}

/// How many demo citizens live in a comune: more in the larger ones.
pub fn citizens_per_comune(c: &Comune) -> usize {
    match c.population_2011 {
        p if p > 100_000 => 12,
        p if p > 20_000 => 6,
        p if p > 5_000 => 4,
        _ => 3,
    }
}

/// The demo citizens of a comune: `kit::demo::citizen(n)` for the `n` resident there.
pub fn citizens_of(index: usize, c: &Comune) -> Vec<(usize, DemoCitizen)> {
    let all = comuni::all().len();
    (0..citizens_per_comune(c))
        .map(|j| {
            let n = index + all * j;
            (n, demo::citizen(n))
        })
        .collect()
}

const STREETS: [&str; 10] = [
    "Via Roma",
    "Corso Vittorio Emanuele",
    "Via Giuseppe Garibaldi",
    "Via Vittorio Veneto",
    "Via Umberto I",
    "Via Nazionale",
    "Via Dante Alighieri",
    "Via Libertà",
    "Via Mazzini",
    "Via San Francesco",
];

/// Seaside comuni where citizens of other comuni hold holiday flats: Cefalù, Santa Flavia,
/// Termini Imerese, Terrasini.
const SEASIDE: [&str; 4] = ["082027", "082067", "082070", "082071"];

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Rendita in cents for `tariff_cents` per unit of consistenza, rounded to the euro cent as visure
/// show it.
fn rendita(tariff_cents: i64, consistenza: f64) -> i64 {
    (tariff_cents as f64 * consistenza).round() as i64
}

struct Holding<'a> {
    share: (i32, i32),
    start: NaiveDate,
    end: Option<NaiveDate>,
    holder: &'a DemoCitizen,
}

#[allow(clippy::too_many_arguments)]
fn unit(
    c: &Comune,
    foglio: usize,
    particella: usize,
    sub: usize,
    categoria: &str,
    classe: usize,
    consistenza: f64,
    rendita_cents: i64,
    surface: i32,
    street: &str,
    house: usize,
    floor: &str,
    owners: &[Holding<'_>],
) -> pb::CadastralUnit {
    pb::CadastralUnit {
        istat_code: c.istat_code.clone(),
        belfiore_code: c.cadastral_code.clone(),
        register: pb::CadastralRegister::Fabbricati as i32,
        foglio: foglio.to_string(),
        particella: particella.to_string(),
        subalterno: sub.to_string(),
        categoria: categoria.into(),
        classe: classe.to_string(),
        consistenza,
        rendita: Some(Money {
            cents: rendita_cents,
        }),
        surface_sqm: surface,
        surface_excluding_uncovered_sqm: surface - surface / 12,
        address: Some(Address {
            street: street.into(),
            house_number: house.to_string(),
            postal_code: c.postal_codes.first().cloned().unwrap_or_default(),
            istat_code: c.istat_code.clone(),
            locality: String::new(),
        }),
        floor: floor.into(),
        owners: owners
            .iter()
            .map(|h| pb::CadastralOwnership {
                fiscal_code: h.holder.fiscal_code.clone(),
                name: format!("{} {}", h.holder.family_name, h.holder.given_name).to_uppercase(),
                right: pb::OwnershipRight::Proprieta as i32,
                share_numerator: h.share.0,
                share_denominator: h.share.1,
                start_date: h.start.to_string(),
                end_date: h.end.map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect(),
        start_date: "1990-01-01".into(),
        ..Default::default()
    }
}

/// A valid partita IVA built from 10 digits (demo companies).
fn partita_iva(first10: u64) -> String {
    let base = format!("{:010}", first10 % 10_000_000_000);
    for check in 0..10u8 {
        let candidate = format!("{base}{check}");
        if ids::validate_partita_iva(&candidate).is_ok() {
            return candidate;
        }
    }
    format!("{base}0")
}

/// The units of one comune's demo citizens and companies.
fn units_of(index: usize, c: &Comune, year: i32) -> Vec<pb::CadastralUnit> {
    let big = c.population_2011 > 100_000;
    let town = c.population_2011 > 20_000;
    let citizens = citizens_of(index, c);
    let mut out = Vec::new();
    for (j, (n, who)) in citizens.iter().enumerate() {
        let foglio = 10 + j;
        let street = if big {
            STREETS[(n + j) % STREETS.len()]
        } else {
            STREETS[j % 6]
        };
        let house = 1 + (n * 7) % 180;
        // The home: A/2 in Palermo and the towns, A/3 or A/4 in the villages; a signorile A/1
        // flat in Palermo and a villa A/8 here and there.
        let (categoria, classe, vani, tariff) = match (big, town, j) {
            (true, _, 0) => ("A/1", 2, 9.0, 22_000),
            (_, _, 5) => ("A/8", 1, 11.5, 19_500),
            (_, _, 4) => ("A/7", 3, 7.0, 11_500),
            (true, _, _) => ("A/2", 2 + j % 4, 4.5 + (n % 4) as f64, 12_500),
            (false, true, _) => ("A/2", 1 + j % 3, 5.0 + (n % 3) as f64, 8_800),
            (false, false, _) => (
                if j % 2 == 0 { "A/3" } else { "A/4" },
                1 + j % 3,
                4.5 + (n % 3) as f64,
                5_900,
            ),
        };
        let bought = day(
            1995 + (n % 25) as i32,
            1 + (n % 12) as u32,
            1 + (n % 27) as u32,
        );
        // Every third household holds its home in two equal shares with the next citizen.
        let partner = citizens.get(j + 1).map(|(_, p)| p);
        let home_owners: Vec<Holding<'_>> = match partner {
            Some(p) if j % 3 == 1 => vec![
                Holding {
                    share: (1, 2),
                    start: bought,
                    end: None,
                    holder: who,
                },
                Holding {
                    share: (1, 2),
                    start: bought,
                    end: None,
                    holder: p,
                },
            ],
            _ => vec![Holding {
                share: (1, 1),
                start: bought,
                end: None,
                holder: who,
            }],
        };
        let surface = (vani * 19.0) as i32;
        out.push(unit(
            c,
            foglio,
            100,
            1,
            categoria,
            classe,
            vani,
            rendita(tariff, vani),
            surface,
            street,
            house,
            &format!("{}", 1 + j % 4),
            &home_owners,
        ));
        // A garage (C/6) for most, a cellar (C/2) for some: pertinenze of the home.
        if j % 4 != 3 {
            let m2 = 14.0 + (n % 10) as f64;
            out.push(unit(
                c,
                foglio,
                100,
                20,
                "C/6",
                2 + j % 3,
                m2,
                rendita(if big { 520 } else { 310 }, m2),
                m2 as i32 + 2,
                street,
                house,
                "S1",
                &home_owners,
            ));
        }
        if j % 3 == 0 {
            let m2 = 6.0 + (n % 8) as f64;
            out.push(unit(
                c,
                foglio,
                100,
                30,
                "C/2",
                1 + j % 3,
                m2,
                rendita(if big { 310 } else { 190 }, m2),
                m2 as i32 + 1,
                street,
                house,
                "S1",
                &home_owners,
            ));
        }
        // A shop (C/1) let out, for some.
        if j % 5 == 2 {
            let m2 = 35.0 + (n % 40) as f64;
            out.push(unit(
                c,
                foglio,
                101,
                2,
                "C/1",
                4 + j % 5,
                m2,
                rendita(if big { 2_650 } else { 1_480 }, m2),
                m2 as i32 + 4,
                STREETS[(j + 2) % STREETS.len()],
                2 + n % 60,
                "T",
                &[Holding {
                    share: (1, 1),
                    start: bought,
                    end: None,
                    holder: who,
                }],
            ));
        }
        // An office (A/10) bought in June of last year: IMU counts 7 months that year.
        if j == 3 {
            out.push(unit(
                c,
                foglio,
                102,
                4,
                "A/10",
                2,
                5.0,
                rendita(if big { 24_000 } else { 15_500 }, 5.0),
                110,
                STREETS[(j + 3) % STREETS.len()],
                15,
                "2",
                &[Holding {
                    share: (1, 1),
                    start: day(year - 1, 6, 1),
                    end: None,
                    holder: who,
                }],
            ));
        }
        // A flat sold this spring: the seller holds it for the first months of the year.
        if j == 2 {
            let sold = day(year, 4, 20);
            out.push(unit(
                c,
                foglio,
                103,
                7,
                "A/3",
                2,
                4.0,
                rendita(6_100, 4.0),
                72,
                street,
                house + 2,
                "3",
                &[Holding {
                    share: (1, 1),
                    start: day(2004, 3, 15),
                    end: Some(sold),
                    holder: who,
                }],
            ));
        }
    }
    // Seaside flats of citizens from elsewhere, held in halves by two of them.
    if SEASIDE.contains(&c.istat_code.as_str()) {
        let all = comuni::all();
        for k in 0..4 {
            let owner_a = demo::citizen((index * 5 + k * 17) % all.len());
            let owner_b = demo::citizen((index * 5 + k * 17) % all.len() + all.len());
            let since = day(2012 + k as i32, 7, 1);
            out.push(unit(
                c,
                300 + k,
                900,
                1 + k,
                "A/3",
                3,
                3.5,
                rendita(7_300, 3.5),
                64,
                "Lungomare",
                10 + k,
                "1",
                &[
                    Holding {
                        share: (1, 2),
                        start: since,
                        end: None,
                        holder: &owner_a,
                    },
                    Holding {
                        share: (1, 2),
                        start: since,
                        end: None,
                        holder: &owner_b,
                    },
                ],
            ));
        }
    }
    out
}

/// The productive units of a comune (group D), held by companies, and a land parcel.
fn business_units(index: usize, c: &Comune) -> Vec<pb::CadastralUnit> {
    let piva = partita_iva(1_000_000_000 + index as u64 * 7_919);
    let (categoria, rendita_cents, name, surface) = if c.population_2011 > 20_000 {
        (
            "D/8",
            1_850_000 + index as i64 * 10_000,
            format!("{} Centro Commerciale S.r.l.", c.name),
            2_400,
        )
    } else {
        (
            "D/1",
            420_000 + index as i64 * 5_000,
            format!("Oleificio {} S.r.l.", c.name),
            900,
        )
    };
    let mut d = pb::CadastralUnit {
        istat_code: c.istat_code.clone(),
        belfiore_code: c.cadastral_code.clone(),
        register: pb::CadastralRegister::Fabbricati as i32,
        foglio: "80".into(),
        particella: "1".into(),
        subalterno: "1".into(),
        categoria: categoria.into(),
        rendita: Some(Money {
            cents: rendita_cents,
        }),
        surface_sqm: surface,
        surface_excluding_uncovered_sqm: surface,
        address: Some(Address {
            street: "Zona Artigianale".into(),
            house_number: "1".into(),
            postal_code: c.postal_codes.first().cloned().unwrap_or_default(),
            istat_code: c.istat_code.clone(),
            locality: String::new(),
        }),
        floor: "T".into(),
        owners: vec![pb::CadastralOwnership {
            fiscal_code: piva,
            name: name.to_uppercase(),
            right: pb::OwnershipRight::Proprieta as i32,
            share_numerator: 1,
            share_denominator: 1,
            start_date: "2008-09-01".into(),
            end_date: String::new(),
        }],
        start_date: "2008-09-01".into(),
        ..Default::default()
    };
    let mut out = vec![d.clone()];
    if c.population_2011 <= 20_000 {
        // An olive grove of the first demo citizen (catasto terreni).
        let citizens = citizens_of(index, c);
        let Some((_, farmer)) = citizens.first() else {
            return out;
        };
        d.register = pb::CadastralRegister::Terreni as i32;
        d.foglio = "81".into();
        d.particella = "33".into();
        d.subalterno.clear();
        d.categoria.clear();
        d.rendita = None;
        d.qualita = "ULIVETO".into();
        d.classe = "2".into();
        d.reddito_dominicale = Some(Money {
            cents: 3_800 + index as i64 * 37,
        });
        d.reddito_agrario = Some(Money {
            cents: 2_100 + index as i64 * 19,
        });
        d.surface_sqm = 6_500 + index as i32 * 40;
        d.surface_excluding_uncovered_sqm = 0;
        d.floor.clear();
        d.owners = vec![pb::CadastralOwnership {
            fiscal_code: farmer.fiscal_code.clone(),
            name: format!("{} {}", farmer.family_name, farmer.given_name).to_uppercase(),
            right: pb::OwnershipRight::Proprieta as i32,
            share_numerator: 1,
            share_denominator: 1,
            start_date: "2001-11-20".into(),
            end_date: String::new(),
        }];
        out.push(d);
    }
    out
}

fn unit_id(u: &pb::CadastralUnit) -> String {
    format!(
        "cu-{}-{}-{}-{}",
        u.belfiore_code.to_ascii_lowercase(),
        u.foglio,
        u.particella,
        if u.subalterno.is_empty() {
            "0"
        } else {
            &u.subalterno
        }
    )
}

fn sha(seed: usize) -> String {
    format!(
        "{:064x}",
        (seed as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)
    )
}

fn draft(
    c: &Comune,
    who: &DemoCitizen,
    designer: &DemoCitizen,
    kind: pb::BuildingPermitKind,
    unit_id: &str,
    seq: usize,
) -> pb::BuildingPermitDraft {
    let (subject, category) = match kind {
        pb::BuildingPermitKind::Cil => (
            "Installazione di ponteggio per manutenzione facciata",
            pb::InterventionCategory::ManutenzioneOrdinaria,
        ),
        pb::BuildingPermitKind::Cila => (
            "Rifacimento bagno e impianti con diversa distribuzione interna",
            pb::InterventionCategory::ManutenzioneStraordinaria,
        ),
        pb::BuildingPermitKind::Scia => (
            "Ristrutturazione edilizia senza aumento di volume",
            pb::InterventionCategory::RistrutturazioneEdilizia,
        ),
        pb::BuildingPermitKind::SciaAlternativa => (
            "Ristrutturazione con demolizione e ricostruzione",
            pb::InterventionCategory::RistrutturazioneEdilizia,
        ),
        _ => (
            "Ampliamento dell'abitazione con nuovo corpo di fabbrica",
            pb::InterventionCategory::NuovaCostruzione,
        ),
    };
    pb::BuildingPermitDraft {
        istat_code: c.istat_code.clone(),
        kind: kind as i32,
        applicant_fiscal_code: who.fiscal_code.clone(),
        designer_fiscal_code: designer.fiscal_code.clone(),
        designer_registration: format!(
            "Ordine degli Architetti di Palermo n. {}",
            1000 + seq * 37 % 4000
        ),
        subject: subject.into(),
        description: format!("{subject}, unità in {}.", c.name),
        intervention_category: category as i32,
        address: Some(Address {
            street: STREETS[seq % STREETS.len()].into(),
            house_number: (1 + seq % 90).to_string(),
            postal_code: c.postal_codes.first().cloned().unwrap_or_default(),
            istat_code: c.istat_code.clone(),
            locality: String::new(),
        }),
        parcels: vec![pb::BuildingPermitParcel {
            cadastral_unit_id: unit_id.into(),
            ..Default::default()
        }],
        // Cefalù's historic centre is under a landscape constraint: no silenzio-assenso there.
        constraints: if c.istat_code == "082027" {
            vec![pb::LandConstraint::Paesaggistico as i32]
        } else {
            Vec::new()
        },
        attachments: vec![
            pb::BuildingPermitAttachment {
                name: "relazione-tecnica-asseverata.pdf.p7m".into(),
                sha256: sha(seq * 3 + 1),
                size_bytes: 480_000 + seq as i64 * 1_024,
                media_type: "application/pkcs7-mime".into(),
                document_type: "relazione tecnica asseverata".into(),
                ..Default::default()
            },
            pb::BuildingPermitAttachment {
                name: "elaborati-grafici.pdf".into(),
                sha256: sha(seq * 3 + 2),
                size_bytes: 2_300_000 + seq as i64 * 2_048,
                media_type: "application/pdf".into(),
                document_type: "elaborati grafici".into(),
                ..Default::default()
            },
        ],
    }
}

/// The stages a demo permit is taken through: (action, days after filing).
fn script(kind: pb::BuildingPermitKind, variant: usize, start: NaiveDate) -> Vec<(Edit, i64)> {
    use pb::BuildingPermitKind as K;
    let officer = || Edit::Assign {
        officer: "Arch. Giovanna Mancuso".into(),
    };
    let start_works = |d: i64| Edit::StartWorks {
        date: start + Duration::days(d),
        contractor: partita_iva(3_000_000_000 + d as u64),
        director: String::new(),
    };
    match (kind, variant % 5) {
        (K::Cila, _) => vec![(start_works(2), 2)],
        (K::Cil, _) => vec![(start_works(0), 0)],
        (K::Scia, 0 | 1) => vec![(officer(), 4)],
        (K::Scia, _) => vec![(officer(), 4), (start_works(6), 6)],
        (K::SciaAlternativa, _) => vec![(officer(), 5), (start_works(35), 35)],
        (_, 0) => vec![(officer(), 6)],
        (_, 1) => vec![(officer(), 6), (Edit::RequestIntegration { note: "Integrare con la relazione geologica e il calcolo degli oneri di urbanizzazione.".into() }, 20)],
        (_, 2) => vec![
            (officer(), 6),
            (Edit::Propose { outcome: pb::PermitProposalOutcome::Favourable, motivation: "Intervento conforme al PRG e al regolamento edilizio.".into(), contribution_cents: 1_245_000 }, 40),
            (Edit::Decide { outcome: pb::PermitDecisionOutcome::Grant, motivation: "Rilasciato alle condizioni del parere dell'Ufficio tecnico.".into(), protocol_number: String::new() }, 55),
        ],
        (_, 3) => vec![
            (officer(), 6),
            (Edit::Propose { outcome: pb::PermitProposalOutcome::Unfavourable, motivation: "Superamento dell'indice di fabbricabilità fondiaria.".into(), contribution_cents: 0 }, 45),
            (Edit::Decide { outcome: pb::PermitDecisionOutcome::PreavvisoDiniego, motivation: "Preavviso di diniego ai sensi dell'art. 10-bis L. 241/1990: superamento dell'indice di fabbricabilità.".into(), protocol_number: String::new() }, 60),
        ],
        // Assigned, then left without a decision: silenzio-assenso once its deadline passes.
        (_, _) => vec![(officer(), 8)],
    }
}

/// Seeds the demo Catasto and permits unless the database already has units. `now` anchors the
/// permits' dates and the tax year of the ownership periods.
pub async fn seed(store: &Store, now: DateTime<Utc>) -> Result<Seeded, DbErr> {
    let db = store.db();
    if unit::Entity::find().count(db).await? > 0 {
        return Ok(Seeded::default());
    }
    let year = now.year();
    let mut rows = Vec::new();
    for (index, c) in comuni::all().iter().enumerate() {
        rows.extend(units_of(index, c, year));
        rows.extend(business_units(index, c));
    }
    let mut units = Vec::with_capacity(rows.len());
    let mut owners = Vec::new();
    let mut home_of = HashMap::new();
    for row in &rows {
        let valid =
            validate_unit(row, "unit").map_err(|v| DbErr::Custom(format!("demo unit: {v}")))?;
        let id = unit_id(row);
        if row.subalterno == "1"
            && row.particella == "100"
            && let Some(o) = row.owners.first()
        {
            let facts = UnitFacts {
                istat_code: valid.istat_code.clone(),
                register: valid.register,
                sezione: valid.sezione.clone(),
                foglio: valid.foglio.clone(),
                particella: valid.particella.clone(),
                subalterno: valid.subalterno.clone(),
            };
            home_of
                .entry(o.fiscal_code.clone())
                .or_insert_with(|| (id.clone(), facts));
        }
        let (u, o) = unit_models(id, valid, now);
        units.push(u);
        owners.extend(o);
    }
    let seeded_units = units.len();
    let txn = db.begin().await?;
    insert_units(&txn, units, owners).await?;
    txn.commit().await?;

    let permits = seed_permits(store, now, &home_of)
        .await
        .map_err(|e| match e {
            ServiceError::Database(db) => db,
            other => DbErr::Custom(format!("demo permit: {other}")),
        })?;
    Ok(Seeded {
        units: seeded_units,
        permits,
    })
}

async fn seed_permits(
    store: &Store,
    now: DateTime<Utc>,
    home_of: &HashMap<String, (String, UnitFacts)>,
) -> Result<usize, ServiceError> {
    use pb::BuildingPermitKind as K;
    let applicant = |who: &DemoCitizen| Actor {
        role: pb::PermitActorRole::Citizen,
        id: who.fiscal_code.clone(),
    };
    let operator = Actor {
        role: pb::PermitActorRole::Operator,
        id: String::new(),
    };
    let mut seeded = 0;
    for (index, c) in comuni::all().iter().enumerate() {
        let citizens = citizens_of(index, c);
        let count = if c.population_2011 > 100_000 {
            8
        } else {
            1 + index % 2
        };
        for k in 0..count.min(citizens.len()) {
            let seq = index * 10 + k;
            let (_, who) = &citizens[k];
            let designer = &citizens[(k + 1) % citizens.len()].1;
            let kind = [
                K::Pdc,
                K::Cila,
                K::Scia,
                K::Pdc,
                K::SciaAlternativa,
                K::Cil,
                K::Pdc,
            ][(index + k) % 7];
            let Some((unit_id, facts)) = home_of.get(&who.fiscal_code) else {
                continue;
            };
            let units = HashMap::from([(unit_id.clone(), facts.clone())]);
            // Filed between 10 and 220 days ago; the silent PdC long enough ago for its term to pass.
            let variant = index + k;
            let age = if kind == K::Pdc && variant % 5 == 4 {
                200 + (seq % 20) as i64
            } else {
                10 + (seq * 13 % 200) as i64
            };
            let filed = now - Duration::days(age);
            let d = validate_draft(
                &draft(c, who, designer, kind, unit_id, seq),
                "draft",
                &units,
            )
            .map_err(ServiceError::InvalidArgument)?;
            let created = store
                .create_draft(d, &applicant(who), filed - Duration::days(3))
                .await?;
            seeded += 1;
            // One draft in a few stays a draft.
            if seq % 9 == 8 {
                continue;
            }
            let id = created.permit.id;
            store.act(&id, Edit::Submit, &applicant(who), filed).await?;
            for (edit, after) in script(kind, variant, filed.date_naive()) {
                let at = filed + Duration::days(after);
                if at > now {
                    break;
                }
                let actor = match edit {
                    Edit::StartWorks { .. } => applicant(who),
                    _ => operator.clone(),
                };
                // A stage the state machine refuses (e.g. a deadline passed first) ends the script.
                if let Err(e) = store.act(&id, edit, &actor, at).await {
                    match e {
                        ServiceError::FailedPrecondition(_) => break,
                        other => return Err(other),
                    }
                }
            }
        }
    }
    Ok(seeded)
}
