//! Citizens' reports (segnalazioni), after Open311 GeoReport v2: what a valid report is, the
//! workflow as a pure state machine, and when a new report duplicates an open one.
//!
//! ```text
//! OPEN ──acknowledge──▶ ACKNOWLEDGED ──start──▶ IN_PROGRESS
//!   │                       │  │                   │  │
//!   │                       │  └──────resolve──────┼──┴──▶ RESOLVED
//!   └──────────reject───────┴──────────────────────┴──────▶ REJECTED
//! ```
//! Notes may be added in any status and change none. Anything else is refused with
//! FAILED_PRECONDITION naming both states, so an operator learns what was tried and where the report
//! stands.
//!
//! Duplicates: a report of the same category within [`LINK_RADIUS_M`] of a report still open that
//! was filed in the [`LINK_WINDOW_DAYS`] before is linked to it instead of opening a second case;
//! the comune then works one case and every reporter follows it.

use chrono::{DateTime, Duration, Utc};
use patto_proto::common::v1::Address;
use patto_proto::environment::v1 as pb;
use patto_proto::environment::v1::EnvironmentReportStatus as Status;
use patto_service_kit::comuni;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::ids;

use super::geo::{self, Point};
use super::{MAX_NAME_LEN, MAX_TEXT_LEN, check_istat, check_text, fits};

/// Radius within which a report of the same category duplicates an open one, in metres.
pub const LINK_RADIUS_M: f64 = 50.0;
/// Days back within which an open report of the same category absorbs a new one.
pub const LINK_WINDOW_DAYS: i64 = 7;
/// Shortest description accepted: enough words for the crew to know what to look for.
pub const MIN_DESCRIPTION_LEN: usize = 10;
/// Photos one report may carry.
pub const MAX_PHOTOS: usize = 5;
/// Largest photo accepted, in bytes (10 MiB).
pub const MAX_PHOTO_BYTES: i64 = 10 * 1024 * 1024;
/// Media types accepted for photos.
pub const PHOTO_MEDIA_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/heic"];
/// Where uploaded documents are served, by content hash: the photo's `url` is this followed by its
/// SHA-256, so the address follows from the metadata the citizen sent.
pub const PHOTO_URL_PREFIX: &str = "/documents/sha256/";

/// Statuses in which a report is still open (Open311 `open`).
pub const OPEN: [Status; 3] = [Status::Open, Status::Acknowledged, Status::InProgress];
/// Statuses that close a report (Open311 `closed`).
pub const CLOSED: [Status; 2] = [Status::Resolved, Status::Rejected];
/// Every status (the unspecified zero value excluded).
pub const STATUSES: [Status; 5] = [
    Status::Open,
    Status::Acknowledged,
    Status::InProgress,
    Status::Resolved,
    Status::Rejected,
];

/// Metadata of a photo, as stored with its report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Photo {
    /// File name as uploaded.
    pub file_name: String,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Media type.
    pub media_type: String,
}

impl Photo {
    /// The wire form, with the download address.
    pub fn to_proto(&self) -> pb::EnvironmentReportPhoto {
        pb::EnvironmentReportPhoto {
            file_name: self.file_name.clone(),
            sha256: self.sha256.clone(),
            size_bytes: self.size_bytes,
            media_type: self.media_type.clone(),
            url: format!("{PHOTO_URL_PREFIX}{}", self.sha256),
        }
    }
}

/// The place of a report as far as duplicate detection is concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The point, when one was given.
    pub point: Option<Point>,
    /// Normalised street and house number, when an address was given: two address-only reports are
    /// at the same place when these match (without a geocoder, that is all the service can tell).
    pub address_key: Option<String>,
}

/// A validated address of a report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportAddress {
    /// Street with toponym.
    pub street: String,
    /// House number.
    pub house_number: String,
    /// CAP.
    pub postal_code: String,
    /// Locality or frazione.
    pub locality: String,
}

/// A validated new report, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    /// ISTAT code of the comune.
    pub istat_code: String,
    /// Category.
    pub category: pb::EnvironmentReportCategory,
    /// Description.
    pub description: String,
    /// Point, if given.
    pub point: Option<Point>,
    /// Address, if given.
    pub address: Option<ReportAddress>,
    /// Hint about the place.
    pub location_note: String,
    /// Photos.
    pub photos: Vec<Photo>,
    /// Canonical codice fiscale of the reporter, if identified.
    pub fiscal_code: Option<String>,
}

