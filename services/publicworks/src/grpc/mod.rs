//! The gRPC face of the public-works service: request validation, the kit's write rule applied with
//! the caller's principal, the open-data export stream and the all-or-nothing import.
//!
//! Public works are public data (DESIGN.md, "Identity and tenancy"): every read is open to anyone,
//! signed in or not. Changing them is the work of the comune that carries them out
//! ([`Act::ForComune`]): its operators and its own systems; anyone else is refused before anything
//! changes.

mod convert;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use patto_proto::publicworks::v1 as pb;
use patto_proto::publicworks::v1::public_works_service_server::PublicWorksService;
use patto_service_kit::access::{self, Act};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{FieldViolation, ServiceError, Violations};
use patto_service_kit::host::Draining;
use patto_service_kit::paging::Page;
use patto_service_kit::stream::spawn_stream;
use patto_service_kit::validate::{any_id, batch_keys, istat_check, istat_key, optional_enum};
use patto_service_kit::{Principal, comuni, procurement};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::export::{self, DatasetFacts};
use crate::domain::import::{validate_contractor, validate_imported};
use crate::domain::project::validate_project;
use crate::domain::sal::NewSal;
use crate::domain::{
    MAX_AMOUNT_CENTS, MAX_REF_LEN, MAX_TEXT_LEN, calendar_day, fits, iso_day, italian_day,
    state_name,
};
use crate::store::{ImportOutcome, ProjectFilter, RowError, Store};
pub use convert::{project_to_pb, sal_to_pb};

/// Most rows one import stream may carry; larger programmes go in several imports.
pub const MAX_IMPORT_ROWS: usize = 50_000;
/// Import errors listed in one answer; the count covers the rest.
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// The `patto.publicworks.v1.PublicWorksService` implementation.
#[derive(Clone)]
pub struct PublicWorksApi {
    store: Store,
}

impl PublicWorksApi {
    /// The API over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The write rule for the caller of one request: may they change the works of a comune? The
    /// store asks it with the work's comune before it writes.
    fn guard(
        &self,
        principal: Principal,
    ) -> impl Fn(&str) -> Result<(), ServiceError> + Send + Sync + use<> {
        move |istat_code: &str| access::authorize_write(&principal, &Act::for_comune(istat_code))
    }
}

/// The Italian day now: deadlines and late flags are Italian days.
fn today() -> NaiveDate {
    italian_day(Utc::now())
}

fn required_id(value: &str, field: &str, v: &mut Violations) -> String {
    match any_id(value) {
        Ok(id) => id,
        Err(msg) => {
            v.add(field, msg);
            String::new()
        }
    }
}

/// Enum values of a filter: each must be a known, specified value.
fn enum_list<E: TryFrom<i32>>(values: &[i32], field: &str, v: &mut Violations) -> Vec<i32> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, &n)| {
            if n != 0 && E::try_from(n).is_ok() {
                Some(n)
            } else {
                v.add(format!("{field}[{i}]"), format!("{n} is not a known value"));
                None
            }
        })
        .collect()
}

/// A required day, not in the future.
fn past_day(value: &str, field: &str, today: NaiveDate, v: &mut Violations) -> Option<NaiveDate> {
    if value.is_empty() {
        v.add(field, "must be set to a day, YYYY-MM-DD");
        return None;
    }
    let day = calendar_day(value, field, v)?;
    if day > today {
        v.add(field, "must not be in the future");
        return None;
    }
    Some(day)
}

fn amount(m: Option<&patto_proto::common::v1::Money>) -> i64 {
    m.map_or(0, |m| m.cents)
}

/// Row errors as the contract reports them: one per wrong row, its first field named and every
/// problem of the row described, rows in order.
fn per_row(errors: Vec<RowError>) -> Vec<pb::ProjectImportError> {
    let mut rows: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    for e in errors {
        rows.entry(e.row)
            .or_default()
            .push((e.field, e.description));
    }
    rows.into_iter()
        .filter_map(|(row, problems)| {
            let mut problems = problems.into_iter();
            let (field, first) = problems.next()?;
            let rest: Vec<String> = problems.map(|(f, d)| format!("{f}: {d}")).collect();
            let description = if rest.is_empty() {
                first
            } else {
                format!("{first}; also {}", rest.join("; "))
            };
            Some(pb::ProjectImportError {
                row,
                field,
                description,
            })
        })
        .collect()
}

