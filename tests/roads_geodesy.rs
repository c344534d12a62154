//! Distances in metres must be right at any latitude (issue 3: error
//! < 0.5 m for 20 m offsets at 30°). The reference is geo's Karney geodesic
//! on WGS 84, an implementation independent of ours.

use geo::{Bearing, Destination, Distance, Geodesic, Point};
use proptest::prelude::*;
use roadwatch::core::model::EventTime;
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use serde_json::json;

/// A network of one straight carriageway from `a` to `b`.
fn one_line(a: (f64, f64), b: (f64, f64)) -> RoadNetwork {
    let doc = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "properties": {"kind": "carriageway", "road_id": "T", "direction": "up", "stake_start_m": 0, "stake_end_m": 1000},
        "geometry": {"type": "LineString", "coordinates": [[a.0, a.1], [b.0, b.1]]}}]});
    RoadNetwork::from_geojson(doc.to_string().as_bytes(), &LoadOptions::default()).expect("loads")
}

fn geo_point(p: (f64, f64)) -> Point {
    Point::new(p.0, p.1)
}

fn destination(from: (f64, f64), bearing: f64, metres: f64) -> (f64, f64) {
    let p = Geodesic.destination(geo_point(from), bearing, metres);
    (p.x(), p.y())
}

/// The true distance from `q` to the segment (straight in lon/lat, as RFC
/// 7946 draws it), by brute force: the geodesic distance to 4001 points
/// along it, refined around the best.
fn reference_distance(q: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let at = |t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
    let dist = |t: f64| Geodesic.distance(geo_point(q), geo_point(at(t)));
    let n = 4000;
    let best = (0..=n)
        .map(|i| i as f64 / n as f64)
        .min_by(|x, y| dist(*x).total_cmp(&dist(*y)))
        .unwrap();
    // Ternary search in the bracket around the best sample (the distance is
    // unimodal along a short segment).
    let (mut lo, mut hi) = (
        (best - 1.0 / n as f64).max(0.0),
        (best + 1.0 / n as f64).min(1.0),
    );
    for _ in 0..60 {
        let (m1, m2) = (lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0);
        if dist(m1) < dist(m2) {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    dist((lo + hi) / 2.0)
}

#[test]
fn twenty_metre_offsets_at_30_degrees_are_within_half_a_metre() {
    let mut worst: f64 = 0.0;
    for bearing in (0..360).step_by(15) {
        let bearing = f64::from(bearing);
        let a = (105.0, 30.0);
        let b = destination(a, bearing, 500.0);
        let net = one_line(a, b);
        let mid = (a.0 + (b.0 - a.0) * 0.5, a.1 + (b.1 - a.1) * 0.5);
        let heading = Geodesic.bearing(geo_point(mid), geo_point(b));
        for side in [90.0, -90.0] {
            let q = destination(mid, heading + side, 20.0);
            let p = net
                .locate(q.0, q.1, EventTime::from_ms(0))
                .expect("20 m from the line");
            let error = (p.offset_m - 20.0).abs();
            worst = worst.max(error);
            assert!(
                error < 0.5,
                "bearing {bearing} side {side}: offset {}",
                p.offset_m
            );
            // Against the brute-force reference the error is far smaller.
            let reference = reference_distance(q, a, b);
            assert!(
                (p.offset_m - reference).abs() < 0.01,
                "bearing {bearing}: {} vs {reference}",
                p.offset_m
            );
        }
    }
    eprintln!("worst error against the intended 20 m: {worst:.6} m");
}

#[test]
fn length_and_stakes_follow_geodesic_length() {
    // A 10 km line at 30°N: halfway along the geometry is halfway in stake.
    let a = (105.0, 30.0);
    let b = destination(a, 60.0, 10_000.0);
    let net = one_line(a, b);
    let length = net.lines()[0].length_m();
    assert!((length - 10_000.0).abs() < 0.5, "{length}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Anywhere between 60°S and 60°N, any heading, 20 m to 2 km segments:
    /// the offset locate reports equals the geodesic distance to the nearest
    /// point of the segment.
    #[test]
    fn offset_matches_the_geodesic_reference(
        lon in -170.0f64..170.0,
        lat in -60.0f64..60.0,
        bearing in 0.0f64..360.0,
        length in 20.0f64..2000.0,
        along in 0.0f64..1.0,
        offset in 0.5f64..95.0,
        side in prop_oneof![Just(90.0f64), Just(-90.0f64)],
    ) {
        let a = (lon, lat);
        let b = destination(a, bearing, length);
        let net = one_line(a, b);
        let on = (a.0 + (b.0 - a.0) * along, a.1 + (b.1 - a.1) * along);
        let heading = Geodesic.bearing(geo_point(on), geo_point(b));
        let q = destination(on, heading + side, offset);
        let reference = reference_distance(q, a, b);
        match net.locate_within(q.0, q.1, EventTime::from_ms(0), 200.0) {
            Some(p) => prop_assert!((p.offset_m - reference).abs() < 0.05, "{} vs {}", p.offset_m, reference),
            None => prop_assert!(false, "{} m away must be found", reference),
        }
    }
}