impl NewReport {
    /// Where it is, for duplicate detection.
    pub fn place(&self) -> Place {
        Place {
            point: self.point,
            address_key: self
                .address
                .as_ref()
                .and_then(|a| address_key(&a.street, &a.house_number)),
        }
    }
}

/// The key two address-only reports are compared by: the normalised street and house number, or
/// `None` when the house number is missing (a whole street is no place).
pub fn address_key(street: &str, house_number: &str) -> Option<String> {
    let number = house_number.trim().to_lowercase();
    if number.is_empty() || street.trim().is_empty() {
        return None;
    }
    Some(format!("{}|{number}", super::waste::street_key(street)))
}

/// Validates an address given by a client for comune `istat_code`; `field` is its path.
pub fn validate_address(
    a: &Address,
    istat_code: &str,
    field: &str,
    v: &mut Violations,
) -> ReportAddress {
    let f = |name: &str| format!("{field}.{name}");
    let street = a.street.trim();
    v.check(!street.is_empty(), f("street"), "must not be empty");
    check_text(street, MAX_NAME_LEN, &f("street"), v);
    check_text(a.house_number.trim(), 20, &f("house_number"), v);
    check_text(a.locality.trim(), MAX_NAME_LEN, &f("locality"), v);
    v.check(
        a.istat_code.is_empty() || a.istat_code == istat_code,
        f("istat_code"),
        format!("must be empty or {istat_code}, the comune of the request"),
    );
    let postal_code = a.postal_code.trim();
    if !postal_code.is_empty() {
        let known = comuni::by_istat(istat_code)
            .is_none_or(|c| c.postal_codes.iter().any(|p| p == postal_code));
        v.check(
            known,
            f("postal_code"),
            format!("`{postal_code}` is not a CAP of comune {istat_code}"),
        );
    }
    ReportAddress {
        street: street.to_owned(),
        house_number: a.house_number.trim().to_owned(),
        postal_code: postal_code.to_owned(),
        locality: a.locality.trim().to_owned(),
    }
}

fn validate_photo(p: &pb::EnvironmentReportPhoto, field: &str, v: &mut Violations) -> Photo {
    let f = |name: &str| format!("{field}.{name}");
    let file_name = p.file_name.trim();
    v.check(
        !file_name.is_empty() && fits(file_name, MAX_NAME_LEN),
        f("file_name"),
        format!("must be 1 to {MAX_NAME_LEN} characters"),
    );
    v.check(
        p.sha256.len() == 64
            && p.sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        f("sha256"),
        "must be the SHA-256 of the file as 64 lower-case hex characters",
    );
    v.check(
        (1..=MAX_PHOTO_BYTES).contains(&p.size_bytes),
        f("size_bytes"),
        format!("must be between 1 and {MAX_PHOTO_BYTES} bytes (10 MiB)"),
    );
    v.check(
        PHOTO_MEDIA_TYPES.contains(&p.media_type.as_str()),
        f("media_type"),
        format!("must be one of {}", PHOTO_MEDIA_TYPES.join(", ")),
    );
    Photo {
        file_name: file_name.to_owned(),
        sha256: p.sha256.clone(),
        size_bytes: p.size_bytes,
        media_type: p.media_type.clone(),
    }
}

