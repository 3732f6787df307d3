//! Job offers and applications: what makes an offer publishable, when it accepts applications,
//! what an application must carry, and how the comune's review moves it to an outcome.

use chrono::{Duration, NaiveDate};
use patto_proto::common::v1::Address;
use patto_proto::employment::v1 as pb;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::{comuni, ids};

use super::codes::{self, validate_ateco, validate_cp2021_unit, validate_eqf};
use super::{MAX_NAME_LEN, MAX_NOTE_LEN, MAX_TEXT_LEN, reference, text};

/// Most weekly hours a contract may state (D.Lgs 66/2003 art. 4: 48 hours on average).
pub const MAX_WEEKLY_HOURS: i32 = 48;
/// Longest contract an offer may state, in months.
pub const MAX_DURATION_MONTHS: i32 = 60;
/// Most positions one offer may fill.
pub const MAX_POSITIONS: i32 = 1000;
/// How far ahead an application deadline may be set.
pub const MAX_DEADLINE_DAYS: i64 = 366;
/// Highest gross yearly pay an offer may state, in cents (€ 1,000,000): larger is a typo.
pub const MAX_PAY_CENTS: i64 = 100_000_000;
/// Largest CV accepted, in bytes (10 MiB).
pub const MAX_CV_BYTES: i64 = 10 * 1024 * 1024;
/// Media types accepted for a CV: PDF, Word (OOXML) and OpenDocument text.
pub const CV_MEDIA_TYPES: [&str; 3] = [
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.oasis.opendocument.text",
];

/// A validated address inside a comune.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// Street with its toponym.
    pub street: String,
    /// House number.
    pub house_number: String,
    /// CAP.
    pub postal_code: String,
    /// Locality or frazione.
    pub locality: String,
}

/// Validates an address that must lie in comune `istat_code`.
pub(crate) fn validate_place(
    a: &Address,
    istat_code: &str,
    prefix: &str,
    v: &mut Violations,
) -> Place {
    let f = |name: &str| format!("{prefix}.{name}");
    v.check(
        a.istat_code.is_empty() || a.istat_code == istat_code,
        f("istat_code"),
        format!("must be empty or {istat_code}, the comune of the record"),
    );
    let street = text(&a.street, &f("street"), true, MAX_NAME_LEN, v);
    let house_number = reference(&a.house_number, &f("house_number"), v);
    let locality = text(&a.locality, &f("locality"), false, MAX_NAME_LEN, v);
    let postal_code = a.postal_code.trim().to_owned();
    if !postal_code.is_empty()
        && let Some(comune) = comuni::by_istat(istat_code)
        && !comune.postal_codes.contains(&postal_code)
    {
        v.add(
            f("postal_code"),
            format!(
                "is not a CAP of {}: use one of {}",
                comune.name,
                comune.postal_codes.join(", ")
            ),
        );
    }
    Place {
        street,
        house_number,
        postal_code,
        locality,
    }
}

/// Checks a partita IVA or, for private employers, a codice fiscale; returns its canonical form.
pub fn employer_tax_code(value: &str) -> Result<String, String> {
    let t = value.trim();
    if t.len() == 11 {
        ids::validate_partita_iva(t)
            .map(|()| t.to_owned())
            .map_err(|e| format!("is not a valid partita IVA: {e}"))
    } else {
        ids::canonical_fiscal_code(t).map_err(|e| {
            format!("must be a partita IVA (11 digits) or a codice fiscale (16 characters): {e}")
        })
    }
}

/// Parses an ISO day of the request.
pub(crate) fn day(value: &str, field: &str, v: &mut Violations) -> Option<NaiveDate> {
    if value.trim().is_empty() {
        v.add(field, "must be set, YYYY-MM-DD");
        return None;
    }
    patto_service_kit::indicators::parse_day(value.trim(), field, v)
}

