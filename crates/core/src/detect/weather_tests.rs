//! Tests of the severe-weather detector: one per rule, with the edges, on a small
//! synthetic road (G76, K1200–K1220, both carriageways, stations beside it).
use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::model::is_valid_identifier;
use crate::roads::LoadOptions;

/// 2026-11-28T13:15:30Z.
const T0: EventTime = EventTime::from_ms(1_795_871_730_000);
const MIN: i64 = 60_000;
const LAT: f64 = 27.0;
/// The station of most tests: ~55 m south of the up carriageway at K1210.
const STATION: &str = "wx-01";
const STATION_STAKE: f64 = 1_210_000.0;

fn network() -> &'static RoadNetwork {
    static NET: OnceLock<RoadNetwork> = OnceLock::new();
    NET.get_or_init(|| {
        let north = LAT + 0.00018;
        let doc = format!(
            r#"{{"type":"FeatureCollection","features":[
 {{"type":"Feature","geometry":{{"type":"LineString","coordinates":[[105.0,{LAT}],[105.2,{LAT}]]}},
  "properties":{{"kind":"carriageway","road_id":"G76","name":"厦蓉高速","direction":"up","stake_start_m":1200000,"stake_end_m":1220000}}}},
 {{"type":"Feature","geometry":{{"type":"LineString","coordinates":[[105.2,{north}],[105.0,{north}]]}},
  "properties":{{"kind":"carriageway","road_id":"G76","name":"厦蓉高速","direction":"down","stake_start_m":1220000,"stake_end_m":1200000}}}},
 {{"type":"Feature","geometry":{{"type":"Point","coordinates":[105.1,26.9995]}},
  "properties":{{"kind":"weather_station","station_id":"wx-01","name":"测试气象站"}}}},
 {{"type":"Feature","geometry":{{"type":"Point","coordinates":[105.01,26.9995]}},
  "properties":{{"kind":"weather_station","station_id":"wx-end","name":"路端气象站"}}}},
 {{"type":"Feature","geometry":{{"type":"Point","coordinates":[105.1,27.1]}},
  "properties":{{"kind":"weather_station","station_id":"wx-far","name":"远处气象站"}}}}
]}}"#
        );
        RoadNetwork::from_geojson(doc.as_bytes(), &LoadOptions::default()).expect("test network")
    })
}

fn settings() -> WeatherSettings {
    crate::settings::test_settings().weather
}

fn output(locale: Locale) -> OutputSettings {
    OutputSettings {
        locale,
        ..crate::settings::test_settings().output
    }
}

fn blank(station: &str, minute: i64) -> WeatherObservation {
    WeatherObservation {
        event_id: format!("{station}-{minute:05}"),
        station_id: station.to_owned(),
        ts: T0 + minute * MIN,
        lon: 105.1,
        lat: 26.9995,
        visibility_m: None,
        precipitation_mm_h: None,
        wind_speed_mps: None,
        wind_gust_mps: None,
        road_surface_temp_c: None,
        road_surface_state: None,
        air_temp_c: None,
    }
}

/// A detector, a station and a minute counter: each `push` is the next minute.
struct Rig {
    det: WeatherDetector,
    station: String,
    minute: i64,
    all: Vec<AlertDraft>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(settings(), Locale::ZhCn)
    }

    fn with(s: WeatherSettings, locale: Locale) -> Rig {
        Rig {
            det: WeatherDetector::new(s, output(locale)),
            station: STATION.to_owned(),
            minute: 0,
            all: Vec::new(),
        }
    }

    fn next(&mut self) -> WeatherObservation {
        self.minute += 1;
        blank(&self.station, self.minute)
    }

    fn push(&mut self, obs: WeatherObservation) -> Vec<AlertDraft> {
        let mut out = Vec::new();
        self.det.on_observation(&obs, network(), &mut out);
        self.all.extend(out.iter().cloned());
        out
    }

    /// Visibility readings, one a minute; every draft they caused.
    fn vis(&mut self, values: &[Option<f64>]) -> Vec<AlertDraft> {
        let mut out = Vec::new();
        for v in values {
            let mut o = self.next();
            o.visibility_m = *v;
            out.extend(self.push(o));
        }
        out
    }

    fn vis_all(&mut self, values: &[f64]) -> Vec<AlertDraft> {
        let values: Vec<Option<f64>> = values.iter().map(|v| Some(*v)).collect();
        self.vis(&values)
    }

    fn gusts(&mut self, values: &[f64]) -> Vec<AlertDraft> {
        let mut out = Vec::new();
        for v in values {
            let mut o = self.next();
            o.wind_gust_mps = Some(*v);
            out.extend(self.push(o));
        }
        out
    }

    fn rain(&mut self, values: &[f64]) -> Vec<AlertDraft> {
        let mut out = Vec::new();
        for v in values {
            let mut o = self.next();
            o.precipitation_mm_h = Some(*v);
            out.extend(self.push(o));
        }
        out
    }

    fn surface(
        &mut self,
        temp: Option<f64>,
        state: Option<RoadSurfaceState>,
        precip: Option<f64>,
    ) -> Vec<AlertDraft> {
        let mut o = self.next();
        o.road_surface_temp_c = temp;
        o.road_surface_state = state;
        o.precipitation_mm_h = precip;
        self.push(o)
    }

    fn fog_level(&self) -> u8 {
        self.det.fog_level_at("G76", STATION_STAKE)
    }
}