/// Validates a `CreateEnvironmentReportRequest`.
pub fn validate_create(req: &pb::CreateEnvironmentReportRequest) -> Result<NewReport, Violations> {
    let mut v = Violations::new();
    check_istat(&req.istat_code, "istat_code", &mut v);
    let category = match pb::EnvironmentReportCategory::try_from(req.category) {
        Ok(c) if c != pb::EnvironmentReportCategory::Unspecified => c,
        _ => {
            v.add(
                "category",
                "must be one of the EnvironmentReportCategory values, e.g. ABANDONED_WASTE",
            );
            pb::EnvironmentReportCategory::Unspecified
        }
    };
    let description = req.description.trim();
    v.check(
        description.chars().count() >= MIN_DESCRIPTION_LEN && fits(description, MAX_TEXT_LEN),
        "description",
        format!(
            "must be {MIN_DESCRIPTION_LEN} to {MAX_TEXT_LEN} characters: say what the problem is"
        ),
    );
    let point = req
        .geo
        .as_ref()
        .and_then(|g| geo::validate(g, "geo", &mut v));
    let address = req
        .address
        .as_ref()
        .map(|a| validate_address(a, &req.istat_code, "address", &mut v));
    v.check(
        req.geo.is_some() || req.address.is_some(),
        "geo",
        "give the point (geo) or the address (address) of the problem",
    );
    check_text(
        req.location_note.trim(),
        MAX_NAME_LEN,
        "location_note",
        &mut v,
    );
    v.check(
        req.photos.len() <= MAX_PHOTOS,
        "photos",
        format!("at most {MAX_PHOTOS} photos"),
    );
    let photos = req
        .photos
        .iter()
        .enumerate()
        .take(MAX_PHOTOS)
        .map(|(i, p)| validate_photo(p, &format!("photos[{i}]"), &mut v))
        .collect();
    let fiscal_code = if req.fiscal_code.trim().is_empty() {
        None
    } else {
        match ids::canonical_fiscal_code(&req.fiscal_code) {
            Ok(cf) => Some(cf),
            Err(e) => {
                v.add("fiscal_code", format!("is not a valid codice fiscale: {e}"));
                None
            }
        }
    };
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewReport {
        istat_code: req.istat_code.clone(),
        category,
        description: description.to_owned(),
        point,
        address,
        location_note: req.location_note.trim().to_owned(),
        photos,
        fiscal_code,
    })
}

/// An existing report as duplicate detection sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Id.
    pub id: String,
    /// Category.
    pub category: pb::EnvironmentReportCategory,
    /// Status.
    pub status: Status,
    /// The report it is itself linked to, if any.
    pub linked_to: Option<String>,
    /// When it was filed.
    pub created_at: DateTime<Utc>,
    /// Where it is.
    pub place: Place,
}

/// How far apart two places are, in metres: the haversine distance of their points, 0 for the same
/// address when a point is missing, `None` when they cannot be compared.
pub fn place_distance(a: &Place, b: &Place) -> Option<f64> {
    match (a.point, b.point) {
        (Some(p), Some(q)) => Some(geo::distance_m(p, q)),
        _ => match (&a.address_key, &b.address_key) {
            (Some(x), Some(y)) if x == y => Some(0.0),
            _ => None,
        },
    }
}

/// True when `existing` absorbs a new report of `category` at `place` filed at `now`: same
/// category, still open, not itself linked, filed within the [`LINK_WINDOW_DAYS`] before `now`, and
/// within [`LINK_RADIUS_M`].
pub fn absorbs(
    existing: &Candidate,
    category: pb::EnvironmentReportCategory,
    place: &Place,
    now: DateTime<Utc>,
) -> bool {
    existing.category == category
        && OPEN.contains(&existing.status)
        && existing.linked_to.is_none()
        && existing.created_at <= now
        && now - existing.created_at <= Duration::days(LINK_WINDOW_DAYS)
        && place_distance(&existing.place, place).is_some_and(|d| d <= LINK_RADIUS_M)
}

/// The report a new one duplicates, if any: of those that absorb it, the nearest, then the oldest
/// (the case most likely already in the crew's hands).
pub fn link_target<'a>(
    candidates: &'a [Candidate],
    category: pb::EnvironmentReportCategory,
    place: &Place,
    now: DateTime<Utc>,
) -> Option<&'a Candidate> {
    candidates
        .iter()
        .filter(|c| absorbs(c, category, place, now))
        .min_by(|a, b| {
            let da = place_distance(&a.place, place).unwrap_or(f64::MAX);
            let db = place_distance(&b.place, place).unwrap_or(f64::MAX);
            da.total_cmp(&db)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        })
}

/// Something an operator does to a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Takes an open report in charge.
    Acknowledge,
    /// Starts the work on the ground.
    Start,
    /// Closes it as fixed.
    Resolve,
    /// Closes it as not acted upon.
    Reject,
    /// Adds a note; the status stays.
    Note,
}

