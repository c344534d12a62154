//! Real data: WSDOT road-weather readings (tests/fixtures/wsdot), converted to the
//! contract's `weather-observations` messages here, run through the decoder and the
//! engine as a replay would. Dirty rows must go to the DLQ with a reason; the others
//! must produce exactly the alerts their values imply under DOMAIN.md's rules, which the
//! `implied` oracle below derives from the readings independently of the detector.
//!
//! Conversion (ws-dottie's schema of the WSDOT API): wind km/h → m/s; visibility is
//! already metres; precipitation over the past hour (mm) stands for mm/h (the API's
//! "intensity" field has no physical unit); of several surface sensors the coldest
//! temperature and the worst condition count (ice > snow > wet > moist > dry).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use roadwatch::core::engine::Engine;
use roadwatch::core::model::{
    decode_record, AlertKind, AlertStatus, DecodeContext, Record, RejectReason, Stream,
};
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use serde_json::{json, Value};

fn readings() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wsdot/wsdot-weather-readings.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn surface(r: &Value) -> (Option<f64>, Option<&'static str>) {
    let sensors = r["SurfaceMeasurements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let temp = sensors
        .iter()
        .filter_map(|m| m["SurfaceTemperature"].as_f64())
        .min_by(f64::total_cmp);
    let rank = |code: i64| match code {
        104 => Some((4, "ice")),
        105 => Some((3, "snow")),
        102 => Some((2, "wet")),
        103 => Some((1, "damp")),
        101 => Some((0, "dry")),
        _ => None,
    };
    let state = sensors
        .iter()
        .filter_map(|m| m["RoadSurfaceCondition"].as_i64().and_then(rank))
        .max()
        .map(|(_, s)| s);
    (temp, state)
}

/// One WSDOT row as the contract's message (null stays null: "not measured").
fn to_contract(i: usize, r: &Value) -> Value {
    let (temp, state) = surface(r);
    let kmh = |v: &Value| v.as_f64().map(|x| x / 3.6);
    json!({
        "event_id": format!("wsdot-{}-{i}", r["StationId"].as_str().unwrap_or("x")),
        "station_id": r["StationId"],
        "ts": r["ReadingTime"],
        "lon": r["Longitude"],
        "lat": r["Latitude"],
        "visibility_m": r["Visibility"],
        "precipitation_mm_h": r["PrecipitationPast1Hour"],
        "wind_speed_ms": kmh(&r["AverageWindSpeed"]),
        "wind_gust_ms": kmh(&r["WindGust"]),
        "road_surface_temp_c": temp,
        "road_surface_state": state,
        "air_temp_c": r["AirTemperature"],
    })
}

/// The (station, subtype) pairs DOMAIN.md's rules imply: a level is entered by one
/// reading when that level is critical, else by two consecutive readings that meet it.
fn implied(
    accepted: &[Value],
    s: &roadwatch::core::settings::WeatherSettings,
) -> BTreeSet<(String, String)> {
    let mut by_station: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for v in accepted {
        by_station
            .entry(v["station_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    // Per subtype: (level met by this reading, is that level critical).
    let fog = |v: &Value| match v["visibility_m"].as_f64() {
        Some(x) if x < s.visibility_levels_m[3] => Some((4, true)),
        Some(x) if x < s.visibility_levels_m[2] => Some((3, false)),
        Some(x) if x < s.visibility_levels_m[1] => Some((2, false)),
        Some(x) if x < s.visibility_levels_m[0] => Some((1, false)),
        _ => None,
    };
    let ice = |v: &Value| {
        let state = v["road_surface_state"].as_str();
        if state == Some("ice") {
            return Some((2, true));
        }
        let cold = v["road_surface_temp_c"]
            .as_f64()
            .is_some_and(|t| t <= s.ice_surface_temp_c);
        let wet = matches!(state, Some("wet" | "snow"))
            || v["precipitation_mm_h"].as_f64().is_some_and(|p| p > 0.0);
        (cold && wet).then_some((1, false))
    };
    let wind = |v: &Value| match v["wind_gust_ms"].as_f64() {
        Some(g) if g >= s.wind_gust_levels_mps[2] => Some((3, true)),
        Some(g) if g >= s.wind_gust_levels_mps[1] => Some((2, false)),
        Some(g) if g >= s.wind_gust_levels_mps[0] => Some((1, false)),
        _ => None,
    };
    let rain = |v: &Value| match v["precipitation_mm_h"].as_f64() {
        Some(p) if p >= s.rain_levels_mm_h[1] => Some((2, false)),
        Some(p) if p >= s.rain_levels_mm_h[0] => Some((1, false)),
        _ => None,
    };
    type Rule<'a> = (&'static str, &'a dyn Fn(&Value) -> Option<(u8, bool)>);
    let rules: [Rule; 4] = [
        ("fog", &fog),
        ("ice", &ice),
        ("wind", &wind),
        ("rain", &rain),
    ];
    let mut out = BTreeSet::new();
    for (station, series) in &by_station {
        for (subtype, rule) in rules {
            let levels: Vec<_> = series.iter().map(|v| rule(v)).collect();
            let single_critical = levels.iter().any(|l| matches!(l, Some((_, true))));
            let two_in_a_row = levels.windows(2).any(|w| w[0].is_some() && w[1].is_some());
            if single_critical || two_in_a_row {
                out.insert((station.clone(), subtype.to_owned()));
            }
        }
    }
    out
}

#[test]
fn wsdot_readings_dead_letter_the_dirty_rows_and_alert_as_their_values_imply() {
    let settings = roadwatch::config::defaults();
    let roads = RoadNetwork::from_geojson(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/roads/bijie.geojson"
        ))
        .unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    let mut engine = Engine::new(settings.engine.clone(), Arc::new(roads));

    let rows = readings();
    assert_eq!(rows.len(), 131);
    let mut messages: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| to_contract(i, r))
        .collect();
    // A device stream arrives in time order per station; rows without a time keep
    // their place at the end (they are refused anyway).
    messages.sort_by_key(|m| {
        m["ts"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| "~".into())
    });

    let mut dlq: BTreeMap<RejectReason, usize> = BTreeMap::new();
    let mut accepted = Vec::new();
    let mut alerts = Vec::new();
    for m in &messages {
        let bytes = serde_json::to_vec(m).unwrap();
        // As in replay and live mode, "future" is relative to the wall clock.
        let ctx = DecodeContext {
            now_ms: Some(chrono::Utc::now().timestamp_millis()),
            max_future_skew_ms: settings.engine.time.max_future_skew_ms,
            limits: roadwatch::core::settings::InputLimits::DEFAULT,
        };
        match decode_record(Stream::Weather, &bytes, &ctx) {
            Ok(record @ Record::Weather(_)) => {
                engine.on_record(&record, &mut alerts);
                accepted.push(m.clone());
            }
            Ok(other) => panic!("decoded as {other:?}"),
            Err(reject) => *dlq.entry(reject.reason).or_default() += 1,
        }
    }

    // Dirty rows: 68 without a reading time; one reading dated 2035, ten years ahead.
    let no_time = rows.iter().filter(|r| r["ReadingTime"].is_null()).count();
    assert_eq!(no_time, 68);
    assert_eq!(dlq.get(&RejectReason::MissingField), Some(&no_time));
    assert_eq!(dlq.get(&RejectReason::FutureTimestamp), Some(&1));
    assert_eq!(dlq.values().sum::<usize>(), 69, "{dlq:?}");
    assert_eq!(accepted.len(), 131 - 69);
    assert_eq!(engine.stats().late_dropped, 0);

    let raised: BTreeSet<(String, String)> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::SevereWeather && a.status != AlertStatus::Cleared)
        .map(|a| {
            let station = a.details["station_id"].as_str().unwrap().to_owned();
            (station, a.subtype.clone())
        })
        .collect();
    let expected = implied(&accepted, &settings.engine.weather);
    assert!(!expected.is_empty(), "the sample implies some alerts");
    assert_eq!(raised, expected);
    // Every alert is well formed: the required details are present.
    for a in &alerts {
        assert!(a.details.contains_key("level"), "{a:?}");
        assert!(a.details.contains_key("stake_from_m") && a.details.contains_key("stake_to_m"));
    }
}
