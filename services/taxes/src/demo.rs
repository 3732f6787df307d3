//! Deterministic demo data for the 82 comuni: each comune's pagoPA registration, IMU rates for last
//! year and this one, TARI tariffs, and a tax roll built from the building service's demo Catasto:
//! the shared demo citizens (kit `demo::citizen`) declare their homes as main residences with their
//! pertinenze and hold TARI registrations for them, companies hold non-domestic ones; then the
//! yearly IMU and TARI notices are issued and the instalments already due are paid, through the
//! same store paths as clients' calls. Seeded once per part, so restarts keep what users did.
//!
//! Registration data a comune supplies in production (its creditor codice fiscale, IBAN, taxonomy
//! codes) is demo data here, except the codici fiscali of the Comune di Palermo and of the Città
//! Metropolitana, which are the real ones.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use patto_proto::building::v1 as bpb;
use patto_proto::common::v1::Address;
use patto_proto::taxes::v1 as pb;
use patto_service_kit::comuni::{self, Comune};
use patto_service_kit::demo;
use patto_service_kit::ids;
use sea_orm::{DbErr, EntityTrait, PaginatorTrait};

use crate::building::BuildingClient;
use crate::compute;
use crate::domain::debt::Creditor;
use crate::domain::rates::ImuRates;
use crate::domain::roll::{validate_imu_declaration, validate_tari_registration};
use crate::domain::tariffs::Tariffs;
use crate::error::TaxesError;
use crate::store::{
    CITTA_METROPOLITANA, Receipt, RollRow, Store, creditor, debt_position, payment_option,
    tax_position,
};

/// What the seeding wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Comuni registered with pagoPA (and rates and tariffs set).
    pub comuni: usize,
    /// TARI registrations.
    pub tari_registrations: usize,
    /// IMU declarations.
    pub imu_declarations: usize,
    /// Tax positions.
    pub tax_positions: usize,
    /// Debt positions.
    pub debt_positions: usize,
    /// Payments recorded.
    pub payments: usize,
}

/// The Comune di Palermo's codice fiscale.
const PALERMO_CF: &str = "80016350821";
/// The Città Metropolitana di Palermo's codice fiscale (the TEFA beneficiary).
const CITTA_METROPOLITANA_CF: &str = "80021470820";
/// The segregation code of the platform as pagoPA intermediary (DOMAIN.md §6: 00-45 go to
/// intermediaries); the demo uses the documented example.
const SEGREGATION: u8 = 1;

/// A valid 11-digit codice fiscale of a body, from 10 digits (the demo comuni but Palermo).
fn body_code(first10: u64) -> String {
    let base = format!("{:010}", first10 % 10_000_000_000);
    (0..10u8)
        .map(|c| format!("{base}{c}"))
        .find(|c| ids::validate_partita_iva(c).is_ok())
        .unwrap_or_else(|| format!("{base}0"))
}

/// An Italian IBAN with valid ISO 13616 check digits (demo accounts at a Tesoreria).
fn iban(abi: &str, cab: &str, account: u64) -> String {
    let bban = format!("X{abi}{cab}{account:012}");
    // Move "IT00" after the BBAN, letters to numbers (A = 10), check = 98 − mod 97.
    let digits: String = format!("{bban}IT00")
        .chars()
        .map(|c| c.to_digit(36).map_or_else(String::new, |d| d.to_string()))
        .collect();
    let rem = digits.chars().fold(0u32, |acc, ch| {
        (acc * 10 + ch.to_digit(10).unwrap_or(0)) % 97
    });
    format!("IT{:02}{bban}", 98 - rem)
}

fn creditor_of(index: usize, c: &Comune) -> Creditor {
    Creditor {
        fiscal_code: if c.istat_code == "082053" {
            PALERMO_CF.to_owned()
        } else {
            body_code(8_000_000_000 + index as u64 * 104_729)
        },
        name: format!("Comune di {}", c.name),
        iban: iban("01000", "04600", 100_000 + index as u64),
        segregation_code: SEGREGATION,
        imu_taxonomy: "9/0101101IM/".into(),
        tari_taxonomy: "9/0101107TS/".into(),
    }
}

