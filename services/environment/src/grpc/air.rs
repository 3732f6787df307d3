//! Air quality over gRPC: stations, readings and daily aggregates, exceedances per station and
//! year, the comune overview, and the all-or-nothing readings import.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, Utc};
use futures::StreamExt;
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::AirPollutant as Pollutant;
use patto_service_kit::access::{self, Act};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::paging::Page;
use patto_service_kit::time;
use tonic::{Request, Response, Streaming};

use super::{
    Answer, EnvironmentApi, MAX_IMPORT_ERRORS, MAX_IMPORT_ROWS, any_id, batch_keys, convert,
    istat_key, optional_enum, require_istat,
};
use crate::domain::air::{self as rules, FIRST_YEAR, network_day};
use crate::domain::parse_optional_day;
use crate::store::{ReadingRow, ReadingWindow};

/// Days of daily aggregates listed when no start is given.
pub const DEFAULT_SUMMARY_DAYS: i64 = 30;

pub(super) async fn list_stations(
    api: &EnvironmentApi,
    request: Request<pb::ListAirQualityStationsRequest>,
) -> Answer<pb::ListAirQualityStationsResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    if !req.istat_code.is_empty() {
        require_istat(&req.istat_code, "istat_code", &mut v);
    }
    let pollutant = optional_enum::<Pollutant>(req.pollutant, "pollutant", &mut v);
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    let istat = Some(req.istat_code.as_str()).filter(|s| !s.is_empty());
    let (rows, total) = api
        .store
        .list_stations(istat, pollutant, req.include_inactive, page)
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    Ok(Response::new(pb::ListAirQualityStationsResponse {
        air_quality_stations: rows.into_iter().map(convert::station).collect(),
        page_info: Some(info),
    }))
}

pub(super) async fn lookup_stations(
    api: &EnvironmentApi,
    request: Request<pb::LookupAirQualityStationsRequest>,
) -> Answer<pb::LookupAirQualityStationsResponse> {
    let keys = batch_keys(&request.into_inner().keys, any_id)?;
    let rows = api
        .store
        .stations_by_id(&keys)
        .await
        .map_err(ServiceError::from)?;
    Ok(Response::new(pb::LookupAirQualityStationsResponse {
        items: rows
            .into_iter()
            .map(|s| pb::LookupAirQualityStationsItem {
                key: s.id.clone(),
                air_quality_station: Some(convert::station(s)),
            })
            .collect(),
    }))
}

pub(super) async fn save_station(
    api: &EnvironmentApi,
    request: Request<pb::SaveAirQualityStationRequest>,
) -> Answer<pb::SaveAirQualityStationResponse> {
    let viewer = principal(&request);
    let Some(station) = request.into_inner().station else {
        return Err(ServiceError::invalid("station", "must be set").into());
    };
    let new = rules::validate_station(&station).map_err(ServiceError::InvalidArgument)?;
    access::authorize_write(&viewer, &Act::for_comune(&new.istat_code))?;
    // Moving a station to another comune needs the rights of the comune it leaves too.
    if let Some(id) = &new.id
        && let Some(existing) = api.store.station(id).await.map_err(ServiceError::from)?
        && existing.istat_code != new.istat_code
    {
        access::authorize_write(&viewer, &Act::for_comune(&existing.istat_code))?;
    }
    let saved = api
        .store
        .save_station(new, format!("aqs-{}", uuid::Uuid::new_v4().simple()))
        .await
        .map_err(ServiceError::from)?;
    Ok(Response::new(pb::SaveAirQualityStationResponse {
        station: Some(convert::station(saved)),
    }))
}

fn required_pollutant(value: i32, v: &mut Violations) -> Pollutant {
    match Pollutant::try_from(value) {
        Ok(p) if p != Pollutant::Unspecified => p,
        _ => {
            v.add(
                "pollutant",
                "must be an AirPollutant value (EEA code), e.g. 5 for PM10",
            );
            Pollutant::Unspecified
        }
    }
}

fn station_id(value: &str, v: &mut Violations) -> String {
    match any_id(value) {
        Ok(id) => id,
        Err(msg) => {
            v.add("station_id", msg);
            String::new()
        }
    }
}

