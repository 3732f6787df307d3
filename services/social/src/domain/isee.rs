//! ISEE declarations (DPCM 159/2013): ISE = ISR + 20 % ISP, ISEE = ISE / scala di equivalenza; the
//! attestation's validity; and the checks an application's ISEE must pass at submission and at
//! evaluation.

use chrono::{Datelike, Months, NaiveDate};
use patto_proto::social::v1 as pb;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::ids;

use super::application::Check;
use super::scheme::{MAX_HOUSEHOLD, SchemeRules, parse_day};
use super::{euro, fits};

/// Scala di equivalenza for households of 1 to 5 members, in thousandths (DPCM 159/2013 all. 1).
pub const BASE_SCALE_THOUSANDTHS: [i32; 5] = [1000, 1570, 2040, 2460, 2850];
/// What each member beyond the fifth adds to the scale, in thousandths.
pub const EXTRA_MEMBER_THOUSANDTHS: i32 = 350;
/// Largest sum of the DPCM's additions (children, disability, working parents) accepted on top of
/// the base scale; a larger scale is a typing error, not a household.
pub const MAX_SCALE_ADDITIONS_THOUSANDTHS: i32 = 3000;
/// INPS rounds each indicator to the cent on its own, so a recomputed ISE or ISEE may differ from
/// the attested one by a few cents; more than a euro means the figures do not belong together.
pub const CONSISTENCY_TOLERANCE_CENTS: i64 = 100;
/// Months an ISEE corrente stays valid.
pub const CORRENTE_VALIDITY_MONTHS: u32 = 6;
/// Longest DSU protocol accepted.
pub const MAX_PROTOCOL_LEN: usize = 40;

/// The base scala di equivalenza of a household of `size` members, in thousandths.
pub fn base_scale(size: i32) -> Option<i32> {
    match size {
        1..=5 => BASE_SCALE_THOUSANDTHS.get(size as usize - 1).copied(),
        6..=MAX_HOUSEHOLD => {
            Some(BASE_SCALE_THOUSANDTHS[4] + (size - 5) * EXTRA_MEMBER_THOUSANDTHS)
        }
        _ => None,
    }
}

/// ISE = ISR + 20 % of ISP, in cents, rounded half up; `None` on overflow or negative input.
pub fn ise_cents(isr: i64, isp: i64) -> Option<i64> {
    if isr < 0 || isp < 0 {
        return None;
    }
    isr.checked_add(isp.checked_add(2)? / 5)
}

/// ISEE = ISE / scale, in cents, rounded half up; `None` for a non-positive scale or on overflow.
pub fn isee_from_ise(ise: i64, scale_thousandths: i32) -> Option<i64> {
    if scale_thousandths <= 0 || ise < 0 {
        return None;
    }
    let scale = i64::from(scale_thousandths);
    ise.checked_mul(1000)?
        .checked_add(scale / 2)
        .map(|n| n / scale)
}

/// Last day an attestation filed on `dsu_date` is valid: 31 December of the filing year, or six
/// months for an ISEE corrente.
pub fn legal_valid_until(kind: pb::IseeKind, dsu_date: NaiveDate) -> NaiveDate {
    if kind == pb::IseeKind::Corrente {
        dsu_date
            .checked_add_months(Months::new(CORRENTE_VALIDITY_MONTHS))
            .and_then(|d| d.pred_opt())
            .unwrap_or(dsu_date)
    } else {
        NaiveDate::from_ymd_opt(dsu_date.year(), 12, 31).unwrap_or(dsu_date)
    }
}

/// Completed years of a person born on `birth` on day `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// Short name of an ISEE kind: `ORDINARIO`.
pub fn kind_name(kind: pb::IseeKind) -> &'static str {
    kind.as_str_name()
        .strip_prefix("ISEE_KIND_")
        .unwrap_or("UNSPECIFIED")
}

/// A member of the household of a declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Canonical codice fiscale.
    pub fiscal_code: String,
    /// Day of birth, when declared.
    pub birth_date: Option<NaiveDate>,
    /// `DisabilityLevel` number; 0 for none.
    pub disability: i32,
}

