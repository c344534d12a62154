//! The road network on small synthetic files in the native schema, with
//! answers worked out by hand (stakes) or by an independent reference (geo's
//! Karney geodesic, for metres).

use geo::{Destination, Distance, Geodesic, Point};
use roadwatch::core::model::EventTime;
use roadwatch::core::roads::{
    Direction, IssueLevel, LineKind, LoadError, LoadOptions, RoadNetwork, Stake, Structure,
    ZoneKind,
};
use serde_json::{json, Value};

const LAT: f64 = 27.0;

fn line(road: &str, kind: &str, dir: &str, coords: Value, s0: f64, s1: f64, extra: Value) -> Value {
    let mut props = json!({"kind": kind, "road_id": road, "name": format!("{road} 高速"), "direction": dir,
                           "stake_start_m": s0, "stake_end_m": s1});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"type": "Feature", "properties": props, "geometry": {"type": "LineString", "coordinates": coords}})
}

fn rect(kind: &str, lon0: f64, lat0: f64, lon1: f64, lat1: f64, extra: Value) -> Value {
    let mut props = json!({"kind": kind, "name": format!("{kind} zone")});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"type": "Feature", "properties": props, "geometry": {"type": "Polygon",
        "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}})
}

fn point(props: Value, lon: f64, lat: f64) -> Value {
    json!({"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": [lon, lat]}})
}

fn load(features: Vec<Value>) -> RoadNetwork {
    let doc = json!({"type": "FeatureCollection", "features": features});
    RoadNetwork::from_geojson(doc.to_string().as_bytes(), &LoadOptions::default()).expect("loads")
}

/// A point `metres` due north (negative: south) of (lon, lat), by geodesic.
fn north(lon: f64, lat: f64, metres: f64) -> (f64, f64) {
    let bearing = if metres >= 0.0 { 0.0 } else { 180.0 };
    let p = Geodesic.destination(Point::new(lon, lat), bearing, metres.abs());
    (p.x(), p.y())
}

fn geodesic(a: (f64, f64), b: (f64, f64)) -> f64 {
    Geodesic.distance(Point::new(a.0, a.1), Point::new(b.0, b.1))
}

/// G76: an up carriageway along 27°N from 105.00 to 105.02 E (≈1983 m of
/// geometry carrying 2000 m of stakes), and the down carriageway 30 m north,
/// drawn the other way. Plus interchanges, zones, a tunnel road, a station.
fn network() -> RoadNetwork {
    let down_lat = north(105.0, LAT, 30.0).1;
    load(vec![
        line(
            "G76",
            "carriageway",
            "up",
            json!([[105.0, LAT], [105.02, LAT]]),
            1_200_000.0,
            1_202_000.0,
            json!({}),
        ),
        line(
            "G76",
            "carriageway",
            "down",
            json!([[105.02, down_lat], [105.0, down_lat]]),
            1_202_000.0,
            1_200_000.0,
            json!({}),
        ),
        line(
            "G56",
            "carriageway",
            "up",
            json!([[105.0, 27.1], [105.01, 27.1]]),
            500.0,
            1500.0,
            json!({"structure": "tunnel", "width_m": 10}),
        ),
        rect(
            "bridge",
            105.005,
            LAT - 0.0005,
            105.006,
            LAT + 0.0005,
            json!({}),
        ),
        rect(
            "service_area",
            105.012,
            LAT - 0.0008,
            105.014,
            LAT - 0.0001,
            json!({}),
        ),
        rect(
            "work_zone",
            105.0135,
            LAT - 0.0006,
            105.018,
            LAT + 0.0001,
            json!({"active_from": "2026-11-28T08:00:00+08:00", "active_to": "2026-11-28T18:00:00+08:00"}),
        ),
        point(
            json!({"kind": "interchange", "road_id": "G76", "name": "A", "stake_m": 1_200_500.0}),
            105.005,
            LAT,
        ),
        point(
            json!({"kind": "interchange", "road_id": "G76", "name": "B", "stake_m": "K1201+500"}),
            105.015,
            LAT,
        ),
        point(
            json!({"kind": "weather_station", "station_id": "wx-01", "name": "西溪"}),
            105.01,
            LAT + 0.001,
        ),
    ])
}

/// Any instant: for what does not depend on time (structures, stakes).
const T0: EventTime = EventTime::from_ms(0);

fn at(rfc3339: &str) -> EventTime {
    EventTime::from_ms(
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis(),
    )
}

