//! The road network on real OpenStreetMap data: motorways of the
//! Rhine-Neckar area (tests/fixtures/osm, © OpenStreetMap contributors,
//! ODbL 1.0). Expected answers come from the fixture itself (each way's
//! `ref`, each milestone's `distance`) or from a brute-force search over
//! every segment, never from this crate's own output.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use roadwatch::core::model::EventTime;
use roadwatch::core::roads::{Direction, IssueLevel, LoadOptions, RoadNetwork, StakeSource};
use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/osm/motorways-rhine-neckar.geojson";

fn bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(FIXTURE).expect("fixture present"))
}

fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_slice(bytes()).expect("fixture is JSON"))
}

fn net() -> &'static RoadNetwork {
    static NET: OnceLock<RoadNetwork> = OnceLock::new();
    NET.get_or_init(|| {
        RoadNetwork::from_geojson(bytes(), &LoadOptions::default()).expect("fixture loads")
    })
}

fn features_with(highway: &str) -> Vec<&'static Value> {
    doc()["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["highway"] == highway)
        .collect()
}

fn coords(f: &Value) -> Vec<(f64, f64)> {
    let c = &f["geometry"]["coordinates"];
    match f["geometry"]["type"].as_str() {
        Some("Point") => vec![(c[0].as_f64().unwrap(), c[1].as_f64().unwrap())],
        _ => c
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
            .collect(),
    }
}

/// `A 5` → `A5`, as docs/ROADS.md specifies road ids from OSM refs.
fn road_id_of(way: &Value) -> String {
    way["properties"]["ref"]
        .as_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_whitespace()
        .collect()
}

/// Distance in metres from `q` to segment `a`–`b` on a sphere of the mean
/// Earth radius, in a tangent plane at `q`. Deliberately not the crate's
/// formula (which uses the WGS 84 radii of curvature): the two agree to
/// ~0.3 %, which the tests allow for.
fn sphere_distance(q: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    const R: f64 = 6_371_008.8;
    let kx = R * q.1.to_radians().cos() * std::f64::consts::PI / 180.0;
    let ky = R * std::f64::consts::PI / 180.0;
    let (ax, ay) = ((a.0 - q.0) * kx, (a.1 - q.1) * ky);
    let (bx, by) = ((b.0 - q.0) * kx, (b.1 - q.1) * ky);
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (ax + t * dx).hypot(ay + t * dy)
}

/// Nearest motorway way to `q` by brute force over every segment of the
/// fixture: (metres, road id).
/// A fixture segment: its ends and its way's road id.
type Segment = ((f64, f64), (f64, f64), String);