/// A validated ISEE declaration: what the store keeps and the checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// Canonical codice fiscale of the declarant.
    pub fiscal_code: String,
    /// DSU protocol at INPS.
    pub dsu_protocol: String,
    /// Kind of ISEE.
    pub kind: pb::IseeKind,
    /// ISEE in cents.
    pub isee_cents: i64,
    /// ISE in cents.
    pub ise_cents: i64,
    /// ISR in cents.
    pub isr_cents: i64,
    /// ISP in cents.
    pub isp_cents: i64,
    /// Scala di equivalenza in thousandths.
    pub scale_thousandths: i32,
    /// Household members.
    pub household_size: i32,
    /// The members, declarant included; may be empty when only the size was declared.
    pub members: Vec<Member>,
    /// Day the DSU was filed.
    pub dsu_date: NaiveDate,
    /// First valid day.
    pub valid_from: NaiveDate,
    /// Last valid day.
    pub valid_until: NaiveDate,
    /// INPS reported omissions or discrepancies.
    pub discrepancies: bool,
}

impl Declaration {
    /// True when `fiscal_code` (canonical) is the declarant or a listed household member.
    pub fn concerns(&self, fiscal_code: &str) -> bool {
        self.fiscal_code == fiscal_code || self.members.iter().any(|m| m.fiscal_code == fiscal_code)
    }

    /// True when the attestation is valid on `day`.
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && day <= self.valid_until
    }
}

