//! Benefit applications: what a draft may hold, what a submission must hold, and how a
//! caseworker's evaluation becomes ADMISSIBLE or NOT_ADMISSIBLE.

use chrono::NaiveDate;
use patto_proto::social::v1 as pb;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::ids;
use serde::{Deserialize, Serialize};

use super::isee::{self, Declaration};
use super::scheme::SchemeRules;
use super::{MAX_NAME_LEN, MAX_REF_LEN, MAX_TEXT_LEN, fits};

/// Most documents one application may carry.
pub const MAX_ATTACHMENTS: usize = 30;
/// Largest file accepted as an attachment: 20 MiB, what the comuni's protocollo systems take.
pub const MAX_ATTACHMENT_BYTES: i64 = 20 * 1024 * 1024;
/// Most eligibility checks one evaluation may record.
pub const MAX_CHECKS: usize = 30;
/// Highest score a caseworker may give.
pub const MAX_SCORE: i32 = 1_000_000;

/// One eligibility check, as stored with the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `EligibilityCriterion` number.
    pub criterion: i32,
    /// True when met.
    pub passed: bool,
    /// What was checked and found.
    pub detail: String,
}

/// Metadata of a document, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// File name.
    pub name: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Media type.
    pub media_type: String,
    /// Kind of document.
    pub document_type: String,
}

/// The validated content of a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftContent {
    /// Scheme id.
    pub scheme_id: String,
    /// Canonical codice fiscale of the applicant.
    pub applicant: String,
    /// Canonical codice fiscale of the beneficiary; empty when the applicant benefits.
    pub beneficiary: String,
    /// ISEE declaration id; empty when none yet.
    pub isee_declaration_id: String,
    /// IBAN, compact and uppercase; empty when not given yet.
    pub iban: String,
    /// Email or phone.
    pub contact: String,
    /// Statement of need.
    pub statement: String,
    /// Documents.
    pub attachments: Vec<NewAttachment>,
}

impl DraftContent {
    /// The citizens the application concerns: the applicant and, when set, the beneficiary.
    pub fn subjects(&self) -> Vec<&str> {
        let mut s = vec![self.applicant.as_str()];
        if !self.beneficiary.is_empty() {
            s.push(&self.beneficiary);
        }
        s
    }
}

/// Checks an IBAN (ISO 13616: country, check digits by mod 97, national length for Italy) and
/// returns it compact and uppercase.
pub fn canonical_iban(input: &str) -> Result<String, String> {
    let iban: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !iban.is_ascii() || !(15..=34).contains(&iban.len()) {
        return Err(
            "must be an IBAN of 15 to 34 letters and digits, e.g. IT60X0542811101000000123456"
                .into(),
        );
    }
    let b = iban.as_bytes();
    let shape = b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
        && b.iter().all(u8::is_ascii_alphanumeric);
    if !shape {
        return Err(
            "must start with a country code and two check digits, then letters and digits".into(),
        );
    }
    if iban.starts_with("IT") && iban.len() != 27 {
        return Err("an Italian IBAN has 27 characters".into());
    }
    // Move the first four characters to the end, letters become 10..35, the number mod 97 is 1.
    let mut remainder: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
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
    if remainder == 1 {
        Ok(iban)
    } else {
        Err("the check digits do not match: check the IBAN for typos".into())
    }
}

fn contact_ok(contact: &str) -> bool {
    if let Some((user, domain)) = contact.split_once('@') {
        return !user.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !contact.contains(char::is_whitespace);
    }
    let digits = contact.chars().filter(char::is_ascii_digit).count();
    (6..=15).contains(&digits)
        && contact
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
}