/// A validated job offer, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJobOffer {
    /// ISTAT code of the comune.
    pub istat_code: String,
    /// The comune's reference; empty when none.
    pub external_ref: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// CP2021 unit.
    pub profession_code: String,
    /// ATECO 2025 code.
    pub ateco_code: String,
    /// Employer name.
    pub employer_name: String,
    /// Employer partita IVA or codice fiscale, canonical.
    pub employer_tax_code: String,
    /// The employer asked not to be named in public.
    pub employer_anonymous: bool,
    /// Contract type.
    pub contract_type: pb::JobContractType,
    /// Weekly hours.
    pub weekly_hours: i32,
    /// Months; 0 when open-ended or not stated.
    pub duration_months: i32,
    /// Positions.
    pub positions: i32,
    /// Last day for applications.
    pub application_deadline: NaiveDate,
    /// Requirements.
    pub requirements: String,
    /// Minimum EQF level, 0 for none.
    pub min_eqf_level: i32,
    /// Where the work is done, if stated.
    pub work_address: Option<Place>,
    /// Lower end of the yearly gross pay, in cents.
    pub pay_min_cents: Option<i64>,
    /// Upper end of the yearly gross pay, in cents.
    pub pay_max_cents: Option<i64>,
    /// Office of the comune following the offer.
    pub contact_office: String,
}

/// Validates a job offer as a client sent it; `prefix` is its path in the request (e.g.
/// `job_offer`), `today` the Italian day of the request.
pub fn validate_job_offer(
    o: &pb::JobOffer,
    prefix: &str,
    today: NaiveDate,
) -> Result<NewJobOffer, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");
    v.check(
        ids::is_known_istat_code(&o.istat_code),
        f("istat_code"),
        "must be the 6-digit ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    let title = text(&o.title, &f("title"), true, MAX_NAME_LEN, &mut v);
    let description = text(
        &o.description,
        &f("description"),
        false,
        MAX_TEXT_LEN,
        &mut v,
    );
    let profession_code = o.profession_code.trim().to_owned();
    if let Err(e) = validate_cp2021_unit(&profession_code) {
        v.add(f("profession_code"), e);
    }
    let ateco_code = o.ateco_code.trim().to_owned();
    if let Err(e) = validate_ateco(&ateco_code) {
        v.add(f("ateco_code"), e);
    }
    let (employer_name, employer_tax_code, employer_anonymous) = match &o.employer {
        None => {
            v.add(
                f("employer"),
                "must be set: name and tax code of the employer",
            );
            (String::new(), String::new(), false)
        }
        Some(e) => {
            let name = text(&e.name, &f("employer.name"), true, MAX_NAME_LEN, &mut v);
            let tax = employer_tax_code(&e.tax_code).unwrap_or_else(|msg| {
                v.add(f("employer.tax_code"), msg);
                String::new()
            });
            (name, tax, e.anonymous)
        }
    };
    let contract_type = match pb::JobContractType::try_from(o.contract_type) {
        Ok(pb::JobContractType::Unspecified) | Err(_) => {
            v.add(
                f("contract_type"),
                "must be one of the JobContractType values",
            );
            pb::JobContractType::Unspecified
        }
        Ok(t) => t,
    };
    v.check(
        (1..=MAX_WEEKLY_HOURS).contains(&o.weekly_hours),
        f("weekly_hours"),
        format!("must be between 1 and {MAX_WEEKLY_HOURS}"),
    );
    if contract_type == pb::JobContractType::Permanent {
        v.check(
            o.duration_months == 0,
            f("duration_months"),
            "must be 0 for an open-ended (permanent) contract",
        );
    } else {
        v.check(
            (0..=MAX_DURATION_MONTHS).contains(&o.duration_months),
            f("duration_months"),
            format!("must be between 0 (not stated) and {MAX_DURATION_MONTHS}"),
        );
    }
    v.check(
        (1..=MAX_POSITIONS).contains(&o.positions),
        f("positions"),
        format!("must be between 1 and {MAX_POSITIONS}"),
    );
    let deadline = day(&o.application_deadline, &f("application_deadline"), &mut v);
    if let Some(d) = deadline {
        if d < today {
            v.add(
                f("application_deadline"),
                format!("must not be before today ({today})"),
            );
        } else if d > today + Duration::days(MAX_DEADLINE_DAYS) {
            v.add(
                f("application_deadline"),
                "must be within a year: publish again when the offer is still open",
            );
        }
    }
    let requirements = text(
        &o.requirements,
        &f("requirements"),
        false,
        MAX_TEXT_LEN,
        &mut v,
    );
    if let Err(e) = validate_eqf(o.min_eqf_level, true) {
        v.add(f("min_eqf_level"), e);
    }
    let work_address = o
        .work_address
        .as_ref()
        .map(|a| validate_place(a, &o.istat_code, &f("work_address"), &mut v));
    let pay = |m: &Option<patto_proto::common::v1::Money>, name: &str, v: &mut Violations| {
        let cents = m.as_ref().map(|m| m.cents)?;
        v.check(
            (0..=MAX_PAY_CENTS).contains(&cents),
            f(name),
            format!("must be between 0 and {MAX_PAY_CENTS} cents a year"),
        );
        Some(cents)
    };
    let pay_min_cents = pay(
        &o.annual_gross_pay_min,
        "annual_gross_pay_min.cents",
        &mut v,
    );
    let pay_max_cents = pay(
        &o.annual_gross_pay_max,
        "annual_gross_pay_max.cents",
        &mut v,
    );
    if let (Some(min), Some(max)) = (pay_min_cents, pay_max_cents) {
        v.check(
            min <= max,
            f("annual_gross_pay_max.cents"),
            "must not be below annual_gross_pay_min",
        );
    }
    let contact_office = text(
        &o.contact_office,
        &f("contact_office"),
        false,
        MAX_NAME_LEN,
        &mut v,
    );
    let external_ref = reference(&o.external_ref, &f("external_ref"), &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewJobOffer {
        istat_code: o.istat_code.clone(),
        external_ref,
        title,
        description,
        profession_code,
        ateco_code,
        employer_name,
        employer_tax_code,
        employer_anonymous,
        contract_type,
        weekly_hours: o.weekly_hours,
        duration_months: o.duration_months,
        positions: o.positions,
        application_deadline: deadline.unwrap_or(today),
        requirements,
        min_eqf_level: o.min_eqf_level,
        work_address,
        pay_min_cents,
        pay_max_cents,
        contact_office,
    })
}

