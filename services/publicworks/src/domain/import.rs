//! A whole public work as an import row carries it: descriptive data plus state, history, contract
//! and SAL entries, "taken as given and checked for consistency". The checks are the ones the
//! single-purpose RPCs apply one step at a time (state machine, award, SAL, certificate, payment),
//! run over the whole story at once, so an import cannot store what the RPCs would have refused.

use chrono::NaiveDate;
use patto_proto::publicworks::v1 as pb;
use patto_proto::publicworks::v1::ProjectState as State;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::{ids, procurement};

use super::project::{ProjectData, validate_project};
use super::sal::{self, NewSal, Sal, SalTerms};
use super::state::{self, Readiness};
use super::{
    MAX_AMOUNT_CENTS, MAX_CIGS, MAX_NAME_LEN, MAX_SAL, MAX_TEXT_LEN, calendar_day, fits, state_name,
};

/// The contractor of a work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contractor {
    /// Business name.
    pub name: String,
    /// Partita IVA, check digit verified.
    pub vat_number: String,
}

/// Validates a contractor; `prefix` is its path in the request (e.g. `contractor`).
pub fn validate_contractor(
    c: &pb::ProjectContractor,
    prefix: &str,
    v: &mut Violations,
) -> Option<Contractor> {
    let name = c.name.trim();
    let mut ok = true;
    if name.is_empty() || !fits(name, MAX_NAME_LEN) {
        v.add(
            format!("{prefix}.name"),
            format!("must be the business name, 1 to {MAX_NAME_LEN} characters"),
        );
        ok = false;
    }
    if let Err(e) = ids::validate_partita_iva(&c.vat_number) {
        v.add(
            format!("{prefix}.vat_number"),
            format!("is not a valid partita IVA: {e}"),
        );
        ok = false;
    }
    ok.then(|| Contractor {
        name: name.to_owned(),
        vat_number: c.vat_number.trim().to_owned(),
    })
}

/// One entry of a work's state history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// State entered.
    pub state: State,
    /// Day entered.
    pub date: NaiveDate,
    /// Note.
    pub note: String,
}

/// A whole work from an import row, consistent in all its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedWork {
    /// Descriptive data.
    pub data: ProjectData,
    /// Current state.
    pub state: State,
    /// Incompiuta flag.
    pub incompiuta: bool,
    /// Why it is incompiuta (empty when it is not).
    pub incompiuta_note: String,
    /// CIGs, canonical, without duplicates.
    pub cigs: Vec<String>,
    /// Contractor.
    pub contractor: Option<Contractor>,
    /// Contract amount in cents.
    pub contract_amount_cents: Option<i64>,
    /// SAL entries by number, due days computed with the comune's terms.
    pub sal: Vec<Sal>,
    /// State history, oldest first; empty when the row carried none.
    pub history: Vec<HistoryEntry>,
}

