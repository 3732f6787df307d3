//! Deterministic demo data for the 82 comuni: works sized by population, with valid CUPs, CIGs,
//! CUIs and partite IVA, PON Metro among the funding of many, histories through the state machine,
//! SAL with certificates and payments (some late), and a few opere incompiute. Every work passes
//! through the same consistency checks as an import row before it is written, so the demo cannot
//! show what the service would refuse. Seeded once, into an empty database, dated back from the
//! seeding day.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use patto_proto::common::v1::{Address, GeoPoint, Money};
use patto_proto::publicworks::v1 as pb;
use patto_proto::publicworks::v1::ProjectState as State;
use patto_service_kit::comuni::{self, Comune};
use patto_service_kit::{demo, ids, procurement};
use sea_orm::{DbErr, EntityTrait, PaginatorTrait, TransactionTrait};

use crate::domain::import::validate_imported;
use crate::domain::sal::SalTerms;
use crate::domain::{iso_day, italian_day};
use crate::store::ops::WorkRows;
use crate::store::{Store, project};

/// Title templates by category (the category's number indexes them).
const WORKS: [(pb::ProjectCategory, &str, char); 13] = [
    (
        pb::ProjectCategory::Roads,
        "Manutenzione straordinaria della viabilità comunale",
        'B',
    ),
    (
        pb::ProjectCategory::Schools,
        "Adeguamento sismico ed efficientamento della scuola",
        'C',
    ),
    (
        pb::ProjectCategory::PublicBuildings,
        "Ristrutturazione del palazzo municipale",
        'D',
    ),
    (
        pb::ProjectCategory::WaterSewer,
        "Rifacimento della rete idrica e fognaria",
        'E',
    ),
    (
        pb::ProjectCategory::GreenEnvironment,
        "Riqualificazione della villa comunale",
        'F',
    ),
    (
        pb::ProjectCategory::Sport,
        "Ristrutturazione del campo sportivo comunale",
        'G',
    ),
    (
        pb::ProjectCategory::CultureHeritage,
        "Restauro e fruizione del complesso monumentale",
        'H',
    ),
    (
        pb::ProjectCategory::Social,
        "Recupero di alloggi di edilizia residenziale pubblica",
        'I',
    ),
    (
        pb::ProjectCategory::Mobility,
        "Realizzazione di una pista ciclabile e di parcheggi di interscambio",
        'J',
    ),
    (
        pb::ProjectCategory::EnergyLighting,
        "Efficientamento energetico della pubblica illuminazione",
        'B',
    ),
    (
        pb::ProjectCategory::Hydrogeological,
        "Mitigazione del rischio idrogeologico",
        'C',
    ),
    (
        pb::ProjectCategory::Digital,
        "Rete in fibra ottica e wi-fi negli edifici comunali",
        'D',
    ),
    (
        pb::ProjectCategory::Other,
        "Ampliamento del cimitero comunale",
        'E',
    ),
];

/// States in the order the demo hands them out: execution dominates, as in real programmes.
const STATES: [State; 10] = [
    State::InEsecuzione,
    State::Programmato,
    State::Progettazione,
    State::InEsecuzione,
    State::Collaudato,
    State::Affidamento,
    State::Ultimato,
    State::Sospeso,
    State::Consegna,
    State::InEsecuzione,
];

/// Fictional contractors (names invented for the demo).
const CONTRACTORS: [&str; 8] = [
    "Costruzioni Conca d'Oro s.r.l.",
    "Edilizia Madonie s.p.a.",
    "Impresa Lavori Oreto s.r.l.",
    "Tirreno Infrastrutture s.r.l.",
    "Consorzio Stabile Monte Pellegrino",
    "Restauri Kalsa s.r.l.",
    "Idraulica Eleuterio s.r.l.",
    "Green Works Sicilia s.r.l.",
];

/// Streets for the sites.
const STREETS: [&str; 6] = [
    "Via Roma",
    "Corso Vittorio Emanuele",
    "Piazza Municipio",
    "Via Garibaldi",
    "Viale della Libertà",
    "Via Vittorio Veneto",
];