/// Validates attachments sent at `prefix` (e.g. `draft.attachments`).
pub fn validate_attachments(
    list: &[pb::BenefitAttachment],
    prefix: &str,
    v: &mut Violations,
) -> Vec<NewAttachment> {
    v.check(
        list.len() <= MAX_ATTACHMENTS,
        prefix,
        format!("at most {MAX_ATTACHMENTS} documents"),
    );
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let f = |name: &str| format!("{prefix}[{i}].{name}");
        let before = v.as_slice().len();
        let name = a.name.trim();
        v.check(
            !name.is_empty() && fits(name, MAX_NAME_LEN) && !name.contains(['/', '\\']),
            f("name"),
            format!("must be a file name of 1 to {MAX_NAME_LEN} characters, without a path"),
        );
        let sha = a.sha256.trim().to_ascii_lowercase();
        v.check(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            f("sha256"),
            "must be the SHA-256 of the file: 64 hexadecimal digits",
        );
        v.check(
            (1..=MAX_ATTACHMENT_BYTES).contains(&a.size_bytes),
            f("size_bytes"),
            format!("must be between 1 and {MAX_ATTACHMENT_BYTES} bytes (20 MiB)"),
        );
        let media = a.media_type.trim().to_ascii_lowercase();
        v.check(
            media.split_once('/').is_some_and(|(t, s)| {
                !t.is_empty() && !s.is_empty() && !media.contains(char::is_whitespace)
            }) && fits(&media, 100),
            f("media_type"),
            "must be a media type such as application/pdf",
        );
        v.check(
            fits(&a.document_type, MAX_NAME_LEN),
            f("document_type"),
            format!("must be at most {MAX_NAME_LEN} characters"),
        );
        if v.as_slice().len() == before {
            out.push(NewAttachment {
                name: name.to_owned(),
                sha256: sha,
                size_bytes: a.size_bytes,
                media_type: media,
                document_type: a.document_type.trim().to_owned(),
            });
        }
    }
    out
}

/// Validates a draft as a client sent it; `prefix` is its path (`draft`). A draft may be
/// incomplete (no ISEE, no IBAN yet): completeness is checked at submission.
pub fn validate_draft(
    d: &pb::BenefitApplicationDraft,
    prefix: &str,
) -> Result<DraftContent, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");
    let scheme_id = d.scheme_id.trim();
    v.check(
        !scheme_id.is_empty() && scheme_id.len() <= 64,
        f("scheme_id"),
        "must be the id of the benefit scheme applied for",
    );
    let applicant = match ids::canonical_fiscal_code(&d.applicant_fiscal_code) {
        Ok(cf) => cf,
        Err(e) => {
            v.add(
                f("applicant_fiscal_code"),
                format!("is not a valid codice fiscale: {e}"),
            );
            String::new()
        }
    };
    let beneficiary = if d.beneficiary_fiscal_code.trim().is_empty() {
        String::new()
    } else {
        match ids::canonical_fiscal_code(&d.beneficiary_fiscal_code) {
            // The applicant benefiting is said by leaving the field empty; keep one form.
            Ok(cf) if cf == applicant => String::new(),
            Ok(cf) => cf,
            Err(e) => {
                v.add(
                    f("beneficiary_fiscal_code"),
                    format!("is not a valid codice fiscale: {e}"),
                );
                String::new()
            }
        }
    };
    let isee_declaration_id = d.isee_declaration_id.trim();
    v.check(
        isee_declaration_id.len() <= 64,
        f("isee_declaration_id"),
        "must be an ISEE declaration id or empty",
    );
    let iban = if d.iban.trim().is_empty() {
        String::new()
    } else {
        canonical_iban(&d.iban).unwrap_or_else(|msg| {
            v.add(f("iban"), msg);
            String::new()
        })
    };
    let contact = d.contact.trim();
    v.check(
        contact.is_empty() || (contact_ok(contact) && fits(contact, MAX_REF_LEN)),
        f("contact"),
        "must be an email address or a phone number",
    );
    v.check(
        fits(&d.statement, MAX_TEXT_LEN),
        f("statement"),
        format!("must be at most {MAX_TEXT_LEN} characters"),
    );
    let attachments = validate_attachments(&d.attachments, &f("attachments"), &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    Ok(DraftContent {
        scheme_id: scheme_id.to_owned(),
        applicant,
        beneficiary,
        isee_declaration_id: isee_declaration_id.to_owned(),
        iban,
        contact: contact.to_owned(),
        statement: d.statement.trim().to_owned(),
        attachments,
    })
}