#[test]
fn a_point_on_the_line_gets_the_interpolated_stake() {
    let net = network();
    let p = net.locate(105.01, LAT, T0).expect("on the road");
    assert_eq!(&*p.road_id, "G76");
    assert_eq!(&*p.name, "G76 高速");
    assert_eq!(p.direction, Direction::Up);
    assert_eq!(p.kind, LineKind::Carriageway);
    // Halfway along a two-vertex line: halfway between its stakes.
    assert!((p.stake_m - 1_201_000.0).abs() < 1e-6, "{}", p.stake_m);
    assert_eq!(p.stake.to_string(), "K1201+000");
    assert!(p.offset_m < 1e-6);
    assert!(p.on_carriageway);
}

#[test]
fn stakes_decreasing_along_the_geometry() {
    let net = network();
    let down_lat = north(105.0, LAT, 30.0).1;
    // A quarter of the way along the down line's geometry (from 105.02).
    let p = net.locate(105.015, down_lat, T0).expect("on the road");
    assert_eq!(p.direction, Direction::Down);
    assert!((p.stake_m - 1_201_500.0).abs() < 1e-6, "{}", p.stake_m);
}

#[test]
fn offsets_and_on_carriageway_beside_the_line() {
    let net = network();
    for (metres, on) in [
        (-5.0, true),
        (-7.0, true),
        (-8.0, false),
        (-60.0, false),
        (-95.0, false),
    ] {
        let q = north(105.007, LAT, metres);
        let p = net
            .locate(q.0, q.1, T0)
            .unwrap_or_else(|| panic!("{metres} m south is within the snap"));
        assert_eq!(p.direction, Direction::Up, "{metres}");
        assert!(
            (p.offset_m - metres.abs()).abs() < 0.05,
            "{metres}: {}",
            p.offset_m
        );
        assert_eq!(p.on_carriageway, on, "{metres}");
        // The point snapped to is where the reference distance is measured to.
        assert!((geodesic(q, p.snapped) - p.offset_m).abs() < 0.01);
    }
}

#[test]
fn far_points_locate_to_nothing() {
    let net = network();
    for metres in [-105.0, -150.0, -1000.0] {
        let q = north(105.007, LAT, metres);
        assert_eq!(net.locate(q.0, q.1, T0), None, "{metres} m south");
    }
    // Beyond the end of the line: 50 m past 105.02 still snaps to the end,
    // 150 m past does not.
    let east = |m: f64| {
        let p = Geodesic.destination(Point::new(105.02, LAT), 90.0, m);
        (p.x(), p.y())
    };
    let near_end = net
        .locate(east(50.0).0, east(50.0).1, T0)
        .expect("near the end");
    assert!((near_end.stake_m - 1_202_000.0).abs() < 1e-6);
    assert!((near_end.offset_m - 50.0).abs() < 0.05);
    assert_eq!(net.locate(east(150.0).0, east(150.0).1, T0), None);
    // Invalid input is no position, not a panic.
    assert_eq!(net.locate(f64::NAN, LAT, T0), None);
    assert_eq!(net.locate(105.0, 91.0, T0), None);
}

#[test]
fn the_nearer_carriageway_wins() {
    let net = network();
    let near_down = north(105.01, LAT, 20.0);
    assert_eq!(
        net.locate(near_down.0, near_down.1, T0).unwrap().direction,
        Direction::Down
    );
    let near_up = north(105.01, LAT, 10.0);
    assert_eq!(
        net.locate(near_up.0, near_up.1, T0).unwrap().direction,
        Direction::Up
    );
}

#[test]
fn structures_from_line_properties_and_polygons() {
    let net = network();
    let tunnel = net.locate(105.005, 27.1, T0).unwrap();
    assert_eq!(&*tunnel.road_id, "G56");
    assert_eq!(tunnel.structure, Some(Structure::Tunnel));
    // width_m 10: 6 m off is off the carriageway.
    let q = north(105.005, 27.1, 6.0);
    assert!(!net.locate(q.0, q.1, T0).unwrap().on_carriageway);

    assert_eq!(
        net.locate(105.0055, LAT, T0).unwrap().structure,
        Some(Structure::Bridge)
    );
    assert_eq!(net.locate(105.004, LAT, T0).unwrap().structure, None);
    // The bridge polygon is judged at the centre-line point, so a point
    // beside the bridge, outside the polygon, is still "on the bridge".
    let beside = north(105.0055, LAT, -70.0);
    assert_eq!(
        net.locate(beside.0, beside.1, T0).unwrap().structure,
        Some(Structure::Bridge)
    );
}

