//! Training courses and enrolments: what makes a course publishable, and how seats and the waiting
//! list are assigned. The store holds a course's row lock while it applies these decisions, so
//! they see every earlier enrolment and none runs beside them: seats never exceed the limit, and the
//! waiting list is in the order the enrolments were committed.

use chrono::{Duration, NaiveDate};
use patto_proto::employment::v1 as pb;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::ids;

use super::codes::{cp2021_levels, validate_eqf};
use super::offer::{Place, day, validate_place};
use super::{MAX_NAME_LEN, MAX_TEXT_LEN, reference, text};

/// Most seats a course may offer.
pub const MAX_SEATS: i32 = 10_000;
/// Longest waiting list a course may set.
pub const MAX_WAITLIST: i32 = 10_000;
/// Most course hours (a two-year IeFP path is about 2,100 hours).
pub const MAX_HOURS: i32 = 5_000;
/// Highest fee, in cents (€ 100,000): larger is a typo.
pub const MAX_COST_CENTS: i64 = 10_000_000;
/// How far ahead a course may start.
pub const MAX_START_DAYS: i64 = 731;
/// Most CP2021 codes a course may prepare for.
pub const MAX_PROFESSION_CODES: usize = 20;

/// Checks a required id field and returns it trimmed.
pub(crate) fn id(value: &str, field: &str, v: &mut Violations) -> String {
    let t = value.trim();
    if t.is_empty() || t.len() > 64 || t.contains(char::is_control) {
        v.add(field, "must be an id of 1 to 64 characters");
    }
    t.to_owned()
}

/// A validated training course, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCourse {
    /// ISTAT code of the comune.
    pub istat_code: String,
    /// The comune's reference; empty when none.
    pub external_ref: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Provider name.
    pub provider_name: String,
    /// Provider partita IVA.
    pub provider_tax_code: String,
    /// Regional accreditation code.
    pub provider_accreditation: String,
    /// EQF level, 0 for none.
    pub eqf_level: i32,
    /// Qualification issued.
    pub qualification: String,
    /// Hours.
    pub hours: i32,
    /// Seats.
    pub seats: i32,
    /// Waiting list limit, 0 for none.
    pub waitlist_limit: i32,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
    /// Last day of enrolment.
    pub enrolment_deadline: NaiveDate,
    /// Fee in cents.
    pub cost_cents: i64,
    /// Requirements.
    pub requirements: String,
    /// Delivery mode.
    pub delivery_mode: pb::TrainingDeliveryMode,
    /// Where, unless online.
    pub address: Option<Place>,
    /// CP2021 codes, any level.
    pub profession_codes: Vec<String>,
    /// Funding programme.
    pub funding_programme: String,
}

