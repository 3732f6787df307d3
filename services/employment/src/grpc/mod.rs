//! The gRPC face of the employment service: request validation, the kit's access rule applied with
//! the caller's principal, the audit of personal-data reads, and the feed of course changes behind
//! the enrolment watch.
//!
//! Who may read and change what (DESIGN.md, "Identity and tenancy", decided once in
//! [`patto_service_kit::access`]):
//! - job offers and training courses are public: anyone reads them. An employer who asked for
//!   anonymity is named only to the operators of the offer's comune
//!   ([`crate::domain::offer::hide_employer`]);
//! - applications and enrolments are personal data: the citizen concerned reads and acts on their
//!   own; an operator or system of the comune that published the offer or course reads them and acts
//!   on the citizen's behalf. The lists of what a comune received are internal to that comune. Every
//!   read of them by anyone but the citizen is recorded ([`patto_service_kit::audit`]) before the
//!   answer leaves;
//! - publishing, closing, cancelling, importing and reviewing are the comune's own work.

mod convert;

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use patto_proto::employment::v1 as pb;
use patto_proto::employment::v1::employment_service_server::EmploymentService;
use patto_service_kit::access::{self, Act, Record};
use patto_service_kit::audit::{Caller, Reads};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::host::Draining;
use patto_service_kit::paging::Page;
use patto_service_kit::stream::spawn_stream;
use patto_service_kit::{Principal, ids};
use tokio::sync::broadcast;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::codes::{MAX_EQF_LEVEL, cp2021_levels, validate_ateco_prefix};
use crate::domain::course::{self, validate_course, validate_enrolment};
use crate::domain::offer::{self, hide_employer, validate_application, validate_job_offer};
use crate::domain::{italian_day, search_words};
use crate::store::{
    ApplicationFilter, CourseFilter, OfferFilter, Store, enrolment, job_application, job_offer,
    training_course,
};
pub use convert::{application_to_pb, course_to_pb, enrolment_to_pb, offer_to_pb};
use patto_service_kit::validate::{
    any_id, asked_keys, batch_keys, fiscal_code_key, istat_key, optional_day, optional_enum,
};

/// Most rows one import stream may carry; larger catalogues go in several imports.
pub const MAX_IMPORT_ROWS: usize = 50_000;
/// Most row errors an import answer lists (the count covers them all).
pub const MAX_IMPORT_ERRORS: usize = 1_000;
/// Comuni or contract types one search may name.
pub const MAX_FILTER_VALUES: usize = 100;

/// The `patto.employment.v1.EmploymentService` implementation.
#[derive(Clone)]
pub struct EmploymentApi {
    store: Store,
    /// Ids of courses whose seats, waiting list or enrolments just changed (after commit).
    courses: broadcast::Sender<String>,
}

impl EmploymentApi {
    /// The API over `store`.
    pub fn new(store: Store) -> Self {
        let (courses, _) = broadcast::channel(1024);
        Self { store, courses }
    }

    fn changed(&self, course_id: &str) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.courses.send(course_id.to_owned());
    }

    fn show_offer(&self, p: &Principal, o: job_offer::Model, today: NaiveDate) -> pb::JobOffer {
        let hide = hide_employer(o.employer_anonymous, p.comune(), &o.istat_code);
        offer_to_pb(o, today, hide)
    }

    /// Start days of the courses of these enrolments, to show their derived status.
    async fn course_starts(
        &self,
        rows: &[enrolment::Model],
    ) -> Result<HashMap<String, NaiveDate>, ServiceError> {
        let ids: Vec<String> = rows
            .iter()
            .map(|e| e.training_course_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(self
            .store
            .courses_by_id(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c.start_date))
            .collect())
    }

    async fn load_offer(&self, id: &str) -> Result<job_offer::Model, ServiceError> {
        self.store
            .offer(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("job offer", id))
    }

    async fn load_course(&self, id: &str) -> Result<training_course::Model, ServiceError> {
        self.store
            .course(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("training course", id))
    }

    async fn load_application(&self, id: &str) -> Result<job_application::Model, ServiceError> {
        self.store
            .application(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("job application", id))
    }

    async fn load_enrolment(&self, id: &str) -> Result<enrolment::Model, ServiceError> {
        self.store
            .enrolment(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("enrolment", id))
    }

    /// The current state of a watched enrolment.
    async fn watch_state(&self, id: &str) -> Result<pb::WatchEnrolmentResponse, ServiceError> {
        let e = self.load_enrolment(id).await?;
        let c = self.load_course(&e.training_course_id).await?;
        Ok(convert::watch_message(e, &c, italian_day(Utc::now())))
    }
}

/// What the audit names an application read.
const APPLICATION: &str = "employment.JobApplication";
/// What the audit names an enrolment read.
const ENROLMENT: &str = "employment.Enrolment";

/// A job application as the access rule sees it: the applicant's, held by the offer's comune.
fn application_record(a: &job_application::Model) -> Record<'_> {
    Record::personal(&a.fiscal_code, &a.istat_code)
}

