//! Waste collection over gRPC: zones, "what is collected here on this date", the calendars and
//! their changes, collection centres, and bulky-waste pickups.

use chrono::{Duration, NaiveDate, Utc};
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::{
    BulkyWastePickupStatus as PickupStatus, WasteFraction as Fraction, WasteUserType as UserType,
};
use patto_service_kit::access::{self, Act, Record};
use patto_service_kit::audit::{Caller, Reads};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::paging::Page;
use tonic::{Request, Response};

use super::{
    Answer, EnvironmentApi, any_id, asked_fiscal_codes, batch_keys, citizen_code, convert,
    enum_list, fiscal_code_key, istat_key, optional_enum, require_istat, required_id, today,
};
use crate::domain::waste::{self as rules, ChangeFields, ZoneMatch};
use crate::domain::{MAX_TEXT_LEN, check_text, parse_optional_day, required_text};
use crate::store::{PickupFilter, pickup, schedule_from_row};

/// What the audit names a read of a bulky-waste pickup.
const PICKUP: &str = "environment.BulkyWastePickup";

/// A bulky-waste pickup as the access rule sees it: the booking citizen's, held by the comune.
fn pickup_record(p: &pickup::Model) -> Record<'_> {
    Record::personal(&p.fiscal_code, &p.istat_code)
}

pub(super) async fn list_zones(
    api: &EnvironmentApi,
    request: Request<pb::ListWasteZonesRequest>,
) -> Answer<pb::ListWasteZonesResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    require_istat(&req.istat_code, "istat_code", &mut v);
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    let (rows, total) = api
        .store
        .list_zones(&req.istat_code, page)
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    Ok(Response::new(pb::ListWasteZonesResponse {
        waste_zones: rows.into_iter().map(convert::zone).collect(),
        page_info: Some(info),
    }))
}

pub(super) async fn lookup_zones(
    api: &EnvironmentApi,
    request: Request<pb::LookupWasteZonesRequest>,
) -> Answer<pb::LookupWasteZonesResponse> {
    let keys = batch_keys(&request.into_inner().keys, any_id)?;
    let rows = api
        .store
        .zones_by_id(&keys)
        .await
        .map_err(ServiceError::from)?;
    Ok(Response::new(pb::LookupWasteZonesResponse {
        items: rows
            .into_iter()
            .map(|z| pb::LookupWasteZonesItem {
                key: z.zone.id.clone(),
                waste_zone: Some(convert::zone(z)),
            })
            .collect(),
    }))
}

/// The zone an address is in, or why there is none (`missing` builds the error for "no zone" from
/// the place, e.g. `Via Roma 3 in comune 082001`).
async fn zone_of_address(
    api: &EnvironmentApi,
    istat_code: &str,
    street: &str,
    house_number: &str,
    missing: impl FnOnce(String) -> ServiceError,
) -> Result<String, ServiceError> {
    let zones = api.store.zones_for_street(istat_code, street).await?;
    match rules::resolve_zone(&zones, street, house_number) {
        ZoneMatch::Zone(id) => Ok(id),
        ZoneMatch::NeedsHouseNumber => Err(ServiceError::invalid(
            "address.house_number",
            format!("{street} is split between waste-collection zones: give the house number"),
        )),
        ZoneMatch::NoZone => Err(missing(
            format!("{street} {house_number} in comune {istat_code}").replace("  ", " "),
        )),
    }
}