fn protocol_ok(p: &str) -> bool {
    let Some(rest) = p.strip_prefix("INPS-ISEE-") else {
        return false;
    };
    // `get` rather than slicing: the input may hold multi-byte characters.
    let (Some(year), Some(tail)) = (rest.get(..4), rest.get(4..)) else {
        return false;
    };
    p.len() <= MAX_PROTOCOL_LEN
        && year.bytes().all(|b| b.is_ascii_digit())
        && tail.len() > 1
        && tail.starts_with('-')
        && tail
            .bytes()
            .skip(1)
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// Validates a declaration as a client sent it; `prefix` is its path in the request
/// (`declaration`). `today` bounds the DSU date: an attestation cannot come from the future.
pub fn validate_declaration(
    d: &pb::IseeDeclaration,
    prefix: &str,
    today: NaiveDate,
) -> Result<Declaration, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");

    let fiscal_code = match ids::canonical_fiscal_code(&d.fiscal_code) {
        Ok(cf) => cf,
        Err(e) => {
            v.add(
                f("fiscal_code"),
                format!("is not a valid codice fiscale: {e}"),
            );
            String::new()
        }
    };
    let dsu_protocol = d.dsu_protocol.trim().to_ascii_uppercase();
    v.check(
        protocol_ok(&dsu_protocol),
        f("dsu_protocol"),
        format!(
            "must be the INPS protocol of the DSU, e.g. INPS-ISEE-2025-00012345A-00 (at most {MAX_PROTOCOL_LEN} characters)"
        ),
    );
    let kind = match pb::IseeKind::try_from(d.kind) {
        Ok(pb::IseeKind::Unspecified) | Err(_) => {
            v.add(f("kind"), "must be one of the IseeKind values");
            pb::IseeKind::Unspecified
        }
        Ok(k) => k,
    };

    let isee = match &d.isee {
        None => {
            v.add(f("isee"), "must be set: the ISEE value in cents");
            0
        }
        Some(m) if m.cents < 0 => {
            v.add(f("isee.cents"), "must not be negative");
            0
        }
        Some(m) => m.cents,
    };
    let mut cents = |m: &Option<patto_proto::common::v1::Money>, name: &str| {
        let c = m.as_ref().map_or(0, |m| m.cents);
        if c < 0 {
            v.add(f(&format!("{name}.cents")), "must not be negative");
            0
        } else {
            c
        }
    };
    let (mut ise, isr, isp) = (
        cents(&d.ise, "ise"),
        cents(&d.isr, "isr"),
        cents(&d.isp, "isp"),
    );

    let size = d.household_size;
    let base = base_scale(size);
    v.check(
        base.is_some(),
        f("household_size"),
        format!("must be between 1 and {MAX_HOUSEHOLD}"),
    );
    let scale = match (d.equivalence_scale_thousandths, base) {
        (0, Some(b)) => b,
        (s, Some(b)) if s < b || s > b + MAX_SCALE_ADDITIONS_THOUSANDTHS => {
            v.add(
                f("equivalence_scale_thousandths"),
                format!(
                    "must be between {b} (the base scale of {size} members) and {} (with every addition); 0 means the base scale",
                    b + MAX_SCALE_ADDITIONS_THOUSANDTHS
                ),
            );
            b
        }
        (s, _) => s,
    };

    // The figures must belong together: a typo in one of them would change who is eligible.
    if isr > 0 || isp > 0 {
        match ise_cents(isr, isp) {
            None => v.add(f("isr"), "ISR and ISP are too large"),
            Some(computed) if ise == 0 => ise = computed,
            Some(computed) => v.check(
                (ise - computed).abs() <= CONSISTENCY_TOLERANCE_CENTS,
                f("ise"),
                format!("must be ISR + 20 % of ISP = {}", euro(computed)),
            ),
        }
    }
    if ise > 0 && base.is_some() {
        match isee_from_ise(ise, scale) {
            Some(computed) => v.check(
                (isee - computed).abs() <= CONSISTENCY_TOLERANCE_CENTS,
                f("isee"),
                format!("must be ISE / scala di equivalenza = {}", euro(computed)),
            ),
            None => v.add(f("ise"), "is too large"),
        }
    }

    let dsu_date = parse_day(&d.dsu_date, &f("dsu_date"), &mut v);
    if let Some(day) = dsu_date {
        v.check(day <= today, f("dsu_date"), "must not be in the future");
        let year_in_protocol = dsu_protocol.get(10..14).and_then(|y| y.parse::<i32>().ok());
        if protocol_ok(&dsu_protocol) {
            v.check(
                year_in_protocol == Some(day.year()),
                f("dsu_protocol"),
                "its year must be the year of dsu_date",
            );
        }
    }
    let valid_from = if d.valid_from.trim().is_empty() {
        dsu_date
    } else {
        parse_day(&d.valid_from, &f("valid_from"), &mut v)
    };
    if let (Some(from), Some(dsu)) = (valid_from, dsu_date) {
        v.check(
            from >= dsu,
            f("valid_from"),
            "must not be before dsu_date: the attestation rests on the DSU",
        );
    }
    let legal_until = dsu_date.map(|day| legal_valid_until(kind, day));
    let valid_until = if d.valid_until.trim().is_empty() {
        legal_until
    } else {
        parse_day(&d.valid_until, &f("valid_until"), &mut v)
    };
    if let (Some(until), Some(legal)) = (valid_until, legal_until)
        && kind != pb::IseeKind::Unspecified
    {
        v.check(
            until <= legal,
            f("valid_until"),
            format!(
                "must not be after {legal}: an ISEE {} is valid at most until then",
                kind_name(kind).to_ascii_lowercase()
            ),
        );
    }
    if let (Some(from), Some(until)) = (valid_from, valid_until) {
        v.check(
            until >= from,
            f("valid_until"),
            "must not be before valid_from",
        );
    }

    v.check(
        d.household_members.len() <= MAX_HOUSEHOLD as usize,
        f("household_members"),
        format!("at most {MAX_HOUSEHOLD} members"),
    );
    let mut members: Vec<Member> = Vec::with_capacity(d.household_members.len());
    for (i, m) in d.household_members.iter().enumerate() {
        let mf = |name: &str| format!("{prefix}.household_members[{i}].{name}");
        let cf = match ids::canonical_fiscal_code(&m.fiscal_code) {
            Ok(cf) => cf,
            Err(e) => {
                v.add(
                    mf("fiscal_code"),
                    format!("is not a valid codice fiscale: {e}"),
                );
                continue;
            }
        };
        if members.iter().any(|x| x.fiscal_code == cf) {
            v.add(mf("fiscal_code"), "lists the same person twice");
            continue;
        }
        let birth_date = if m.birth_date.trim().is_empty() {
            None
        } else {
            let day = parse_day(&m.birth_date, &mf("birth_date"), &mut v);
            if let Some(day) = day {
                v.check(day <= today, mf("birth_date"), "must not be in the future");
            }
            day
        };
        let disability = match pb::DisabilityLevel::try_from(m.disability) {
            Ok(_) => m.disability,
            Err(_) => {
                v.add(
                    mf("disability"),
                    "must be one of the DisabilityLevel values",
                );
                0
            }
        };
        members.push(Member {
            fiscal_code: cf,
            birth_date,
            disability,
        });
    }
    if !d.household_members.is_empty() {
        v.check(
            d.household_members.len() == usize::try_from(size).unwrap_or(0),
            f("household_size"),
            "must equal the number of household_members",
        );
        if !fiscal_code.is_empty() {
            v.check(
                members.iter().any(|m| m.fiscal_code == fiscal_code),
                f("household_members"),
                "must include the declarant",
            );
        }
    }

    let (Some(dsu_date), Some(valid_from), Some(valid_until)) = (dsu_date, valid_from, valid_until)
    else {
        return Err(v);
    };
    if !v.is_empty() {
        return Err(v);
    }
    Ok(Declaration {
        fiscal_code,
        dsu_protocol,
        kind,
        isee_cents: isee,
        ise_cents: ise,
        isr_cents: isr,
        isp_cents: isp,
        scale_thousandths: scale,
        household_size: size,
        members,
        dsu_date,
        valid_from,
        valid_until,
        discrepancies: d.discrepancies,
    })
}