fn rates_for(index: usize, c: &Comune, year: i32, published: bool) -> ImuRates {
    let palermo = c.istat_code == "082053";
    let ordinary = if palermo {
        106
    } else {
        [86, 96, 100, 106][index % 4]
    };
    ImuRates {
        ordinary_bp: ordinary,
        main_residence_bp: if palermo || index.is_multiple_of(3) {
            60
        } else {
            50
        },
        group_d_bp: ordinary.max(86),
        building_land_bp: ordinary,
        // Hill and mountain comuni of the province are exempt on terreni agricoli (circ. MEF 9/1993).
        agricultural_land_exempt: index.is_multiple_of(3),
        minimum_payable_cents: 1_200,
        approved_act: format!("Delibera C.C. n. {} del {}-03-28", 10 + index % 40, year),
        published,
        ..ImuRates::defaults(year)
    }
}

/// DPR 158/1999 non-domestic categories (comuni over 5,000 inhabitants) with demo Kc/Kd near the
/// middle of the tab. 3a/4a ranges for the South.
const CATEGORIES: [(i32, &str, i32, i32); 30] = [
    (
        1,
        "Musei, biblioteche, scuole, associazioni, luoghi di culto",
        540,
        4_700,
    ),
    (2, "Cinematografi e teatri", 400, 3_500),
    (
        3,
        "Autorimesse e magazzini senza vendita diretta",
        400,
        3_500,
    ),
    (
        4,
        "Campeggi, distributori carburanti, impianti sportivi",
        680,
        6_000,
    ),
    (5, "Stabilimenti balneari", 470, 4_150),
    (6, "Esposizioni, autosaloni", 450, 4_000),
    (7, "Alberghi con ristorante", 1_210, 10_600),
    (8, "Alberghi senza ristorante", 960, 8_450),
    (9, "Case di cura e riposo", 1_000, 8_750),
    (10, "Ospedali", 1_140, 10_000),
    (11, "Uffici, agenzie, studi professionali", 1_030, 9_100),
    (12, "Banche e istituti di credito", 630, 5_550),
    (
        13,
        "Negozi di abbigliamento, calzature, libreria, cartoleria, ferramenta",
        990,
        8_700,
    ),
    (
        14,
        "Edicola, farmacia, tabaccaio, plurilicenze",
        1_250,
        11_000,
    ),
    (
        15,
        "Negozi particolari (filatelia, tende, tessuti, tappeti, cappelli, antiquariato)",
        730,
        6_450,
    ),
    (16, "Banchi di mercato beni durevoli", 1_430, 12_600),
    (
        17,
        "Attività artigianali: parrucchiere, barbiere, estetista",
        1_340,
        11_800,
    ),
    (
        18,
        "Attività artigianali: falegname, idraulico, fabbro, elettricista",
        900,
        7_950,
    ),
    (19, "Carrozzeria, autofficina, elettrauto", 1_140, 10_050),
    (
        20,
        "Attività industriali con capannoni di produzione",
        630,
        5_600,
    ),
    (
        21,
        "Attività artigianali di produzione beni specifici",
        680,
        6_000,
    ),
    (
        22,
        "Ristoranti, trattorie, osterie, pizzerie, pub",
        6_840,
        60_200,
    ),
    (23, "Mense, birrerie, amburgherie", 4_440, 39_100),
    (24, "Bar, caffè, pasticceria", 4_960, 43_600),
    (
        25,
        "Supermercato, pane e pasta, macelleria, salumi e formaggi, generi alimentari",
        2_000,
        17_600,
    ),
    (26, "Plurilicenze alimentari e/o miste", 2_000, 17_600),
    (
        27,
        "Ortofrutta, pescherie, fiori e piante, pizza al taglio",
        7_830,
        68_900,
    ),
    (28, "Ipermercati di generi misti", 2_190, 19_300),
    (29, "Banchi di mercato generi alimentari", 5_800, 51_000),
    (30, "Discoteche, night club", 1_340, 11_800),
];

