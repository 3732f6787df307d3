//! The gRPC face of the environment service: request validation, the kit's access rule applied to
//! every read and change, the audit of personal-data reads, conversions between stored rows and
//! protobuf messages, and the report feed behind the watch RPC. One module per part of the contract
//! (`reports`, `waste`, `air`); this one holds the service and what they share.
//!
//! Who may read and change what (DESIGN.md, "Identity and tenancy", decided once in
//! [`patto_service_kit::access`]):
//! - reports, calendars, collection centres and air quality are public;
//! - the reporter's codice fiscale is personal: shown only to the reporter and to the operators and
//!   systems of the report's comune; a public listing simply leaves it out;
//! - bulky-waste pickups (address, phone, fiscal code) are personal data of the citizen who booked,
//!   readable by them and by the operators and systems of the comune; a comune's list of pickups is
//!   internal to it;
//! - a citizen files reports and books pickups for themselves (an operator of the comune may, on
//!   their behalf); operators and systems of a comune run its workflow, calendar, pickups, stations
//!   and readings.
//!
//! Every read of personal data by anyone but the citizen it concerns is recorded
//! ([`patto_service_kit::audit`]) before the answer leaves.

mod air;
mod convert;
mod reports;
mod waste;

use chrono::{NaiveDate, Utc};
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::environment_service_server::EnvironmentService;
use patto_service_kit::Principal;
use patto_service_kit::access;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::validate::{
    any_id, asked_keys, batch_keys, fiscal_code_key, istat_check, istat_key, optional_enum,
};
use tokio::sync::broadcast;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain;
use crate::store::Store;

/// Rows one readings import may carry: a year of hourly values for a dozen station-pollutants.
pub const MAX_IMPORT_ROWS: usize = 200_000;
/// Wrong rows an import answer lists (the count covers them all).
pub const MAX_IMPORT_ERRORS: usize = 1_000;

/// The `patto.environment.v1.EnvironmentService` implementation.
#[derive(Clone)]
pub struct EnvironmentApi {
    store: Store,
    /// Ids of reports that changed, for the watch streams.
    updates: broadcast::Sender<String>,
}

impl EnvironmentApi {
    /// The API over `store`.
    pub fn new(store: Store) -> Self {
        let (updates, _) = broadcast::channel(1024);
        Self { store, updates }
    }

    fn publish(&self, report_id: &str) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.updates.send(report_id.to_owned());
    }
}

type Answer<T> = Result<Response<T>, Status>;

/// Today in Italy: calendars, bookings and deadlines are Italian days.
fn today() -> NaiveDate {
    domain::italian_day(Utc::now())
}

/// A repeated enum filter: the known values, a violation for each unknown or unspecified one.
fn enum_list<E: TryFrom<i32>>(values: &[i32], field: &str, v: &mut Violations) -> Vec<i32> {
    let mut out = Vec::new();
    for (i, n) in values.iter().enumerate() {
        if *n != 0 && E::try_from(*n).is_ok() {
            out.push(*n);
        } else {
            v.add(format!("{field}[{i}]"), format!("{n} is not a known value"));
        }
    }
    out
}

fn required_id(value: &str, field: &str) -> Result<String, ServiceError> {
    any_id(value).map_err(|msg| ServiceError::invalid(field, msg))
}

/// Records a violation of `field` unless `code` is the ISTAT code of a comune.
fn require_istat(code: &str, field: &str, v: &mut Violations) {
    istat_check(code, field, true, v);
}

/// The canonical fiscal code of a citizen principal: a citizen files and books for themselves
/// without repeating their code.
fn citizen_code(p: &Principal) -> Option<String> {
    match p {
        Principal::Citizen { fiscal_code } => Some(access::canonical(fiscal_code)),
        _ => None,
    }
}

/// Each fiscal code as the caller sent it, with its canonical form.
fn asked_fiscal_codes(keys: &[String]) -> Vec<(String, String)> {
    asked_keys(keys, fiscal_code_key)
}

#[tonic::async_trait]
impl EnvironmentService for EnvironmentApi {
    async fn list_environment_reports(
        &self,
        request: Request<pb::ListEnvironmentReportsRequest>,
    ) -> Answer<pb::ListEnvironmentReportsResponse> {
        reports::list(self, request).await
    }

