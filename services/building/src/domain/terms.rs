//! The procedural terms a comune applies to building permits (DPR 380/2001 as received by L.R.
//! 16/2016, DOMAIN.md §7). They are data: each comune may set its own, and the documented defaults
//! below apply where it set none. A permit keeps the terms in force when it was filed, so changing
//! them never moves a deadline already running.

use patto_proto::building::v1 as pb;
use patto_proto::common::v1::Money;
use patto_service_kit::comuni::Comune;
use patto_service_kit::error::Violations;
use serde::{Deserialize, Serialize};

/// Longest term accepted, in days (ten years).
pub const MAX_TERM_DAYS: i32 = 3650;
/// Population above which the law doubles the review and decision terms (art. 20 c. 7).
pub const DOUBLED_TERMS_POPULATION: u32 = 100_000;

/// The terms of one comune, every period in calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitTerms {
    /// Days from filing to name the responsabile del procedimento.
    pub assignment_days: i32,
    /// Days of the PdC review, from filing or from the integration's arrival.
    pub review_days: i32,
    /// Days from filing within which the one PdC integration request may be made.
    pub integration_request_days: i32,
    /// Days the applicant has to send a requested integration; 0 means no limit.
    pub integration_reply_days: i32,
    /// Days from the proposal to the PdC decision.
    pub decision_days: i32,
    /// Whether review and decision terms are doubled.
    pub terms_doubled: bool,
    /// Days for observations after a preavviso di diniego (art. 10-bis L. 241/1990).
    pub observations_days: i32,
    /// Days after filing in which the comune may stop SCIA works.
    pub scia_control_days: i32,
    /// Days after filing before SCIA alternativa works may start.
    pub scia_alternativa_wait_days: i32,
    /// Days after the grant within which works must start.
    pub works_start_days: i32,
    /// Days after the start within which works must end.
    pub works_end_days: i32,
    /// Days after the end of works to file the SCA agibilità.
    pub agibility_days: i32,
    /// Fine for works without the required CILA, in cents.
    pub cila_missing_fine_cents: i64,
    /// Fine for a CILA filed late, in cents.
    pub cila_late_fine_cents: i64,
}

/// The documented defaults (DOMAIN.md §7; the [m] items there are why they are data, not code).
pub const DEFAULT_TERMS: PermitTerms = PermitTerms {
    assignment_days: 10,
    review_days: 60,
    integration_request_days: 30,
    integration_reply_days: 0,
    decision_days: 30,
    terms_doubled: false,
    observations_days: 10,
    scia_control_days: 30,
    scia_alternativa_wait_days: 30,
    works_start_days: 365,
    works_end_days: 1095,
    agibility_days: 15,
    cila_missing_fine_cents: 100_000,
    cila_late_fine_cents: 33_300,
};

/// Whether the law doubles the terms of `comune` (more than 100,000 inhabitants: Palermo).
pub fn doubled_by_law(comune: &Comune) -> bool {
    comune.population_2011 > DOUBLED_TERMS_POPULATION
}

impl PermitTerms {
    /// The defaults for `comune`.
    pub fn defaults_for(comune: &Comune) -> Self {
        Self {
            terms_doubled: doubled_by_law(comune),
            ..DEFAULT_TERMS
        }
    }

    /// The factor applied to the review and decision terms.
    pub fn factor(&self) -> i32 {
        if self.terms_doubled { 2 } else { 1 }
    }

    /// The PdC review term in force, doubling included.
    pub fn effective_review_days(&self) -> i32 {
        self.review_days * self.factor()
    }

    /// The PdC decision term in force, doubling included.
    pub fn effective_decision_days(&self) -> i32 {
        self.decision_days * self.factor()
    }