fn tariffs_for(index: usize, c: &Comune, year: i32) -> Tariffs {
    let palermo = c.istat_code == "082053";
    let d = |m: u32, dd: u32| NaiveDate::from_ymd_opt(year, m, dd);
    let instalments: Vec<NaiveDate> = if palermo {
        [d(5, 31), d(7, 31), d(9, 30), d(11, 30)]
            .into_iter()
            .flatten()
            .collect()
    } else if index.is_multiple_of(2) {
        [d(5, 31), d(7, 31), d(10, 31)]
            .into_iter()
            .flatten()
            .collect()
    } else {
        crate::domain::tariffs::default_instalments(year)
    };
    let mut household = [(0, 0); 6];
    for (i, slot) in household.iter_mut().enumerate() {
        *slot = (
            crate::domain::tariffs::DEFAULT_KA[i],
            crate::domain::tariffs::DEFAULT_KB[i],
        );
    }
    Tariffs {
        domestic_fixed_micros: if palermo {
            1_850_000
        } else {
            1_100_000 + (index as i64 % 7) * 90_000
        },
        domestic_variable_micros: if palermo {
            118_000_000
        } else {
            70_000_000 + (index as i64 % 5) * 9_000_000
        },
        household,
        non_domestic_fixed_micros: if palermo {
            2_400_000
        } else {
            1_500_000 + (index as i64 % 4) * 150_000
        },
        non_domestic_variable_micros: if palermo {
            360_000
        } else {
            260_000 + (index as i64 % 3) * 30_000
        },
        categories: CATEGORIES
            .iter()
            .map(
                |(code, description, kc, kd)| crate::domain::tariffs::Category {
                    code: *code,
                    description: (*description).to_owned(),
                    kc: *kc,
                    kd: *kd,
                },
            )
            .collect(),
        tefa_bp: crate::domain::tariffs::DEFAULT_TEFA_BP,
        surface_share_bp: crate::domain::tariffs::FULL_SURFACE_BP,
        non_resident_household_size: 2,
        reductions: vec![
            crate::domain::tariffs::Reduction {
                code: "COMPOSTAGGIO".into(),
                description: "Compostaggio domestico della frazione organica".into(),
                fixed_bp: 0,
                variable_bp: 2_000,
            },
            crate::domain::tariffs::Reduction {
                code: "USO_STAGIONALE".into(),
                description: "Abitazione tenuta a disposizione per uso stagionale".into(),
                fixed_bp: 3_000,
                variable_bp: 3_000,
            },
        ],
        instalment_due_dates: instalments,
        minimum_payable_cents: 1_200,
        approved_act: format!(
            "Delibera C.C. n. {} del {}-04-29 (PEF MTR-2 ARERA)",
            20 + index % 30,
            year
        ),
    }
}

/// Seeds the demo taxes data. The registration, rates and tariffs need nothing else; the roll and
/// the notices need the building service's Catasto, and are seeded when it answers (within about a
/// minute: the all-in-one starts both at once), else left for a later start.
pub async fn seed(
    store: &Store,
    building: &BuildingClient,
    now: DateTime<Utc>,
) -> Result<Seeded, DbErr> {
    let mut seeded = Seeded::default();
    let year = now.year();
    if creditor::Entity::find().count(store.db()).await? == 0 {
        store
            .put_creditor(
                CITTA_METROPOLITANA,
                &Creditor {
                    fiscal_code: CITTA_METROPOLITANA_CF.into(),
                    name: "Città Metropolitana di Palermo".into(),
                    iban: iban("01000", "04600", 999_999),
                    segregation_code: SEGREGATION,
                    imu_taxonomy: String::new(),
                    tari_taxonomy: "9/0201109TS/".into(),
                },
            )
            .await?;
        // The MEF publishes the year's rates by 28 October.
        let published =
            now.date_naive() > NaiveDate::from_ymd_opt(year, 10, 28).unwrap_or_default();
        for (index, c) in comuni::all().iter().enumerate() {
            store
                .put_creditor(&c.istat_code, &creditor_of(index, c))
                .await?;
            let seed_time = now;
            store
                .set_imu_rates(
                    &c.istat_code,
                    year - 1,
                    &rates_for(index, c, year - 1, true),
                    seed_time,
                )
                .await
                .map_err(service)?;
            store
                .set_imu_rates(
                    &c.istat_code,
                    year,
                    &rates_for(index, c, year, published),
                    seed_time,
                )
                .await
                .map_err(service)?;
            store
                .set_tari_tariffs(&c.istat_code, year, &tariffs_for(index, c, year), seed_time)
                .await
                .map_err(service)?;
            seeded.comuni += 1;
        }
    }
    if tax_position::Entity::find().count(store.db()).await? > 0 {
        return Ok(seeded);
    }
    match seed_roll(store, building, now, &mut seeded).await {
        Ok(()) => {}
        Err(TaxesError::Service(patto_service_kit::ServiceError::Database(e))) => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "taxes demo roll not seeded: the building service did not answer or refused the service's credentials; it will be seeded on a later start");
        }
    }
    Ok(seeded)
}

