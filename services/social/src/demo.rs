//! Deterministic demo data for the 82 comuni: three benefit schemes in every comune (contributo
//! straordinario, assistenza domiciliare, assegno di maternità) with the 2025 reference values of
//! [`crate::domain::scheme::defaults`], ISEE declarations of the shared demo citizens with
//! consistent households, and applications at every stage of the procedure, driven through the same
//! store operations as real requests. Palermo also runs a complete graduatoria: ranked, approved,
//! granted within its budget and denied beyond it. Seeded once, into an empty database, in one
//! transaction, so restarts keep what users did.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use patto_proto::social::v1 as pb;
use patto_service_kit::comuni::{self, Comune};
use patto_service_kit::demo::{self, DemoCitizen};
use patto_service_kit::error::ServiceError;
use patto_service_kit::ids;
use sea_orm::{DbErr, EntityTrait, PaginatorTrait, TransactionTrait};

use crate::domain::application::{DraftContent, NewAttachment};
use crate::domain::isee::{self, Declaration, Member};
use crate::domain::italian_day;
use crate::domain::payments::PaymentOutcome;
use crate::domain::scheme::{NewScheme, SchemeRules, defaults};
use crate::store::{Actor, Store, ops, scheme};

/// ISTAT code of Palermo, which gets a full graduatoria.
pub const PALERMO: &str = "082053";
/// Applicants to Palermo's contributo straordinario.
const PALERMO_APPLICANTS: usize = 24;
/// Places Palermo's contributo budget funds.
const PALERMO_FUNDED_PLACES: i64 = 10;

/// Id of a demo scheme: `sch-<istat>-<slug>`, stable across runs.
pub fn scheme_id(istat_code: &str, slug: &str) -> String {
    format!("sch-{istat_code}-{slug}")
}

const MONTHS: &[u8] = b"ABCDEHLMPRST";

/// Birth date and sex encoded in a valid codice fiscale (demo people are born 1930–2029).
fn birth_of(fiscal_code: &str) -> Option<(NaiveDate, bool)> {
    let b = fiscal_code.as_bytes();
    let yy: i32 = fiscal_code.get(6..8)?.parse().ok()?;
    let month = MONTHS.iter().position(|m| Some(m) == b.get(8))? as u32 + 1;
    let dd: u32 = fiscal_code.get(9..11)?.parse().ok()?;
    let female = dd > 40;
    let year = if yy < 30 { 2000 + yy } else { 1900 + yy };
    NaiveDate::from_ymd_opt(year, month, if female { dd - 40 } else { dd }).map(|d| (d, female))
}

fn years_before(day: NaiveDate, years: i32, extra_days: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(day.year() - years, day.month(), day.day().min(28))
        .unwrap_or(day)
        .checked_sub_signed(Duration::days(extra_days))
        .unwrap_or(day)
}

fn person(family: &str, given: &str, birth: NaiveDate, female: bool, c: &Comune) -> Member {
    Member {
        fiscal_code: ids::build_fiscal_code(family, given, birth, female, &c.cadastral_code),
        birth_date: Some(birth),
        disability: 0,
    }
}

/// A demo household and its ISEE.
struct Household {
    declaration: Declaration,
    /// Who applies for the benefit of the household's kind.
    applicant: String,
    elderly: bool,
    newborn: bool,
}