/// Why the ISEE declaration `decl` (id `decl_id`) cannot support application `app_id` under
/// `rules` on `today`; `None` when it can. `subjects` are the applicant and the beneficiary: the
/// attestation must concern one of them. Each refusal is FAILED_PRECONDITION, as the contract says.
pub fn submission_refusal(
    app_id: &str,
    rules: &SchemeRules,
    decl: Option<(&str, &Declaration)>,
    subjects: &[&str],
    today: NaiveDate,
) -> Option<ServiceError> {
    let refuse = |why: String| {
        Some(ServiceError::FailedPrecondition(format!(
            "application {app_id} cannot be submitted: {why}"
        )))
    };
    let Some((decl_id, d)) = decl else {
        return if rules.needs_isee() {
            refuse(
                "the scheme requires an ISEE declaration; register one and set isee_declaration_id"
                    .into(),
            )
        } else {
            None
        };
    };
    if !subjects.iter().any(|s| d.concerns(s)) {
        return refuse(format!(
            "ISEE declaration {decl_id} does not concern the applicant's or the beneficiary's household"
        ));
    }
    if today > d.valid_until {
        return refuse(format!(
            "ISEE declaration {decl_id} expired on {}; register a new attestation",
            d.valid_until
        ));
    }
    if today < d.valid_from {
        return refuse(format!(
            "ISEE declaration {decl_id} is valid only from {}",
            d.valid_from
        ));
    }
    let accepted = rules.accepted_kinds();
    if !accepted.contains(&d.kind) {
        let names: Vec<&str> = accepted.iter().map(|k| kind_name(*k)).collect();
        return refuse(format!(
            "ISEE declaration {decl_id} is an ISEE {}; the scheme accepts {}",
            kind_name(d.kind),
            names.join(", ")
        ));
    }
    if rules.isee_threshold_cents > 0 && d.isee_cents > rules.isee_threshold_cents {
        return refuse(format!(
            "the ISEE {} is above the scheme's threshold {}",
            euro(d.isee_cents),
            euro(rules.isee_threshold_cents)
        ));
    }
    None
}

/// The service's own ISEE check for an evaluation: value, kind, and INPS's discrepancy flag.
pub fn isee_check(rules: &SchemeRules, decl: Option<&Declaration>) -> Check {
    let criterion = pb::EligibilityCriterion::Isee as i32;
    let Some(d) = decl else {
        return Check {
            criterion,
            passed: !rules.needs_isee(),
            detail: if rules.needs_isee() {
                "no ISEE declaration".into()
            } else {
                "no ISEE requirement".into()
            },
        };
    };
    let kind_ok = rules.accepted_kinds().contains(&d.kind);
    let value_ok = rules.isee_threshold_cents == 0 || d.isee_cents <= rules.isee_threshold_cents;
    let mut detail = if rules.isee_threshold_cents > 0 {
        format!(
            "ISEE {} {} {} {} (valid until {})",
            kind_name(d.kind),
            euro(d.isee_cents),
            if value_ok { "≤" } else { ">" },
            euro(rules.isee_threshold_cents),
            d.valid_until
        )
    } else {
        format!(
            "ISEE {} {} (no threshold, valid until {})",
            kind_name(d.kind),
            euro(d.isee_cents),
            d.valid_until
        )
    };
    if !kind_ok {
        detail.push_str("; kind not accepted by the scheme");
    }
    if d.discrepancies {
        detail.push_str("; INPS reported omissions or discrepancies");
    }
    Check {
        criterion,
        passed: kind_ok && value_ok && !d.discrepancies,
        detail,
    }
}

