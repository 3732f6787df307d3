//! The life of a public work as a pure state machine (DOMAIN.md §12):
//!
//! ```text
//! PROGRAMMATO → PROGETTAZIONE → AFFIDAMENTO → CONSEGNA → IN_ESECUZIONE ⇄ SOSPESO
//!                                                          IN_ESECUZIONE → ULTIMATO → COLLAUDATO
//! ```
//!
//! Besides the arrows, a state may need facts about the work: a CUP from PROGETTAZIONE on (no act of
//! a public investment may lack it, L. 3/2003 art. 11), and the award (a CIG and a contractor) from
//! CONSEGNA on: the contract is awarded while the work is in AFFIDAMENTO, so leaving AFFIDAMENTO is
//! what needs it. A collaudato work is complete by definition, so an incompiuta cannot be
//! collaudato until its flag is cleared.

use patto_proto::publicworks::v1::ProjectState as State;
use patto_service_kit::error::ServiceError;

use super::state_name;

/// The states in the order a work goes through them (SOSPESO is a detour of IN_ESECUZIONE).
pub const ORDER: [State; 8] = [
    State::Programmato,
    State::Progettazione,
    State::Affidamento,
    State::Consegna,
    State::InEsecuzione,
    State::Sospeso,
    State::Ultimato,
    State::Collaudato,
];

/// The states a work may move to from `from`.
pub fn successors(from: State) -> &'static [State] {
    match from {
        State::Programmato => &[State::Progettazione],
        State::Progettazione => &[State::Affidamento],
        State::Affidamento => &[State::Consegna],
        State::Consegna => &[State::InEsecuzione],
        State::InEsecuzione => &[State::Sospeso, State::Ultimato],
        State::Sospeso => &[State::InEsecuzione],
        State::Ultimato => &[State::Collaudato],
        State::Collaudato | State::Unspecified => &[],
    }
}

/// True when the arrow `from → to` exists.
pub fn is_legal(from: State, to: State) -> bool {
    successors(from).contains(&to)
}

/// True when a work in `state` must have a CUP.
pub fn needs_cup(state: State) -> bool {
    state as i32 >= State::Progettazione as i32
}

/// True when a work in `state` must have its contract awarded (a CIG and a contractor).
pub fn needs_award(state: State) -> bool {
    state as i32 >= State::Consegna as i32
}

/// True when a contract may be awarded (or a further CIG added) to a work in `state`: from
/// AFFIDAMENTO on, until the work is collaudato and closed.
pub fn allows_award(state: State) -> bool {
    (State::Affidamento as i32..=State::Ultimato as i32).contains(&(state as i32))
}

/// True when a SAL may be recorded for a work in `state`: during the works, while suspended (the
/// SAL of the works done before the suspension) and once finished (the final SAL).
pub fn allows_sal(state: State) -> bool {
    matches!(
        state,
        State::InEsecuzione | State::Sospeso | State::Ultimato
    )
}

/// True when a work in `state` may be marked incompiuta: works handed over and not collaudato
/// (D.M. 42/2013 counts as incompiute both the works left unfinished and the finished ones that
/// cannot be collaudato).
pub fn allows_incompiuta(state: State) -> bool {
    (State::Consegna as i32..=State::Ultimato as i32).contains(&(state as i32))
}

/// What a work has, as far as its state changes are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// It has a CUP.
    pub has_cup: bool,
    /// It has at least one CIG.
    pub has_cig: bool,
    /// It has a contractor.
    pub has_contractor: bool,
    /// It is flagged incompiuta.
    pub incompiuta: bool,
}

impl Readiness {
    /// A work with everything any state needs.
    pub fn complete() -> Self {
        Self {
            has_cup: true,
            has_cig: true,
            has_contractor: true,
            incompiuta: false,
        }
    }
}