fn household(
    n: usize,
    who: &DemoCitizen,
    c: &Comune,
    dsu_date: NaiveDate,
    newborn: bool,
) -> Household {
    let (birth, female) = birth_of(&who.fiscal_code).unwrap_or((dsu_date, false));
    let age = isee::age_on(birth, dsu_date);
    let elderly = age >= defaults::HOME_CARE_MEMBER_AGE;
    let newborn = newborn && age < 45;
    let mut members = vec![Member {
        fiscal_code: who.fiscal_code.clone(),
        birth_date: Some(birth),
        disability: 0,
    }];
    let mut applicant = who.fiscal_code.clone();
    let family = who.family_name;
    let size = if newborn { 3 } else { 1 + n % 4 };
    if size >= 2 {
        // A spouse a little younger (or of the same generation for the elderly).
        let spouse_birth = if elderly {
            years_before(birth, -2, 0)
        } else {
            years_before(birth, -3, 40)
        };
        let spouse_birth = spouse_birth.min(years_before(dsu_date, 20, 0));
        let (given, spouse_female) = if female {
            ("Paolo", false)
        } else {
            ("Anna", true)
        };
        let mut spouse = person(family, given, spouse_birth, spouse_female, c);
        if elderly && n.is_multiple_of(3) {
            spouse.disability = pb::DisabilityLevel::Grave as i32;
        }
        if newborn && spouse_female {
            // The assegno di maternità is the mother's.
            applicant = spouse.fiscal_code.clone();
        }
        members.push(spouse);
    }
    const CHILDREN: [(&str, bool); 4] = [
        ("Giulia", true),
        ("Marco", false),
        ("Sofia", true),
        ("Luca", false),
    ];
    for j in 2..size {
        let (given, f) = CHILDREN[(n + j) % CHILDREN.len()];
        let child_birth = if newborn && j == size - 1 {
            dsu_date
                .checked_sub_signed(Duration::days(20))
                .unwrap_or(dsu_date)
        } else if elderly {
            years_before(dsu_date, 30 + j as i32, 0)
        } else {
            // Children younger than their parents by twenty years at least.
            years_before(dsu_date, 2 + 4 * j as i32 + (n % 5) as i32, 0)
                .max(years_before(birth, -20, 0))
                .min(dsu_date)
        };
        members.push(person(family, given, child_birth, f, c));
    }
    let size = members.len() as i32;
    let scale = isee::base_scale(size).unwrap_or(1000);
    // ISEE between € 1.500 and € 15.500; ISP up to € 10.000; ISR what makes them add up.
    let target = 150_000 + (n as i64 * 37_337) % 1_400_000;
    let mut isp = (n as i64 * 9_973) % 1_000_000;
    let wanted_ise = target * i64::from(scale) / 1000;
    if isee::ise_cents(0, isp).unwrap_or(0) > wanted_ise {
        isp = 0;
    }
    let isr = wanted_ise - isee::ise_cents(0, isp).unwrap_or(0);
    let ise = isee::ise_cents(isr, isp).unwrap_or(0);
    let kind = if n % 9 == 4 {
        pb::IseeKind::Corrente
    } else {
        pb::IseeKind::Ordinario
    };
    Household {
        declaration: Declaration {
            fiscal_code: who.fiscal_code.clone(),
            dsu_protocol: format!("INPS-ISEE-{}-{:08}A-00", dsu_date.year(), 1000 + n),
            kind,
            isee_cents: isee::isee_from_ise(ise, scale).unwrap_or(0),
            ise_cents: ise,
            isr_cents: isr,
            isp_cents: isp,
            scale_thousandths: scale,
            household_size: size,
            members,
            dsu_date,
            valid_from: dsu_date,
            valid_until: isee::legal_valid_until(kind, dsu_date),
            discrepancies: n % 23 == 7,
        },
        applicant,
        elderly,
        newborn,
    }
}

fn period(from: NaiveDate, to: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(from.year(), 1, 1).unwrap_or(from),
        NaiveDate::from_ymd_opt(to.year(), 12, 31).unwrap_or(to),
    )
}

fn contributo_amount(c: &Comune) -> i64 {
    match c.population_2011 {
        p if c.istat_code == PALERMO || p >= 100_000 => 60_000,
        p if p >= 20_000 => 50_000,
        p if p >= 5_000 => 40_000,
        _ => 30_000,
    }
}