/// The service's own household check for an evaluation, from the members listed in the ISEE
/// declaration, with ages taken on `on` (the day of submission).
pub fn household_check(rules: &SchemeRules, decl: Option<&Declaration>, on: NaiveDate) -> Check {
    let criterion = pb::EligibilityCriterion::Household as i32;
    let needs_members =
        rules.requires_minor || rules.requires_disabled_member || rules.requires_member_aged > 0;
    let needs_size = rules.min_household_size > 0 || rules.max_household_size > 0;
    if !needs_members && !needs_size {
        return Check {
            criterion,
            passed: true,
            detail: "no household rule".into(),
        };
    }
    let Some(d) = decl else {
        return Check {
            criterion,
            passed: false,
            detail: "no ISEE declaration describes the household".into(),
        };
    };
    let mut failures = Vec::new();
    let mut found = Vec::new();
    let size = d.household_size;
    if rules.min_household_size > 0 && size < rules.min_household_size {
        failures.push(format!(
            "{size} member(s), at least {} required",
            rules.min_household_size
        ));
    }
    if rules.max_household_size > 0 && size > rules.max_household_size {
        failures.push(format!(
            "{size} member(s), at most {} allowed",
            rules.max_household_size
        ));
    }
    if needs_size && failures.is_empty() {
        found.push(format!("{size} member(s)"));
    }
    if needs_members && d.members.is_empty() {
        failures.push("the ISEE declaration lists no household members to check".into());
    } else {
        let ages: Vec<Option<i32>> = d
            .members
            .iter()
            .map(|m| m.birth_date.map(|b| age_on(b, on)))
            .collect();
        if rules.requires_minor {
            if ages.iter().flatten().any(|a| *a < 18) {
                found.push("a minor".into());
            } else {
                failures.push("no minor in the household".into());
            }
        }
        if rules.requires_member_aged > 0 {
            if ages
                .iter()
                .flatten()
                .any(|a| *a >= rules.requires_member_aged)
            {
                found.push(format!("a member aged {}+", rules.requires_member_aged));
            } else {
                failures.push(format!(
                    "no member aged {} or more",
                    rules.requires_member_aged
                ));
            }
        }
        if rules.requires_disabled_member {
            if d.members.iter().any(|m| m.disability != 0) {
                found.push("a member with a disability".into());
            } else {
                failures.push("no member with a disability".into());
            }
        }
    }
    Check {
        criterion,
        passed: failures.is_empty(),
        detail: if failures.is_empty() {
            found.join(", ")
        } else {
            failures.join("; ")
        },
    }
}

