//! The building permit workflow as a pure state machine (DOMAIN.md §7, DPR 380/2001 as received in
//! Sicily by L.R. 16/2016):
//!
//! ```text
//! BOZZA → PROTOCOLLATA → ISTRUTTORIA ⇄ INTEGRAZIONI → (CONFERENZA_SERVIZI) → PROPOSTA
//!       → RILASCIATO | PREAVVISO_DINIEGO → RILASCIATO | DINIEGO
//!       | SILENZIO_ASSENSO (PdC, deadline passed, no vincolo)
//!       → INIZIO_LAVORI → FINE_LAVORI → SCA;          any undecided state → ARCHIVIATA
//! ```
//!
//! Which moves a permit may make depends on its kind: a CIL or CILA takes effect on filing and has
//! no review; a SCIA lets works start on filing while the comune may stop them within its control
//! term; a SCIA alternativa makes works wait for its term; a PdC is reviewed, proposed and decided,
//! and silence past the decision deadline grants it (silenzio-assenso) unless a vincolo excludes it.
//! [`apply`] decides a move requested by a person, [`settle`] the moves the clock makes on its own.
//! Both compute the legal deadlines from the terms the permit was filed under.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use patto_proto::building::v1 as pb;
use patto_service_kit::time::to_timestamp;
use serde::{Deserialize, Serialize};

use super::terms::PermitTerms;
use super::{kind_name, status_name};

/// Kind of permit.
pub type Kind = pb::BuildingPermitKind;
/// Status of a permit.
pub type Status = pb::BuildingPermitStatus;
/// Decision on a permit.
pub type Decision = pb::PermitDecisionOutcome;

/// Statuses in which the comune holds a PdC and its silence counts towards silenzio-assenso. Not
/// INTEGRAZIONI: while the applicant owes documents the clock is stopped, and it restarts when they
/// arrive.
pub const SILENT: [Status; 5] = [
    Status::Protocollata,
    Status::Istruttoria,
    Status::ConferenzaServizi,
    Status::Proposta,
    Status::PreavvisoDiniego,
];

/// Statuses of an application not yet decided, which the applicant may still withdraw.
pub const WITHDRAWABLE: [Status; 7] = [
    Status::Bozza,
    Status::Protocollata,
    Status::Istruttoria,
    Status::Integrazioni,
    Status::ConferenzaServizi,
    Status::Proposta,
    Status::PreavvisoDiniego,
];

/// Statuses of a SCIA under the comune's control, from which the works may start or be stopped.
const SCIA_OPEN: [Status; 4] = [
    Status::Protocollata,
    Status::Istruttoria,
    Status::Integrazioni,
    Status::ConferenzaServizi,
];

/// The legal deadlines of a permit; `None` where one does not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// Name the responsabile del procedimento by.
    pub assignment_due: Option<DateTime<Utc>>,
    /// Close the review by.
    pub review_due: Option<DateTime<Utc>>,
    /// Ask for the PdC integration by.
    pub integration_request_due: Option<DateTime<Utc>>,
    /// Send the requested integration by.
    pub integration_reply_due: Option<DateTime<Utc>>,
    /// Decide by.
    pub decision_due: Option<DateTime<Utc>>,
    /// Silence becomes assent at.
    pub silenzio_assenso: Option<DateTime<Utc>>,
    /// Send observations against a preavviso di diniego by.
    pub observations_due: Option<DateTime<Utc>>,
    /// End of the comune's control on a SCIA.
    pub control_due: Option<DateTime<Utc>>,
    /// SCIA alternativa works allowed from.
    pub works_allowed: Option<DateTime<Utc>>,
    /// Start the works by.
    pub works_start_due: Option<DateTime<Utc>>,
    /// End the works by.
    pub works_end_due: Option<DateTime<Utc>>,
    /// File the SCA agibilità by.
    pub agibility_due: Option<DateTime<Utc>>,
}

impl Deadlines {
    /// The wire form.
    pub fn to_pb(&self) -> pb::BuildingPermitDeadlines {
        let t = |d: Option<DateTime<Utc>>| d.map(to_timestamp);
        pb::BuildingPermitDeadlines {
            assignment_due_time: t(self.assignment_due),
            review_due_time: t(self.review_due),
            integration_request_due_time: t(self.integration_request_due),
            integration_reply_due_time: t(self.integration_reply_due),
            decision_due_time: t(self.decision_due),
            silenzio_assenso_time: t(self.silenzio_assenso),
            observations_due_time: t(self.observations_due),
            control_due_time: t(self.control_due),
            works_allowed_time: t(self.works_allowed),
            works_start_due_time: t(self.works_start_due),
            works_end_due_time: t(self.works_end_due),
            agibility_due_time: t(self.agibility_due),
        }
    }
}