fn schemes(c: &Comune, start: NaiveDate, end: NaiveDate) -> Vec<(String, NewScheme)> {
    let year = end.year();
    let places = i64::from((c.population_2011 / 2_000).clamp(5, 400));
    let contributo = contributo_amount(c);
    let base = |code: String, name: &str, kind: pb::BenefitKind| NewScheme {
        istat_code: c.istat_code.clone(),
        code,
        name: name.to_owned(),
        description: String::new(),
        kind: kind as i32,
        legal_basis: String::new(),
        status: pb::BenefitSchemeStatus::Open as i32,
        period_start: start,
        period_end: end,
        rules: SchemeRules::default(),
        budget_cents: 0,
        payer: String::new(),
        fully_online: true,
    };
    let mut out = vec![
        (
            scheme_id(&c.istat_code, "contributo"),
            NewScheme {
                description: format!(
                    "Contributo una tantum ai nuclei residenti a {} in condizione di disagio economico. \
                     Graduatoria per ISEE crescente fino a esaurimento dei fondi.",
                    c.name
                ),
                legal_basis: "Regolamento comunale per la concessione di contributi economici".into(),
                rules: SchemeRules {
                    isee_threshold_cents: defaults::ADI_ISEE_THRESHOLD_CENTS,
                    requires_residence: true,
                    amount_cents: contributo,
                    frequency: pb::BenefitFrequency::OneOff as i32,
                    payment_count: 1,
                    ranking_criterion: pb::RankingCriterion::IseeAscending as i32,
                    required_documents: vec!["documento di identità".into()],
                    ..Default::default()
                },
                budget_cents: if c.istat_code == PALERMO {
                    contributo * PALERMO_FUNDED_PLACES
                } else {
                    contributo * places
                },
                ..base(
                    format!("CONTRIB-STRAORD-{year}"),
                    "Contributo economico straordinario",
                    pb::BenefitKind::EconomicSupport,
                )
            },
        ),
        (
            scheme_id(&c.istat_code, "sad"),
            NewScheme {
                description: "Buono di servizio mensile per l'assistenza domiciliare (SAD) a persone anziane \
                              o non autosufficienti. Graduatoria per punteggio sociale."
                    .into(),
                legal_basis: "L. 328/2000 art. 22; regolamento distrettuale SAD".into(),
                rules: SchemeRules {
                    isee_threshold_cents: defaults::DEDICATA_A_TE_ISEE_THRESHOLD_CENTS,
                    accepted_isee_kinds: vec![
                        pb::IseeKind::Ordinario as i32,
                        pb::IseeKind::SocioSanitario as i32,
                        pb::IseeKind::Corrente as i32,
                    ],
                    requires_member_aged: defaults::HOME_CARE_MEMBER_AGE,
                    requires_residence: true,
                    amount_cents: 30_000,
                    frequency: pb::BenefitFrequency::Monthly as i32,
                    payment_count: 12,
                    ranking_criterion: pb::RankingCriterion::Score as i32,
                    required_documents: vec!["certificazione medica".into()],
                    ..Default::default()
                },
                budget_cents: 30_000 * 12 * (places / 5).max(2),
                ..base(
                    format!("SAD-{year}"),
                    "Assistenza domiciliare anziani (SAD)",
                    pb::BenefitKind::HomeCare,
                )
            },
        ),
        (
            scheme_id(&c.istat_code, "maternita"),
            NewScheme {
                description: "Assegno alle madri senza altra tutela previdenziale per le nascite, gli \
                              affidamenti e le adozioni: concesso dal Comune, pagato dall'INPS."
                    .into(),
                legal_basis: defaults::MATERNITY_LEGAL_BASIS.into(),
                rules: SchemeRules {
                    isee_threshold_cents: defaults::MATERNITY_ISEE_THRESHOLD_CENTS,
                    requires_minor: true,
                    requires_residence: true,
                    amount_cents: defaults::MATERNITY_MONTHLY_CENTS,
                    frequency: pb::BenefitFrequency::Monthly as i32,
                    payment_count: defaults::MATERNITY_PAYMENTS,
                    required_documents: vec!["documento di identità".into()],
                    ..Default::default()
                },
                payer: "INPS".into(),
                ..base(
                    format!("MATERNITA-{year}"),
                    "Assegno di maternità dei comuni",
                    pb::BenefitKind::MaternityAllowance,
                )
            },
        ),
    ];
    if c.istat_code == PALERMO {
        out.push((
            scheme_id(PALERMO, "affitti"),
            NewScheme {
                description:
                    "Contributo integrativo per il pagamento dei canoni di locazione (Fondo \
                              nazionale L. 431/1998 art. 11). Bando chiuso: domande in istruttoria."
                        .into(),
                legal_basis: "L. 431/1998 art. 11".into(),
                status: pb::BenefitSchemeStatus::Closed as i32,
                rules: SchemeRules {
                    isee_threshold_cents: defaults::DEDICATA_A_TE_ISEE_THRESHOLD_CENTS,
                    requires_residence: true,
                    amount_cents: 120_000,
                    frequency: pb::BenefitFrequency::OneOff as i32,
                    payment_count: 1,
                    ranking_criterion: pb::RankingCriterion::IseeAscending as i32,
                    required_documents: vec!["contratto di locazione registrato".into()],
                    ..Default::default()
                },
                budget_cents: 120_000 * 500,
                ..base(
                    format!("FONDO-AFFITTI-{year}"),
                    "Fondo affitti",
                    pb::BenefitKind::RentSupport,
                )
            },
        ));
        out.push((
            scheme_id(PALERMO, "nido"),
            NewScheme {
                description: "Riduzione della retta degli asili nido comunali per fasce ISEE (in preparazione)."
                    .into(),
                status: pb::BenefitSchemeStatus::Draft as i32,
                rules: SchemeRules {
                    isee_threshold_cents: 3_000_000,
                    requires_minor: true,
                    amount_cents: 90_000,
                    frequency: pb::BenefitFrequency::Yearly as i32,
                    payment_count: 1,
                    ..Default::default()
                },
                ..base(
                    format!("NIDO-{year}"),
                    "Riduzione rette asili nido",
                    pb::BenefitKind::NurseryFeeReduction,
                )
            },
        ));
    }
    out
}