/// The status a stored offer shows on `today`: an open offer whose deadline has passed is EXPIRED.
pub fn offer_status(stored: i32, deadline: NaiveDate, today: NaiveDate) -> pb::JobOfferStatus {
    match pb::JobOfferStatus::try_from(stored) {
        Ok(pb::JobOfferStatus::Open) if deadline < today => pb::JobOfferStatus::Expired,
        Ok(s) => s,
        Err(_) => pb::JobOfferStatus::Unspecified,
    }
}

/// Why an offer in `status` does not take applications; `None` when it does.
pub fn application_refusal(offer_id: &str, status: pb::JobOfferStatus) -> Option<ServiceError> {
    let why = match status {
        pb::JobOfferStatus::Open => return None,
        pb::JobOfferStatus::Closed => "it was closed by the comune",
        pb::JobOfferStatus::Expired => "its application deadline has passed",
        pb::JobOfferStatus::Unspecified => "it is not open",
    };
    Some(ServiceError::FailedPrecondition(format!(
        "job offer {offer_id} takes no applications: {why}"
    )))
}

/// A validated CV attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cv {
    /// File name.
    pub file_name: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Media type.
    pub media_type: String,
}

fn validate_cv(cv: &pb::JobApplicationAttachment, v: &mut Violations) -> Cv {
    let file_name = cv.file_name.trim().to_owned();
    v.check(
        !file_name.is_empty()
            && file_name.chars().count() <= 255
            && !file_name.contains(['/', '\\'])
            && !file_name.contains(char::is_control),
        "cv.file_name",
        "must be a file name of 1 to 255 characters, without folders",
    );
    v.check(
        cv.sha256.len() == 64
            && cv
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "cv.sha256",
        "must be the SHA-256 of the file: 64 lower-case hex characters",
    );
    v.check(
        (1..=MAX_CV_BYTES).contains(&cv.size_bytes),
        "cv.size_bytes",
        format!("must be between 1 and {MAX_CV_BYTES} bytes (10 MiB)"),
    );
    v.check(
        CV_MEDIA_TYPES.contains(&cv.media_type.as_str()),
        "cv.media_type",
        format!("must be one of {}", CV_MEDIA_TYPES.join(", ")),
    );
    Cv {
        file_name,
        sha256: cv.sha256.clone(),
        size_bytes: cv.size_bytes,
        media_type: cv.media_type.clone(),
    }
}

