//! Air quality (DOMAIN.md §11): stations, readings, daily aggregates, and exceedances of the EU
//! limit values per station and calendar year.
//!
//! Concentrations are physical measurements and stay `f64` (µg/m³) as the contract carries them;
//! limits are exact decimals ([`Threshold`]) so the rounding rule of the directives ("rounded to the
//! precision of the limit, then strictly above it") has one implementation. Days are the Italian
//! networks' days in UTC+1 all year round, as their feeds report.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::{
    AirPollutant as Pollutant, AirQualityLimitKind as Kind, AirQualityMetric as Metric,
    AirQualityStandard as Standard,
};
use patto_service_kit::error::Violations;
use patto_service_kit::time;

use super::geo::{self, Point};
use super::{MAX_NAME_LEN, check_istat, check_text, required_text, valid_id};

/// First year of readings accepted (and of exceedances counted): the monitoring networks' series
/// start later, so an earlier time is a mistake.
pub const FIRST_YEAR: i32 = 1990;
/// Highest concentration accepted, in µg/m³: far above any ambient value (CO in a tunnel stays
/// under 100 mg/m³), low enough to catch unit mistakes (ng/m³ sent as µg/m³).
pub const MAX_CONCENTRATION: f64 = 100_000.0;
/// Valid hours that make a day count (75 % of 24, Dir. 2008/50/EC Annex XI A).
pub const MIN_VALID_HOURS: i32 = 18;
/// Valid hours that make an 8-hour mean (75 % of 8).
pub const MIN_VALID_HOURS_IN_EIGHT: usize = 6;
/// Valid 8-hour means that make a day's maximum count (75 % of the 24 of the day).
pub const MIN_VALID_EIGHT_HOUR_MEANS: usize = 18;

/// The pollutants the service knows, by EEA code.
pub const POLLUTANTS: [Pollutant; 7] = [
    Pollutant::So2,
    Pollutant::Pm10,
    Pollutant::O3,
    Pollutant::No2,
    Pollutant::Co,
    Pollutant::Benzene,
    Pollutant::Pm25,
];

/// True for pollutants whose limits use the maximum daily 8-hour mean.
pub fn has_eight_hour_mean(p: Pollutant) -> bool {
    matches!(p, Pollutant::O3 | Pollutant::Co)
}

/// The offset of the networks' days: UTC+1 all year.
const NETWORK_OFFSET_HOURS: i64 = 1;

/// The networks' day an instant falls in.
pub fn network_day(t: DateTime<Utc>) -> NaiveDate {
    t.checked_add_signed(Duration::hours(NETWORK_OFFSET_HOURS))
        .unwrap_or(t)
        .date_naive()
}

/// The instant a networks' day starts (00:00 UTC+1).
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .and_then(|t| {
            t.and_utc()
                .checked_sub_signed(Duration::hours(NETWORK_OFFSET_HOURS))
        })
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A limit as an exact decimal: the value and the precision values are rounded to before the
/// comparison, both in thousandths of µg/m³.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// The limit, in thousandths of µg/m³ (50 µg/m³ = 50 000).
    pub milli: i64,
    /// The precision of the limit, in thousandths of µg/m³ (1 µg/m³ = 1 000; 0.1 = 100).
    pub step_milli: i64,
}

impl Threshold {
    /// A limit in whole µg/m³.
    pub const fn ug(value: i64) -> Self {
        Self {
            milli: value * 1_000,
            step_milli: 1_000,
        }
    }

    /// A limit in tenths of µg/m³ (3.4 = `tenths(34)`).
    pub const fn tenths(value: i64) -> Self {
        Self {
            milli: value * 100,
            step_milli: 100,
        }
    }

    /// A limit in whole mg/m³ (CO).
    pub const fn mg(value: i64) -> Self {
        Self {
            milli: value * 1_000_000,
            step_milli: 1_000_000,
        }
    }

    /// The limit in µg/m³.
    pub fn value(self) -> f64 {
        self.milli as f64 / 1_000.0
    }

    /// True when `value` (µg/m³), rounded to the precision of the limit (halves away from zero),
    /// is strictly above it: with the PM10 daily limit of 50, 50.4 does not exceed and 50.5 does.
    pub fn exceeded_by(self, value: f64) -> bool {
        if !value.is_finite() || self.step_milli <= 0 {
            return false;
        }
        let steps = (value * 1_000.0 / self.step_milli as f64).round();
        steps > (self.milli / self.step_milli) as f64
    }
}

