//! Benefit schemes: what a comune offers, to whom, and by when. Every threshold, amount and
//! household rule is a per-comune parameter stored with the scheme; [`defaults`] holds the documented
//! reference values (2025) a comune starts from.

use chrono::NaiveDate;
use patto_proto::common::v1::{Money, Period};
use patto_proto::social::v1 as pb;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::ids;
use serde::{Deserialize, Serialize};

use super::{MAX_NAME_LEN, MAX_REF_LEN, MAX_TEXT_LEN, euro, fits};

/// Longest scheme code accepted.
pub const MAX_CODE_LEN: usize = 40;
/// Most documents a scheme may require, and most ISEE kinds it may list.
pub const MAX_LIST_LEN: usize = 20;
/// Largest household a rule may name: beyond any real nucleo familiare.
pub const MAX_HOUSEHOLD: i32 = 20;
/// Most instalments one benefit may be paid in (ten years of monthly payments).
pub const MAX_PAYMENTS: i32 = 120;

/// Reference values a comune starts its schemes from: national figures for 2025 (DOMAIN.md §8),
/// to be verified every year. They are copied into each scheme when it is created, so a comune
/// changes its own copy and the code never decides a threshold.
pub mod defaults {
    /// Assegno di maternità dei comuni (D.Lgs. 151/2001 art. 74), 2025: ISEE ≤ € 20.382,90.
    pub const MATERNITY_ISEE_THRESHOLD_CENTS: i64 = 2_038_290;
    /// Assegno di maternità, 2025: € 407,40 per month.
    pub const MATERNITY_MONTHLY_CENTS: i64 = 40_740;
    /// Assegno di maternità: five monthly amounts.
    pub const MATERNITY_PAYMENTS: i32 = 5;
    /// Legal basis of the assegno di maternità.
    pub const MATERNITY_LEGAL_BASIS: &str = "D.Lgs. 151/2001 art. 74";
    /// Assegno di inclusione (DL 48/2023), 2025: ISEE ≤ € 10.140,00. Comuni commonly align the
    /// threshold of their contributi straordinari with it.
    pub const ADI_ISEE_THRESHOLD_CENTS: i64 = 1_014_000;
    /// Carta "Dedicata a te", 2025: ISEE ≤ € 15.000,00; also a common threshold for home care.
    pub const DEDICATA_A_TE_ISEE_THRESHOLD_CENTS: i64 = 1_500_000;
    /// Bonus sociali energia/acqua: ISEE ≤ € 9.530,00.
    pub const BONUS_SOCIALI_ISEE_THRESHOLD_CENTS: i64 = 953_000;
    /// Age from which home care (SAD) is offered to the elderly in most comuni' regolamenti.
    pub const HOME_CARE_MEMBER_AGE: i32 = 65;
}

/// The rules of a scheme that decide eligibility and payment. Each application keeps a copy taken
/// at submission, so later changes to the scheme do not touch applications already submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeRules {
    /// ISEE threshold in cents; 0 means no ISEE requirement.
    pub isee_threshold_cents: i64,
    /// `IseeKind` numbers accepted; empty means ORDINARIO and CORRENTE.
    pub accepted_isee_kinds: Vec<i32>,
    /// Minimum household size; 0 means none.
    pub min_household_size: i32,
    /// Maximum household size; 0 means none.
    pub max_household_size: i32,
    /// The household must include a minor.
    pub requires_minor: bool,
    /// The household must include a person with a disability.
    pub requires_disabled_member: bool,
    /// The household must include a person of at least this age; 0 means no such rule.
    pub requires_member_aged: i32,
    /// The applicant must be resident in the comune (ANPR).
    pub requires_residence: bool,
    /// Months of residence required; 0 means none.
    pub min_residence_months: i32,
    /// Amount per payment in cents.
    pub amount_cents: i64,
    /// `BenefitFrequency` number.
    pub frequency: i32,
    /// Number of payments.
    pub payment_count: i32,
    /// `RankingCriterion` number; 0 means no ranking.
    pub ranking_criterion: i32,
    /// Documents the applicant must attach.
    pub required_documents: Vec<String>,
}

