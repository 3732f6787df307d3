//! Conversions between `google.protobuf.Timestamp` and chrono, shared by every service.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

/// The protobuf form of an instant.
pub fn to_timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The instant of a protobuf timestamp; `None` when it is out of chrono's range or malformed.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    DateTime::from_timestamp(t.seconds, t.nanos as u32)
}

/// The last Sunday of `month` in `year` (when the EU switches to and from summer time).
pub fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }?;
    let last = next.pred_opt()?;
    let back = last.weekday().num_days_from_sunday();
    last.checked_sub_signed(Duration::days(i64::from(back)))
        .filter(|d| d.weekday() == Weekday::Sun)
}

/// Hours Europe/Rome is ahead of UTC at `t`: CET (1), or CEST (2) from 01:00 UTC on the last Sunday
/// of March to 01:00 UTC on the last Sunday of October, as the whole EU switches.
pub fn rome_offset_hours(t: DateTime<Utc>) -> i64 {
    let year = t.year();
    let switch = |month| {
        last_sunday(year, month)
            .and_then(|d| d.and_hms_opt(1, 0, 0))
            .map(|d| d.and_utc())
    };
    match (switch(3), switch(10)) {
        (Some(start), Some(end)) if start <= t && t < end => 2,
        _ => 1,
    }
}

/// The calendar day in Italy at `t`. Deadlines, calendars and bookings are Italian days: at 00:30
/// in Palermo on 1 July it is still 30 June in UTC.
pub fn italian_day(t: DateTime<Utc>) -> NaiveDate {
    t.checked_add_signed(Duration::hours(rome_offset_hours(t)))
        .unwrap_or(t)
        .date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_days_follow_summer_time() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let cases = [
            ("2026-06-30T22:30:00Z", "2026-07-01"), // CEST: 00:30 on 1 July
            ("2026-12-31T23:30:00Z", "2027-01-01"), // CET: 00:30 on 1 January
            ("2026-03-29T00:59:00Z", "2026-03-29"), // just before the spring switch
            ("2026-10-25T00:30:00Z", "2026-10-25"),
            ("2026-01-15T12:00:00Z", "2026-01-15"),
        ];
        for (t, d) in cases {
            assert_eq!(italian_day(at(t)), day(d), "{t}");
        }
        assert_eq!(rome_offset_hours(at("2026-03-29T01:00:00Z")), 2);
        assert_eq!(rome_offset_hours(at("2026-10-25T01:00:00Z")), 1);
    }

    #[test]
    fn round_trip_and_bad_values() {
        let now = Utc::now();
        assert_eq!(from_timestamp(&to_timestamp(now)), Some(now));
        assert_eq!(
            from_timestamp(&prost_types::Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
        assert_eq!(
            from_timestamp(&prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0
            }),
            None
        );
    }
}