fn names(states: &[State]) -> String {
    match states {
        [] => "nowhere: it is final".to_owned(),
        _ => states
            .iter()
            .map(|s| state_name(*s))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// What `to` needs that a work described by `r` lacks; `None` when it has it all.
pub fn missing_for(to: State, r: &Readiness) -> Option<String> {
    let mut missing = Vec::new();
    if needs_cup(to) && !r.has_cup {
        missing.push("a CUP (set it with UpdateProject)");
    }
    if needs_award(to) && !r.has_cig {
        missing.push("a CIG (record the award with AwardProjectContract)");
    }
    if needs_award(to) && !r.has_contractor {
        missing.push("a contractor (record the award with AwardProjectContract)");
    }
    if to == State::Collaudato && r.incompiuta {
        missing.push("the incompiuta flag cleared (SetProjectIncompiuta)");
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Checks the move `from → to` of a work described by `r`: FAILED_PRECONDITION naming both states
/// when the arrow does not exist, or naming what is missing when the work is not ready for `to`.
pub fn check_transition(from: State, to: State, r: &Readiness) -> Result<(), ServiceError> {
    if !is_legal(from, to) {
        return Err(ServiceError::FailedPrecondition(format!(
            "a work cannot move from {} to {}: from {} it can move to {}",
            state_name(from),
            state_name(to),
            state_name(from),
            names(successors(from)),
        )));
    }
    match missing_for(to, r) {
        None => Ok(()),
        Some(missing) => Err(ServiceError::FailedPrecondition(format!(
            "a work cannot move from {} to {} without {missing}",
            state_name(from),
            state_name(to),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    /// Every pair of states: exactly the eight arrows pass, and every refusal names both states.
    #[test]
    fn every_pair() {
        use State as S;
        let legal = [
            (S::Programmato, S::Progettazione),
            (S::Progettazione, S::Affidamento),
            (S::Affidamento, S::Consegna),
            (S::Consegna, S::InEsecuzione),
            (S::InEsecuzione, S::Sospeso),
            (S::Sospeso, S::InEsecuzione),
            (S::InEsecuzione, S::Ultimato),
            (S::Ultimato, S::Collaudato),
        ];
        let all = [
            S::Unspecified,
            S::Programmato,
            S::Progettazione,
            S::Affidamento,
            S::Consegna,
            S::InEsecuzione,
            S::Sospeso,
            S::Ultimato,
            S::Collaudato,
        ];
        let mut passed = 0;
        for from in all {
            for to in all {
                let got = check_transition(from, to, &Readiness::complete());
                if legal.contains(&(from, to)) {
                    assert!(got.is_ok(), "{from:?} → {to:?}: {got:?}");
                    passed += 1;
                } else {
                    let err = got.expect_err(&format!("{from:?} → {to:?} must be refused"));
                    assert_eq!(err.code(), Code::FailedPrecondition);
                    let msg = err.to_string();
                    assert!(
                        msg.contains(&format!("from {} to {}", state_name(from), state_name(to))),
                        "{msg}"
                    );
                }
            }
        }
        assert_eq!(passed, legal.len());
    }

    #[test]
    fn refusals_say_where_a_work_can_go() {
        let err = check_transition(
            State::InEsecuzione,
            State::Collaudato,
            &Readiness::complete(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a work cannot move from IN_ESECUZIONE to COLLAUDATO: from IN_ESECUZIONE it can move to SOSPESO or ULTIMATO"
        );
        let err = check_transition(
            State::Collaudato,
            State::Programmato,
            &Readiness::complete(),
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("nowhere: it is final"), "{err}");
    }

    /// What each state needs: (from, to, readiness, the missing things the refusal names).
    #[test]
    fn requirements() {
        let none = Readiness::default();
        let cup_only = Readiness {
            has_cup: true,
            ..none
        };
        let no_contractor = Readiness {
            has_contractor: false,
            ..Readiness::complete()
        };
        let incompiuta = Readiness {
            incompiuta: true,
            ..Readiness::complete()
        };
        let cases: &[(State, State, Readiness, &[&str])] = &[
            (State::Programmato, State::Progettazione, none, &["a CUP"]),
            (State::Programmato, State::Progettazione, cup_only, &[]),
            // The award comes during AFFIDAMENTO: entering it needs only the CUP.
            (State::Progettazione, State::Affidamento, cup_only, &[]),
            (
                State::Affidamento,
                State::Consegna,
                cup_only,
                &["a CIG", "a contractor"],
            ),
            (
                State::Affidamento,
                State::Consegna,
                no_contractor,
                &["a contractor"],
            ),
            (
                State::Affidamento,
                State::Consegna,
                Readiness::complete(),
                &[],
            ),
            (
                State::Ultimato,
                State::Collaudato,
                incompiuta,
                &["incompiuta flag cleared"],
            ),
            (State::InEsecuzione, State::Sospeso, incompiuta, &[]),
        ];
        for (from, to, r, missing) in cases {
            let got = check_transition(*from, *to, r);
            if missing.is_empty() {
                assert!(got.is_ok(), "{from:?} → {to:?} with {r:?}: {got:?}");
            } else {
                let msg = got.unwrap_err().to_string();
                assert!(msg.contains(state_name(*from)) && msg.contains(state_name(*to)));
                for m in *missing {
                    assert!(msg.contains(m), "{msg} should name {m}");
                }
            }
        }
    }

    #[test]
    fn what_each_state_allows() {
        use State as S;
        // (state, needs CUP, needs award, allows award, allows SAL, allows incompiuta)
        let table = [
            (S::Programmato, false, false, false, false, false),
            (S::Progettazione, true, false, false, false, false),
            (S::Affidamento, true, false, true, false, false),
            (S::Consegna, true, true, true, false, true),
            (S::InEsecuzione, true, true, true, true, true),
            (S::Sospeso, true, true, true, true, true),
            (S::Ultimato, true, true, true, true, true),
            (S::Collaudato, true, true, false, false, false),
        ];
        for (s, cup, award, may_award, sal, incompiuta) in table {
            assert_eq!(
                (
                    needs_cup(s),
                    needs_award(s),
                    allows_award(s),
                    allows_sal(s),
                    allows_incompiuta(s)
                ),
                (cup, award, may_award, sal, incompiuta),
                "{s:?}"
            );
        }
        assert_eq!(ORDER.len(), 8);
    }
}