/// One limit value, target value or threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Pollutant.
    pub pollutant: Pollutant,
    /// Legislation.
    pub standard: Standard,
    /// Kind.
    pub kind: Kind,
    /// Statistic it applies to.
    pub metric: Metric,
    /// The value.
    pub threshold: Threshold,
    /// Exceedances allowed per calendar year.
    pub allowed: i32,
    /// Where it is written.
    pub source: &'static str,
}

const fn limit(
    pollutant: Pollutant,
    standard: Standard,
    kind: Kind,
    metric: Metric,
    threshold: Threshold,
    allowed: i32,
    source: &'static str,
) -> Limit {
    Limit {
        pollutant,
        standard,
        kind,
        metric,
        threshold,
        allowed,
        source,
    }
}

const EU08: Standard = Standard::Eu200850;
const EU24: Standard = Standard::Eu20242881;
const LV: Kind = Kind::LimitValue;
const HOUR: Metric = Metric::HourlyMean;
const DAY: Metric = Metric::DailyMean;
const MAX8H: Metric = Metric::MaxDailyEightHourMean;
const YEAR: Metric = Metric::AnnualMean;
const D2008: &str = "Dir. 2008/50/EC Annex XI B, D.Lgs 155/2010 All. XI";
const D2008_PM25: &str = "Dir. 2008/50/EC Annex XIV E, D.Lgs 155/2010 All. XI";
const D2008_O3: &str = "Dir. 2008/50/EC Annex VII B, D.Lgs 155/2010 All. VII";
const D2008_O3_THRESHOLDS: &str = "Dir. 2008/50/EC Annex XII B, D.Lgs 155/2010 All. XII";
const D2024: &str = "Dir. (EU) 2024/2881 Annex I Section 1 Table 1 (from 1 January 2030)";
const D2024_O3: &str = "Dir. (EU) 2024/2881 Annex I Section 2 (from 1 January 2030)";

/// Every limit the service counts exceedances against, by pollutant (EEA code), legislation and
/// metric. Values in µg/m³ (CO in mg/m³). The 2008/50 values are those DOMAIN.md §11 checked
/// against the EEA pages; the allowances of 2024/2881 are from its Annex I as published in OJ L of
/// 20.11.2024. The O3 target value's allowance applies to the three-year average; each year shows
/// its own count.
pub const LIMITS: &[Limit] = &[
    limit(
        Pollutant::So2,
        EU08,
        LV,
        HOUR,
        Threshold::ug(350),
        24,
        D2008,
    ),
    limit(Pollutant::So2, EU08, LV, DAY, Threshold::ug(125), 3, D2008),
    limit(Pollutant::So2, EU24, LV, HOUR, Threshold::ug(350), 3, D2024),
    limit(Pollutant::So2, EU24, LV, DAY, Threshold::ug(50), 18, D2024),
    limit(Pollutant::Pm10, EU08, LV, DAY, Threshold::ug(50), 35, D2008),
    limit(Pollutant::Pm10, EU08, LV, YEAR, Threshold::ug(40), 0, D2008),
    limit(Pollutant::Pm10, EU24, LV, DAY, Threshold::ug(45), 18, D2024),
    limit(Pollutant::Pm10, EU24, LV, YEAR, Threshold::ug(20), 0, D2024),
    limit(
        Pollutant::O3,
        EU08,
        Kind::InformationThreshold,
        HOUR,
        Threshold::ug(180),
        0,
        D2008_O3_THRESHOLDS,
    ),
    limit(
        Pollutant::O3,
        EU08,
        Kind::AlertThreshold,
        HOUR,
        Threshold::ug(240),
        0,
        D2008_O3_THRESHOLDS,
    ),
    limit(
        Pollutant::O3,
        EU08,
        Kind::TargetValue,
        MAX8H,
        Threshold::ug(120),
        25,
        D2008_O3,
    ),
    limit(
        Pollutant::O3,
        EU24,
        Kind::TargetValue,
        MAX8H,
        Threshold::ug(120),
        18,
        D2024_O3,
    ),
    limit(
        Pollutant::No2,
        EU08,
        LV,
        HOUR,
        Threshold::ug(200),
        18,
        D2008,
    ),
    limit(Pollutant::No2, EU08, LV, YEAR, Threshold::ug(40), 0, D2008),
    limit(Pollutant::No2, EU24, LV, HOUR, Threshold::ug(200), 3, D2024),
    limit(Pollutant::No2, EU24, LV, DAY, Threshold::ug(50), 18, D2024),
    limit(Pollutant::No2, EU24, LV, YEAR, Threshold::ug(20), 0, D2024),
    limit(Pollutant::Co, EU08, LV, MAX8H, Threshold::mg(10), 0, D2008),
    limit(Pollutant::Co, EU24, LV, DAY, Threshold::mg(4), 18, D2024),
    limit(Pollutant::Co, EU24, LV, MAX8H, Threshold::mg(10), 0, D2024),
    limit(
        Pollutant::Benzene,
        EU08,
        LV,
        YEAR,
        Threshold::ug(5),
        0,
        D2008,
    ),
    limit(
        Pollutant::Benzene,
        EU24,
        LV,
        YEAR,
        Threshold::tenths(34),
        0,
        D2024,
    ),
    limit(
        Pollutant::Pm25,
        EU08,
        LV,
        YEAR,
        Threshold::ug(25),
        0,
        D2008_PM25,
    ),
    limit(Pollutant::Pm25, EU24, LV, DAY, Threshold::ug(25), 18, D2024),
    limit(Pollutant::Pm25, EU24, LV, YEAR, Threshold::ug(10), 0, D2024),
];

