//! Separate waste collection (raccolta differenziata, DOMAIN.md §11): zones and the streets they
//! cover, weekly schedules per zone × user type × fraction with their EER codes, calendar changes
//! (holidays, strikes), and the kerbside bulky-waste pickup with its per-day capacity.
//!
//! "What is collected here on this date" is [`collections_on`]: the schedules that collect on the
//! day, with the changes of that day (cancelled or moved away) and the collections moved in from
//! another day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::{WasteFraction as Fraction, WasteUserType as UserType};
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::ids;

use super::geo::{self, Point};
use super::reports::{ReportAddress, validate_address};
use super::{
    MAX_NAME_LEN, MAX_TEXT_LEN, check_text, parse_day, parse_hhmm, parse_optional_day,
    required_text, rome_to_utc, valid_id,
};

/// Most zones one comune's setup may hold.
pub const MAX_ZONES: usize = 500;
/// Most schedules, centres or changes one setup may hold.
pub const MAX_SETUP_ITEMS: usize = 5_000;
/// Most days one calendar question may span.
pub const MAX_CALENDAR_DAYS: i32 = 31;
/// Longest period between two collections of one schedule, in weeks.
pub const MAX_EVERY_WEEKS: i32 = 8;

/// Pieces one bulky-waste booking may hold: what one crew loads at one address.
pub const MAX_PIECES_PER_BOOKING: i32 = 5;
/// Kinds of items one booking may list.
pub const MAX_ITEM_KINDS: usize = 10;
/// Days of notice a pickup needs: crews are planned the day before, and items go out the evening
/// before the pickup, so the first day bookable is the day after tomorrow.
pub const MIN_NOTICE_DAYS: i64 = 2;
/// How far ahead a pickup day is searched for.
pub const BOOKING_HORIZON_DAYS: i64 = 60;

/// The usual EER codes of a fraction, as the `WasteFraction` values document them; a schedule or a
/// centre that lists none collects these.
pub fn default_eer_codes(fraction: Fraction) -> &'static [&'static str] {
    match fraction {
        Fraction::Unspecified => &[],
        Fraction::Organic => &["20 01 08"],
        Fraction::Paper => &["20 01 01", "15 01 01"],
        Fraction::Plastic => &["15 01 02"],
        Fraction::Metals => &["15 01 04", "20 01 40"],
        Fraction::PlasticAndMetals => &["15 01 02", "15 01 04", "15 01 06"],
        Fraction::Glass => &["20 01 02", "15 01 07"],
        Fraction::GlassAndMetals => &["15 01 07", "15 01 04", "15 01 06"],
        Fraction::Residual => &["20 03 01"],
        Fraction::Bulky => &["20 03 07"],
        Fraction::Weee => &["20 01 35*", "20 01 36", "20 01 23*", "20 01 21*"],
        Fraction::Garden => &["20 02 01"],
        Fraction::Textiles => &["20 01 10", "20 01 11"],
        Fraction::CookingOil => &["20 01 25"],
        Fraction::Batteries => &["20 01 33*", "20 01 34"],
        Fraction::Medicines => &["20 01 32"],
    }
}

/// True for an EER code written `NN NN NN`, with `*` after a hazardous waste.
pub fn is_eer_code(code: &str) -> bool {
    let b = code.as_bytes();
    let body = match b {
        [rest @ .., b'*'] => rest,
        _ => b,
    };
    body.len() == 8
        && body.iter().enumerate().all(|(i, c)| {
            if i == 2 || i == 5 {
                *c == b' '
            } else {
                c.is_ascii_digit()
            }
        })
}

/// A street name as zones are matched by: lower case, apostrophes unified, spaces collapsed, and
/// the usual abbreviations of the toponym spelled out (`V.` → `via`, `P.zza` → `piazza`), so
/// "V. Maqueda" and "Via  Maqueda" name the same street.
pub fn street_key(street: &str) -> String {
    let lower = street.trim().to_lowercase().replace(['’', '`', '´'], "'");
    let mut words = lower.split_whitespace();
    let first = words.next().unwrap_or_default();
    let toponym = match first {
        "v." | "v" => "via",
        "p.zza" | "p.za" | "pza" | "p." => "piazza",
        "c.so" | "c." => "corso",
        "v.le" | "vle" => "viale",
        "l.go" => "largo",
        "vic." | "v.lo" => "vicolo",
        other => other,
    };
    std::iter::once(toponym)
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The number of a house number: the digits it starts with (`12/B` → 12); `None` without digits
/// (`snc`, senza numero civico).
pub fn house_number_value(house_number: &str) -> Option<i32> {
    let digits: String = house_number
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .take(9)
        .collect();
    digits.parse().ok()
}

/// A stretch of street in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stretch {
    /// Street as written, e.g. "Via Maqueda".
    pub street: String,
    /// First house number; 0 from the start.
    pub from_number: i32,
    /// Last house number; 0 to the end.
    pub to_number: i32,
    /// Side.
    pub side: pb::WasteZoneStreetSide,
}

impl Stretch {
    /// True when the stretch holds house `number` (any number when it is unknown and the stretch
    /// is the whole street on both sides).
    pub fn covers(&self, number: Option<i32>) -> bool {
        let Some(n) = number else {
            return self.is_whole_street();
        };
        let side_ok = match self.side {
            pb::WasteZoneStreetSide::Odd => n % 2 != 0,
            pb::WasteZoneStreetSide::Even => n % 2 == 0,
            _ => true,
        };
        side_ok && n >= self.from_number && (self.to_number == 0 || n <= self.to_number)
    }

    fn is_whole_street(&self) -> bool {
        self.from_number == 0
            && self.to_number == 0
            && !matches!(
                self.side,
                pb::WasteZoneStreetSide::Odd | pb::WasteZoneStreetSide::Even
            )
    }

    /// True when two stretches of the same street share a house number.
    pub fn overlaps(&self, other: &Stretch) -> bool {
        use pb::WasteZoneStreetSide as Side;
        let sides = !matches!(
            (self.side, other.side),
            (Side::Odd, Side::Even) | (Side::Even, Side::Odd)
        );
        let end = |s: &Stretch| {
            if s.to_number == 0 {
                i32::MAX
            } else {
                s.to_number
            }
        };
        sides && self.from_number <= end(other) && other.from_number <= end(self)
    }
}

/// A zone as address resolution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneStreets {
    /// Zone id.
    pub zone_id: String,
    /// Its stretches; none for a zona unica covering the whole comune.
    pub stretches: Vec<Stretch>,
}

/// Which zone an address is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneMatch {
    /// This zone.
    Zone(String),
    /// The street is split between zones and the house number does not say which.
    NeedsHouseNumber,
    /// No zone covers it.
    NoZone,
}

/// The zone covering `street` and `house_number` among a comune's zones: a zone listing the
/// stretch, else the comune's zona unica (a zone listing no street), else none.
pub fn resolve_zone(zones: &[ZoneStreets], street: &str, house_number: &str) -> ZoneMatch {
    let key = street_key(street);
    let number = house_number_value(house_number);
    let listed: BTreeSet<&str> = zones
        .iter()
        .filter(|z| {
            z.stretches
                .iter()
                .any(|s| street_key(&s.street) == key && s.covers(number))
        })
        .map(|z| z.zone_id.as_str())
        .collect();
    if let Some(first) = listed.first() {
        return ZoneMatch::Zone((*first).to_owned());
    }
    let street_known = zones
        .iter()
        .any(|z| z.stretches.iter().any(|s| street_key(&s.street) == key));
    if street_known && number.is_none() {
        return ZoneMatch::NeedsHouseNumber;
    }
    match zones.iter().find(|z| z.stretches.is_empty()) {
        Some(z) => ZoneMatch::Zone(z.zone_id.clone()),
        None => ZoneMatch::NoZone,
    }
}