impl SchemeRules {
    /// ISEE kinds accepted, with the contract's default (ORDINARIO and CORRENTE) when none is listed.
    pub fn accepted_kinds(&self) -> Vec<pb::IseeKind> {
        if self.accepted_isee_kinds.is_empty() {
            vec![pb::IseeKind::Ordinario, pb::IseeKind::Corrente]
        } else {
            self.accepted_isee_kinds
                .iter()
                .filter_map(|k| pb::IseeKind::try_from(*k).ok())
                .collect()
        }
    }

    /// The ranking criterion; unspecified when the scheme has no ranking.
    pub fn criterion(&self) -> pb::RankingCriterion {
        pb::RankingCriterion::try_from(self.ranking_criterion)
            .unwrap_or(pb::RankingCriterion::Unspecified)
    }

    /// True when admissible applications go through a ranking before they can be granted.
    pub fn is_ranked(&self) -> bool {
        self.criterion() != pb::RankingCriterion::Unspecified
    }

    /// True when an application needs an ISEE declaration: there is a threshold, or the ranking
    /// orders by ISEE.
    pub fn needs_isee(&self) -> bool {
        self.isee_threshold_cents > 0 || self.criterion() == pb::RankingCriterion::IseeAscending
    }

    /// Total a full grant is worth: amount × payments (`None` on overflow, which validation refuses).
    pub fn full_amount_cents(&self) -> Option<i64> {
        self.amount_cents
            .checked_mul(i64::from(self.payment_count.max(0)))
    }
}

/// A validated scheme, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScheme {
    /// ISTAT code of the comune.
    pub istat_code: String,
    /// Code, unique in the comune.
    pub code: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `BenefitKind` number.
    pub kind: i32,
    /// Legal basis.
    pub legal_basis: String,
    /// `BenefitSchemeStatus` number; unspecified (0) on an update means "keep the current one".
    pub status: i32,
    /// First day applications are accepted.
    pub period_start: NaiveDate,
    /// Last day applications are accepted.
    pub period_end: NaiveDate,
    /// Eligibility and payment rules.
    pub rules: SchemeRules,
    /// Funds available in cents; 0 means not capped.
    pub budget_cents: i64,
    /// Who pays when not the comune.
    pub payer: String,
    /// Whether the procedure is fully online.
    pub fully_online: bool,
}

fn money(m: Option<&Money>) -> i64 {
    m.map_or(0, |m| m.cents)
}

/// Parses an ISO day, recording a violation of `field` when it is not one.
pub fn parse_day(value: &str, field: &str, v: &mut Violations) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) if value.trim().is_empty() => {
            v.add(field, "must be set to a day, YYYY-MM-DD");
            None
        }
        Err(_) => {
            v.add(field, format!("`{value}` is not a day; use YYYY-MM-DD"));
            None
        }
    }
}

fn known_enum<E: TryFrom<i32>>(value: i32) -> bool {
    value != 0 && E::try_from(value).is_ok()
}