fn level(d: &AlertDraft) -> i64 {
    d.details["level"].as_i64().expect("details.level")
}

fn statuses(drafts: &[AlertDraft]) -> Vec<(AlertStatus, i64)> {
    drafts.iter().map(|d| (d.status, level(d))).collect()
}

/// Visibility readings on a fresh detector; the fog level they leave.
fn fog_level_after(values: &[f64]) -> u8 {
    let mut rig = Rig::new();
    rig.vis_all(values);
    rig.fog_level()
}

#[test]
fn visibility_thresholds_are_strict() {
    assert_eq!(
        fog_level_after(&[500.0, 500.0, 500.0]),
        0,
        "500 m is not < 500 m"
    );
    assert_eq!(fog_level_after(&[499.9, 499.9]), 1);
    assert_eq!(
        fog_level_after(&[200.0, 200.0]),
        1,
        "200 m is level 1, not 2"
    );
    assert_eq!(fog_level_after(&[199.9, 199.9]), 2);
    assert_eq!(fog_level_after(&[100.0, 100.0]), 2);
    assert_eq!(fog_level_after(&[99.9, 99.9]), 3);
    assert_eq!(fog_level_after(&[50.0, 50.0]), 3, "50 m is level 3, not 4");
    assert_eq!(fog_level_after(&[49.9]), 4);
}

#[test]
fn a_level_needs_two_observations() {
    let mut rig = Rig::new();
    assert!(
        rig.vis_all(&[150.0]).is_empty(),
        "one reading is not enough"
    );
    assert_eq!(rig.fog_level(), 0);
    let out = rig.vis_all(&[150.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 2)]);
    let a = &out[0];
    assert_eq!(a.kind, AlertKind::SevereWeather);
    assert_eq!(a.subtype, "fog");
    assert_eq!(a.severity, Severity::Severe);
    assert_eq!(a.event_ms, T0 + 2 * MIN);
    assert_eq!(a.source_event_ids, vec!["wx-01-00001", "wx-01-00002"]);
    assert_eq!(
        a.alert_id,
        alert_id("wx", &[STATION, "fog"], T0 + 2 * MIN),
        "per station+subtype episode, from the entry's ts"
    );
    assert_eq!(a.details["forecast"], json!(false));
    assert_eq!(rig.fog_level(), 2);
}

#[test]
fn a_critical_level_enters_on_one_observation() {
    let mut rig = Rig::new();
    let out = rig.vis_all(&[40.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 4)]);
    assert_eq!(out[0].severity, Severity::Critical);
    assert_eq!(out[0].details["speed_limit_kmh"], json!(20));
    assert!(
        out[0].summary.contains("限速 20 km/h"),
        "{}",
        out[0].summary
    );
    assert_eq!(out[0].source_event_ids, vec!["wx-01-00001"]);
}

#[test]
fn a_null_neither_counts_nor_resets() {
    let mut rig = Rig::new();
    let out = rig.vis(&[Some(150.0), None, Some(150.0)]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 2)]);
    assert_eq!(out[0].event_ms, T0 + 3 * MIN);
    assert_eq!(out[0].source_event_ids, vec!["wx-01-00001", "wx-01-00003"]);
    // Nulls in a leaving run do not break it either.
    let out = rig.vis(&[Some(700.0), None, Some(700.0), None, None]);
    assert!(out.is_empty());
    let out = rig.vis(&[Some(700.0)]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Cleared, 0)]);
    // An observation measuring nothing about fog says nothing about it.
    let mut rig = Rig::new();
    rig.vis_all(&[150.0]);
    let mut o = rig.next();
    o.wind_gust_mps = Some(3.0);
    assert!(rig.push(o).is_empty());
    assert_eq!(
        statuses(&rig.vis_all(&[150.0])),
        vec![(AlertStatus::New, 2)]
    );
}