/// The limits of `pollutant`, of `standard` when given, ordered by standard then metric.
pub fn limits_for(pollutant: Pollutant, standard: Option<Standard>) -> Vec<&'static Limit> {
    let mut out: Vec<&Limit> = LIMITS
        .iter()
        .filter(|l| l.pollutant == pollutant && standard.is_none_or(|s| s == l.standard))
        .collect();
    out.sort_by_key(|l| (l.standard as i32, l.metric as i32, l.kind as i32));
    out
}

/// One measured value, as the aggregation sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Start of the averaging period.
    pub start: DateTime<Utc>,
    /// Concentration in µg/m³.
    pub value: f64,
    /// True unless the network flagged it invalid (values below the detection limit count, at the
    /// detection limit).
    pub valid: bool,
}

/// Daily aggregate of one pollutant at one station.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyAggregate {
    /// Day (UTC+1).
    pub date: NaiveDate,
    /// Mean: the valid daily value, else the mean of the valid hours.
    pub mean: f64,
    /// Highest valid hourly value.
    pub max_hourly: Option<f64>,
    /// Highest valid 8-hour running mean ending in the day (O3, CO), when at least 18 of the day's
    /// 24 means are valid.
    pub max_eight_hour_mean: Option<f64>,
    /// Valid hours in the day.
    pub valid_hours: i32,
    /// True when the day counts: a valid daily value, or at least 18 valid hours.
    pub complete: bool,
}

/// Aggregates one day of one pollutant: `hourly` holds the hourly samples of the day and, for the
/// 8-hour means, of the 7 hours before it (others are ignored); `daily` the daily sample if any.
/// `None` when the day has no valid value at all.
pub fn aggregate_day(
    pollutant: Pollutant,
    date: NaiveDate,
    hourly: &[Sample],
    daily: Option<Sample>,
) -> Option<DailyAggregate> {
    let start = day_start(date);
    // Index 0..7 are the 7 hours before the day (17:00–23:00 UTC+1), 7..31 the day's 24 hours.
    let mut hours: [Option<f64>; 31] = [None; 31];
    for s in hourly.iter().filter(|s| s.valid) {
        let offset = (s.start - start).num_hours();
        if (s.start - start).num_seconds() % 3600 != 0 {
            continue;
        }
        if let Ok(i) = usize::try_from(offset + 7)
            && i < hours.len()
        {
            hours[i] = Some(s.value);
        }
    }
    let day_hours: Vec<f64> = hours[7..].iter().flatten().copied().collect();
    let valid_hours = day_hours.len() as i32;
    let max_hourly = day_hours.iter().copied().reduce(f64::max);
    let daily_valid = daily.filter(|d| d.valid).map(|d| d.value);
    let mean = match daily_valid {
        Some(v) => v,
        None if valid_hours > 0 => day_hours.iter().sum::<f64>() / f64::from(valid_hours),
        None => return None,
    };
    let max_eight_hour_mean = if has_eight_hour_mean(pollutant) {
        let means: Vec<f64> = (0..24)
            .filter_map(|end| {
                let window: Vec<f64> = hours[end..end + 8].iter().flatten().copied().collect();
                (window.len() >= MIN_VALID_HOURS_IN_EIGHT)
                    .then(|| window.iter().sum::<f64>() / window.len() as f64)
            })
            .collect();
        (means.len() >= MIN_VALID_EIGHT_HOUR_MEANS)
            .then(|| means.iter().copied().reduce(f64::max))
            .flatten()
    } else {
        None
    };
    Some(DailyAggregate {
        date,
        mean,
        max_hourly,
        max_eight_hour_mean,
        valid_hours,
        complete: daily_valid.is_some() || valid_hours >= MIN_VALID_HOURS,
    })
}

