//! Deterministic demo data for the 82 comuni: job offers and training courses sized by each
//! comune's population, with real CP2021 units and ATECO 2025 sectors, and enrolments and job
//! applications by the shared demo citizens ([`patto_service_kit::demo::citizen`]). Every record
//! passes through the same validation as a client's, and enrolments and applications through the
//! same store path, so the demo shows nothing the service would refuse. Seeded once, into an empty
//! database, so restarts keep what users did.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use patto_proto::common::v1::{Address, Money};
use patto_proto::employment::v1 as pb;
use patto_service_kit::comuni::{self, Comune};
use patto_service_kit::demo;
use patto_service_kit::error::ServiceError;
use sea_orm::{DbErr, EntityTrait, PaginatorTrait, TransactionTrait};

use crate::domain::course::{NewEnrolment, validate_course};
use crate::domain::italian_day;
use crate::domain::offer::{NewApplication, validate_job_offer};
use crate::store::{Store, apply_in, enrol_in, job_offer, review_in};

/// What the seeding wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Job offers.
    pub offers: usize,
    /// Training courses.
    pub courses: usize,
    /// Enrolments.
    pub enrolments: usize,
    /// Job applications.
    pub applications: usize,
}

/// A job the comuni's offices publish: (title, CP2021 unit, ATECO 2025, contract, weekly hours,
/// months, minimum EQF, requirements, yearly gross pay range in euro, employer kind).
type JobTemplate = (
    &'static str,
    &'static str,
    &'static str,
    pb::JobContractType,
    i32,
    i32,
    i32,
    &'static str,
    (i64, i64),
    &'static str,
);