#[test]
fn leaving_needs_three_consecutive_readings_clear_by_the_margin() {
    let mut rig = Rig::new();
    rig.vis_all(&[150.0, 150.0]);
    assert_eq!(rig.fog_level(), 2);
    // 230 m is above 200 m but inside the 20% band (< 240 m): not clear.
    assert!(rig.vis_all(&[230.0, 230.0, 230.0, 230.0]).is_empty());
    assert_eq!(rig.fog_level(), 2);
    // Two clear readings, one in the band, two clear: the run was broken.
    assert!(rig.vis_all(&[240.0, 240.0, 230.0, 240.0, 240.0]).is_empty());
    assert_eq!(rig.fog_level(), 2);
    let out = rig.vis_all(&[240.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 1)]);
    assert_eq!(out[0].severity, Severity::Warning);
    assert_eq!(
        out[0].source_event_ids,
        vec!["wx-01-00010", "wx-01-00011", "wx-01-00012"]
    );
}

#[test]
fn raising_and_lowering_update_and_leaving_all_levels_clears() {
    let mut rig = Rig::new();
    let out = rig.vis_all(&[
        400.0, 400.0, // new, level 1
        150.0, 150.0, // update, level 2
        80.0, 80.0, // update, level 3
        150.0, 150.0, 150.0, // clears level 3 (≥ 120 m) and meets level 2: down to 2
        700.0, 700.0, 700.0, // clears every level (level 1 needs ≥ 600 m)
    ]);
    assert_eq!(
        statuses(&out),
        vec![
            (AlertStatus::New, 1),
            (AlertStatus::Update, 2),
            (AlertStatus::Update, 3),
            (AlertStatus::Update, 2),
            (AlertStatus::Cleared, 0),
        ]
    );
    let severities: Vec<Severity> = out.iter().map(|d| d.severity).collect();
    use Severity::*;
    assert_eq!(severities, vec![Warning, Severe, Severe, Severe, Severe]);
    assert!(out.iter().all(|d| d.alert_id == out[0].alert_id));
    assert_eq!(rig.fog_level(), 0);
    // The next episode is a new alert with a new id.
    let again = rig.vis_all(&[150.0, 150.0]);
    assert_eq!(statuses(&again), vec![(AlertStatus::New, 2)]);
    assert_ne!(again[0].alert_id, out[0].alert_id);
}

#[test]
fn a_drop_may_skip_levels_to_the_highest_not_cleared() {
    let mut rig = Rig::new();
    rig.vis_all(&[80.0, 80.0]);
    // 450 m clears levels 3 and 2 by the margin but still meets level 1.
    let out = rig.vis_all(&[450.0, 450.0, 450.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 1)]);
    // 550 m neither meets level 1 nor clears it (< 600 m): level 1 holds.
    assert!(rig.vis_all(&[550.0; 6]).is_empty());
    assert_eq!(rig.fog_level(), 1);
}

#[test]
fn alternating_readings_do_not_flap() {
    let mut rig = Rig::new();
    rig.vis_all(&[150.0, 150.0]);
    let noisy: Vec<f64> = (0..20)
        .map(|i| if i % 2 == 0 { 190.0 } else { 210.0 })
        .collect();
    assert!(rig.vis_all(&noisy).is_empty(), "level 2 holds");
    assert_eq!(rig.fog_level(), 2);

    let mut fresh = Rig::new();
    let out = fresh.vis_all(&noisy);
    assert_eq!(
        statuses(&out),
        vec![(AlertStatus::New, 1)],
        "never two in a row below 200 m"
    );
}

#[test]
fn ice_levels() {
    use RoadSurfaceState::*;
    let mut rig = Rig::new();
    assert!(rig.surface(Some(-1.0), Some(Wet), None).is_empty());
    let out = rig.surface(Some(-1.0), Some(Wet), None);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 1)]);
    assert_eq!((out[0].subtype, out[0].severity), ("ice", Severity::Severe));
    assert_eq!(out[0].details["road_surface_temp_c"], json!(-1.0));
    assert_eq!(out[0].details["road_surface_state"], json!("wet"));
    // Ice on the surface is critical: one observation.
    let out = rig.surface(Some(-2.0), Some(Ice), None);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 2)]);
    assert_eq!(out[0].severity, Severity::Critical);
    assert_eq!(out[0].details["speed_limit_kmh"], json!(30));
    for _ in 0..2 {
        assert!(rig.surface(Some(3.0), Some(Dry), Some(0.0)).is_empty());
    }
    let out = rig.surface(Some(3.0), Some(Dry), Some(0.0));
    assert_eq!(statuses(&out), vec![(AlertStatus::Cleared, 0)]);
    assert_eq!(
        out[0].severity,
        Severity::Critical,
        "cleared repeats the last severity"
    );

    // At the threshold (≤ 0 °C) with snow; and with precipitation but no state sensor.
    let mut rig = Rig::new();
    rig.surface(Some(0.0), Some(Snow), None);
    assert_eq!(rig.surface(Some(0.0), Some(Snow), None).len(), 1);
    let mut rig = Rig::new();
    rig.surface(Some(-0.5), None, Some(1.2));
    assert_eq!(rig.surface(Some(-0.5), None, Some(1.2)).len(), 1);
    // Cold and dry, and warm and wet: no ice.
    let mut rig = Rig::new();
    for _ in 0..3 {
        assert!(rig.surface(Some(-3.0), Some(Dry), Some(0.0)).is_empty());
        assert!(rig.surface(Some(2.0), Some(Wet), Some(3.0)).is_empty());
    }
    // A wet surface with no temperature is undecided: it neither enters nor resets.
    let mut rig = Rig::new();
    rig.surface(Some(-1.0), Some(Wet), None);
    assert!(rig.surface(None, Some(Wet), None).is_empty());
    assert_eq!(rig.surface(Some(-1.0), Some(Wet), None).len(), 1);
}