fn service(e: patto_service_kit::ServiceError) -> DbErr {
    match e {
        patto_service_kit::ServiceError::Database(db) => db,
        other => DbErr::Custom(other.to_string()),
    }
}

/// Reads a comune's Catasto as its system, waiting for the building service while it starts. In the all-in-one
/// its port is bound before any service starts, so a call made while it seeds its own demo data
/// waits for it (up to the client's timeout, tried again a few times); a refused connection means
/// nothing listens there, and a few quick retries are all it gets.
async fn units(
    building: &BuildingClient,
    istat: &str,
    patient: bool,
) -> Result<Vec<bpb::CadastralUnit>, TaxesError> {
    let (mut slow, mut refused) = if patient { (3, 5) } else { (0, 0) };
    loop {
        match building
            .units_of_comune(istat, &building.as_system(istat))
            .await
        {
            Ok(u) => return Ok(u),
            Err(status) if status.code() == tonic::Code::DeadlineExceeded && slow > 0 => slow -= 1,
            Err(status) if status.code() == tonic::Code::Unavailable && refused > 0 => {
                refused -= 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(status) => return Err(TaxesError::Building(status)),
        }
    }
}

fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(1_469_598_103_934_665_603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
    })
}

fn holds_now(o: &bpb::CadastralOwnership, today: NaiveDate) -> bool {
    o.end_date.is_empty()
        || NaiveDate::parse_from_str(&o.end_date, "%Y-%m-%d").is_ok_and(|e| e >= today)
}

/// The roll of one comune from its Catasto: declarations and registrations of its residents, the
/// seaside flats of people from elsewhere, the companies' premises.
fn roll_of(
    c: &Comune,
    units: &[bpb::CadastralUnit],
    residence: &HashMap<String, String>,
    year: i32,
    today: NaiveDate,
) -> (Vec<pb::ImuDeclaration>, Vec<pb::TariRegistration>) {
    let mut declarations = Vec::new();
    let mut registrations = Vec::new();
    let mut homes: BTreeMap<String, &bpb::CadastralUnit> = BTreeMap::new();
    for u in units
        .iter()
        .filter(|u| u.categoria.starts_with('A') && u.categoria != "A/10")
    {
        for o in u.owners.iter().filter(|o| holds_now(o, today)) {
            if residence.get(&o.fiscal_code) != Some(&c.istat_code) {
                continue;
            }
            // A resident's home is their largest dwelling in the comune.
            let better = homes
                .get(&o.fiscal_code)
                .is_none_or(|h| u.consistenza > h.consistenza);
            if better {
                homes.insert(o.fiscal_code.clone(), u);
            }
        }
    }
    let address = |u: &bpb::CadastralUnit| {
        let a = u.address.clone().unwrap_or_default();
        Some(Address {
            istat_code: String::new(),
            ..a
        })
    };
    for (cf, home) in &homes {
        let Some(own) = home.owners.iter().find(|o| o.fiscal_code == *cf) else {
            continue;
        };
        let since = own.start_date.clone();
        let filed = NaiveDate::parse_from_str(&since, "%Y-%m-%d")
            .map_or(year, |d| d.year())
            .max(crate::domain::FIRST_YEAR);
        declarations.push(pb::ImuDeclaration {
            fiscal_code: cf.clone(),
            istat_code: c.istat_code.clone(),
            year: filed,
            cadastral_unit_id: home.id.clone(),
            main_residence: true,
            start_date: since.clone(),
            ..Default::default()
        });
        // Its garage and cellar in the same building are its pertinenze.
        for p in units.iter().filter(|p| {
            (p.categoria == "C/6" || p.categoria == "C/2")
                && p.foglio == home.foglio
                && p.particella == home.particella
                && p.owners.iter().any(|o| o.fiscal_code == *cf)
        }) {
            declarations.push(pb::ImuDeclaration {
                fiscal_code: cf.clone(),
                istat_code: c.istat_code.clone(),
                year: filed,
                cadastral_unit_id: p.id.clone(),
                main_residence_unit_id: home.id.clone(),
                start_date: since.clone(),
                ..Default::default()
            });
        }
        let h = stable_hash(cf);
        registrations.push(pb::TariRegistration {
            istat_code: c.istat_code.clone(),
            holder_fiscal_code: cf.clone(),
            kind: pb::TariUseKind::Domestic as i32,
            address: address(home),
            cadastral_unit_id: home.id.clone(),
            surface_sqm: home.surface_excluding_uncovered_sqm.max(30),
            household_size: 1 + (h % 5) as i32,
            resident: true,
            reduction_codes: if c.population_2011 < 5_000 && h.is_multiple_of(2) {
                vec!["COMPOSTAGGIO".into()]
            } else {
                Vec::new()
            },
            start_date: since,
            ..Default::default()
        });
    }
    // Holiday flats of non-residents: declared at canone concordato when let, registered as
    // seasonal dwellings by their first holder.
    for (k, u) in units
        .iter()
        .filter(|u| {
            u.categoria.starts_with('A')
                && u.owners.iter().all(|o| {
                    residence
                        .get(&o.fiscal_code)
                        .is_some_and(|r| *r != c.istat_code)
                })
        })
        .enumerate()
    {
        if let Some(first) = u.owners.first() {
            if k % 2 == 0 {
                for o in &u.owners {
                    declarations.push(pb::ImuDeclaration {
                        fiscal_code: o.fiscal_code.clone(),
                        istat_code: c.istat_code.clone(),
                        year: year - 1,
                        cadastral_unit_id: u.id.clone(),
                        canone_concordato: true,
                        start_date: format!("{}-01-01", year - 1),
                        ..Default::default()
                    });
                }
            }
            registrations.push(pb::TariRegistration {
                istat_code: c.istat_code.clone(),
                holder_fiscal_code: first.fiscal_code.clone(),
                kind: pb::TariUseKind::Domestic as i32,
                address: address(u),
                cadastral_unit_id: u.id.clone(),
                surface_sqm: u.surface_excluding_uncovered_sqm.max(30),
                household_size: 0,
                resident: false,
                reduction_codes: vec!["USO_STAGIONALE".into()],
                start_date: first.start_date.clone(),
                ..Default::default()
            });
        }
    }
    // Companies' premises (group D): non-domestic registrations.
    for u in units.iter().filter(|u| u.categoria.starts_with('D')) {
        let Some(o) = u.owners.iter().find(|o| o.fiscal_code.len() == 11) else {
            continue;
        };
        let (category, ateco) = if u.categoria == "D/8" {
            (28, "47.11.10")
        } else {
            (20, "10.41.10")
        };
        registrations.push(pb::TariRegistration {
            istat_code: c.istat_code.clone(),
            holder_fiscal_code: o.fiscal_code.clone(),
            kind: pb::TariUseKind::NonDomestic as i32,
            address: address(u),
            cadastral_unit_id: u.id.clone(),
            surface_sqm: u.surface_excluding_uncovered_sqm.max(50),
            non_domestic_category: category,
            ateco_code: ateco.into(),
            start_date: o.start_date.clone(),
            ..Default::default()
        });
    }
    (declarations, registrations)
}