/// What the workflow needs to know of a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermitFacts {
    /// Kind of title.
    pub kind: Kind,
    /// Stored status.
    pub status: Status,
    /// Whether the area has any vincolo.
    pub has_constraints: bool,
    /// Terms the permit was filed under (for a draft: those in force now).
    pub terms: PermitTerms,
    /// Deadlines computed so far.
    pub deadlines: Deadlines,
    /// When it was filed.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Integration requests made so far.
    pub integration_requests: i32,
    /// Whether observations against a preavviso were sent.
    pub observations_submitted: bool,
    /// When it was decided (expressly or by silence).
    pub decision_at: Option<DateTime<Utc>>,
    /// Day the works started.
    pub works_start_date: Option<NaiveDate>,
    /// Whether the silenzio-assenso was attested.
    pub attested: bool,
}

impl PermitFacts {
    /// Whether silenzio-assenso cannot apply: not a PdC, or a vincolo on the area (art. 20 c. 8).
    pub fn silenzio_assenso_excluded(&self) -> bool {
        self.kind != Kind::Pdc || self.has_constraints
    }
}

/// A move requested by the applicant or by the comune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// File the draft (applicant).
    Submit,
    /// Withdraw the application (applicant).
    Withdraw,
    /// Name the responsabile and open the review (operator).
    Assign,
    /// Ask for documents (operator).
    RequestIntegration,
    /// Send the documents (applicant).
    SubmitIntegration,
    /// Convene a conferenza di servizi (operator).
    Convene,
    /// Close the review with a proposal (operator).
    Propose,
    /// Decide (operator).
    Decide(Decision),
    /// Send observations against a preavviso di diniego (applicant).
    SubmitObservations,
    /// Attest the silenzio-assenso (operator).
    AttestSilenzioAssenso,
    /// Communicate the start of works on a day (applicant).
    StartWorks(NaiveDate),
    /// Communicate the end of works on a day (applicant).
    EndWorks(NaiveDate),
    /// File the SCA agibilità (applicant).
    FileAgibility,
}

impl Action {
    /// The status the action leads to from `current` (actions that change nothing keep it).
    pub fn target(&self, current: Status) -> Status {
        match self {
            Self::Submit => Status::Protocollata,
            Self::Withdraw => Status::Archiviata,
            Self::Assign | Self::SubmitIntegration => Status::Istruttoria,
            Self::RequestIntegration => Status::Integrazioni,
            Self::Convene => Status::ConferenzaServizi,
            Self::Propose => Status::Proposta,
            Self::Decide(Decision::Grant) => Status::Rilasciato,
            Self::Decide(Decision::PreavvisoDiniego) => Status::PreavvisoDiniego,
            Self::Decide(Decision::Deny) => Status::Diniego,
            Self::Decide(Decision::Unspecified) => current,
            Self::SubmitObservations | Self::AttestSilenzioAssenso => current,
            Self::StartWorks(_) => Status::InizioLavori,
            Self::EndWorks(_) => Status::FineLavori,
            Self::FileAgibility => Status::Sca,
        }
    }
}

/// The outcome of a permitted move: the new status and deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Status after the move.
    pub to: Status,
    /// Deadlines after the move.
    pub deadlines: Deadlines,
}

/// A move the clock made: the status reached, the moment the deadline passed, the new deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Automatic {
    /// Status reached.
    pub to: Status,
    /// When the deadline passed.
    pub at: DateTime<Utc>,
    /// Deadlines after the move.
    pub deadlines: Deadlines,
}

/// Why a move is refused: names the kind, the current and the target status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Kind of the permit.
    pub kind: Kind,
    /// Current status.
    pub from: Status,
    /// Status the move would reach.
    pub to: Status,
    /// Why not, and what to do instead.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from == self.to {
            write!(
                f,
                "{} permit in status {}: {}",
                kind_name(self.kind),
                status_name(self.from),
                self.reason
            )
        } else {
            write!(
                f,
                "{} permit cannot go from {} to {}: {}",
                kind_name(self.kind),
                status_name(self.from),
                status_name(self.to),
                self.reason
            )
        }
    }
}

impl std::error::Error for Refusal {}

fn days(n: i32) -> Duration {
    Duration::days(i64::from(n))
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or_default()
}

fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "unset".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Decides whether `action` may happen to a permit described by `f` at `now`, and what follows.
/// The caller must [`settle`] the permit first, so a deadline already passed is taken into account.
pub fn apply(f: &PermitFacts, action: &Action, now: DateTime<Utc>) -> Result<Step, Refusal> {
    let to = action.target(f.status);
    let refuse = |reason: String| Refusal {
        kind: f.kind,
        from: f.status,
        to,
        reason,
    };
    let from_any = |allowed: &[Status], why: &str| -> Result<(), Refusal> {
        if allowed.contains(&f.status) {
            Ok(())
        } else {
            let names: Vec<&str> = allowed.iter().map(|s| status_name(*s)).collect();
            Err(refuse(format!("{why} (allowed from {})", names.join(", "))))
        }
    };
    let reviewed = matches!(f.kind, Kind::Scia | Kind::SciaAlternativa | Kind::Pdc);
    let no_review = || {
        refuse(format!(
            "a {} takes effect on filing and has no review",
            kind_name(f.kind)
        ))
    };
    let t = &f.terms;
    let excluded = f.silenzio_assenso_excluded();
    let mut d = f.deadlines;

    match *action {
        Action::Submit => {
            from_any(&[Status::Bozza], "only a draft can be filed")?;
            d = Deadlines::default();
            match f.kind {
                Kind::Cil | Kind::Cila | Kind::Unspecified => {}
                Kind::Scia => {
                    d.assignment_due = Some(now + days(t.assignment_days));
                    d.control_due = Some(now + days(t.scia_control_days));
                }
                Kind::SciaAlternativa => {
                    d.assignment_due = Some(now + days(t.assignment_days));
                    let allowed = now + days(t.scia_alternativa_wait_days);
                    d.works_allowed = Some(allowed);
                    // The comune checks a SCIA alternativa within the same waiting term.
                    d.control_due = Some(allowed);
                }
                Kind::Pdc => {
                    d.assignment_due = Some(now + days(t.assignment_days));
                    let review = now + days(t.effective_review_days());
                    d.review_due = Some(review);
                    d.integration_request_due = Some(now + days(t.integration_request_days));
                    // No proposal by the review deadline still leaves the decision term to run.
                    d.silenzio_assenso =
                        (!excluded).then(|| review + days(t.effective_decision_days()));
                }
            }
        }
        Action::Withdraw => {
            from_any(
                &WITHDRAWABLE,
                "only a draft or an application not yet decided can be withdrawn",
            )?;
            d.silenzio_assenso = None;
            d.integration_reply_due = None;
        }
        Action::Assign => {
            if !reviewed {
                return Err(no_review());
            }
            from_any(
                &[Status::Protocollata],
                "the review opens once, after filing",
            )?;
        }
        Action::RequestIntegration => {
            if !reviewed {
                return Err(no_review());
            }
            from_any(
                &[Status::Istruttoria],
                "documents are requested during the review",
            )?;
            if f.kind == Kind::Pdc {
                if f.integration_requests >= 1 {
                    return Err(refuse(
                        "a PdC admits one integration request only (art. 20 c. 5 DPR 380/2001)"
                            .into(),
                    ));
                }
                if d.integration_request_due.is_some_and(|due| now > due) {
                    return Err(refuse(format!(
                        "the term to ask for an integration ended at {}",
                        fmt_time(d.integration_request_due)
                    )));
                }
            } else if d.control_due.is_some_and(|due| now > due) {
                return Err(refuse(format!(
                    "the control term ended at {}",
                    fmt_time(d.control_due)
                )));
            }
            d.integration_reply_due =
                (t.integration_reply_days > 0).then(|| now + days(t.integration_reply_days));
            // The clock stops while the applicant owes documents.
            d.silenzio_assenso = None;
        }
        Action::SubmitIntegration => {
            from_any(&[Status::Integrazioni], "no integration was requested")?;
            d.integration_reply_due = None;
            if f.kind == Kind::Pdc {
                // The review restarts in full when the integration arrives (art. 20 c. 5).
                let review = now + days(t.effective_review_days());
                d.review_due = Some(review);
                d.silenzio_assenso =
                    (!excluded).then(|| review + days(t.effective_decision_days()));
            }
        }
        Action::Convene => {
            if !reviewed {
                return Err(no_review());
            }
            from_any(
                &[Status::Istruttoria],
                "a conferenza di servizi is convened during the review",
            )?;
        }
        Action::Propose => {
            if f.kind != Kind::Pdc {
                return Err(refuse(format!(
                    "only a PdC is closed with a proposal; a {} is stopped with a diniego or left to run",
                    kind_name(f.kind)
                )));
            }
            from_any(
                &[Status::Istruttoria, Status::ConferenzaServizi],
                "the proposal closes the review",
            )?;
            let decision = now + days(t.effective_decision_days());
            d.decision_due = Some(decision);
            d.silenzio_assenso = (!excluded).then_some(decision);
        }
        Action::Decide(Decision::Unspecified) => {
            return Err(refuse(
                "the decision outcome must be GRANT, PREAVVISO_DINIEGO or DENY".into(),
            ));
        }
        Action::Decide(outcome) => match f.kind {
            Kind::Pdc => match outcome {
                Decision::Grant => {
                    from_any(
                        &[Status::Proposta, Status::PreavvisoDiniego],
                        "the decision follows the proposal",
                    )?;
                    d.silenzio_assenso = None;
                    d.works_start_due = Some(now + days(t.works_start_days));
                }
                Decision::PreavvisoDiniego => {
                    from_any(&[Status::Proposta], "the preavviso follows the proposal")?;
                    let observations = now + days(t.observations_days);
                    d.observations_due = Some(observations);
                    // The decision term restarts once the observations' term is over (art. 10-bis).
                    let decision = observations + days(t.effective_decision_days());
                    d.decision_due = Some(decision);
                    d.silenzio_assenso = (!excluded).then_some(decision);
                }
                _ => {
                    from_any(
                        &[Status::PreavvisoDiniego],
                        "a PdC is refused after a preavviso di diniego (art. 10-bis L. 241/1990)",
                    )?;
                    if !f.observations_submitted && d.observations_due.is_some_and(|due| now <= due)
                    {
                        return Err(refuse(format!(
                            "the applicant may send observations until {}",
                            fmt_time(d.observations_due)
                        )));
                    }
                    d.silenzio_assenso = None;
                }
            },
            Kind::Scia | Kind::SciaAlternativa => {
                if outcome != Decision::Deny {
                    return Err(refuse(format!(
                        "a {} is not granted: it takes effect by itself; the comune may only stop it (DENY) within its control term",
                        kind_name(f.kind)
                    )));
                }
                let mut open = SCIA_OPEN.to_vec();
                if f.kind == Kind::Scia {
                    open.push(Status::InizioLavori);
                }
                from_any(&open, "the works are stopped while the control term runs")?;
                if d.control_due.is_some_and(|due| now > due) {
                    return Err(refuse(format!(
                        "the control term ended at {}",
                        fmt_time(d.control_due)
                    )));
                }
            }
            Kind::Cil | Kind::Cila | Kind::Unspecified => return Err(no_review()),
        },
        Action::SubmitObservations => {
            if f.status != Status::PreavvisoDiniego {
                return Err(refuse(
                    "observations answer a preavviso di diniego, and there is none".into(),
                ));
            }
            if f.observations_submitted {
                return Err(refuse("observations were already sent".into()));
            }
            if d.observations_due.is_some_and(|due| now > due) {
                return Err(refuse(format!(
                    "the term for observations ended at {}",
                    fmt_time(d.observations_due)
                )));
            }
            // Observations in hand, the decision term restarts from their arrival.
            let decision = now + days(t.effective_decision_days());
            d.decision_due = Some(decision);
            d.silenzio_assenso = (!excluded).then_some(decision);
        }
        Action::AttestSilenzioAssenso => {
            if f.status != Status::SilenzioAssenso {
                return Err(refuse(
                    "only a PdC granted by silenzio-assenso can be attested".into(),
                ));
            }
            if f.attested {
                return Err(refuse("the silenzio-assenso was already attested".into()));
            }
        }
        Action::StartWorks(day) => {
            let earliest = match f.kind {
                Kind::Cil | Kind::Cila | Kind::Unspecified => {
                    from_any(
                        &[Status::Protocollata],
                        "works start once the title is filed",
                    )?;
                    f.submitted_at
                }
                Kind::Scia => {
                    from_any(&SCIA_OPEN, "works start once the SCIA is filed")?;
                    f.submitted_at
                }
                Kind::SciaAlternativa => {
                    from_any(&SCIA_OPEN, "works start once the SCIA alternativa is filed")?;
                    if d.works_allowed.is_some_and(|allowed| now < allowed) {
                        return Err(refuse(format!(
                            "works may start only from {}, when the waiting term ends",
                            fmt_time(d.works_allowed)
                        )));
                    }
                    d.works_allowed
                }
                Kind::Pdc => {
                    from_any(
                        &[Status::Rilasciato, Status::SilenzioAssenso],
                        "works start once the permit is granted",
                    )?;
                    if let Some(due) = d.works_start_due
                        && day > due.date_naive()
                    {
                        return Err(refuse(format!(
                            "the permit lapsed: works had to start by {}",
                            due.date_naive()
                        )));
                    }
                    f.decision_at
                }
            };
            if let Some(earliest) = earliest
                && day < earliest.date_naive()
            {
                return Err(refuse(format!(
                    "works cannot start before {}",
                    earliest.date_naive()
                )));
            }
            if day > now.date_naive() {
                return Err(refuse(format!(
                    "the start of works is communicated once it happens; {day} is in the future"
                )));
            }
            d.works_end_due = Some(start_of(day) + days(t.works_end_days));
        }
        Action::EndWorks(day) => {
            from_any(&[Status::InizioLavori], "works end after they started")?;
            if let Some(start) = f.works_start_date
                && day < start
            {
                return Err(refuse(format!("works started on {start}, after {day}")));
            }
            if day > now.date_naive() {
                return Err(refuse(format!(
                    "the end of works is communicated once it happens; {day} is in the future"
                )));
            }
            d.agibility_due = Some(start_of(day) + days(t.agibility_days));
        }
        Action::FileAgibility => {
            if f.kind == Kind::Cil {
                return Err(refuse(
                    "temporary works under a CIL need no agibilità".into(),
                ));
            }
            from_any(&[Status::FineLavori], "the SCA follows the end of works")?;
        }
    }
    Ok(Step { to, deadlines: d })
}