/// Validates a course as a client sent it; `prefix` is its path in the request, `today` the
/// Italian day of the request.
pub fn validate_course(
    c: &pb::TrainingCourse,
    prefix: &str,
    today: NaiveDate,
) -> Result<NewCourse, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");
    v.check(
        ids::is_known_istat_code(&c.istat_code),
        f("istat_code"),
        "must be the 6-digit ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    let title = text(&c.title, &f("title"), true, MAX_NAME_LEN, &mut v);
    let description = text(
        &c.description,
        &f("description"),
        false,
        MAX_TEXT_LEN,
        &mut v,
    );
    let (provider_name, provider_tax_code, provider_accreditation) = match &c.provider {
        None => {
            v.add(
                f("provider"),
                "must be set: name and partita IVA of the training provider",
            );
            (String::new(), String::new(), String::new())
        }
        Some(p) => {
            let name = text(&p.name, &f("provider.name"), true, MAX_NAME_LEN, &mut v);
            let tax = p.tax_code.trim().to_owned();
            if let Err(e) = ids::validate_partita_iva(&tax) {
                v.add(
                    f("provider.tax_code"),
                    format!("must be the provider's partita IVA or 11-digit codice fiscale: {e}"),
                );
            }
            let accreditation = reference(
                &p.accreditation_code,
                &f("provider.accreditation_code"),
                &mut v,
            );
            (name, tax, accreditation)
        }
    };
    if let Err(e) = validate_eqf(c.eqf_level, true) {
        v.add(f("eqf_level"), e);
    }
    let qualification = text(
        &c.qualification,
        &f("qualification"),
        false,
        MAX_NAME_LEN,
        &mut v,
    );
    v.check(
        (1..=MAX_HOURS).contains(&c.hours),
        f("hours"),
        format!("must be between 1 and {MAX_HOURS}"),
    );
    v.check(
        (1..=MAX_SEATS).contains(&c.seats),
        f("seats"),
        format!("must be between 1 and {MAX_SEATS}"),
    );
    v.check(
        (0..=MAX_WAITLIST).contains(&c.waitlist_limit),
        f("waitlist_limit"),
        format!("must be between 0 (no limit) and {MAX_WAITLIST}"),
    );
    let start = day(&c.start_date, &f("start_date"), &mut v);
    let end = day(&c.end_date, &f("end_date"), &mut v);
    let deadline = day(&c.enrolment_deadline, &f("enrolment_deadline"), &mut v);
    if let Some(s) = start {
        if s <= today {
            v.add(f("start_date"), format!("must be after today ({today})"));
        } else if s > today + Duration::days(MAX_START_DAYS) {
            v.add(f("start_date"), "must be within two years");
        }
        if let Some(e) = end
            && e < s
        {
            v.add(f("end_date"), "must not be before start_date");
        }
        if let Some(d) = deadline
            && d > s
        {
            v.add(f("enrolment_deadline"), "must not be after start_date");
        }
    }
    if let Some(d) = deadline
        && d < today
    {
        v.add(
            f("enrolment_deadline"),
            format!("must not be before today ({today})"),
        );
    }
    let cost_cents = c.cost.as_ref().map_or(0, |m| m.cents);
    v.check(
        (0..=MAX_COST_CENTS).contains(&cost_cents),
        f("cost.cents"),
        format!("must be between 0 (free) and {MAX_COST_CENTS}"),
    );
    let requirements = text(
        &c.requirements,
        &f("requirements"),
        false,
        MAX_TEXT_LEN,
        &mut v,
    );
    let delivery_mode = match pb::TrainingDeliveryMode::try_from(c.delivery_mode) {
        Ok(pb::TrainingDeliveryMode::Unspecified) | Err(_) => {
            v.add(f("delivery_mode"), "must be IN_PERSON, ONLINE or BLENDED");
            pb::TrainingDeliveryMode::Unspecified
        }
        Ok(m) => m,
    };
    let address = match (&c.address, delivery_mode) {
        (Some(_), pb::TrainingDeliveryMode::Online) => {
            v.add(f("address"), "must be unset for an ONLINE course");
            None
        }
        (Some(a), _) => Some(validate_place(a, &c.istat_code, &f("address"), &mut v)),
        (None, pb::TrainingDeliveryMode::InPerson | pb::TrainingDeliveryMode::Blended) => {
            v.add(f("address"), "must be set: where the course takes place");
            None
        }
        (None, _) => None,
    };
    v.check(
        c.profession_codes.len() <= MAX_PROFESSION_CODES,
        f("profession_codes"),
        format!("at most {MAX_PROFESSION_CODES} codes"),
    );
    let mut profession_codes: Vec<String> = Vec::new();
    for (i, code) in c.profession_codes.iter().enumerate() {
        let code = code.trim();
        match cp2021_levels(code) {
            Ok(_) if profession_codes.iter().any(|c| c == code) => {
                v.add(format!("{prefix}.profession_codes[{i}]"), "is repeated");
            }
            Ok(_) => profession_codes.push(code.to_owned()),
            Err(e) => v.add(format!("{prefix}.profession_codes[{i}]"), e),
        }
    }
    let funding_programme = text(
        &c.funding_programme,
        &f("funding_programme"),
        false,
        MAX_NAME_LEN,
        &mut v,
    );
    let external_ref = reference(&c.external_ref, &f("external_ref"), &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewCourse {
        istat_code: c.istat_code.clone(),
        external_ref,
        title,
        description,
        provider_name,
        provider_tax_code,
        provider_accreditation,
        eqf_level: c.eqf_level,
        qualification,
        hours: c.hours,
        seats: c.seats,
        waitlist_limit: c.waitlist_limit,
        start_date: start.unwrap_or(today),
        end_date: end.unwrap_or(today),
        enrolment_deadline: deadline.unwrap_or(today),
        cost_cents,
        requirements,
        delivery_mode,
        address,
        profession_codes,
        funding_programme,
    })
}

