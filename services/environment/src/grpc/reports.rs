//! Citizens' reports over gRPC: listing and lookups, filing with duplicate linking, the operators'
//! workflow steps, and the watch stream.

use chrono::Utc;
use patto_proto::environment::v1 as pb;
use patto_service_kit::Principal;
use patto_service_kit::access::{self, Act, Record};
use patto_service_kit::audit::{Caller, Reads};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::host::Draining;
use patto_service_kit::paging::Page;
use patto_service_kit::stream::spawn_stream;
use patto_service_kit::time;
use tokio::sync::broadcast;
use tonic::codegen::BoxStream;
use tonic::{Request, Response};

use super::{
    Answer, EnvironmentApi, any_id, asked_fiscal_codes, batch_keys, citizen_code, convert,
    enum_list, fiscal_code_key, require_istat, required_id, today,
};
use crate::domain::geo;
use crate::domain::reports as rules;
use crate::domain::{MAX_NAME_LEN, MAX_TEXT_LEN, check_text, parse_optional_day, required_text};
use crate::store::{ReportAct, ReportFilter, ReportView, report};

/// Radius of a `near` search when none is given, in metres.
pub const DEFAULT_RADIUS_M: i32 = 500;
/// Widest `near` search, in metres.
pub const MAX_RADIUS_M: i32 = 5_000;

/// What the audit names a read of a report's reporter.
const REPORT: &str = "environment.EnvironmentReport";

/// Who filed a report, as the access rule sees it: personal data of the reporter, held by the
/// report's comune. `None` for a report nobody signed (taken by phone).
fn reporter(r: &report::Model) -> Option<Record<'_>> {
    (!r.fiscal_code.is_empty()).then(|| Record::personal(&r.fiscal_code, &r.istat_code))
}

/// A report as one read shows it: the reporter named only to whom the rule allows, and that read
/// noted for the audit.
fn read_report(view: ReportView, reads: &mut Reads) -> pb::EnvironmentReport {
    let show = reporter(&view.report).is_some_and(|r| reads.allows(&r));
    convert::report(view, show)
}

/// A report as the answer to a change shows it: the reporter named only to whom the rule allows.
fn changed_report(view: ReportView, viewer: &Principal) -> pb::EnvironmentReport {
    let show = reporter(&view.report).is_some_and(|r| access::may_read(viewer, &r));
    convert::report(view, show)
}

pub(super) async fn list(
    api: &EnvironmentApi,
    request: Request<pb::ListEnvironmentReportsRequest>,
) -> Answer<pb::ListEnvironmentReportsResponse> {
    let mut reads = Reads::new(Caller::of(&request), REPORT);
    let req = request.into_inner();
    let mut v = Violations::new();
    if !req.istat_code.is_empty() {
        require_istat(&req.istat_code, "istat_code", &mut v);
    }
    let categories =
        enum_list::<pb::EnvironmentReportCategory>(&req.categories, "categories", &mut v);
    let statuses = enum_list::<pb::EnvironmentReportStatus>(&req.statuses, "statuses", &mut v);
    let near = req
        .near
        .as_ref()
        .and_then(|g| geo::validate(g, "near", &mut v));
    v.check(
        (0..=MAX_RADIUS_M).contains(&req.radius_meters),
        "radius_meters",
        format!("must be 0 to {MAX_RADIUS_M} (0 means {DEFAULT_RADIUS_M})"),
    );
    let after = req.created_after.as_ref().map(time::from_timestamp);
    v.check(
        !matches!(after, Some(None)),
        "created_after",
        "is not a valid timestamp",
    );
    let before = req.created_before.as_ref().map(time::from_timestamp);
    v.check(
        !matches!(before, Some(None)),
        "created_before",
        "is not a valid timestamp",
    );
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    let radius = if req.radius_meters == 0 {
        DEFAULT_RADIUS_M
    } else {
        req.radius_meters
    };
    let filter = ReportFilter {
        istat_code: Some(req.istat_code).filter(|s| !s.is_empty()),
        categories,
        statuses,
        near: near.map(|p| (p, f64::from(radius))),
        created_after: after.flatten(),
        created_before: before.flatten(),
        include_linked: req.include_linked,
    };
    let (rows, total) = api
        .store
        .list_reports(&filter, page)
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    let environment_reports = rows
        .into_iter()
        .map(|r| read_report(r, &mut reads))
        .collect();
    reads.save(api.store.db()).await?;
    Ok(Response::new(pb::ListEnvironmentReportsResponse {
        environment_reports,
        page_info: Some(info),
    }))
}