/// Days from the previous stage to each state, as the demo's works go through them.
fn stage_gap(state: State) -> i64 {
    match state {
        State::Progettazione => 120,
        State::Affidamento => 150,
        State::Consegna => 120,
        State::InEsecuzione => 20,
        State::Sospeso => 200,
        State::Ultimato => 300,
        State::Collaudato => 120,
        State::Programmato | State::Unspecified => 0,
    }
}

/// An 11-digit number with its partita IVA check digit: `ten` gives the first ten digits.
fn with_check_digit(ten: u64) -> String {
    let base = format!("{:010}", ten % 10_000_000_000);
    (0..10)
        .map(|d| format!("{base}{d}"))
        .find(|candidate| ids::validate_partita_iva(candidate).is_ok())
        .unwrap_or_else(|| format!("{base}0"))
}

fn money(cents: i64) -> Option<Money> {
    Some(Money { cents })
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// How many works a comune has: three, plus one per 15,000 inhabitants, at most forty.
pub fn works_for(c: &Comune) -> usize {
    (3 + c.population_2011 / 15_000).min(40) as usize
}

/// The `k`-th demo work of comune `c` (position `ci` among the 82), as an import row would carry it.
fn work(ci: usize, c: &Comune, k: usize, today: NaiveDate) -> pb::Project {
    let s = (ci * 100 + k) as u64;
    let (category, title, nature) = WORKS[(ci + k) % WORKS.len()];
    let state = STATES[(ci + 3 * k) % STATES.len()];
    let rank = state as i64;
    let small = (ci + k) % 7 == 3 && rank >= State::Affidamento as i64;
    let size = match c.population_2011 {
        p if p > 100_000 => 4,
        p if p > 20_000 => 2,
        _ => 1,
    };
    let budget_eur: i64 = if small {
        40_000 + (s as i64 * 31 % 10) * 10_000
    } else {
        (150_000 + (s as i64 * 7919 % 20) * 50_000) * size
    };
    let budget = budget_eur * 100;

    // The story, dated back from today so that every stage lies in the past.
    let start = today - days(100 + rank * 150 + (s % 60) as i64);
    let mut history = Vec::new();
    let mut at = start;
    let mut started = None;
    let mut consegna = None;
    for st in crate::domain::state::ORDER {
        if st as i32 > state as i32 {
            break;
        }
        // SOSPESO is a detour: a work past it did not go through it.
        if st == State::Sospeso && state != State::Sospeso {
            continue;
        }
        at += days(stage_gap(st));
        if st == State::InEsecuzione {
            started = Some(at);
        }
        if st == State::Consegna {
            consegna = Some(at);
        }
        let note = match st {
            State::Programmato => format!("Inserita nel programma triennale {}", at.year()),
            State::Progettazione => "Incarico di progettazione (PFTE)".to_owned(),
            State::Affidamento => "Determina a contrarre".to_owned(),
            State::Consegna => "Verbale di consegna dei lavori".to_owned(),
            State::Sospeso => "Sospensione per varianti in corso d'opera".to_owned(),
            State::Ultimato => "Certificato di ultimazione dei lavori".to_owned(),
            State::Collaudato => "Certificato di regolare esecuzione".to_owned(),
            _ => String::new(),
        };
        history.push(pb::ProjectStateChange {
            state: st as i32,
            date: iso_day(at),
            note,
            recorded_time: None,
        });
    }

    let first_year = start.year();
    let in_programme = !small;
    let comune_cf = with_check_digit(8_000_000_000 + c.istat_code.parse::<u64>().unwrap_or(0));
    let programme = in_programme.then(|| pb::ProjectProgramme {
        first_year,
        last_year: first_year + 2,
        in_annual_list: state != State::Programmato || k.is_multiple_of(2),
        cui: format!("L{comune_cf}{first_year}{:05}", k + 1),
    });
    let has_cup = rank >= State::Progettazione as i64 || k.is_multiple_of(3);
    let letters = ['D', 'E', 'F', 'G', 'H', 'J'];
    let cup = if has_cup {
        format!(
            "{}{:02}{}{:02}{:09}",
            letters[ci % letters.len()],
            10 + ci % 90,
            nature,
            (start + days(stage_gap(State::Progettazione)))
                .min(today)
                .year()
                % 100,
            s
        )
    } else {
        String::new()
    };

    // Funding: PON Metro for two works in three, then PNRR, the Region and the comune.
    let mut funding = Vec::new();
    let funded = if k % 4 == 1 { budget * 9 / 10 } else { budget };
    let mut left = funded;
    if (ci + k) % 3 != 2 {
        let pon = funded * (60 + (s % 20) as i64) / 100;
        funding.push(pb::ProjectFunding {
            source: pb::ProjectFundingSource::PonMetro as i32,
            amount: money(pon),
            reference: format!("PA{}.{}.{}", 1 + s % 6, 1 + s % 3, 1 + s % 2),
        });
        left -= pon;
    } else if k.is_multiple_of(2) {
        let pnrr = funded * 70 / 100;
        funding.push(pb::ProjectFunding {
            source: pb::ProjectFundingSource::Pnrr as i32,
            amount: money(pnrr),
            reference: "M2C4I2.2".to_owned(),
        });
        left -= pnrr;
    }
    if left > 0 {
        let source = if k.is_multiple_of(3) {
            pb::ProjectFundingSource::Region
        } else {
            pb::ProjectFundingSource::Municipality
        };
        funding.push(pb::ProjectFunding {
            source: source as i32,
            amount: money(left),
            reference: String::new(),
        });
    }

    // The award: from CONSEGNA on, and for half the works in AFFIDAMENTO.
    let awarded =
        rank >= State::Consegna as i64 || (state == State::Affidamento && k.is_multiple_of(2));
    let contract = budget * 80 / 100;
    let (cigs, contractor, contract_amount) = if awarded {
        let cig = if small {
            procurement::smart_cig('Z', 0x0300_0000 + s as u32)
        } else {
            procurement::ordinary_cig(7_100_000 + s as u32)
        };
        let name = CONTRACTORS[(ci + k) % CONTRACTORS.len()];
        (
            cig.into_iter().collect(),
            Some(pb::ProjectContractor {
                name: name.to_owned(),
                vat_number: with_check_digit(
                    4_500_000_000 + ((ci + k) % CONTRACTORS.len()) as u64 * 1_234_567,
                ),
            }),
            money(contract),
        )
    } else {
        (Vec::new(), None, None)
    };

    let sal_entries = started.map_or_else(Vec::new, |start| {
        sal_story(s, state, start, contract, today)
    });

    let incompiuta = state == State::Sospeso && k.is_multiple_of(2);
    let rup = demo::citizen(ci * 7 + k);
    let palermo = c.istat_code == "082053";
    pb::Project {
        istat_code: c.istat_code.clone(),
        cup,
        cigs,
        title: format!("{title}, intervento {}", k + 1),
        description: format!(
            "{title} nel Comune di {}. Dati dimostrativi della piattaforma Patto.",
            c.name
        ),
        category: category as i32,
        state: state as i32,
        incompiuta,
        incompiuta_note: if incompiuta {
            "Lavori sospesi per esaurimento del finanziamento; opera inserita nell'elenco delle incompiute".to_owned()
        } else {
            String::new()
        },
        programme,
        design_level: match rank {
            1 => pb::ProjectDesignLevel::Unspecified,
            2 => pb::ProjectDesignLevel::Pfte,
            _ => pb::ProjectDesignLevel::Esecutivo,
        } as i32,
        budget: money(budget),
        funding,
        contractor,
        contract_amount,
        sal_entries,
        address: Some(Address {
            street: STREETS[(ci + k) % STREETS.len()].to_owned(),
            house_number: format!("{}", 1 + s % 120),
            postal_code: c
                .postal_codes
                .get(k % c.postal_codes.len().max(1))
                .cloned()
                .unwrap_or_default(),
            istat_code: c.istat_code.clone(),
            locality: String::new(),
        }),
        // Only Palermo's sites are placed on the map: the comuni list carries no coordinates.
        geo: palermo.then(|| GeoPoint {
            latitude: 38.08 + (s % 70) as f64 / 1000.0,
            longitude: 13.30 + (s % 90) as f64 / 1000.0,
        }),
        rup_name: format!("{} {}", rup.given_name, rup.family_name),
        planned_end_date: consegna.map(|d| iso_day(d + days(540))).unwrap_or_default(),
        history,
        external_ref: format!("LLPP-{first_year}-{:03}", k + 1),
        ..Default::default()
    }
}

/// SAL of a work whose works started on `start`: every 75 days up to today, certificates usually
/// within 2 to 6 days and payments within 20 to 28, some late on purpose.
fn sal_story(
    s: u64,
    state: State,
    start: NaiveDate,
    contract: i64,
    today: NaiveDate,
) -> Vec<pb::SalEntry> {
    let finished = matches!(state, State::Ultimato | State::Collaudato);
    let wanted = 1 + (s % 4) as usize + usize::from(finished);
    let dates: Vec<NaiveDate> = (0..wanted)
        .map(|j| start + days(60 + 75 * j as i64))
        .filter(|d| *d < today)
        .collect();
    let n = dates.len();
    let mut out = Vec::with_capacity(n);
    let mut previous_progress = 0i64;
    for (j, date) in dates.into_iter().enumerate() {
        let progress = if finished && j + 1 == n {
            10_000
        } else {
            (j as i64 + 1) * 10_000 / (n as i64 + 1)
        };
        let amount = contract * (progress - previous_progress) / 10_000;
        previous_progress = progress;
        if amount <= 0 {
            continue;
        }
        let certificate_late = (s as usize + j).is_multiple_of(5);
        let issued = date
            + days(if certificate_late {
                12
            } else {
                2 + (s % 5) as i64
            });
        let mut entry = pb::SalEntry {
            number: out.len() as i32 + 1,
            date: iso_day(date),
            progress_basis_points: progress as i32,
            amount: money(amount),
            ..Default::default()
        };
        // The latest SAL of a running work may still wait for its certificate.
        let pending = j + 1 == n && !finished && s.is_multiple_of(3);
        if issued <= today && !pending {
            let certified = amount - amount / 20;
            entry.certificate_issued_date = iso_day(issued);
            entry.certificate_amount = money(certified);
            let payment_late = (s as usize + j) % 4 == 1;
            let paid = issued
                + days(if payment_late {
                    45
                } else {
                    20 + (s % 9) as i64
                });
            // A late payment of the latest SAL is still missing: that is what a late flag is for.
            if paid <= today && !(payment_late && j + 1 == n) {
                entry.paid_date = iso_day(paid);
                entry.paid_amount = money(certified);
            }
        }
        out.push(entry);
    }
    out
}

/// Seeds the demo works unless the database already has works. `now` anchors every date (the
/// stories end by its Italian day). Returns the number of works created.
pub async fn seed(store: &Store, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let db = store.db();
    if project::Entity::find().count(db).await? > 0 {
        return Ok(0);
    }
    let today = italian_day(now);
    let mut rows = WorkRows::default();
    let mut count = 0;
    for (ci, comune) in comuni::all().iter().enumerate() {
        for k in 0..works_for(comune) {
            let row = work(ci, comune, k, today);
            let checked =
                validate_imported(&row, "project", SalTerms::default(), today).map_err(|v| {
                    DbErr::Custom(format!(
                        "demo work {} of {} is inconsistent: {v}",
                        k + 1,
                        comune.name
                    ))
                })?;
            // Spread the update times so that "most recently updated first" means something.
            let touched = now - Duration::hours(((ci * 37 + k * 11) % 2000) as i64);
            rows.add_new(
                &format!("opera-{}-{:03}", comune.istat_code, k + 1),
                &checked,
                today,
                touched,
            );
            count += 1;
        }
    }
    let txn = db.begin().await?;
    rows.insert(&txn).await?;
    txn.commit().await?;
    Ok(count)
}
