//! Air quality in the database: stations, readings written all-or-nothing with the daily
//! aggregates they change recomputed in the same transaction, and the reads behind summaries,
//! snapshots and exceedances.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::AirPollutant as Pollutant;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::{
    BATCH_ROWS, Store, daily, insert_rows, list_member, number_list, parse_number_list, reading,
    station,
};
use crate::domain::air::{
    self as rules, DailyAggregate, NewReading, NewStation, Sample, StationFacts, day_start,
    network_day,
};

/// One reading to write, with its station.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    /// Station id.
    pub station_id: String,
    /// The validated reading.
    pub reading: NewReading,
}

/// Which readings to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingWindow {
    /// Station.
    pub station_id: String,
    /// Pollutant number.
    pub pollutant: i32,
    /// Averaging number.
    pub averaging: i32,
    /// Starting at or after.
    pub from: DateTime<Utc>,
    /// Starting before.
    pub to: DateTime<Utc>,
    /// Include invalid readings.
    pub include_invalid: bool,
}

/// The aggregate of a stored daily row.
pub(crate) fn aggregate_of(m: &daily::Model) -> DailyAggregate {
    DailyAggregate {
        date: NaiveDate::parse_from_str(&m.date, "%Y-%m-%d").unwrap_or_default(),
        mean: m.mean,
        max_hourly: m.max_hourly,
        max_eight_hour_mean: m.max_eight_hour_mean,
        valid_hours: m.valid_hours,
        complete: m.complete,
    }
}

/// The pollutants a stored station measures.
pub(crate) fn pollutants_of(s: &station::Model) -> Vec<i32> {
    parse_number_list(&s.pollutants)
}