pub(super) async fn list_readings(
    api: &EnvironmentApi,
    request: Request<pb::ListAirQualityReadingsRequest>,
) -> Answer<pb::ListAirQualityReadingsResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    let station = station_id(&req.station_id, &mut v);
    let pollutant = required_pollutant(req.pollutant, &mut v);
    let averaging = optional_enum::<pb::AirQualityAveraging>(req.averaging, "averaging", &mut v);
    let to = match &req.to_time {
        None => Some(Utc::now()),
        Some(t) => time::from_timestamp(t),
    };
    v.check(to.is_some(), "to_time", "is not a valid timestamp");
    let from = match (&req.from_time, to) {
        (None, Some(to)) => to.checked_sub_signed(Duration::hours(24)),
        (None, None) => None,
        (Some(t), _) => time::from_timestamp(t),
    };
    v.check(
        req.from_time.is_none() || from.is_some(),
        "from_time",
        "is not a valid timestamp",
    );
    if let (Some(from), Some(to)) = (from, to) {
        v.check(from < to, "from_time", "must be before to_time");
    }
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    api.store
        .station(&station)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found("air-quality station", &station))?;
    let averaging = match averaging {
        Some(a) => a,
        None if api
            .store
            .measures_hourly(&station, pollutant as i32)
            .await
            .map_err(ServiceError::from)? =>
        {
            pb::AirQualityAveraging::Hour as i32
        }
        None => pb::AirQualityAveraging::Day as i32,
    };
    let window = ReadingWindow {
        station_id: station,
        pollutant: pollutant as i32,
        averaging,
        from: from.unwrap_or(DateTime::<Utc>::MIN_UTC),
        to: to.unwrap_or_else(Utc::now),
        include_invalid: req.include_invalid,
    };
    let (rows, total) = api
        .store
        .list_readings(&window, page)
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    Ok(Response::new(pb::ListAirQualityReadingsResponse {
        readings: rows.into_iter().map(convert::reading).collect(),
        page_info: Some(info),
    }))
}

pub(super) async fn list_daily(
    api: &EnvironmentApi,
    request: Request<pb::ListAirQualityDailySummariesRequest>,
) -> Answer<pb::ListAirQualityDailySummariesResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    let station = station_id(&req.station_id, &mut v);
    let pollutant = optional_enum::<Pollutant>(req.pollutant, "pollutant", &mut v);
    let yesterday = network_day(Utc::now()) - Duration::days(1);
    let to = parse_optional_day(&req.to_date, "to_date", &mut v)
        .unwrap_or(Some(yesterday))
        .unwrap_or(yesterday);
    let from = parse_optional_day(&req.from_date, "from_date", &mut v)
        .unwrap_or(Some(to - Duration::days(DEFAULT_SUMMARY_DAYS)))
        .unwrap_or(to);
    v.check(from <= to, "from_date", "must not be after to_date");
    let page = Page::from_request(req.page.as_ref(), "page");
    v.into_result()?;
    let page = page?;
    api.store
        .station(&station)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found("air-quality station", &station))?;
    let (rows, total) = api
        .store
        .list_daily(&station, pollutant, from, to, page)
        .await
        .map_err(ServiceError::from)?;
    let info = page.info(rows.len(), total);
    Ok(Response::new(pb::ListAirQualityDailySummariesResponse {
        daily_summaries: rows.into_iter().map(convert::daily).collect(),
        page_info: Some(info),
    }))
}