/// A validated job application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    /// Job offer id.
    pub job_offer_id: String,
    /// Canonical codice fiscale of the applicant.
    pub fiscal_code: String,
    /// Covering message.
    pub message: String,
    /// CV, if attached.
    pub cv: Option<Cv>,
    /// Contact e-mail.
    pub contact_email: String,
    /// Contact phone, possibly empty.
    pub contact_phone: String,
}

/// Validates a `CreateJobApplicationRequest`.
pub fn validate_application(
    req: &pb::CreateJobApplicationRequest,
) -> Result<NewApplication, ServiceError> {
    let mut v = Violations::new();
    let job_offer_id = super::course::id(&req.job_offer_id, "job_offer_id", &mut v);
    let fiscal_code = ids::canonical_fiscal_code(&req.fiscal_code).unwrap_or_else(|e| {
        v.add("fiscal_code", format!("is not a valid codice fiscale: {e}"));
        String::new()
    });
    let message = text(&req.message, "message", false, MAX_TEXT_LEN, &mut v);
    let cv = req.cv.as_ref().map(|cv| validate_cv(cv, &mut v));
    let contact_email = super::validate_email(&req.contact_email).unwrap_or_else(|e| {
        v.add("contact_email", e);
        String::new()
    });
    let contact_phone = super::validate_phone(&req.contact_phone).unwrap_or_else(|e| {
        v.add("contact_phone", e);
        String::new()
    });
    v.check(
        req.consent_to_share,
        "consent_to_share",
        "must be true: the application is forwarded to the employer (GDPR consent)",
    );
    v.into_result()?;
    Ok(NewApplication {
        job_offer_id,
        fiscal_code,
        message,
        cv,
        contact_email,
        contact_phone,
    })
}

/// Statuses in which an application is still running (neither outcome nor withdrawal).
pub const LIVE_APPLICATION: [pb::JobApplicationStatus; 3] = [
    pb::JobApplicationStatus::Submitted,
    pb::JobApplicationStatus::UnderReview,
    pb::JobApplicationStatus::Shortlisted,
];

/// How far an application has come: reviews never move it back.
fn stage(s: pb::JobApplicationStatus) -> u8 {
    use pb::JobApplicationStatus as S;
    match s {
        S::Unspecified | S::Submitted => 0,
        S::UnderReview => 1,
        S::Shortlisted => 2,
        S::Hired | S::NotSelected | S::Withdrawn => 3,
    }
}

/// True for HIRED and NOT_SELECTED, the outcomes that finish the procedure.
pub fn is_outcome(s: pb::JobApplicationStatus) -> bool {
    matches!(
        s,
        pb::JobApplicationStatus::Hired | pb::JobApplicationStatus::NotSelected
    )
}

/// Validates the fields of a review: the new status is a review status and a refusal says why.
pub fn validate_review(
    req: &pb::ReviewJobApplicationRequest,
) -> Result<(String, pb::JobApplicationStatus, String), ServiceError> {
    use pb::JobApplicationStatus as S;
    let mut v = Violations::new();
    let id = super::course::id(&req.job_application_id, "job_application_id", &mut v);
    let target = match S::try_from(req.status) {
        Ok(s @ (S::UnderReview | S::Shortlisted | S::Hired | S::NotSelected)) => s,
        _ => {
            v.add(
                "status",
                "must be UNDER_REVIEW, SHORTLISTED, HIRED or NOT_SELECTED",
            );
            S::Unspecified
        }
    };
    let note = text(
        &req.note,
        "note",
        target == S::NotSelected,
        MAX_TEXT_LEN,
        &mut v,
    );
    v.into_result()?;
    Ok((id, target, note))
}