const JOBS: &[JobTemplate] = {
    use pb::JobContractType as C;
    &[
        (
            "Cuoco/a per trattoria",
            "5.2.2.1.0",
            "56.11.10",
            C::FixedTerm,
            40,
            6,
            3,
            "Almeno due anni di esperienza in cucina; attestato HACCP.",
            (19_000, 23_000),
            "Trattoria",
        ),
        (
            "Cameriere/a di sala (stagione estiva)",
            "5.2.2.3.2",
            "56.11.10",
            C::FixedTerm,
            30,
            4,
            0,
            "Inglese di base; disponibilità serale e nei fine settimana.",
            (14_000, 17_000),
            "Ristorante",
        ),
        (
            "Barista in apprendistato",
            "5.2.2.4.0",
            "56.30.00",
            C::Apprenticeship,
            36,
            36,
            0,
            "Età tra 18 e 29 anni, come richiede l'apprendistato professionalizzante.",
            (13_000, 16_000),
            "Bar Pasticceria",
        ),
        (
            "Addetto/a al ricevimento",
            "4.2.2.2.0",
            "55.10.00",
            C::FixedTerm,
            40,
            8,
            4,
            "Diploma; inglese B2, seconda lingua gradita.",
            (18_000, 21_000),
            "Hotel",
        ),
        (
            "Commesso/a di negozio",
            "5.1.2.2.0",
            "47.11.20",
            C::FixedTerm,
            24,
            12,
            0,
            "Esperienza nella vendita al dettaglio.",
            (11_000, 13_000),
            "Market",
        ),
        (
            "Cassiere/a di supermercato",
            "5.1.2.4.0",
            "47.11.20",
            C::Permanent,
            30,
            0,
            0,
            "Disponibilità su turni, festivi compresi.",
            (15_000, 17_000),
            "Supermercati",
        ),
        (
            "Operatore/trice socio-sanitario (OSS)",
            "5.3.1.1.0",
            "87.30.00",
            C::Permanent,
            38,
            0,
            3,
            "Qualifica di OSS riconosciuta dalla Regione Siciliana.",
            (20_000, 23_000),
            "RSA",
        ),
        (
            "Infermiere/a",
            "3.2.1.1.1",
            "86.10.00",
            C::Permanent,
            36,
            0,
            6,
            "Laurea in Infermieristica e iscrizione all'OPI.",
            (26_000, 31_000),
            "Casa di cura",
        ),
        (
            "Muratore",
            "6.1.2.1.0",
            "41.00.00",
            C::FixedTerm,
            40,
            12,
            0,
            "Esperienza in cantiere; formazione sulla sicurezza di 16 ore.",
            (20_000, 24_000),
            "Costruzioni",
        ),
        (
            "Elettricista per impianti civili",
            "6.1.3.7.0",
            "43.21.01",
            C::Permanent,
            40,
            0,
            3,
            "Esperienza su impianti civili; patente B.",
            (21_000, 25_000),
            "Impianti",
        ),
        (
            "Autista di mezzi pesanti (patente C e CQC)",
            "7.4.2.3.0",
            "49.41.00",
            C::Permanent,
            40,
            0,
            0,
            "Patente C e CQC merci in corso di validità.",
            (22_000, 26_000),
            "Trasporti",
        ),
        (
            "Carrellista di magazzino",
            "7.4.4.4.0",
            "52.10.20",
            C::Agency,
            40,
            3,
            0,
            "Abilitazione alla conduzione di carrelli elevatori.",
            (17_000, 19_000),
            "Logistica",
        ),
        (
            "Operaio/a agricolo per la raccolta degli agrumi",
            "8.3.1.1.0",
            "01.23.00",
            C::FixedTerm,
            39,
            3,
            0,
            "Disponibilità al lavoro all'aperto; automunito/a.",
            (12_000, 14_000),
            "Azienda agricola",
        ),
        (
            "Addetto/a alle pulizie di uffici",
            "8.1.4.3.0",
            "81.21.00",
            C::FixedTerm,
            20,
            12,
            0,
            "Disponibilità la mattina presto.",
            (8_000, 10_000),
            "Servizi",
        ),
        (
            "Tecnico/a programmatore",
            "3.1.2.1.0",
            "62.10.00",
            C::Permanent,
            40,
            0,
            5,
            "Conoscenza di un linguaggio di programmazione e di SQL.",
            (26_000, 32_000),
            "Software",
        ),
        (
            "Contabile",
            "3.3.1.2.1",
            "69.20.11",
            C::Permanent,
            40,
            0,
            4,
            "Diploma di ragioneria o laurea in economia; uso dei gestionali contabili.",
            (21_000, 25_000),
            "Studio",
        ),
        (
            "Panettiere/a in apprendistato",
            "6.5.1.2.1",
            "10.71.10",
            C::Apprenticeship,
            40,
            36,
            0,
            "Disponibilità al lavoro notturno.",
            (14_000, 17_000),
            "Panificio",
        ),
        (
            "Collaboratore/trice domestico/a",
            "8.2.2.1.0",
            "97.00.00",
            C::Permanent,
            25,
            0,
            0,
            "Referenze; disponibilità il mattino.",
            (9_000, 11_000),
            "Famiglia",
        ),
        (
            "Tirocinio negli uffici comunali",
            "4.1.1.2.0",
            "84.11.10",
            C::Traineeship,
            25,
            6,
            4,
            "Disoccupati iscritti al Centro per l'impiego; diploma.",
            (6_000, 6_000),
            "Comune",
        ),
        (
            "Bagnino/a di salvataggio",
            "5.6.1.7.0",
            "93.29.10",
            C::FixedTerm,
            36,
            3,
            0,
            "Brevetto di assistente bagnanti in corso di validità.",
            (6_500, 8_000),
            "Lido",
        ),
    ]
};

/// A course the comuni promote: (title, EQF, qualification, hours, seats, fee in euro, funding,
/// CP2021 codes, mode, waiting-list limit).
type CourseTemplate = (
    &'static str,
    i32,
    &'static str,
    i32,
    i32,
    i64,
    &'static str,
    &'static [&'static str],
    pb::TrainingDeliveryMode,
    i32,
);

