//! Stored rows and domain values → protobuf messages.

use patto_proto::common::v1::{Address, GeoPoint, Period};
use patto_proto::environment::v1 as pb;
use patto_service_kit::time::to_timestamp;

use crate::domain::waste::{Collection, Item};
use crate::store::{
    ReportView, ZoneView, calendar_change, centre, daily, pickup, reading, schedule, station,
};

fn point(lat: Option<f64>, lon: Option<f64>) -> Option<GeoPoint> {
    match (lat, lon) {
        (Some(latitude), Some(longitude)) => Some(GeoPoint {
            latitude,
            longitude,
        }),
        _ => None,
    }
}

fn address(
    street: &str,
    house_number: &str,
    postal_code: &str,
    istat_code: &str,
    locality: &str,
) -> Option<Address> {
    (!street.is_empty()).then(|| Address {
        street: street.to_owned(),
        house_number: house_number.to_owned(),
        postal_code: postal_code.to_owned(),
        istat_code: istat_code.to_owned(),
        locality: locality.to_owned(),
    })
}

/// A report, with the reporter's fiscal code when `show_reporter` (the caller may read it: the
/// reporter and the comune's operators; see `reports::show_reporter`).
pub(super) fn report(v: ReportView, show_reporter: bool) -> pb::EnvironmentReport {
    let r = v.report;
    let photos = crate::store::photos_of(&r)
        .iter()
        .map(|p| p.to_proto())
        .collect();
    let fiscal_code = if show_reporter {
        r.fiscal_code.clone()
    } else {
        String::new()
    };
    pb::EnvironmentReport {
        geo: point(r.latitude, r.longitude),
        address: address(
            &r.street,
            &r.house_number,
            &r.postal_code,
            &r.istat_code,
            &r.locality,
        ),
        id: r.id,
        istat_code: r.istat_code,
        category: r.category,
        description: r.description,
        location_note: r.location_note,
        photos,
        status: r.status,
        fiscal_code,
        linked_to_report_id: r.linked_to.unwrap_or_default(),
        supporters_count: r.supporters_count,
        assigned_to: r.assigned_to,
        expected_resolution_date: r.expected_resolution_date,
        history: v
            .history
            .into_iter()
            .map(|e| pb::EnvironmentReportUpdate {
                time: Some(to_timestamp(e.time)),
                status: e.status,
                note: e.note,
                author: e.author,
            })
            .collect(),
        created_time: Some(to_timestamp(r.created_at)),
        updated_time: Some(to_timestamp(r.updated_at)),
        closed_time: r.closed_at.map(to_timestamp),
    }
}

/// A zone with its streets.
pub(super) fn zone(v: ZoneView) -> pb::WasteZone {
    pb::WasteZone {
        id: v.zone.id,
        istat_code: v.zone.istat_code,
        name: v.zone.name,
        description: v.zone.description,
        streets: v
            .streets
            .into_iter()
            .map(|s| pb::WasteZoneStreet {
                street: s.street,
                from_number: s.from_number,
                to_number: s.to_number,
                side: s.side,
            })
            .collect(),
    }
}

/// A schedule.
pub(super) fn schedule(m: schedule::Model) -> pb::WasteCollectionSchedule {
    pb::WasteCollectionSchedule {
        weekdays: crate::store::parse_number_list(&m.weekdays),
        eer_codes: crate::store::split_codes(&m.eer_codes),
        valid: (!m.valid_from.is_empty()).then(|| Period {
            start_date: m.valid_from.clone(),
            end_date: m.valid_to.clone(),
        }),
        id: m.id,
        istat_code: m.istat_code,
        zone_id: m.zone_id,
        user_type: m.user_type,
        fraction: m.fraction,
        every_weeks: m.every_weeks,
        anchor_date: m.anchor_date,
        set_out_from: m.set_out_from,
        set_out_until: m.set_out_until,
        set_out_evening_before: m.set_out_evening_before,
        container: m.container,
        notes: m.notes,
    }
}