pub(super) async fn collections(
    api: &EnvironmentApi,
    request: Request<pb::ListWasteCollectionsRequest>,
) -> Answer<pb::ListWasteCollectionsResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    let zone_id = req.zone_id.trim();
    if !zone_id.is_empty() {
        v.check(
            crate::domain::valid_id(zone_id),
            "zone_id",
            "must be a zone id of 1 to 64 printable characters",
        );
    } else {
        match &req.address {
            None => v.add(
                "zone_id",
                "give zone_id, or the address whose zone is wanted",
            ),
            Some(a) => {
                require_istat(&a.istat_code, "address.istat_code", &mut v);
                v.check(
                    !a.street.trim().is_empty(),
                    "address.street",
                    "must not be empty",
                );
            }
        }
    }
    let user_type = match UserType::try_from(req.user_type) {
        Ok(u) if u != UserType::Unspecified => u,
        _ => {
            v.add("user_type", "must be DOMESTIC or NON_DOMESTIC");
            UserType::Unspecified
        }
    };
    let date = parse_optional_day(&req.date, "date", &mut v)
        .unwrap_or_else(|| Some(today()))
        .unwrap_or_default();
    v.check(
        (0..=rules::MAX_CALENDAR_DAYS).contains(&req.days),
        "days",
        format!("must be 0 to {} (0 means 1)", rules::MAX_CALENDAR_DAYS),
    );
    v.into_result()?;
    let days = i64::from(req.days.max(1));
    let zone_id = if zone_id.is_empty() {
        let a = req.address.clone().unwrap_or_default();
        zone_of_address(
            api,
            &a.istat_code,
            a.street.trim(),
            a.house_number.trim(),
            |place| ServiceError::NotFound {
                what: "waste-collection zone covering",
                id: place,
            },
        )
        .await?
    } else {
        zone_id.to_owned()
    };
    let zone = api
        .store
        .zones_by_id(std::slice::from_ref(&zone_id))
        .await
        .map_err(ServiceError::from)?
        .pop()
        .ok_or_else(|| ServiceError::not_found("waste-collection zone", &zone_id))?;
    let istat = zone.zone.istat_code.clone();
    let schedules: Vec<rules::Schedule> = api
        .store
        .schedules(
            std::slice::from_ref(&istat),
            Some(&zone_id),
            Some(user_type as i32),
            None,
        )
        .await
        .map_err(ServiceError::from)?
        .iter()
        .map(schedule_from_row)
        .collect();
    let last = date
        .checked_add_signed(Duration::days(days - 1))
        .unwrap_or(date);
    let changes = api
        .store
        .changes_touching(&istat, date, last)
        .await
        .map_err(ServiceError::from)?;
    let collections = date
        .iter_days()
        .take_while(|d| *d <= last)
        .flat_map(|d| rules::collections_on(d, &zone_id, user_type, &schedules, &changes))
        .map(convert::collection)
        .collect();
    Ok(Response::new(pb::ListWasteCollectionsResponse {
        waste_zone: Some(convert::zone(zone)),
        collections,
    }))
}

pub(super) async fn municipality_calendars(
    api: &EnvironmentApi,
    request: Request<pb::ListMunicipalityWasteCalendarsRequest>,
) -> Answer<pb::ListMunicipalityWasteCalendarsResponse> {
    let req = request.into_inner();
    let keys = batch_keys(&req.keys, istat_key)?;
    let mut v = Violations::new();
    let zone_id = Some(req.zone_id.trim()).filter(|z| !z.is_empty());
    if let Some(z) = zone_id {
        v.check(
            crate::domain::valid_id(z),
            "zone_id",
            "must be a zone id of 1 to 64 printable characters",
        );
    }
    let user_type = optional_enum::<UserType>(req.user_type, "user_type", &mut v);
    let fraction = optional_enum::<Fraction>(req.fraction, "fraction", &mut v);
    let date = parse_optional_day(&req.date, "date", &mut v)
        .unwrap_or_else(|| Some(today()))
        .unwrap_or_default();
    v.into_result()?;
    let rows = api
        .store
        .schedules(&keys, zone_id, user_type, fraction)
        .await
        .map_err(ServiceError::from)?;
    let items = keys
        .into_iter()
        .filter_map(|key| {
            let schedules: Vec<pb::WasteCollectionSchedule> = rows
                .iter()
                .filter(|s| s.istat_code == key && schedule_from_row(s).valid_on(date))
                .cloned()
                .map(convert::schedule)
                .collect();
            (!schedules.is_empty())
                .then_some(pb::ListMunicipalityWasteCalendarsItem { key, schedules })
        })
        .collect();
    Ok(Response::new(pb::ListMunicipalityWasteCalendarsResponse {
        items,
    }))
}