/// A weekly collection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Id.
    pub id: String,
    /// Zone.
    pub zone_id: String,
    /// User type.
    pub user_type: UserType,
    /// Fraction.
    pub fraction: Fraction,
    /// EER codes collected.
    pub eer_codes: Vec<String>,
    /// ISO weekdays, 1 = Monday.
    pub weekdays: Vec<u32>,
    /// Every this many weeks (1 = weekly).
    pub every_weeks: u32,
    /// A collection day fixing the phase of multi-week rules.
    pub anchor_date: Option<NaiveDate>,
    /// Earliest set-out time.
    pub set_out_from: NaiveTime,
    /// Latest set-out time.
    pub set_out_until: NaiveTime,
    /// True when the set-out starts the evening before.
    pub set_out_evening_before: bool,
    /// Container or bag.
    pub container: String,
    /// First day valid.
    pub valid_from: Option<NaiveDate>,
    /// Last day valid.
    pub valid_to: Option<NaiveDate>,
    /// Instructions.
    pub notes: String,
}

fn monday_of(d: NaiveDate) -> NaiveDate {
    d.checked_sub_signed(Duration::days(i64::from(
        d.weekday().num_days_from_monday(),
    )))
    .unwrap_or(d)
}

impl Schedule {
    /// True when the rule is in force on `date`.
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= date) && self.valid_to.is_none_or(|t| date <= t)
    }

    /// True when the rule collects on `date`, before calendar changes.
    pub fn collects_on(&self, date: NaiveDate) -> bool {
        if !self.valid_on(date) || !self.weekdays.contains(&date.weekday().number_from_monday()) {
            return false;
        }
        match (self.every_weeks, self.anchor_date) {
            (0 | 1, _) | (_, None) => true,
            (every, Some(anchor)) => {
                let weeks = (monday_of(date) - monday_of(anchor)).num_days() / 7;
                weeks.rem_euclid(i64::from(every)) == 0
            }
        }
    }

    /// When the waste of a collection on `date` may go out: from, until.
    pub fn set_out(&self, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let from_day = if self.set_out_evening_before {
            date.pred_opt().unwrap_or(date)
        } else {
            date
        };
        (
            rome_to_utc(from_day.and_time(self.set_out_from)),
            rome_to_utc(date.and_time(self.set_out_until)),
        )
    }
}

/// A change to the collections of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Id.
    pub id: String,
    /// Day whose collections change.
    pub date: NaiveDate,
    /// Zone affected; `None` for every zone.
    pub zone_id: Option<String>,
    /// User type affected; `None` for both.
    pub user_type: Option<UserType>,
    /// Fraction affected; `None` for every fraction.
    pub fraction: Option<Fraction>,
    /// Day the collections move to; `None` when they are cancelled.
    pub moved_to: Option<NaiveDate>,
    /// Reason shown to citizens.
    pub reason: String,
    /// When it was announced.
    pub created_at: DateTime<Utc>,
}

impl Change {
    /// True when the change touches collections of this zone, user type and fraction.
    pub fn applies(&self, zone_id: &str, user_type: UserType, fraction: Fraction) -> bool {
        self.zone_id.as_deref().is_none_or(|z| z == zone_id)
            && self.user_type.is_none_or(|u| u == user_type)
            && self.fraction.is_none_or(|f| f == fraction)
    }

    /// How narrowly the change is aimed: when two changes touch one collection, the narrower wins
    /// (a zone's strike over the comune's holiday rule), then the latest announced.
    fn specificity(&self) -> (u8, DateTime<Utc>) {
        let n = u8::from(self.zone_id.is_some())
            + u8::from(self.user_type.is_some())
            + u8::from(self.fraction.is_some());
        (n, self.created_at)
    }
}

/// The change ruling the collection of `schedule` on `date`, if any.
fn ruling_change<'a>(
    schedule: &Schedule,
    date: NaiveDate,
    changes: &'a [Change],
) -> Option<&'a Change> {
    changes
        .iter()
        .filter(|c| {
            c.date == date && c.applies(&schedule.zone_id, schedule.user_type, schedule.fraction)
        })
        .max_by_key(|c| c.specificity())
}

/// One collection on one day, changes applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Day of the collection.
    pub date: NaiveDate,
    /// The rule it comes from.
    pub schedule_id: String,
    /// Fraction.
    pub fraction: Fraction,
    /// EER codes.
    pub eer_codes: Vec<String>,
    /// Set-out from.
    pub set_out_from: DateTime<Utc>,
    /// Set-out until.
    pub set_out_until: DateTime<Utc>,
    /// Container.
    pub container: String,
    /// Instructions.
    pub notes: String,
    /// True when a change cancelled it (or moved it away: nothing is collected on this day).
    pub cancelled: bool,
    /// Day it was due, when a change moved it here.
    pub moved_from: Option<NaiveDate>,
    /// Reason of the change.
    pub change_reason: String,
}

fn collection(schedule: &Schedule, date: NaiveDate) -> Collection {
    let (set_out_from, set_out_until) = schedule.set_out(date);
    Collection {
        date,
        schedule_id: schedule.id.clone(),
        fraction: schedule.fraction,
        eer_codes: schedule.eer_codes.clone(),
        set_out_from,
        set_out_until,
        container: schedule.container.clone(),
        notes: schedule.notes.clone(),
        cancelled: false,
        moved_from: None,
        change_reason: String::new(),
    }
}

/// What is collected on `date` in `zone_id` for `user_type`: the schedules collecting that day
/// (cancelled ones kept and marked, with the day they moved to in the reason), and the collections
/// a change moved here from another day. `schedules` are the zone's; `changes` must include those
/// dated `date` and those moving collections to `date`. Sorted by set-out time, then fraction.
pub fn collections_on(
    date: NaiveDate,
    zone_id: &str,
    user_type: UserType,
    schedules: &[Schedule],
    changes: &[Change],
) -> Vec<Collection> {
    let mine = || {
        schedules
            .iter()
            .filter(move |s| s.zone_id == zone_id && s.user_type == user_type)
    };
    let mut out = Vec::new();
    for s in mine().filter(|s| s.collects_on(date)) {
        let mut c = collection(s, date);
        if let Some(change) = ruling_change(s, date, changes) {
            c.cancelled = true;
            c.change_reason = match change.moved_to {
                None => change.reason.clone(),
                Some(to) => format!(
                    "{} (raccolta spostata al {})",
                    change.reason,
                    to.format("%d/%m/%Y")
                ),
            };
        }
        out.push(c);
    }
    // Collections moved here: due on another day, moved to this one by the change ruling them.
    let origins: BTreeSet<NaiveDate> = changes
        .iter()
        .filter(|c| c.moved_to == Some(date) && c.date != date)
        .map(|c| c.date)
        .collect();
    for origin in origins {
        for s in mine().filter(|s| s.collects_on(origin)) {
            if let Some(change) = ruling_change(s, origin, changes)
                && change.moved_to == Some(date)
            {
                let mut c = collection(s, date);
                c.moved_from = Some(origin);
                c.change_reason = change.reason.clone();
                out.push(c);
            }
        }
    }
    out.sort_by(|a, b| {
        (a.set_out_from, a.fraction as i32, &a.schedule_id).cmp(&(
            b.set_out_from,
            b.fraction as i32,
            &b.schedule_id,
        ))
    });
    out
}