/// The move the clock makes on its own once a deadline passes, if any is due at `now`:
/// silenzio-assenso on a PdC left without decision, or the archiving of an application whose
/// requested integration never came.
pub fn settle(f: &PermitFacts, now: DateTime<Utc>) -> Option<Automatic> {
    let (to, at) = pending_automatic(f)?;
    if at > now {
        return None;
    }
    let mut d = f.deadlines;
    match to {
        Status::SilenzioAssenso => {
            d.works_start_due = Some(at + days(f.terms.works_start_days));
        }
        _ => {
            d.integration_reply_due = Some(at);
            d.silenzio_assenso = None;
        }
    }
    Some(Automatic {
        to,
        at,
        deadlines: d,
    })
}

/// When the clock will next move the permit by itself, and to which status.
pub fn pending_automatic(f: &PermitFacts) -> Option<(Status, DateTime<Utc>)> {
    if f.kind == Kind::Pdc && !f.silenzio_assenso_excluded() && SILENT.contains(&f.status) {
        return f
            .deadlines
            .silenzio_assenso
            .map(|t| (Status::SilenzioAssenso, t));
    }
    if f.status == Status::Integrazioni {
        return f
            .deadlines
            .integration_reply_due
            .map(|t| (Status::Archiviata, t));
    }
    None
}