/// How one station stands against one limit in one year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Periods above the limit (for the annual mean, 1 or 0).
    pub exceedances: i32,
    /// Periods with valid data.
    pub valid_periods: i32,
    /// The annual mean, for annual limits with data.
    pub annual_mean: Option<f64>,
    /// True when the exceedances are within the allowance.
    pub complies: bool,
}

/// Counts a year's data against `limit`: `days` are the year's daily aggregates, `hourly` its valid
/// hourly values. Incomplete days count for no daily limit and no annual mean.
pub fn evaluate(limit: &Limit, days: &[DailyAggregate], hourly: &[f64]) -> Evaluation {
    let complete_means = || days.iter().filter(|d| d.complete).map(|d| d.mean);
    let count = |values: &mut dyn Iterator<Item = f64>| {
        let (mut n, mut over) = (0, 0);
        for v in values {
            n += 1;
            if limit.threshold.exceeded_by(v) {
                over += 1;
            }
        }
        (over, n)
    };
    let (exceedances, valid_periods, annual_mean) = match limit.metric {
        Metric::HourlyMean => {
            let (over, n) = count(&mut hourly.iter().copied());
            (over, n, None)
        }
        Metric::DailyMean => {
            let (over, n) = count(&mut complete_means());
            (over, n, None)
        }
        Metric::MaxDailyEightHourMean => {
            let (over, n) = count(&mut days.iter().filter_map(|d| d.max_eight_hour_mean));
            (over, n, None)
        }
        Metric::AnnualMean | Metric::Unspecified => {
            let n = complete_means().count() as i32;
            let mean = (n > 0).then(|| complete_means().sum::<f64>() / f64::from(n));
            let over = i32::from(mean.is_some_and(|m| limit.threshold.exceeded_by(m)));
            (over, n, mean)
        }
    };
    Evaluation {
        exceedances,
        valid_periods,
        annual_mean,
        complies: exceedances <= limit.allowed,
    }
}

/// A validated station.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStation {
    /// Id asked for, if any.
    pub id: Option<String>,
    /// EoI code.
    pub eoi_code: String,
    /// Name.
    pub name: String,
    /// ISTAT code.
    pub istat_code: String,
    /// Network.
    pub network: String,
    /// Station type.
    pub station_type: pb::AirQualityStationType,
    /// Area type.
    pub area_type: pb::AirQualityAreaType,
    /// Position.
    pub point: Point,
    /// Altitude.
    pub altitude_meters: i32,
    /// Pollutants measured.
    pub pollutants: Vec<Pollutant>,
    /// In service.
    pub active: bool,
}

/// True for a European station code: country, four digits, letter (`IT1234A`).
pub fn is_eoi_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 7
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..6].iter().all(u8::is_ascii_digit)
        && b[6].is_ascii_uppercase()
}

/// Validates a station to register or describe anew (`station.` fields).
pub fn validate_station(s: &pb::AirQualityStation) -> Result<NewStation, Violations> {
    let mut v = Violations::new();
    let id = Some(s.id.trim()).filter(|i| !i.is_empty());
    if let Some(id) = id {
        v.check(
            valid_id(id),
            "station.id",
            "must be 1 to 64 printable characters without spaces, or empty for a new station",
        );
    }
    v.check(
        s.eoi_code.is_empty() || is_eoi_code(&s.eoi_code),
        "station.eoi_code",
        "must be empty or a European station code such as IT1234A",
    );
    let name = required_text(&s.name, MAX_NAME_LEN, "station.name", &mut v);
    check_istat(&s.istat_code, "station.istat_code", &mut v);
    let network = required_text(&s.network, MAX_NAME_LEN, "station.network", &mut v);
    let station_type = match pb::AirQualityStationType::try_from(s.station_type) {
        Ok(t) if t != pb::AirQualityStationType::Unspecified => t,
        _ => {
            v.add(
                "station.station_type",
                "must be TRAFFIC, INDUSTRIAL or BACKGROUND",
            );
            pb::AirQualityStationType::Unspecified
        }
    };
    let area_type = match pb::AirQualityAreaType::try_from(s.area_type) {
        Ok(t) if t != pb::AirQualityAreaType::Unspecified => t,
        _ => {
            v.add("station.area_type", "must be URBAN, SUBURBAN or RURAL");
            pb::AirQualityAreaType::Unspecified
        }
    };
    let point = match &s.geo {
        None => {
            v.add("station.geo", "must be set: where the station stands");
            None
        }
        Some(g) => geo::validate(g, "station.geo", &mut v),
    };
    v.check(
        (-50..=2_000).contains(&s.altitude_meters),
        "station.altitude_meters",
        "must be between -50 and 2000 metres",
    );
    v.check(
        !s.pollutants.is_empty(),
        "station.pollutants",
        "list at least one pollutant measured",
    );
    let mut pollutants = Vec::new();
    for (i, p) in s.pollutants.iter().enumerate() {
        match Pollutant::try_from(*p) {
            Ok(p) if p != Pollutant::Unspecified && !pollutants.contains(&p) => pollutants.push(p),
            Ok(p) if pollutants.contains(&p) => {
                v.add(format!("station.pollutants[{i}]"), "is listed twice");
            }
            _ => v.add(
                format!("station.pollutants[{i}]"),
                "must be an AirPollutant value (EEA code), e.g. 5 for PM10",
            ),
        }
    }
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewStation {
        id: id.map(str::to_owned),
        eoi_code: s.eoi_code.clone(),
        name,
        istat_code: s.istat_code.clone(),
        network,
        station_type,
        area_type,
        point: point.unwrap_or(Point { lat: 0.0, lon: 0.0 }),
        altitude_meters: s.altitude_meters,
        pollutants,
        active: s.active,
    })
}