/// Why an application in `current` cannot move to `target`; `None` when it can. Reviews go
/// forward (a repeated non-final status only updates the note); outcomes and withdrawals are final.
pub fn review_refusal(
    id: &str,
    current: pb::JobApplicationStatus,
    target: pb::JobApplicationStatus,
) -> Option<ServiceError> {
    let name = |s: pb::JobApplicationStatus| {
        s.as_str_name()
            .trim_start_matches("JOB_APPLICATION_STATUS_")
            .to_ascii_lowercase()
            .replace('_', " ")
    };
    if stage(current) == 3 {
        return Some(ServiceError::FailedPrecondition(format!(
            "job application {id} is already final ({})",
            name(current)
        )));
    }
    if stage(target) < stage(current) {
        return Some(ServiceError::FailedPrecondition(format!(
            "job application {id} is {}: a review cannot move it back to {}",
            name(current),
            name(target)
        )));
    }
    None
}

/// True when the caller's view of the employer must hide it: the employer asked for anonymity and
/// the caller does not work for the offer's comune.
pub fn hide_employer(anonymous: bool, caller_comune: Option<&str>, offer_comune: &str) -> bool {
    anonymous && caller_comune != Some(offer_comune)
}

/// Name of the CP2021 unit of an offer.
pub fn profession_name(code: &str) -> String {
    codes::profession_name(code)
}