impl Action {
    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Start => "start",
            Self::Resolve => "resolve",
            Self::Reject => "reject",
            Self::Note => "add a note to",
        }
    }

    /// True when the action may be taken on a report in status `from`.
    pub fn allowed_from(self, from: Status) -> bool {
        match self {
            Self::Acknowledge => from == Status::Open,
            Self::Start => from == Status::Acknowledged,
            Self::Resolve => matches!(from, Status::Acknowledged | Status::InProgress),
            Self::Reject => OPEN.contains(&from),
            Self::Note => STATUSES.contains(&from),
        }
    }

    /// The status the action leads to from `from`.
    pub fn target(self, from: Status) -> Status {
        match self {
            Self::Acknowledge => Status::Acknowledged,
            Self::Start => Status::InProgress,
            Self::Resolve => Status::Resolved,
            Self::Reject => Status::Rejected,
            Self::Note => from,
        }
    }
}

/// Short name of a status, as messages show it: `IN_PROGRESS`.
pub fn status_name(s: Status) -> &'static str {
    s.as_str_name()
        .strip_prefix("ENVIRONMENT_REPORT_STATUS_")
        .unwrap_or("UNSPECIFIED")
}

/// The status `action` leads report `id` to from `from`, or FAILED_PRECONDITION naming both states
/// and the states the action is allowed from.
pub fn transition(id: &str, from: Status, action: Action) -> Result<Status, ServiceError> {
    let to = action.target(from);
    if action.allowed_from(from) {
        return Ok(to);
    }
    let sources: Vec<&str> = STATUSES
        .iter()
        .filter(|s| action.allowed_from(**s))
        .map(|s| status_name(*s))
        .collect();
    Err(ServiceError::FailedPrecondition(format!(
        "report {id} cannot go from {} to {} ({}): allowed only from {}",
        status_name(from),
        status_name(to),
        action.name(),
        sources.join(", ")
    )))
}