/// What validation needs to know of the station a reading names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationFacts {
    /// ISTAT code of its comune.
    pub istat_code: String,
    /// Pollutants it measures.
    pub pollutants: Vec<i32>,
}

/// A validated reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewReading {
    /// Pollutant.
    pub pollutant: Pollutant,
    /// Averaging.
    pub averaging: pb::AirQualityAveraging,
    /// Start.
    pub start: DateTime<Utc>,
    /// Concentration.
    pub concentration: f64,
    /// Validity.
    pub validity: pb::AirQualityValidity,
    /// Verified by the network.
    pub verified: bool,
}

/// Validates one imported reading (`reading.` fields); `station` is what the store knows of the
/// station it names (`None` when there is no such station).
pub fn validate_reading(
    r: &pb::AirQualityReading,
    station: Option<&StationFacts>,
    now: DateTime<Utc>,
) -> Result<NewReading, Violations> {
    let mut v = Violations::new();
    let pollutant = match Pollutant::try_from(r.pollutant) {
        Ok(p) if p != Pollutant::Unspecified => p,
        _ => {
            v.add(
                "reading.pollutant",
                "must be an AirPollutant value (EEA code), e.g. 5 for PM10",
            );
            Pollutant::Unspecified
        }
    };
    match station {
        None => v.add(
            "reading.station_id",
            format!(
                "no station has id `{}`; register it with SaveAirQualityStation",
                r.station_id
            ),
        ),
        Some(s) => v.check(
            pollutant == Pollutant::Unspecified || s.pollutants.contains(&(pollutant as i32)),
            "reading.pollutant",
            format!(
                "station `{}` does not measure {}; add it to the station's pollutants first",
                r.station_id,
                pollutant.as_str_name().trim_start_matches("AIR_POLLUTANT_")
            ),
        ),
    }
    let averaging = match pb::AirQualityAveraging::try_from(r.averaging) {
        Ok(a) if a != pb::AirQualityAveraging::Unspecified => a,
        _ => {
            v.add("reading.averaging", "must be HOUR or DAY");
            pb::AirQualityAveraging::Unspecified
        }
    };
    let start = r.start_time.as_ref().and_then(time::from_timestamp);
    match start {
        None => v.add("reading.start_time", "must be set to a valid time"),
        Some(t) if t > now => v.add("reading.start_time", "must not be in the future"),
        Some(t) if t.year() < FIRST_YEAR => v.add(
            "reading.start_time",
            format!("must not be before {FIRST_YEAR}: the networks' series start later"),
        ),
        Some(t) => match averaging {
            pb::AirQualityAveraging::Hour => v.check(
                t.timestamp() % 3600 == 0 && t.timestamp_subsec_nanos() == 0,
                "reading.start_time",
                "an hourly reading must start on the hour",
            ),
            pb::AirQualityAveraging::Day => v.check(
                day_start(network_day(t)) == t,
                "reading.start_time",
                "a daily reading must start at 00:00 UTC+1 (23:00 UTC of the day before)",
            ),
            pb::AirQualityAveraging::Unspecified => {}
        },
    }
    v.check(
        r.concentration.is_finite() && (0.0..=MAX_CONCENTRATION).contains(&r.concentration),
        "reading.concentration",
        format!("must be a number from 0 to {MAX_CONCENTRATION} µg/m³ (CO too: 10 mg/m³ is 10000)"),
    );
    let validity = match pb::AirQualityValidity::try_from(r.validity) {
        Ok(x) if x != pb::AirQualityValidity::Unspecified => x,
        _ => {
            v.add(
                "reading.validity",
                "must be VALID, INVALID or BELOW_DETECTION_LIMIT",
            );
            pb::AirQualityValidity::Unspecified
        }
    };
    check_text(&r.station_id, 64, "reading.station_id", &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewReading {
        pollutant,
        averaging,
        start: start.unwrap_or(now),
        concentration: r.concentration,
        validity,
        verified: r.verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::GeoPoint;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn pm10_daily() -> &'static Limit {
        limits_for(Pollutant::Pm10, Some(Standard::Eu200850))
            .into_iter()
            .find(|l| l.metric == Metric::DailyMean)
            .unwrap()
    }

    fn days(means: &[(f64, bool)]) -> Vec<DailyAggregate> {
        means
            .iter()
            .enumerate()
            .map(|(i, (mean, complete))| DailyAggregate {
                date: d("2025-01-01") + Duration::days(i as i64),
                mean: *mean,
                max_hourly: None,
                max_eight_hour_mean: None,
                valid_hours: 0,
                complete: *complete,
            })
            .collect()
    }

    #[test]
    fn thresholds_round_to_the_precision_of_the_limit() {
        let pm10 = Threshold::ug(50);
        let cases = [
            (49.0, false),
            (50.0, false),
            (50.4, false),
            (50.49, false),
            (50.5, true),
            (51.0, true),
            (f64::NAN, false),
            (f64::INFINITY, false),
        ];
        for (value, over) in cases {
            assert_eq!(pm10.exceeded_by(value), over, "{value}");
        }
        let benzene = Threshold::tenths(34);
        assert!(!benzene.exceeded_by(3.44));
        assert!(benzene.exceeded_by(3.45));
        let co = Threshold::mg(10);
        assert!(!co.exceeded_by(10_400.0));
        assert!(co.exceeded_by(10_500.0));
        assert_eq!(co.value(), 10_000.0);
        assert_eq!(benzene.value(), 3.4);
    }

    /// PM10 daily limit of Dir. 2008/50: 50 µg/m³, 35 days allowed per year; incomplete days and
    /// values that round to 50 do not count.
    #[test]
    fn pm10_daily_exceedances() {
        let limit = pm10_daily();
        assert_eq!((limit.threshold, limit.allowed), (Threshold::ug(50), 35));
        let year = |over: usize, extra: &[(f64, bool)]| {
            let mut v = vec![(30.0, true); 365 - over - extra.len()];
            v.extend(std::iter::repeat_n((51.0, true), over));
            v.extend_from_slice(extra);
            days(&v)
        };
        let cases: &[(&str, Vec<DailyAggregate>, i32, i32, bool)] = &[
            ("clean year", year(0, &[]), 0, 365, true),
            (
                "35 days over: still compliant",
                year(35, &[]),
                35,
                365,
                true,
            ),
            ("36 days over", year(36, &[]), 36, 365, false),
            (
                "50.4 rounds to 50: not over",
                year(35, &[(50.4, true)]),
                35,
                365,
                true,
            ),
            (
                "50.5 rounds to 51: over",
                year(35, &[(50.5, true)]),
                36,
                365,
                false,
            ),
            (
                "an incomplete day does not count",
                year(35, &[(90.0, false)]),
                35,
                364,
                true,
            ),
            ("no data", Vec::new(), 0, 0, true),
        ];
        for (case, data, exceedances, valid, complies) in cases {
            let e = evaluate(limit, data, &[]);
            assert_eq!(
                (e.exceedances, e.valid_periods, e.complies),
                (*exceedances, *valid, *complies),
                "{case}"
            );
            assert_eq!(e.annual_mean, None);
        }
        // The same year against the 2030 daily limit of 45 with 18 days allowed.
        let strict = limits_for(Pollutant::Pm10, Some(Standard::Eu20242881))[0];
        assert_eq!(strict.metric, Metric::DailyMean);
        let e = evaluate(strict, &year(20, &[(46.0, true)]), &[]);
        assert_eq!((e.exceedances, e.complies), (21, false));
    }

    #[test]
    fn annual_and_hourly_limits() {
        let annual = limits_for(Pollutant::Pm10, Some(Standard::Eu200850))
            .into_iter()
            .find(|l| l.metric == Metric::AnnualMean)
            .unwrap();
        let e = evaluate(
            annual,
            &days(&[(38.0, true), (44.0, true), (500.0, false)]),
            &[],
        );
        assert_eq!(e.annual_mean, Some(41.0));
        assert_eq!((e.exceedances, e.valid_periods, e.complies), (1, 2, false));
        let no2_hourly = limits_for(Pollutant::No2, Some(Standard::Eu200850))[0];
        assert_eq!(no2_hourly.metric, Metric::HourlyMean);
        let mut hours = vec![150.0; 100];
        hours.extend(std::iter::repeat_n(201.0, 18));
        assert!(evaluate(no2_hourly, &[], &hours).complies);
        hours.push(200.6);
        let e = evaluate(no2_hourly, &[], &hours);
        assert_eq!(
            (e.exceedances, e.valid_periods, e.complies),
            (19, 119, false)
        );
    }

    #[test]
    fn the_limit_table_is_coherent() {
        for l in LIMITS {
            assert!(l.threshold.milli > 0 && l.threshold.milli % l.threshold.step_milli == 0);
            assert!(l.metric != Metric::AnnualMean || l.allowed == 0, "{l:?}");
            assert!(!l.source.is_empty());
            assert!(
                l.metric != Metric::MaxDailyEightHourMean || has_eight_hour_mean(l.pollutant),
                "{l:?}"
            );
        }
        for p in POLLUTANTS {
            assert!(!limits_for(p, None).is_empty(), "{p:?}");
        }
    }

    fn hour(date: NaiveDate, h: i64, value: f64) -> Sample {
        Sample {
            start: day_start(date) + Duration::hours(h),
            value,
            valid: true,
        }
    }

    #[test]
    fn days_aggregate_hours() {
        let day = d("2025-06-10");
        // 24 valid hours 10..33: mean 21.5, max 33.
        let hours: Vec<Sample> = (0..24).map(|h| hour(day, h, 10.0 + h as f64)).collect();
        let a = aggregate_day(Pollutant::No2, day, &hours, None).unwrap();
        assert_eq!(
            (a.mean, a.max_hourly, a.valid_hours, a.complete),
            (21.5, Some(33.0), 24, true)
        );
        assert_eq!(a.max_eight_hour_mean, None, "NO2 has no 8-hour metric");
        // 17 valid hours: incomplete.
        let a = aggregate_day(Pollutant::No2, day, &hours[..17], None).unwrap();
        assert!(!a.complete);
        // Invalid and foreign hours are ignored.
        let mut noisy = hours.clone();
        noisy.push(Sample {
            valid: false,
            ..hour(day, 3, 999.0)
        });
        noisy.push(hour(day + Duration::days(1), 2, 999.0));
        assert_eq!(
            aggregate_day(Pollutant::No2, day, &noisy, None)
                .unwrap()
                .mean,
            21.5
        );
        // A valid daily value is the mean; the hours still give the maximum.
        let daily = Sample {
            start: day_start(day),
            value: 40.0,
            valid: true,
        };
        let a = aggregate_day(Pollutant::Pm10, day, &hours[..5], Some(daily)).unwrap();
        assert_eq!(
            (a.mean, a.max_hourly, a.valid_hours, a.complete),
            (40.0, Some(14.0), 5, true)
        );
        let a = aggregate_day(Pollutant::Pm10, day, &[], Some(daily)).unwrap();
        assert_eq!((a.max_hourly, a.valid_hours, a.complete), (None, 0, true));
        assert!(
            aggregate_day(
                Pollutant::Pm10,
                day,
                &[],
                Some(Sample {
                    valid: false,
                    ..daily
                })
            )
            .is_none()
        );
    }

    #[test]
    fn eight_hour_means_reach_into_the_day_before() {
        let day = d("2025-07-01");
        let prev = day - Duration::days(1);
        // The evening before at 200, the day at 100: the first 8-hour mean of the day (17:00 the day
        // before to 01:00) is (7 × 200 + 100) / 8 = 187.5.
        let mut hours: Vec<Sample> = (17..24).map(|h| hour(prev, h, 200.0)).collect();
        hours.extend((0..24).map(|h| hour(day, h, 100.0)));
        let a = aggregate_day(Pollutant::O3, day, &hours, None).unwrap();
        assert_eq!(a.max_eight_hour_mean, Some(187.5));
        // Without the evening before, the first means have too few hours and the day's own rule.
        let a = aggregate_day(Pollutant::O3, day, &hours[7..], None).unwrap();
        assert_eq!(a.max_eight_hour_mean, Some(100.0));
        // Too few valid means: no maximum.
        let a = aggregate_day(Pollutant::O3, day, &hours[7..20], None).unwrap();
        assert_eq!(a.max_eight_hour_mean, None);
    }

    #[test]
    fn network_days_are_utc_plus_one() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(network_day(t("2025-07-01T22:59:00Z")), d("2025-07-01"));
        assert_eq!(network_day(t("2025-07-01T23:00:00Z")), d("2025-07-02"));
        assert_eq!(day_start(d("2025-07-02")), t("2025-07-01T23:00:00Z"));
    }

    fn station() -> pb::AirQualityStation {
        pb::AirQualityStation {
            name: "Palermo - Castelnuovo".into(),
            istat_code: "082053".into(),
            network: "RAP Palermo".into(),
            station_type: pb::AirQualityStationType::Traffic as i32,
            area_type: pb::AirQualityAreaType::Urban as i32,
            geo: Some(GeoPoint {
                latitude: 38.1256,
                longitude: 13.3553,
            }),
            altitude_meters: 30,
            pollutants: vec![Pollutant::Pm10 as i32, Pollutant::No2 as i32],
            active: true,
            ..Default::default()
        }
    }

    #[test]
    fn stations() {
        assert!(validate_station(&station()).is_ok());
        assert!(is_eoi_code("IT1234A") && !is_eoi_code("IT123A") && !is_eoi_code("it1234a"));
        type Edit = fn(&mut pb::AirQualityStation);
        let cases: &[(Edit, &str)] = &[
            (|s| s.name.clear(), "station.name"),
            (|s| s.istat_code = "082099".into(), "station.istat_code"),
            (|s| s.eoi_code = "X".into(), "station.eoi_code"),
            (|s| s.station_type = 0, "station.station_type"),
            (|s| s.area_type = 9, "station.area_type"),
            (|s| s.geo = None, "station.geo"),
            (|s| s.altitude_meters = 9000, "station.altitude_meters"),
            (|s| s.pollutants.clear(), "station.pollutants"),
            (|s| s.pollutants.push(5), "station.pollutants[2]"),
            (|s| s.pollutants.push(6), "station.pollutants[2]"),
            (|s| s.id = "a b".into(), "station.id"),
        ];
        for (edit, field) in cases {
            let mut s = station();
            edit(&mut s);
            let v = validate_station(&s).expect_err(field);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{field}: {v}"
            );
        }
    }

    #[test]
    fn readings() {
        let now = DateTime::parse_from_rfc3339("2025-07-02T12:00:00Z")
            .unwrap()
            .to_utc();
        let facts = StationFacts {
            istat_code: "082053".into(),
            pollutants: vec![5, 8],
        };
        let good = pb::AirQualityReading {
            station_id: "s1".into(),
            pollutant: Pollutant::No2 as i32,
            averaging: pb::AirQualityAveraging::Hour as i32,
            start_time: Some(time::to_timestamp(now - Duration::hours(2))),
            concentration: 42.5,
            validity: pb::AirQualityValidity::Valid as i32,
            verified: false,
        };
        assert!(validate_reading(&good, Some(&facts), now).is_ok());
        let mut daily = good.clone();
        daily.pollutant = Pollutant::Pm10 as i32;
        daily.averaging = pb::AirQualityAveraging::Day as i32;
        daily.start_time = Some(time::to_timestamp(day_start(d("2025-07-01"))));
        assert!(validate_reading(&daily, Some(&facts), now).is_ok());
        type Edit = fn(&mut pb::AirQualityReading);
        let cases: &[(Edit, &str)] = &[
            (|r| r.pollutant = Pollutant::O3 as i32, "reading.pollutant"),
            (|r| r.pollutant = 4, "reading.pollutant"),
            (|r| r.averaging = 0, "reading.averaging"),
            (|r| r.start_time = None, "reading.start_time"),
            (
                |r| {
                    r.start_time = Some(prost_types::Timestamp {
                        seconds: 1_751_450_400 + 600,
                        nanos: 0,
                    })
                },
                "reading.start_time",
            ),
            (
                |r| {
                    r.start_time = Some(prost_types::Timestamp {
                        seconds: 1_900_000_000,
                        nanos: 0,
                    })
                },
                "reading.start_time",
            ),
            (|r| r.concentration = -1.0, "reading.concentration"),
            (|r| r.concentration = f64::NAN, "reading.concentration"),
            (|r| r.concentration = 1e9, "reading.concentration"),
            (|r| r.validity = 0, "reading.validity"),
            (
                |r| r.averaging = pb::AirQualityAveraging::Day as i32,
                "reading.start_time",
            ),
        ];
        for (edit, field) in cases {
            let mut r = good.clone();
            edit(&mut r);
            let v = validate_reading(&r, Some(&facts), now).expect_err(field);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{field}: {v}"
            );
        }
        let v = validate_reading(&good, None, now).unwrap_err();
        assert_eq!(v.as_slice()[0].field, "reading.station_id");
    }
}