/// Profession codes as one column, `|a|b|`, so a LIKE finds a code and everything below it.
pub fn join_codes(codes: &[String]) -> String {
    if codes.is_empty() {
        String::new()
    } else {
        format!("|{}|", codes.join("|"))
    }
}

/// The codes of [`join_codes`] back as a list.
pub fn split_codes(joined: &str) -> Vec<String> {
    joined
        .split('|')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A validated enrolment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrolment {
    /// Course id.
    pub training_course_id: String,
    /// Canonical codice fiscale.
    pub fiscal_code: String,
    /// Contact e-mail.
    pub contact_email: String,
    /// Contact phone, possibly empty.
    pub contact_phone: String,
}

/// Validates a `CreateEnrolmentRequest`.
pub fn validate_enrolment(req: &pb::CreateEnrolmentRequest) -> Result<NewEnrolment, ServiceError> {
    let mut v = Violations::new();
    let training_course_id = id(&req.training_course_id, "training_course_id", &mut v);
    let fiscal_code = ids::canonical_fiscal_code(&req.fiscal_code).unwrap_or_else(|e| {
        v.add("fiscal_code", format!("is not a valid codice fiscale: {e}"));
        String::new()
    });
    v.check(
        req.requirements_declared,
        "requirements_declared",
        "must be true: the citizen declares to meet the course requirements (DPR 445/2000)",
    );
    let contact_email = super::validate_email(&req.contact_email).unwrap_or_else(|e| {
        v.add("contact_email", e);
        String::new()
    });
    let contact_phone = super::validate_phone(&req.contact_phone).unwrap_or_else(|e| {
        v.add("contact_phone", e);
        String::new()
    });
    v.into_result()?;
    Ok(NewEnrolment {
        training_course_id,
        fiscal_code,
        contact_email,
        contact_phone,
    })
}

/// The seat-relevant state of a course, as its locked row holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seats {
    /// Stored status.
    pub status: pb::TrainingCourseStatus,
    /// Seats offered.
    pub seats: i32,
    /// Seats held by ENROLLED enrolments.
    pub taken: i32,
    /// WAITLISTED enrolments.
    pub waitlist: i32,
    /// Waiting list limit, 0 for none.
    pub waitlist_limit: i32,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day of enrolment.
    pub enrolment_deadline: NaiveDate,
}

impl Seats {
    /// True once the course has started: the waiting list is over.
    pub fn started(&self, today: NaiveDate) -> bool {
        today >= self.start_date
    }

    /// The status shown on `today`: an open course past its enrolment deadline is CLOSED.
    pub fn status_on(&self, today: NaiveDate) -> pb::TrainingCourseStatus {
        match self.status {
            pb::TrainingCourseStatus::Open if today > self.enrolment_deadline => {
                pb::TrainingCourseStatus::Closed
            }
            s => s,
        }
    }

    /// Seats still free (none for a cancelled course).
    pub fn left(&self) -> i32 {
        if self.status == pb::TrainingCourseStatus::Cancelled {
            0
        } else {
            (self.seats - self.taken).max(0)
        }
    }

    /// Enrolments waiting on `today` (none once the course started or was cancelled).
    pub fn waiting(&self, today: NaiveDate) -> i32 {
        if self.status == pb::TrainingCourseStatus::Cancelled || self.started(today) {
            0
        } else {
            self.waitlist.max(0)
        }
    }

    /// How many of the waiting list get a seat now: as many as there are free seats, while the
    /// course is going ahead and has not started.
    pub fn promotions_due(&self, today: NaiveDate) -> i32 {
        if self.status == pb::TrainingCourseStatus::Cancelled || self.started(today) {
            0
        } else {
            self.left().min(self.waitlist).max(0)
        }
    }
}

