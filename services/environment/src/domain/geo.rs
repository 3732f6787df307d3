//! Points on the map: validation, great-circle distance (haversine) and the bounding box that lets
//! the database prefilter what the exact distance then decides.

use patto_proto::common::v1::GeoPoint;
use patto_service_kit::error::Violations;

/// Mean Earth radius in metres (IUGG R1), the usual sphere for haversine distances. On the sphere
/// the error against the WGS 84 ellipsoid stays under 0.5 %, a few centimetres at 50 m.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Metres per degree of latitude on that sphere.
const METERS_PER_DEGREE: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Latitudes and longitudes the Città Metropolitana di Palermo lies within, Ustica included, with a
/// margin: a point outside is a swapped or mistyped coordinate, not a problem in one of the comuni.
pub const AREA_LATITUDE: (f64, f64) = (37.5, 38.8);
/// See [`AREA_LATITUDE`].
pub const AREA_LONGITUDE: (f64, f64) = (12.9, 14.4);

/// A point in decimal degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

impl Point {
    /// The wire form.
    pub fn to_proto(self) -> GeoPoint {
        GeoPoint {
            latitude: self.lat,
            longitude: self.lon,
        }
    }

    /// The point `north` and `east` metres away (negative for south and west): test fixtures and
    /// demo data place points at known distances with it.
    pub fn offset(self, north: f64, east: f64) -> Self {
        let lat = self.lat + north / METERS_PER_DEGREE;
        let lon = self.lon + east / (METERS_PER_DEGREE * self.lat.to_radians().cos());
        Self { lat, lon }
    }
}

/// Validates a point given by a client; `field` is its path in the request.
pub fn validate(p: &GeoPoint, field: &str, v: &mut Violations) -> Option<Point> {
    let (lat, lon) = (p.latitude, p.longitude);
    if !lat.is_finite() || !lon.is_finite() {
        v.add(field, "latitude and longitude must be numbers");
        return None;
    }
    let inside = (AREA_LATITUDE.0..=AREA_LATITUDE.1).contains(&lat)
        && (AREA_LONGITUDE.0..=AREA_LONGITUDE.1).contains(&lon);
    if !inside {
        v.add(
            field,
            format!(
                "({lat}, {lon}) is outside the Città Metropolitana di Palermo (latitude {}–{}, longitude {}–{}); check that latitude and longitude are not swapped",
                AREA_LATITUDE.0, AREA_LATITUDE.1, AREA_LONGITUDE.0, AREA_LONGITUDE.1
            ),
        );
        return None;
    }
    Some(Point { lat, lon })
}

/// Great-circle distance in metres between two points (haversine formula). Numerically stable for
/// the short distances duplicate detection works with.
pub fn distance_m(a: Point, b: Point) -> f64 {
    let (phi1, phi2) = (a.lat.to_radians(), b.lat.to_radians());
    let dphi = (b.lat - a.lat).to_radians();
    let dlambda = (b.lon - a.lon).to_radians();
    let h = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    // Rounding can push h a hair above 1 for antipodal points; asin would then be NaN.
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// The latitude and longitude ranges holding every point within `radius_m` of `center`, a little
/// wider: a cheap index-friendly prefilter; [`distance_m`] decides.
pub fn bounding_box(center: Point, radius_m: f64) -> ((f64, f64), (f64, f64)) {
    let margin = 1.01;
    let dlat = radius_m * margin / METERS_PER_DEGREE;
    // Near the poles the longitude span blows up; the area served is at 38° N.
    let cos = center.lat.to_radians().cos().max(0.01);
    let dlon = radius_m * margin / (METERS_PER_DEGREE * cos);
    (
        (center.lat - dlat, center.lat + dlat),
        (center.lon - dlon, center.lon + dlon),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUATTRO_CANTI: Point = Point {
        lat: 38.115_833,
        lon: 13.361_944,
    };

    #[test]
    fn distances() {
        let bagheria = Point {
            lat: 38.0785,
            lon: 13.5122,
        };
        let cases = [
            (QUATTRO_CANTI, QUATTRO_CANTI, 0.0, 0.001),
            (QUATTRO_CANTI, QUATTRO_CANTI.offset(30.0, 0.0), 30.0, 0.01),
            (QUATTRO_CANTI, QUATTRO_CANTI.offset(0.0, 60.0), 60.0, 0.01),
            (QUATTRO_CANTI, QUATTRO_CANTI.offset(30.0, 40.0), 50.0, 0.01),
            (
                QUATTRO_CANTI,
                QUATTRO_CANTI.offset(-35.0, -35.0),
                49.497,
                0.01,
            ),
            // Palermo to Bagheria: about 13.7 km as the crow flies.
            (QUATTRO_CANTI, bagheria, 13_750.0, 100.0),
        ];
        for (a, b, want, tolerance) in cases {
            let got = distance_m(a, b);
            assert!((got - want).abs() <= tolerance, "{a:?} {b:?}: {got}");
            assert!((distance_m(b, a) - got).abs() < 1e-9, "symmetric");
        }
        // One degree of latitude along a meridian.
        let north = Point {
            lat: 39.0,
            lon: 13.0,
        };
        let south = Point {
            lat: 38.0,
            lon: 13.0,
        };
        assert!((distance_m(north, south) - 111_195.0).abs() < 1.0);
        // Antipodes do not produce NaN.
        let a = Point { lat: 0.0, lon: 0.0 };
        let b = Point {
            lat: 0.0,
            lon: 180.0,
        };
        assert!(distance_m(a, b).is_finite());
    }

    #[test]
    fn boxes_hold_the_circle() {
        let ((lat0, lat1), (lon0, lon1)) = bounding_box(QUATTRO_CANTI, 50.0);
        for (n, e) in [
            (50.0, 0.0),
            (-50.0, 0.0),
            (0.0, 50.0),
            (0.0, -50.0),
            (35.0, 35.0),
        ] {
            let p = QUATTRO_CANTI.offset(n, e);
            assert!((lat0..=lat1).contains(&p.lat) && (lon0..=lon1).contains(&p.lon));
        }
        let far = QUATTRO_CANTI.offset(60.0, 0.0);
        assert!(!(lat0..=lat1).contains(&far.lat));
    }

    #[test]
    fn validation() {
        let mut v = Violations::new();
        let ok = validate(
            &GeoPoint {
                latitude: 38.1158,
                longitude: 13.3619,
            },
            "geo",
            &mut v,
        );
        assert!(ok.is_some() && v.is_empty());
        for (lat, lon) in [
            (13.3619, 38.1158),
            (0.0, 0.0),
            (f64::NAN, 13.0),
            (38.1, f64::INFINITY),
            (91.0, 13.0),
        ] {
            let mut v = Violations::new();
            let p = validate(
                &GeoPoint {
                    latitude: lat,
                    longitude: lon,
                },
                "geo",
                &mut v,
            );
            assert!(p.is_none() && v.as_slice()[0].field == "geo", "{lat} {lon}");
        }
    }
}