/// A closure note, checked.
pub fn validate_note(note: &str, field: &str, required: bool) -> Result<String, ServiceError> {
    let mut v = Violations::new();
    let n = text(note, field, required, MAX_NOTE_LEN, &mut v);
    v.into_result()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::Money;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
    }

    fn good() -> pb::JobOffer {
        pb::JobOffer {
            istat_code: "082053".into(),
            title: "Cuoco/a per trattoria".into(),
            profession_code: "5.2.2.1.0".into(),
            ateco_code: "56.11.10".into(),
            employer: Some(pb::Employer {
                name: "Trattoria Esempio s.r.l.".into(),
                tax_code: "00743110157".into(),
                anonymous: false,
            }),
            contract_type: pb::JobContractType::FixedTerm as i32,
            weekly_hours: 40,
            duration_months: 6,
            positions: 2,
            application_deadline: "2026-04-30".into(),
            work_address: Some(Address {
                street: "Via Maqueda".into(),
                house_number: "100".into(),
                postal_code: "90133".into(),
                istat_code: String::new(),
                locality: String::new(),
            }),
            annual_gross_pay_min: Some(Money { cents: 2_000_000 }),
            annual_gross_pay_max: Some(Money { cents: 2_400_000 }),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_offer_passes() {
        let o = validate_job_offer(&good(), "job_offer", today()).unwrap();
        assert_eq!(o.contract_type, pb::JobContractType::FixedTerm);
        assert_eq!(o.work_address.unwrap().postal_code, "90133");
        // A private employer may give a codice fiscale, stored canonical.
        let mut private = good();
        private.employer.as_mut().unwrap().tax_code = "rccmnl83s18d96vw".into();
        let o = validate_job_offer(&private, "job_offer", today()).unwrap();
        assert_eq!(o.employer_tax_code, "RCCMNL83S18D969H");
    }

    #[test]
    fn offer_violations_name_their_field() {
        type Edit = fn(&mut pb::JobOffer);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "comune",
                |o| o.istat_code = "082099".into(),
                "job_offer.istat_code",
            ),
            ("title", |o| o.title = " ".into(), "job_offer.title"),
            (
                "profession level",
                |o| o.profession_code = "5.2.2".into(),
                "job_offer.profession_code",
            ),
            (
                "profession format",
                |o| o.profession_code = "52210".into(),
                "job_offer.profession_code",
            ),
            (
                "ateco",
                |o| o.ateco_code = "56.11".into(),
                "job_offer.ateco_code",
            ),
            (
                "ateco 2007 division",
                |o| o.ateco_code = "45.20.00".into(),
                "job_offer.ateco_code",
            ),
            ("no employer", |o| o.employer = None, "job_offer.employer"),
            (
                "piva check",
                |o| o.employer.as_mut().unwrap().tax_code = "00743110158".into(),
                "job_offer.employer.tax_code",
            ),
            (
                "contract",
                |o| o.contract_type = 0,
                "job_offer.contract_type",
            ),
            (
                "unknown contract",
                |o| o.contract_type = 42,
                "job_offer.contract_type",
            ),
            ("hours", |o| o.weekly_hours = 49, "job_offer.weekly_hours"),
            ("no hours", |o| o.weekly_hours = 0, "job_offer.weekly_hours"),
            (
                "permanent with months",
                |o| o.contract_type = pb::JobContractType::Permanent as i32,
                "job_offer.duration_months",
            ),
            (
                "months",
                |o| o.duration_months = 61,
                "job_offer.duration_months",
            ),
            ("positions", |o| o.positions = 0, "job_offer.positions"),
            (
                "past deadline",
                |o| o.application_deadline = "2026-03-09".into(),
                "job_offer.application_deadline",
            ),
            (
                "far deadline",
                |o| o.application_deadline = "2027-04-30".into(),
                "job_offer.application_deadline",
            ),
            (
                "bad deadline",
                |o| o.application_deadline = "30/04/2026".into(),
                "job_offer.application_deadline",
            ),
            (
                "no deadline",
                |o| o.application_deadline.clear(),
                "job_offer.application_deadline",
            ),
            ("eqf", |o| o.min_eqf_level = 9, "job_offer.min_eqf_level"),
            (
                "cap of another comune",
                |o| o.work_address.as_mut().unwrap().postal_code = "90011".into(),
                "job_offer.work_address.postal_code",
            ),
            (
                "address elsewhere",
                |o| o.work_address.as_mut().unwrap().istat_code = "082006".into(),
                "job_offer.work_address.istat_code",
            ),
            (
                "negative pay",
                |o| o.annual_gross_pay_min = Some(Money { cents: -1 }),
                "job_offer.annual_gross_pay_min.cents",
            ),
            (
                "pay range upside down",
                |o| o.annual_gross_pay_max = Some(Money { cents: 1_000_000 }),
                "job_offer.annual_gross_pay_max.cents",
            ),
            (
                "ref",
                |o| o.external_ref = "a\u{7}".into(),
                "job_offer.external_ref",
            ),
        ];
        for (case, edit, field) in cases {
            let mut o = good();
            edit(&mut o);
            let v = validate_job_offer(&o, "job_offer", today()).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
        // The deadline day itself is still open.
        let mut o = good();
        o.application_deadline = "2026-03-10".into();
        assert!(validate_job_offer(&o, "job_offer", today()).is_ok());
    }

    #[test]
    fn offer_statuses() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let open = pb::JobOfferStatus::Open as i32;
        let closed = pb::JobOfferStatus::Closed as i32;
        let cases = [
            (open, "2026-03-10", pb::JobOfferStatus::Open),
            (open, "2026-03-09", pb::JobOfferStatus::Expired),
            (closed, "2026-04-01", pb::JobOfferStatus::Closed),
            (closed, "2026-03-01", pb::JobOfferStatus::Closed),
            (99, "2026-04-01", pb::JobOfferStatus::Unspecified),
        ];
        for (stored, deadline, shown) in cases {
            assert_eq!(
                offer_status(stored, d(deadline), today()),
                shown,
                "{stored} {deadline}"
            );
        }
        assert!(application_refusal("o", pb::JobOfferStatus::Open).is_none());
        let e = application_refusal("o", pb::JobOfferStatus::Expired).unwrap();
        assert!(e.to_string().contains("deadline"), "{e}");
    }

    fn application() -> pb::CreateJobApplicationRequest {
        pb::CreateJobApplicationRequest {
            job_offer_id: "job-1".into(),
            fiscal_code: "RCCMNL83S18D969H".into(),
            message: "Ho esperienza in cucina.".into(),
            cv: Some(pb::JobApplicationAttachment {
                file_name: "cv.pdf".into(),
                sha256: "a".repeat(64),
                size_bytes: 120_000,
                media_type: "application/pdf".into(),
            }),
            contact_email: "emanuele@example.it".into(),
            contact_phone: "+39 333 1234567".into(),
            consent_to_share: true,
        }
    }

    #[test]
    fn applications() {
        assert!(validate_application(&application()).is_ok());
        type Edit = fn(&mut pb::CreateJobApplicationRequest);
        let cases: &[(Edit, &str)] = &[
            (|r| r.job_offer_id.clear(), "job_offer_id"),
            (|r| r.fiscal_code = "RCCMNL83S18D969A".into(), "fiscal_code"),
            (|r| r.message = "x".repeat(4001), "message"),
            (
                |r| r.cv.as_mut().unwrap().file_name = "../cv.pdf".into(),
                "cv.file_name",
            ),
            (
                |r| r.cv.as_mut().unwrap().sha256 = "A".repeat(64),
                "cv.sha256",
            ),
            (
                |r| r.cv.as_mut().unwrap().size_bytes = MAX_CV_BYTES + 1,
                "cv.size_bytes",
            ),
            (
                |r| r.cv.as_mut().unwrap().media_type = "image/png".into(),
                "cv.media_type",
            ),
            (|r| r.contact_email.clear(), "contact_email"),
            (|r| r.contact_phone = "abc".into(), "contact_phone"),
            (|r| r.consent_to_share = false, "consent_to_share"),
        ];
        for (edit, field) in cases {
            let mut r = application();
            edit(&mut r);
            match validate_application(&r) {
                Err(ServiceError::InvalidArgument(v)) => {
                    assert_eq!(v.as_slice()[0].field, *field, "{v}")
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn review_moves_forward_only() {
        use pb::JobApplicationStatus as S;
        let cases = [
            (S::Submitted, S::UnderReview, true),
            (S::Submitted, S::Hired, true),
            (S::UnderReview, S::UnderReview, true),
            (S::UnderReview, S::Shortlisted, true),
            (S::Shortlisted, S::NotSelected, true),
            (S::Shortlisted, S::UnderReview, false),
            (S::Hired, S::NotSelected, false),
            (S::NotSelected, S::NotSelected, false),
            (S::Withdrawn, S::UnderReview, false),
        ];
        for (from, to, ok) in cases {
            assert_eq!(
                review_refusal("a", from, to).is_none(),
                ok,
                "{from:?} → {to:?}"
            );
        }
        let req = |status: S, note: &str| pb::ReviewJobApplicationRequest {
            job_application_id: "a".into(),
            status: status as i32,
            note: note.into(),
        };
        assert!(validate_review(&req(S::Hired, "")).is_ok());
        assert!(
            validate_review(&req(S::NotSelected, "")).is_err(),
            "a refusal says why"
        );
        assert!(validate_review(&req(S::NotSelected, "Profilo non in linea")).is_ok());
        assert!(
            validate_review(&req(S::Withdrawn, "")).is_err(),
            "only the citizen withdraws"
        );
        assert!(validate_review(&req(S::Submitted, "")).is_err());
        assert!(is_outcome(S::Hired) && is_outcome(S::NotSelected) && !is_outcome(S::Withdrawn));
    }

    #[test]
    fn anonymous_employers() {
        assert!(hide_employer(true, None, "082053"));
        assert!(hide_employer(true, Some("082006"), "082053"));
        assert!(!hide_employer(true, Some("082053"), "082053"));
        assert!(!hide_employer(false, None, "082053"));
    }
}