#[test]
fn wind_levels() {
    let mut rig = Rig::new();
    assert!(rig.gusts(&[17.1, 17.1, 17.1]).is_empty());
    let out = rig.gusts(&[17.2, 17.2]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 1)]);
    assert_eq!(
        (out[0].subtype, out[0].severity),
        ("wind", Severity::Warning)
    );
    let out = rig.gusts(&[24.5, 24.5]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 2)]);
    assert_eq!(out[0].severity, Severity::Severe);
    let out = rig.gusts(&[32.7]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 3)]);
    assert_eq!(out[0].severity, Severity::Critical);
    // Leaving level 3 needs gusts < 32.7 × 0.8 = 26.16 m/s three times.
    assert!(rig.gusts(&[26.2, 26.2, 26.2]).is_empty());
    let out = rig.gusts(&[26.1, 26.1, 26.1]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 2)]);
    let out = rig.gusts(&[5.0, 5.0, 5.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Cleared, 0)]);
}

#[test]
fn rain_levels() {
    let mut rig = Rig::new();
    let out = rig.rain(&[20.0, 20.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 1)]);
    assert_eq!(
        (out[0].subtype, out[0].severity),
        ("rain", Severity::Warning)
    );
    let out = rig.rain(&[50.0, 50.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 2)]);
    assert_eq!(out[0].severity, Severity::Severe);
    // 40 mm/h (= 50 × 0.8) is in the band of level 2; 39.9 clears it but meets level 1.
    assert!(rig.rain(&[40.0, 40.0, 40.0]).is_empty());
    let out = rig.rain(&[39.9, 39.9, 39.9]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 1)]);
    let out = rig.rain(&[15.9, 15.9, 15.9]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Cleared, 0)]);
}

#[test]
fn quantities_are_independent_alerts() {
    let mut rig = Rig::new();
    let mut out = Vec::new();
    for _ in 0..2 {
        let mut o = rig.next();
        o.visibility_m = Some(150.0);
        o.wind_gust_mps = Some(25.0);
        o.precipitation_mm_h = Some(25.0);
        out.extend(rig.push(o));
    }
    let subtypes: Vec<&str> = out.iter().map(|d| d.subtype).collect();
    assert_eq!(subtypes, vec!["fog", "wind", "rain"]);
    let ids: std::collections::BTreeSet<&str> = out.iter().map(|d| d.alert_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn a_steady_fall_gives_one_early_warning_and_the_fog_updates_it() {
    let mut rig = Rig::new();
    // Trends start below 1 km (forecast_max_visibility_m): fog by the WMO definition.
    let out = rig.vis_all(&[950.0, 850.0]);
    assert!(
        out.is_empty(),
        "two readings are fewer than forecast_min_observations"
    );
    let out = rig.vis_all(&[750.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 0)]);
    let f = &out[0];
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.details["forecast"], json!(true));
    // -100 m/min from 750 m: 200 m in 5.5 minutes.
    assert_eq!(f.details["forecast_within_s"], json!(330));
    assert_eq!(f.details["trend_m_per_min"], json!(-100.0));
    assert_eq!(f.details["speed_limit_kmh"], Value::Null);
    assert!(
        f.summary.contains("预计 6 分钟内低于 200 米"),
        "{}",
        f.summary
    );
    assert_eq!(f.source_event_ids.len(), 3);
    assert_eq!(rig.fog_level(), 0, "a forecast is not a level");
    // Once per episode, then the real levels update the same alert.
    let out = rig.vis_all(&[700.0, 600.0, 450.0, 400.0, 190.0, 150.0]);
    assert_eq!(
        statuses(&out),
        vec![(AlertStatus::Update, 1), (AlertStatus::Update, 2)]
    );
    assert!(out.iter().all(|d| d.alert_id == f.alert_id));
    assert!(out.iter().all(|d| d.details["forecast"] == json!(false)));
}