pub(super) async fn list_changes(
    api: &EnvironmentApi,
    request: Request<pb::ListWasteCalendarChangesRequest>,
) -> Answer<pb::ListWasteCalendarChangesResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    require_istat(&req.istat_code, "istat_code", &mut v);
    let from = parse_optional_day(&req.from_date, "from_date", &mut v)
        .unwrap_or_else(|| Some(today()))
        .unwrap_or_default();
    let to = parse_optional_day(&req.to_date, "to_date", &mut v).flatten();
    if let Some(to) = to {
        v.check(to >= from, "to_date", "must not be before from_date");
    }
    let zone_id = Some(req.zone_id.trim()).filter(|z| !z.is_empty());
    if let Some(z) = zone_id {
        v.check(
            crate::domain::valid_id(z),
            "zone_id",
            "must be a zone id of 1 to 64 printable characters",
        );
    }
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    let (rows, total) = api
        .store
        .list_changes(&req.istat_code, from, to, zone_id, page)
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    Ok(Response::new(pb::ListWasteCalendarChangesResponse {
        changes: rows.into_iter().map(convert::change).collect(),
        page_info: Some(info),
    }))
}

pub(super) async fn reschedule(
    api: &EnvironmentApi,
    request: Request<pb::RescheduleWasteCollectionRequest>,
) -> Answer<pb::RescheduleWasteCollectionResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    require_istat(&req.istat_code, "istat_code", &mut v);
    let zone = req.zone_id.trim();
    let zone_known = if v.is_empty() && crate::domain::valid_id(zone) {
        api.store
            .zone_in_comune(zone, &req.istat_code)
            .await
            .map_err(ServiceError::from)?
    } else {
        false
    };
    let change = rules::validate_change(
        &ChangeFields {
            date: &req.date,
            zone_id: &req.zone_id,
            user_type: req.user_type,
            fraction: req.fraction,
            moved_to_date: &req.moved_to_date,
            reason: &req.reason,
        },
        &|_| zone_known,
        Some(today()),
        "",
        &mut v,
    );
    v.into_result()?;
    access::authorize_write(&viewer, &Act::for_comune(&req.istat_code))?;
    let stored = api
        .store
        .add_change(&req.istat_code, change, Utc::now())
        .await
        .map_err(ServiceError::from)?;
    Ok(Response::new(pb::RescheduleWasteCollectionResponse {
        change: Some(convert::change(stored)),
    }))
}

pub(super) async fn replace(
    api: &EnvironmentApi,
    request: Request<pb::ReplaceWasteCalendarRequest>,
) -> Answer<pb::ReplaceWasteCalendarResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let setup = rules::validate_setup(&req).map_err(ServiceError::InvalidArgument)?;
    access::authorize_write(&viewer, &Act::for_comune(&setup.istat_code))?;
    api.store
        .replace_setup(&setup, Utc::now())
        .await
        .map_err(|e| match e.sql_err() {
            // Ids are global: another comune already uses one of the schedule or centre ids.
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => ServiceError::AlreadyExists(
                "a schedule or centre id is already used by another comune: prefix ids with the ISTAT code, or leave them empty".into(),
            ),
            _ => ServiceError::from(e),
        })?;
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    Ok(Response::new(pb::ReplaceWasteCalendarResponse {
        zone_count: count(setup.zones.len()),
        schedule_count: count(setup.schedules.len()),
        centre_count: count(setup.centres.len()),
        change_count: count(setup.changes.len()),
    }))
}

pub(super) async fn list_centres(
    api: &EnvironmentApi,
    request: Request<pb::ListWasteCollectionCentresRequest>,
) -> Answer<pb::ListWasteCollectionCentresResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    if !req.istat_code.is_empty() {
        require_istat(&req.istat_code, "istat_code", &mut v);
    }
    let fraction = optional_enum::<Fraction>(req.fraction, "fraction", &mut v);
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    let istat = Some(req.istat_code.as_str()).filter(|s| !s.is_empty());
    let (rows, total) = api
        .store
        .list_centres(istat, fraction, page)
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    Ok(Response::new(pb::ListWasteCollectionCentresResponse {
        waste_collection_centres: rows.into_iter().map(convert::centre).collect(),
        page_info: Some(info),
    }))
}