/// True when `text` is a DSU protocol this service accepts (after trimming and upper-casing).
pub fn is_dsu_protocol(text: &str) -> bool {
    fits(text, MAX_PROTOCOL_LEN) && protocol_ok(&text.trim().to_ascii_uppercase())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use patto_proto::common::v1::Money;
    use patto_service_kit::demo::citizen;

    pub(crate) fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    pub(crate) fn good_declaration() -> pb::IseeDeclaration {
        let cf = citizen(0).fiscal_code;
        pb::IseeDeclaration {
            fiscal_code: cf.clone(),
            dsu_protocol: "INPS-ISEE-2025-00012345A-00".into(),
            kind: pb::IseeKind::Ordinario as i32,
            // ISR 14.000,00 + 20 % of ISP 10.000,00 = ISE 16.000,00; / 2,04 = 7.843,14.
            isee: Some(Money { cents: 784_314 }),
            isr: Some(Money { cents: 1_400_000 }),
            isp: Some(Money { cents: 1_000_000 }),
            household_size: 3,
            household_members: vec![
                pb::IseeHouseholdMember {
                    fiscal_code: cf,
                    birth_date: "1980-04-02".into(),
                    disability: 0,
                },
                pb::IseeHouseholdMember {
                    fiscal_code: citizen(1).fiscal_code,
                    birth_date: "1950-01-10".into(),
                    disability: pb::DisabilityLevel::Grave as i32,
                },
                pb::IseeHouseholdMember {
                    fiscal_code: citizen(2).fiscal_code,
                    birth_date: "2015-06-30".into(),
                    disability: 0,
                },
            ],
            dsu_date: "2025-02-10".into(),
            ..Default::default()
        }
    }

    #[test]
    fn scales_and_indicators() {
        let scales: Vec<Option<i32>> = (0..=7).map(base_scale).collect();
        assert_eq!(
            scales,
            [
                None,
                Some(1000),
                Some(1570),
                Some(2040),
                Some(2460),
                Some(2850),
                Some(3200),
                Some(3550)
            ]
        );
        assert_eq!(base_scale(21), None);
        // ISE = ISR + 20 % ISP; ISEE = ISE / scale, both rounded half up to the cent.
        let cases = [
            (1_400_000, 1_000_000, 2040, 1_600_000, 784_314),
            (0, 0, 1000, 0, 0),
            (800_000, 3, 1570, 800_001, 509_555),
            (1_000_000, 0, 1000, 1_000_000, 1_000_000),
        ];
        for (isr, isp, scale, ise, isee) in cases {
            assert_eq!(ise_cents(isr, isp), Some(ise), "{isr} {isp}");
            assert_eq!(isee_from_ise(ise, scale), Some(isee), "{ise} {scale}");
        }
        assert_eq!(ise_cents(i64::MAX, 10), None);
        assert_eq!(ise_cents(-1, 0), None);
        assert_eq!(isee_from_ise(i64::MAX, 1000), None);
        assert_eq!(isee_from_ise(100, 0), None);
    }

    #[test]
    fn validity_and_ages() {
        let cases = [
            (pb::IseeKind::Ordinario, "2025-02-10", "2025-12-31"),
            (pb::IseeKind::Minorenni, "2025-12-31", "2025-12-31"),
            (pb::IseeKind::Corrente, "2025-02-10", "2025-08-09"),
            // Six months from 31 August end on the last day of February, less one day.
            (pb::IseeKind::Corrente, "2025-08-31", "2026-02-27"),
        ];
        for (kind, dsu, until) in cases {
            assert_eq!(
                legal_valid_until(kind, day(dsu)),
                day(until),
                "{kind:?} {dsu}"
            );
        }
        assert_eq!(age_on(day("2007-06-30"), day("2025-06-29")), 17);
        assert_eq!(age_on(day("2007-06-30"), day("2025-06-30")), 18);
        assert_eq!(age_on(day("2008-02-29"), day("2025-02-28")), 16);
    }

    #[test]
    fn a_good_declaration_gets_its_defaults() {
        let d =
            validate_declaration(&good_declaration(), "declaration", day("2025-03-01")).unwrap();
        assert_eq!(d.ise_cents, 1_600_000, "ISE computed from ISR and ISP");
        assert_eq!(d.scale_thousandths, 2040, "base scale of 3 members");
        assert_eq!(
            (d.valid_from, d.valid_until),
            (day("2025-02-10"), day("2025-12-31"))
        );
        assert!(d.concerns(&citizen(2).fiscal_code));
        assert!(!d.concerns(&citizen(3).fiscal_code));
        let mut bare = good_declaration();
        bare.household_members.clear();
        bare.isr = None;
        bare.isp = None;
        assert!(validate_declaration(&bare, "declaration", day("2025-03-01")).is_ok());
    }

    #[test]
    fn declaration_violations_name_their_field() {
        type Edit = fn(&mut pb::IseeDeclaration);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "bad cf",
                |d| d.fiscal_code = "RSSMRA80A01G273A".into(),
                "declaration.fiscal_code",
            ),
            (
                "bad protocol",
                |d| d.dsu_protocol = "12345".into(),
                "declaration.dsu_protocol",
            ),
            (
                "protocol of another year",
                |d| d.dsu_protocol = "INPS-ISEE-2024-00012345A-00".into(),
                "declaration.dsu_protocol",
            ),
            ("no kind", |d| d.kind = 0, "declaration.kind"),
            ("no isee", |d| d.isee = None, "declaration.isee"),
            (
                "negative isee",
                |d| d.isee = Some(Money { cents: -1 }),
                "declaration.isee.cents",
            ),
            (
                "negative isp",
                |d| d.isp = Some(Money { cents: -1 }),
                "declaration.isp.cents",
            ),
            (
                "isee off",
                |d| d.isee = Some(Money { cents: 700_000 }),
                "declaration.isee",
            ),
            (
                "ise off",
                |d| d.ise = Some(Money { cents: 1_500_000 }),
                "declaration.ise",
            ),
            (
                "no household",
                |d| d.household_size = 0,
                "declaration.household_size",
            ),
            (
                "size differs from members",
                |d| d.household_size = 4,
                "declaration.household_size",
            ),
            (
                "scale below base",
                |d| d.equivalence_scale_thousandths = 1570,
                "declaration.equivalence_scale_thousandths",
            ),
            (
                "future dsu",
                |d| d.dsu_date = "2025-03-02".into(),
                "declaration.dsu_date",
            ),
            (
                "no dsu date",
                |d| d.dsu_date = String::new(),
                "declaration.dsu_date",
            ),
            (
                "valid before the dsu",
                |d| d.valid_from = "2025-01-01".into(),
                "declaration.valid_from",
            ),
            (
                "valid past the year",
                |d| d.valid_until = "2026-01-15".into(),
                "declaration.valid_until",
            ),
            (
                "declarant missing",
                |d| {
                    d.household_members[0].fiscal_code = citizen(9).fiscal_code;
                },
                "declaration.household_members",
            ),
            (
                "member twice",
                |d| d.household_members[2].fiscal_code = citizen(1).fiscal_code,
                "declaration.household_members[2].fiscal_code",
            ),
            (
                "bad birth",
                |d| d.household_members[1].birth_date = "1950-13-01".into(),
                "declaration.household_members[1].birth_date",
            ),
            (
                "bad disability",
                |d| d.household_members[1].disability = 7,
                "declaration.household_members[1].disability",
            ),
        ];
        for (case, edit, field) in cases {
            let mut d = good_declaration();
            edit(&mut d);
            let v = validate_declaration(&d, "declaration", day("2025-03-01")).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
        let v = validate_declaration(
            &pb::IseeDeclaration::default(),
            "declaration",
            day("2025-03-01"),
        )
        .unwrap_err();
        let fields: Vec<&str> = v.as_slice().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "declaration.fiscal_code",
                "declaration.dsu_protocol",
                "declaration.kind",
                "declaration.isee",
                "declaration.household_size",
                "declaration.dsu_date"
            ]
        );
    }

    fn rules(threshold: i64) -> SchemeRules {
        SchemeRules {
            isee_threshold_cents: threshold,
            ..Default::default()
        }
    }

    #[test]
    fn submission_checks_the_isee() {
        let d =
            validate_declaration(&good_declaration(), "declaration", day("2025-03-01")).unwrap();
        let me = citizen(0).fiscal_code;
        let stranger = citizen(5).fiscal_code;
        let corrente = Declaration {
            kind: pb::IseeKind::Corrente,
            ..d.clone()
        };
        let minorenni = Declaration {
            kind: pb::IseeKind::Minorenni,
            ..d.clone()
        };
        let ok: Option<&str> = None;
        type Case<'a> = (
            &'a str,
            SchemeRules,
            Option<&'a Declaration>,
            &'a str,
            &'a str,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "within threshold",
                rules(1_014_000),
                Some(&d),
                &me,
                "2025-03-01",
                ok,
            ),
            (
                "at the threshold",
                rules(784_314),
                Some(&d),
                &me,
                "2025-03-01",
                ok,
            ),
            (
                "corrente accepted by default",
                rules(1_014_000),
                Some(&corrente),
                &me,
                "2025-03-01",
                ok,
            ),
            (
                "no threshold, no isee",
                rules(0),
                None,
                &me,
                "2025-03-01",
                ok,
            ),
            (
                "missing",
                rules(1_014_000),
                None,
                &me,
                "2025-03-01",
                Some("requires an ISEE declaration"),
            ),
            (
                "above the threshold",
                rules(700_000),
                Some(&d),
                &me,
                "2025-03-01",
                Some("the ISEE € 7.843,14 is above the scheme's threshold € 7.000,00"),
            ),
            (
                "expired",
                rules(1_014_000),
                Some(&d),
                &me,
                "2026-01-01",
                Some("expired on 2025-12-31"),
            ),
            (
                "not yet valid",
                rules(1_014_000),
                Some(&d),
                &me,
                "2025-02-09",
                Some("valid only from 2025-02-10"),
            ),
            (
                "wrong kind",
                rules(1_014_000),
                Some(&minorenni),
                &me,
                "2025-03-01",
                Some("is an ISEE MINORENNI; the scheme accepts ORDINARIO, CORRENTE"),
            ),
            (
                "someone else's",
                rules(1_014_000),
                Some(&d),
                &stranger,
                "2025-03-01",
                Some("does not concern"),
            ),
        ];
        for (case, rules, decl, who, today, refusal) in cases {
            let got = submission_refusal("a1", &rules, decl.map(|d| ("i1", d)), &[who], day(today));
            match (got, refusal) {
                (None, None) => {}
                (Some(ServiceError::FailedPrecondition(msg)), Some(text)) => {
                    assert!(
                        msg.contains(text) && msg.starts_with("application a1"),
                        "{case}: {msg}"
                    )
                }
                (got, want) => panic!("{case}: {got:?} / {want:?}"),
            }
        }
    }

    #[test]
    fn automatic_checks() {
        let d =
            validate_declaration(&good_declaration(), "declaration", day("2025-03-01")).unwrap();
        let on = day("2025-03-01");
        let c = isee_check(&rules(1_014_000), Some(&d));
        assert!(c.passed, "{}", c.detail);
        assert!(
            c.detail.contains("€ 7.843,14 ≤ € 10.140,00"),
            "{}",
            c.detail
        );
        assert!(!isee_check(&rules(700_000), Some(&d)).passed);
        let flagged = Declaration {
            discrepancies: true,
            ..d.clone()
        };
        assert!(!isee_check(&rules(1_014_000), Some(&flagged)).passed);
        assert!(!isee_check(&rules(1_014_000), None).passed);
        assert!(isee_check(&rules(0), None).passed);

        let household = |edit: fn(&mut SchemeRules)| {
            let mut r = rules(0);
            edit(&mut r);
            r
        };
        let cases: [(&str, SchemeRules, bool); 8] = [
            ("no rule", rules(0), true),
            ("minor", household(|r| r.requires_minor = true), true),
            ("aged 75", household(|r| r.requires_member_aged = 75), true),
            ("aged 80", household(|r| r.requires_member_aged = 80), false),
            (
                "disabled",
                household(|r| r.requires_disabled_member = true),
                true,
            ),
            ("at least 4", household(|r| r.min_household_size = 4), false),
            ("at most 3", household(|r| r.max_household_size = 3), true),
            ("at most 2", household(|r| r.max_household_size = 2), false),
        ];
        for (case, r, passed) in cases {
            let c = household_check(&r, Some(&d), on);
            assert_eq!(c.passed, passed, "{case}: {}", c.detail);
        }
        let bare = Declaration {
            members: Vec::new(),
            ..d.clone()
        };
        let c = household_check(&household(|r| r.requires_minor = true), Some(&bare), on);
        assert!(!c.passed && c.detail.contains("lists no household members"));
        assert!(!household_check(&household(|r| r.requires_minor = true), None, on).passed);
    }

    #[test]
    fn protocols() {
        assert!(is_dsu_protocol("INPS-ISEE-2025-00012345A-00"));
        assert!(is_dsu_protocol(" inps-isee-2025-00012345a-00 "));
        assert!(!is_dsu_protocol("INPS-ISEE-25-1"));
        assert!(!is_dsu_protocol("INPS-ISEE-2025-"));
        assert!(!is_dsu_protocol(
            "INPS-ISEE-2025-00012345A-00-AAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(!is_dsu_protocol("INPS-ISEE-2025-0001 2345"));
        assert!(!is_dsu_protocol("INPS-ISEE-€€€€-1"));
    }
}