const COURSES: &[CourseTemplate] = {
    use pb::TrainingDeliveryMode as M;
    &[
        (
            "Operatore della ristorazione - preparazione pasti",
            3,
            "Operatore della ristorazione (qualifica regionale)",
            600,
            20,
            0,
            "FSE+ Sicilia 2021-2027",
            &["5.2.2.1", "5.2.2.3.2"],
            M::InPerson,
            0,
        ),
        (
            "Operatore socio-sanitario (OSS)",
            3,
            "Operatore socio-sanitario",
            1000,
            25,
            1_800,
            "",
            &["5.3.1.1.0"],
            M::Blended,
            30,
        ),
        (
            "Inglese per il turismo - livello B1",
            0,
            "",
            60,
            15,
            0,
            "Programma GOL (PNRR)",
            &["4.2.2.2.0", "3.4.1"],
            M::Online,
            0,
        ),
        (
            "Competenze digitali di base",
            2,
            "",
            40,
            20,
            0,
            "Programma GOL (PNRR)",
            &[],
            M::Online,
            0,
        ),
        (
            "Addetto alla contabilità e alle paghe",
            4,
            "Tecnico amministrativo-contabile",
            300,
            18,
            0,
            "FSE+ Sicilia 2021-2027",
            &["4.3.2.1.0", "3.3.1.2.1"],
            M::InPerson,
            10,
        ),
        (
            "Sicurezza nei cantieri edili (16 ore)",
            0,
            "",
            16,
            25,
            120,
            "",
            &["6.1"],
            M::InPerson,
            0,
        ),
        (
            "Conduzione di carrelli elevatori",
            0,
            "Abilitazione alla conduzione di carrelli elevatori",
            12,
            12,
            250,
            "",
            &["7.4.4.4.0"],
            M::InPerson,
            12,
        ),
        (
            "Sviluppo web front-end",
            5,
            "Tecnico superiore per lo sviluppo di applicazioni web",
            800,
            20,
            0,
            "ITS Academy (PNRR)",
            &["3.1.2.3.0", "2.7.1.1"],
            M::Blended,
            0,
        ),
        (
            "Potatura e cura dell'agrumeto",
            2,
            "",
            80,
            15,
            0,
            "CSR Sicilia 2023-2027",
            &["6.4.1.2.0", "8.3.1.1.0"],
            M::InPerson,
            0,
        ),
        (
            "Panificazione e pasticceria artigianale",
            3,
            "Operatore della trasformazione agroalimentare",
            400,
            14,
            0,
            "FSE+ Sicilia 2021-2027",
            &["6.5.1.2.1", "6.5.1.3.1"],
            M::InPerson,
            0,
        ),
    ]
};

const STREETS: [&str; 6] = [
    "Via Roma",
    "Corso Vittorio Emanuele",
    "Via Garibaldi",
    "Via Vittorio Veneto",
    "Piazza Municipio",
    "Via Libertà",
];
const SURNAMES: [&str; 8] = [
    "Amato",
    "Bruno",
    "Catalano",
    "D'Angelo",
    "Gallo",
    "Lo Presti",
    "Mancuso",
    "Sciortino",
];

/// A valid partita IVA for demo employer `n`: a made-up matricola, the Palermo office code (082)
/// and the check digit of the rules.
pub fn demo_partita_iva(n: usize) -> String {
    let base = format!("{:07}082", 1_000_000 + n % 9_000_000);
    let sum: u32 = base
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                d
            } else if d * 2 > 9 {
                d * 2 - 9
            } else {
                d * 2
            }
        })
        .sum();
    format!("{base}{}", (10 - sum % 10) % 10)
}

/// Offers a comune publishes: one, and one more for every 25,000 inhabitants (Palermo: 27).
fn offers_for(c: &Comune) -> usize {
    1 + (c.population_2011 / 25_000) as usize
}

/// Courses a comune promotes: one, and one more for every 60,000 inhabitants (Palermo: 11).
fn courses_for(c: &Comune) -> usize {
    1 + (c.population_2011 / 60_000) as usize
}

fn address(c: &Comune, n: usize) -> Address {
    Address {
        street: STREETS[n % STREETS.len()].to_owned(),
        house_number: format!("{}", 1 + n * 7 % 120),
        postal_code: c
            .postal_codes
            .get(n % c.postal_codes.len().max(1))
            .cloned()
            .unwrap_or_default(),
        istat_code: c.istat_code.clone(),
        locality: String::new(),
    }
}

fn day_str(d: NaiveDate) -> String {
    d.to_string()
}