/// Validates an import row's work; `prefix` is its path (`project`), `terms` the comune's SAL
/// terms and `today` the Italian day.
pub fn validate_imported(
    p: &pb::Project,
    prefix: &str,
    terms: SalTerms,
    today: NaiveDate,
) -> Result<ImportedWork, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");
    let data = match validate_project(p, prefix, today) {
        Ok(d) => Some(d),
        Err(errors) => {
            for e in errors.as_slice() {
                v.add(e.field.clone(), e.description.clone());
            }
            None
        }
    };

    // A row without a state is a work just entered in the programme.
    let state = match State::try_from(p.state) {
        Ok(State::Unspecified) => State::Programmato,
        Ok(s) => s,
        Err(_) => {
            v.add(f("state"), "must be one of the ProjectState values");
            State::Programmato
        }
    };

    let history = validate_history(&p.history, state, &f("history"), today, &mut v);

    let awarded = state as i32 >= State::Affidamento as i32;
    let mut cigs: Vec<String> = Vec::new();
    v.check(
        p.cigs.len() <= MAX_CIGS,
        f("cigs"),
        format!("at most {MAX_CIGS} CIGs"),
    );
    for (i, cig) in p.cigs.iter().enumerate().take(MAX_CIGS) {
        match procurement::parse_cig(cig) {
            Ok(c) if cigs.contains(&c.code) => {
                v.add(format!("{prefix}.cigs[{i}]"), "is listed twice")
            }
            Ok(c) => cigs.push(c.code),
            Err(e) => v.add(
                format!("{prefix}.cigs[{i}]"),
                format!("is not a valid CIG: {e}"),
            ),
        }
    }
    let contractor = p
        .contractor
        .as_ref()
        .and_then(|c| validate_contractor(c, &f("contractor"), &mut v));
    let contract_amount_cents = p.contract_amount.as_ref().map(|m| m.cents);
    if !awarded {
        v.check(
            p.cigs.is_empty() && p.contractor.is_none() && p.contract_amount.is_none(),
            f("state"),
            format!(
                "a work in {} has no contract yet: CIGs, contractor and contract amount come from AFFIDAMENTO on",
                state_name(state)
            ),
        );
    }
    if p.contractor.is_some() || p.contract_amount.is_some() {
        let budget = data.as_ref().map_or(MAX_AMOUNT_CENTS, |d| d.budget_cents);
        v.check(
            contract_amount_cents.is_some_and(|c| c > 0 && c <= budget),
            f("contract_amount.cents"),
            "must be set with the contractor, more than zero and at most the budget",
        );
        v.check(
            p.contractor.is_some(),
            f("contractor"),
            "must be set with the contract amount",
        );
    }
    let readiness = Readiness {
        has_cup: data.as_ref().is_none_or(|d| d.cup.is_some()),
        has_cig: !p.cigs.is_empty(),
        has_contractor: p.contractor.is_some(),
        incompiuta: false,
    };
    if let Some(missing) = state::missing_for(state, &readiness) {
        v.add(
            f("state"),
            format!("a work in {} needs {missing}", state_name(state)),
        );
    }

    let incompiuta_note = p.incompiuta_note.trim();
    if p.incompiuta {
        v.check(
            state::allows_incompiuta(state),
            f("incompiuta"),
            format!(
                "only works handed over and not collaudato can be incompiute; this one is {}",
                state_name(state)
            ),
        );
        v.check(
            !incompiuta_note.is_empty() && fits(incompiuta_note, MAX_TEXT_LEN),
            f("incompiuta_note"),
            format!("must say why the work is incompiuta, 1 to {MAX_TEXT_LEN} characters"),
        );
    }

    let works_started = history
        .iter()
        .find(|h| h.state == State::InEsecuzione)
        .map(|h| h.date);
    let budget = data.as_ref().map_or(MAX_AMOUNT_CENTS, |d| d.budget_cents);
    let sal = validate_sal_entries(
        &p.sal_entries,
        state,
        works_started,
        budget,
        terms,
        &f("sal_entries"),
        today,
        &mut v,
    );

    match data {
        Some(data) if v.is_empty() => Ok(ImportedWork {
            data,
            state,
            incompiuta: p.incompiuta,
            incompiuta_note: if p.incompiuta {
                incompiuta_note.to_owned()
            } else {
                String::new()
            },
            cigs,
            contractor,
            contract_amount_cents,
            sal,
            history,
        }),
        _ => Err(v),
    }
}

