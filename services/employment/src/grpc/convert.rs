//! Stored rows to protobuf messages. Derived states are computed here from the day of the answer:
//! an open offer past its deadline shows EXPIRED, an open course past its enrolment deadline
//! CLOSED, and an enrolment still waitlisted when its course started EXPIRED.

use chrono::NaiveDate;
use patto_proto::common::v1::{Address, Money};
use patto_proto::employment::v1 as pb;
use patto_service_kit::time::to_timestamp;

use crate::domain::course::{self, enrolment_status, split_codes};
use crate::domain::end_of_italian_day;
use crate::domain::offer::{self, offer_status};
use crate::store::{enrolment, job_application, job_offer, seats, training_course};

/// A job offer as the caller may see it; `hide_employer` blanks an anonymous employer.
pub fn offer_to_pb(o: job_offer::Model, today: NaiveDate, hide_employer: bool) -> pb::JobOffer {
    let status = offer_status(o.status, o.application_deadline, today);
    let closed_time = match status {
        // An offer that expired closed when its deadline day ended in Italy.
        pb::JobOfferStatus::Expired => {
            Some(to_timestamp(end_of_italian_day(o.application_deadline)))
        }
        _ => o.closed_at.map(to_timestamp),
    };
    let employer = if hide_employer {
        pb::Employer {
            name: String::new(),
            tax_code: String::new(),
            anonymous: true,
        }
    } else {
        pb::Employer {
            name: o.employer_name,
            tax_code: o.employer_tax_code,
            anonymous: o.employer_anonymous,
        }
    };
    pb::JobOffer {
        profession_name: offer::profession_name(&o.profession_code),
        work_address: o.has_work_address.then(|| Address {
            street: o.work_street,
            house_number: o.work_house_number,
            postal_code: o.work_postal_code,
            istat_code: o.istat_code.clone(),
            locality: o.work_locality,
        }),
        id: o.id,
        istat_code: o.istat_code,
        title: o.title,
        description: o.description,
        profession_code: o.profession_code,
        ateco_code: o.ateco_code,
        employer: Some(employer),
        contract_type: o.contract_type,
        weekly_hours: o.weekly_hours,
        duration_months: o.duration_months,
        positions: o.positions,
        application_deadline: o.application_deadline.to_string(),
        requirements: o.requirements,
        min_eqf_level: o.min_eqf_level,
        annual_gross_pay_min: o.pay_min_cents.map(|cents| Money { cents }),
        annual_gross_pay_max: o.pay_max_cents.map(|cents| Money { cents }),
        status: status as i32,
        contact_office: o.contact_office,
        published_time: Some(to_timestamp(o.published_at)),
        closed_time,
        closure_note: o.closure_note,
        applications_count: o.applications_count,
        external_ref: o.external_ref,
    }
}

/// A job application.
pub fn application_to_pb(a: job_application::Model) -> pb::JobApplication {
    let cv = (!a.cv_sha256.is_empty()).then_some(pb::JobApplicationAttachment {
        file_name: a.cv_file_name,
        sha256: a.cv_sha256,
        size_bytes: a.cv_size_bytes,
        media_type: a.cv_media_type,
    });
    pb::JobApplication {
        id: a.id,
        job_offer_id: a.job_offer_id,
        istat_code: a.istat_code,
        fiscal_code: a.fiscal_code,
        status: a.status,
        message: a.message,
        cv,
        contact_email: a.contact_email,
        contact_phone: a.contact_phone,
        consent_to_share: a.consent_to_share,
        review_note: a.review_note,
        created_time: Some(to_timestamp(a.created_at)),
        updated_time: Some(to_timestamp(a.updated_at)),
    }
}

/// A training course on `today`.
pub fn course_to_pb(c: training_course::Model, today: NaiveDate) -> pb::TrainingCourse {
    let s = seats(&c);
    pb::TrainingCourse {
        status: s.status_on(today) as i32,
        seats_left: s.left(),
        waitlist_length: s.waiting(today),
        address: c.has_address.then(|| Address {
            street: c.street,
            house_number: c.house_number,
            postal_code: c.postal_code,
            istat_code: c.istat_code.clone(),
            locality: c.locality,
        }),
        profession_codes: split_codes(&c.profession_codes),
        id: c.id,
        istat_code: c.istat_code,
        title: c.title,
        description: c.description,
        provider: Some(pb::TrainingProvider {
            name: c.provider_name,
            tax_code: c.provider_tax_code,
            accreditation_code: c.provider_accreditation,
        }),
        eqf_level: c.eqf_level,
        qualification: c.qualification,
        hours: c.hours,
        seats: c.seats,
        waitlist_limit: c.waitlist_limit,
        start_date: c.start_date.to_string(),
        end_date: c.end_date.to_string(),
        enrolment_deadline: c.enrolment_deadline.to_string(),
        cost: Some(Money {
            cents: c.cost_cents,
        }),
        requirements: c.requirements,
        delivery_mode: c.delivery_mode,
        funding_programme: c.funding_programme,
        published_time: Some(to_timestamp(c.published_at)),
        closure_note: c.closure_note,
        external_ref: c.external_ref,
    }
}

/// An enrolment on `today`, in a course starting on `course_start`: once the course has started,
/// a waitlisted enrolment shows as EXPIRED, ended when the course began.
pub fn enrolment_to_pb(
    e: enrolment::Model,
    course_start: NaiveDate,
    today: NaiveDate,
) -> pb::Enrolment {
    let status = enrolment_status(e.status, today >= course_start);
    let ended_at = match (e.ended_at, status) {
        (None, pb::EnrolmentStatus::Expired) => course_start.pred_opt().map(end_of_italian_day),
        (ended, _) => ended,
    };
    pb::Enrolment {
        id: e.id,
        training_course_id: e.training_course_id,
        istat_code: e.istat_code,
        fiscal_code: e.fiscal_code,
        status: status as i32,
        waitlist_position: if status == pb::EnrolmentStatus::Waitlisted {
            e.waitlist_position
        } else {
            0
        },
        requirements_declared: e.requirements_declared,
        contact_email: e.contact_email,
        contact_phone: e.contact_phone,
        created_time: Some(to_timestamp(e.created_at)),
        enrolled_time: e.enrolled_at.map(to_timestamp),
        promoted: e.promoted,
        ended_time: ended_at.map(to_timestamp),
    }
}

/// What a watcher of an enrolment receives.
pub fn watch_message(
    e: enrolment::Model,
    c: &training_course::Model,
    today: NaiveDate,
) -> pb::WatchEnrolmentResponse {
    let s = seats(c);
    pb::WatchEnrolmentResponse {
        enrolment: Some(enrolment_to_pb(e, c.start_date, today)),
        seats_left: s.left(),
        waitlist_length: s.waiting(today),
    }
}

/// True when the enrolment of a message can no longer change.
pub fn is_final(m: &pb::WatchEnrolmentResponse) -> bool {
    m.enrolment.as_ref().is_none_or(|e| {
        course::is_final(
            pb::EnrolmentStatus::try_from(e.status).unwrap_or(pb::EnrolmentStatus::Unspecified),
        )
    })
}