#[test]
fn zones_and_time_bounded_work_zones() {
    let net = network();
    let noon = at("2026-11-28T12:00:00+08:00");
    let evening = at("2026-11-28T19:00:00+08:00");
    let (sa_lon, sa_lat) = (105.0125, LAT - 0.0003);
    let p = net.locate(sa_lon, sa_lat, noon).unwrap();
    assert_eq!(p.zone, Some(ZoneKind::ServiceArea));
    assert_eq!(
        net.zone(p.zone_id.unwrap()).unwrap().name(),
        "service_area zone"
    );

    // Work zone alone: active only in its window, [from, to).
    let (wz_lon, wz_lat) = (105.017, LAT - 0.00005);
    assert_eq!(
        net.locate(wz_lon, wz_lat, noon).unwrap().zone,
        Some(ZoneKind::WorkZone)
    );
    assert_eq!(net.locate(wz_lon, wz_lat, evening).unwrap().zone, None);
    assert_eq!(
        net.locate(wz_lon, wz_lat, at("2026-11-28T18:00:00+08:00"))
            .unwrap()
            .zone,
        None
    );
    assert_eq!(
        net.locate(wz_lon, wz_lat, at("2026-11-28T08:00:00+08:00"))
            .unwrap()
            .zone,
        Some(ZoneKind::WorkZone)
    );

    // Work zone overlapping the service area wins while active.
    let overlap = (105.0138, LAT - 0.0003);
    assert_eq!(
        net.locate(overlap.0, overlap.1, noon).unwrap().zone,
        Some(ZoneKind::WorkZone)
    );
    assert_eq!(
        net.locate(overlap.0, overlap.1, evening).unwrap().zone,
        Some(ZoneKind::ServiceArea)
    );

    // Outside every polygon.
    assert_eq!(net.locate(105.002, LAT, noon).unwrap().zone, None);
    // zones_at lists every polygon there, structures included.
    let kinds: Vec<ZoneKind> = net
        .zones_at(overlap.0, overlap.1, noon)
        .iter()
        .map(|z| z.kind())
        .collect();
    assert_eq!(kinds, vec![ZoneKind::ServiceArea, ZoneKind::WorkZone]);
}

#[test]
fn interchanges_ahead_and_behind() {
    let net = network();
    let name = |ic: Option<&roadwatch::core::roads::Interchange>| ic.map(|i| i.name.to_string());
    let at = 1_201_000.0;
    assert_eq!(
        name(net.next_interchange("G76", Direction::Up, at, true)),
        Some("B".into())
    );
    assert_eq!(
        name(net.next_interchange("G76", Direction::Up, at, false)),
        Some("A".into())
    );
    assert_eq!(
        name(net.next_interchange("G76", Direction::Down, at, true)),
        Some("A".into())
    );
    assert_eq!(
        name(net.next_interchange("G76", Direction::Down, at, false)),
        Some("B".into())
    );
    // Exactly at an interchange: it is still ahead (you can take that exit).
    assert_eq!(
        name(net.next_interchange("G76", Direction::Up, 1_201_500.0, true)),
        Some("B".into())
    );
    assert_eq!(
        net.next_interchange("G76", Direction::Up, 1_201_600.0, true),
        None
    );
    assert_eq!(net.next_interchange("G99", Direction::Up, at, true), None);
    assert_eq!(net.road_interchanges("G76").count(), 2);
}

#[test]
fn service_areas_ahead() {
    let net = network();
    let sa = net
        .next_service_area("G76", Direction::Up, 1_200_000.0, true)
        .expect("one ahead");
    assert_eq!(sa.kind(), ZoneKind::ServiceArea);
    let stake = sa.road().unwrap().stake_m;
    // Its centre (105.013) projects 65 % of the way along the line.
    assert!((stake - 1_201_300.0).abs() < 1.0, "{stake}");
    assert!(net
        .next_service_area("G76", Direction::Down, 1_200_000.0, true)
        .is_none());
}

