//! Loading never panics, whatever the bytes: arbitrary bytes, arbitrary JSON,
//! and GeoJSON-shaped documents with random geometry and properties in both
//! the native schema and OSM tags. Whatever loads must answer queries
//! without panicking too.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use roadwatch::core::model::EventTime;
use roadwatch::core::roads::{Direction, LineId, LoadOptions, RoadNetwork, ZoneKind};
use serde_json::{json, Map, Value};

/// 256 cases by default; `PROPTEST_CASES=20000` for a deeper run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Words that steer the loader down its branches.
const WORDS: &[&str] = &[
    "FeatureCollection",
    "Feature",
    "Point",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
    "carriageway",
    "ramp",
    "interchange",
    "weather_station",
    "service_area",
    "toll_plaza",
    "work_zone",
    "tunnel",
    "bridge",
    "up",
    "down",
    "both",
    "motorway",
    "motorway_link",
    "milestone",
    "motorway_junction",
    "services",
    "toll_booth",
    "yes",
    "no",
    "-1",
    "A 5",
    "G76",
    "K12+300",
    "2026-11-28T08:00:00+08:00",
    "12.5",
    "NaN",
    "",
];
const KEYS: &[&str] = &[
    "type",
    "features",
    "geometry",
    "coordinates",
    "properties",
    "tags",
    "kind",
    "road_id",
    "name",
    "direction",
    "stake_start_m",
    "stake_end_m",
    "stakes_m",
    "width_m",
    "structure",
    "stake_m",
    "station_id",
    "active_from",
    "active_to",
    "highway",
    "ref",
    "oneway",
    "distance",
    "barrier",
    "width",
];

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        -200.0f64..200.0,
        Just(0.0),
        Just(180.0),
        Just(-90.0),
        Just(90.0),
        Just(1e300),
        Just(-1e300),
        Just(f64::MIN_POSITIVE),
        100.0f64..110.0,
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(WORDS).prop_map(|w| json!(w)),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Positions near one spot so that random lines meet, cross and chain.
fn position() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (0u8..6, 0u8..6).prop_map(|(x, y)| json!([105.0 + f64::from(x) * 0.001, 27.0 + f64::from(y) * 0.001])),
        1 => (number(), number()).prop_map(|(x, y)| json!([x, y])),
        1 => leaf(),
    ]
}

fn line() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(position(), 0..6)
}

/// Mostly valid lines on a small grid, so random ways meet and chain.
fn grid_line() -> impl Strategy<Value = Vec<Value>> {
    prop_oneof![
        9 => prop::collection::vec(
            (0u8..6, 0u8..6).prop_map(|(x, y)| json!([105.0 + f64::from(x) * 0.001, 27.0 + f64::from(y) * 0.001])),
            2..7,
        ),
        1 => line(),
    ]
}

fn geometry() -> impl Strategy<Value = Value> {
    prop_oneof![
        position().prop_map(|p| json!({"type": "Point", "coordinates": p})),
        line().prop_map(|l| json!({"type": "LineString", "coordinates": l})),
        prop::collection::vec(line(), 0..3)
            .prop_map(|l| json!({"type": "MultiLineString", "coordinates": l})),
        line().prop_map(|mut ring| {
            if let Some(first) = ring.first().cloned() {
                ring.push(first);
            }
            json!({"type": "Polygon", "coordinates": [ring]})
        }),
        any_json().prop_map(|c| json!({"type": "MultiPolygon", "coordinates": c})),
        leaf(),
    ]
}

fn properties() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), leaf()), 0..10).prop_map(|kv| {
        let mut m = Map::new();
        for (k, v) in kv {
            m.insert(k.to_string(), v);
        }
        Value::Object(m)
    })
}

fn feature() -> impl Strategy<Value = Value> {
    (geometry(), properties(), any::<bool>()).prop_map(|(g, p, nested)| {
        let p = if nested { json!({"tags": p}) } else { p };
        json!({"type": "Feature", "properties": p, "geometry": g})
    })
}