/// The refusal for acting on a report that is linked to another one.
pub fn linked_refusal(id: &str, primary: &str, action: Action) -> ServiceError {
    ServiceError::FailedPrecondition(format!(
        "report {id} is linked to report {primary}, which carries the workflow: {} report {primary} instead",
        action.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::GeoPoint;
    use pb::EnvironmentReportCategory as Cat;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    const ORIGIN: Point = Point {
        lat: 38.1158,
        lon: 13.3619,
    };

    fn open_report(north_m: f64, days_ago: i64) -> Candidate {
        Candidate {
            id: "r1".into(),
            category: Cat::AbandonedWaste,
            status: Status::Open,
            linked_to: None,
            created_at: now() - Duration::days(days_ago),
            place: Place {
                point: Some(ORIGIN.offset(north_m, 0.0)),
                address_key: None,
            },
        }
    }

    fn at(point: Point) -> Place {
        Place {
            point: Some(point),
            address_key: None,
        }
    }

    /// The duplicate rule, case by case: same category within 50 m and 7 days of an open report.
    #[test]
    fn when_a_report_is_linked() {
        type Edit = fn(&mut Candidate);
        let cases: &[(&str, Edit, f64, Cat, bool)] = &[
            (
                "30 m away, same day",
                |_| {},
                30.0,
                Cat::AbandonedWaste,
                true,
            ),
            ("60 m away", |_| {}, 60.0, Cat::AbandonedWaste, false),
            ("49.9 m away", |_| {}, 49.9, Cat::AbandonedWaste, true),
            ("50.1 m away", |_| {}, 50.1, Cat::AbandonedWaste, false),
            (
                "filed 8 days before",
                |c| c.created_at = now() - Duration::days(8),
                30.0,
                Cat::AbandonedWaste,
                false,
            ),
            (
                "filed exactly 7 days before",
                |c| c.created_at = now() - Duration::days(7),
                30.0,
                Cat::AbandonedWaste,
                true,
            ),
            (
                "filed 7 days and a second before",
                |c| c.created_at = now() - Duration::days(7) - Duration::seconds(1),
                30.0,
                Cat::AbandonedWaste,
                false,
            ),
            ("other category", |_| {}, 30.0, Cat::Bin, false),
            (
                "first one resolved",
                |c| c.status = Status::Resolved,
                30.0,
                Cat::AbandonedWaste,
                false,
            ),
            (
                "first one rejected",
                |c| c.status = Status::Rejected,
                30.0,
                Cat::AbandonedWaste,
                false,
            ),
            (
                "first one acknowledged",
                |c| c.status = Status::Acknowledged,
                30.0,
                Cat::AbandonedWaste,
                true,
            ),
            (
                "first one in progress",
                |c| c.status = Status::InProgress,
                30.0,
                Cat::AbandonedWaste,
                true,
            ),
            (
                "first one is itself linked",
                |c| c.linked_to = Some("r0".into()),
                30.0,
                Cat::AbandonedWaste,
                false,
            ),
            (
                "first one filed after the new one",
                |c| c.created_at = now() + Duration::seconds(1),
                30.0,
                Cat::AbandonedWaste,
                false,
            ),
        ];
        for (case, edit, meters, category, linked) in cases {
            let mut existing = open_report(0.0, 0);
            edit(&mut existing);
            let place = at(ORIGIN.offset(*meters, 0.0));
            assert_eq!(
                absorbs(&existing, *category, &place, now()),
                *linked,
                "{case}"
            );
        }
    }

    #[test]
    fn address_only_reports_match_on_the_same_house() {
        let by_address = |street: &str, number: &str| Place {
            point: None,
            address_key: address_key(street, number),
        };
        let mut existing = open_report(0.0, 1);
        existing.place = by_address("Via Maqueda", "12");
        let cases = [
            (by_address("via  maqueda", "12"), true),
            (by_address("V. Maqueda", "12"), true),
            (by_address("Via Maqueda", "14"), false),
            (by_address("Via Maqueda", ""), false),
            (at(ORIGIN), false),
        ];
        for (place, linked) in cases {
            assert_eq!(
                absorbs(&existing, Cat::AbandonedWaste, &place, now()),
                linked,
                "{place:?}"
            );
        }
    }

    #[test]
    fn the_nearest_then_oldest_open_report_wins() {
        let mut far = open_report(40.0, 1);
        far.id = "far".into();
        let mut near_new = open_report(10.0, 1);
        near_new.id = "near-new".into();
        let mut near_old = open_report(10.0, 3);
        near_old.id = "near-old".into();
        let mut closed = open_report(0.0, 1);
        closed.id = "closed".into();
        closed.status = Status::Resolved;
        let all = [far, near_new, near_old, closed];
        let target = link_target(&all, Cat::AbandonedWaste, &at(ORIGIN), now()).unwrap();
        assert_eq!(target.id, "near-old");
        assert!(link_target(&all, Cat::Noise, &at(ORIGIN), now()).is_none());
    }

    /// The whole workflow table: every (status, action) pair allowed and where it leads; any other
    /// pair is refused with both states named.
    #[test]
    fn the_table_is_the_whole_state_machine() {
        use Status as S;
        let table: &[(Status, Action, Status)] = &[
            (S::Open, Action::Acknowledge, S::Acknowledged),
            (S::Open, Action::Reject, S::Rejected),
            (S::Acknowledged, Action::Start, S::InProgress),
            (S::Acknowledged, Action::Resolve, S::Resolved),
            (S::Acknowledged, Action::Reject, S::Rejected),
            (S::InProgress, Action::Resolve, S::Resolved),
            (S::InProgress, Action::Reject, S::Rejected),
            (S::Open, Action::Note, S::Open),
            (S::Acknowledged, Action::Note, S::Acknowledged),
            (S::InProgress, Action::Note, S::InProgress),
            (S::Resolved, Action::Note, S::Resolved),
            (S::Rejected, Action::Note, S::Rejected),
        ];
        let actions = [
            Action::Acknowledge,
            Action::Start,
            Action::Resolve,
            Action::Reject,
            Action::Note,
        ];
        let mut all = STATUSES.to_vec();
        all.push(S::Unspecified);
        for from in all {
            for action in actions {
                let want = table
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                match (transition("r1", from, action), want) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} {action:?}"),
                    (Err(ServiceError::FailedPrecondition(msg)), None) => assert!(
                        msg.contains(status_name(from))
                            && msg.contains(status_name(action.target(from))),
                        "{msg}"
                    ),
                    (got, want) => panic!("{from:?} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn refusals_name_both_states() {
        let cases = [
            (
                Status::Open,
                Action::Start,
                "report r1 cannot go from OPEN to IN_PROGRESS (start): allowed only from ACKNOWLEDGED",
            ),
            (
                Status::Resolved,
                Action::Reject,
                "report r1 cannot go from RESOLVED to REJECTED (reject): allowed only from OPEN, ACKNOWLEDGED, IN_PROGRESS",
            ),
            (
                Status::Open,
                Action::Resolve,
                "report r1 cannot go from OPEN to RESOLVED (resolve): allowed only from ACKNOWLEDGED, IN_PROGRESS",
            ),
        ];
        for (from, action, message) in cases {
            let err = transition("r1", from, action).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        }
    }

    fn good_request() -> pb::CreateEnvironmentReportRequest {
        pb::CreateEnvironmentReportRequest {
            istat_code: "082053".into(),
            category: Cat::AbandonedWaste as i32,
            description: "Sacchi di rifiuti abbandonati accanto al cassonetto".into(),
            geo: Some(GeoPoint {
                latitude: 38.1158,
                longitude: 13.3619,
            }),
            photos: vec![pb::EnvironmentReportPhoto {
                file_name: "IMG_2041.jpg".into(),
                sha256: "a".repeat(64),
                size_bytes: 2_000_000,
                media_type: "image/jpeg".into(),
                url: "ignored".into(),
            }],
            fiscal_code: "rccmnl83s18d96vw".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_report_passes() {
        let r = validate_create(&good_request()).unwrap();
        assert_eq!(r.fiscal_code.as_deref(), Some("RCCMNL83S18D969H"));
        assert_eq!(
            r.photos[0].to_proto().url,
            format!("/documents/sha256/{}", "a".repeat(64))
        );
        let mut by_phone = good_request();
        by_phone.fiscal_code.clear();
        by_phone.geo = None;
        by_phone.address = Some(Address {
            street: "Via Maqueda".into(),
            house_number: "100".into(),
            postal_code: "90133".into(),
            ..Default::default()
        });
        let r = validate_create(&by_phone).unwrap();
        assert!(r.fiscal_code.is_none() && r.point.is_none());
        assert_eq!(r.place().address_key.as_deref(), Some("via maqueda|100"));
    }

    #[test]
    fn report_violations_name_their_field() {
        type Edit = fn(&mut pb::CreateEnvironmentReportRequest);
        let cases: &[(&str, Edit, &str)] = &[
            ("no comune", |r| r.istat_code.clear(), "istat_code"),
            ("no category", |r| r.category = 0, "category"),
            ("unknown category", |r| r.category = 99, "category"),
            (
                "short description",
                |r| r.description = "rifiuti".into(),
                "description",
            ),
            ("nowhere", |r| r.geo = None, "geo"),
            (
                "swapped coordinates",
                |r| {
                    r.geo = Some(GeoPoint {
                        latitude: 13.36,
                        longitude: 38.11,
                    })
                },
                "geo",
            ),
            (
                "CAP of another comune",
                |r| {
                    r.address = Some(Address {
                        street: "Via Roma".into(),
                        postal_code: "90011".into(),
                        ..Default::default()
                    })
                },
                "address.postal_code",
            ),
            (
                "address without street",
                |r| r.address = Some(Address::default()),
                "address.street",
            ),
            (
                "bad hash",
                |r| r.photos[0].sha256 = "XYZ".into(),
                "photos[0].sha256",
            ),
            (
                "huge photo",
                |r| r.photos[0].size_bytes = MAX_PHOTO_BYTES + 1,
                "photos[0].size_bytes",
            ),
            (
                "a PDF",
                |r| r.photos[0].media_type = "application/pdf".into(),
                "photos[0].media_type",
            ),
            (
                "six photos",
                |r| r.photos = vec![r.photos[0].clone(); 6],
                "photos",
            ),
            (
                "bad fiscal code",
                |r| r.fiscal_code = "RCCMNL83S18D969A".into(),
                "fiscal_code",
            ),
        ];
        for (case, edit, field) in cases {
            let mut r = good_request();
            edit(&mut r);
            let v = validate_create(&r).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
        let empty = validate_create(&pb::CreateEnvironmentReportRequest::default()).unwrap_err();
        let fields: Vec<&str> = empty.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["istat_code", "category", "description", "geo"]);
    }
}