#[test]
fn a_flat_or_rising_series_gives_no_early_warning() {
    let mut rig = Rig::new();
    assert!(rig.vis_all(&[800.0; 12]).is_empty());
    let mut rising = Rig::new();
    assert!(rising
        .vis_all(&[600.0, 700.0, 800.0, 900.0, 1000.0])
        .is_empty());
    // Noise around a steady 370 m: a short fit tilts steeply, but not significantly.
    let mut noisy = Rig::new();
    let out = noisy.vis_all(&[400.0, 330.0, 400.0, 340.0, 400.0, 330.0, 410.0, 345.0]);
    assert_eq!(
        statuses(&out),
        vec![(AlertStatus::New, 1)],
        "level 1, no early warning"
    );
    // A slow fall that stays above 200 m for the next 30 minutes.
    let mut slow = Rig::new();
    assert!(slow.vis_all(&[1000.0, 990.0, 980.0, 970.0]).is_empty());
}

#[test]
fn a_single_dip_or_clear_air_never_forecasts() {
    // A lone noisy reading after clear ones: the fit would be steep, but only the run of
    // readings below 1 km is trended, and one reading is not a trend.
    let mut rig = Rig::new();
    assert!(rig
        .vis_all(&[15_000.0, 14_000.0, 13_000.0, 300.0])
        .is_empty());
    // Scatter at high visibility, falling by kilometres a minute, is not fog coming.
    let mut clear = Rig::new();
    assert!(clear
        .vis_all(&[16_000.0, 12_000.0, 8_000.0, 4_000.0])
        .is_empty());
}

#[test]
fn a_withdrawn_early_warning_is_cleared() {
    let mut rig = Rig::new();
    let first = rig.vis_all(&[950.0, 850.0, 750.0]);
    assert_eq!(first.len(), 1);
    let out = rig.vis_all(&[900.0, 1000.0, 1100.0, 1200.0, 1300.0, 1400.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Cleared, 0)]);
    assert_eq!(out[0].alert_id, first[0].alert_id);
    assert_eq!(out[0].severity, Severity::Warning);
    // A new fall later is a new episode with a new warning (three readings in fog).
    let out = rig.vis_all(&[1100.0, 950.0, 850.0, 750.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 0)]);
    assert_ne!(out[0].alert_id, first[0].alert_id);
}

#[test]
fn the_early_warning_can_update_a_level_one_fog_alert() {
    let mut rig = Rig::new();
    let out = rig.vis_all(&[480.0, 480.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 1)]);
    let out = rig.vis_all(&[420.0, 360.0]);
    assert_eq!(statuses(&out), vec![(AlertStatus::Update, 1)]);
    assert_eq!(out[0].details["forecast"], json!(true));
    assert_eq!(out[0].severity, Severity::Warning);
    // Level 2 already means < 200 m: no early warning there.
    let mut rig = Rig::new();
    rig.vis_all(&[190.0, 190.0]);
    assert!(rig.vis_all(&[180.0, 170.0, 160.0]).is_empty());
}

#[test]
fn forecast_can_be_disabled() {
    let mut s = settings();
    s.forecast_enabled = false;
    let mut rig = Rig::with(s, Locale::ZhCn);
    assert!(rig.vis_all(&[1000.0, 900.0, 800.0, 700.0]).is_empty());
}