/// Mostly well-formed features of every kind the loader knows, with the
/// values that matter drawn at random: these reach chain building, stake
/// fitting, ramp attachment and the queries.
fn plausible_feature() -> impl Strategy<Value = Value> {
    let road = prop::sample::select(vec!["G1", "G2", "A 5", "A 6;A 7"]);
    let dir = prop::sample::select(vec!["up", "down", "both", "sideways"]);
    let stake = prop_oneof![0.0f64..5000.0, Just(1000.0), Just(-5.0)];
    let native_line = (prop::sample::select(vec!["carriageway", "ramp"]), road.clone(), dir, stake.clone(), stake.clone(), grid_line(), leaf())
        .prop_map(|(kind, road, dir, s0, s1, coords, structure)| json!({"type": "Feature",
            "properties": {"kind": kind, "road_id": road, "direction": dir, "stake_start_m": s0, "stake_end_m": s1, "structure": structure},
            "geometry": {"type": "LineString", "coordinates": coords}}));
    let osm_way = (prop::sample::select(vec!["motorway", "motorway_link"]), prop::option::of(road.clone()),
                   prop::sample::select(vec!["yes", "-1", "no"]), any::<bool>(), grid_line())
        .prop_map(|(hw, r, oneway, tunnel, coords)| json!({"type": "Feature",
            "properties": {"highway": hw, "ref": r, "oneway": oneway, "tunnel": if tunnel { "yes" } else { "no" }},
            "geometry": {"type": "LineString", "coordinates": coords}}));
    let osm_node = (prop::sample::select(vec!["milestone", "motorway_junction", "services"]), stake, position())
        .prop_map(|(hw, km, p)| json!({"type": "Feature", "properties": {"highway": hw, "distance": format!("{}", km / 100.0)},
            "geometry": {"type": "Point", "coordinates": p}}));
    let native_point = (
        prop::sample::select(vec!["interchange", "weather_station"]),
        road,
        leaf(),
        position(),
    )
        .prop_map(|(kind, road, stake, p)| {
            json!({"type": "Feature",
            "properties": {"kind": kind, "road_id": road, "stake_m": stake, "station_id": "wx-1"},
            "geometry": {"type": "Point", "coordinates": p}})
        });
    let zone = (
        prop::sample::select(vec![
            "service_area",
            "toll_plaza",
            "work_zone",
            "tunnel",
            "bridge",
        ]),
        grid_line(),
        leaf(),
    )
        .prop_map(|(kind, mut ring, from)| {
            if let Some(first) = ring.first().cloned() {
                ring.push(first);
            }
            json!({"type": "Feature", "properties": {"kind": kind, "active_from": from},
                "geometry": {"type": "Polygon", "coordinates": [ring]}})
        });
    prop_oneof![3 => native_line, 3 => osm_way, 2 => osm_node, 1 => native_point, 1 => zone, 1 => feature()]
}

fn collection() -> impl Strategy<Value = Value> {
    prop::collection::vec(plausible_feature(), 0..16)
        .prop_map(|f| json!({"type": "FeatureCollection", "features": f}))
}

/// Every public query, at a few points; none may panic.
fn exercise(net: &RoadNetwork) {
    for (lon, lat) in [
        (105.0, 27.0),
        (105.002, 27.003),
        (105.0051, 27.0049),
        (0.0, 0.0),
        (180.0, 90.0),
    ] {
        if let Some(p) = net.locate(lon, lat, EventTime::from_ms(0)) {
            let _ = serde_json::to_string(&p).unwrap();
            let _ = net.next_interchange(&p.road_id, p.direction, p.stake_m, true);
            let _ = net.next_service_area(&p.road_id, p.direction, p.stake_m, false);
            let _ = net.distance_along(&p.road_id, p.direction, p.stake_m, p.stake_m + 500.0);
            let _ = net.stretch(&p.road_id, p.stake_m, 5000.0);
            let _ = net.opposite(p.line, p.stake_m);
            let _ = net.point_at(p.line, p.stake_m);
            let _ = net.position_at_stake(p.line, p.stake_m, EventTime::from_ms(0));
        }
        let _ = net.locate_within(lon, lat, EventTime::from_ms(0), 10_000.0);
        let _ = net.zones_at(lon, lat, EventTime::from_ms(0));
    }
    for line in net.lines() {
        for odd in [f64::NAN, f64::INFINITY, -1e300, 0.0] {
            let _ = line.stake_at_along(odd);
            let _ = line.point_at_along(odd);
            let _ = line.along_at_stake(odd);
            let _ = line.structure_at_along(odd);
            let _ = net.point_at(line.id(), odd);
            let _ = net.next_interchange(line.road_id(), line.direction(), odd, true);
            let _ = net.distance_along(line.road_id(), line.direction(), odd, 0.0);
            let _ = net.stretch(line.road_id(), odd, 10.0);
        }
        let _ = net.point_at(line.id(), line.stake_start_m());
        let _ = net.carriageway_at(line.road_id(), Direction::Up, line.stake_end_m());
    }
    let _ = net.point_at(LineId(u32::MAX), 0.0);
    let _ = net.next_zone("x", Direction::Both, 0.0, ZoneKind::TollPlaza, true);
    let _ = net.stats();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(net) = RoadNetwork::from_geojson(&bytes, &LoadOptions::default()) {
            exercise(&net);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(doc in any_json()) {
        let bytes = doc.to_string();
        if let Ok(net) = RoadNetwork::from_geojson(bytes.as_bytes(), &LoadOptions::default()) {
            exercise(&net);
        }
    }

    #[test]
    fn random_geojson_never_panics(doc in collection(), strict in any::<bool>()) {
        let bytes = doc.to_string();
        let opts = LoadOptions { strict, ..LoadOptions::default() };
        if let Ok(net) = RoadNetwork::from_geojson(bytes.as_bytes(), &opts) {
            exercise(&net);
        }
    }
}

#[test]
fn the_random_documents_do_build_networks() {
    // Guard against a generator that only ever produces rejected files,
    // which would make the test above vacuous.
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let mut lines = 0;
    for _ in 0..64 {
        let doc = collection().new_tree(&mut runner).unwrap().current();
        if let Ok(net) =
            RoadNetwork::from_geojson(doc.to_string().as_bytes(), &LoadOptions::default())
        {
            lines += net.lines().len();
        }
    }
    eprintln!("{lines} lines in 64 random documents");
    assert!(lines > 64, "only {lines} lines in 64 random documents");
}