/// A calendar change.
pub(super) fn change(m: calendar_change::Model) -> pb::WasteCalendarChange {
    pb::WasteCalendarChange {
        id: m.id,
        istat_code: m.istat_code,
        date: m.date,
        zone_id: m.zone_id,
        user_type: m.user_type,
        fraction: m.fraction,
        moved_to_date: m.moved_to_date,
        reason: m.reason,
        created_time: Some(to_timestamp(m.created_at)),
    }
}

/// A collection on a day.
pub(super) fn collection(c: Collection) -> pb::WasteCollection {
    pb::WasteCollection {
        date: c.date.to_string(),
        fraction: c.fraction as i32,
        eer_codes: c.eer_codes,
        set_out_from: Some(to_timestamp(c.set_out_from)),
        set_out_until: Some(to_timestamp(c.set_out_until)),
        container: c.container,
        notes: c.notes,
        schedule_id: c.schedule_id,
        cancelled: c.cancelled,
        moved_from_date: c.moved_from.map(|d| d.to_string()).unwrap_or_default(),
        change_reason: c.change_reason,
    }
}

/// A collection centre.
pub(super) fn centre(m: centre::Model) -> pb::WasteCollectionCentre {
    pb::WasteCollectionCentre {
        address: address(
            &m.street,
            &m.house_number,
            &m.postal_code,
            &m.istat_code,
            &m.locality,
        ),
        geo: point(m.latitude, m.longitude),
        accepted_fractions: crate::store::parse_number_list(&m.fractions),
        accepted_eer_codes: crate::store::split_codes(&m.eer_codes),
        user_types: crate::store::parse_number_list(&m.user_types),
        id: m.id,
        istat_code: m.istat_code,
        name: m.name,
        opening_hours: m.opening_hours,
        notes: m.notes,
    }
}

/// A bulky-waste pickup.
pub(super) fn pickup(m: pickup::Model) -> pb::BulkyWastePickup {
    // Written by this service from validated items; unreadable items show none rather than
    // failing the answer.
    let items: Vec<Item> = serde_json::from_str(&m.items).unwrap_or_default();
    pb::BulkyWastePickup {
        address: address(
            &m.street,
            &m.house_number,
            &m.postal_code,
            &m.istat_code,
            &m.locality,
        ),
        items: items
            .into_iter()
            .map(|i| pb::BulkyWasteItem {
                description: i.description,
                fraction: i.fraction,
                quantity: i.quantity,
            })
            .collect(),
        id: m.id,
        istat_code: m.istat_code,
        fiscal_code: m.fiscal_code,
        pickup_date: m.pickup_date,
        status: m.status,
        code: m.code,
        contact_phone: m.contact_phone,
        notes: m.notes,
        outcome_note: m.outcome_note,
        created_time: Some(to_timestamp(m.created_at)),
        closed_time: m.closed_at.map(to_timestamp),
    }
}

/// A station.
pub(super) fn station(m: station::Model) -> pb::AirQualityStation {
    pb::AirQualityStation {
        pollutants: crate::store::parse_number_list(&m.pollutants),
        geo: Some(GeoPoint {
            latitude: m.latitude,
            longitude: m.longitude,
        }),
        id: m.id,
        eoi_code: m.eoi_code,
        name: m.name,
        istat_code: m.istat_code,
        network: m.network,
        station_type: m.station_type,
        area_type: m.area_type,
        altitude_meters: m.altitude_meters,
        active: m.active,
    }
}

/// A reading.
pub(super) fn reading(m: reading::Model) -> pb::AirQualityReading {
    pb::AirQualityReading {
        station_id: m.station_id,
        pollutant: m.pollutant,
        averaging: m.averaging,
        start_time: Some(to_timestamp(m.start_time)),
        concentration: m.concentration,
        validity: m.validity,
        verified: m.verified,
    }
}

/// A daily aggregate.
pub(super) fn daily(m: daily::Model) -> pb::AirQualityDailySummary {
    pb::AirQualityDailySummary {
        station_id: m.station_id,
        pollutant: m.pollutant,
        date: m.date,
        mean: m.mean,
        max_hourly: m.max_hourly,
        max_eight_hour_mean: m.max_eight_hour_mean,
        valid_hours: m.valid_hours,
        complete: m.complete,
    }
}