/// What a submission still lacks besides the ISEE (checked by [`isee::submission_refusal`]): a
/// contact, an IBAN when the comune pays an amount, and the documents the scheme requires.
pub fn completeness_refusal(
    app_id: &str,
    rules: &SchemeRules,
    paid_by_comune: bool,
    iban: &str,
    contact: &str,
    document_types: &[&str],
) -> Option<ServiceError> {
    let mut missing = Vec::new();
    if contact.is_empty() {
        missing.push("a contact (email or phone)".to_owned());
    }
    if iban.is_empty() && paid_by_comune && rules.amount_cents > 0 {
        missing.push("the IBAN payments are credited to".to_owned());
    }
    for doc in &rules.required_documents {
        if !document_types.iter().any(|d| d.eq_ignore_ascii_case(doc)) {
            missing.push(format!("the document \"{doc}\""));
        }
    }
    (!missing.is_empty()).then(|| {
        ServiceError::FailedPrecondition(format!(
            "application {app_id} cannot be submitted: it lacks {}",
            missing.join(", ")
        ))
    })
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The caseworker's checks, then the service's own for criteria the caseworker left out.
    pub checks: Vec<Check>,
    /// Score recorded.
    pub score: i32,
    /// True when every check passed.
    pub admissible: bool,
}