pub(super) async fn lookup_centres(
    api: &EnvironmentApi,
    request: Request<pb::LookupWasteCollectionCentresRequest>,
) -> Answer<pb::LookupWasteCollectionCentresResponse> {
    let keys = batch_keys(&request.into_inner().keys, any_id)?;
    let rows = api
        .store
        .centres_by_id(&keys)
        .await
        .map_err(ServiceError::from)?;
    Ok(Response::new(pb::LookupWasteCollectionCentresResponse {
        items: rows
            .into_iter()
            .map(|c| pb::LookupWasteCollectionCentresItem {
                key: c.id.clone(),
                waste_collection_centre: Some(convert::centre(c)),
            })
            .collect(),
    }))
}

pub(super) async fn list_pickups(
    api: &EnvironmentApi,
    request: Request<pb::ListBulkyWastePickupsRequest>,
) -> Answer<pb::ListBulkyWastePickupsResponse> {
    let mut reads = Reads::new(Caller::of(&request), PICKUP);
    let req = request.into_inner();
    let mut v = Violations::new();
    require_istat(&req.istat_code, "istat_code", &mut v);
    let pickup_date = parse_optional_day(&req.pickup_date, "pickup_date", &mut v).flatten();
    let statuses = enum_list::<PickupStatus>(&req.statuses, "statuses", &mut v);
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    // A comune's list of pickups is its own to read.
    access::authorize_read(
        reads.principal(),
        &Record::Comune {
            istat_code: &req.istat_code,
        },
    )?;
    let (rows, total) = api
        .store
        .list_pickups(
            &PickupFilter {
                istat_code: req.istat_code.clone(),
                pickup_date,
                statuses,
            },
            page,
        )
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    let rows: Vec<pickup::Model> = rows
        .into_iter()
        .filter(|p| reads.allows(&pickup_record(p)))
        .collect();
    reads.save(api.store.db()).await?;
    Ok(Response::new(pb::ListBulkyWastePickupsResponse {
        bulky_waste_pickups: rows.into_iter().map(convert::pickup).collect(),
        page_info: Some(info),
    }))
}

pub(super) async fn lookup_pickups(
    api: &EnvironmentApi,
    request: Request<pb::LookupBulkyWastePickupsRequest>,
) -> Answer<pb::LookupBulkyWastePickupsResponse> {
    let mut reads = Reads::new(Caller::of(&request), PICKUP);
    let keys = batch_keys(&request.into_inner().keys, any_id)?;
    // Not visible is left out, as unknown is: a lookup does not tell which ids exist.
    let rows: Vec<pickup::Model> = api
        .store
        .pickups_by_id(&keys)
        .await
        .map_err(ServiceError::from)?
        .into_iter()
        .filter(|p| reads.allows(&pickup_record(p)))
        .collect();
    reads.save(api.store.db()).await?;
    Ok(Response::new(pb::LookupBulkyWastePickupsResponse {
        items: rows
            .into_iter()
            .map(|p| pb::LookupBulkyWastePickupsItem {
                key: p.id.clone(),
                bulky_waste_pickup: Some(convert::pickup(p)),
            })
            .collect(),
    }))
}

pub(super) async fn citizen_pickups(
    api: &EnvironmentApi,
    request: Request<pb::ListCitizenBulkyWastePickupsRequest>,
) -> Answer<pb::ListCitizenBulkyWastePickupsResponse> {
    let mut reads = Reads::new(Caller::of(&request), PICKUP);
    let req = request.into_inner();
    let canonical = batch_keys(&req.keys, fiscal_code_key)?;
    access::authorize_citizen_keys(reads.principal(), &canonical)?;
    // Operators and systems see their own comune's pickups only.
    let rows: Vec<pickup::Model> = api
        .store
        .pickups_by_citizen(&canonical)
        .await
        .map_err(ServiceError::from)?
        .into_iter()
        .filter(|p| reads.allows(&pickup_record(p)))
        .collect();
    reads.save(api.store.db()).await?;
    let items = asked_fiscal_codes(&req.keys)
        .into_iter()
        .filter_map(|(key, cf)| {
            let pickups: Vec<pb::BulkyWastePickup> = rows
                .iter()
                .filter(|p| p.fiscal_code == cf)
                .cloned()
                .map(convert::pickup)
                .collect();
            (!pickups.is_empty()).then_some(pb::ListCitizenBulkyWastePickupsItem {
                key,
                bulky_waste_pickups: pickups,
            })
        })
        .collect();
    Ok(Response::new(pb::ListCitizenBulkyWastePickupsResponse {
        items,
    }))
}