/// An enrolment as the access rule sees it: the citizen's, held by the course's comune.
fn enrolment_record(e: &enrolment::Model) -> Record<'_> {
    Record::personal(&e.fiscal_code, &e.istat_code)
}

/// True when the change is the citizen's own online interaction, not an operator's desk work on
/// their behalf: only those count in the programme indicators.
fn online(p: &Principal) -> bool {
    matches!(p, Principal::Citizen { .. })
}

const NOT_A_COMUNE: &str =
    "is not the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053";

fn required_id(value: &str, field: &str) -> Result<String, ServiceError> {
    any_id(value).map_err(|msg| ServiceError::invalid(field, msg))
}

/// Validates a repeated enum filter: known, non-zero values, at most [`MAX_FILTER_VALUES`].
fn enum_list<E: TryFrom<i32>>(values: &[i32], field: &str, v: &mut Violations) -> Vec<i32> {
    v.check(
        values.len() <= MAX_FILTER_VALUES,
        field,
        format!("at most {MAX_FILTER_VALUES} values"),
    );
    let mut out = Vec::new();
    for (i, n) in values.iter().enumerate() {
        match optional_enum::<E>(*n, &format!("{field}[{i}]"), v) {
            Some(n) => out.push(n),
            None if *n == 0 => v.add(format!("{field}[{i}]"), "must not be UNSPECIFIED"),
            None => {}
        }
    }
    out
}

fn istat_list(codes: &[String], field: &str, v: &mut Violations) -> Vec<String> {
    v.check(
        codes.len() <= MAX_FILTER_VALUES,
        field,
        format!("at most {MAX_FILTER_VALUES} comuni"),
    );
    for (i, c) in codes.iter().enumerate() {
        v.check(
            ids::is_known_istat_code(c),
            format!("{field}[{i}]"),
            NOT_A_COMUNE,
        );
    }
    codes.to_vec()
}

fn profession_filter(code: &str, field: &str, v: &mut Violations) -> Option<String> {
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    if let Err(e) = cp2021_levels(code) {
        v.add(field, e);
    }
    Some(code.to_owned())
}

/// Validates a request's paging into `v`, so one answer lists every bad field.
fn paging(request: Option<&patto_proto::common::v1::PageRequest>, v: &mut Violations) -> Page {
    match Page::from_request(request, "page") {
        Ok(page) => page,
        Err(ServiceError::InvalidArgument(bad)) => {
            for f in bad.as_slice() {
                v.add(f.field.clone(), f.description.clone());
            }
            Page {
                limit: 0,
                offset: 0,
            }
        }
        Err(other) => {
            v.add("page", other.to_string());
            Page {
                limit: 0,
                offset: 0,
            }
        }
    }
}

/// Items per comune of an extension call: 0 means 10, at most 100.
fn per_comune(first: i32, v: &mut Violations) -> u64 {
    v.check(
        (0..=100).contains(&first),
        "first",
        "must be between 1 and 100 (0 means 10)",
    );
    if first <= 0 { 10 } else { first as u64 }
}

/// Reads a client stream of import rows, refusing streams longer than [`MAX_IMPORT_ROWS`].
async fn read_rows<T>(mut stream: Streaming<T>, field: &str) -> Result<Vec<T>, Status> {
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        rows.push(row?);
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(ServiceError::invalid(
                field,
                format!("an import carries at most {MAX_IMPORT_ROWS} rows; split it"),
            )
            .into());
        }
    }
    Ok(rows)
}

/// Checks the rows of an import belong to one comune and reuse no external reference; returns the
/// comune.
fn import_scope(
    rows: &[(i32, String, String)],
    prefix: &str,
    errors: &mut Vec<pb::EmploymentImportError>,
) -> Option<String> {
    let comune = rows.first().map(|(_, istat, _)| istat.clone());
    let mut refs: HashMap<&str, i32> = HashMap::new();
    for (row, istat, reference) in rows {
        if Some(istat) != comune.as_ref() {
            errors.push(crate::store::row_error(
                *row,
                &format!("{prefix}.istat_code"),
                format!(
                    "all rows of an import belong to one comune; row {} is for {}",
                    rows[0].0,
                    comune.as_deref().unwrap_or_default()
                ),
            ));
        }
        if reference.is_empty() {
            continue;
        }
        if let Some(first) = refs.insert(reference.as_str(), *row) {
            errors.push(crate::store::row_error(
                *row,
                &format!("{prefix}.external_ref"),
                format!("`{reference}` is already used by row {first} of this import"),
            ));
        }
    }
    comune
}

fn import_errors(
    mut errors: Vec<pb::EmploymentImportError>,
) -> (Vec<pb::EmploymentImportError>, i32) {
    errors.sort_by_key(|e| e.row);
    let count = errors.len() as i32;
    errors.truncate(MAX_IMPORT_ERRORS);
    (errors, count)
}