/// Validates a scheme as a client sent it; `prefix` is its path in the request (`scheme`).
/// `creating` makes an unspecified status DRAFT; on an update it keeps the stored status.
pub fn validate_scheme(
    s: &pb::BenefitScheme,
    prefix: &str,
    creating: bool,
) -> Result<NewScheme, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");

    v.check(
        ids::is_known_istat_code(&s.istat_code),
        f("istat_code"),
        "must be the 6-digit ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    let code = s.code.trim().to_ascii_uppercase();
    v.check(
        !code.is_empty()
            && code.len() <= MAX_CODE_LEN
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        f("code"),
        format!(
            "must be 1 to {MAX_CODE_LEN} letters, digits, `-` or `_`, e.g. CONTRIB-STRAORD-2025"
        ),
    );
    let name = s.name.trim();
    v.check(
        !name.is_empty() && fits(name, MAX_NAME_LEN),
        f("name"),
        format!("must be 1 to {MAX_NAME_LEN} characters"),
    );
    v.check(
        fits(&s.description, MAX_TEXT_LEN),
        f("description"),
        format!("must be at most {MAX_TEXT_LEN} characters"),
    );
    v.check(
        known_enum::<pb::BenefitKind>(s.kind),
        f("kind"),
        "must be one of the BenefitKind values",
    );
    v.check(
        fits(&s.legal_basis, MAX_REF_LEN),
        f("legal_basis"),
        format!("must be at most {MAX_REF_LEN} characters"),
    );
    let status = match s.status {
        0 if creating => pb::BenefitSchemeStatus::Draft as i32,
        0 => 0,
        n if known_enum::<pb::BenefitSchemeStatus>(n) => n,
        _ => {
            v.add(f("status"), "must be one of the BenefitSchemeStatus values");
            0
        }
    };

    let (start, end) = match &s.application_period {
        None => {
            v.add(
                f("application_period"),
                "must be set: the days applications are accepted",
            );
            (None, None)
        }
        Some(Period {
            start_date,
            end_date,
        }) => {
            let start = parse_day(start_date, &f("application_period.start_date"), &mut v);
            let end = parse_day(end_date, &f("application_period.end_date"), &mut v);
            if let (Some(a), Some(b)) = (start, end) {
                v.check(
                    a <= b,
                    f("application_period.end_date"),
                    "must not be before start_date",
                );
            }
            (start, end)
        }
    };

    let threshold = money(s.isee_threshold.as_ref());
    v.check(
        threshold >= 0,
        f("isee_threshold.cents"),
        "must not be negative (0 means no ISEE requirement)",
    );
    v.check(
        s.accepted_isee_kinds.len() <= MAX_LIST_LEN,
        f("accepted_isee_kinds"),
        format!("at most {MAX_LIST_LEN} kinds"),
    );
    for (i, k) in s.accepted_isee_kinds.iter().enumerate() {
        v.check(
            known_enum::<pb::IseeKind>(*k),
            format!("{prefix}.accepted_isee_kinds[{i}]"),
            "must be one of the IseeKind values",
        );
    }
    let mut accepted: Vec<i32> = s.accepted_isee_kinds.clone();
    accepted.sort_unstable();
    accepted.dedup();

    let h = s.household_rules.unwrap_or_default();
    let hf = |name: &str| format!("{prefix}.household_rules.{name}");
    v.check(
        (0..=MAX_HOUSEHOLD).contains(&h.min_household_size),
        hf("min_household_size"),
        format!("must be between 0 (no minimum) and {MAX_HOUSEHOLD}"),
    );
    v.check(
        (0..=MAX_HOUSEHOLD).contains(&h.max_household_size),
        hf("max_household_size"),
        format!("must be between 0 (no maximum) and {MAX_HOUSEHOLD}"),
    );
    v.check(
        h.max_household_size == 0 || h.max_household_size >= h.min_household_size,
        hf("max_household_size"),
        "must not be below min_household_size",
    );
    v.check(
        (0..=120).contains(&h.requires_member_aged),
        hf("requires_member_aged"),
        "must be an age between 0 (no rule) and 120",
    );
    v.check(
        (0..=600).contains(&h.min_residence_months),
        hf("min_residence_months"),
        "must be between 0 (none) and 600 months",
    );
    v.check(
        h.min_residence_months == 0 || h.requires_residence,
        hf("min_residence_months"),
        "needs requires_residence: a length of residence implies residence",
    );

    let amount = money(s.amount.as_ref());
    v.check(amount >= 0, f("amount.cents"), "must not be negative");
    let frequency = s.frequency;
    v.check(
        frequency == 0 || known_enum::<pb::BenefitFrequency>(frequency),
        f("frequency"),
        "must be one of the BenefitFrequency values",
    );
    v.check(
        amount == 0 || frequency != 0,
        f("frequency"),
        "must be set when the scheme pays an amount",
    );
    v.check(
        (0..=MAX_PAYMENTS).contains(&s.payment_count),
        f("payment_count"),
        format!("must be between 0 and {MAX_PAYMENTS}"),
    );
    v.check(
        amount == 0 || s.payment_count >= 1,
        f("payment_count"),
        "must be at least 1 when the scheme pays an amount",
    );
    v.check(
        frequency != pb::BenefitFrequency::OneOff as i32 || s.payment_count <= 1,
        f("payment_count"),
        "must be 1 for a one-off benefit",
    );
    v.check(
        amount
            .checked_mul(i64::from(s.payment_count.max(0)))
            .is_some(),
        f("amount.cents"),
        "amount × payment_count is too large",
    );
    let budget = money(s.budget.as_ref());
    v.check(
        budget >= 0,
        f("budget.cents"),
        "must not be negative (0 means not capped)",
    );
    v.check(
        s.ranking_criterion == 0 || known_enum::<pb::RankingCriterion>(s.ranking_criterion),
        f("ranking_criterion"),
        "must be one of the RankingCriterion values",
    );
    v.check(
        s.required_documents.len() <= MAX_LIST_LEN,
        f("required_documents"),
        format!("at most {MAX_LIST_LEN} documents"),
    );
    let mut documents = Vec::new();
    for (i, d) in s.required_documents.iter().enumerate() {
        let d = d.trim();
        if d.is_empty() || !fits(d, MAX_NAME_LEN) {
            v.add(
                format!("{prefix}.required_documents[{i}]"),
                format!("must be 1 to {MAX_NAME_LEN} characters"),
            );
        } else if !documents.iter().any(|x: &String| x == d) {
            documents.push(d.to_owned());
        }
    }
    v.check(
        fits(&s.payer, MAX_NAME_LEN),
        f("payer"),
        format!("must be at most {MAX_NAME_LEN} characters"),
    );
    let (Some(period_start), Some(period_end)) = (start, end) else {
        return Err(v);
    };
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewScheme {
        istat_code: s.istat_code.clone(),
        code,
        name: name.to_owned(),
        description: s.description.trim().to_owned(),
        kind: s.kind,
        legal_basis: s.legal_basis.trim().to_owned(),
        status,
        period_start,
        period_end,
        rules: SchemeRules {
            isee_threshold_cents: threshold,
            accepted_isee_kinds: accepted,
            min_household_size: h.min_household_size,
            max_household_size: h.max_household_size,
            requires_minor: h.requires_minor,
            requires_disabled_member: h.requires_disabled_member,
            requires_member_aged: h.requires_member_aged,
            requires_residence: h.requires_residence,
            min_residence_months: h.min_residence_months,
            amount_cents: amount,
            frequency,
            payment_count: s.payment_count,
            ranking_criterion: s.ranking_criterion,
            required_documents: documents,
        },
        budget_cents: budget,
        payer: s.payer.trim().to_owned(),
        fully_online: s.fully_online,
    })
}