#[test]
fn distance_along_counts_real_metres_not_stake_metres() {
    let net = network();
    let length = geodesic((105.0, LAT), (105.02, LAT));
    let d = net
        .distance_along("G76", Direction::Up, 1_200_000.0, 1_202_000.0)
        .unwrap();
    assert!((d - length).abs() < 0.5, "{d} vs {length}");
    // Order does not matter; half the stakes is half the geometry here.
    let half = net
        .distance_along("G76", Direction::Up, 1_201_000.0, 1_200_000.0)
        .unwrap();
    assert!((half - length / 2.0).abs() < 0.5);
    // Beyond the line, stake metres count one for one.
    let beyond = net
        .distance_along("G76", Direction::Up, 1_202_000.0, 1_202_500.0)
        .unwrap();
    assert!((beyond - 500.0).abs() < 1e-6);
    assert_eq!(net.distance_along("G99", Direction::Up, 0.0, 1.0), None);
}

#[test]
fn stretch_opposite_and_point_at() {
    let net = network();
    let stretches = net.stretch("G76", 1_201_000.0, 500.0);
    assert_eq!(stretches.len(), 2);
    for s in &stretches {
        assert_eq!((s.stake_from_m, s.stake_to_m), (1_200_500.0, 1_201_500.0));
    }
    assert_eq!(stretches[0].direction, Direction::Up);
    assert_eq!(stretches[1].direction, Direction::Down);
    // Clipped at the ends of the road.
    let clipped = net.stretch("G76", 1_201_800.0, 500.0);
    assert!(clipped.iter().all(|s| s.stake_to_m == 1_202_000.0));

    let up = net.locate(105.01, LAT, T0).unwrap().line;
    let down = net.opposite(up, 1_201_000.0).expect("a divided road");
    assert_eq!(net.line(down).unwrap().direction(), Direction::Down);
    assert_eq!(net.opposite(down, 1_201_000.0), Some(up));
    assert_eq!(
        net.carriageway_at("G76", Direction::Down, 1_200_100.0),
        Some(down)
    );

    let (lon, lat) = net.point_at(up, 1_201_000.0).unwrap();
    assert!((lon - 105.01).abs() < 1e-12 && (lat - LAT).abs() < 1e-12);
    assert_eq!(net.point_at(up, 1_203_000.0), None);
    // point_at and locate are inverse along the whole line.
    for stake in [1_200_000.0, 1_200_123.4, 1_201_999.0] {
        for line in [up, down] {
            let (lon, lat) = net.point_at(line, stake).unwrap();
            let p = net.locate(lon, lat, T0).unwrap();
            assert!((p.stake_m - stake).abs() < 1e-3, "{stake}");
        }
    }
}

#[test]
fn stations_are_listed_with_their_road() {
    let net = network();
    let st = net.station("wx-01").expect("listed");
    assert_eq!(&*st.name, "西溪");
    let road = st.road.as_ref().expect("near G76");
    assert_eq!(&*road.road_id, "G76");
    assert!((road.stake_m - 1_201_000.0).abs() < 1.0);
    assert_eq!(net.stations().len(), 1);
}

#[test]
fn chain_breaks_from_per_vertex_stakes() {
    // Three vertices 0.01° apart; the middle one is K0+300 though it sits
    // halfway: a chain break compresses the first half.
    let net = load(vec![line(
        "S1",
        "carriageway",
        "up",
        json!([[106.0, LAT], [106.01, LAT], [106.02, LAT]]),
        0.0,
        1000.0,
        json!({"stakes_m": [null, 300, null]}),
    )]);
    let mid = net.locate(106.01, LAT, T0).unwrap();
    assert!((mid.stake_m - 300.0).abs() < 1e-6);
    let quarter = net.locate(106.005, LAT, T0).unwrap();
    assert!((quarter.stake_m - 150.0).abs() < 1e-6);
    let three_quarters = net.locate(106.015, LAT, T0).unwrap();
    assert!((three_quarters.stake_m - 650.0).abs() < 1e-6);
}

#[test]
fn multilinestring_gaps_are_not_road() {
    let coords = json!([
        [[106.0, LAT], [106.01, LAT]],
        [[106.02, LAT], [106.03, LAT]]
    ]);
    let feature = json!({"type": "Feature", "properties": {"kind": "carriageway", "road_id": "M1", "direction": "up",
        "stake_start_m": 0, "stake_end_m": 3000}, "geometry": {"type": "MultiLineString", "coordinates": coords}});
    let net = load(vec![feature]);
    assert_eq!(net.segment_count(), 2);
    // The gap counts its straight length, so stakes run evenly over 3 thirds.
    let p = net.locate(106.025, LAT, T0).unwrap();
    assert!((p.stake_m - 2500.0).abs() < 1e-6, "{}", p.stake_m);
    // The middle of the gap is ~500 m from either part.
    assert_eq!(net.locate(106.015, LAT, T0), None);
    let line = net.lines()[0].id();
    // Inside the gap there is no road to place a vehicle on, but point_at
    // interpolates across it like the stakes do.
    let (lon, _) = net.point_at(line, 1500.0).unwrap();
    assert!((lon - 106.015).abs() < 1e-9);
}