/// A validated zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Id, `<istat>-<code>`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Stretches.
    pub streets: Vec<Stretch>,
}

/// A validated collection centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Centre {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Address.
    pub address: Option<ReportAddress>,
    /// Position.
    pub point: Option<Point>,
    /// Opening hours (OSM syntax).
    pub opening_hours: String,
    /// Fractions accepted.
    pub fractions: Vec<Fraction>,
    /// EER codes accepted.
    pub eer_codes: Vec<String>,
    /// User types admitted.
    pub user_types: Vec<UserType>,
    /// Instructions.
    pub notes: String,
}

/// A comune's whole validated waste-collection setup.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// ISTAT code.
    pub istat_code: String,
    /// Zones.
    pub zones: Vec<Zone>,
    /// Schedules.
    pub schedules: Vec<Schedule>,
    /// Centres.
    pub centres: Vec<Centre>,
    /// Changes (ids assigned by the store).
    pub changes: Vec<Change>,
}

fn zone_code_ok(code: &str) -> bool {
    (1..=20).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn required_enum<E: TryFrom<i32> + PartialEq + Copy>(
    value: i32,
    unspecified: E,
    field: &str,
    what: &str,
    v: &mut Violations,
) -> E {
    match E::try_from(value) {
        Ok(e) if e != unspecified => e,
        _ => {
            v.add(field, format!("must be one of the {what} values"));
            unspecified
        }
    }
}

fn optional_enum<E: TryFrom<i32> + PartialEq + Copy>(
    value: i32,
    unspecified: E,
    field: &str,
    what: &str,
    v: &mut Violations,
) -> Option<E> {
    match E::try_from(value) {
        Ok(e) if e == unspecified => None,
        Ok(e) => Some(e),
        Err(_) => {
            v.add(
                field,
                format!("must be one of the {what} values, or unspecified"),
            );
            None
        }
    }
}

fn eer_list(codes: &[String], fraction: Fraction, field: &str, v: &mut Violations) -> Vec<String> {
    if codes.is_empty() {
        return default_eer_codes(fraction)
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
    }
    for (i, code) in codes.iter().enumerate() {
        v.check(
            is_eer_code(code),
            format!("{field}[{i}]"),
            format!(
                "`{code}` is not an EER code: write it `NN NN NN`, with `*` after a hazardous waste"
            ),
        );
    }
    codes.to_vec()
}

fn validate_zone(z: &pb::WasteZone, istat_code: &str, field: &str, v: &mut Violations) -> Zone {
    let f = |name: &str| format!("{field}.{name}");
    let code_ok =
        z.id.strip_prefix(istat_code)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(zone_code_ok);
    v.check(
        code_ok,
        f("id"),
        format!("must be `{istat_code}-<zone code>`, the code 1 to 20 letters, digits, `-` or `_`"),
    );
    v.check(
        z.istat_code.is_empty() || z.istat_code == istat_code,
        f("istat_code"),
        format!("must be empty or {istat_code}"),
    );
    let name = required_text(&z.name, MAX_NAME_LEN, &f("name"), v);
    check_text(&z.description, MAX_TEXT_LEN, &f("description"), v);
    v.check(
        z.streets.len() <= MAX_SETUP_ITEMS,
        f("streets"),
        format!("at most {MAX_SETUP_ITEMS} streets per zone"),
    );
    let streets = z
        .streets
        .iter()
        .take(MAX_SETUP_ITEMS)
        .enumerate()
        .map(|(j, s)| {
            let g = |name: &str| format!("{field}.streets[{j}].{name}");
            let street = required_text(&s.street, MAX_NAME_LEN, &g("street"), v);
            v.check(
                s.from_number >= 0,
                g("from_number"),
                "must not be negative (0 means from the start)",
            );
            v.check(
                s.to_number == 0 || s.to_number >= s.from_number,
                g("to_number"),
                "must be 0 (to the end) or at least from_number",
            );
            let side = match pb::WasteZoneStreetSide::try_from(s.side) {
                Ok(pb::WasteZoneStreetSide::Unspecified) => pb::WasteZoneStreetSide::Both,
                Ok(side) => side,
                Err(_) => {
                    v.add(g("side"), "must be one of the WasteZoneStreetSide values");
                    pb::WasteZoneStreetSide::Both
                }
            };
            Stretch {
                street,
                from_number: s.from_number.max(0),
                to_number: s.to_number.max(0),
                side,
            }
        })
        .collect();
    Zone {
        id: z.id.clone(),
        name,
        description: z.description.trim().to_owned(),
        streets,
    }
}

/// Validates one schedule; `zones` are the ids it may name. An empty id is assigned from `index`.
pub fn validate_schedule(
    s: &pb::WasteCollectionSchedule,
    istat_code: &str,
    zones: &BTreeSet<String>,
    index: usize,
    field: &str,
    v: &mut Violations,
) -> Schedule {
    let f = |name: &str| format!("{field}.{name}");
    let id = if s.id.trim().is_empty() {
        format!("{}-S{}", s.zone_id, index + 1)
    } else {
        s.id.trim().to_owned()
    };
    // Ids are unique across comuni: the ISTAT prefix keeps one comune's ids out of another's.
    v.check(
        valid_id(&id) && id.starts_with(&format!("{istat_code}-")),
        f("id"),
        format!("must be `{istat_code}-` followed by the comune's own code (at most 64 printable characters), or empty to have one assigned"),
    );
    v.check(
        s.istat_code.is_empty() || s.istat_code == istat_code,
        f("istat_code"),
        format!("must be empty or {istat_code}"),
    );
    v.check(
        zones.contains(&s.zone_id),
        f("zone_id"),
        format!("`{}` is not one of the zones of the request", s.zone_id),
    );
    let user_type = required_enum(
        s.user_type,
        UserType::Unspecified,
        &f("user_type"),
        "WasteUserType",
        v,
    );
    let fraction = required_enum(
        s.fraction,
        Fraction::Unspecified,
        &f("fraction"),
        "WasteFraction",
        v,
    );
    let eer_codes = eer_list(&s.eer_codes, fraction, &f("eer_codes"), v);
    v.check(
        !s.weekdays.is_empty(),
        f("weekdays"),
        "list at least one weekday, 1 = Monday to 7 = Sunday",
    );
    let mut weekdays = Vec::new();
    for (i, d) in s.weekdays.iter().enumerate() {
        if !(1..=7).contains(d) {
            v.add(
                format!("{field}.weekdays[{i}]"),
                "must be 1 (Monday) to 7 (Sunday)",
            );
        } else if weekdays.contains(&(*d as u32)) {
            v.add(format!("{field}.weekdays[{i}]"), "is listed twice");
        } else {
            weekdays.push(*d as u32);
        }
    }
    v.check(
        (0..=MAX_EVERY_WEEKS).contains(&s.every_weeks),
        f("every_weeks"),
        format!("must be 0 to {MAX_EVERY_WEEKS} (0 or 1 means every week)"),
    );
    let anchor_date = parse_optional_day(&s.anchor_date, &f("anchor_date"), v).flatten();
    if s.every_weeks > 1 {
        match anchor_date {
            None if s.anchor_date.trim().is_empty() => v.add(
                f("anchor_date"),
                "is required when every_weeks is above 1: give a day on which the rule collects",
            ),
            Some(a) if !weekdays.contains(&a.weekday().number_from_monday()) => v.add(
                f("anchor_date"),
                "must fall on one of the weekdays of the rule",
            ),
            _ => {}
        }
    }
    let set_out_from = parse_hhmm(&s.set_out_from);
    v.check(
        set_out_from.is_some(),
        f("set_out_from"),
        "must be a time `HH:MM`, e.g. 20:00",
    );
    let set_out_until = parse_hhmm(&s.set_out_until);
    v.check(
        set_out_until.is_some(),
        f("set_out_until"),
        "must be a time `HH:MM`, e.g. 06:00",
    );
    if let (Some(from), Some(until)) = (set_out_from, set_out_until) {
        v.check(
            s.set_out_evening_before || from < until,
            f("set_out_until"),
            "must be after set_out_from, unless set_out_evening_before is true",
        );
    }
    let (valid_from, valid_to) = match &s.valid {
        None => (None, None),
        Some(p) => {
            let from = parse_day(&p.start_date, &f("valid.start_date"), v);
            let to = parse_optional_day(&p.end_date, &f("valid.end_date"), v).flatten();
            if let (Some(a), Some(b)) = (from, to) {
                v.check(
                    a <= b,
                    f("valid.end_date"),
                    "must not be before valid.start_date",
                );
            }
            (from, to)
        }
    };
    check_text(&s.container, MAX_NAME_LEN, &f("container"), v);
    check_text(&s.notes, MAX_TEXT_LEN, &f("notes"), v);
    Schedule {
        id,
        zone_id: s.zone_id.clone(),
        user_type,
        fraction,
        eer_codes,
        weekdays,
        every_weeks: s.every_weeks.clamp(1, MAX_EVERY_WEEKS) as u32,
        anchor_date,
        set_out_from: set_out_from.unwrap_or_default(),
        set_out_until: set_out_until.unwrap_or_default(),
        set_out_evening_before: s.set_out_evening_before,
        container: s.container.trim().to_owned(),
        valid_from,
        valid_to,
        notes: s.notes.trim().to_owned(),
    }
}

fn validate_centre(
    c: &pb::WasteCollectionCentre,
    istat_code: &str,
    index: usize,
    field: &str,
    v: &mut Violations,
) -> Centre {
    let f = |name: &str| format!("{field}.{name}");
    let id = if c.id.trim().is_empty() {
        format!("{istat_code}-CCR{}", index + 1)
    } else {
        c.id.trim().to_owned()
    };
    v.check(
        valid_id(&id) && id.starts_with(&format!("{istat_code}-")),
        f("id"),
        format!("must be `{istat_code}-` followed by the comune's own code (at most 64 printable characters), or empty to have one assigned"),
    );
    v.check(
        c.istat_code.is_empty() || c.istat_code == istat_code,
        f("istat_code"),
        format!("must be empty or {istat_code}"),
    );
    let name = required_text(&c.name, MAX_NAME_LEN, &f("name"), v);
    let address = c
        .address
        .as_ref()
        .map(|a| validate_address(a, istat_code, &f("address"), v));
    let point = c.geo.as_ref().and_then(|g| geo::validate(g, &f("geo"), v));
    let opening_hours = required_text(&c.opening_hours, MAX_NAME_LEN, &f("opening_hours"), v);
    v.check(
        !c.accepted_fractions.is_empty(),
        f("accepted_fractions"),
        "list at least one fraction",
    );
    let fractions: Vec<Fraction> = c
        .accepted_fractions
        .iter()
        .enumerate()
        .map(|(i, x)| {
            required_enum(
                *x,
                Fraction::Unspecified,
                &format!("{field}.accepted_fractions[{i}]"),
                "WasteFraction",
                v,
            )
        })
        .collect();
    let eer_codes = if c.accepted_eer_codes.is_empty() {
        fractions
            .iter()
            .flat_map(|f| default_eer_codes(*f).iter().map(|c| (*c).to_owned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        eer_list(
            &c.accepted_eer_codes,
            Fraction::Unspecified,
            &f("accepted_eer_codes"),
            v,
        )
    };
    let mut user_types: Vec<UserType> = c
        .user_types
        .iter()
        .enumerate()
        .map(|(i, u)| {
            required_enum(
                *u,
                UserType::Unspecified,
                &format!("{field}.user_types[{i}]"),
                "WasteUserType",
                v,
            )
        })
        .collect();
    if user_types.is_empty() {
        user_types = vec![UserType::Domestic, UserType::NonDomestic];
    }
    check_text(&c.notes, MAX_TEXT_LEN, &f("notes"), v);
    Centre {
        id,
        name,
        address,
        point,
        opening_hours,
        fractions,
        eer_codes,
        user_types,
        notes: c.notes.trim().to_owned(),
    }
}

/// A validated calendar change as a client sent it (no id or time yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// Day.
    pub date: NaiveDate,
    /// Zone, or every zone.
    pub zone_id: Option<String>,
    /// User type, or both.
    pub user_type: Option<UserType>,
    /// Fraction, or every fraction.
    pub fraction: Option<Fraction>,
    /// Day moved to, or cancelled.
    pub moved_to: Option<NaiveDate>,
    /// Reason.
    pub reason: String,
}

impl NewChange {
    /// The stored form.
    pub fn into_change(self, id: String, created_at: DateTime<Utc>) -> Change {
        Change {
            id,
            date: self.date,
            zone_id: self.zone_id,
            user_type: self.user_type,
            fraction: self.fraction,
            moved_to: self.moved_to,
            reason: self.reason,
            created_at,
        }
    }
}

/// The fields a change shares between `RescheduleWasteCollectionRequest` and `WasteCalendarChange`.
pub struct ChangeFields<'a> {
    /// Day.
    pub date: &'a str,
    /// Zone id or empty.
    pub zone_id: &'a str,
    /// User type number.
    pub user_type: i32,
    /// Fraction number.
    pub fraction: i32,
    /// Day moved to, or empty.
    pub moved_to_date: &'a str,
    /// Reason.
    pub reason: &'a str,
}

/// Validates a change; `known_zone` tells whether a zone id belongs to the comune, and `not_before`
/// (today, for operators' reschedules) bounds both days when given.
pub fn validate_change(
    c: &ChangeFields<'_>,
    known_zone: &dyn Fn(&str) -> bool,
    not_before: Option<NaiveDate>,
    prefix: &str,
    v: &mut Violations,
) -> NewChange {
    let f = |name: &str| format!("{prefix}{name}");
    let date = parse_day(c.date, &f("date"), v);
    let moved_to = parse_optional_day(c.moved_to_date, &f("moved_to_date"), v).flatten();
    if let Some(today) = not_before {
        if let Some(d) = date {
            v.check(
                d >= today,
                f("date"),
                format!("must not be before today ({today})"),
            );
        }
        if let Some(d) = moved_to {
            v.check(
                d >= today,
                f("moved_to_date"),
                format!("must not be before today ({today})"),
            );
        }
    }
    if let (Some(d), Some(m)) = (date, moved_to) {
        v.check(
            d != m,
            f("moved_to_date"),
            "must differ from date (leave it empty to cancel)",
        );
    }
    let zone_id = Some(c.zone_id.trim()).filter(|z| !z.is_empty());
    if let Some(z) = zone_id {
        v.check(
            known_zone(z),
            f("zone_id"),
            format!("`{z}` is not a zone of the comune; leave it empty for every zone"),
        );
    }
    let user_type = optional_enum(
        c.user_type,
        UserType::Unspecified,
        &f("user_type"),
        "WasteUserType",
        v,
    );
    let fraction = optional_enum(
        c.fraction,
        Fraction::Unspecified,
        &f("fraction"),
        "WasteFraction",
        v,
    );
    let reason = required_text(c.reason, MAX_NAME_LEN, &f("reason"), v);
    NewChange {
        date: date.unwrap_or_default(),
        zone_id: zone_id.map(str::to_owned),
        user_type,
        fraction,
        moved_to,
        reason,
    }
}

/// Validates a `ReplaceWasteCalendarRequest` as a whole: every item, ids unique, references
/// resolved, no street stretch in two zones.
pub fn validate_setup(req: &pb::ReplaceWasteCalendarRequest) -> Result<Setup, Violations> {
    let mut v = Violations::new();
    super::check_istat(&req.istat_code, "istat_code", &mut v);
    let istat = req.istat_code.as_str();
    v.check(
        req.zones.len() <= MAX_ZONES,
        "zones",
        format!("at most {MAX_ZONES} zones"),
    );
    v.check(
        !req.zones.is_empty(),
        "zones",
        "list at least one zone (a zona unica with no streets covers the whole comune)",
    );
    for (what, n) in [
        ("schedules", req.schedules.len()),
        ("centres", req.centres.len()),
        ("changes", req.changes.len()),
    ] {
        v.check(
            n <= MAX_SETUP_ITEMS,
            what,
            format!("at most {MAX_SETUP_ITEMS} items"),
        );
    }
    let zones: Vec<Zone> = req
        .zones
        .iter()
        .take(MAX_ZONES)
        .enumerate()
        .map(|(i, z)| validate_zone(z, istat, &format!("zones[{i}]"), &mut v))
        .collect();
    let mut ids = BTreeSet::new();
    for (i, z) in zones.iter().enumerate() {
        v.check(
            ids.insert(z.id.clone()),
            format!("zones[{i}].id"),
            format!("`{}` is used by another zone", z.id),
        );
    }
    // A house in two zones would have two calendars: refuse overlapping stretches.
    let mut by_street: BTreeMap<String, Vec<(usize, usize, &Stretch)>> = BTreeMap::new();
    for (i, z) in zones.iter().enumerate() {
        for (j, s) in z.streets.iter().enumerate() {
            by_street
                .entry(street_key(&s.street))
                .or_default()
                .push((i, j, s));
        }
    }
    for stretches in by_street.values() {
        for (k, (i, j, s)) in stretches.iter().enumerate() {
            if let Some((oi, oj, _)) = stretches[..k]
                .iter()
                .find(|(oi, _, o)| oi != i && o.overlaps(s))
            {
                v.add(
                    format!("zones[{i}].streets[{j}]"),
                    format!(
                        "overlaps zones[{oi}].streets[{oj}]: a house number belongs to one zone"
                    ),
                );
            }
        }
    }
    let schedules: Vec<Schedule> = req
        .schedules
        .iter()
        .take(MAX_SETUP_ITEMS)
        .enumerate()
        .map(|(i, s)| validate_schedule(s, istat, &ids, i, &format!("schedules[{i}]"), &mut v))
        .collect();
    let mut seen = BTreeSet::new();
    for (i, s) in schedules.iter().enumerate() {
        v.check(
            seen.insert(s.id.clone()),
            format!("schedules[{i}].id"),
            format!("`{}` is used by another schedule", s.id),
        );
    }
    let centres: Vec<Centre> = req
        .centres
        .iter()
        .take(MAX_SETUP_ITEMS)
        .enumerate()
        .map(|(i, c)| validate_centre(c, istat, i, &format!("centres[{i}]"), &mut v))
        .collect();
    let mut seen = BTreeSet::new();
    for (i, c) in centres.iter().enumerate() {
        v.check(
            seen.insert(c.id.clone()),
            format!("centres[{i}].id"),
            format!("`{}` is used by another centre", c.id),
        );
    }
    let known = |z: &str| ids.contains(z);
    let changes: Vec<Change> = req
        .changes
        .iter()
        .take(MAX_SETUP_ITEMS)
        .enumerate()
        .map(|(i, c)| {
            validate_change(
                &ChangeFields {
                    date: &c.date,
                    zone_id: &c.zone_id,
                    user_type: c.user_type,
                    fraction: c.fraction,
                    moved_to_date: &c.moved_to_date,
                    reason: &c.reason,
                },
                &known,
                None,
                &format!("changes[{i}]."),
                &mut v,
            )
            .into_change(String::new(), DateTime::<Utc>::MIN_UTC)
        })
        .collect();
    if !v.is_empty() {
        return Err(v);
    }
    Ok(Setup {
        istat_code: istat.to_owned(),
        zones,
        schedules,
        centres,
        changes,
    })
}

/// Pickups a comune's crews take per collection day, after its size: a crew loads about ten
/// addresses a day and a comune runs one crew per ten thousand inhabitants, at least three
/// bookings and at most sixty a day (Palermo).
pub fn daily_capacity(population: u32) -> u32 {
    (population / 10_000 + 3).clamp(3, 60)
}

/// A validated bulky-waste booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    /// Canonical codice fiscale.
    pub fiscal_code: String,
    /// ISTAT code of the comune (from the address).
    pub istat_code: String,
    /// Where to collect.
    pub address: ReportAddress,
    /// Items.
    pub items: Vec<Item>,
    /// Earliest day asked for.
    pub earliest_date: Option<NaiveDate>,
    /// Phone for the crew.
    pub contact_phone: String,
    /// Notes.
    pub notes: String,
}