fn violations_to_rows(row: i32, v: &Violations, errors: &mut Vec<pb::EmploymentImportError>) {
    errors.extend(
        v.as_slice()
            .iter()
            .map(|f| crate::store::row_error(row, &f.field, f.description.clone())),
    );
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl EmploymentService for EmploymentApi {
    async fn list_job_offers(
        &self,
        request: Request<pb::ListJobOffersRequest>,
    ) -> Answer<pb::ListJobOffersResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let istat_codes = istat_list(&req.istat_codes, "istat_codes", &mut v);
        let words = search_words(&req.text, "text", &mut v);
        let profession_code = profession_filter(&req.profession_code, "profession_code", &mut v);
        let ateco = req.ateco_code.trim();
        if !ateco.is_empty()
            && let Err(e) = validate_ateco_prefix(ateco)
        {
            v.add("ateco_code", e);
        }
        let contract_types =
            enum_list::<pb::JobContractType>(&req.contract_types, "contract_types", &mut v);
        let hours = 0..=offer::MAX_WEEKLY_HOURS;
        v.check(
            hours.contains(&req.min_weekly_hours),
            "min_weekly_hours",
            "must be between 0 (no bound) and 48",
        );
        v.check(
            hours.contains(&req.max_weekly_hours),
            "max_weekly_hours",
            "must be between 0 (no bound) and 48",
        );
        v.check(
            req.max_weekly_hours == 0 || req.min_weekly_hours <= req.max_weekly_hours,
            "max_weekly_hours",
            "must not be below min_weekly_hours",
        );
        let deadline_from = optional_day(&req.deadline_from, "deadline_from", &mut v);
        let page = paging(req.page.as_ref(), &mut v);
        v.into_result()?;
        let filter = OfferFilter {
            istat_codes,
            words,
            profession_code,
            ateco_prefix: Some(ateco.to_owned()).filter(|a| !a.is_empty()),
            contract_types,
            min_weekly_hours: Some(req.min_weekly_hours).filter(|h| *h > 0),
            max_weekly_hours: Some(req.max_weekly_hours).filter(|h| *h > 0),
            deadline_from,
            include_closed: req.include_closed,
        };
        let today = italian_day(Utc::now());
        let (rows, total) = self.store.list_offers(&filter, page, today).await?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListJobOffersResponse {
            job_offers: rows
                .into_iter()
                .map(|o| self.show_offer(&p, o, today))
                .collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_job_offers(
        &self,
        request: Request<pb::LookupJobOffersRequest>,
    ) -> Answer<pb::LookupJobOffersResponse> {
        let p = principal(&request);
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let today = italian_day(Utc::now());
        let rows = self.store.offers_by_id(&keys).await?;
        Ok(Response::new(pb::LookupJobOffersResponse {
            items: rows
                .into_iter()
                .map(|o| pb::LookupJobOffersItem {
                    key: o.id.clone(),
                    job_offer: Some(self.show_offer(&p, o, today)),
                })
                .collect(),
        }))
    }

    async fn list_municipality_job_offers(
        &self,
        request: Request<pb::ListMunicipalityJobOffersRequest>,
    ) -> Answer<pb::ListMunicipalityJobOffersResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let keys = batch_keys(&req.keys, istat_key)?;
        let mut v = Violations::new();
        let per = per_comune(req.first, &mut v);
        let contract =
            optional_enum::<pb::JobContractType>(req.contract_type, "contract_type", &mut v);
        let profession = profession_filter(&req.profession_code, "profession_code", &mut v);
        v.into_result()?;
        let today = italian_day(Utc::now());
        let rows = self
            .store
            .open_offers_by_comune(&keys, per, contract, profession.as_deref(), today)
            .await?;
        Ok(Response::new(pb::ListMunicipalityJobOffersResponse {
            items: rows
                .into_iter()
                .map(|(key, offers)| pb::ListMunicipalityJobOffersItem {
                    key,
                    job_offers: offers
                        .into_iter()
                        .map(|o| self.show_offer(&p, o, today))
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn publish_job_offer(
        &self,
        request: Request<pb::PublishJobOfferRequest>,
    ) -> Answer<pb::PublishJobOfferResponse> {
        let p = principal(&request);
        let Some(o) = request.into_inner().job_offer else {
            return Err(ServiceError::invalid("job_offer", "must be set").into());
        };
        let now = Utc::now();
        let new = validate_job_offer(&o, "job_offer", italian_day(now))
            .map_err(ServiceError::InvalidArgument)?;
        access::authorize_write(&p, &Act::for_comune(&new.istat_code))?;
        let stored = self.store.publish_offer(new, now).await?;
        Ok(Response::new(pb::PublishJobOfferResponse {
            // The publisher sees the offer as sent, employer included.
            job_offer: Some(offer_to_pb(stored, italian_day(now), false)),
        }))
    }

    async fn close_job_offer(
        &self,
        request: Request<pb::CloseJobOfferRequest>,
    ) -> Answer<pb::CloseJobOfferResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let id = required_id(&req.job_offer_id, "job_offer_id")?;
        let note = offer::validate_note(&req.note, "note", false)?;
        let o = self.load_offer(&id).await?;
        access::authorize_write(&p, &Act::for_comune(&o.istat_code))?;
        let now = Utc::now();
        let closed = self.store.close_offer(&id, &note, now).await?;
        Ok(Response::new(pb::CloseJobOfferResponse {
            job_offer: Some(self.show_offer(&p, closed, italian_day(now))),
        }))
    }

    async fn import_job_offers(
        &self,
        request: Request<Streaming<pb::ImportJobOffersRequest>>,
    ) -> Answer<pb::ImportJobOffersResponse> {
        let p = principal(&request);
        access::authorize_comune_caller(&p)?;
        let rows = read_rows(request.into_inner(), "job_offer").await?;
        let today = italian_day(Utc::now());
        let mut errors = Vec::new();
        let mut valid = Vec::with_capacity(rows.len());
        let mut scope = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let number = i as i32 + 1;
            let Some(o) = &row.job_offer else {
                errors.push(crate::store::row_error(number, "job_offer", "must be set"));
                continue;
            };
            scope.push((
                number,
                o.istat_code.clone(),
                o.external_ref.trim().to_owned(),
            ));
            match validate_job_offer(o, "job_offer", today) {
                Ok(new) => valid.push(new),
                Err(v) => violations_to_rows(number, &v, &mut errors),
            }
        }
        if let Some(comune) = import_scope(&scope, "job_offer", &mut errors)
            && ids::is_known_istat_code(&comune)
        {
            access::authorize_write(&p, &Act::for_comune(&comune))?;
        }
        if !errors.is_empty() {
            let (errors, error_count) = import_errors(errors);
            return Ok(Response::new(pb::ImportJobOffersResponse {
                imported: 0,
                errors,
                error_count,
            }));
        }
        let imported = self.store.import_offers(valid, Utc::now()).await?;
        Ok(Response::new(pb::ImportJobOffersResponse {
            imported: imported as i32,
            errors: Vec::new(),
            error_count: 0,
        }))
    }

    async fn list_job_applications(
        &self,
        request: Request<pb::ListJobApplicationsRequest>,
    ) -> Answer<pb::ListJobApplicationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), APPLICATION);
        let req = request.into_inner();
        let mut v = Violations::new();
        let offer_id = req.job_offer_id.trim();
        if !offer_id.is_empty()
            && let Err(msg) = any_id(offer_id)
        {
            v.add("job_offer_id", msg);
        }
        if offer_id.is_empty() || !req.istat_code.is_empty() {
            v.check(
                ids::is_known_istat_code(&req.istat_code),
                "istat_code",
                if offer_id.is_empty() {
                    "is required without job_offer_id: the ISTAT code of the comune, e.g. 082053"
                } else {
                    NOT_A_COMUNE
                },
            );
        }
        let statuses = enum_list::<pb::JobApplicationStatus>(&req.statuses, "statuses", &mut v);
        let page = paging(req.page.as_ref(), &mut v);
        v.into_result()?;
        let istat_code = if offer_id.is_empty() {
            req.istat_code.clone()
        } else {
            let o = self.load_offer(offer_id).await?;
            if !req.istat_code.is_empty() && req.istat_code != o.istat_code {
                return Err(ServiceError::invalid(
                    "istat_code",
                    format!("job offer {offer_id} belongs to comune {}", o.istat_code),
                )
                .into());
            }
            o.istat_code
        };
        // The applications a comune received are its own to read.
        access::authorize_read(
            reads.principal(),
            &Record::Comune {
                istat_code: &istat_code,
            },
        )?;
        let filter = ApplicationFilter {
            job_offer_id: Some(offer_id.to_owned()).filter(|s| !s.is_empty()),
            istat_code,
            statuses,
        };
        let (rows, total) = self.store.list_applications(&filter, page).await?;
        let info = page.info(rows.len(), total);
        let rows: Vec<job_application::Model> = rows
            .into_iter()
            .filter(|a| reads.allows(&application_record(a)))
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListJobApplicationsResponse {
            job_applications: rows.into_iter().map(application_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_job_applications(
        &self,
        request: Request<pb::LookupJobApplicationsRequest>,
    ) -> Answer<pb::LookupJobApplicationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), APPLICATION);
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        // Not readable is left out, as unknown is: a lookup does not tell which ids exist.
        let rows: Vec<job_application::Model> = self
            .store
            .applications_by_id(&keys)
            .await?
            .into_iter()
            .filter(|a| reads.allows(&application_record(a)))
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::LookupJobApplicationsResponse {
            items: rows
                .into_iter()
                .map(|a| pb::LookupJobApplicationsItem {
                    key: a.id.clone(),
                    job_application: Some(application_to_pb(a)),
                })
                .collect(),
        }))
    }

    async fn list_citizen_job_applications(
        &self,
        request: Request<pb::ListCitizenJobApplicationsRequest>,
    ) -> Answer<pb::ListCitizenJobApplicationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), APPLICATION);
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, fiscal_code_key)?;
        let mut v = Violations::new();
        let statuses = enum_list::<pb::JobApplicationStatus>(&req.statuses, "statuses", &mut v);
        v.into_result()?;
        access::authorize_citizen_keys(reads.principal(), &canonical)?;
        // Operators and systems see their own comune's rows only.
        let rows: Vec<job_application::Model> = self
            .store
            .applications_by_citizen(&canonical, &statuses)
            .await?
            .into_iter()
            .filter(|a| reads.allows(&application_record(a)))
            .collect();
        reads.save(self.store.db()).await?;
        let items = asked_keys(&req.keys, fiscal_code_key)
            .into_iter()
            .filter_map(|(key, cf)| {
                let apps: Vec<pb::JobApplication> = rows
                    .iter()
                    .filter(|a| a.fiscal_code == cf)
                    .cloned()
                    .map(application_to_pb)
                    .collect();
                (!apps.is_empty()).then_some(pb::ListCitizenJobApplicationsItem {
                    key,
                    job_applications: apps,
                })
            })
            .collect();
        Ok(Response::new(pb::ListCitizenJobApplicationsResponse {
            items,
        }))
    }

    async fn create_job_application(
        &self,
        request: Request<pb::CreateJobApplicationRequest>,
    ) -> Answer<pb::CreateJobApplicationResponse> {
        let p = principal(&request);
        let a = validate_application(&request.into_inner())?;
        let o = self.load_offer(&a.job_offer_id).await?;
        access::authorize_write(&p, &Act::for_citizen(&a.fiscal_code, &o.istat_code))?;
        let stored = self.store.apply(a, online(&p), Utc::now()).await?;
        Ok(Response::new(pb::CreateJobApplicationResponse {
            job_application: Some(application_to_pb(stored)),
        }))
    }

    async fn withdraw_job_application(
        &self,
        request: Request<pb::WithdrawJobApplicationRequest>,
    ) -> Answer<pb::WithdrawJobApplicationResponse> {
        let p = principal(&request);
        let id = required_id(
            &request.into_inner().job_application_id,
            "job_application_id",
        )?;
        let a = self.load_application(&id).await?;
        access::authorize_write(&p, &Act::for_citizen(&a.fiscal_code, &a.istat_code))?;
        let withdrawn = self.store.withdraw_application(&id, Utc::now()).await?;
        Ok(Response::new(pb::WithdrawJobApplicationResponse {
            job_application: Some(application_to_pb(withdrawn)),
        }))
    }

    async fn review_job_application(
        &self,
        request: Request<pb::ReviewJobApplicationRequest>,
    ) -> Answer<pb::ReviewJobApplicationResponse> {
        let p = principal(&request);
        let (id, target, note) = offer::validate_review(&request.into_inner())?;
        let a = self.load_application(&id).await?;
        access::authorize_write(&p, &Act::for_comune(&a.istat_code))?;
        let reviewed = self
            .store
            .review_application(&id, target, &note, Utc::now())
            .await?;
        Ok(Response::new(pb::ReviewJobApplicationResponse {
            job_application: Some(application_to_pb(reviewed)),
        }))
    }

    async fn list_training_courses(
        &self,
        request: Request<pb::ListTrainingCoursesRequest>,
    ) -> Answer<pb::ListTrainingCoursesResponse> {
        let req = request.into_inner();
        let mut v = Violations::new();
        let istat_codes = istat_list(&req.istat_codes, "istat_codes", &mut v);
        let words = search_words(&req.text, "text", &mut v);
        let levels = 0..=MAX_EQF_LEVEL;
        v.check(
            levels.contains(&req.min_eqf_level),
            "min_eqf_level",
            "must be an EQF level from 1 to 8, or 0 for no bound",
        );
        v.check(
            levels.contains(&req.max_eqf_level),
            "max_eqf_level",
            "must be an EQF level from 1 to 8, or 0 for no bound",
        );
        v.check(
            req.max_eqf_level == 0 || req.min_eqf_level <= req.max_eqf_level,
            "max_eqf_level",
            "must not be below min_eqf_level",
        );
        let delivery_mode =
            optional_enum::<pb::TrainingDeliveryMode>(req.delivery_mode, "delivery_mode", &mut v);
        let starts_from = optional_day(&req.starts_from, "starts_from", &mut v);
        let starts_until = optional_day(&req.starts_until, "starts_until", &mut v);
        if let (Some(from), Some(until)) = (starts_from, starts_until) {
            v.check(
                from <= until,
                "starts_until",
                "must not be before starts_from",
            );
        }
        let profession_code = profession_filter(&req.profession_code, "profession_code", &mut v);
        let page = paging(req.page.as_ref(), &mut v);
        v.into_result()?;
        let filter = CourseFilter {
            istat_codes,
            words,
            min_eqf_level: Some(req.min_eqf_level).filter(|l| *l > 0),
            max_eqf_level: Some(req.max_eqf_level).filter(|l| *l > 0),
            delivery_mode,
            free_only: req.free_only,
            with_seats_only: req.with_seats_only,
            starts_from,
            starts_until,
            profession_code,
            include_closed: req.include_closed,
        };
        let today = italian_day(Utc::now());
        let (rows, total) = self.store.list_courses(&filter, page, today).await?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListTrainingCoursesResponse {
            training_courses: rows.into_iter().map(|c| course_to_pb(c, today)).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_training_courses(
        &self,
        request: Request<pb::LookupTrainingCoursesRequest>,
    ) -> Answer<pb::LookupTrainingCoursesResponse> {
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let today = italian_day(Utc::now());
        let rows = self.store.courses_by_id(&keys).await?;
        Ok(Response::new(pb::LookupTrainingCoursesResponse {
            items: rows
                .into_iter()
                .map(|c| pb::LookupTrainingCoursesItem {
                    key: c.id.clone(),
                    training_course: Some(course_to_pb(c, today)),
                })
                .collect(),
        }))
    }

    async fn list_municipality_training_courses(
        &self,
        request: Request<pb::ListMunicipalityTrainingCoursesRequest>,
    ) -> Answer<pb::ListMunicipalityTrainingCoursesResponse> {
        let req = request.into_inner();
        let keys = batch_keys(&req.keys, istat_key)?;
        let mut v = Violations::new();
        let per = per_comune(req.first, &mut v);
        v.into_result()?;
        let today = italian_day(Utc::now());
        let rows = self
            .store
            .open_courses_by_comune(&keys, per, req.with_seats_only, today)
            .await?;
        Ok(Response::new(pb::ListMunicipalityTrainingCoursesResponse {
            items: rows
                .into_iter()
                .map(|(key, courses)| pb::ListMunicipalityTrainingCoursesItem {
                    key,
                    training_courses: courses
                        .into_iter()
                        .map(|c| course_to_pb(c, today))
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn publish_training_course(
        &self,
        request: Request<pb::PublishTrainingCourseRequest>,
    ) -> Answer<pb::PublishTrainingCourseResponse> {
        let p = principal(&request);
        let Some(c) = request.into_inner().training_course else {
            return Err(ServiceError::invalid("training_course", "must be set").into());
        };
        let now = Utc::now();
        let new = validate_course(&c, "training_course", italian_day(now))
            .map_err(ServiceError::InvalidArgument)?;
        access::authorize_write(&p, &Act::for_comune(&new.istat_code))?;
        let stored = self.store.publish_course(new, now).await?;
        Ok(Response::new(pb::PublishTrainingCourseResponse {
            training_course: Some(course_to_pb(stored, italian_day(now))),
        }))
    }

    async fn close_training_course(
        &self,
        request: Request<pb::CloseTrainingCourseRequest>,
    ) -> Answer<pb::CloseTrainingCourseResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let id = required_id(&req.training_course_id, "training_course_id")?;
        let note = offer::validate_note(&req.note, "note", false)?;
        let c = self.load_course(&id).await?;
        access::authorize_write(&p, &Act::for_comune(&c.istat_code))?;
        let now = Utc::now();
        let closed = self.store.close_course(&id, &note, now).await?;
        self.changed(&id);
        Ok(Response::new(pb::CloseTrainingCourseResponse {
            training_course: Some(course_to_pb(closed, italian_day(now))),
        }))
    }

    async fn cancel_training_course(
        &self,
        request: Request<pb::CancelTrainingCourseRequest>,
    ) -> Answer<pb::CancelTrainingCourseResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = course::id(&req.training_course_id, "training_course_id", &mut v);
        let reason = crate::domain::text(
            &req.reason,
            "reason",
            true,
            crate::domain::MAX_NOTE_LEN,
            &mut v,
        );
        v.into_result()?;
        let c = self.load_course(&id).await?;
        access::authorize_write(&p, &Act::for_comune(&c.istat_code))?;
        let now = Utc::now();
        let (cancelled, fallen) = self.store.cancel_course(&id, &reason, now).await?;
        self.changed(&id);
        Ok(Response::new(pb::CancelTrainingCourseResponse {
            training_course: Some(course_to_pb(cancelled, italian_day(now))),
            enrolments_cancelled: fallen as i32,
        }))
    }

    async fn import_training_courses(
        &self,
        request: Request<Streaming<pb::ImportTrainingCoursesRequest>>,
    ) -> Answer<pb::ImportTrainingCoursesResponse> {
        let p = principal(&request);
        access::authorize_comune_caller(&p)?;
        let rows = read_rows(request.into_inner(), "training_course").await?;
        let today = italian_day(Utc::now());
        let mut errors = Vec::new();
        let mut valid = Vec::with_capacity(rows.len());
        let mut scope = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let number = i as i32 + 1;
            let Some(c) = &row.training_course else {
                errors.push(crate::store::row_error(
                    number,
                    "training_course",
                    "must be set",
                ));
                continue;
            };
            scope.push((
                number,
                c.istat_code.clone(),
                c.external_ref.trim().to_owned(),
            ));
            match validate_course(c, "training_course", today) {
                Ok(new) => valid.push((number, new)),
                Err(v) => violations_to_rows(number, &v, &mut errors),
            }
        }
        if let Some(comune) = import_scope(&scope, "training_course", &mut errors)
            && ids::is_known_istat_code(&comune)
        {
            access::authorize_write(&p, &Act::for_comune(&comune))?;
        }
        let imported = if errors.is_empty() {
            match self.store.import_courses(valid, Utc::now()).await? {
                Ok(touched) => Some(touched),
                Err(conflicts) => {
                    errors = conflicts;
                    None
                }
            }
        } else {
            None
        };
        let Some(touched) = imported else {
            let (errors, error_count) = import_errors(errors);
            return Ok(Response::new(pb::ImportTrainingCoursesResponse {
                imported: 0,
                errors,
                error_count,
            }));
        };
        for id in &touched {
            self.changed(id);
        }
        Ok(Response::new(pb::ImportTrainingCoursesResponse {
            imported: touched.len() as i32,
            errors: Vec::new(),
            error_count: 0,
        }))
    }

    async fn list_enrolments(
        &self,
        request: Request<pb::ListEnrolmentsRequest>,
    ) -> Answer<pb::ListEnrolmentsResponse> {
        let mut reads = Reads::new(Caller::of(&request), ENROLMENT);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = course::id(&req.training_course_id, "training_course_id", &mut v);
        let statuses: Vec<pb::EnrolmentStatus> =
            enum_list::<pb::EnrolmentStatus>(&req.statuses, "statuses", &mut v)
                .into_iter()
                .filter_map(|s| pb::EnrolmentStatus::try_from(s).ok())
                .collect();
        let page = paging(req.page.as_ref(), &mut v);
        v.into_result()?;
        let c = self.load_course(&id).await?;
        // The enrolments a course received are its comune's own to read.
        access::authorize_read(
            reads.principal(),
            &Record::Comune {
                istat_code: &c.istat_code,
            },
        )?;
        let today = italian_day(Utc::now());
        let (rows, total) = self
            .store
            .list_enrolments(&c, &statuses, page, today)
            .await?;
        let info = page.info(rows.len(), total);
        let rows: Vec<enrolment::Model> = rows
            .into_iter()
            .filter(|e| reads.allows(&enrolment_record(e)))
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListEnrolmentsResponse {
            enrolments: rows
                .into_iter()
                .map(|e| enrolment_to_pb(e, c.start_date, today))
                .collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_enrolments(
        &self,
        request: Request<pb::LookupEnrolmentsRequest>,
    ) -> Answer<pb::LookupEnrolmentsResponse> {
        let mut reads = Reads::new(Caller::of(&request), ENROLMENT);
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let rows: Vec<enrolment::Model> = self
            .store
            .enrolments_by_id(&keys)
            .await?
            .into_iter()
            .filter(|e| access::may_read(reads.principal(), &enrolment_record(e)))
            .collect();
        let starts = self.course_starts(&rows).await?;
        // Not readable is left out, as unknown is: a lookup does not tell which ids exist.
        let rows: Vec<enrolment::Model> = rows
            .into_iter()
            .filter(|e| {
                starts.contains_key(&e.training_course_id) && reads.allows(&enrolment_record(e))
            })
            .collect();
        reads.save(self.store.db()).await?;
        let today = italian_day(Utc::now());
        Ok(Response::new(pb::LookupEnrolmentsResponse {
            items: rows
                .into_iter()
                .filter_map(|e| {
                    let start = *starts.get(&e.training_course_id)?;
                    Some(pb::LookupEnrolmentsItem {
                        key: e.id.clone(),
                        enrolment: Some(enrolment_to_pb(e, start, today)),
                    })
                })
                .collect(),
        }))
    }

    async fn list_citizen_enrolments(
        &self,
        request: Request<pb::ListCitizenEnrolmentsRequest>,
    ) -> Answer<pb::ListCitizenEnrolmentsResponse> {
        let mut reads = Reads::new(Caller::of(&request), ENROLMENT);
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, fiscal_code_key)?;
        let mut v = Violations::new();
        let statuses = enum_list::<pb::EnrolmentStatus>(&req.statuses, "statuses", &mut v);
        v.into_result()?;
        access::authorize_citizen_keys(reads.principal(), &canonical)?;
        // Operators and systems see their own comune's rows only.
        let rows: Vec<enrolment::Model> = self
            .store
            .enrolments_by_citizen(&canonical)
            .await?
            .into_iter()
            .filter(|e| access::may_read(reads.principal(), &enrolment_record(e)))
            .collect();
        let starts = self.course_starts(&rows).await?;
        let today = italian_day(Utc::now());
        // Statuses filter on what the citizen sees (a started course's waiting list is EXPIRED),
        // so the filter runs after the conversion; what is shown is what the audit records.
        let shown: Vec<pb::Enrolment> = rows
            .into_iter()
            .filter_map(|e| {
                let start = *starts.get(&e.training_course_id)?;
                let shown = enrolment_to_pb(e.clone(), start, today);
                (statuses.is_empty() || statuses.contains(&shown.status))
                    .then(|| reads.allows(&enrolment_record(&e)).then_some(shown))
                    .flatten()
            })
            .collect();
        reads.save(self.store.db()).await?;
        let items = asked_keys(&req.keys, fiscal_code_key)
            .into_iter()
            .filter_map(|(key, cf)| {
                let enrolments: Vec<pb::Enrolment> = shown
                    .iter()
                    .filter(|e| e.fiscal_code == cf)
                    .cloned()
                    .collect();
                (!enrolments.is_empty())
                    .then_some(pb::ListCitizenEnrolmentsItem { key, enrolments })
            })
            .collect();
        Ok(Response::new(pb::ListCitizenEnrolmentsResponse { items }))
    }

    async fn create_enrolment(
        &self,
        request: Request<pb::CreateEnrolmentRequest>,
    ) -> Answer<pb::CreateEnrolmentResponse> {
        let p = principal(&request);
        let e = validate_enrolment(&request.into_inner())?;
        let c = self.load_course(&e.training_course_id).await?;
        access::authorize_write(&p, &Act::for_citizen(&e.fiscal_code, &c.istat_code))?;
        let now = Utc::now();
        let (stored, after) = self.store.enrol(e, online(&p), now).await?;
        self.changed(&after.id);
        Ok(Response::new(pb::CreateEnrolmentResponse {
            enrolment: Some(enrolment_to_pb(stored, after.start_date, italian_day(now))),
        }))
    }

    async fn withdraw_enrolment(
        &self,
        request: Request<pb::WithdrawEnrolmentRequest>,
    ) -> Answer<pb::WithdrawEnrolmentResponse> {
        let p = principal(&request);
        let id = required_id(&request.into_inner().enrolment_id, "enrolment_id")?;
        let e = self.load_enrolment(&id).await?;
        access::authorize_write(&p, &Act::for_citizen(&e.fiscal_code, &e.istat_code))?;
        let now = Utc::now();
        let (withdrawn, after) = self.store.withdraw_enrolment(&id, now).await?;
        self.changed(&after.id);
        Ok(Response::new(pb::WithdrawEnrolmentResponse {
            enrolment: Some(enrolment_to_pb(
                withdrawn,
                after.start_date,
                italian_day(now),
            )),
        }))
    }

    async fn watch_enrolment(
        &self,
        request: Request<pb::WatchEnrolmentRequest>,
    ) -> Answer<BoxStream<pb::WatchEnrolmentResponse>> {
        let mut reads = Reads::new(Caller::of(&request), ENROLMENT);
        let draining = Draining::of(&request);
        let id = required_id(&request.into_inner().enrolment_id, "enrolment_id")?;
        // Subscribe before reading the current state, so no change falls between the two.
        let mut changes = self.courses.subscribe();
        let e = self.load_enrolment(&id).await?;
        reads.check(&enrolment_record(&e))?;
        let course_id = e.training_course_id.clone();
        let first = self.watch_state(&id).await?;
        // The watch follows one enrolment for one reader: recorded once, when it opens.
        reads.save(self.store.db()).await?;
        let api = self.clone();
        let stream = spawn_stream(draining, move |tx| async move {
            let mut last = first;
            if tx.send(Ok(last.clone())).await.is_err() {
                return;
            }
            while !convert::is_final(&last) {
                match changes.recv().await {
                    Ok(changed) if changed != course_id => continue,
                    // Fell behind: only the latest state matters, so read it afresh below.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                let now = match api.watch_state(&id).await {
                    Ok(state) => state,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                // Other enrolments of the course change too; send only what changes this view.
                if now != last {
                    last = now;
                    if tx.send(Ok(last.clone())).await.is_err() {
                        return;
                    }
                }
            }
        });
        // End the response after a final state (or an error). The producer stops there too, but
        // the kit's drain watcher keeps its own sender until the client goes, so the stream would
        // stay open; ending it here, without waiting on the channel again, tells the client there
        // is nothing more to follow.
        let until_final =
            futures::stream::unfold((stream, false), |(mut inner, done)| async move {
                if done {
                    return None;
                }
                let item = inner.next().await?;
                let finished = item.as_ref().map_or(true, convert::is_final);
                Some((item, (inner, finished)))
            });
        Ok(Response::new(Box::pin(until_final)))
    }
}