#[test]
fn bad_features_are_skipped_with_their_index_or_rejected_when_strict() {
    let good = line(
        "G1",
        "carriageway",
        "up",
        json!([[105.0, LAT], [105.01, LAT]]),
        0.0,
        1000.0,
        json!({}),
    );
    let features = vec![
        good.clone(),
        line(
            "G1",
            "carriageway",
            "up",
            json!([[105.0, LAT]]),
            0.0,
            1000.0,
            json!({}),
        ),
        line(
            "G1",
            "carriageway",
            "up",
            json!([[105.0, LAT], ["NaN", LAT]]),
            0.0,
            1000.0,
            json!({}),
        ),
        json!({"type": "Feature", "properties": {"kind": "service_area"}, "geometry": {"type": "Polygon",
            "coordinates": [[[105.0, 27.0], [105.1, 27.0], [105.1, 27.1], [105.0, 27.1]]]}}),
        json!({"type": "Feature", "properties": {"kind": "carriageway", "direction": "up", "stake_start_m": 0, "stake_end_m": 5},
            "geometry": {"type": "LineString", "coordinates": [[105.0, 27.0], [105.1, 27.0]]}}),
        line(
            "G1",
            "carriageway",
            "sideways",
            json!([[105.0, LAT], [105.01, LAT]]),
            0.0,
            1000.0,
            json!({}),
        ),
        line(
            "G1",
            "carriageway",
            "up",
            json!([[105.0, LAT], [105.01, LAT]]),
            7.0,
            7.0,
            json!({}),
        ),
        point(
            json!({"kind": "weigh_station", "name": "unknown kinds are notes"}),
            105.0,
            LAT,
        ),
        rect(
            "work_zone",
            105.0,
            27.0,
            105.1,
            27.1,
            json!({"active_from": "tomorrow"}),
        ),
        point(
            json!({"kind": "weather_station", "station_id": "bad id!"}),
            105.0,
            LAT,
        ),
    ];
    let doc = json!({"type": "FeatureCollection", "features": features});
    let bytes = doc.to_string();

    let net =
        RoadNetwork::from_geojson(bytes.as_bytes(), &LoadOptions::default()).expect("lenient load");
    assert_eq!(net.lines().len(), 1, "only the good line survives");
    let errors: Vec<usize> = net
        .issues()
        .iter()
        .filter(|i| i.level == IssueLevel::Error)
        .filter_map(|i| i.feature)
        .collect();
    assert_eq!(errors, vec![1, 2, 3, 4, 5, 6, 8, 9]);
    let message = |f: usize| {
        net.issues()
            .iter()
            .find(|i| i.feature == Some(f))
            .unwrap()
            .message
            .clone()
    };
    assert!(message(1).contains("fewer than 2"), "{}", message(1));
    assert!(message(2).contains("non-number"), "{}", message(2));
    assert!(message(3).contains("not closed"), "{}", message(3));
    assert!(message(4).contains("road_id"), "{}", message(4));
    let note = net
        .issues()
        .iter()
        .find(|i| i.feature == Some(7))
        .expect("a note for the unknown kind");
    assert_eq!(note.level, IssueLevel::Note);

    let strict = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    match RoadNetwork::from_geojson(bytes.as_bytes(), &strict) {
        Err(LoadError::Rejected(issues)) => {
            let features: Vec<usize> = issues.iter().filter_map(|i| i.feature).collect();
            assert_eq!(
                features,
                vec![1, 2, 3, 4, 5, 6, 8, 9],
                "every problem at once, notes left out"
            );
        }
        other => panic!("strict load must be rejected, got {other:?}"),
    }
    // Strict with only notes is fine: an unknown kind is not an error.
    let only_note = json!({"type": "FeatureCollection", "features": [good, features_note()]});
    assert!(RoadNetwork::from_geojson(only_note.to_string().as_bytes(), &strict).is_ok());
}