#[test]
fn the_alert_covers_both_carriageways_around_the_station() {
    let mut rig = Rig::new();
    let out = rig.vis_all(&[80.0, 80.0]);
    let d = &out[0].details;
    let from = d["stake_from_m"].as_i64().unwrap();
    let to = d["stake_to_m"].as_i64().unwrap();
    assert!(
        (from - 1_205_000).abs() <= 2 && (to - 1_215_000).abs() <= 2,
        "{from}..{to}"
    );
    let stretches = d["stretches"].as_array().unwrap();
    let dirs: Vec<&str> = stretches
        .iter()
        .map(|s| s["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, vec!["up", "down"]);
    assert_eq!(d["station_id"], json!(STATION));
    assert_eq!(d["station_name"], json!("测试气象站"));
    assert_eq!(d["visibility_m"], json!(80.0));
    assert_eq!(
        (d["speed_limit_kmh"].clone(), d["min_gap_m"].clone()),
        (json!(40), json!(50))
    );
    assert!(d["advice"].as_str().unwrap().contains("危险报警闪光灯"));
    let loc = &out[0].location;
    assert_eq!(loc.road_id.as_deref(), Some("G76"));
    assert_eq!(
        loc.direction.as_deref(),
        Some("up"),
        "the station's own carriageway"
    );
    assert!((loc.stake_m.unwrap() - 1_210_000).abs() <= 2);
    assert!(
        (loc.lat - LAT).abs() < 1e-6,
        "on the centre line, not at the mast"
    );

    assert_eq!(rig.det.fog_level_at("G76", 1_206_000.0), 3);
    assert_eq!(rig.det.fog_level_at("G76", 1_214_990.0), 3);
    assert_eq!(rig.det.fog_level_at("G76", 1_204_000.0), 0);
    assert_eq!(rig.det.fog_level_at("G76", 1_216_000.0), 0);
    assert_eq!(rig.det.fog_level_at("G56", 1_210_000.0), 0);
    assert_eq!(rig.det.fog_level_at("G76", f64::NAN), 0);
    assert_eq!(rig.det.stations(), 1);
}

#[test]
fn summaries_read_naturally_in_both_locales() {
    let mut rig = Rig::new();
    let out = rig.vis_all(&[80.0, 80.0]);
    let stake = out[0].location.stake.clone().unwrap();
    assert_eq!(
        out[0].summary,
        format!("G76 厦蓉高速 {stake} 附近团雾 能见度 80 米 (三级) 限速 40 km/h")
    );
    let out = rig.vis_all(&[800.0, 800.0, 800.0]);
    assert_eq!(
        out[0].summary,
        format!("G76 厦蓉高速 {stake} 附近团雾已解除 能见度 800 米")
    );

    let mut en = Rig::with(settings(), Locale::En);
    let out = en.vis_all(&[80.0, 80.0]);
    assert_eq!(
        out[0].summary,
        format!("Fog near G76 厦蓉高速 {stake}: visibility 80 m (level 3), limit 40 km/h")
    );
    assert!(out[0].details["advice"]
        .as_str()
        .unwrap()
        .starts_with("Fog lights"));
    let out = en.vis_all(&[300.0, 300.0, 300.0]);
    assert_eq!(
        out[0].summary,
        format!(
            "Fog near G76 厦蓉高速 {stake}: visibility 300 m (level 1), fog lights on, caution"
        )
    );
    let out = en.gusts(&[33.0]);
    assert_eq!(
        out[0].summary,
        format!("Strong gusts near G76 厦蓉高速 {stake}: gusts 33.0 m/s (level 3), limit 40 km/h")
    );
}

#[test]
fn the_stretch_is_clipped_at_the_end_of_the_road() {
    let mut rig = Rig::new();
    rig.station = "wx-end".into();
    let out = rig.vis_all(&[80.0, 80.0]);
    let d = &out[0].details;
    assert_eq!(d["stake_from_m"], json!(1_200_000));
    let to = d["stake_to_m"].as_i64().unwrap();
    assert!((to - 1_206_000).abs() <= 2, "{to}");
}

#[test]
fn pieces_of_one_carriageway_are_one_span() {
    use crate::roads::LineId;
    let piece = |line: u32, direction, from: f64, to: f64| Stretch {
        line: LineId(line),
        direction,
        stake_from_m: from,
        stake_to_m: to,
    };
    let pieces = [
        piece(3, Direction::Down, 1_000.0, 1_400.0),
        piece(1, Direction::Up, 1_500.0, 2_000.4),
        piece(0, Direction::Up, 1_000.0, 1_500.0),
        // A stake gap where two lines join, within the network's tolerance: still one.
        piece(2, Direction::Up, 2_150.0, 2_600.0),
        // A real gap: a second span.
        piece(4, Direction::Up, 3_000.0, 3_500.0),
    ];
    let got: Vec<(Direction, i64, i64)> = spans(&pieces)
        .iter()
        .map(|sp| (sp.direction, sp.from_m, sp.to_m))
        .collect();
    assert_eq!(
        got,
        vec![
            (Direction::Up, 1_000, 2_600),
            (Direction::Up, 3_000, 3_500),
            (Direction::Down, 1_000, 1_400),
        ]
    );
}

#[test]
fn a_station_off_every_road_still_alerts() {
    let mut rig = Rig::new();
    rig.station = "wx-far".into();
    let out = rig.vis_all(&[80.0, 80.0]);
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(a.details["stake_from_m"], Value::Null);
    assert_eq!(a.details["stake_to_m"], Value::Null);
    assert_eq!(a.details["stretches"], json!([]));
    assert_eq!(a.location.road_id, None);
    assert_eq!(
        (a.location.lon, a.location.lat),
        (105.1, 27.1),
        "the station record's point"
    );
    assert!(
        a.summary.starts_with("105.10000,27.10000 附近团雾"),
        "{}",
        a.summary
    );
    assert_eq!(rig.fog_level(), 0, "it covers no stake");
}

#[test]
fn an_unknown_station_is_located_by_its_coordinates() {
    let mut rig = Rig::new();
    rig.station = "wx-new".into();
    let out = rig.vis_all(&[80.0, 80.0]);
    assert_eq!(out[0].location.road_id.as_deref(), Some("G76"));
    assert!(out[0].details["stake_from_m"].is_i64());
    assert_eq!(out[0].details.get("station_name"), None);
    assert_eq!(rig.fog_level(), 3);

    // Off the road and unknown: the observation's own point.
    let mut rig = Rig::new();
    let mut o = blank("wx-lost", 1);
    (o.lon, o.lat, o.visibility_m) = (106.0, 28.0, Some(30.0));
    let out = rig.push(o);
    assert_eq!((out[0].location.lon, out[0].location.lat), (106.0, 28.0));
    assert_eq!(out[0].details["stake_to_m"], Value::Null);
}

#[test]
fn late_and_duplicate_observations_do_not_drive_the_levels() {
    let mut rig = Rig::new();
    let mut a = blank(STATION, 10);
    a.visibility_m = Some(150.0);
    assert!(rig.push(a.clone()).is_empty());
    // The same record again (redelivery) and an older one: neither is a second reading.
    assert!(rig.push(a).is_empty());
    let mut late = blank(STATION, 9);
    late.visibility_m = Some(150.0);
    assert!(rig.push(late).is_empty());
    let mut b = blank(STATION, 11);
    b.visibility_m = Some(150.0);
    let out = rig.push(b);
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 2)]);
    assert_eq!(out[0].source_event_ids, vec!["wx-01-00010", "wx-01-00011"]);
}