    async fn lookup_environment_reports(
        &self,
        request: Request<pb::LookupEnvironmentReportsRequest>,
    ) -> Answer<pb::LookupEnvironmentReportsResponse> {
        reports::lookup(self, request).await
    }

    async fn list_citizen_environment_reports(
        &self,
        request: Request<pb::ListCitizenEnvironmentReportsRequest>,
    ) -> Answer<pb::ListCitizenEnvironmentReportsResponse> {
        reports::by_citizen(self, request).await
    }

    async fn create_environment_report(
        &self,
        request: Request<pb::CreateEnvironmentReportRequest>,
    ) -> Answer<pb::CreateEnvironmentReportResponse> {
        reports::create(self, request).await
    }

    async fn acknowledge_environment_report(
        &self,
        request: Request<pb::AcknowledgeEnvironmentReportRequest>,
    ) -> Answer<pb::AcknowledgeEnvironmentReportResponse> {
        reports::acknowledge(self, request).await
    }

    async fn start_environment_report(
        &self,
        request: Request<pb::StartEnvironmentReportRequest>,
    ) -> Answer<pb::StartEnvironmentReportResponse> {
        reports::start(self, request).await
    }

    async fn resolve_environment_report(
        &self,
        request: Request<pb::ResolveEnvironmentReportRequest>,
    ) -> Answer<pb::ResolveEnvironmentReportResponse> {
        reports::resolve(self, request).await
    }

    async fn reject_environment_report(
        &self,
        request: Request<pb::RejectEnvironmentReportRequest>,
    ) -> Answer<pb::RejectEnvironmentReportResponse> {
        reports::reject(self, request).await
    }

    async fn add_environment_report_note(
        &self,
        request: Request<pb::AddEnvironmentReportNoteRequest>,
    ) -> Answer<pb::AddEnvironmentReportNoteResponse> {
        reports::add_note(self, request).await
    }

    async fn watch_environment_report(
        &self,
        request: Request<pb::WatchEnvironmentReportRequest>,
    ) -> Answer<BoxStream<pb::WatchEnvironmentReportResponse>> {
        reports::watch(self, request).await
    }

    async fn list_waste_zones(
        &self,
        request: Request<pb::ListWasteZonesRequest>,
    ) -> Answer<pb::ListWasteZonesResponse> {
        waste::list_zones(self, request).await
    }

    async fn lookup_waste_zones(
        &self,
        request: Request<pb::LookupWasteZonesRequest>,
    ) -> Answer<pb::LookupWasteZonesResponse> {
        waste::lookup_zones(self, request).await
    }

    async fn list_waste_collections(
        &self,
        request: Request<pb::ListWasteCollectionsRequest>,
    ) -> Answer<pb::ListWasteCollectionsResponse> {
        waste::collections(self, request).await
    }

    async fn list_municipality_waste_calendars(
        &self,
        request: Request<pb::ListMunicipalityWasteCalendarsRequest>,
    ) -> Answer<pb::ListMunicipalityWasteCalendarsResponse> {
        waste::municipality_calendars(self, request).await
    }

    async fn list_waste_calendar_changes(
        &self,
        request: Request<pb::ListWasteCalendarChangesRequest>,
    ) -> Answer<pb::ListWasteCalendarChangesResponse> {
        waste::list_changes(self, request).await
    }

    async fn reschedule_waste_collection(
        &self,
        request: Request<pb::RescheduleWasteCollectionRequest>,
    ) -> Answer<pb::RescheduleWasteCollectionResponse> {
        waste::reschedule(self, request).await
    }

    async fn replace_waste_calendar(
        &self,
        request: Request<pb::ReplaceWasteCalendarRequest>,
    ) -> Answer<pb::ReplaceWasteCalendarResponse> {
        waste::replace(self, request).await
    }

    async fn list_waste_collection_centres(
        &self,
        request: Request<pb::ListWasteCollectionCentresRequest>,
    ) -> Answer<pb::ListWasteCollectionCentresResponse> {
        waste::list_centres(self, request).await
    }