fn job_offer(c: &Comune, ci: usize, k: usize, today: NaiveDate) -> pb::JobOffer {
    let (title, code, ateco, contract, hours, months, eqf, requirements, pay, kind) =
        JOBS[(ci * 3 + k) % JOBS.len()];
    let n = ci * 100 + k;
    let household = kind == "Famiglia";
    let (employer_name, tax_code) = if household {
        // Private households hire with the codice fiscale of the head of the family.
        let head = demo::citizen(5_000 + n);
        (format!("Famiglia {}", head.family_name), head.fiscal_code)
    } else if kind == "Comune" {
        (format!("Comune di {}", c.name), demo_partita_iva(n))
    } else {
        (
            format!("{kind} {} s.r.l.", SURNAMES[n % SURNAMES.len()]),
            demo_partita_iva(n),
        )
    };
    pb::JobOffer {
        istat_code: c.istat_code.clone(),
        title: title.to_owned(),
        description: format!(
            "{title} a {}. Sede di lavoro in comune; orario da concordare.",
            c.name
        ),
        profession_code: code.to_owned(),
        ateco_code: ateco.to_owned(),
        employer: Some(pb::Employer {
            name: employer_name,
            tax_code,
            anonymous: household,
        }),
        contract_type: contract as i32,
        weekly_hours: hours,
        duration_months: months,
        positions: 1 + (n % 3) as i32,
        application_deadline: day_str(today + Duration::days(7 + ((ci * 3 + k * 5) % 60) as i64)),
        requirements: requirements.to_owned(),
        min_eqf_level: eqf,
        work_address: Some(address(c, n)),
        annual_gross_pay_min: Some(Money { cents: pay.0 * 100 }),
        annual_gross_pay_max: Some(Money { cents: pay.1 * 100 }),
        contact_office: format!("Informagiovani {}", c.name),
        external_ref: format!("OFF-{}-{:03}", c.istat_code, k + 1),
        ..Default::default()
    }
}

fn training_course(c: &Comune, ci: usize, k: usize, today: NaiveDate) -> pb::TrainingCourse {
    let (title, eqf, qualification, hours, seats, fee, funding, codes, mode, waitlist) =
        COURSES[(ci + k * 3) % COURSES.len()];
    let n = ci * 100 + k;
    let start = today + Duration::days(21 + ((ci * 5 + k * 9) % 70) as i64);
    let days = i64::from((hours / 4).clamp(1, 300));
    pb::TrainingCourse {
        istat_code: c.istat_code.clone(),
        title: title.to_owned(),
        description: format!(
            "{title}: {hours} ore con stage finale. Sede e calendario comunicati agli iscritti."
        ),
        provider: Some(pb::TrainingProvider {
            name: format!("Ente di formazione {} {}", SURNAMES[n % SURNAMES.len()], c.name),
            tax_code: demo_partita_iva(500_000 + n),
            accreditation_code: format!("AR{:05}", 10_000 + n % 90_000),
        }),
        eqf_level: eqf,
        qualification: qualification.to_owned(),
        hours,
        seats,
        waitlist_limit: waitlist,
        start_date: day_str(start),
        end_date: day_str(start + Duration::days(days)),
        enrolment_deadline: day_str(start - Duration::days(3)),
        cost: Some(Money { cents: fee * 100 }),
        requirements: "Maggiore età; residenza o domicilio in Sicilia; per i corsi finanziati, stato di disoccupazione.".into(),
        delivery_mode: mode as i32,
        address: (mode != pb::TrainingDeliveryMode::Online).then(|| address(c, n + 1)),
        profession_codes: codes.iter().map(|s| (*s).to_owned()).collect(),
        funding_programme: funding.to_owned(),
        external_ref: format!("CRS-{}-{:02}", c.istat_code, k + 1),
        ..Default::default()
    }
}

fn invalid(what: &str, v: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("demo {what} refused by the rules: {v}"))
}

fn store_err(e: ServiceError) -> DbErr {
    match e {
        ServiceError::Database(db) => db,
        other => DbErr::Custom(other.to_string()),
    }
}