/// Where a new enrolment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// It takes a seat.
    Enrolled,
    /// It waits at this position of the waiting list (1 is next).
    Waitlisted(i32),
}

/// Places a new enrolment in a course in state `s` on `today`, or says why it is refused.
pub fn place(course_id: &str, s: &Seats, today: NaiveDate) -> Result<Placement, ServiceError> {
    let refuse = |why: &str| {
        Err(ServiceError::FailedPrecondition(format!(
            "training course {course_id} takes no enrolments: {why}"
        )))
    };
    match s.status_on(today) {
        pb::TrainingCourseStatus::Open => {}
        pb::TrainingCourseStatus::Cancelled => return refuse("it was cancelled"),
        pb::TrainingCourseStatus::Closed if today > s.enrolment_deadline => {
            return refuse("its enrolment deadline has passed");
        }
        _ => return refuse("enrolment was closed by the comune"),
    }
    if s.left() > 0 {
        return Ok(Placement::Enrolled);
    }
    if s.waitlist_limit > 0 && s.waitlist >= s.waitlist_limit {
        return refuse(&format!(
            "no seat is left and its waiting list is full ({} waiting)",
            s.waitlist
        ));
    }
    Ok(Placement::Waitlisted(s.waitlist + 1))
}

/// The status an enrolment shows: still WAITLISTED when the course has started means EXPIRED.
pub fn enrolment_status(stored: i32, course_started: bool) -> pb::EnrolmentStatus {
    match pb::EnrolmentStatus::try_from(stored) {
        Ok(pb::EnrolmentStatus::Waitlisted) if course_started => pb::EnrolmentStatus::Expired,
        Ok(s) => s,
        Err(_) => pb::EnrolmentStatus::Unspecified,
    }
}

/// Why an enrolment showing `status` cannot be withdrawn; `None` when it can.
pub fn withdrawal_refusal(id: &str, status: pb::EnrolmentStatus) -> Option<ServiceError> {
    let why = match status {
        pb::EnrolmentStatus::Enrolled | pb::EnrolmentStatus::Waitlisted => return None,
        pb::EnrolmentStatus::Withdrawn => "it is already withdrawn",
        pb::EnrolmentStatus::Cancelled => "its course was cancelled",
        pb::EnrolmentStatus::Expired => "the course started while it was on the waiting list",
        pb::EnrolmentStatus::Unspecified => "it is not active",
    };
    Some(ServiceError::FailedPrecondition(format!(
        "enrolment {id} cannot be withdrawn: {why}"
    )))
}