#[test]
fn late_readings_still_feed_the_trend() {
    let mut rig = Rig::new();
    let at = |minute: i64, v: f64| {
        let mut o = blank(STATION, minute);
        o.visibility_m = Some(v);
        o
    };
    assert!(rig.push(at(1, 1000.0)).is_empty());
    assert!(rig.push(at(3, 800.0)).is_empty());
    // Minute 2 arrives late: no ladder step, but the fit now has three readings...
    assert!(rig.push(at(2, 900.0)).is_empty());
    // ...which the next in-order reading uses.
    let out = rig.push(at(4, 700.0));
    assert_eq!(statuses(&out), vec![(AlertStatus::New, 0)]);
    assert_eq!(out[0].details["forecast"], json!(true));
}

#[test]
fn trend_state_is_bounded() {
    let mut rig = Rig::new();
    rig.vis_all(&[800.0; 500]);
    let st = &rig.det.stations[STATION];
    assert!(st.trend.len() <= MIN_TREND_CAPACITY);
    assert!(st
        .quantities
        .iter()
        .all(|q| q.recent_ids.len() <= MAX_SOURCE_IDS));
}

#[test]
fn thresholds_come_from_settings() {
    let mut s = settings();
    s.visibility_levels_m = [1000.0, 400.0, 200.0, 100.0];
    s.enter_count = 3;
    s.leave_margin = 0.5;
    let mut rig = Rig::with(s, Locale::ZhCn);
    assert!(rig.vis_all(&[300.0, 300.0]).is_empty());
    assert_eq!(
        statuses(&rig.vis_all(&[300.0])),
        vec![(AlertStatus::New, 2)]
    );
    // Level 2 (< 400 m) is left at ≥ 600 m with a 50% margin.
    assert!(rig.vis_all(&[590.0, 590.0, 590.0]).is_empty());
    assert_eq!(
        statuses(&rig.vis_all(&[600.0, 600.0, 600.0])),
        vec![(AlertStatus::Update, 1)]
    );
}

fn kind_of(i: u8) -> Option<RoadSurfaceState> {
    RoadSurfaceState::ALL.get(usize::from(i)).copied()
}

/// One generated observation: station index, minutes since the previous one (may go
/// back: late records), and each measurement or null.
type Gen = (
    u8,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<u8>,
);

fn observations(gens: &[Gen]) -> Vec<WeatherObservation> {
    let stations = ["wx-01", "wx-end", "wx-far", "wx-new"];
    let mut minute = 0;
    gens.iter()
        .enumerate()
        .map(|(i, &(st, dt, vis, gust, rain, temp, state))| {
            minute += dt;
            let mut o = blank(stations[usize::from(st) % stations.len()], minute);
            o.event_id = format!("e{i}");
            o.visibility_m = vis;
            o.wind_gust_mps = gust;
            o.precipitation_mm_h = rain;
            o.road_surface_temp_c = temp;
            o.road_surface_state = state.and_then(kind_of);
            o
        })
        .collect()
}