pub(super) async fn book(
    api: &EnvironmentApi,
    request: Request<pb::BookBulkyWastePickupRequest>,
) -> Answer<pb::BookBulkyWastePickupResponse> {
    let viewer = principal(&request);
    let mut req = request.into_inner();
    // A signed-in citizen books for themselves without repeating their code.
    if req.fiscal_code.trim().is_empty()
        && let Some(me) = citizen_code(&viewer)
    {
        req.fiscal_code = me;
    }
    let booking = rules::validate_booking(&req).map_err(ServiceError::InvalidArgument)?;
    access::authorize_write(
        &viewer,
        &Act::for_citizen(&booking.fiscal_code, &booking.istat_code),
    )?;
    if let Some(refusal) = rules::pieces_refusal(&booking) {
        return Err(refusal.into());
    }
    let zone_id = zone_of_address(
        api,
        &booking.istat_code,
        &booking.address.street,
        &booking.address.house_number,
        |place| {
            ServiceError::FailedPrecondition(format!(
                "no waste-collection zone covers {place}: the comune offers no kerbside pickup there"
            ))
        },
    )
    .await?;
    let row = api
        .store
        .book_pickup(&booking, &zone_id, today(), Utc::now())
        .await?;
    Ok(Response::new(pb::BookBulkyWastePickupResponse {
        bulky_waste_pickup: Some(convert::pickup(row)),
    }))
}

pub(super) async fn cancel(
    api: &EnvironmentApi,
    request: Request<pb::CancelBulkyWastePickupRequest>,
) -> Answer<pb::CancelBulkyWastePickupResponse> {
    let viewer = principal(&request);
    let id = required_id(&request.into_inner().pickup_id, "pickup_id")?;
    let current = api
        .store
        .pickup(&id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found("bulky-waste pickup", &id))?;
    access::authorize_write(
        &viewer,
        &Act::for_citizen(&current.fiscal_code, &current.istat_code),
    )?;
    let today = today();
    let row = api
        .store
        .close_pickup(&id, PickupStatus::Cancelled, "", Utc::now(), |p| {
            rules::cancel_refusal(&id, status_of(p), day_of(p), today)
        })
        .await?;
    Ok(Response::new(pb::CancelBulkyWastePickupResponse {
        bulky_waste_pickup: Some(convert::pickup(row)),
    }))
}

pub(super) async fn complete(
    api: &EnvironmentApi,
    request: Request<pb::CompleteBulkyWastePickupRequest>,
) -> Answer<pb::CompleteBulkyWastePickupResponse> {
    let viewer = principal(&request);
    let req = request.into_inner();
    let mut v = Violations::new();
    let id = match any_id(&req.pickup_id) {
        Ok(id) => id,
        Err(msg) => {
            v.add("pickup_id", msg);
            String::new()
        }
    };
    let outcome = PickupStatus::try_from(req.status).unwrap_or_default();
    v.check(
        matches!(outcome, PickupStatus::Collected | PickupStatus::Missed),
        "status",
        "must be COLLECTED or MISSED",
    );
    let note = if outcome == PickupStatus::Missed {
        required_text(&req.note, MAX_TEXT_LEN, "note", &mut v)
    } else {
        check_text(&req.note, MAX_TEXT_LEN, "note", &mut v);
        req.note.trim().to_owned()
    };
    v.into_result()?;
    let current = api
        .store
        .pickup(&id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found("bulky-waste pickup", &id))?;
    access::authorize_write(&viewer, &Act::for_comune(&current.istat_code))?;
    let today = today();
    let row = api
        .store
        .close_pickup(&id, outcome, &note, Utc::now(), |p| {
            rules::complete_refusal(&id, status_of(p), day_of(p), today)
        })
        .await?;
    Ok(Response::new(pb::CompleteBulkyWastePickupResponse {
        bulky_waste_pickup: Some(convert::pickup(row)),
    }))
}

fn status_of(p: &pickup::Model) -> PickupStatus {
    PickupStatus::try_from(p.status).unwrap_or_default()
}

fn day_of(p: &pickup::Model) -> NaiveDate {
    NaiveDate::parse_from_str(&p.pickup_date, "%Y-%m-%d").unwrap_or_default()
}