fn row_errors(row: i32, violations: &[FieldViolation]) -> impl Iterator<Item = RowError> + '_ {
    violations.iter().map(move |f| RowError {
        row,
        field: f.field.clone(),
        description: f.description.clone(),
    })
}

fn rejected(errors: Vec<RowError>) -> pb::ImportProjectsResponse {
    let listed = per_row(errors);
    pb::ImportProjectsResponse {
        imported: 0,
        error_count: listed.len() as i32,
        errors: listed.into_iter().take(MAX_LISTED_ERRORS).collect(),
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl PublicWorksService for PublicWorksApi {
    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Answer<pb::ListProjectsResponse> {
        let req = request.into_inner();
        let today = today();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        let states = enum_list::<pb::ProjectState>(&req.states, "states", &mut v);
        let funding_sources =
            enum_list::<pb::ProjectFundingSource>(&req.funding_sources, "funding_sources", &mut v);
        let categories = enum_list::<pb::ProjectCategory>(&req.categories, "categories", &mut v);
        v.check(
            req.programme_year == 0 || (2000..=2100).contains(&req.programme_year),
            "programme_year",
            "must be 0 (any) or a year from 2000 to 2100",
        );
        let text = req.text.trim();
        v.check(
            fits(text, MAX_REF_LEN),
            "text",
            format!("must be at most {MAX_REF_LEN} characters"),
        );
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let filter = ProjectFilter {
            istat_code: Some(req.istat_code).filter(|s| !s.is_empty()),
            states,
            funding_sources,
            categories,
            programme_year: (req.programme_year != 0).then_some(req.programme_year),
            annual_list_only: req.annual_list_only,
            incompiuta_only: req.incompiuta_only,
            late_only: req.late_only,
            text: (!text.is_empty()).then(|| text.to_owned()),
            today,
        };
        let (rows, total) = self
            .store
            .list_projects(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListProjectsResponse {
            projects: rows.into_iter().map(|p| project_to_pb(p, today)).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_projects(
        &self,
        request: Request<pb::LookupProjectsRequest>,
    ) -> Answer<pb::LookupProjectsResponse> {
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let today = today();
        let rows = self
            .store
            .projects_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::LookupProjectsResponse {
            items: rows
                .into_iter()
                .map(|p| pb::LookupProjectsItem {
                    key: p.project.id.clone(),
                    project: Some(project_to_pb(p, today)),
                })
                .collect(),
        }))
    }

    async fn list_municipality_projects(
        &self,
        request: Request<pb::ListMunicipalityProjectsRequest>,
    ) -> Answer<pb::ListMunicipalityProjectsResponse> {
        let req = request.into_inner();
        let keys = batch_keys(&req.keys, istat_key)?;
        let mut v = Violations::new();
        v.check(
            (0..=100).contains(&req.first),
            "first",
            "must be between 1 and 100 (0 means 10)",
        );
        let states = enum_list::<pb::ProjectState>(&req.states, "states", &mut v);
        let source =
            optional_enum::<pb::ProjectFundingSource>(req.funding_source, "funding_source", &mut v);
        v.into_result()?;
        let per_comune = if req.first == 0 {
            10
        } else {
            req.first as usize
        };
        let today = today();
        let rows = self
            .store
            .by_comune(&keys, per_comune, &states, source)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::ListMunicipalityProjectsResponse {
            items: rows
                .into_iter()
                .filter(|(_, works)| !works.is_empty())
                .map(|(key, works)| pb::ListMunicipalityProjectsItem {
                    key,
                    projects: works.into_iter().map(|p| project_to_pb(p, today)).collect(),
                })
                .collect(),
        }))
    }

    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Answer<pb::CreateProjectResponse> {
        let guard = self.guard(principal(&request));
        let Some(project) = request.into_inner().project else {
            return Err(ServiceError::invalid("project", "must be set").into());
        };
        let today = today();
        let data =
            validate_project(&project, "project", today).map_err(ServiceError::InvalidArgument)?;
        let view = self
            .store
            .create_project(data, &guard, today, Utc::now())
            .await?;
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(project_to_pb(view, today)),
        }))
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Answer<pb::UpdateProjectResponse> {
        let guard = self.guard(principal(&request));
        let Some(project) = request.into_inner().project else {
            return Err(ServiceError::invalid("project", "must be set").into());
        };
        let today = today();
        let mut v = Violations::new();
        let id = required_id(&project.id, "project.id", &mut v);
        let data = validate_project(&project, "project", today);
        if let Err(errors) = &data {
            for e in errors.as_slice() {
                v.add(e.field.clone(), e.description.clone());
            }
        }
        v.into_result()?;
        let data = data.map_err(ServiceError::InvalidArgument)?;
        let view = self
            .store
            .update_project(&id, data, &guard, Utc::now())
            .await?;
        Ok(Response::new(pb::UpdateProjectResponse {
            project: Some(project_to_pb(view, today)),
        }))
    }

    async fn advance_project_state(
        &self,
        request: Request<pb::AdvanceProjectStateRequest>,
    ) -> Answer<pb::AdvanceProjectStateResponse> {
        let guard = self.guard(principal(&request));
        let req = request.into_inner();
        let today = today();
        let mut v = Violations::new();
        let id = required_id(&req.project_id, "project_id", &mut v);
        let to = match pb::ProjectState::try_from(req.state) {
            Ok(pb::ProjectState::Unspecified) | Err(_) => {
                v.add("state", "must be the ProjectState to enter");
                pb::ProjectState::Unspecified
            }
            Ok(s) => s,
        };
        // No date means today: the change is recorded as it happens.
        let date = if req.date.is_empty() {
            Some(today)
        } else {
            past_day(&req.date, "date", today, &mut v)
        };
        let note = req.note.trim();
        v.check(
            fits(note, MAX_TEXT_LEN),
            "note",
            format!("must be at most {MAX_TEXT_LEN} characters"),
        );
        v.check(
            to != pb::ProjectState::Sospeso || !note.is_empty(),
            "note",
            "must give the reason of the suspension",
        );
        v.into_result()?;
        let view = self
            .store
            .advance(&id, to, date.unwrap_or(today), note, &guard, Utc::now())
            .await?;
        tracing::info!(project = %id, state = state_name(to), "public work state changed");
        Ok(Response::new(pb::AdvanceProjectStateResponse {
            project: Some(project_to_pb(view, today)),
        }))
    }

    async fn award_project_contract(
        &self,
        request: Request<pb::AwardProjectContractRequest>,
    ) -> Answer<pb::AwardProjectContractResponse> {
        let guard = self.guard(principal(&request));
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.project_id, "project_id", &mut v);
        let cig = match procurement::parse_cig(&req.cig) {
            Ok(c) => c.code,
            Err(e) => {
                v.add("cig", format!("is not a valid CIG: {e}"));
                String::new()
            }
        };
        let contractor = req
            .contractor
            .as_ref()
            .and_then(|c| validate_contractor(c, "contractor", &mut v));
        let contract_amount = req.contract_amount.as_ref().map(|m| m.cents);
        v.check(
            contract_amount.is_none_or(|c| (1..=MAX_AMOUNT_CENTS).contains(&c)),
            "contract_amount.cents",
            "must be more than zero",
        );
        v.into_result()?;
        let view = self
            .store
            .award(&id, &cig, contractor, contract_amount, &guard, Utc::now())
            .await?;
        Ok(Response::new(pb::AwardProjectContractResponse {
            project: Some(project_to_pb(view, today())),
        }))
    }

    async fn set_project_incompiuta(
        &self,
        request: Request<pb::SetProjectIncompiutaRequest>,
    ) -> Answer<pb::SetProjectIncompiutaResponse> {
        let guard = self.guard(principal(&request));
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.project_id, "project_id", &mut v);
        let note = req.note.trim();
        v.check(
            fits(note, MAX_TEXT_LEN),
            "note",
            format!("must be at most {MAX_TEXT_LEN} characters"),
        );
        v.check(
            !req.incompiuta || !note.is_empty(),
            "note",
            "must say why the work is incompiuta",
        );
        v.into_result()?;
        let view = self
            .store
            .set_incompiuta(&id, req.incompiuta, note, &guard, Utc::now())
            .await?;
        Ok(Response::new(pb::SetProjectIncompiutaResponse {
            project: Some(project_to_pb(view, today())),
        }))
    }

    async fn record_sal(
        &self,
        request: Request<pb::RecordSalRequest>,
    ) -> Answer<pb::RecordSalResponse> {
        let guard = self.guard(principal(&request));
        let req = request.into_inner();
        let today = today();
        let mut v = Violations::new();
        let id = required_id(&req.project_id, "project_id", &mut v);
        let date = past_day(&req.date, "date", today, &mut v);
        v.check(
            req.amount.is_some(),
            "amount",
            "must be set: the amount of the works accounted in this SAL",
        );
        v.into_result()?;
        let new = NewSal {
            date: date.unwrap_or(today),
            progress_basis_points: req.progress_basis_points,
            amount_cents: amount(req.amount.as_ref()),
        };
        let done = self
            .store
            .record_sal(&id, new, &guard, today, Utc::now())
            .await?;
        Ok(Response::new(pb::RecordSalResponse {
            sal_entry: Some(sal_to_pb(&done.sal, today)),
            project: Some(project_to_pb(done.view, today)),
        }))
    }

    async fn issue_sal_certificate(
        &self,
        request: Request<pb::IssueSalCertificateRequest>,
    ) -> Answer<pb::IssueSalCertificateResponse> {
        let guard = self.guard(principal(&request));
        let req = request.into_inner();
        let today = today();
        let mut v = Violations::new();
        let id = required_id(&req.project_id, "project_id", &mut v);
        v.check(
            req.sal_number >= 1,
            "sal_number",
            "must be a SAL number, from 1",
        );
        let issued = past_day(&req.issued_date, "issued_date", today, &mut v);
        v.check(
            req.amount.is_some(),
            "amount",
            "must be set: the amount of the certificate",
        );
        v.into_result()?;
        let done = self
            .store
            .issue_certificate(
                &id,
                req.sal_number,
                issued.unwrap_or(today),
                amount(req.amount.as_ref()),
                &guard,
                today,
                Utc::now(),
            )
            .await?;
        Ok(Response::new(pb::IssueSalCertificateResponse {
            sal_entry: Some(sal_to_pb(&done.sal, today)),
            project: Some(project_to_pb(done.view, today)),
        }))
    }

    async fn record_sal_payment(
        &self,
        request: Request<pb::RecordSalPaymentRequest>,
    ) -> Answer<pb::RecordSalPaymentResponse> {
        let guard = self.guard(principal(&request));
        let req = request.into_inner();
        let today = today();
        let mut v = Violations::new();
        let id = required_id(&req.project_id, "project_id", &mut v);
        v.check(
            req.sal_number >= 1,
            "sal_number",
            "must be a SAL number, from 1",
        );
        let paid = past_day(&req.paid_date, "paid_date", today, &mut v);
        v.check(
            req.amount.is_some(),
            "amount",
            "must be set: the amount paid",
        );
        v.into_result()?;
        let done = self
            .store
            .record_payment(
                &id,
                req.sal_number,
                paid.unwrap_or(today),
                amount(req.amount.as_ref()),
                &guard,
                today,
                Utc::now(),
            )
            .await?;
        Ok(Response::new(pb::RecordSalPaymentResponse {
            sal_entry: Some(sal_to_pb(&done.sal, today)),
            project: Some(project_to_pb(done.view, today)),
        }))
    }

    async fn import_projects(
        &self,
        request: Request<Streaming<pb::ImportProjectsRequest>>,
    ) -> Answer<pb::ImportProjectsResponse> {
        let caller = principal(&request);
        // Only a comune's operators and systems import: refuse anyone else before reading rows.
        access::authorize_comune_caller(&caller)?;
        let guard = self.guard(caller);
        let mut stream = request.into_inner();
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await {
            rows.push(row?);
            if rows.len() > MAX_IMPORT_ROWS {
                return Err(ServiceError::invalid(
                    "project",
                    format!("an import carries at most {MAX_IMPORT_ROWS} rows; split it"),
                )
                .into());
            }
        }
        // One import, one comune: the first row's, which the caller must be allowed to change.
        let Some(comune) = rows
            .iter()
            .filter_map(|r| r.project.as_ref())
            .map(|p| p.istat_code.as_str())
            .find(|c| comuni::by_istat(c).is_some())
            .map(str::to_owned)
        else {
            let mut errors = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                let (field, description) = match &row.project {
                    None => ("project", "must be set"),
                    Some(_) => (
                        "project.istat_code",
                        "must be the ISTAT code of a comune of the Città Metropolitana di Palermo",
                    ),
                };
                errors.push(RowError {
                    row: i as i32 + 1,
                    field: field.into(),
                    description: description.into(),
                });
            }
            return Ok(Response::new(rejected(errors)));
        };
        guard(&comune)?;
        let today = today();
        let terms = self
            .store
            .sal_terms(&comune)
            .await
            .map_err(ServiceError::from)?;
        let mut valid = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let number = i as i32 + 1;
            let Some(project) = &row.project else {
                errors.push(RowError {
                    row: number,
                    field: "project".into(),
                    description: "must be set".into(),
                });
                continue;
            };
            if project.istat_code != comune {
                errors.push(RowError {
                    row: number,
                    field: "project.istat_code".into(),
                    description: format!(
                        "an import carries the works of one comune: {comune}, as in the first row"
                    ),
                });
                continue;
            }
            match validate_imported(project, "project", terms, today) {
                Ok(work) => valid.push((number, work)),
                Err(v) => errors.extend(row_errors(number, v.as_slice())),
            }
        }
        if !errors.is_empty() {
            return Ok(Response::new(rejected(errors)));
        }
        match self.store.import(valid, today, Utc::now()).await? {
            ImportOutcome::Imported(n) => {
                tracing::info!(comune = %comune, works = n, "public works imported");
                Ok(Response::new(pb::ImportProjectsResponse {
                    imported: n as i32,
                    errors: Vec::new(),
                    error_count: 0,
                }))
            }
            ImportOutcome::Rejected(errors) => Ok(Response::new(rejected(errors))),
        }
    }

    async fn export_projects(
        &self,
        request: Request<pb::ExportProjectsRequest>,
    ) -> Answer<BoxStream<pb::ExportProjectsResponse>> {
        let draining = Draining::of(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let comune = comuni::by_istat(&req.istat_code);
        v.check(
            comune.is_some(),
            "istat_code",
            "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
        );
        let format = match pb::ProjectExportFormat::try_from(req.format) {
            Ok(pb::ProjectExportFormat::Unspecified) | Err(_) => {
                v.add("format", "must be CSV or JSON");
                pb::ProjectExportFormat::Unspecified
            }
            Ok(f) => f,
        };
        let states = enum_list::<pb::ProjectState>(&req.states, "states", &mut v);
        v.into_result()?;
        let Some(comune) = comune else {
            return Err(ServiceError::invalid("istat_code", "unknown comune").into());
        };
        let today = today();
        let now = Utc::now();
        // The whole dataset is read before the first message: the metadata count and `modified`
        // must describe exactly the rows that follow.
        let works: Vec<pb::Project> = self
            .store
            .comune_works(&comune.istat_code, &states)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .map(|p| project_to_pb(p, today))
            .collect();
        let modified = works
            .iter()
            .filter_map(|p| p.updated_time.as_ref())
            .filter_map(patto_service_kit::time::from_timestamp)
            .max()
            .map_or_else(|| iso_day(today), |t| iso_day(italian_day(t)));
        let sources: Vec<pb::ProjectFundingSource> = works
            .iter()
            .flat_map(|p| p.funding.iter())
            .filter_map(|f| pb::ProjectFundingSource::try_from(f.source).ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let metadata = export::metadata(&DatasetFacts {
            istat_code: &comune.istat_code,
            comune: &comune.name,
            format,
            row_count: works.len(),
            modified,
            sources,
            generated: now,
        });
        let name = comune.name.clone();
        let stream = spawn_stream(draining, move |tx| async move {
            let first = pb::ExportProjectsResponse {
                content: Some(pb::export_projects_response::Content::Metadata(metadata)),
            };
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            let row = |number: usize, line: String| pb::ExportProjectsResponse {
                content: Some(pb::export_projects_response::Content::Row(
                    pb::ProjectExportRow {
                        number: number as i64,
                        line,
                    },
                )),
            };
            if format == pb::ProjectExportFormat::Csv
                && tx.send(Ok(row(0, export::csv_header()))).await.is_err()
            {
                return;
            }
            for (i, work) in works.iter().enumerate() {
                let line = match format {
                    pb::ProjectExportFormat::Json => export::json_line(work, &name),
                    _ => export::csv_record(work, &name),
                };
                if tx.send(Ok(row(i + 1, line))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}