/// Seeds the demo data unless the database already has job offers. `now` anchors deadlines and
/// course dates in the weeks after it.
pub async fn seed(store: &Store, now: DateTime<Utc>) -> Result<Seeded, DbErr> {
    if job_offer::Entity::find().count(store.db()).await? > 0 {
        return Ok(Seeded::default());
    }
    let today = italian_day(now);
    let mut seeded = Seeded::default();
    let mut first_courses = Vec::new();
    let mut first_offers = Vec::new();
    let txn = store.db().begin().await?;
    for (ci, c) in comuni::all().iter().enumerate() {
        for k in 0..offers_for(c) {
            let o = validate_job_offer(&job_offer(c, ci, k, today), "job_offer", today)
                .map_err(|v| invalid("job offer", v))?;
            // Publication days spread over the last three weeks, so "newest first" means something.
            let published = now - Duration::hours(((ci * 7 + k * 13) % 500) as i64);
            let id = format!("job-{}-{:03}", c.istat_code, k + 1);
            crate::store::insert_offer(&txn, o, id.clone(), published)
                .await
                .map_err(store_err)?;
            if k == 0 {
                first_offers.push(id);
            }
            seeded.offers += 1;
        }
        for k in 0..courses_for(c) {
            let course =
                validate_course(&training_course(c, ci, k, today), "training_course", today)
                    .map_err(|v| invalid("training course", v))?;
            let id = format!("crs-{}-{:02}", c.istat_code, k + 1);
            crate::store::insert_course(&txn, course, id.clone(), now)
                .await
                .map_err(store_err)?;
            if k == 0 {
                first_courses.push(id);
            }
            seeded.courses += 1;
        }
    }
    txn.commit().await?;

    // Enrolments through the same path as a citizen's: Palermo's first course fills up and
    // opens its waiting list; every other comune's first course gets two enrolments.
    let enrol = |course: &str, citizen: usize, n: usize| {
        let c = demo::citizen(citizen);
        let req = NewEnrolment {
            training_course_id: course.to_owned(),
            fiscal_code: c.fiscal_code,
            contact_email: format!("{}.{}@example.it", c.given_name, c.family_name)
                .to_lowercase()
                .replace(' ', ""),
            contact_phone: String::new(),
        };
        (req, format!("enr-demo-{n:04}"))
    };
    let mut plan = Vec::new();
    let palermo = "crs-082053-01";
    for i in 0..24 {
        plan.push(enrol(palermo, i, plan.len() + 1));
    }
    for (ci, course) in first_courses.iter().enumerate() {
        if course != palermo {
            for j in 0..2 {
                plan.push(enrol(course, 100 + ci * 2 + j, plan.len() + 1));
            }
        }
    }
    // One transaction for all of them: a file database syncs once, not once per enrolment.
    let txn = store.db().begin().await?;
    for (req, id) in plan {
        match enrol_in(&txn, store.salt(), req, true, now, id).await {
            Ok(_) => seeded.enrolments += 1,
            Err(e) => tracing::warn!(error = %e, "demo enrolment skipped"),
        }
    }

    // Applications to the first offers of forty comuni, one reviewed in each few.
    for (n, offer) in first_offers.iter().enumerate().take(40) {
        for j in 0..(1 + n % 3) {
            let c = demo::citizen(300 + n * 3 + j);
            let req = NewApplication {
                job_offer_id: offer.clone(),
                fiscal_code: c.fiscal_code,
                message: "Buongiorno, invio la mia candidatura. Sono disponibile da subito.".into(),
                cv: None,
                contact_email: format!("{}.{}@example.it", c.given_name, c.family_name)
                    .to_lowercase()
                    .replace(' ', ""),
                contact_phone: format!("+39 333 {:07}", 1_000_000 + n * 10 + j),
            };
            let id = format!("app-demo-{:04}", n * 3 + j + 1);
            if let Err(e) = apply_in(&txn, req, true, now, id.clone()).await {
                tracing::warn!(error = %e, "demo application skipped");
                continue;
            }
            seeded.applications += 1;
            if j == 1 {
                review_in(
                    &txn,
                    store.salt(),
                    &id,
                    pb::JobApplicationStatus::UnderReview,
                    "Candidatura inoltrata al datore di lavoro.",
                    now,
                )
                .await
                .map_err(store_err)?;
            }
        }
    }
    txn.commit().await?;
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_records_pass_the_rules() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        for (ci, c) in comuni::all().iter().enumerate() {
            for k in 0..offers_for(c) {
                let o = job_offer(c, ci, k, today);
                validate_job_offer(&o, "job_offer", today)
                    .unwrap_or_else(|v| panic!("{} offer {k}: {v}", c.name));
            }
            for k in 0..courses_for(c) {
                let course = training_course(c, ci, k, today);
                validate_course(&course, "training_course", today)
                    .unwrap_or_else(|v| panic!("{} course {k}: {v}", c.name));
            }
        }
        let palermo = comuni::by_istat("082053").unwrap();
        assert_eq!((offers_for(palermo), courses_for(palermo)), (27, 11));
    }

    #[test]
    fn demo_partite_iva_are_valid() {
        for n in [0, 1, 42, 500_123, 8_999_999] {
            let p = demo_partita_iva(n);
            assert_eq!(
                patto_service_kit::ids::validate_partita_iva(&p),
                Ok(()),
                "{p}"
            );
        }
    }
}