fn document(kind: &str, n: usize) -> NewAttachment {
    NewAttachment {
        name: format!("{}.pdf", kind.replace(' ', "-")),
        sha256: format!("{:064x}", (n as u128 + 1) * 0x9e37_79b9_7f4a_7c15),
        size_bytes: 80_000 + (n as i64 % 50) * 1_000,
        media_type: "application/pdf".into(),
        document_type: kind.into(),
    }
}

/// How far a demo application goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Draft,
    Submitted,
    UnderReview,
    IntegrationRequested,
    Evaluated,
    Decided,
    Paid,
}

/// Seeds the demo data unless the database already has schemes. `now` anchors the timeline:
/// applications were filed in the month before it. Returns the number of applications created.
pub async fn seed(store: &Store, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let db = store.db();
    if scheme::Entity::find().count(db).await? > 0 {
        return Ok(0);
    }
    let txn = db.begin().await?;
    let created = seed_in(&txn, store.salt(), now)
        .await
        .map_err(|e| match e {
            ServiceError::Database(db) => db,
            other => DbErr::Custom(format!("demo data: {other}")),
        })?;
    txn.commit().await?;
    Ok(created)
}

async fn seed_in(
    c: &sea_orm::DatabaseTransaction,
    salt: &str,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    // Applications were filed about ten weeks ago, so decisions and first payments are in the past.
    let start_of_story = now - Duration::days(75);
    let (start, end) = period(italian_day(start_of_story), italian_day(now));
    let operator = Actor {
        role: pb::BenefitActorRole::Operator,
        id: String::new(),
    };
    let mut applications = 0;

    for (ci, comune) in comuni::all().iter().enumerate() {
        for (id, s) in schemes(comune, start, end) {
            ops::create_scheme(c, s, id, start_of_story).await?;
        }
        let applicants = if comune.istat_code == PALERMO {
            PALERMO_APPLICANTS
        } else {
            2
        };
        for k in 0..applicants {
            let n = ci + comuni::all().len() * k;
            let who = demo::citizen(n);
            let base = start_of_story + Duration::hours((n % 48) as i64);
            let day = |days: i64| base + Duration::days(days);
            let dsu_date = italian_day(day(0))
                .checked_sub_signed(Duration::days((n % 10) as i64))
                .unwrap_or(start)
                .max(start);
            let maternity = k == 1 && comune.istat_code != PALERMO;
            let home = household(n, &who, comune, dsu_date, maternity && n.is_multiple_of(2));
            let isee_id = format!("isee-{:05}", n);
            ops::register_isee(
                c,
                home.declaration.clone(),
                isee_id.clone(),
                pb::IseeSource::Citizen,
                "",
                day(0),
            )
            .await?;
            let (slug, stage) = if k == 0 || comune.istat_code == PALERMO {
                let stage = if comune.istat_code == PALERMO {
                    Stage::Evaluated
                } else {
                    [
                        Stage::Draft,
                        Stage::Submitted,
                        Stage::UnderReview,
                        Stage::Evaluated,
                        Stage::IntegrationRequested,
                        Stage::Decided,
                    ][ci % 6]
                };
                ("contributo", stage)
            } else if home.elderly {
                (
                    "sad",
                    if ci % 2 == 0 {
                        Stage::UnderReview
                    } else {
                        Stage::Evaluated
                    },
                )
            } else if home.newborn {
                ("maternita", Stage::Paid)
            } else {
                // No benefit fits this household: it keeps its ISEE on file only.
                continue;
            };
            let scheme = scheme_id(&comune.istat_code, slug);
            let documents = match slug {
                "sad" => vec![document("certificazione medica", n)],
                _ => vec![document("documento di identità", n)],
            };
            let applicant = home.applicant.clone();
            let citizen = Actor {
                role: pb::BenefitActorRole::Citizen,
                id: applicant.clone(),
            };
            let app_id = format!("app-{:05}", n);
            ops::create_draft(
                c,
                DraftContent {
                    scheme_id: scheme.clone(),
                    applicant: applicant.clone(),
                    beneficiary: String::new(),
                    isee_declaration_id: isee_id.clone(),
                    iban: iban_for(n),
                    contact: format!("{}.{}@example.it", who.given_name, who.family_name)
                        .to_ascii_lowercase()
                        .replace(' ', ""),
                    statement: match slug {
                        "sad" => "Chiedo il buono di servizio per l'assistenza domiciliare.".into(),
                        "maternita" => {
                            "Chiedo l'assegno per la nascita di mia figlia/mio figlio.".into()
                        }
                        _ => {
                            "Chiedo un contributo per far fronte alle spese essenziali del nucleo."
                                .into()
                        }
                    },
                    attachments: documents,
                },
                app_id.clone(),
                &citizen,
                day(0),
                ok,
            )
            .await?;
            applications += 1;
            if stage == Stage::Draft {
                continue;
            }
            // A household whose ISEE does not pass stays a draft, as it would online.
            if let Err(e) = ops::submit(c, salt, &app_id, &citizen, true, day(1), ok).await {
                tracing::debug!(error = %e, "demo application left as a draft");
                continue;
            }
            if stage == Stage::Submitted {
                continue;
            }
            let caseworker = demo::citizen(5_000 + ci).fiscal_code;
            ops::assign(c, &app_id, &caseworker, &operator, day(4), ok).await?;
            if stage == Stage::UnderReview {
                continue;
            }
            if stage == Stage::IntegrationRequested {
                ops::request_integration(
                    c,
                    &app_id,
                    "Allegare copia del contratto di locazione o dichiarazione di ospitalità.",
                    &operator,
                    day(6),
                    ok,
                )
                .await?;
                continue;
            }
            let residence = pb::EligibilityCheck {
                criterion: pb::EligibilityCriterion::Residence as i32,
                passed: true,
                detail: format!("residente a {} (ANPR)", comune.name),
            };
            let score = if slug == "sad" {
                40 + (n % 60) as i32
            } else {
                0
            };
            let evaluated = ops::evaluate(
                c,
                &app_id,
                &[residence],
                score,
                "istruttoria completata",
                &operator,
                day(8),
                ok,
            )
            .await?;
            if stage == Stage::Evaluated {
                continue;
            }
            let admissible =
                evaluated.app.status == pb::BenefitApplicationStatus::Admissible as i32;
            if slug == "contributo" && admissible {
                // Ranked: the decision waits for the graduatoria.
                continue;
            }
            ops::decide(
                c,
                &app_id,
                admissible,
                if admissible {
                    "Requisiti verificati: concesso."
                } else {
                    "Requisiti non soddisfatti: si veda l'esito dell'istruttoria."
                },
                &format!("Determina n. {}/{}", 100 + n, end.year()),
                0,
                &operator,
                day(12),
                ok,
            )
            .await?;
            if stage == Stage::Paid && admissible {
                // The first instalment falls due 30 days after the decision (day 42).
                ops::record_payment(
                    c,
                    &app_id,
                    1,
                    PaymentOutcome {
                        status: pb::BenefitPaymentStatus::Paid,
                        paid_date: Some(italian_day(day(43))),
                        payment_reference: format!("INPS disposizione {:06}", 700_000 + n),
                        note: String::new(),
                    },
                    day(43),
                    ok,
                )
                .await?;
            }
        }
    }

    // Palermo's graduatoria: ranked, approved, the funded places granted, the others denied.
    let scheme = scheme_id(PALERMO, "contributo");
    let ranked = ops::compute_ranking(c, &scheme, start_of_story + Duration::days(14), ok).await?;
    ops::approve_ranking(
        c,
        &scheme,
        &format!(
            "Determina dirigenziale n. 321 del {}",
            italian_day(start_of_story + Duration::days(15))
        ),
        start_of_story + Duration::days(15),
        ok,
    )
    .await?;
    for entry in ranked.entries {
        let (grant, motivation) = if entry.funded {
            (true, "Utilmente collocato in graduatoria: concesso.")
        } else {
            (
                false,
                "Non finanziabile per esaurimento dei fondi disponibili.",
            )
        };
        ops::decide(
            c,
            &entry.application_id,
            grant,
            motivation,
            "Determina dirigenziale n. 322",
            0,
            &operator,
            start_of_story + Duration::days(16),
            ok,
        )
        .await?;
    }
    Ok(applications)
}