fn validate_history(
    entries: &[pb::ProjectStateChange],
    state: State,
    prefix: &str,
    today: NaiveDate,
    v: &mut Violations,
) -> Vec<HistoryEntry> {
    let mut out: Vec<HistoryEntry> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let at = |name: &str| format!("{prefix}[{i}].{name}");
        let entered = match State::try_from(e.state) {
            Ok(State::Unspecified) | Err(_) => {
                v.add(at("state"), "must be one of the ProjectState values");
                continue;
            }
            Ok(s) => s,
        };
        match out.last() {
            None => v.check(
                entered == State::Programmato,
                at("state"),
                "a work's history starts with PROGRAMMATO",
            ),
            Some(prev) => v.check(
                state::is_legal(prev.state, entered),
                at("state"),
                format!(
                    "a work cannot move from {} to {}",
                    state_name(prev.state),
                    state_name(entered)
                ),
            ),
        }
        let Some(date) = calendar_day(&e.date, &at("date"), v) else {
            continue;
        };
        v.check(date <= today, at("date"), "must not be in the future");
        if let Some(prev) = out.last() {
            v.check(
                date >= prev.date,
                at("date"),
                "must not be before the previous change",
            );
        }
        let note = e.note.trim();
        v.check(
            fits(note, MAX_TEXT_LEN),
            at("note"),
            format!("must be at most {MAX_TEXT_LEN} characters"),
        );
        v.check(
            entered != State::Sospeso || !note.is_empty(),
            at("note"),
            "must give the reason of the suspension",
        );
        out.push(HistoryEntry {
            state: entered,
            date,
            note: note.to_owned(),
        });
    }
    if let Some(last) = out.last() {
        v.check(
            last.state == state,
            prefix,
            format!(
                "must end in the work's state {}, not {}",
                state_name(state),
                state_name(last.state)
            ),
        );
    }
    out
}