/// Validates a caseworker's checks and score and completes them: the service adds its own ISEE
/// and household checks (from the declaration relied on, ages taken on `submitted_on`) for the
/// criteria the caseworker did not check. Residence needs ANPR, which only the caseworker
/// consults, so a scheme requiring residence needs a RESIDENCE check in the request.
pub fn evaluate(
    rules: &SchemeRules,
    supplied: &[pb::EligibilityCheck],
    score: i32,
    decl: Option<&Declaration>,
    submitted_on: NaiveDate,
) -> Result<Evaluation, Violations> {
    let mut v = Violations::new();
    v.check(
        supplied.len() <= MAX_CHECKS,
        "checks",
        format!("at most {MAX_CHECKS} checks"),
    );
    let mut checks: Vec<Check> = Vec::with_capacity(supplied.len() + 2);
    for (i, c) in supplied.iter().enumerate() {
        let criterion = pb::EligibilityCriterion::try_from(c.criterion)
            .unwrap_or(pb::EligibilityCriterion::Unspecified);
        if criterion == pb::EligibilityCriterion::Unspecified {
            v.add(
                format!("checks[{i}].criterion"),
                "must be one of the EligibilityCriterion values",
            );
            continue;
        }
        if criterion != pb::EligibilityCriterion::Other
            && checks.iter().any(|x| x.criterion == c.criterion)
        {
            v.add(
                format!("checks[{i}].criterion"),
                "is checked twice; record one outcome per criterion (OTHER may repeat)",
            );
            continue;
        }
        if !fits(&c.detail, 1000) {
            v.add(
                format!("checks[{i}].detail"),
                "must be at most 1000 characters",
            );
            continue;
        }
        checks.push(Check {
            criterion: c.criterion,
            passed: c.passed,
            detail: c.detail.trim().to_owned(),
        });
    }
    let has = |criterion: pb::EligibilityCriterion, checks: &[Check]| {
        checks.iter().any(|c| c.criterion == criterion as i32)
    };
    if rules.requires_residence && !has(pb::EligibilityCriterion::Residence, &checks) {
        v.add(
            "checks",
            "the scheme requires residence in the comune: add an ELIGIBILITY_CRITERION_RESIDENCE check with the ANPR outcome",
        );
    }
    if rules.criterion() == pb::RankingCriterion::Score {
        v.check(
            (0..=MAX_SCORE).contains(&score),
            "score",
            format!("must be between 0 and {MAX_SCORE}"),
        );
    } else {
        v.check(
            score == 0,
            "score",
            "must be 0: the scheme is not ranked by score",
        );
    }
    if !v.is_empty() {
        return Err(v);
    }
    if !has(pb::EligibilityCriterion::Isee, &checks) {
        checks.push(isee::isee_check(rules, decl));
    }
    if !has(pb::EligibilityCriterion::Household, &checks) {
        checks.push(isee::household_check(rules, decl, submitted_on));
    }
    let admissible = checks.iter().all(|c| c.passed);
    Ok(Evaluation {
        checks,
        score,
        admissible,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::isee::tests::{day, good_declaration};
    use patto_service_kit::demo::citizen;

    fn attachment() -> pb::BenefitAttachment {
        pb::BenefitAttachment {
            name: "isee.pdf".into(),
            sha256: "a".repeat(64),
            size_bytes: 120_000,
            media_type: "application/pdf".into(),
            document_type: "attestazione ISEE".into(),
            ..Default::default()
        }
    }

    fn good_draft() -> pb::BenefitApplicationDraft {
        pb::BenefitApplicationDraft {
            scheme_id: "sch-1".into(),
            applicant_fiscal_code: citizen(0).fiscal_code.to_ascii_lowercase(),
            beneficiary_fiscal_code: citizen(0).fiscal_code,
            iban: "it60 x054 2811 1010 0000 0123 456".into(),
            contact: "+39 091 123 4567".into(),
            attachments: vec![attachment()],
            ..Default::default()
        }
    }

    #[test]
    fn ibans() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "IT60X0542811101000000123456",
                Ok("IT60X0542811101000000123456"),
            ),
            (
                "it60 x054 2811 1010 0000 0123 456",
                Ok("IT60X0542811101000000123456"),
            ),
            ("DE89370400440532013000", Ok("DE89370400440532013000")),
            ("GB82WEST12345698765432", Ok("GB82WEST12345698765432")),
            ("IT61X0542811101000000123456", Err("check digits")),
            ("IT60X054281110100000012345", Err("27 characters")),
            ("1T60X0542811101000000123456", Err("country code")),
            ("IT60X05428111010000001234€6", Err("15 to 34")),
            ("IT60", Err("15 to 34")),
        ];
        for (input, expected) in cases {
            match (canonical_iban(input), expected) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want),
                (Err(msg), Err(part)) => assert!(msg.contains(part), "{input}: {msg}"),
                (got, want) => panic!("{input}: {got:?} / {want:?}"),
            }
        }
    }

    #[test]
    fn drafts() {
        let d = validate_draft(&good_draft(), "draft").unwrap();
        assert_eq!(d.applicant, citizen(0).fiscal_code);
        assert_eq!(
            d.beneficiary, "",
            "the applicant as beneficiary is stored as empty"
        );
        assert_eq!(d.iban, "IT60X0542811101000000123456");
        assert_eq!(d.subjects(), [citizen(0).fiscal_code.as_str()]);

        type Edit = fn(&mut pb::BenefitApplicationDraft);
        let cases: &[(&str, Edit, &str)] = &[
            ("no scheme", |d| d.scheme_id.clear(), "draft.scheme_id"),
            (
                "bad applicant",
                |d| d.applicant_fiscal_code = "X".into(),
                "draft.applicant_fiscal_code",
            ),
            (
                "bad beneficiary",
                |d| d.beneficiary_fiscal_code = "RSSMRA80A01G273A".into(),
                "draft.beneficiary_fiscal_code",
            ),
            ("bad iban", |d| d.iban = "IT00".into(), "draft.iban"),
            (
                "bad contact",
                |d| d.contact = "call me".into(),
                "draft.contact",
            ),
            (
                "long statement",
                |d| d.statement = "x".repeat(4001),
                "draft.statement",
            ),
            (
                "path in name",
                |d| d.attachments[0].name = "../etc/passwd".into(),
                "draft.attachments[0].name",
            ),
            (
                "bad sha",
                |d| d.attachments[0].sha256 = "abc".into(),
                "draft.attachments[0].sha256",
            ),
            (
                "empty file",
                |d| d.attachments[0].size_bytes = 0,
                "draft.attachments[0].size_bytes",
            ),
            (
                "bad media",
                |d| d.attachments[0].media_type = "pdf".into(),
                "draft.attachments[0].media_type",
            ),
        ];
        for (case, edit, field) in cases {
            let mut d = good_draft();
            edit(&mut d);
            let v = validate_draft(&d, "draft").expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
        assert!(contact_ok("maria.russo@example.it"));
        assert!(!contact_ok("maria@"));
        assert!(!contact_ok("12345"));
    }

    #[test]
    fn completeness() {
        let rules = SchemeRules {
            amount_cents: 50_000,
            required_documents: vec!["documento di identità".into()],
            ..Default::default()
        };
        assert!(
            completeness_refusal(
                "a",
                &rules,
                true,
                "IT60X0542811101000000123456",
                "a@b.it",
                &["Documento di identità"]
            )
            .is_none()
        );
        let e = completeness_refusal("a", &rules, true, "", "", &[]).unwrap();
        assert_eq!(
            e.to_string(),
            "application a cannot be submitted: it lacks a contact (email or phone), the IBAN payments are credited to, the document \"documento di identità\""
        );
        assert!(
            completeness_refusal("a", &rules, false, "", "a@b.it", &["documento di identità"])
                .is_none(),
            "no IBAN needed when INPS pays"
        );
    }

    #[test]
    fn evaluations() {
        let decl = isee::validate_declaration(&good_declaration(), "d", day("2025-03-01")).unwrap();
        let rules = SchemeRules {
            isee_threshold_cents: 1_014_000,
            requires_residence: true,
            ranking_criterion: pb::RankingCriterion::Score as i32,
            requires_minor: true,
            ..Default::default()
        };
        let residence = pb::EligibilityCheck {
            criterion: pb::EligibilityCriterion::Residence as i32,
            passed: true,
            detail: "residente dal 2010 (ANPR)".into(),
        };
        let e = evaluate(
            &rules,
            std::slice::from_ref(&residence),
            70,
            Some(&decl),
            day("2025-03-01"),
        )
        .unwrap();
        assert!(e.admissible);
        let criteria: Vec<i32> = e.checks.iter().map(|c| c.criterion).collect();
        assert_eq!(
            criteria,
            [2, 1, 3],
            "caseworker's first, then the service's ISEE and household checks"
        );

        let failed = pb::EligibilityCheck {
            passed: false,
            ..residence.clone()
        };
        assert!(
            !evaluate(&rules, &[failed], 70, Some(&decl), day("2025-03-01"))
                .unwrap()
                .admissible
        );
        // A caseworker's household check replaces the service's own.
        let household = pb::EligibilityCheck {
            criterion: pb::EligibilityCriterion::Household as i32,
            passed: false,
            detail: "nucleo diverso da quello dichiarato".into(),
        };
        let e = evaluate(
            &rules,
            &[residence.clone(), household],
            70,
            Some(&decl),
            day("2025-03-01"),
        )
        .unwrap();
        assert!(!e.admissible);
        assert_eq!(e.checks.len(), 3);

        let fields = |r: Result<Evaluation, Violations>| -> Vec<String> {
            r.unwrap_err()
                .as_slice()
                .iter()
                .map(|v| v.field.clone())
                .collect()
        };
        assert_eq!(
            fields(evaluate(&rules, &[], 70, Some(&decl), day("2025-03-01"))),
            ["checks"]
        );
        assert_eq!(
            fields(evaluate(
                &rules,
                &[residence.clone(), residence.clone()],
                -1,
                Some(&decl),
                day("2025-03-01")
            )),
            ["checks[1].criterion", "score"]
        );
        let unranked = SchemeRules::default();
        assert_eq!(
            fields(evaluate(&unranked, &[], 5, None, day("2025-03-01"))),
            ["score"]
        );
        assert_eq!(
            fields(evaluate(
                &unranked,
                &[pb::EligibilityCheck::default()],
                0,
                None,
                day("2025-03-01")
            )),
            ["checks[0].criterion"]
        );
    }
}