pub(super) async fn lookup(
    api: &EnvironmentApi,
    request: Request<pb::LookupEnvironmentReportsRequest>,
) -> Answer<pb::LookupEnvironmentReportsResponse> {
    let mut reads = Reads::new(Caller::of(&request), REPORT);
    let keys = batch_keys(&request.into_inner().keys, any_id)?;
    let rows = api
        .store
        .reports_by_id(&keys)
        .await
        .map_err(ServiceError::from)?;
    let items = rows
        .into_iter()
        .map(|r| pb::LookupEnvironmentReportsItem {
            key: r.report.id.clone(),
            environment_report: Some(read_report(r, &mut reads)),
        })
        .collect();
    reads.save(api.store.db()).await?;
    Ok(Response::new(pb::LookupEnvironmentReportsResponse {
        items,
    }))
}

pub(super) async fn by_citizen(
    api: &EnvironmentApi,
    request: Request<pb::ListCitizenEnvironmentReportsRequest>,
) -> Answer<pb::ListCitizenEnvironmentReportsResponse> {
    let mut reads = Reads::new(Caller::of(&request), REPORT);
    let req = request.into_inner();
    let canonical = batch_keys(&req.keys, fiscal_code_key)?;
    let mut v = Violations::new();
    let statuses = enum_list::<pb::EnvironmentReportStatus>(&req.statuses, "statuses", &mut v);
    v.into_result()?;
    // Whose reports these are is personal: a citizen asks for their own, an operator or system
    // sees those of their comune.
    access::authorize_citizen_keys(reads.principal(), &canonical)?;
    let rows: Vec<ReportView> = api
        .store
        .reports_by_citizen(&canonical, &statuses)
        .await
        .map_err(ServiceError::from)?
        .into_iter()
        .filter(|r| reporter(&r.report).is_some_and(|rec| reads.allows(&rec)))
        .collect();
    reads.save(api.store.db()).await?;
    let items = asked_fiscal_codes(&req.keys)
        .into_iter()
        .filter_map(|(key, cf)| {
            let reports: Vec<pb::EnvironmentReport> = rows
                .iter()
                .filter(|r| r.report.fiscal_code == cf)
                .map(|r| convert::report(r.clone(), true))
                .collect();
            (!reports.is_empty()).then_some(pb::ListCitizenEnvironmentReportsItem {
                key,
                environment_reports: reports,
            })
        })
        .collect();
    Ok(Response::new(pb::ListCitizenEnvironmentReportsResponse {
        items,
    }))
}

pub(super) async fn create(
    api: &EnvironmentApi,
    request: Request<pb::CreateEnvironmentReportRequest>,
) -> Answer<pb::CreateEnvironmentReportResponse> {
    let viewer = principal(&request);
    let mut req = request.into_inner();
    // A signed-in citizen files for themselves without repeating their code.
    if req.fiscal_code.trim().is_empty()
        && let Some(me) = citizen_code(&viewer)
    {
        req.fiscal_code = me;
    }
    let new = rules::validate_create(&req).map_err(ServiceError::InvalidArgument)?;
    // A signed report is filed for its reporter (by them, or by an operator of the comune on
    // their behalf); an unsigned one (taken by phone) only by the comune's operators.
    let act = match new.fiscal_code.as_deref() {
        Some(cf) => Act::for_citizen(cf, &new.istat_code),
        None => Act::for_comune(&new.istat_code),
    };
    access::authorize_write(&viewer, &act)?;
    let (view, primary) = api.store.create_report(new, None).await?;
    api.publish(&view.report.id);
    if let Some(primary) = primary {
        api.publish(&primary);
    }
    Ok(Response::new(pb::CreateEnvironmentReportResponse {
        environment_report: Some(changed_report(view, &viewer)),
    }))
}

/// Checks the caller may run the workflow of report `id` (its comune's operators), then takes the
/// step and tells the watchers.
async fn step(
    api: &EnvironmentApi,
    viewer: &Principal,
    id: &str,
    act: ReportAct,
) -> Result<(pb::EnvironmentReport, i32), ServiceError> {
    let current = api
        .store
        .report(id)
        .await?
        .ok_or_else(|| ServiceError::not_found("report", id))?;
    access::authorize_write(viewer, &Act::for_comune(&current.report.istat_code))?;
    let (view, closed) = api.store.act_on_report(id, act, Utc::now()).await?;
    api.publish(id);
    Ok((changed_report(view, viewer), closed))
}

fn note_field(note: &str, field: &str, required: bool, v: &mut Violations) -> String {
    if required {
        required_text(note, MAX_TEXT_LEN, field, v)
    } else {
        check_text(note, MAX_TEXT_LEN, field, v);
        note.trim().to_owned()
    }
}

fn report_id(value: &str, v: &mut Violations) -> String {
    match any_id(value) {
        Ok(id) => id,
        Err(msg) => {
            v.add("report_id", msg);
            String::new()
        }
    }
}