    /// Validates terms as a client sent them for `comune`: 0 takes the default, negative or
    /// implausibly long terms are refused. Doubling cannot be switched off where the law imposes it.
    pub fn from_pb(
        t: &pb::BuildingPermitTerms,
        comune: &Comune,
        prefix: &str,
    ) -> Result<Self, Violations> {
        let mut v = Violations::new();
        let d = DEFAULT_TERMS;
        let mut days = |value: i32, name: &str, default: i32| -> i32 {
            if !(0..=MAX_TERM_DAYS).contains(&value) {
                v.add(
                    format!("{prefix}.{name}"),
                    format!("must be between 0 (the default, {default}) and {MAX_TERM_DAYS} days"),
                );
            }
            if value == 0 { default } else { value }
        };
        let terms = Self {
            assignment_days: days(t.assignment_days, "assignment_days", d.assignment_days),
            review_days: days(t.review_days, "review_days", d.review_days),
            integration_request_days: days(
                t.integration_request_days,
                "integration_request_days",
                d.integration_request_days,
            ),
            integration_reply_days: days(
                t.integration_reply_days,
                "integration_reply_days",
                d.integration_reply_days,
            ),
            decision_days: days(t.decision_days, "decision_days", d.decision_days),
            terms_doubled: t.terms_doubled || doubled_by_law(comune),
            observations_days: days(
                t.observations_days,
                "observations_days",
                d.observations_days,
            ),
            scia_control_days: days(
                t.scia_control_days,
                "scia_control_days",
                d.scia_control_days,
            ),
            scia_alternativa_wait_days: days(
                t.scia_alternativa_wait_days,
                "scia_alternativa_wait_days",
                d.scia_alternativa_wait_days,
            ),
            works_start_days: days(t.works_start_days, "works_start_days", d.works_start_days),
            works_end_days: days(t.works_end_days, "works_end_days", d.works_end_days),
            agibility_days: days(t.agibility_days, "agibility_days", d.agibility_days),
            cila_missing_fine_cents: 0,
            cila_late_fine_cents: 0,
        };
        let mut fine = |m: Option<&Money>, name: &str, default: i64| -> i64 {
            let cents = m.map_or(0, |m| m.cents);
            if cents < 0 {
                v.add(
                    format!("{prefix}.{name}.cents"),
                    "must not be negative (0 means the default)",
                );
            }
            if cents <= 0 { default } else { cents }
        };
        let terms = Self {
            cila_missing_fine_cents: fine(
                t.cila_missing_fine.as_ref(),
                "cila_missing_fine",
                d.cila_missing_fine_cents,
            ),
            cila_late_fine_cents: fine(
                t.cila_late_fine.as_ref(),
                "cila_late_fine",
                d.cila_late_fine_cents,
            ),
            ..terms
        };
        if v.is_empty() { Ok(terms) } else { Err(v) }
    }

    /// The wire form for `istat_code`.
    pub fn to_pb(
        &self,
        istat_code: &str,
        updated_time: Option<prost_types::Timestamp>,
    ) -> pb::BuildingPermitTerms {
        pb::BuildingPermitTerms {
            istat_code: istat_code.to_owned(),
            assignment_days: self.assignment_days,
            review_days: self.review_days,
            integration_request_days: self.integration_request_days,
            integration_reply_days: self.integration_reply_days,
            decision_days: self.decision_days,
            terms_doubled: self.terms_doubled,
            observations_days: self.observations_days,
            scia_control_days: self.scia_control_days,
            scia_alternativa_wait_days: self.scia_alternativa_wait_days,
            works_start_days: self.works_start_days,
            works_end_days: self.works_end_days,
            agibility_days: self.agibility_days,
            cila_missing_fine: Some(Money {
                cents: self.cila_missing_fine_cents,
            }),
            cila_late_fine: Some(Money {
                cents: self.cila_late_fine_cents,
            }),
            updated_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_service_kit::comuni::by_istat;

    #[test]
    fn defaults_double_for_palermo_only() {
        let palermo = by_istat("082053").unwrap();
        let altavilla = by_istat("082001").unwrap();
        assert!(PermitTerms::defaults_for(palermo).terms_doubled);
        assert!(!PermitTerms::defaults_for(altavilla).terms_doubled);
        assert_eq!(
            PermitTerms::defaults_for(palermo).effective_review_days(),
            120
        );
        assert_eq!(
            PermitTerms::defaults_for(altavilla).effective_decision_days(),
            30
        );
    }

    #[test]
    fn zero_takes_the_default_and_bad_values_name_their_field() {
        let altavilla = by_istat("082001").unwrap();
        let t =
            PermitTerms::from_pb(&pb::BuildingPermitTerms::default(), altavilla, "terms").unwrap();
        assert_eq!(t, DEFAULT_TERMS);
        let custom = pb::BuildingPermitTerms {
            review_days: 45,
            integration_reply_days: 90,
            cila_late_fine: Some(Money { cents: 50_000 }),
            ..Default::default()
        };
        let t = PermitTerms::from_pb(&custom, altavilla, "terms").unwrap();
        assert_eq!(
            (
                t.review_days,
                t.integration_reply_days,
                t.cila_late_fine_cents
            ),
            (45, 90, 50_000)
        );
        let bad = pb::BuildingPermitTerms {
            review_days: -1,
            works_end_days: 5000,
            cila_missing_fine: Some(Money { cents: -5 }),
            ..Default::default()
        };
        let v = PermitTerms::from_pb(&bad, altavilla, "terms").unwrap_err();
        let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "terms.review_days",
                "terms.works_end_days",
                "terms.cila_missing_fine.cents"
            ]
        );
    }

    #[test]
    fn the_law_keeps_palermo_doubled() {
        let palermo = by_istat("082053").unwrap();
        let t =
            PermitTerms::from_pb(&pb::BuildingPermitTerms::default(), palermo, "terms").unwrap();
        assert!(t.terms_doubled);
        let round = t.to_pb("082053", None);
        assert_eq!(PermitTerms::from_pb(&round, palermo, "terms").unwrap(), t);
    }
}