fn features_note() -> Value {
    point(json!({"kind": "weigh_station"}), 105.0, LAT)
}

#[test]
fn whole_file_failures() {
    let opts = LoadOptions::default();
    assert!(matches!(
        RoadNetwork::from_geojson(b"", &opts),
        Err(LoadError::Json(_))
    ));
    assert!(matches!(
        RoadNetwork::from_geojson(b"[1,2]", &opts),
        Err(LoadError::NotGeoJson(_))
    ));
    assert!(matches!(
        RoadNetwork::from_geojson(br#"{"type":"Topology"}"#, &opts),
        Err(LoadError::NotGeoJson(_))
    ));
    let bad_snap = LoadOptions {
        max_snap_m: f64::NAN,
        strict: false,
    };
    assert!(matches!(
        RoadNetwork::from_geojson(br#"{"type":"FeatureCollection","features":[]}"#, &bad_snap),
        Err(LoadError::Options(_))
    ));
    // An empty collection loads (and says so) unless strict.
    let empty =
        RoadNetwork::from_geojson(br#"{"type":"FeatureCollection","features":[]}"#, &opts).unwrap();
    assert_eq!(empty.locate(105.0, 27.0, T0), None);
    assert!(!empty.issues().is_empty());
    let strict = LoadOptions {
        strict: true,
        ..opts
    };
    assert!(
        RoadNetwork::from_geojson(br#"{"type":"FeatureCollection","features":[]}"#, &strict)
            .is_err()
    );
}

#[test]
fn position_json_has_exactly_the_contract_fields() {
    let net = network();
    let q = north(105.0055, LAT, -3.0);
    let p = net.locate(q.0, q.1, T0).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "road_id",
        "name",
        "direction",
        "kind",
        "stake_m",
        "stake",
        "offset_m",
        "on_carriageway",
        "structure",
        "zone",
    ];
    let mut sorted_keys = keys.clone();
    sorted_keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted_keys, expected);
    assert_eq!(v["road_id"], "G76");
    assert_eq!(v["direction"], "up");
    assert_eq!(v["kind"], "carriageway");
    assert_eq!(v["structure"], "bridge");
    assert_eq!(v["zone"], Value::Null);
    assert_eq!(v["on_carriageway"], true);
    assert_eq!(v["offset_m"], 3.0);
    assert_eq!(v["stake"], Stake(p.stake_m).to_string());
    assert_eq!(
        v["stake_m"].as_f64().unwrap(),
        (p.stake_m * 10.0).round() / 10.0
    );
}

#[test]
fn network_is_shareable_across_threads() {
    let net = std::sync::Arc::new(network());
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let net = net.clone();
            std::thread::spawn(move || {
                net.locate(105.005 + 0.001 * f64::from(i), LAT, T0)
                    .map(|p| p.stake_m)
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().is_some());
    }
}

#[test]
fn a_chain_break_is_not_road() {
    // 短链: the stake jumps from K0+1000 to K0+1300 where the two features
    // meet; no road lies between.
    let net = load(vec![
        line(
            "C1",
            "carriageway",
            "up",
            json!([[105.0, LAT], [105.01, LAT]]),
            0.0,
            1000.0,
            json!({}),
        ),
        line(
            "C1",
            "carriageway",
            "up",
            json!([[105.01, LAT], [105.02, LAT]]),
            1300.0,
            2300.0,
            json!({}),
        ),
    ]);
    let first = geodesic((105.0, LAT), (105.01, LAT));
    let second = geodesic((105.01, LAT), (105.02, LAT));
    let whole = net
        .distance_along("C1", Direction::Up, 0.0, 2300.0)
        .unwrap();
    assert!((whole - (first + second)).abs() < 0.5, "{whole}");
    let across = net
        .distance_along("C1", Direction::Up, 500.0, 1500.0)
        .unwrap();
    assert!(
        (across - (first * 0.5 + second * 0.2)).abs() < 0.5,
        "{across}"
    );
    // Stakes inside the jump exist on no line.
    assert_eq!(
        net.carriageway_at("C1", Direction::Up, 1150.0).map(|_| ()),
        Some(()),
        "within tolerance of both"
    );
    assert!(net.point_at(net.lines()[0].id(), 1150.0).is_none());
    assert!(net.point_at(net.lines()[1].id(), 1150.0).is_none());
}
