//! `roadwatch roads locate` / `roads stats` as CONTRACT.md section 7 says,
//! through the adapter functions the CLI calls.

use std::io::Cursor;
use std::path::Path;

use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use roadwatch::io::roads_cmd::{load_network_file, locate_command, stats_command};
use serde_json::{json, Value};

/// One up carriageway along 27°N, a service area beside it, a work zone
/// active on 2026-11-28 only, an interchange and a station.
fn network_json() -> Value {
    json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "carriageway", "road_id": "G76", "name": "厦蓉高速", "direction": "up",
            "stake_start_m": 1_200_000, "stake_end_m": 1_202_000},
         "geometry": {"type": "LineString", "coordinates": [[105.0, 27.0], [105.02, 27.0]]}},
        {"type": "Feature", "properties": {"kind": "service_area", "name": "西溪服务区"},
         "geometry": {"type": "Polygon", "coordinates": [[[105.012, 26.9992], [105.014, 26.9992], [105.014, 26.9999], [105.012, 26.9999], [105.012, 26.9992]]]}},
        {"type": "Feature", "properties": {"kind": "work_zone", "name": "resurfacing",
            "active_from": "2026-11-28T00:00:00+08:00", "active_to": "2026-11-29T00:00:00+08:00"},
         "geometry": {"type": "Polygon", "coordinates": [[[105.001, 26.9995], [105.003, 26.9995], [105.003, 27.0005], [105.001, 27.0005], [105.001, 26.9995]]]}},
        {"type": "Feature", "properties": {"kind": "interchange", "road_id": "G76", "name": "毕节东", "stake_m": 1_201_500},
         "geometry": {"type": "Point", "coordinates": [105.015, 27.0]}},
        {"type": "Feature", "properties": {"kind": "weather_station", "station_id": "wx-07", "name": "七星关"},
         "geometry": {"type": "Point", "coordinates": [105.01, 27.001]}},
        {"type": "Feature", "properties": {"kind": "carriageway", "road_id": "G76"},
         "geometry": {"type": "LineString", "coordinates": [[105.0, 27.0]]}}
    ]})
}

fn network() -> RoadNetwork {
    RoadNetwork::from_geojson(
        network_json().to_string().as_bytes(),
        &LoadOptions::default(),
    )
    .unwrap()
}

fn run_locate(net: &RoadNetwork, point: Option<(f64, f64)>, input: &str) -> Vec<Value> {
    let mut out = Vec::new();
    locate_command(net, point, Cursor::new(input.as_bytes()), &mut out)
        .expect("never fails on bad input");
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect()
}

#[test]
fn locate_with_coordinates_prints_one_position_or_null() {
    let net = network();
    let out = run_locate(&net, Some((105.01, 27.0)), "ignored");
    assert_eq!(out.len(), 1);
    let p = &out[0];
    assert_eq!(p["road_id"], "G76");
    assert_eq!(p["name"], "厦蓉高速");
    assert_eq!(p["direction"], "up");
    assert_eq!(p["kind"], "carriageway");
    assert_eq!(p["stake_m"], 1_201_000.0);
    assert_eq!(p["stake"], "K1201+000");
    assert_eq!(p["offset_m"], 0.0);
    assert_eq!(p["on_carriageway"], true);
    assert_eq!(p["structure"], Value::Null);
    assert_eq!(p["zone"], Value::Null);
    assert_eq!(p.as_object().unwrap().len(), 10);

    assert_eq!(run_locate(&net, Some((106.0, 27.0)), ""), vec![Value::Null]);
}

#[test]
fn locate_batch_answers_every_line_in_order() {
    let net = network();
    let input = [
        r#"{"lon":105.005,"lat":27.0}"#,
        r#"{"lon":106.0,"lat":27.0}"#,
        "not json",
        "",
        r#"{"lon":105.013,"lat":26.9996}"#,
        r#"{"lon":105.002,"lat":27.0,"ts":"2026-11-28T12:00:00+08:00"}"#,
        r#"{"lon":105.002,"lat":27.0,"ts":"2026-11-29T12:00:00+08:00"}"#,
        r#"{"lon":105.002,"lat":27.0,"ts":1795838400000}"#,
        r#"{"lon":105.002,"lat":95.0}"#,
        r#"{"lat":27.0}"#,
        "\u{feff}{",
        r#"{"lon":105.015,"lat":27.0}"#,
    ]
    .join("\n");
    let out = run_locate(&net, None, &input);
    assert_eq!(out.len(), 12, "one output line per input line");
    assert_eq!(out[0]["stake"], "K1200+500");
    assert_eq!(out[1], Value::Null, "no road within 100 m");
    assert_eq!(out[2], Value::Null, "bad JSON");
    assert_eq!(out[3], Value::Null, "blank line");
    assert_eq!(out[4]["zone"], "service_area");
    assert_eq!(out[5]["zone"], "work_zone", "ts inside the work zone's day");
    assert_eq!(out[6]["zone"], Value::Null, "ts after it");
    // 2026-11-28T12:00:00+08:00 as epoch milliseconds.
    assert_eq!(out[7]["zone"], "work_zone");
    assert_eq!(out[8], Value::Null, "latitude out of range");
    assert_eq!(out[9], Value::Null, "no lon");
    assert_eq!(out[10], Value::Null);
    assert_eq!(out[11]["stake"], "K1201+500");
}

#[test]
fn locate_batch_survives_invalid_utf8() {
    let net = network();
    let mut input = b"{\"lon\":105.005,\"lat\":27.0}\n\xff\xfe\n".to_vec();
    input.extend_from_slice(br#"{"lon":105.005,"lat":27.0}"#);
    let mut out = Vec::new();
    locate_command(&net, None, Cursor::new(input), &mut out).unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], "null");
    assert_ne!(lines[2], "null");
}

#[test]
fn load_network_file_names_the_file_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.geojson");
    let err = load_network_file(&missing, &LoadOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("nope.geojson"), "{err:#}");

    let bad = dir.path().join("bad.geojson");
    std::fs::write(&bad, "{ not json").unwrap();
    let err = load_network_file(&bad, &LoadOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("bad.geojson"), "{err:#}");

    let good = dir.path().join("good.geojson");
    std::fs::write(&good, network_json().to_string()).unwrap();
    let net = load_network_file(&good, &LoadOptions::default()).unwrap();
    assert_eq!(net.lines().len(), 1);
    // The broken line makes a strict load fail, naming the file and feature.
    let strict = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    let err = load_network_file(&good, &strict).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("good.geojson") && text.contains("feature 5"),
        "{text}"
    );
}

#[test]
fn stats_report_counts_per_road_and_issues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roads.geojson");
    std::fs::write(&path, network_json().to_string()).unwrap();
    let mut out = Vec::new();
    stats_command(&path, &LoadOptions::default(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for expected in [
        "1 roads, 1 lines, 1 segments",
        "G76 厦蓉高速: 1 interchanges, 1 service areas",
        "carriageway up",
        "K1200+000 – K1202+000",
        "zones: service_area 1, work_zone 1",
        "weather stations: 1 (0 more than 1 km",
        "wx-07",
        "1 error(s)",
        "feature 5",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(stats_command(
        Path::new("/nonexistent/roads.geojson"),
        &LoadOptions::default(),
        Vec::new()
    )
    .is_err());
}

#[test]
fn stats_on_the_osm_fixture() {
    let mut out = Vec::new();
    stats_command(
        Path::new("tests/fixtures/osm/motorways-rhine-neckar.geojson"),
        &LoadOptions::default(),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("A5 A 5:"), "{text}");
    assert!(text.contains("stakes by source (lines): "), "{text}");
}