/// One kind of item to collect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    /// What it is.
    pub description: String,
    /// Fraction number (BULKY or WEEE).
    pub fraction: i32,
    /// Pieces.
    pub quantity: i32,
}

impl BookingRequest {
    /// Pieces booked in all.
    pub fn pieces(&self) -> i64 {
        self.items.iter().map(|i| i64::from(i.quantity)).sum()
    }
}

/// True for a phone number of 6 to 15 digits, optionally after `+`, with spaces allowed.
pub fn is_phone(s: &str) -> bool {
    let t = s.trim();
    let body = t.strip_prefix('+').unwrap_or(t);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    (6..=15).contains(&digits) && body.chars().all(|c| c.is_ascii_digit() || c == ' ')
}

/// Validates a `BookBulkyWastePickupRequest` (the per-booking limit is a precondition, checked by
/// [`pieces_refusal`]).
pub fn validate_booking(
    req: &pb::BookBulkyWastePickupRequest,
) -> Result<BookingRequest, Violations> {
    let mut v = Violations::new();
    let fiscal_code = match ids::canonical_fiscal_code(&req.fiscal_code) {
        Ok(cf) => cf,
        Err(e) => {
            v.add("fiscal_code", format!("is not a valid codice fiscale: {e}"));
            String::new()
        }
    };
    let (istat_code, address) = match &req.address {
        None => {
            v.add("address", "must be set: where the crew collects");
            (String::new(), ReportAddress::default())
        }
        Some(a) => {
            super::check_istat(&a.istat_code, "address.istat_code", &mut v);
            (
                a.istat_code.clone(),
                validate_address(a, &a.istat_code, "address", &mut v),
            )
        }
    };
    v.check(
        (1..=MAX_ITEM_KINDS).contains(&req.items.len()),
        "items",
        format!("list 1 to {MAX_ITEM_KINDS} kinds of items"),
    );
    let items = req
        .items
        .iter()
        .take(MAX_ITEM_KINDS)
        .enumerate()
        .map(|(i, it)| {
            let f = |name: &str| format!("items[{i}].{name}");
            let description =
                required_text(&it.description, MAX_NAME_LEN, &f("description"), &mut v);
            v.check(
                it.fraction == Fraction::Bulky as i32 || it.fraction == Fraction::Weee as i32,
                f("fraction"),
                "must be BULKY or WEEE",
            );
            v.check(
                (1..=100).contains(&it.quantity),
                f("quantity"),
                "must be at least 1",
            );
            Item {
                description,
                fraction: it.fraction,
                quantity: it.quantity,
            }
        })
        .collect();
    let earliest_date = parse_optional_day(&req.earliest_date, "earliest_date", &mut v).flatten();
    v.check(
        is_phone(&req.contact_phone),
        "contact_phone",
        "must be a phone number of 6 to 15 digits, e.g. +39 091 123456",
    );
    check_text(&req.notes, MAX_TEXT_LEN, "notes", &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    Ok(BookingRequest {
        fiscal_code,
        istat_code,
        address,
        items,
        earliest_date,
        contact_phone: req.contact_phone.trim().to_owned(),
        notes: req.notes.trim().to_owned(),
    })
}

/// The refusal of a booking over the per-booking limit; `None` within it.
pub fn pieces_refusal(req: &BookingRequest) -> Option<ServiceError> {
    let pieces = req.pieces();
    (pieces > i64::from(MAX_PIECES_PER_BOOKING)).then(|| {
        ServiceError::FailedPrecondition(format!(
            "{pieces} pieces exceed the limit of {MAX_PIECES_PER_BOOKING} per booking: split them over several bookings or bring them to a collection centre"
        ))
    })
}

/// The first day on or after `start` and within [`BOOKING_HORIZON_DAYS`] of `today` on which the
/// crew collects (`collects`) and fewer than `capacity` pickups are booked (`booked`).
pub fn first_free_day(
    start: NaiveDate,
    today: NaiveDate,
    capacity: u32,
    collects: impl Fn(NaiveDate) -> bool,
    booked: impl Fn(NaiveDate) -> u32,
) -> Option<NaiveDate> {
    let last = today + Duration::days(BOOKING_HORIZON_DAYS);
    start
        .iter_days()
        .take_while(|d| *d <= last)
        .find(|d| collects(*d) && booked(*d) < capacity)
}

/// The first day a pickup asked at `today` may fall on, after the notice and the citizen's wish.
pub fn earliest_pickup(today: NaiveDate, wished: Option<NaiveDate>) -> NaiveDate {
    let first = today + Duration::days(MIN_NOTICE_DAYS);
    wished.map_or(first, |w| w.max(first))
}

/// Why pickup `id` on `pickup_date` in status `status` cannot be cancelled at `today`.
pub fn cancel_refusal(
    id: &str,
    status: pb::BulkyWastePickupStatus,
    pickup_date: NaiveDate,
    today: NaiveDate,
) -> Option<ServiceError> {
    if status != pb::BulkyWastePickupStatus::Booked {
        return Some(ServiceError::FailedPrecondition(format!(
            "pickup {id} cannot be cancelled: it is {}",
            pickup_status_name(status)
        )));
    }
    (today >= pickup_date).then(|| {
        ServiceError::FailedPrecondition(format!(
            "pickup {id} cannot be cancelled: pickups can be cancelled until the day before ({})",
            pickup_date.pred_opt().unwrap_or(pickup_date)
        ))
    })
}

/// Why the outcome `outcome` cannot be recorded for pickup `id` at `today`.
pub fn complete_refusal(
    id: &str,
    status: pb::BulkyWastePickupStatus,
    pickup_date: NaiveDate,
    today: NaiveDate,
) -> Option<ServiceError> {
    if status != pb::BulkyWastePickupStatus::Booked {
        return Some(ServiceError::FailedPrecondition(format!(
            "pickup {id} already has its outcome: it is {}",
            pickup_status_name(status)
        )));
    }
    (pickup_date > today).then(|| {
        ServiceError::FailedPrecondition(format!(
            "pickup {id} is due on {pickup_date}: its outcome can be recorded from that day"
        ))
    })
}

/// Short name of a pickup status: `BOOKED`.
pub fn pickup_status_name(s: pb::BulkyWastePickupStatus) -> &'static str {
    s.as_str_name()
        .strip_prefix("BULKY_WASTE_PICKUP_STATUS_")
        .unwrap_or("UNSPECIFIED")
}