/// The demo acts as the comune itself: every change is allowed.
fn ok<T>(_: &T) -> Result<(), ServiceError> {
    Ok(())
}

/// A valid Italian IBAN for demo citizen `n` (check digits computed).
fn iban_for(n: usize) -> String {
    let bban = format!("X0542811101{:012}", 100_000 + n);
    // Check digits: BBAN + "IT00" as digits, 98 - (number mod 97).
    let rearranged = format!("{bban}IT00");
    let mut remainder: u32 = 0;
    for c in rearranged.bytes() {
        let value = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    format!("IT{:02}{bban}", 98 - remainder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::application::canonical_iban;

    #[test]
    fn demo_people_are_consistent() {
        for n in 0..300 {
            let iban = iban_for(n);
            assert_eq!(canonical_iban(&iban).as_deref(), Ok(iban.as_str()), "{n}");
            let who = demo::citizen(n);
            assert!(birth_of(&who.fiscal_code).is_some(), "{}", who.fiscal_code);
        }
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let c = comuni::by_istat(PALERMO).unwrap();
        for n in 0..200 {
            let h = household(n, &demo::citizen(n), c, d("2025-05-10"), n % 2 == 0);
            let decl = &h.declaration;
            assert_eq!(decl.members.len() as i32, decl.household_size);
            assert!(decl.concerns(&h.applicant));
            for m in &decl.members {
                let (birth, _) = birth_of(&m.fiscal_code).unwrap();
                assert_eq!(
                    Some(birth),
                    m.birth_date,
                    "birth date matches the fiscal code"
                );
                assert!(ids::canonical_fiscal_code(&m.fiscal_code).is_ok());
            }
            // The figures are those INPS would attest: ISE and ISEE recompute exactly.
            assert_eq!(
                isee::ise_cents(decl.isr_cents, decl.isp_cents),
                Some(decl.ise_cents)
            );
            assert_eq!(
                isee::isee_from_ise(decl.ise_cents, decl.scale_thousandths),
                Some(decl.isee_cents)
            );
            if h.newborn {
                assert!(decl.members.iter().any(|m| {
                    m.birth_date
                        .is_some_and(|b| isee::age_on(b, d("2025-05-10")) < 1)
                }));
            }
        }
        assert_eq!(birth_of("RSSMRA80A01G273M"), Some((d("1980-01-01"), false)));
    }
}