/// True for the statuses that can no longer change.
pub fn is_final(status: pb::EnrolmentStatus) -> bool {
    !matches!(
        status,
        pb::EnrolmentStatus::Enrolled | pb::EnrolmentStatus::Waitlisted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::{Address, Money};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
    }

    fn good() -> pb::TrainingCourse {
        pb::TrainingCourse {
            istat_code: "082053".into(),
            title: "Operatore della ristorazione".into(),
            provider: Some(pb::TrainingProvider {
                name: "Ente Esempio".into(),
                tax_code: "00743110157".into(),
                accreditation_code: "AR1234".into(),
            }),
            eqf_level: 3,
            hours: 600,
            seats: 20,
            start_date: "2026-05-04".into(),
            end_date: "2026-12-18".into(),
            enrolment_deadline: "2026-04-20".into(),
            cost: Some(Money { cents: 0 }),
            delivery_mode: pb::TrainingDeliveryMode::InPerson as i32,
            address: Some(Address {
                street: "Via Libertà".into(),
                house_number: "12".into(),
                postal_code: "90141".into(),
                ..Default::default()
            }),
            profession_codes: vec!["5.2.2.1".into(), "5.2.2.3.2".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_course_passes() {
        let c = validate_course(&good(), "training_course", today()).unwrap();
        assert_eq!(join_codes(&c.profession_codes), "|5.2.2.1|5.2.2.3.2|");
        assert_eq!(split_codes("|5.2.2.1|5.2.2.3.2|"), c.profession_codes);
        assert!(split_codes("").is_empty());
        let mut online = good();
        online.delivery_mode = pb::TrainingDeliveryMode::Online as i32;
        online.address = None;
        assert!(validate_course(&online, "training_course", today()).is_ok());
    }

    #[test]
    fn course_violations_name_their_field() {
        type Edit = fn(&mut pb::TrainingCourse);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "comune",
                |c| c.istat_code.clear(),
                "training_course.istat_code",
            ),
            ("title", |c| c.title.clear(), "training_course.title"),
            (
                "provider",
                |c| c.provider = None,
                "training_course.provider",
            ),
            (
                "provider tax code",
                |c| c.provider.as_mut().unwrap().tax_code = "RCCMNL83S18D969H".into(),
                "training_course.provider.tax_code",
            ),
            ("eqf", |c| c.eqf_level = 9, "training_course.eqf_level"),
            ("hours", |c| c.hours = 0, "training_course.hours"),
            ("seats", |c| c.seats = 0, "training_course.seats"),
            (
                "too many seats",
                |c| c.seats = MAX_SEATS + 1,
                "training_course.seats",
            ),
            (
                "waitlist",
                |c| c.waitlist_limit = -1,
                "training_course.waitlist_limit",
            ),
            (
                "start today",
                |c| c.start_date = "2026-03-10".into(),
                "training_course.start_date",
            ),
            (
                "start far",
                |c| c.start_date = "2028-05-04".into(),
                "training_course.start_date",
            ),
            (
                "end before start",
                |c| c.end_date = "2026-05-03".into(),
                "training_course.end_date",
            ),
            (
                "deadline after start",
                |c| c.enrolment_deadline = "2026-05-05".into(),
                "training_course.enrolment_deadline",
            ),
            (
                "deadline past",
                |c| c.enrolment_deadline = "2026-03-09".into(),
                "training_course.enrolment_deadline",
            ),
            (
                "cost",
                |c| c.cost = Some(Money { cents: -5 }),
                "training_course.cost.cents",
            ),
            (
                "mode",
                |c| c.delivery_mode = 0,
                "training_course.delivery_mode",
            ),
            (
                "no address",
                |c| c.address = None,
                "training_course.address",
            ),
            (
                "online with address",
                |c| c.delivery_mode = pb::TrainingDeliveryMode::Online as i32,
                "training_course.address",
            ),
            (
                "bad code",
                |c| c.profession_codes.push("5.2.2.1.0.0".into()),
                "training_course.profession_codes[2]",
            ),
            (
                "repeated code",
                |c| c.profession_codes.push("5.2.2.1".into()),
                "training_course.profession_codes[2]",
            ),
        ];
        for (case, edit, field) in cases {
            let mut c = good();
            edit(&mut c);
            let v = validate_course(&c, "training_course", today()).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
    }

    fn seats(taken: i32, waitlist: i32, limit: i32) -> Seats {
        Seats {
            status: pb::TrainingCourseStatus::Open,
            seats: 20,
            taken,
            waitlist,
            waitlist_limit: limit,
            start_date: NaiveDate::from_ymd_opt(2026, 5, 4).unwrap(),
            enrolment_deadline: NaiveDate::from_ymd_opt(2026, 4, 20).unwrap(),
        }
    }

    #[test]
    fn placements() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let cases: &[(Seats, &str, Option<Placement>)] = &[
            (seats(0, 0, 0), "2026-03-10", Some(Placement::Enrolled)),
            (seats(19, 0, 0), "2026-03-10", Some(Placement::Enrolled)),
            (
                seats(20, 0, 0),
                "2026-03-10",
                Some(Placement::Waitlisted(1)),
            ),
            (
                seats(20, 79, 0),
                "2026-03-10",
                Some(Placement::Waitlisted(80)),
            ),
            (
                seats(20, 4, 5),
                "2026-03-10",
                Some(Placement::Waitlisted(5)),
            ),
            (seats(20, 5, 5), "2026-03-10", None),
            // The deadline day is still open; the next is not.
            (seats(0, 0, 0), "2026-04-20", Some(Placement::Enrolled)),
            (seats(0, 0, 0), "2026-04-21", None),
            (
                Seats {
                    status: pb::TrainingCourseStatus::Closed,
                    ..seats(0, 0, 0)
                },
                "2026-03-10",
                None,
            ),
            (
                Seats {
                    status: pb::TrainingCourseStatus::Cancelled,
                    ..seats(0, 0, 0)
                },
                "2026-03-10",
                None,
            ),
        ];
        for (s, today, expected) in cases {
            assert_eq!(place("c", s, d(today)).ok(), *expected, "{s:?} on {today}");
        }
        let full = place("c", &seats(20, 5, 5), d("2026-03-10")).unwrap_err();
        assert!(full.to_string().contains("waiting list is full"), "{full}");
        let late = place("c", &seats(0, 0, 0), d("2026-04-21")).unwrap_err();
        assert!(late.to_string().contains("deadline"), "{late}");
    }

    #[test]
    fn promotions_and_views() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let before = d("2026-04-25");
        assert_eq!(seats(19, 80, 0).promotions_due(before), 1);
        assert_eq!(seats(17, 2, 0).promotions_due(before), 2);
        assert_eq!(seats(20, 80, 0).promotions_due(before), 0);
        assert_eq!(seats(19, 0, 0).promotions_due(before), 0);
        // Closed for enrolment still promotes, until the start; a started course does not.
        let closed = Seats {
            status: pb::TrainingCourseStatus::Closed,
            ..seats(19, 3, 0)
        };
        assert_eq!(closed.promotions_due(before), 1);
        assert_eq!(closed.promotions_due(d("2026-05-04")), 0);
        assert_eq!(seats(19, 3, 0).waiting(d("2026-05-04")), 0);
        assert_eq!(seats(19, 3, 0).waiting(before), 3);
        assert_eq!(
            seats(19, 3, 0).status_on(before),
            pb::TrainingCourseStatus::Closed
        );
        assert_eq!(
            seats(19, 3, 0).status_on(d("2026-04-20")),
            pb::TrainingCourseStatus::Open
        );
        let cancelled = Seats {
            status: pb::TrainingCourseStatus::Cancelled,
            ..seats(5, 3, 0)
        };
        assert_eq!((cancelled.left(), cancelled.waiting(before)), (0, 0));
        assert_eq!(cancelled.promotions_due(before), 0);
    }

    #[test]
    fn enrolment_statuses() {
        use pb::EnrolmentStatus as S;
        assert_eq!(enrolment_status(S::Waitlisted as i32, true), S::Expired);
        assert_eq!(enrolment_status(S::Waitlisted as i32, false), S::Waitlisted);
        assert_eq!(enrolment_status(S::Enrolled as i32, true), S::Enrolled);
        assert_eq!(enrolment_status(77, false), S::Unspecified);
        assert!(withdrawal_refusal("e", S::Enrolled).is_none());
        assert!(withdrawal_refusal("e", S::Waitlisted).is_none());
        for s in [S::Withdrawn, S::Cancelled, S::Expired] {
            assert!(withdrawal_refusal("e", s).is_some(), "{s:?}");
            assert!(is_final(s));
        }
    }

    #[test]
    fn enrolment_requests() {
        let ok = pb::CreateEnrolmentRequest {
            training_course_id: "c".into(),
            fiscal_code: "rccmnl83s18d96vw".into(),
            requirements_declared: true,
            contact_email: "a@b.it".into(),
            contact_phone: String::new(),
        };
        assert_eq!(
            validate_enrolment(&ok).unwrap().fiscal_code,
            "RCCMNL83S18D969H"
        );
        match validate_enrolment(&pb::CreateEnrolmentRequest::default()) {
            Err(ServiceError::InvalidArgument(v)) => {
                let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
                assert_eq!(
                    fields,
                    [
                        "training_course_id",
                        "fiscal_code",
                        "requirements_declared",
                        "contact_email"
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