fn run(obs: &[WeatherObservation]) -> (Vec<AlertDraft>, Vec<u8>) {
    let mut det = WeatherDetector::new(settings(), output(Locale::ZhCn));
    let mut out = Vec::new();
    let mut levels = Vec::new();
    for o in obs {
        det.on_observation(o, network(), &mut out);
        levels.push(det.fog_level_at("G76", STATION_STAKE));
    }
    (out, levels)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_sequences_are_safe_deterministic_and_well_formed(
        gens in prop::collection::vec(
            (
                0u8..4,
                -3i64..12,
                prop::option::of(prop_oneof![0.0..2000.0f64, Just(50.0), Just(200.0), Just(500.0)]),
                prop::option::of(0.0..45.0f64),
                prop::option::of(0.0..80.0f64),
                prop::option::of(-10.0..10.0f64),
                prop::option::of(0u8..6),
            ),
            0..120,
        )
    ) {
        let obs = observations(&gens);
        let (first, levels) = run(&obs);
        let (second, levels2) = run(&obs);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(levels, levels2);

        // Per alert: opened by `new`, nothing after `cleared`, required details present.
        let mut open: BTreeMap<&str, bool> = BTreeMap::new();
        for d in &first {
            prop_assert!(is_valid_identifier(&d.alert_id), "{}", d.alert_id);
            for key in ["level", "stake_from_m", "stake_to_m", "station_id", "advice"] {
                prop_assert!(d.details.contains_key(key), "{} lacks {}", d.alert_id, key);
            }
            prop_assert!(!d.source_event_ids.is_empty() && d.source_event_ids.len() <= MAX_SOURCE_IDS);
            match (open.get(d.alert_id.as_str()), d.status) {
                (None, AlertStatus::New) => { open.insert(&d.alert_id, true); }
                (Some(true), AlertStatus::Update) => {}
                (Some(true), AlertStatus::Cleared) => { open.insert(&d.alert_id, false); }
                (state, status) => prop_assert!(false, "{} {:?} after {:?}", d.alert_id, status, state),
            }
            if d.details["level"] == json!(0) {
                prop_assert!(
                    d.status == AlertStatus::Cleared || d.details.get("forecast") == Some(&json!(true)),
                    "level 0 is only a clear or an early warning"
                );
            }
        }
    }
}

#[test]
fn a_station_reporting_again_drops_the_silent_note_from_the_summary() {
    for locale in [Locale::ZhCn, Locale::En] {
        let mut rig = Rig::with(settings(), locale);
        let entered = rig.vis_all(&[150.0, 150.0]);
        let observed_summary = entered.last().expect("fog level 2").summary.clone();
        // Silent: nothing for `silent_after` after the last reading.
        let mut silent = Vec::new();
        let now = blank(STATION, rig.minute).ts + settings().silent_after_ms;
        rig.det.on_time(now, &mut silent);
        assert_eq!(silent.len(), 1, "{locale:?}");
        assert_eq!(silent[0].observed, Some(false));
        assert_ne!(
            silent[0].summary, observed_summary,
            "the silent note is added"
        );
        // Reporting again at the same level: the document as it was before the silence.
        rig.minute += settings().silent_after_ms / 60_000;
        let back = rig.vis_all(&[150.0]);
        assert_eq!(back.len(), 1, "{locale:?}");
        assert_eq!(back[0].observed, Some(true));
        assert!(!back[0].details.contains_key("reason"));
        assert_eq!(back[0].summary, observed_summary, "{locale:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The next deadline the detector keeps is the one a scan of every station finds,
    /// after every observation and every step of the clock, silences included (gaps of
    /// up to 40 min against `silent_after` 30 min).
    #[test]
    fn the_kept_next_deadline_is_the_scanned_one(
        gens in prop::collection::vec((0u8..4, -3i64..40, 0i64..40), 0..80)
    ) {
        let stations = ["wx-01", "wx-end", "wx-far", "wx-new"];
        let mut det = WeatherDetector::new(settings(), output(Locale::ZhCn));
        let mut out = Vec::new();
        let mut minute = 0;
        for (st, dt, idle) in gens {
            minute += dt;
            let mut o = blank(stations[usize::from(st)], minute);
            o.visibility_m = Some(150.0);
            det.on_observation(&o, network(), &mut out);
            prop_assert_eq!(det.next_deadline(), det.scan_next_due());
            det.on_time(o.ts + idle * MIN, &mut out);
            prop_assert_eq!(det.next_deadline(), det.scan_next_due());
        }
    }
}
