//! The ranking (graduatoria) of a scheme's admissible applications and the places its budget
//! funds.
//!
//! Places are funded strictly in ranking order: once a place does not fit in what is left of the
//! budget, no place after it is funded either, even a cheaper one. Skipping ahead would let a
//! lower-ranked applicant overtake a higher-ranked one, which a graduatoria exists to prevent.

use chrono::{DateTime, Utc};
use patto_proto::social::v1::RankingCriterion;

/// An admissible application competing for a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Application id.
    pub application_id: String,
    /// Protocol number, how a published ranking names the applicant.
    pub protocol_number: String,
    /// Caseworker's score (score rankings).
    pub score: i32,
    /// ISEE in cents at submission; `None` when the scheme needed none.
    pub isee_cents: Option<i64>,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// What a funded place costs: the scheme's amount × payments, from the rules at submission.
    pub amount_cents: i64,
}

/// One place of a computed ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Place, from 1.
    pub position: i32,
    /// The application.
    pub candidate: Candidate,
    /// True when within the budget.
    pub funded: bool,
}

/// Orders `candidates` by `criterion` and marks the places `budget_cents` funds (0 = every place).
/// Returns the places and the sum of the funded ones. Ties fall back to the earlier submission,
/// then the application id, so the same input always gives the same ranking.
pub fn rank(
    criterion: RankingCriterion,
    budget_cents: i64,
    mut candidates: Vec<Candidate>,
) -> (Vec<Place>, i64) {
    // A missing ISEE ranks after every declared one.
    let isee = |c: &Candidate| c.isee_cents.unwrap_or(i64::MAX);
    candidates.sort_by(|a, b| {
        let primary = match criterion {
            RankingCriterion::IseeAscending => isee(a).cmp(&isee(b)),
            RankingCriterion::Score => b.score.cmp(&a.score).then(isee(a).cmp(&isee(b))),
            RankingCriterion::SubmissionOrder | RankingCriterion::Unspecified => {
                std::cmp::Ordering::Equal
            }
        };
        primary
            .then(a.submitted_at.cmp(&b.submitted_at))
            .then(a.application_id.cmp(&b.application_id))
    });
    let mut spent: i64 = 0;
    let mut exhausted = false;
    let places = candidates
        .into_iter()
        .enumerate()
        .map(|(i, candidate)| {
            let next = spent.checked_add(candidate.amount_cents);
            let funded = !exhausted
                && match next {
                    Some(total) => budget_cents == 0 || total <= budget_cents,
                    None => false,
                };
            if funded {
                spent = next.unwrap_or(spent);
            } else {
                exhausted = true;
            }
            Place {
                position: i32::try_from(i + 1).unwrap_or(i32::MAX),
                candidate,
                funded,
            }
        })
        .collect();
    (places, spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, score: i32, isee: Option<i64>, minute: i64, amount: i64) -> Candidate {
        Candidate {
            application_id: id.into(),
            protocol_number: format!("P-{id}"),
            score,
            isee_cents: isee,
            submitted_at: DateTime::from_timestamp(1_750_000_000 + minute * 60, 0).unwrap(),
            amount_cents: amount,
        }
    }

    fn pool() -> Vec<Candidate> {
        vec![
            c("a", 60, Some(900_000), 1, 50_000),
            c("b", 80, Some(300_000), 2, 50_000),
            c("c", 80, Some(200_000), 3, 50_000),
            c("d", 10, None, 0, 50_000),
            c("e", 60, Some(300_000), 4, 50_000),
        ]
    }

    fn order(places: &[Place]) -> Vec<(&str, bool)> {
        places
            .iter()
            .map(|p| (p.candidate.application_id.as_str(), p.funded))
            .collect()
    }

    #[test]
    fn criteria_order_the_places() {
        let cases: [(RankingCriterion, [&str; 5]); 3] = [
            // Lowest ISEE first; equal ISEE by submission; no ISEE last.
            (RankingCriterion::IseeAscending, ["c", "b", "e", "a", "d"]),
            // Highest score; equal scores by lower ISEE.
            (RankingCriterion::Score, ["c", "b", "e", "a", "d"]),
            (RankingCriterion::SubmissionOrder, ["d", "a", "b", "c", "e"]),
        ];
        for (criterion, expected) in cases {
            let (places, total) = rank(criterion, 0, pool());
            let ids: Vec<&str> = places
                .iter()
                .map(|p| p.candidate.application_id.as_str())
                .collect();
            assert_eq!(ids, expected, "{criterion:?}");
            assert!(
                places.iter().all(|p| p.funded),
                "no budget cap funds every place"
            );
            assert_eq!(total, 250_000);
            let positions: Vec<i32> = places.iter().map(|p| p.position).collect();
            assert_eq!(positions, [1, 2, 3, 4, 5]);
        }
    }

    #[test]
    fn the_budget_funds_places_in_order_without_skipping() {
        let (places, total) = rank(RankingCriterion::IseeAscending, 120_000, pool());
        assert_eq!(
            order(&places),
            [
                ("c", true),
                ("b", true),
                ("e", false),
                ("a", false),
                ("d", false)
            ]
        );
        assert_eq!(total, 100_000);

        // A cheaper place after an unfunded one stays unfunded.
        let mut cheap = pool();
        cheap[0].amount_cents = 10_000; // "a", fourth by ISEE
        let (places, total) = rank(RankingCriterion::IseeAscending, 120_000, cheap);
        assert_eq!(
            order(&places),
            [
                ("c", true),
                ("b", true),
                ("e", false),
                ("a", false),
                ("d", false)
            ]
        );
        assert_eq!(total, 100_000);

        let (places, total) = rank(RankingCriterion::Score, 150_000, pool());
        assert_eq!(places.iter().filter(|p| p.funded).count(), 3);
        assert_eq!(
            total, 150_000,
            "a budget spent exactly funds the last place"
        );

        let (places, total) = rank(RankingCriterion::Score, 1, Vec::new());
        assert!(places.is_empty());
        assert_eq!(total, 0);
    }

    #[test]
    fn overflowing_amounts_are_not_funded() {
        let huge = vec![c("a", 0, Some(1), 0, i64::MAX), c("b", 0, Some(2), 1, 1)];
        let (places, total) = rank(RankingCriterion::IseeAscending, 0, huge);
        assert_eq!(order(&places), [("a", true), ("b", false)]);
        assert_eq!(total, i64::MAX);
    }
}