async fn seed_roll(
    store: &Store,
    building: &BuildingClient,
    now: DateTime<Utc>,
    seeded: &mut Seeded,
) -> Result<(), TaxesError> {
    let year = now.year();
    let today = now.date_naive();
    // Where each demo citizen lives: the demo Catasto gives homes to these.
    let residence: HashMap<String, String> = (0..comuni::all().len() * 12)
        .map(demo::citizen)
        .map(|c| (c.fiscal_code, c.istat_code))
        .collect();
    // The yearly notices go out in January, before the first due day.
    let issued = NaiveDate::from_ymd_opt(year, 1, 15)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .map_or(now, |d| d.and_utc())
        .min(now);
    for (index, c) in comuni::all().iter().enumerate() {
        let units = units(building, &c.istat_code, index == 0).await?;
        let (declarations, registrations) = roll_of(c, &units, &residence, year, today);
        let mut rows = Vec::with_capacity(declarations.len() + registrations.len());
        for d in &declarations {
            rows.push(RollRow::Imu(
                validate_imu_declaration(d, "imu_declaration")
                    .map_err(patto_service_kit::ServiceError::InvalidArgument)?,
            ));
        }
        for r in &registrations {
            rows.push(RollRow::Tari(
                validate_tari_registration(r, "tari_registration")
                    .map_err(patto_service_kit::ServiceError::InvalidArgument)?,
            ));
        }
        let imported = store.import_roll(&c.istat_code, rows, issued).await?;
        seeded.imu_declarations += imported.imu_declarations as usize;
        seeded.tari_registrations += imported.tari_registrations as usize;

        let imu = compute::imu_from_units(store, &units, &c.istat_code, year, issued).await?;
        let g = store
            .generate(&c.istat_code, pb::Tribute::Imu, year, imu, false, issued)
            .await?;
        let tari = compute::tari_for_comune(store, &c.istat_code, year, issued).await?;
        let t = store
            .generate(&c.istat_code, pb::Tribute::Tari, year, tari, false, issued)
            .await?;
        seeded.tax_positions += (g.positions + t.positions) as usize;
        seeded.debt_positions += (g.debt_positions + t.debt_positions) as usize;
    }
    seeded.payments = pay_due_instalments(store, now).await?;
    Ok(())
}