/// Short name of a scheme status, as messages show it: `OPEN`.
pub fn scheme_status_name(status: i32) -> &'static str {
    pb::BenefitSchemeStatus::try_from(status)
        .map(|s| {
            s.as_str_name()
                .strip_prefix("BENEFIT_SCHEME_STATUS_")
                .unwrap_or("UNSPECIFIED")
        })
        .unwrap_or("UNSPECIFIED")
}

/// Refuses moving a published scheme back to DRAFT: citizens may already hold drafts and
/// applications for it, and a draft scheme is hidden from them.
pub fn scheme_status_change(id: &str, from: i32, to: i32) -> Result<(), ServiceError> {
    let draft = pb::BenefitSchemeStatus::Draft as i32;
    if to == draft && from != draft {
        return Err(ServiceError::FailedPrecondition(format!(
            "scheme {id} cannot go from {} to DRAFT: once published it can only be opened, suspended or closed",
            scheme_status_name(from)
        )));
    }
    Ok(())
}

/// Why a scheme does not accept submissions on `today`; `None` when it does.
pub fn submission_window_refusal(
    scheme_id: &str,
    status: i32,
    start: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Option<ServiceError> {
    if status != pb::BenefitSchemeStatus::Open as i32 {
        return Some(ServiceError::FailedPrecondition(format!(
            "scheme {scheme_id} is not open for applications: it is {}",
            scheme_status_name(status)
        )));
    }
    if today < start {
        return Some(ServiceError::FailedPrecondition(format!(
            "scheme {scheme_id} accepts applications from {start}"
        )));
    }
    if today > end {
        return Some(ServiceError::FailedPrecondition(format!(
            "scheme {scheme_id} stopped accepting applications on {end}"
        )));
    }
    None
}

/// Why a draft cannot be started for a scheme in `status`; `None` when it can. Drafts may be
/// prepared before the period opens, but not for a scheme still in preparation or closed.
pub fn draft_refusal(scheme_id: &str, status: i32) -> Option<ServiceError> {
    let open = [
        pb::BenefitSchemeStatus::Open as i32,
        pb::BenefitSchemeStatus::Suspended as i32,
    ];
    (!open.contains(&status)).then(|| {
        ServiceError::FailedPrecondition(format!(
            "scheme {scheme_id} does not accept applications: it is {}",
            scheme_status_name(status)
        ))
    })
}

/// The budget check of an unranked capped scheme: `committed` cents already granted plus `asked`
/// must fit in `budget` (0 = not capped).
pub fn budget_refusal(
    scheme_id: &str,
    budget: i64,
    committed: i64,
    asked: i64,
) -> Option<ServiceError> {
    if budget == 0 {
        return None;
    }
    let left = budget.saturating_sub(committed);
    (asked > left).then(|| {
        ServiceError::FailedPrecondition(format!(
            "scheme {scheme_id} has {} of its budget left, {} asked",
            euro(left.max(0)),
            euro(asked)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn good_scheme() -> pb::BenefitScheme {
        pb::BenefitScheme {
            istat_code: "082053".into(),
            code: "contrib-straord-2025".into(),
            name: "Contributo economico straordinario".into(),
            kind: pb::BenefitKind::EconomicSupport as i32,
            application_period: Some(Period {
                start_date: "2025-01-01".into(),
                end_date: "2025-12-31".into(),
            }),
            isee_threshold: Some(Money {
                cents: defaults::ADI_ISEE_THRESHOLD_CENTS,
            }),
            amount: Some(Money { cents: 50_000 }),
            frequency: pb::BenefitFrequency::OneOff as i32,
            payment_count: 1,
            ranking_criterion: pb::RankingCriterion::IseeAscending as i32,
            required_documents: vec![
                "documento di identità".into(),
                "documento di identità".into(),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_scheme_passes_with_defaults() {
        let s = validate_scheme(&good_scheme(), "scheme", true).unwrap();
        assert_eq!(s.code, "CONTRIB-STRAORD-2025");
        assert_eq!(s.status, pb::BenefitSchemeStatus::Draft as i32);
        assert_eq!(s.rules.required_documents, ["documento di identità"]);
        assert_eq!(
            s.rules.accepted_kinds(),
            [pb::IseeKind::Ordinario, pb::IseeKind::Corrente]
        );
        assert!(s.rules.is_ranked() && s.rules.needs_isee());
        assert_eq!(s.rules.full_amount_cents(), Some(50_000));
        let update = validate_scheme(&good_scheme(), "scheme", false).unwrap();
        assert_eq!(update.status, 0, "an update keeps the stored status");
    }

    #[test]
    fn scheme_violations_name_their_field() {
        type Edit = fn(&mut pb::BenefitScheme);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "bad comune",
                |s| s.istat_code = "082000".into(),
                "scheme.istat_code",
            ),
            ("bad code", |s| s.code = "con spazi".into(), "scheme.code"),
            ("no name", |s| s.name = " ".into(), "scheme.name"),
            ("no kind", |s| s.kind = 0, "scheme.kind"),
            ("bad status", |s| s.status = 42, "scheme.status"),
            (
                "no period",
                |s| s.application_period = None,
                "scheme.application_period",
            ),
            (
                "bad start",
                |s| s.application_period.as_mut().unwrap().start_date = "2025-02-30".into(),
                "scheme.application_period.start_date",
            ),
            (
                "end before start",
                |s| s.application_period.as_mut().unwrap().end_date = "2024-12-31".into(),
                "scheme.application_period.end_date",
            ),
            (
                "negative threshold",
                |s| s.isee_threshold = Some(Money { cents: -1 }),
                "scheme.isee_threshold.cents",
            ),
            (
                "bad isee kind",
                |s| s.accepted_isee_kinds = vec![1, 0],
                "scheme.accepted_isee_kinds[1]",
            ),
            (
                "max below min",
                |s| {
                    s.household_rules = Some(pb::BenefitHouseholdRules {
                        min_household_size: 3,
                        max_household_size: 2,
                        ..Default::default()
                    })
                },
                "scheme.household_rules.max_household_size",
            ),
            (
                "residence months without residence",
                |s| {
                    s.household_rules = Some(pb::BenefitHouseholdRules {
                        min_residence_months: 12,
                        ..Default::default()
                    })
                },
                "scheme.household_rules.min_residence_months",
            ),
            (
                "negative amount",
                |s| s.amount = Some(Money { cents: -5 }),
                "scheme.amount.cents",
            ),
            ("no frequency", |s| s.frequency = 0, "scheme.frequency"),
            (
                "no payments",
                |s| s.payment_count = 0,
                "scheme.payment_count",
            ),
            (
                "one-off twice",
                |s| s.payment_count = 2,
                "scheme.payment_count",
            ),
            (
                "overflowing total",
                |s| {
                    s.amount = Some(Money {
                        cents: i64::MAX / 2,
                    });
                    s.frequency = pb::BenefitFrequency::Monthly as i32;
                    s.payment_count = 3;
                },
                "scheme.amount.cents",
            ),
            (
                "negative budget",
                |s| s.budget = Some(Money { cents: -1 }),
                "scheme.budget.cents",
            ),
            (
                "bad criterion",
                |s| s.ranking_criterion = 9,
                "scheme.ranking_criterion",
            ),
            (
                "blank document",
                |s| s.required_documents = vec![String::new()],
                "scheme.required_documents[0]",
            ),
        ];
        for (case, edit, field) in cases {
            let mut s = good_scheme();
            edit(&mut s);
            let v = validate_scheme(&s, "scheme", true).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
        let v = validate_scheme(&pb::BenefitScheme::default(), "scheme", true).unwrap_err();
        let fields: Vec<&str> = v.as_slice().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "scheme.istat_code",
                "scheme.code",
                "scheme.name",
                "scheme.kind",
                "scheme.application_period"
            ]
        );
    }

    #[test]
    fn status_changes_and_windows() {
        let (draft, open, closed) = (1, 2, 3);
        assert!(scheme_status_change("s", draft, open).is_ok());
        assert!(scheme_status_change("s", open, closed).is_ok());
        assert!(scheme_status_change("s", draft, draft).is_ok());
        let err = scheme_status_change("s", open, draft).unwrap_err();
        assert!(err.to_string().contains("from OPEN to DRAFT"), "{err}");

        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let (start, end) = (d("2025-03-01"), d("2025-03-31"));
        let cases: [(i32, &str, Option<&str>); 5] = [
            (open, "2025-03-01", None),
            (open, "2025-03-31", None),
            (
                open,
                "2025-02-28",
                Some("accepts applications from 2025-03-01"),
            ),
            (
                open,
                "2025-04-01",
                Some("stopped accepting applications on 2025-03-31"),
            ),
            (
                4,
                "2025-03-10",
                Some("not open for applications: it is SUSPENDED"),
            ),
        ];
        for (status, today, refusal) in cases {
            let got = submission_window_refusal("s", status, start, end, d(today));
            match (got, refusal) {
                (None, None) => {}
                (Some(e), Some(text)) => assert!(e.to_string().contains(text), "{e}"),
                (got, want) => panic!("{today}: {got:?} / {want:?}"),
            }
        }
        assert!(draft_refusal("s", open).is_none());
        assert!(draft_refusal("s", closed).is_some());
        assert!(draft_refusal("s", draft).is_some());
    }

    #[test]
    fn budgets() {
        assert!(
            budget_refusal("s", 0, 1_000_000, 1).is_none(),
            "0 = not capped"
        );
        assert!(budget_refusal("s", 100_000, 50_000, 50_000).is_none());
        let e = budget_refusal("s", 100_000, 60_000, 50_000).unwrap();
        assert_eq!(
            e.to_string(),
            "scheme s has € 400,00 of its budget left, € 500,00 asked"
        );
    }
}