pub(super) async fn acknowledge(
    api: &EnvironmentApi,
    request: Request<pb::AcknowledgeEnvironmentReportRequest>,
) -> Answer<pb::AcknowledgeEnvironmentReportResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = report_id(&req.report_id, &mut v);
    let assigned_to = required_text(&req.assigned_to, MAX_NAME_LEN, "assigned_to", &mut v);
    let expected = parse_optional_day(
        &req.expected_resolution_date,
        "expected_resolution_date",
        &mut v,
    )
    .flatten();
    if let Some(d) = expected {
        let today = today();
        v.check(
            d >= today,
            "expected_resolution_date",
            format!("must not be before today ({today})"),
        );
    }
    let note = note_field(&req.note, "note", false, &mut v);
    v.into_result()?;
    let (report, _) = step(
        api,
        &viewer,
        &id,
        ReportAct::Acknowledge {
            assigned_to,
            expected,
            note,
        },
    )
    .await?;
    Ok(Response::new(pb::AcknowledgeEnvironmentReportResponse {
        environment_report: Some(report),
    }))
}

pub(super) async fn start(
    api: &EnvironmentApi,
    request: Request<pb::StartEnvironmentReportRequest>,
) -> Answer<pb::StartEnvironmentReportResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = report_id(&req.report_id, &mut v);
    let note = note_field(&req.note, "note", false, &mut v);
    v.into_result()?;
    let (report, _) = step(api, &viewer, &id, ReportAct::Start { note }).await?;
    Ok(Response::new(pb::StartEnvironmentReportResponse {
        environment_report: Some(report),
    }))
}

pub(super) async fn resolve(
    api: &EnvironmentApi,
    request: Request<pb::ResolveEnvironmentReportRequest>,
) -> Answer<pb::ResolveEnvironmentReportResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = report_id(&req.report_id, &mut v);
    let note = note_field(&req.note, "note", true, &mut v);
    v.into_result()?;
    let (report, closed) = step(api, &viewer, &id, ReportAct::Resolve { note }).await?;
    Ok(Response::new(pb::ResolveEnvironmentReportResponse {
        environment_report: Some(report),
        linked_reports_closed: closed,
    }))
}

pub(super) async fn reject(
    api: &EnvironmentApi,
    request: Request<pb::RejectEnvironmentReportRequest>,
) -> Answer<pb::RejectEnvironmentReportResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = report_id(&req.report_id, &mut v);
    let reason = note_field(&req.reason, "reason", true, &mut v);
    v.into_result()?;
    let (report, closed) = step(api, &viewer, &id, ReportAct::Reject { reason }).await?;
    Ok(Response::new(pb::RejectEnvironmentReportResponse {
        environment_report: Some(report),
        linked_reports_closed: closed,
    }))
}

pub(super) async fn add_note(
    api: &EnvironmentApi,
    request: Request<pb::AddEnvironmentReportNoteRequest>,
) -> Answer<pb::AddEnvironmentReportNoteResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = report_id(&req.report_id, &mut v);
    let note = note_field(&req.note, "note", true, &mut v);
    v.into_result()?;
    let (report, _) = step(api, &viewer, &id, ReportAct::Note { note }).await?;
    Ok(Response::new(pb::AddEnvironmentReportNoteResponse {
        environment_report: Some(report),
    }))
}

pub(super) async fn watch(
    api: &EnvironmentApi,
    request: Request<pb::WatchEnvironmentReportRequest>,
) -> Answer<BoxStream<pb::WatchEnvironmentReportResponse>> {
    let draining = Draining::of(&request);
    let mut reads = Reads::new(Caller::of(&request), REPORT);
    let id = required_id(&request.into_inner().report_id, "report_id")?;
    // Subscribe before reading the current state, so no change falls between the two.
    let mut updates = api.updates.subscribe();
    let current = api
        .store
        .report(&id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found("report", &id))?;
    // A linked report follows the report it is linked to: its changes are this one's too.
    let primary = current.report.linked_to.clone();
    let store = api.store.clone();
    // The reporter does not change: whether the watcher sees them is decided, and recorded, once.
    let show = reporter(&current.report).is_some_and(|r| reads.allows(&r));
    reads.save(api.store.db()).await?;
    let message = move |view: ReportView| pb::WatchEnvironmentReportResponse {
        environment_report: Some(convert::report(view, show)),
    };
    let stream = spawn_stream(draining, move |tx| async move {
        if tx.send(Ok(message(current))).await.is_err() {
            return;
        }
        loop {
            match updates.recv().await {
                Ok(changed) if changed == id || primary.as_deref() == Some(changed.as_str()) => {}
                Ok(_) => continue,
                // Fell behind: what matters is the latest state, read afresh below.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
            let next = match store.report(&id).await {
                Ok(Some(view)) => message(view),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "report watch could not read the report");
                    continue;
                }
            };
            if tx.send(Ok(next)).await.is_err() {
                return;
            }
        }
    });
    Ok(Response::new(stream))
}