/// The earliest deadline the comune's operators must meet in the permit's current status
/// (assignment, review, control, decision or observations): their to-do list is ordered by it.
pub fn operator_due(f: &PermitFacts) -> Option<DateTime<Utc>> {
    let d = &f.deadlines;
    let candidates = match f.status {
        Status::Protocollata => vec![d.assignment_due, d.review_due, d.control_due],
        Status::Istruttoria | Status::ConferenzaServizi => vec![d.review_due, d.control_due],
        Status::Proposta => vec![d.decision_due],
        Status::PreavvisoDiniego => vec![d.observations_due, d.decision_due],
        _ => Vec::new(),
    };
    candidates.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::terms::DEFAULT_TERMS;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap() // 2026-01-01T00:00Z
    }

    fn draft(kind: Kind) -> PermitFacts {
        PermitFacts {
            kind,
            status: Status::Bozza,
            has_constraints: false,
            terms: DEFAULT_TERMS,
            deadlines: Deadlines::default(),
            submitted_at: None,
            integration_requests: 0,
            observations_submitted: false,
            decision_at: None,
            works_start_date: None,
            attested: false,
        }
    }

    /// Applies `action` at `at` and updates the facts as the store does.
    fn step(f: &mut PermitFacts, action: Action, at: DateTime<Utc>) -> Result<(), Refusal> {
        if let Some(auto) = settle(f, at) {
            f.status = auto.to;
            f.deadlines = auto.deadlines;
            if auto.to == Status::SilenzioAssenso {
                f.decision_at = Some(auto.at);
            }
        }
        let s = apply(f, &action, at)?;
        match action {
            Action::Submit => f.submitted_at = Some(at),
            Action::RequestIntegration => f.integration_requests += 1,
            Action::SubmitObservations => f.observations_submitted = true,
            Action::Decide(Decision::Grant | Decision::Deny) => f.decision_at = Some(at),
            Action::StartWorks(day) => f.works_start_date = Some(day),
            Action::AttestSilenzioAssenso => f.attested = true,
            _ => {}
        }
        f.status = s.to;
        f.deadlines = s.deadlines;
        Ok(())
    }

    fn day(n: i64) -> DateTime<Utc> {
        t0() + Duration::days(n)
    }

    fn date(n: i64) -> NaiveDate {
        day(n).date_naive()
    }

    /// A kind, the moves made (with the day of each), and where they lead.
    type Path<'a> = (Kind, &'a [(Action, i64)], Status);

    #[test]
    fn legal_paths_per_kind() {
        use Action::*;
        let cases: &[Path<'_>] = &[
            (
                Kind::Cil,
                &[
                    (Submit, 0),
                    (StartWorks(date(1)), 1),
                    (EndWorks(date(20)), 20),
                ],
                Status::FineLavori,
            ),
            (
                Kind::Cila,
                &[
                    (Submit, 0),
                    (StartWorks(date(0)), 0),
                    (EndWorks(date(90)), 90),
                    (FileAgibility, 95),
                ],
                Status::Sca,
            ),
            (
                Kind::Scia,
                &[
                    (Submit, 0),
                    (Assign, 3),
                    (StartWorks(date(5)), 5),
                    (Decide(Decision::Deny), 20),
                ],
                Status::Diniego,
            ),
            (
                Kind::Scia,
                &[
                    (Submit, 0),
                    (Assign, 3),
                    (RequestIntegration, 10),
                    (SubmitIntegration, 15),
                    (StartWorks(date(16)), 16),
                ],
                Status::InizioLavori,
            ),
            (
                Kind::SciaAlternativa,
                &[
                    (Submit, 0),
                    (StartWorks(date(31)), 31),
                    (EndWorks(date(200)), 200),
                    (FileAgibility, 210),
                ],
                Status::Sca,
            ),
            (
                Kind::Pdc,
                &[
                    (Submit, 0),
                    (Assign, 5),
                    (RequestIntegration, 20),
                    (SubmitIntegration, 40),
                    (Convene, 50),
                    (Propose, 80),
                    (Decide(Decision::Grant), 90),
                    (StartWorks(date(100)), 100),
                    (EndWorks(date(500)), 500),
                    (FileAgibility, 510),
                ],
                Status::Sca,
            ),
            (
                Kind::Pdc,
                &[
                    (Submit, 0),
                    (Assign, 5),
                    (Propose, 50),
                    (Decide(Decision::PreavvisoDiniego), 60),
                    (SubmitObservations, 65),
                    (Decide(Decision::Deny), 66),
                ],
                Status::Diniego,
            ),
            (
                Kind::Pdc,
                &[
                    (Submit, 0),
                    (Assign, 5),
                    (Propose, 50),
                    (Decide(Decision::PreavvisoDiniego), 60),
                    (Decide(Decision::Grant), 62),
                ],
                Status::Rilasciato,
            ),
            (
                Kind::Pdc,
                &[(Submit, 0), (Assign, 1), (Withdraw, 10)],
                Status::Archiviata,
            ),
            (Kind::Cila, &[(Withdraw, 0)], Status::Archiviata),
        ];
        for (kind, actions, end) in cases {
            let mut f = draft(*kind);
            for (action, at) in *actions {
                step(&mut f, *action, day(*at))
                    .unwrap_or_else(|r| panic!("{kind:?} {action:?} at day {at}: {r}"));
            }
            assert_eq!(f.status, *end, "{kind:?} {actions:?}");
        }
    }

    #[test]
    fn illegal_moves_name_both_statuses() {
        use Action::*;
        // (kind, legal prefix, refused action, day, text the message must contain)
        let cases: &[(Kind, &[Action], Action, i64, &str)] = &[
            (
                Kind::Pdc,
                &[Submit],
                Decide(Decision::Grant),
                5,
                "PDC permit cannot go from PROTOCOLLATA to RILASCIATO",
            ),
            (Kind::Pdc, &[], Assign, 0, "from BOZZA to ISTRUTTORIA"),
            (
                Kind::Pdc,
                &[Submit, Assign],
                Decide(Decision::Deny),
                5,
                "from ISTRUTTORIA to DINIEGO",
            ),
            (
                Kind::Pdc,
                &[Submit, Assign],
                StartWorks(date(5)),
                5,
                "from ISTRUTTORIA to INIZIO_LAVORI",
            ),
            (
                Kind::Pdc,
                &[Submit, Assign, Propose, Decide(Decision::Grant)],
                Withdraw,
                5,
                "from RILASCIATO to ARCHIVIATA",
            ),
            (
                Kind::Pdc,
                &[Submit],
                Submit,
                5,
                "in status PROTOCOLLATA: only a draft can be filed",
            ),
            (
                Kind::Cila,
                &[Submit],
                Assign,
                5,
                "CILA permit cannot go from PROTOCOLLATA to ISTRUTTORIA: a CILA takes effect on filing",
            ),
            (
                Kind::Cila,
                &[Submit],
                Decide(Decision::Grant),
                5,
                "from PROTOCOLLATA to RILASCIATO",
            ),
            (
                Kind::Scia,
                &[Submit, Assign],
                Propose,
                5,
                "SCIA permit cannot go from ISTRUTTORIA to PROPOSTA",
            ),
            (
                Kind::Scia,
                &[Submit],
                Decide(Decision::Grant),
                5,
                "from PROTOCOLLATA to RILASCIATO",
            ),
            (
                Kind::Scia,
                &[Submit],
                Decide(Decision::Deny),
                31,
                "control term ended",
            ),
            (
                Kind::SciaAlternativa,
                &[Submit],
                StartWorks(date(10)),
                10,
                "from PROTOCOLLATA to INIZIO_LAVORI: works may start only from",
            ),
            (
                Kind::Cil,
                &[Submit, StartWorks(date(0)), EndWorks(date(0))],
                FileAgibility,
                1,
                "from FINE_LAVORI to SCA",
            ),
            (
                Kind::Pdc,
                &[Submit, Assign],
                SubmitObservations,
                5,
                "status ISTRUTTORIA",
            ),
            (
                Kind::Pdc,
                &[Submit, Assign],
                AttestSilenzioAssenso,
                5,
                "status ISTRUTTORIA",
            ),
            (
                Kind::Cila,
                &[Submit],
                StartWorks(date(-1)),
                5,
                "cannot start before",
            ),
            (
                Kind::Cila,
                &[Submit],
                StartWorks(date(9)),
                5,
                "is in the future",
            ),
        ];
        for (kind, prefix, action, at, expected) in cases {
            let mut f = draft(*kind);
            for a in *prefix {
                step(&mut f, *a, t0()).unwrap_or_else(|r| panic!("prefix {a:?}: {r}"));
            }
            let refusal = step(&mut f, *action, day(*at)).expect_err(expected);
            let msg = refusal.to_string();
            assert!(msg.contains(expected), "{kind:?} {action:?}: {msg}");
        }
    }

    #[test]
    fn a_pdc_without_decision_past_its_deadline_is_granted_by_silence() {
        // Review 60 days + decision 30 days from filing.
        let mut f = draft(Kind::Pdc);
        step(&mut f, Action::Submit, t0()).unwrap();
        step(&mut f, Action::Assign, day(5)).unwrap();
        assert_eq!(f.deadlines.silenzio_assenso, Some(day(90)));
        assert_eq!(settle(&f, day(89)), None);
        let auto = settle(&f, day(91)).expect("silenzio-assenso");
        assert_eq!((auto.to, auto.at), (Status::SilenzioAssenso, day(90)));
        assert_eq!(auto.deadlines.works_start_due, Some(day(90 + 365)));
        // From there the comune can no longer decide, and works may start.
        let refused = step(&mut f, Action::Propose, day(91)).unwrap_err();
        assert_eq!(refused.from, Status::SilenzioAssenso);
        assert!(
            refused
                .to_string()
                .contains("from SILENZIO_ASSENSO to PROPOSTA")
        );
        step(&mut f, Action::AttestSilenzioAssenso, day(92)).unwrap();
        step(&mut f, Action::StartWorks(date(95)), day(95)).unwrap();
        assert_eq!(f.status, Status::InizioLavori);
    }

    #[test]
    fn silence_after_a_proposal_runs_from_the_proposal() {
        let mut f = draft(Kind::Pdc);
        step(&mut f, Action::Submit, t0()).unwrap();
        step(&mut f, Action::Assign, day(1)).unwrap();
        step(&mut f, Action::Propose, day(20)).unwrap();
        assert_eq!(f.deadlines.decision_due, Some(day(50)));
        assert_eq!(settle(&f, day(51)).map(|a| a.at), Some(day(50)));
    }

    #[test]
    fn vincoli_exclude_silenzio_assenso() {
        let mut f = PermitFacts {
            has_constraints: true,
            ..draft(Kind::Pdc)
        };
        step(&mut f, Action::Submit, t0()).unwrap();
        assert!(f.silenzio_assenso_excluded());
        assert_eq!(f.deadlines.silenzio_assenso, None);
        assert_eq!(settle(&f, day(1000)), None);
        assert!(draft(Kind::Scia).silenzio_assenso_excluded());
    }

    #[test]
    fn doubled_terms_double_review_and_decision() {
        let mut f = PermitFacts {
            terms: PermitTerms {
                terms_doubled: true,
                ..DEFAULT_TERMS
            },
            ..draft(Kind::Pdc)
        };
        step(&mut f, Action::Submit, t0()).unwrap();
        assert_eq!(f.deadlines.review_due, Some(day(120)));
        assert_eq!(f.deadlines.silenzio_assenso, Some(day(180)));
        assert_eq!(f.deadlines.integration_request_due, Some(day(30)));
    }

    #[test]
    fn an_integration_restarts_the_clock_and_only_one_is_allowed() {
        let mut f = draft(Kind::Pdc);
        step(&mut f, Action::Submit, t0()).unwrap();
        step(&mut f, Action::Assign, day(2)).unwrap();
        step(&mut f, Action::RequestIntegration, day(20)).unwrap();
        assert_eq!(f.deadlines.silenzio_assenso, None, "the clock stops");
        assert_eq!(settle(&f, day(400)), None, "no limit to reply by default");
        step(&mut f, Action::SubmitIntegration, day(50)).unwrap();
        assert_eq!(f.deadlines.review_due, Some(day(110)));
        assert_eq!(f.deadlines.silenzio_assenso, Some(day(140)));
        assert_eq!(
            settle(&f, day(100)),
            None,
            "the first 90 days no longer count"
        );
        let again = step(&mut f, Action::RequestIntegration, day(60)).unwrap_err();
        assert!(
            again.reason.contains("one integration request only"),
            "{again}"
        );

        let mut late = draft(Kind::Pdc);
        step(&mut late, Action::Submit, t0()).unwrap();
        step(&mut late, Action::Assign, day(2)).unwrap();
        let refused = step(&mut late, Action::RequestIntegration, day(31)).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("from ISTRUTTORIA to INTEGRAZIONI"),
            "{refused}"
        );
    }

    #[test]
    fn an_integration_never_sent_archives_the_application() {
        let mut f = PermitFacts {
            terms: PermitTerms {
                integration_reply_days: 30,
                ..DEFAULT_TERMS
            },
            ..draft(Kind::Pdc)
        };
        step(&mut f, Action::Submit, t0()).unwrap();
        step(&mut f, Action::Assign, day(1)).unwrap();
        step(&mut f, Action::RequestIntegration, day(10)).unwrap();
        assert_eq!(pending_automatic(&f), Some((Status::Archiviata, day(40))));
        let auto = settle(&f, day(41)).unwrap();
        assert_eq!(auto.to, Status::Archiviata);
    }

    #[test]
    fn a_refusal_waits_for_the_observations_term() {
        let mut f = draft(Kind::Pdc);
        for (a, at) in [
            (Action::Submit, 0),
            (Action::Assign, 1),
            (Action::Propose, 30),
            (Action::Decide(Decision::PreavvisoDiniego), 40),
        ] {
            step(&mut f, a, day(at)).unwrap();
        }
        assert_eq!(f.deadlines.observations_due, Some(day(50)));
        let early = step(&mut f, Action::Decide(Decision::Deny), day(45)).unwrap_err();
        assert!(early.reason.contains("observations until"), "{early}");
        step(&mut f, Action::Decide(Decision::Deny), day(51)).unwrap();
        assert_eq!(f.status, Status::Diniego);
        assert_eq!(pending_automatic(&f), None);
    }

    #[test]
    fn a_pdc_lapses_when_works_do_not_start_in_time() {
        let mut f = draft(Kind::Pdc);
        for (a, at) in [
            (Action::Submit, 0),
            (Action::Assign, 1),
            (Action::Propose, 30),
            (Action::Decide(Decision::Grant), 40),
        ] {
            step(&mut f, a, day(at)).unwrap();
        }
        let late = step(&mut f, Action::StartWorks(date(406)), day(406)).unwrap_err();
        assert!(late.reason.contains("lapsed"), "{late}");
        step(&mut f, Action::StartWorks(date(405)), day(406)).unwrap();
    }

    #[test]
    fn operators_see_their_next_deadline() {
        let mut f = draft(Kind::Pdc);
        assert_eq!(operator_due(&f), None);
        step(&mut f, Action::Submit, t0()).unwrap();
        assert_eq!(operator_due(&f), Some(day(10)));
        step(&mut f, Action::Assign, day(3)).unwrap();
        assert_eq!(operator_due(&f), Some(day(60)));
        step(&mut f, Action::Propose, day(30)).unwrap();
        assert_eq!(operator_due(&f), Some(day(60)));
    }
}