/// Re-files the violations of a SAL rule under the import row's paths, renaming the rule's fields
/// to the `SalEntry` fields they stand for.
fn refile(
    result: Result<(), ServiceError>,
    prefix: &str,
    rename: &[(&str, &str)],
    fallback: &str,
    v: &mut Violations,
) {
    match result {
        Ok(()) => {}
        Err(ServiceError::InvalidArgument(errors)) => {
            for e in errors.as_slice() {
                let field = rename
                    .iter()
                    .find(|(from, _)| *from == e.field)
                    .map_or(e.field.as_str(), |(_, to)| to);
                v.add(format!("{prefix}.{field}"), e.description.clone());
            }
        }
        Err(other) => v.add(format!("{prefix}.{fallback}"), other.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn validate_sal_entries(
    entries: &[pb::SalEntry],
    state: State,
    works_started: Option<NaiveDate>,
    budget_cents: i64,
    terms: SalTerms,
    prefix: &str,
    today: NaiveDate,
    v: &mut Violations,
) -> Vec<Sal> {
    if entries.is_empty() {
        return Vec::new();
    }
    if !(state::allows_sal(state) || state == State::Collaudato) {
        v.add(
            prefix,
            format!(
                "a work in {} has no SAL yet: they come from IN_ESECUZIONE on",
                state_name(state)
            ),
        );
        return Vec::new();
    }
    if entries.len() > MAX_SAL {
        v.add(prefix, format!("at most {MAX_SAL} SAL"));
        return Vec::new();
    }
    let mut out: Vec<Sal> = Vec::with_capacity(entries.len());
    let mut accounted = 0i64;
    for (i, e) in entries.iter().enumerate() {
        let at = format!("{prefix}[{i}]");
        let number = i as i32 + 1;
        v.check(
            e.number == number || e.number == 0,
            format!("{at}.number"),
            format!("SAL are numbered from 1 in order: this one is {number} (or leave 0)"),
        );
        let Some(date) = calendar_day(&e.date, &format!("{at}.date"), v) else {
            continue;
        };
        let new = NewSal {
            date,
            progress_basis_points: e.progress_basis_points,
            amount_cents: e.amount.as_ref().map_or(0, |m| m.cents),
        };
        refile(
            sal::check_new_sal(
                &new,
                out.last(),
                works_started,
                accounted,
                budget_cents,
                today,
            ),
            &at,
            &[],
            "date",
            v,
        );
        accounted = accounted.saturating_add(new.amount_cents);
        let mut entry = Sal {
            number,
            date,
            progress_basis_points: new.progress_basis_points,
            amount_cents: new.amount_cents,
            certificate_due: terms.certificate_due(date),
            certificate: None,
            payment_due: None,
            payment: None,
        };
        let certificate_amount = e.certificate_amount.as_ref().map_or(0, |m| m.cents);
        if !e.certificate_issued_date.is_empty() {
            if let Some(issued) = calendar_day(
                &e.certificate_issued_date,
                &format!("{at}.certificate_issued_date"),
                v,
            ) {
                refile(
                    sal::check_certificate(&entry, issued, certificate_amount, today),
                    &at,
                    &[
                        ("issued_date", "certificate_issued_date"),
                        ("amount.cents", "certificate_amount.cents"),
                    ],
                    "certificate_issued_date",
                    v,
                );
                entry.certificate = Some((issued, certificate_amount));
                entry.payment_due = Some(terms.payment_due(issued));
            }
        } else {
            v.check(
                e.certificate_amount.is_none(),
                format!("{at}.certificate_issued_date"),
                "must be set with the certificate amount",
            );
        }
        let paid_amount = e.paid_amount.as_ref().map_or(0, |m| m.cents);
        if !e.paid_date.is_empty() {
            if let Some(paid) = calendar_day(&e.paid_date, &format!("{at}.paid_date"), v) {
                refile(
                    sal::check_payment(&entry, paid, paid_amount, today),
                    &at,
                    &[("amount.cents", "paid_amount.cents")],
                    "paid_date",
                    v,
                );
                entry.payment = Some((paid, paid_amount));
            }
        } else {
            v.check(
                e.paid_amount.is_none(),
                format!("{at}.paid_date"),
                "must be set with the amount paid",
            );
        }
        out.push(entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::Money;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()
    }

    fn money(cents: i64) -> Option<Money> {
        Some(Money { cents })
    }

    fn change(state: State, date: &str, note: &str) -> pb::ProjectStateChange {
        pb::ProjectStateChange {
            state: state as i32,
            date: date.into(),
            note: note.into(),
            recorded_time: None,
        }
    }

    /// A work in execution with its whole story: history, award and two SAL.
    fn running() -> pb::Project {
        pb::Project {
            istat_code: "082053".into(),
            cup: "J87G22000360002".into(),
            title: "Rifacimento di via Maqueda".into(),
            category: pb::ProjectCategory::Roads as i32,
            state: State::InEsecuzione as i32,
            budget: money(100_000_000),
            cigs: vec!["8874674ca7".into()],
            contractor: Some(pb::ProjectContractor {
                name: "Costruzioni Esempio s.r.l.".into(),
                vat_number: "00743110157".into(),
            }),
            contract_amount: money(80_000_000),
            history: vec![
                change(State::Programmato, "2024-01-10", ""),
                change(State::Progettazione, "2024-02-01", ""),
                change(State::Affidamento, "2024-06-01", ""),
                change(State::Consegna, "2024-09-01", ""),
                change(State::InEsecuzione, "2024-09-15", ""),
            ],
            sal_entries: vec![
                pb::SalEntry {
                    number: 1,
                    date: "2024-12-01".into(),
                    progress_basis_points: 3000,
                    amount: money(24_000_000),
                    certificate_issued_date: "2024-12-05".into(),
                    certificate_amount: money(23_000_000),
                    paid_date: "2025-01-02".into(),
                    paid_amount: money(23_000_000),
                    ..Default::default()
                },
                pb::SalEntry {
                    number: 2,
                    date: "2025-04-01".into(),
                    progress_basis_points: 6000,
                    amount: money(24_000_000),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_consistent_story_passes() {
        let w = validate_imported(&running(), "project", SalTerms::default(), today()).unwrap();
        assert_eq!(w.cigs, ["8874674CA7"]);
        assert_eq!(w.history.len(), 5);
        assert_eq!(w.sal.len(), 2);
        assert_eq!(
            w.sal[0].payment_due,
            NaiveDate::from_ymd_opt(2025, 1, 4),
            "30 days after the certificate"
        );
        assert_eq!(
            w.sal[1].certificate_due,
            NaiveDate::from_ymd_opt(2025, 4, 8).unwrap()
        );
        // A bare programme row: no state means PROGRAMMATO.
        let bare = pb::Project {
            istat_code: "082001".into(),
            title: "Nuovo campo sportivo".into(),
            category: pb::ProjectCategory::Sport as i32,
            budget: money(30_000_000),
            ..Default::default()
        };
        let w = validate_imported(&bare, "project", SalTerms::default(), today()).unwrap();
        assert_eq!((w.state, w.history.len()), (State::Programmato, 0));
    }

    #[test]
    fn inconsistencies_name_their_field() {
        type Edit = fn(&mut pb::Project);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "bad cig",
                |p| p.cigs.push("8874674CA8".into()),
                "project.cigs[1]",
            ),
            (
                "twice",
                |p| p.cigs.push("8874674CA7".into()),
                "project.cigs[1]",
            ),
            ("no cig", |p| p.cigs.clear(), "project.state"),
            ("no cup", |p| p.cup.clear(), "project.state"),
            (
                "bad vat",
                |p| p.contractor.as_mut().unwrap().vat_number = "00743110158".into(),
                "project.contractor.vat_number",
            ),
            (
                "no amount",
                |p| p.contract_amount = None,
                "project.contract_amount.cents",
            ),
            (
                "award too early",
                |p| {
                    p.state = State::Progettazione as i32;
                    p.history.truncate(2);
                    p.sal_entries.clear();
                },
                "project.state",
            ),
            (
                "history skips",
                |p| {
                    p.history.remove(3);
                },
                "project.history[3].state",
            ),
            (
                "history does not start at the start",
                |p| {
                    p.history.remove(0);
                },
                "project.history[0].state",
            ),
            (
                "history ends elsewhere",
                |p| p.state = State::Sospeso as i32,
                "project.history",
            ),
            (
                "history goes back in time",
                |p| p.history[2].date = "2024-01-01".into(),
                "project.history[2].date",
            ),
            (
                "suspension without reason",
                |p| {
                    p.history.push(change(State::Sospeso, "2025-01-01", " "));
                    p.state = State::Sospeso as i32;
                },
                "project.history[5].note",
            ),
            (
                "sal number",
                |p| p.sal_entries[1].number = 3,
                "project.sal_entries[1].number",
            ),
            (
                "sal before the start",
                |p| p.sal_entries[0].date = "2024-09-01".into(),
                "project.sal_entries[0].date",
            ),
            (
                "sal progress back",
                |p| p.sal_entries[1].progress_basis_points = 2000,
                "project.sal_entries[1].progress_basis_points",
            ),
            (
                "certificate over the sal",
                |p| p.sal_entries[0].certificate_amount = money(25_000_000),
                "project.sal_entries[0].certificate_amount.cents",
            ),
            (
                "paid before certified",
                |p| p.sal_entries[0].paid_date = "2024-12-04".into(),
                "project.sal_entries[0].paid_date",
            ),
            (
                "paid without certificate",
                |p| {
                    p.sal_entries[1].paid_date = "2025-05-01".into();
                    p.sal_entries[1].paid_amount = money(1);
                },
                "project.sal_entries[1].paid_date",
            ),
            (
                "sal in programme",
                |p| {
                    p.state = State::Affidamento as i32;
                    p.history.truncate(3);
                },
                "project.sal_entries",
            ),
            (
                "sal over budget",
                |p| p.sal_entries[1].amount = money(80_000_000),
                "project.sal_entries[1].amount.cents",
            ),
            (
                "incompiuta without note",
                |p| p.incompiuta = true,
                "project.incompiuta_note",
            ),
            ("bad state", |p| p.state = 42, "project.state"),
            ("bad title", |p| p.title.clear(), "project.title"),
        ];
        for (case, edit, field) in cases {
            let mut p = running();
            edit(&mut p);
            let v = validate_imported(&p, "project", SalTerms::default(), today()).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
    }

    #[test]
    fn contractors() {
        let mut v = Violations::new();
        let c = validate_contractor(
            &pb::ProjectContractor {
                name: " Edil Sud s.r.l. ".into(),
                vat_number: "00743110157".into(),
            },
            "contractor",
            &mut v,
        );
        assert_eq!(c.unwrap().name, "Edil Sud s.r.l.");
        assert!(
            validate_contractor(&pb::ProjectContractor::default(), "contractor", &mut v).is_none()
        );
        let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["contractor.name", "contractor.vat_number"]);
    }
}