pub(super) async fn exceedances(
    api: &EnvironmentApi,
    request: Request<pb::ListAirQualityExceedancesRequest>,
) -> Answer<pb::ListAirQualityExceedancesResponse> {
    let req = request.into_inner();
    let mut v = Violations::new();
    let ids = if req.station_ids.is_empty() {
        if req.istat_code.is_empty() {
            v.add(
                "station_ids",
                "give station_ids, or istat_code for every station of a comune",
            );
        } else {
            require_istat(&req.istat_code, "istat_code", &mut v);
        }
        Vec::new()
    } else {
        match batch_keys(&req.station_ids, any_id) {
            Ok(ids) => ids,
            Err(ServiceError::InvalidArgument(bad)) => {
                for f in bad.as_slice() {
                    v.add(
                        f.field.replace("keys", "station_ids"),
                        f.description.clone(),
                    );
                }
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        }
    };
    let this_year = network_day(Utc::now()).year();
    v.check(
        req.year == 0 || (FIRST_YEAR..=this_year).contains(&req.year),
        "year",
        format!("must be {FIRST_YEAR} to {this_year} (0 means the current year)"),
    );
    let pollutant = optional_enum::<Pollutant>(req.pollutant, "pollutant", &mut v);
    let standard = optional_enum::<pb::AirQualityStandard>(req.standard, "standard", &mut v)
        .and_then(|s| pb::AirQualityStandard::try_from(s).ok());
    v.into_result()?;
    let year = if req.year == 0 { this_year } else { req.year };
    let mut stations = if ids.is_empty() {
        api.store
            .stations_of_comuni(std::slice::from_ref(&req.istat_code), true)
            .await
            .map_err(ServiceError::from)?
    } else {
        let found = api
            .store
            .stations_by_id(&ids)
            .await
            .map_err(ServiceError::from)?;
        if let Some(missing) = ids.iter().find(|id| !found.iter().any(|s| &s.id == *id)) {
            return Err(ServiceError::not_found("air-quality station", missing).into());
        }
        found
    };
    stations.sort_by(|a, b| a.id.cmp(&b.id));
    let mut rows = Vec::new();
    for s in &stations {
        let mut measured: Vec<i32> = crate::store::parse_number_list(&s.pollutants);
        measured.sort_unstable();
        for p in measured
            .into_iter()
            .filter(|p| pollutant.is_none_or(|want| want == *p))
        {
            let Ok(p) = Pollutant::try_from(p) else {
                continue;
            };
            let limits = rules::limits_for(p, standard);
            if limits.is_empty() {
                continue;
            }
            let (days, hourly) = api
                .store
                .year_data(&s.id, p as i32, year)
                .await
                .map_err(ServiceError::from)?;
            for limit in limits {
                let e = rules::evaluate(limit, &days, &hourly);
                rows.push(pb::AirQualityExceedance {
                    station_id: s.id.clone(),
                    year,
                    pollutant: p as i32,
                    standard: limit.standard as i32,
                    limit_kind: limit.kind as i32,
                    metric: limit.metric as i32,
                    limit: limit.threshold.value(),
                    allowed_exceedances: limit.allowed,
                    exceedances: e.exceedances,
                    annual_mean: e.annual_mean,
                    valid_periods: e.valid_periods,
                    complies: e.complies,
                });
            }
        }
    }
    Ok(Response::new(pb::ListAirQualityExceedancesResponse {
        exceedances: rows,
    }))
}

pub(super) async fn municipality(
    api: &EnvironmentApi,
    request: Request<pb::ListMunicipalityAirQualityRequest>,
) -> Answer<pb::ListMunicipalityAirQualityResponse> {
    let req = request.into_inner();
    let keys = batch_keys(&req.keys, istat_key)?;
    let mut v = Violations::new();
    let pollutant = optional_enum::<Pollutant>(req.pollutant, "pollutant", &mut v);
    v.into_result()?;
    let stations = api
        .store
        .stations_of_comuni(&keys, false)
        .await
        .map_err(ServiceError::from)?;
    let mut items: Vec<pb::ListMunicipalityAirQualityItem> = Vec::new();
    for s in stations {
        let mut latest_readings = Vec::new();
        let mut latest_daily_summaries = Vec::new();
        for p in crate::store::parse_number_list(&s.pollutants)
            .into_iter()
            .filter(|p| pollutant.is_none_or(|want| want == *p))
        {
            if let Some(r) = api
                .store
                .latest_reading(&s.id, p)
                .await
                .map_err(ServiceError::from)?
            {
                latest_readings.push(convert::reading(r));
            }
            if let Some(d) = api
                .store
                .latest_daily(&s.id, p)
                .await
                .map_err(ServiceError::from)?
            {
                latest_daily_summaries.push(convert::daily(d));
            }
        }
        let key = s.istat_code.clone();
        let snapshot = pb::AirQualityStationSnapshot {
            station: Some(convert::station(s)),
            latest_readings,
            latest_daily_summaries,
        };
        match items.last_mut() {
            Some(item) if item.key == key => item.stations.push(snapshot),
            _ => items.push(pb::ListMunicipalityAirQualityItem {
                key,
                stations: vec![snapshot],
            }),
        }
    }
    Ok(Response::new(pb::ListMunicipalityAirQualityResponse {
        items,
    }))
}

pub(super) async fn import(
    api: &EnvironmentApi,
    request: Request<Streaming<pb::ImportAirQualityReadingsRequest>>,
) -> Answer<pb::ImportAirQualityReadingsResponse> {
    let viewer = principal(&request);
    // Readings are loaded by a comune's operators and systems: refuse anyone else before reading.
    access::authorize_comune_caller(&viewer)?;
    let mut stream = request.into_inner();
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        rows.push(row?);
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(ServiceError::invalid(
                "reading",
                format!("an import carries at most {MAX_IMPORT_ROWS} rows; split the feed"),
            )
            .into());
        }
    }
    let station_ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.reading.as_ref().map(|x| x.station_id.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let facts = api
        .store
        .station_facts(&station_ids)
        .await
        .map_err(ServiceError::from)?;
    // The caller loads readings of its own comune's stations.
    let comuni: BTreeSet<&str> = facts.values().map(|f| f.istat_code.as_str()).collect();
    for istat_code in comuni {
        access::authorize_write(&viewer, &Act::for_comune(istat_code))?;
    }
    let now = Utc::now();
    let mut valid = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<(String, i32, i32, DateTime<Utc>), usize> = HashMap::new();
    let mut wrong_rows: HashSet<usize> = HashSet::new();
    let mut fail = |row: usize, field: &str, description: String, errors: &mut Vec<_>| {
        wrong_rows.insert(row);
        if errors.len() < MAX_IMPORT_ERRORS {
            errors.push(pb::AirQualityReadingImportError {
                row: i32::try_from(row).unwrap_or(i32::MAX),
                field: field.to_owned(),
                description,
            });
        }
    };
    for (i, row) in rows.iter().enumerate() {
        let number = i + 1;
        let Some(reading) = &row.reading else {
            fail(number, "reading", "must be set".into(), &mut errors);
            continue;
        };
        match rules::validate_reading(reading, facts.get(&reading.station_id), now) {
            Ok(r) => {
                let key = (
                    reading.station_id.clone(),
                    r.pollutant as i32,
                    r.averaging as i32,
                    r.start,
                );
                // One statement cannot upsert a key twice: the feed must say which value holds.
                if let Some(first) = seen.get(&key) {
                    fail(
                        number,
                        "reading.start_time",
                        format!(
                            "repeats row {first} (same station, pollutant, averaging and start): keep one"
                        ),
                        &mut errors,
                    );
                    continue;
                }
                seen.insert(key, number);
                valid.push(ReadingRow {
                    station_id: reading.station_id.clone(),
                    reading: r,
                });
            }
            Err(v) => {
                for f in v.as_slice() {
                    fail(number, &f.field, f.description.clone(), &mut errors);
                }
            }
        }
    }
    if !wrong_rows.is_empty() {
        return Ok(Response::new(pb::ImportAirQualityReadingsResponse {
            imported: 0,
            replaced: 0,
            errors,
            error_count: i32::try_from(wrong_rows.len()).unwrap_or(i32::MAX),
        }));
    }
    let replaced = api
        .store
        .import_readings(&valid)
        .await
        .map_err(ServiceError::from)?;
    Ok(Response::new(pb::ImportAirQualityReadingsResponse {
        imported: i32::try_from(valid.len()).unwrap_or(i32::MAX),
        replaced: i32::try_from(replaced).unwrap_or(i32::MAX),
        errors: Vec::new(),
        error_count: 0,
    }))
}