impl Store {
    /// A page of stations (of a comune, measuring a pollutant, in service unless asked), by name.
    pub async fn list_stations(
        &self,
        istat_code: Option<&str>,
        pollutant: Option<i32>,
        include_inactive: bool,
        page: Page,
    ) -> Result<(Vec<station::Model>, u64), DbErr> {
        let mut q = station::Entity::find();
        if let Some(code) = istat_code {
            q = q.filter(station::Column::IstatCode.eq(code));
        }
        if let Some(p) = pollutant {
            q = q.filter(station::Column::Pollutants.like(list_member(p)));
        }
        if !include_inactive {
            q = q.filter(station::Column::Active.eq(true));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(station::Column::Name)
            .order_by_asc(station::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The stations with these ids (unknown ids are left out).
    pub async fn stations_by_id(&self, ids: &[String]) -> Result<Vec<station::Model>, DbErr> {
        station::Entity::find()
            .filter(station::Column::Id.is_in(ids.iter().cloned()))
            .order_by_asc(station::Column::Name)
            .order_by_asc(station::Column::Id)
            .all(&self.db)
            .await
    }

    /// The stations of these comuni, in service or all, by comune and name.
    pub async fn stations_of_comuni(
        &self,
        codes: &[String],
        include_inactive: bool,
    ) -> Result<Vec<station::Model>, DbErr> {
        let mut q =
            station::Entity::find().filter(station::Column::IstatCode.is_in(codes.iter().cloned()));
        if !include_inactive {
            q = q.filter(station::Column::Active.eq(true));
        }
        q.order_by_asc(station::Column::IstatCode)
            .order_by_asc(station::Column::Name)
            .order_by_asc(station::Column::Id)
            .all(&self.db)
            .await
    }

    /// What reading validation needs of these stations.
    pub async fn station_facts(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, StationFacts>, DbErr> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(BATCH_ROWS) {
            for s in station::Entity::find()
                .filter(station::Column::Id.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await?
            {
                let pollutants = pollutants_of(&s);
                out.insert(
                    s.id,
                    StationFacts {
                        istat_code: s.istat_code,
                        pollutants,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Registers a station, or replaces the description of the one with the same id. Returns it
    /// and whether it existed (with its comune, which the caller's rights are checked against).
    pub async fn save_station(
        &self,
        s: NewStation,
        new_id: String,
    ) -> Result<station::Model, DbErr> {
        let txn = self.db.begin().await?;
        let id = s.id.clone().unwrap_or(new_id);
        let existing = station::Entity::find_by_id(id.as_str()).one(&txn).await?;
        let model = station::ActiveModel {
            id: Set(id),
            eoi_code: Set(s.eoi_code),
            name: Set(s.name),
            istat_code: Set(s.istat_code),
            network: Set(s.network),
            station_type: Set(s.station_type as i32),
            area_type: Set(s.area_type as i32),
            latitude: Set(s.point.lat),
            longitude: Set(s.point.lon),
            altitude_meters: Set(s.altitude_meters),
            pollutants: Set(number_list(s.pollutants.iter().map(|p| *p as i32))),
            active: Set(s.active),
        };
        let saved = if existing.is_some() {
            model.update(&txn).await?
        } else {
            model.insert(&txn).await?
        };
        txn.commit().await?;
        Ok(saved)
    }

    /// The station with this id.
    pub async fn station(&self, id: &str) -> Result<Option<station::Model>, DbErr> {
        station::Entity::find_by_id(id).one(&self.db).await
    }

    /// True when the station has hourly readings of the pollutant.
    pub async fn measures_hourly(&self, station_id: &str, pollutant: i32) -> Result<bool, DbErr> {
        Ok(reading::Entity::find()
            .filter(reading::Column::StationId.eq(station_id))
            .filter(reading::Column::Pollutant.eq(pollutant))
            .filter(reading::Column::Averaging.eq(pb::AirQualityAveraging::Hour as i32))
            .limit(1)
            .one(&self.db)
            .await?
            .is_some())
    }

    /// A page of readings in a window, oldest first, and the total.
    pub async fn list_readings(
        &self,
        w: &ReadingWindow,
        page: Page,
    ) -> Result<(Vec<reading::Model>, u64), DbErr> {
        let mut q = reading::Entity::find()
            .filter(reading::Column::StationId.eq(w.station_id.as_str()))
            .filter(reading::Column::Pollutant.eq(w.pollutant))
            .filter(reading::Column::Averaging.eq(w.averaging))
            .filter(reading::Column::StartTime.gte(w.from))
            .filter(reading::Column::StartTime.lt(w.to));
        if !w.include_invalid {
            q = q.filter(reading::Column::Validity.ne(pb::AirQualityValidity::Invalid as i32));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(reading::Column::StartTime)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// A page of a station's daily aggregates in `[from, to]`, oldest day first then by
    /// pollutant, and the total.
    pub async fn list_daily(
        &self,
        station_id: &str,
        pollutant: Option<i32>,
        from: NaiveDate,
        to: NaiveDate,
        page: Page,
    ) -> Result<(Vec<daily::Model>, u64), DbErr> {
        let mut q = daily::Entity::find()
            .filter(daily::Column::StationId.eq(station_id))
            .filter(daily::Column::Date.between(from.to_string(), to.to_string()));
        if let Some(p) = pollutant {
            q = q.filter(daily::Column::Pollutant.eq(p));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(daily::Column::Date)
            .order_by_asc(daily::Column::Pollutant)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// A station's data of one pollutant in one calendar year: the daily aggregates and the valid
    /// hourly values, as the exceedance count takes them.
    pub async fn year_data(
        &self,
        station_id: &str,
        pollutant: i32,
        year: i32,
    ) -> Result<(Vec<DailyAggregate>, Vec<f64>), DbErr> {
        let (Some(first), Some(next)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year + 1, 1, 1),
        ) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let last = next.pred_opt().unwrap_or(next);
        let days = daily::Entity::find()
            .filter(daily::Column::StationId.eq(station_id))
            .filter(daily::Column::Pollutant.eq(pollutant))
            .filter(daily::Column::Date.between(first.to_string(), last.to_string()))
            .order_by_asc(daily::Column::Date)
            .all(&self.db)
            .await?
            .iter()
            .map(aggregate_of)
            .collect();
        let hourly = reading::Entity::find()
            .select_only()
            .column(reading::Column::Concentration)
            .filter(reading::Column::StationId.eq(station_id))
            .filter(reading::Column::Pollutant.eq(pollutant))
            .filter(reading::Column::Averaging.eq(pb::AirQualityAveraging::Hour as i32))
            .filter(reading::Column::Validity.ne(pb::AirQualityValidity::Invalid as i32))
            .filter(reading::Column::StartTime.gte(day_start(first)))
            .filter(reading::Column::StartTime.lt(day_start(next)))
            .into_tuple::<f64>()
            .all(&self.db)
            .await?;
        Ok((days, hourly))
    }

    /// The latest valid reading of a pollutant at a station.
    pub async fn latest_reading(
        &self,
        station_id: &str,
        pollutant: i32,
    ) -> Result<Option<reading::Model>, DbErr> {
        reading::Entity::find()
            .filter(reading::Column::StationId.eq(station_id))
            .filter(reading::Column::Pollutant.eq(pollutant))
            .filter(reading::Column::Validity.ne(pb::AirQualityValidity::Invalid as i32))
            .order_by_desc(reading::Column::StartTime)
            .order_by_asc(reading::Column::Averaging)
            .limit(1)
            .one(&self.db)
            .await
    }

    /// The latest complete daily aggregate of a pollutant at a station.
    pub async fn latest_daily(
        &self,
        station_id: &str,
        pollutant: i32,
    ) -> Result<Option<daily::Model>, DbErr> {
        daily::Entity::find()
            .filter(daily::Column::StationId.eq(station_id))
            .filter(daily::Column::Pollutant.eq(pollutant))
            .filter(daily::Column::Complete.eq(true))
            .order_by_desc(daily::Column::Date)
            .limit(1)
            .one(&self.db)
            .await
    }

    /// Writes validated readings in one transaction (a stored reading with the same key is
    /// replaced) and recomputes the daily aggregates they touch. Returns how many replaced a stored
    /// reading.
    pub async fn import_readings(&self, rows: &[ReadingRow]) -> Result<u64, DbErr> {
        let txn = self.db.begin().await?;
        let replaced = write_readings(&txn, rows).await?;
        recompute_daily(&txn, rows).await?;
        txn.commit().await?;
        Ok(replaced)
    }
}

type GroupKey = (String, i32, i32);

/// Upserts readings in batches; returns how many replaced a stored one.
pub(crate) async fn write_readings(
    conn: &impl ConnectionTrait,
    rows: &[ReadingRow],
) -> Result<u64, DbErr> {
    // Which keys exist already: one range query per station, pollutant and averaging.
    let mut groups: BTreeMap<GroupKey, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for r in rows {
        let key = (
            r.station_id.clone(),
            r.reading.pollutant as i32,
            r.reading.averaging as i32,
        );
        let t = r.reading.start;
        groups
            .entry(key)
            .and_modify(|(a, b)| {
                *a = (*a).min(t);
                *b = (*b).max(t);
            })
            .or_insert((t, t));
    }
    let mut existing: HashSet<(GroupKey, DateTime<Utc>)> = HashSet::new();
    for ((station_id, pollutant, averaging), (from, to)) in &groups {
        let times = reading::Entity::find()
            .select_only()
            .column(reading::Column::StartTime)
            .filter(reading::Column::StationId.eq(station_id.as_str()))
            .filter(reading::Column::Pollutant.eq(*pollutant))
            .filter(reading::Column::Averaging.eq(*averaging))
            .filter(reading::Column::StartTime.between(*from, *to))
            .into_tuple::<DateTime<Utc>>()
            .all(conn)
            .await?;
        for t in times {
            existing.insert(((station_id.clone(), *pollutant, *averaging), t));
        }
    }
    let replaced = rows
        .iter()
        .filter(|r| {
            existing.contains(&(
                (
                    r.station_id.clone(),
                    r.reading.pollutant as i32,
                    r.reading.averaging as i32,
                ),
                r.reading.start,
            ))
        })
        .count() as u64;
    for batch in rows.chunks(BATCH_ROWS) {
        let models = batch.iter().map(|r| reading::ActiveModel {
            station_id: Set(r.station_id.clone()),
            pollutant: Set(r.reading.pollutant as i32),
            averaging: Set(r.reading.averaging as i32),
            start_time: Set(r.reading.start),
            concentration: Set(r.reading.concentration),
            validity: Set(r.reading.validity as i32),
            verified: Set(r.reading.verified),
            ..Default::default()
        });
        reading::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([
                    reading::Column::StationId,
                    reading::Column::Pollutant,
                    reading::Column::Averaging,
                    reading::Column::StartTime,
                ])
                .update_columns([
                    reading::Column::Concentration,
                    reading::Column::Validity,
                    reading::Column::Verified,
                ])
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(replaced)
}

/// The days `rows` touch, per station and pollutant: the days they fall in and, for the 8-hour
/// pollutants, the day after, whose first 8-hour means reach back into the evening before.
fn touched_days(rows: &[ReadingRow]) -> BTreeMap<(String, i32), BTreeSet<NaiveDate>> {
    let mut days: BTreeMap<(String, i32), BTreeSet<NaiveDate>> = BTreeMap::new();
    for r in rows {
        let day = network_day(r.reading.start);
        let entry = days
            .entry((r.station_id.clone(), r.reading.pollutant as i32))
            .or_default();
        entry.insert(day);
        if r.reading.averaging == pb::AirQualityAveraging::Hour
            && rules::has_eight_hour_mean(r.reading.pollutant)
        {
            entry.insert(day + Duration::days(1));
        }
    }
    days
}

/// Aggregates `dates` of one station and pollutant from its samples (averaging number, sample).
fn aggregate_days(
    pollutant: i32,
    dates: &BTreeSet<NaiveDate>,
    samples: impl IntoIterator<Item = (i32, Sample)>,
) -> Vec<DailyAggregate> {
    let mut hourly: BTreeMap<DateTime<Utc>, Sample> = BTreeMap::new();
    let mut daily_values: HashMap<DateTime<Utc>, Sample> = HashMap::new();
    for (averaging, sample) in samples {
        if averaging == pb::AirQualityAveraging::Hour as i32 {
            hourly.insert(sample.start, sample);
        } else {
            daily_values.insert(sample.start, sample);
        }
    }
    let p = Pollutant::try_from(pollutant).unwrap_or_default();
    dates
        .iter()
        .filter_map(|d| {
            let start = day_start(*d);
            let window: Vec<Sample> = hourly
                .range(start - Duration::hours(7)..start + Duration::days(1))
                .map(|(_, s)| *s)
                .collect();
            rules::aggregate_day(p, *d, &window, daily_values.get(&start).copied())
        })
        .collect()
}

async fn insert_aggregates(
    conn: &impl ConnectionTrait,
    station_id: &str,
    pollutant: i32,
    aggregates: &[DailyAggregate],
) -> Result<(), DbErr> {
    insert_rows(
        conn,
        aggregates
            .iter()
            .map(|a| daily::ActiveModel {
                station_id: Set(station_id.to_owned()),
                pollutant: Set(pollutant),
                date: Set(a.date.to_string()),
                mean: Set(a.mean),
                max_hourly: Set(a.max_hourly),
                max_eight_hour_mean: Set(a.max_eight_hour_mean),
                valid_hours: Set(a.valid_hours),
                complete: Set(a.complete),
                ..Default::default()
            })
            .collect(),
    )
    .await
}

fn sample_of(r: &NewReading) -> (i32, Sample) {
    (
        r.averaging as i32,
        Sample {
            start: r.start,
            value: r.concentration,
            valid: r.validity != pb::AirQualityValidity::Invalid,
        },
    )
}

/// Recomputes the daily aggregates of the days `rows` touch from what is stored (the rows just
/// written and those already there), replacing the stored aggregates of those days.
pub(crate) async fn recompute_daily(
    conn: &impl ConnectionTrait,
    rows: &[ReadingRow],
) -> Result<(), DbErr> {
    for ((station_id, pollutant), dates) in touched_days(rows) {
        let (Some(first), Some(last)) = (dates.first().copied(), dates.last().copied()) else {
            continue;
        };
        let stored = reading::Entity::find()
            .filter(reading::Column::StationId.eq(station_id.as_str()))
            .filter(reading::Column::Pollutant.eq(pollutant))
            .filter(reading::Column::StartTime.gte(day_start(first) - Duration::hours(7)))
            .filter(reading::Column::StartTime.lt(day_start(last + Duration::days(1))))
            .all(conn)
            .await?;
        let aggregates = aggregate_days(
            pollutant,
            &dates,
            stored.iter().map(|m| {
                (
                    m.averaging,
                    Sample {
                        start: m.start_time,
                        value: m.concentration,
                        valid: m.validity != pb::AirQualityValidity::Invalid as i32,
                    },
                )
            }),
        );
        for chunk in dates.iter().collect::<Vec<_>>().chunks(BATCH_ROWS) {
            daily::Entity::delete_many()
                .filter(daily::Column::StationId.eq(station_id.as_str()))
                .filter(daily::Column::Pollutant.eq(pollutant))
                .filter(daily::Column::Date.is_in(chunk.iter().map(|d| d.to_string())))
                .exec(conn)
                .await?;
        }
        insert_aggregates(conn, &station_id, pollutant, &aggregates).await?;
    }
    Ok(())
}

/// Loads readings of stations that have none yet, with their daily aggregates computed from the
/// rows themselves: the demo's bulk load, which has nothing to replace and nothing to read back.
pub(crate) async fn load_fresh_readings(
    conn: &impl ConnectionTrait,
    rows: &[ReadingRow],
) -> Result<(), DbErr> {
    insert_rows(
        conn,
        rows.iter()
            .map(|r| reading::ActiveModel {
                station_id: Set(r.station_id.clone()),
                pollutant: Set(r.reading.pollutant as i32),
                averaging: Set(r.reading.averaging as i32),
                start_time: Set(r.reading.start),
                concentration: Set(r.reading.concentration),
                validity: Set(r.reading.validity as i32),
                verified: Set(r.reading.verified),
                ..Default::default()
            })
            .collect(),
    )
    .await?;
    for ((station_id, pollutant), dates) in touched_days(rows) {
        let samples = rows
            .iter()
            .filter(|r| r.station_id == station_id && r.reading.pollutant as i32 == pollutant)
            .map(|r| sample_of(&r.reading));
        let aggregates = aggregate_days(pollutant, &dates, samples);
        insert_aggregates(conn, &station_id, pollutant, &aggregates).await?;
    }
    Ok(())
}