/// Pays, as pagoPA receipts, what fell due before `now` on half of the notices: a quarter were
/// paid in one go by the first due day (rata unica), a quarter instalment by instalment.
async fn pay_due_instalments(store: &Store, now: DateTime<Utc>) -> Result<usize, TaxesError> {
    let options = payment_option::Entity::find().all(store.db()).await?;
    let mut by_iupd: HashMap<String, Vec<payment_option::Model>> = HashMap::new();
    for o in options {
        by_iupd.entry(o.iupd.clone()).or_default().push(o);
    }
    // Positions in a stable order (IUPDs hold a random part): comune, debtor, tribute.
    let mut positions = debt_position::Entity::find().all(store.db()).await?;
    positions.sort_by(|a, b| {
        (&a.istat_code, &a.debtor_fiscal_code, a.tribute).cmp(&(
            &b.istat_code,
            &b.debtor_fiscal_code,
            b.tribute,
        ))
    });
    let mut paid = 0;
    for (i, position) in positions.iter().enumerate() {
        let Some(mut opts) = by_iupd.remove(&position.iupd) else {
            continue;
        };
        opts.sort_by_key(|o| o.instalment_number);
        let pick: Vec<&payment_option::Model> = match i % 4 {
            0 => opts.iter().filter(|o| !o.instalment).collect(),
            1 => opts.iter().filter(|o| o.instalment).collect(),
            _ => Vec::new(),
        };
        for o in pick {
            let Some(when) = o
                .due_date
                .pred_opt()
                .and_then(|d| d.and_hms_opt(10, 30, 0))
                .map(|d| d.and_utc())
            else {
                continue;
            };
            if when > now {
                continue;
            }
            let receipt = Receipt {
                receipt_id: format!("RT-{}", o.iuv),
                psp_id: "BPPIITRRXXX".into(),
                psp_name: "Poste Italiane".into(),
                amount: o.amount_cents,
                payment_time: when,
            };
            // The demo records receipts as the comune's pagoPA connector would: no caller to ask.
            match store
                .record_payment(&o.creditor_fiscal_code, &o.iuv, &receipt, when, |_| Ok(()))
                .await
            {
                Ok(_) => paid += 1,
                // A position the rules do not let pay (already paid by its rata unica…) is skipped.
                Err(
                    patto_service_kit::ServiceError::FailedPrecondition(_)
                    | patto_service_kit::ServiceError::AlreadyExists(_),
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(paid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_identifiers_are_valid() {
        for i in 0..82u64 {
            assert!(ids::validate_partita_iva(&body_code(8_000_000_000 + i * 104_729)).is_ok());
        }
        assert!(ids::validate_partita_iva(PALERMO_CF).is_ok());
        assert!(ids::validate_partita_iva(CITTA_METROPOLITANA_CF).is_ok());
        let iban = iban("01000", "04600", 100_000);
        assert_eq!(iban.len(), 27);
        // Recompute the ISO 13616 check: rotate, convert, mod 97 must be 1.
        let rotated = format!("{}{}", &iban[4..], &iban[..4]);
        let rem = rotated
            .chars()
            .map(|c| c.to_digit(36).unwrap().to_string())
            .collect::<String>()
            .chars()
            .fold(0u32, |acc, ch| (acc * 10 + ch.to_digit(10).unwrap()) % 97);
        assert_eq!(rem, 1, "{iban}");
        let palermo = comuni::by_istat("082053").unwrap();
        assert_eq!(creditor_of(52, palermo).fiscal_code, PALERMO_CF);
        let t = tariffs_for(52, palermo, 2026);
        assert_eq!(t.instalment_due_dates.len(), 4);
        assert_eq!(t.categories.len(), 30);
        assert_eq!(rates_for(52, palermo, 2026, true).ordinary_bp, 106);
    }
}