fn brute_force_nearest(q: (f64, f64)) -> (f64, String) {
    // Every segment of the fixture with its way's road id, read once.
    static SEGMENTS: OnceLock<Vec<Segment>> = OnceLock::new();
    let segments = SEGMENTS.get_or_init(|| {
        features_with("motorway")
            .into_iter()
            .flat_map(|way| {
                let road = road_id_of(way);
                let c = coords(way);
                c.windows(2)
                    .map(|p| (p[0], p[1], road.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    });
    let mut best = (f64::INFINITY, "");
    for (a, b, road) in segments {
        let d = sphere_distance(q, *a, *b);
        if d < best.0 {
            best = (d, road);
        }
    }
    (best.0, best.1.to_string())
}

/// A deterministic pseudo-random sequence in [0, 1) (no test dependency on
/// a seed-less RNG).
fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn loads_every_road_of_the_export() {
    let net = net();
    let expected: BTreeSet<String> = features_with("motorway")
        .into_iter()
        .map(road_id_of)
        .collect();
    let loaded: BTreeSet<String> = net
        .roads()
        .iter()
        .map(|r| r.road_id().to_string())
        .collect();
    assert_eq!(loaded, expected);
    let way_segments: usize = features_with("motorway")
        .iter()
        .map(|w| coords(w).len() - 1)
        .sum();
    assert_eq!(
        net.segment_count(),
        way_segments,
        "every way segment is indexed once"
    );
    // The only bad features are the two milestones without `distance`.
    let errors: Vec<String> = net
        .issues()
        .iter()
        .filter(|i| i.level == IssueLevel::Error)
        .map(|i| i.to_string())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("milestone") && e.contains("distance")),
        "{errors:#?}"
    );
    // Every junction node is on a motorway, so every one is an interchange.
    assert_eq!(
        net.interchanges().len(),
        features_with("motorway_junction").len()
    );
}

#[test]
fn points_on_ways_locate_to_that_ways_ref() {
    let net = net();
    let mut checked = 0;
    for way in features_with("motorway") {
        let c = coords(way);
        let i = (c.len() - 1) / 2;
        let mid = ((c[i].0 + c[i + 1].0) / 2.0, (c[i].1 + c[i + 1].1) / 2.0);
        let p = net
            .locate(mid.0, mid.1, EventTime::from_ms(0))
            .unwrap_or_else(|| panic!("{} has no position", way["id"]));
        assert_eq!(&*p.road_id, road_id_of(way), "{}", way["id"]);
        assert!(p.offset_m < 0.01, "{}: {}", way["id"], p.offset_m);
        assert!(p.on_carriageway);
        let expected_structure = if way["properties"]["tunnel"] == "yes" {
            Some("tunnel")
        } else if way["properties"]["bridge"]
            .as_str()
            .is_some_and(|b| b != "no")
        {
            Some("bridge")
        } else {
            None
        };
        assert_eq!(
            p.structure.map(|s| s.as_str()),
            expected_structure,
            "{}",
            way["id"]
        );
        checked += 1;
    }
    assert_eq!(checked, 2196);
}

#[test]
fn points_away_from_the_roads_agree_with_brute_force() {
    // Points 150, 300 and 600 m to either side of way midpoints, and random
    // points over the area: locate must find a road exactly when the brute
    // force finds one within 100 m, and report the same road and distance.
    // 90–110 m is left out: there the two metrics may round differently.
    let net = net();
    let mut queries: Vec<(f64, f64)> = Vec::new();
    for way in features_with("motorway").into_iter().step_by(5) {
        let c = coords(way);
        let (a, b) = (c[0], c[1]);
        let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        let kx = 111_320.0 * mid.1.to_radians().cos();
        let (dx, dy) = ((b.0 - a.0) * kx, (b.1 - a.1) * 111_320.0);
        let len = dx.hypot(dy);
        if len == 0.0 {
            continue;
        }
        for metres in [150.0, 300.0, 600.0, -150.0, -300.0, -600.0] {
            // Perpendicular (left of travel for positive metres).
            queries.push((
                mid.0 - dy / len * metres / kx,
                mid.1 + dx / len * metres / 111_320.0,
            ));
        }
    }
    let mut state = 7;
    for _ in 0..500 {
        queries.push((8.0 + lcg(&mut state) * 1.14, 49.1 + lcg(&mut state) * 0.71));
    }
    let (mut found, mut nothing) = (0, 0);
    for q in queries {
        let (reference, road) = brute_force_nearest(q);
        let got = net.locate(q.0, q.1, EventTime::from_ms(0));
        if reference > 110.0 {
            assert!(
                got.is_none(),
                "{q:?}: brute force says {reference:.1} m, locate says {got:?}"
            );
            nothing += 1;
        } else if reference < 90.0 {
            let p = got
                .unwrap_or_else(|| panic!("{q:?}: {reference:.1} m from {road}, locate says none"));
            assert!(
                (p.offset_m - reference).abs() < 0.005 * reference + 0.05,
                "{q:?}: {} vs {reference}",
                p.offset_m
            );
            assert_eq!(&*p.road_id, road, "{q:?}");
            found += 1;
        }
    }
    // Both branches must actually be exercised.
    assert!(
        found > 20 && nothing > 150,
        "found {found}, nothing {nothing}"
    );
}

/// |stake − distance| for each milestone with a distance, located on `net`,
/// keeping only those on lines whose stakes come from milestones.
fn milestone_errors(net: &RoadNetwork, milestones: &[&Value]) -> Vec<f64> {
    let mut errors = Vec::new();
    for m in milestones {
        let Some(km) = m["properties"]["distance"]
            .as_str()
            .and_then(|d| d.parse::<f64>().ok())
        else {
            continue;
        };
        let (lon, lat) = coords(m)[0];
        let p = net
            .locate(lon, lat, EventTime::from_ms(0))
            .expect("milestones stand on the motorway");
        let source = net.line(p.line).unwrap().stake_source();
        if matches!(source, StakeSource::SingleAnchor | StakeSource::Unanchored) {
            continue;
        }
        errors.push((p.stake_m - km * 1000.0).abs());
    }
    errors.sort_by(f64::total_cmp);
    errors
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn milestones_give_their_own_distance() {
    // Every milestone anchors the chains it stands on, so locating it gives
    // back its distance — up to the metres by which a marker stands off the
    // chain's nearest point, and the markers the monotone filter dropped or
    // merged (a pair on both sides of the road becomes one anchor at their
    // mean position, so each is off by half their spacing along the road).
    let errors = milestone_errors(net(), &features_with("milestone"));
    assert!(errors.len() >= 220, "{} milestones checked", errors.len());
    let (median, p95, max) = (
        percentile(&errors, 0.5),
        percentile(&errors, 0.95),
        errors[errors.len() - 1],
    );
    eprintln!(
        "own distance: {} milestones, median {median:.2} m, p95 {p95:.2} m, max {max:.1} m",
        errors.len()
    );
    assert!(median < 1.0, "median {median}");
    assert!(p95 < 5.0, "p95 {p95}");
    assert!(max < 50.0, "max {max}");
}

#[test]
fn held_out_milestones_are_predicted_by_interpolation() {
    // Drop every other milestone, load, and predict the dropped ones from the
    // rest: interpolation over ~1 km between anchors. The tolerance: markers
    // are mapped to within a few metres, and real stake series drift from
    // geometric length by metres per kilometre, so most predictions land
    // within a few metres; a few OSM markers carry a wrong `distance` (two
    // "550.0" 1 km apart on the A5), so the bound is on the 90th percentile.
    let mut doc = doc().clone();
    let mut held_out = Vec::new();
    let mut seen = 0;
    doc["features"].as_array_mut().unwrap().retain(|f| {
        if f["properties"]["highway"] != "milestone" {
            return true;
        }
        seen += 1;
        if seen % 2 == 0 {
            held_out.push(f.clone());
            return false;
        }
        true
    });
    let net =
        RoadNetwork::from_geojson(doc.to_string().as_bytes(), &LoadOptions::default()).unwrap();
    let held: Vec<&Value> = held_out.iter().collect();
    let errors = milestone_errors(&net, &held);
    assert!(errors.len() >= 100, "{} milestones checked", errors.len());
    let (median, p90) = (percentile(&errors, 0.5), percentile(&errors, 0.9));
    eprintln!(
        "held out: {} milestones, median {median:.2} m, p90 {p90:.2} m",
        errors.len()
    );
    assert!(median < 5.0, "median {median}");
    assert!(p90 < 50.0, "p90 {p90}");
}

#[test]
fn directions_follow_stake_growth_and_carriageways_pair_up() {
    let net = net();
    let mut paired = 0;
    for line in net.lines() {
        if line.stake_source() != StakeSource::Milestones {
            continue;
        }
        // The direction rule: stakes growing along a one-way chain → up.
        let growing = line.stake_end_m() > line.stake_start_m();
        assert_eq!(
            line.direction(),
            if growing {
                Direction::Up
            } else {
                Direction::Down
            },
            "{:?}",
            line.id()
        );
        // The opposite carriageway at mid-stake runs the other way, and is
        // right beside this one: a wrong direction would pair lines far apart.
        let (lo, hi) = line.stake_range();
        let mid = (lo + hi) / 2.0;
        let other = net
            .opposite(line.id(), mid)
            .expect("a motorway with milestones has two carriageways");
        let other_line = net.line(other).unwrap();
        assert_eq!(other_line.road_id(), line.road_id());
        assert_ne!(other_line.direction(), line.direction());
        let here = net.point_at(line.id(), mid).unwrap();
        let there = net.point_at(other, mid).unwrap();
        let apart = roadwatch::core::roads::distance_m([here.0, here.1], [there.0, there.1]);
        assert!(
            apart < 150.0,
            "{}: carriageways {apart:.0} m apart at {mid:.0}",
            line.road_id()
        );
        paired += 1;
    }
    assert!(paired >= 10, "{paired} lines checked");
}

#[test]
fn interchanges_lie_ahead_in_the_direction_of_travel() {
    let net = net();
    let mut checked = 0;
    for line in net
        .lines()
        .iter()
        .filter(|l| l.direction() != Direction::Both)
    {
        let (lo, hi) = line.stake_range();
        let stake = (lo + hi) / 2.0;
        let growing = line.direction() == Direction::Up;
        if let Some(ic) = net.next_interchange(line.road_id(), line.direction(), stake, true) {
            assert!(if growing {
                ic.stake_m >= stake
            } else {
                ic.stake_m <= stake
            });
            // And it is the nearest such: nothing on the road lies between.
            let between = net
                .road_interchanges(line.road_id())
                .filter(|other| {
                    if growing {
                        other.stake_m >= stake
                    } else {
                        other.stake_m <= stake
                    }
                })
                .any(|other| (other.stake_m - stake).abs() < (ic.stake_m - stake).abs());
            assert!(!between);
            checked += 1;
        }
    }
    assert!(checked >= 10);
}