/// The booking code written on the items, from the pickup id.
pub fn pickup_code(id: &uuid::Uuid) -> String {
    let hex = id.simple().to_string().to_ascii_uppercase();
    format!("ING-{}", &hex[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::{Address, Period};

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn schedule(id: &str, fraction: Fraction, weekdays: &[u32]) -> Schedule {
        Schedule {
            id: id.into(),
            zone_id: "082053-Z1".into(),
            user_type: UserType::Domestic,
            fraction,
            eer_codes: default_eer_codes(fraction)
                .iter()
                .map(|c| (*c).into())
                .collect(),
            weekdays: weekdays.to_vec(),
            every_weeks: 1,
            anchor_date: None,
            set_out_from: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            set_out_until: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            set_out_evening_before: true,
            container: "mastello".into(),
            valid_from: None,
            valid_to: None,
            notes: String::new(),
        }
    }

    fn change(date: &str, moved_to: Option<&str>, fraction: Option<Fraction>) -> Change {
        Change {
            id: "c1".into(),
            date: day(date),
            zone_id: None,
            user_type: None,
            fraction,
            moved_to: moved_to.map(day),
            reason: "Festività".into(),
            created_at: DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    #[test]
    fn eer_codes() {
        for ok in ["20 01 08", "20 01 35*", "15 01 02"] {
            assert!(is_eer_code(ok), "{ok}");
        }
        for bad in [
            "200108",
            "20 01 8",
            "20-01-08",
            "20 01 08**",
            "",
            "ab cd ef",
        ] {
            assert!(!is_eer_code(bad), "{bad}");
        }
        for f in 1..=15 {
            let f = Fraction::try_from(f).unwrap();
            assert!(default_eer_codes(f).iter().all(|c| is_eer_code(c)), "{f:?}");
        }
    }

    #[test]
    fn streets_and_numbers() {
        assert_eq!(street_key(" Via  Maqueda "), "via maqueda");
        assert_eq!(street_key("V. Maqueda"), "via maqueda");
        assert_eq!(street_key("P.zza Verdi"), "piazza verdi");
        assert_eq!(street_key("Via dell’Orsa"), "via dell'orsa");
        assert_eq!(house_number_value("12/B"), Some(12));
        assert_eq!(house_number_value("snc"), None);
        assert_eq!(house_number_value(""), None);
        assert_eq!(house_number_value("99999999999999"), Some(999_999_999));
    }

    #[test]
    fn zones_are_found_by_street_and_number() {
        use pb::WasteZoneStreetSide as Side;
        let stretch = |street: &str, from, to, side| Stretch {
            street: street.into(),
            from_number: from,
            to_number: to,
            side,
        };
        let zones = vec![
            ZoneStreets {
                zone_id: "Z1".into(),
                stretches: vec![
                    stretch("Via Maqueda", 1, 199, Side::Both),
                    stretch("Via Roma", 0, 0, Side::Odd),
                ],
            },
            ZoneStreets {
                zone_id: "Z2".into(),
                stretches: vec![
                    stretch("Via Maqueda", 200, 0, Side::Both),
                    stretch("Via Roma", 0, 0, Side::Even),
                ],
            },
            ZoneStreets {
                zone_id: "Z9".into(),
                stretches: vec![],
            },
        ];
        let cases = [
            ("Via Maqueda", "12", ZoneMatch::Zone("Z1".into())),
            ("via maqueda", "199", ZoneMatch::Zone("Z1".into())),
            ("Via Maqueda", "200", ZoneMatch::Zone("Z2".into())),
            ("Via Maqueda", "1000/A", ZoneMatch::Zone("Z2".into())),
            ("Via Roma", "7", ZoneMatch::Zone("Z1".into())),
            ("Via Roma", "8", ZoneMatch::Zone("Z2".into())),
            ("Via Maqueda", "", ZoneMatch::NeedsHouseNumber),
            ("Via Libertà", "3", ZoneMatch::Zone("Z9".into())),
        ];
        for (street, number, want) in cases {
            assert_eq!(
                resolve_zone(&zones, street, number),
                want,
                "{street} {number}"
            );
        }
        assert_eq!(
            resolve_zone(&zones[..2], "Via Libertà", "3"),
            ZoneMatch::NoZone
        );
        assert!(stretch("Via Roma", 0, 0, Side::Odd).overlaps(&stretch(
            "Via Roma",
            5,
            9,
            Side::Both
        )));
        assert!(!stretch("Via Roma", 0, 0, Side::Odd).overlaps(&stretch(
            "Via Roma",
            0,
            0,
            Side::Even
        )));
        assert!(
            !stretch("Via Maqueda", 1, 199, Side::Both).overlaps(&stretch(
                "Via Maqueda",
                200,
                0,
                Side::Both
            ))
        );
    }

    #[test]
    fn schedules_collect_on_their_weekdays_and_weeks() {
        let mut glass = schedule("glass", Fraction::Glass, &[6]);
        glass.every_weeks = 2;
        glass.anchor_date = Some(day("2025-11-01")); // a Saturday
        let cases = [
            ("2025-11-01", true),
            ("2025-11-08", false),
            ("2025-11-15", true),
            ("2025-10-18", true),
            ("2025-10-25", false),
            ("2025-11-14", false),
        ];
        for (d, want) in cases {
            assert_eq!(glass.collects_on(day(d)), want, "{d}");
        }
        let mut paper = schedule("paper", Fraction::Paper, &[2]);
        paper.valid_from = Some(day("2025-11-01"));
        paper.valid_to = Some(day("2025-11-30"));
        assert!(!paper.collects_on(day("2025-10-28")));
        assert!(paper.collects_on(day("2025-11-04")));
        assert!(!paper.collects_on(day("2025-12-02")));
    }

    #[test]
    fn set_out_times_are_rome_wall_clock() {
        let organic = schedule("org", Fraction::Organic, &[1]);
        let (from, until) = organic.set_out(day("2026-01-12"));
        assert_eq!(from.to_rfc3339(), "2026-01-11T19:00:00+00:00");
        assert_eq!(until.to_rfc3339(), "2026-01-12T05:00:00+00:00");
        let (from, _) = organic.set_out(day("2026-07-13"));
        assert_eq!(from.to_rfc3339(), "2026-07-12T18:00:00+00:00");
    }

    /// "What is collected here on this date", with holidays: cancelled, moved away, moved in.
    #[test]
    fn collections_with_changes() {
        let schedules = vec![
            schedule("org", Fraction::Organic, &[1, 3, 5]),
            schedule("paper", Fraction::Paper, &[4]),
            schedule("res", Fraction::Residual, &[4]),
        ];
        let thu = "2025-12-25";
        let fractions = |cs: &[Collection]| {
            cs.iter()
                .map(|c| (c.fraction, c.cancelled, c.moved_from))
                .collect::<Vec<_>>()
        };
        // A plain Monday: organic only.
        let mon = collections_on(
            day("2025-12-22"),
            "082053-Z1",
            UserType::Domestic,
            &schedules,
            &[],
        );
        assert_eq!(fractions(&mon), [(Fraction::Organic, false, None)]);
        // Christmas: paper moved to Saturday, residual cancelled.
        let changes = vec![
            change(thu, Some("2025-12-27"), Some(Fraction::Paper)),
            change(thu, None, None),
        ];
        let xmas = collections_on(
            day(thu),
            "082053-Z1",
            UserType::Domestic,
            &schedules,
            &changes,
        );
        assert_eq!(
            fractions(&xmas),
            [
                (Fraction::Paper, true, None),
                (Fraction::Residual, true, None)
            ]
        );
        assert_eq!(
            xmas[0].change_reason,
            "Festività (raccolta spostata al 27/12/2025)"
        );
        assert_eq!(xmas[1].change_reason, "Festività");
        let sat = collections_on(
            day("2025-12-27"),
            "082053-Z1",
            UserType::Domestic,
            &schedules,
            &changes,
        );
        assert_eq!(fractions(&sat), [(Fraction::Paper, false, Some(day(thu)))]);
        assert_eq!(sat[0].date, day("2025-12-27"));
        // Other zones, other user types: nothing.
        assert!(
            collections_on(
                day(thu),
                "082053-Z2",
                UserType::Domestic,
                &schedules,
                &changes
            )
            .is_empty()
        );
        assert!(
            collections_on(
                day(thu),
                "082053-Z1",
                UserType::NonDomestic,
                &schedules,
                &changes
            )
            .is_empty()
        );
        // The narrower change wins over the comune-wide one.
        let mut zone_only = change(thu, Some("2025-12-26"), None);
        zone_only.zone_id = Some("082053-Z1".into());
        let changes = vec![change(thu, None, None), zone_only];
        let moved = collections_on(
            day("2025-12-26"),
            "082053-Z1",
            UserType::Domestic,
            &schedules,
            &changes,
        );
        assert_eq!(
            moved.len(),
            3,
            "Friday organic plus paper and residual moved in"
        );
    }

    fn zone(id: &str, streets: Vec<pb::WasteZoneStreet>) -> pb::WasteZone {
        pb::WasteZone {
            id: id.into(),
            name: format!("Zona {id}"),
            streets,
            ..Default::default()
        }
    }

    fn good_setup() -> pb::ReplaceWasteCalendarRequest {
        pb::ReplaceWasteCalendarRequest {
            istat_code: "082001".into(),
            zones: vec![zone("082001-U", vec![])],
            schedules: vec![pb::WasteCollectionSchedule {
                zone_id: "082001-U".into(),
                user_type: UserType::Domestic as i32,
                fraction: Fraction::Glass as i32,
                weekdays: vec![6],
                every_weeks: 2,
                anchor_date: "2025-11-01".into(),
                set_out_from: "20:00".into(),
                set_out_until: "06:00".into(),
                set_out_evening_before: true,
                valid: Some(Period {
                    start_date: "2025-01-01".into(),
                    end_date: String::new(),
                }),
                ..Default::default()
            }],
            centres: vec![pb::WasteCollectionCentre {
                name: "CCR".into(),
                opening_hours: "Mo-Sa 08:00-13:00".into(),
                accepted_fractions: vec![Fraction::Bulky as i32, Fraction::Weee as i32],
                ..Default::default()
            }],
            changes: vec![pb::WasteCalendarChange {
                date: "2025-12-25".into(),
                reason: "Natale".into(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn a_good_setup_gets_defaults() {
        let s = validate_setup(&good_setup()).unwrap();
        assert_eq!(s.schedules[0].id, "082001-U-S1");
        assert_eq!(s.schedules[0].eer_codes, ["20 01 02", "15 01 07"]);
        assert_eq!(s.centres[0].id, "082001-CCR1");
        assert_eq!(s.centres[0].eer_codes.len(), 5);
        assert_eq!(s.centres[0].user_types.len(), 2);
    }

    #[test]
    fn setup_violations_name_their_field() {
        type Edit = fn(&mut pb::ReplaceWasteCalendarRequest);
        let cases: &[(&str, Edit, &str)] = &[
            ("bad comune", |r| r.istat_code = "1".into(), "istat_code"),
            ("no zones", |r| r.zones.clear(), "zones"),
            (
                "zone of another comune",
                |r| r.zones[0].id = "082053-U".into(),
                "zones[0].id",
            ),
            (
                "duplicate zone",
                |r| r.zones.push(r.zones[0].clone()),
                "zones[1].id",
            ),
            (
                "overlapping streets",
                |r| {
                    let s = |from| pb::WasteZoneStreet {
                        street: "Via Roma".into(),
                        from_number: from,
                        ..Default::default()
                    };
                    r.zones.push(zone("082001-A", vec![s(1)]));
                    r.zones.push(zone("082001-B", vec![s(10)]));
                },
                "zones[2].streets[0]",
            ),
            (
                "unknown zone",
                |r| r.schedules[0].zone_id = "082001-X".into(),
                "schedules[0].zone_id",
            ),
            (
                "no weekdays",
                |r| r.schedules[0].weekdays.clear(),
                "schedules[0].weekdays",
            ),
            (
                "weekday 8",
                |r| r.schedules[0].weekdays = vec![8],
                "schedules[0].weekdays[0]",
            ),
            (
                "anchor on another weekday",
                |r| r.schedules[0].anchor_date = "2025-11-03".into(),
                "schedules[0].anchor_date",
            ),
            (
                "no anchor",
                |r| r.schedules[0].anchor_date.clear(),
                "schedules[0].anchor_date",
            ),
            (
                "bad time",
                |r| r.schedules[0].set_out_from = "8pm".into(),
                "schedules[0].set_out_from",
            ),
            (
                "bad EER",
                |r| r.schedules[0].eer_codes = vec!["200102".into()],
                "schedules[0].eer_codes[0]",
            ),
            (
                "until before from on the day",
                |r| r.schedules[0].set_out_evening_before = false,
                "schedules[0].set_out_until",
            ),
            (
                "no fraction",
                |r| r.schedules[0].fraction = 0,
                "schedules[0].fraction",
            ),
            (
                "schedule id of no comune",
                |r| r.schedules[0].id = "S1".into(),
                "schedules[0].id",
            ),
            (
                "centre id of another comune",
                |r| r.centres[0].id = "082053-CCR9".into(),
                "centres[0].id",
            ),
            (
                "centre without fractions",
                |r| r.centres[0].accepted_fractions.clear(),
                "centres[0].accepted_fractions",
            ),
            (
                "change without reason",
                |r| r.changes[0].reason.clear(),
                "changes[0].reason",
            ),
            (
                "change moved to itself",
                |r| r.changes[0].moved_to_date = "2025-12-25".into(),
                "changes[0].moved_to_date",
            ),
            (
                "change of an unknown zone",
                |r| r.changes[0].zone_id = "082001-X".into(),
                "changes[0].zone_id",
            ),
        ];
        for (case, edit, field) in cases {
            let mut r = good_setup();
            edit(&mut r);
            let v = validate_setup(&r).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
    }

    fn booking() -> pb::BookBulkyWastePickupRequest {
        pb::BookBulkyWastePickupRequest {
            fiscal_code: "RCCMNL83S18D969H".into(),
            address: Some(Address {
                street: "Via Roma".into(),
                house_number: "3".into(),
                istat_code: "082001".into(),
                ..Default::default()
            }),
            items: vec![pb::BulkyWasteItem {
                description: "materasso".into(),
                fraction: Fraction::Bulky as i32,
                quantity: 2,
            }],
            contact_phone: "+39 091 123456".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bookings() {
        let ok = validate_booking(&booking()).unwrap();
        assert_eq!(ok.istat_code, "082001");
        assert!(pieces_refusal(&ok).is_none());
        let mut big = booking();
        big.items[0].quantity = 6;
        let big = validate_booking(&big).unwrap();
        assert_eq!(
            pieces_refusal(&big).map(|e| e.code()),
            Some(tonic::Code::FailedPrecondition)
        );
        type Edit = fn(&mut pb::BookBulkyWastePickupRequest);
        let cases: &[(Edit, &str)] = &[
            (|r| r.fiscal_code.clear(), "fiscal_code"),
            (|r| r.address = None, "address"),
            (
                |r| r.address.as_mut().unwrap().istat_code.clear(),
                "address.istat_code",
            ),
            (|r| r.items.clear(), "items"),
            (
                |r| r.items[0].fraction = Fraction::Glass as i32,
                "items[0].fraction",
            ),
            (|r| r.items[0].quantity = 0, "items[0].quantity"),
            (|r| r.contact_phone = "call me".into(), "contact_phone"),
            (|r| r.earliest_date = "tomorrow".into(), "earliest_date"),
        ];
        for (edit, field) in cases {
            let mut r = booking();
            edit(&mut r);
            let v = validate_booking(&r).expect_err(field);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{field}: {v}"
            );
        }
    }

    #[test]
    fn the_first_free_collection_day_is_assigned() {
        let today = day("2025-11-03"); // a Monday
        let wednesdays = |d: NaiveDate| d.weekday().number_from_monday() == 3;
        let full_first = |d: NaiveDate| if d == day("2025-11-05") { 3 } else { 1 };
        let start = earliest_pickup(today, None);
        assert_eq!(start, day("2025-11-05"));
        assert_eq!(
            first_free_day(start, today, 3, wednesdays, |_| 0),
            Some(day("2025-11-05"))
        );
        assert_eq!(
            first_free_day(start, today, 3, wednesdays, full_first),
            Some(day("2025-11-12"))
        );
        assert_eq!(
            earliest_pickup(today, Some(day("2025-11-20"))),
            day("2025-11-20")
        );
        assert_eq!(earliest_pickup(today, Some(day("2025-11-01"))), start);
        assert_eq!(first_free_day(start, today, 3, |_| false, |_| 0), None);
        assert_eq!(first_free_day(start, today, 0, wednesdays, |_| 0), None);
        assert_eq!(daily_capacity(657_561), 60);
        assert_eq!(daily_capacity(54_000), 8);
        assert_eq!(daily_capacity(1_000), 3);
    }

    #[test]
    fn cancelling_and_completing() {
        use pb::BulkyWastePickupStatus as S;
        let d = day("2025-11-12");
        assert!(cancel_refusal("p", S::Booked, d, day("2025-11-11")).is_none());
        assert!(cancel_refusal("p", S::Booked, d, d).is_some());
        assert!(cancel_refusal("p", S::Collected, d, day("2025-11-01")).is_some());
        assert!(complete_refusal("p", S::Booked, d, d).is_none());
        assert!(complete_refusal("p", S::Booked, d, day("2025-11-11")).is_some());
        assert!(
            complete_refusal("p", S::Cancelled, d, d)
                .unwrap()
                .to_string()
                .contains("CANCELLED")
        );
        assert_eq!(
            pickup_code(&uuid::Uuid::from_u128(
                0xabcd_ef01_0000_0000_0000_0000_0000_0000
            )),
            "ING-ABCDEF01"
        );
    }
}