    async fn lookup_waste_collection_centres(
        &self,
        request: Request<pb::LookupWasteCollectionCentresRequest>,
    ) -> Answer<pb::LookupWasteCollectionCentresResponse> {
        waste::lookup_centres(self, request).await
    }

    async fn list_bulky_waste_pickups(
        &self,
        request: Request<pb::ListBulkyWastePickupsRequest>,
    ) -> Answer<pb::ListBulkyWastePickupsResponse> {
        waste::list_pickups(self, request).await
    }

    async fn lookup_bulky_waste_pickups(
        &self,
        request: Request<pb::LookupBulkyWastePickupsRequest>,
    ) -> Answer<pb::LookupBulkyWastePickupsResponse> {
        waste::lookup_pickups(self, request).await
    }

    async fn list_citizen_bulky_waste_pickups(
        &self,
        request: Request<pb::ListCitizenBulkyWastePickupsRequest>,
    ) -> Answer<pb::ListCitizenBulkyWastePickupsResponse> {
        waste::citizen_pickups(self, request).await
    }

    async fn book_bulky_waste_pickup(
        &self,
        request: Request<pb::BookBulkyWastePickupRequest>,
    ) -> Answer<pb::BookBulkyWastePickupResponse> {
        waste::book(self, request).await
    }

    async fn cancel_bulky_waste_pickup(
        &self,
        request: Request<pb::CancelBulkyWastePickupRequest>,
    ) -> Answer<pb::CancelBulkyWastePickupResponse> {
        waste::cancel(self, request).await
    }

    async fn complete_bulky_waste_pickup(
        &self,
        request: Request<pb::CompleteBulkyWastePickupRequest>,
    ) -> Answer<pb::CompleteBulkyWastePickupResponse> {
        waste::complete(self, request).await
    }

    async fn list_air_quality_stations(
        &self,
        request: Request<pb::ListAirQualityStationsRequest>,
    ) -> Answer<pb::ListAirQualityStationsResponse> {
        air::list_stations(self, request).await
    }

    async fn lookup_air_quality_stations(
        &self,
        request: Request<pb::LookupAirQualityStationsRequest>,
    ) -> Answer<pb::LookupAirQualityStationsResponse> {
        air::lookup_stations(self, request).await
    }

    async fn save_air_quality_station(
        &self,
        request: Request<pb::SaveAirQualityStationRequest>,
    ) -> Answer<pb::SaveAirQualityStationResponse> {
        air::save_station(self, request).await
    }

    async fn list_air_quality_readings(
        &self,
        request: Request<pb::ListAirQualityReadingsRequest>,
    ) -> Answer<pb::ListAirQualityReadingsResponse> {
        air::list_readings(self, request).await
    }

    async fn list_air_quality_daily_summaries(
        &self,
        request: Request<pb::ListAirQualityDailySummariesRequest>,
    ) -> Answer<pb::ListAirQualityDailySummariesResponse> {
        air::list_daily(self, request).await
    }

    async fn list_air_quality_exceedances(
        &self,
        request: Request<pb::ListAirQualityExceedancesRequest>,
    ) -> Answer<pb::ListAirQualityExceedancesResponse> {
        air::exceedances(self, request).await
    }

    async fn list_municipality_air_quality(
        &self,
        request: Request<pb::ListMunicipalityAirQualityRequest>,
    ) -> Answer<pb::ListMunicipalityAirQualityResponse> {
        air::municipality(self, request).await
    }

    async fn import_air_quality_readings(
        &self,
        request: Request<Streaming<pb::ImportAirQualityReadingsRequest>>,
    ) -> Answer<pb::ImportAirQualityReadingsResponse> {
        air::import(self, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_enum_filters_name_each_bad_value() {
        let mut v = Violations::new();
        let kept = enum_list::<pb::EnvironmentReportStatus>(&[1, 0, 4, 99], "statuses", &mut v);
        assert_eq!(kept, [1, 4]);
        let fields: Vec<&str> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["statuses[1]", "statuses[3]"]);
        assert_eq!(
            asked_fiscal_codes(&["rccmnl83s18d96vw".into(), "bad".into()]),
            [("rccmnl83s18d96vw".to_owned(), "RCCMNL83S18D969H".to_owned())]
        );
    }
}
