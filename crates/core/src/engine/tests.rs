//! Engine and pedestrian rules on a synthetic divided road whose answers are computed by
//! hand: G76 runs east along 27°N from 105.00°E to 105.10°E; `up` is the southern
//! carriageway (stakes grow eastwards from K1000+000), `down` lies 20 m north.
//! A tunnel spans 105.050–105.060 on `up`, a service area sits at 105.020, a work zone
//! (active on 2026-11-28 only) at 105.080.
use crate::model::EventTime;
use std::sync::Arc;

use super::*;
use crate::lifecycle::LifecycleEvent;
use crate::model::{
    AckStatus, Action, AlertKind, AlertStatus, CameraEvent, ClosedBy, Detection, DetectionClass,
    DispatchAck, OperatorAction, Outcome, PatrolPosition, Severity, UnitStatus,
};
use crate::roads::{LoadOptions, Scale};

const LAT: f64 = 27.0;
const NORTH_M: f64 = 20.0;
/// 2026-11-28T12:00:00+08:00.
const T0: EventTime = EventTime::from_ms(1_795_838_400_000);

fn kx() -> f64 {
    Scale::at(LAT).kx
}
fn ky() -> f64 {
    Scale::at(LAT).ky
}

/// Stake at a longitude on `up` (metres east of 105.0 plus K1000).
fn stake_at(lon: f64) -> f64 {
    1_000_000.0 + (lon - 105.0) * kx()
}

/// Longitude of a point `m` metres east of `lon`.
fn east(lon: f64, m: f64) -> f64 {
    lon + m / kx()
}

fn line(coords: &[(f64, f64)], dir: &str, s0: f64, s1: f64, structure: Option<&str>) -> String {
    let pts: Vec<String> = coords.iter().map(|(x, y)| format!("[{x},{y}]")).collect();
    let st = structure
        .map(|s| format!(r#","structure":"{s}""#))
        .unwrap_or_default();
    format!(
        r#"{{"type":"Feature","geometry":{{"type":"LineString","coordinates":[{}]}},
        "properties":{{"kind":"carriageway","road_id":"G76","name":"厦蓉高速","direction":"{dir}",
        "stake_start_m":{s0},"stake_end_m":{s1},"width_m":15{st}}}}}"#,
        pts.join(",")
    )
}

fn rect(kind: &str, lon0: f64, lon1: f64, extra: &str) -> String {
    let (a, b) = (LAT - 30.0 / ky(), LAT + 50.0 / ky());
    format!(
        r#"{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[[[{lon0},{a}],[{lon1},{a}],[{lon1},{b}],[{lon0},{b}],[{lon0},{a}]]]}},
        "properties":{{"kind":"{kind}","name":"{kind}-test"{extra}}}}}"#
    )
}

pub(crate) fn network() -> Arc<RoadNetwork> {
    let north = LAT + NORTH_M / ky();
    let mut f = vec![
        line(
            &[(105.0, LAT), (105.05, LAT)],
            "up",
            stake_at(105.0),
            stake_at(105.05),
            None,
        ),
        line(
            &[(105.05, LAT), (105.06, LAT)],
            "up",
            stake_at(105.05),
            stake_at(105.06),
            Some("tunnel"),
        ),
        line(
            &[(105.06, LAT), (105.1, LAT)],
            "up",
            stake_at(105.06),
            stake_at(105.1),
            None,
        ),
        line(
            &[(105.1, north), (105.0, north)],
            "down",
            stake_at(105.1),
            stake_at(105.0),
            None,
        ),
    ];
    f.push(rect("service_area", 105.020, 105.022, ""));
    f.push(rect(
        "work_zone",
        105.080,
        105.082,
        r#","active_from":"2026-11-28T00:00:00+08:00","active_to":"2026-11-29T00:00:00+08:00""#,
    ));
    let doc = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        f.join(",")
    );
    Arc::new(RoadNetwork::from_geojson(doc.as_bytes(), &LoadOptions::default()).unwrap())
}

fn engine() -> Engine {
    Engine::new(crate::settings::test_settings(), network())
}

fn cam(id: &str, ts: EventTime, dets: &[(DetectionClass, f64, f64, f64)]) -> Record {
    Record::Camera(CameraEvent {
        event_id: id.into(),
        camera_id: format!("cam-{}", &id[..1]),
        ts,
        detections: dets
            .iter()
            .map(|&(class, confidence, lon, lat)| Detection {
                class,
                confidence,
                lon,
                lat,
                track_id: None,
            })
            .collect(),
    })
}

fn ped(id: &str, ts: EventTime, conf: f64, lon: f64) -> Record {
    cam(id, ts, &[(DetectionClass::Pedestrian, conf, lon, LAT)])
}

/// Any record that only moves the clock.
fn tick(ts: EventTime) -> Record {
    Record::Patrol(PatrolPosition {
        unit_id: "P-1".into(),
        ts,
        lon: 105.0,
        lat: LAT,
        status: UnitStatus::Available,
        speed_kmh: None,
    })
}

fn run(e: &mut Engine, records: &[Record]) -> Vec<Alert> {
    let mut out = Vec::new();
    for r in records {
        e.on_record(r, &mut out);
    }
    out
}

const P: DetectionClass = DetectionClass::Pedestrian;

#[test]
fn one_confident_detection_alerts_at_once() {
    let out = run(&mut engine(), &[ped("a1", T0, 0.85, 105.03)]);
    assert_eq!(out.len(), 1);
    let a = &out[0];
    // No patrol unit is known yet, so flat dispatch escalates it.
    assert_eq!(
        (a.kind, a.status, a.severity),
        (
            AlertKind::Pedestrian,
            AlertStatus::Escalated,
            Severity::Severe
        )
    );
    assert_eq!(a.subtype, "pedestrian");
    assert_eq!(a.location.road_id.as_deref(), Some("G76"));
    assert_eq!(a.location.direction.as_deref(), Some("up"));
    let expected = stake_at(105.03).round() as i64;
    assert!(
        (a.location.stake_m.unwrap() - expected).abs() <= 1,
        "{:?}",
        a.location
    );
    assert_eq!(a.source_event_ids, vec!["a1"]);
    assert_eq!(a.event_ts.to_string(), "2026-11-28T12:00:00.000+08:00");
    assert!(a.summary.contains("G76 厦蓉高速 上行"), "{}", a.summary);
    assert!(a.dispatch.is_none());
}

#[test]
fn a_fresh_available_unit_gets_the_alert() {
    let mut unit = tick(T0 - 5_000);
    if let Record::Patrol(p) = &mut unit {
        p.lon = 105.02;
    }
    let out = run(&mut engine(), &[unit, ped("a1", T0, 0.9, 105.03)]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, AlertStatus::New);
    let d = out[0].dispatch.as_ref().expect("dispatched");
    assert_eq!(d.unit_id, "P-1");
    // 105.02 → 105.03 on the same carriageway, behind the incident.
    let expected = (stake_at(105.03) - stake_at(105.02)).round() as i64;
    assert!((d.route_m - expected).abs() <= 2, "{d:?} vs {expected}");
}

#[test]
fn fog_level_2_on_the_stretch_makes_a_pedestrian_critical() {
    use crate::model::WeatherObservation;
    let fog = |id: &str, ts: EventTime, vis: f64| {
        Record::Weather(WeatherObservation {
            event_id: id.into(),
            station_id: "wx-01".into(),
            ts,
            lon: 105.03,
            lat: LAT - 12.0 / ky(),
            visibility_m: Some(vis),
            precipitation_mm_h: None,
            wind_speed_mps: None,
            wind_gust_mps: None,
            road_surface_temp_c: None,
            road_surface_state: None,
            air_temp_c: None,
        })
    };
    let mut e = engine();
    let out = run(
        &mut e,
        &[fog("w1", T0, 150.0), fog("w2", T0 + 60_000, 150.0)],
    );
    assert!(
        out.iter().any(|a| a.kind == AlertKind::SevereWeather),
        "{out:#?}"
    );
    // 2 km east of the station: inside the ±5 km stretch, open road (no tunnel).
    let out = run(&mut e, &[ped("a1", T0 + 70_000, 0.9, 105.05 - 0.01)]);
    let p = out
        .iter()
        .find(|a| a.kind == AlertKind::Pedestrian)
        .unwrap();
    assert_eq!(p.severity, Severity::Critical, "{}", p.summary);
    // Outside the stretch (the road ends ~9.9 km from 105.0; the station is at ~3 km):
    // 105.095 is ~6.4 km away.
    let out = run(&mut e, &[ped("b1", T0 + 71_000, 0.9, 105.095)]);
    let p = out
        .iter()
        .find(|a| a.kind == AlertKind::Pedestrian)
        .unwrap();
    assert_eq!(p.severity, Severity::Severe);
}

#[test]
fn one_detection_below_the_single_threshold_waits_for_a_second() {
    let out = run(&mut engine(), &[ped("a1", T0, 0.84, 105.03)]);
    assert!(out.is_empty());
}

#[test]
fn below_min_confidence_and_other_classes_never_qualify() {
    let mut e = engine();
    let out = run(
        &mut e,
        &[
            ped("a1", T0, 0.49, 105.03),
            ped("a2", T0 + 1000, 0.49, 105.03),
            cam(
                "b1",
                T0 + 2000,
                &[(DetectionClass::Vehicle, 0.99, 105.03, LAT)],
            ),
            cam(
                "b2",
                T0 + 3000,
                &[(DetectionClass::Animal, 0.99, 105.03, LAT)],
            ),
        ],
    );
    assert!(out.is_empty());
    let out = run(
        &mut e,
        &[
            ped("a3", T0 + 4000, 0.5, 105.03),
            ped("a4", T0 + 5000, 0.5, 105.03),
        ],
    );
    assert_eq!(out.len(), 1, "0.5 is the threshold itself");
}

#[test]
fn two_detections_confirm_within_10_s() {
    let out = run(
        &mut engine(),
        &[
            ped("a1", T0, 0.6, 105.03),
            ped("b1", T0 + 10_000, 0.6, 105.03),
        ],
    );
    assert_eq!(out.len(), 1, "exactly 10 s apart confirms");
    assert_eq!(out[0].source_event_ids, vec!["a1", "b1"]);
    let out = run(
        &mut engine(),
        &[
            ped("a1", T0, 0.6, 105.03),
            ped("b1", T0 + 10_001, 0.6, 105.03),
        ],
    );
    assert!(out.is_empty(), "10.001 s apart does not");
}

#[test]
fn two_detections_confirm_within_100_m() {
    let near = east(105.03, 99.9);
    let out = run(
        &mut engine(),
        &[ped("a1", T0, 0.6, 105.03), ped("b1", T0 + 1000, 0.6, near)],
    );
    assert_eq!(out.len(), 1);
    let far = east(105.03, 100.1);
    let out = run(
        &mut engine(),
        &[ped("a1", T0, 0.6, 105.03), ped("b1", T0 + 1000, 0.6, far)],
    );
    assert!(out.is_empty());
}

#[test]
fn tunnel_makes_it_critical() {
    let out = run(&mut engine(), &[ped("a1", T0, 0.9, 105.055)]);
    assert_eq!(out[0].severity, Severity::Critical);
    assert_eq!(out[0].location.structure.as_deref(), Some("tunnel"));
    assert!(
        out[0].summary.contains("隧道内发现行人"),
        "{}",
        out[0].summary
    );
}

#[test]
fn off_the_carriageway_or_in_allowed_places_does_not_qualify() {
    // 10 m south of the up centre line: beyond width/2 = 7.5 m, still within snap.
    let beside = LAT - 10.0 / ky();
    let out = run(
        &mut engine(),
        &[cam("a1", T0, &[(P, 0.95, 105.03, beside)])],
    );
    assert!(out.is_empty(), "beside the road");
    let on_edge = LAT - 7.0 / ky();
    let out = run(
        &mut engine(),
        &[cam("a1", T0, &[(P, 0.95, 105.03, on_edge)])],
    );
    assert_eq!(
        out.len(),
        1,
        "7 m off the centre line is on the carriageway"
    );
    let out = run(&mut engine(), &[ped("a1", T0, 0.95, 105.021)]);
    assert!(out.is_empty(), "service area");
    let out = run(&mut engine(), &[ped("a1", T0, 0.95, 105.081)]);
    assert!(out.is_empty(), "active work zone");
    let next_day = T0 + 24 * 3_600_000;
    let out = run(&mut engine(), &[ped("a1", next_day, 0.95, 105.081)]);
    assert_eq!(out.len(), 1, "the work zone is over the next day");
    let out = run(
        &mut engine(),
        &[cam("a1", T0, &[(P, 0.95, 105.03, LAT + 1.0)])],
    );
    assert!(out.is_empty(), "far from every road");
}

#[test]
fn one_incident_per_place_and_direction() {
    let mut e = engine();
    let out = run(
        &mut e,
        &[
            ped("a1", T0, 0.9, 105.03),
            ped("a2", T0 + 5_000, 0.9, east(105.03, 450.0)),
            ped("a3", T0 + 6_000, 0.9, east(105.03, 1_000.0)),
        ],
    );
    // 450 m from the incident joins it; the incident follows the person, so the third
    // detection is 550 m from the latest one and opens a second incident.
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[1].source_event_ids, vec!["a3"]);
    // The other carriageway at the same stake is another incident.
    let north = LAT + NORTH_M / ky();
    let out = run(&mut e, &[cam("b1", T0 + 7_000, &[(P, 0.9, 105.03, north)])]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].location.direction.as_deref(), Some("down"));
}

/// A unit that reports from `lon` on `up` at `ts` (the clock moves with it).
fn unit_at(id: &str, lon: f64, ts: EventTime) -> Record {
    Record::Patrol(PatrolPosition {
        unit_id: id.into(),
        ts,
        lon,
        lat: LAT,
        status: UnitStatus::Available,
        speed_kmh: None,
    })
}

fn ack(
    alert: &str,
    unit: &str,
    status: AckStatus,
    ts: EventTime,
    outcome: Option<Outcome>,
) -> Record {
    Record::Ack(DispatchAck {
        alert_id: alert.into(),
        unit_id: unit.into(),
        ts,
        status,
        outcome,
    })
}

fn action(alert: &str, ts: EventTime, action: Action) -> Record {
    Record::Operator(OperatorAction {
        action_id: format!("op-{ts}"),
        operator_id: "op.zhang".into(),
        ts,
        alert_id: alert.into(),
        action,
    })
}

/// DOMAIN.md "Losing sight is not the all-clear": nobody accepted it, so 120 s without a
/// detection latch the incident (`observed: false`, dispatch goes on); 30 min later, still
/// untaken, it closes with outcome `unknown`. (Before the alert lifecycle it was
/// `cleared` at the 120 s deadline.)
#[test]
fn out_of_sight_for_120_s_with_nobody_on_it_latches_then_closes_unknown() {
    let mut e = engine();
    let mut out = run(
        &mut e,
        &[
            ped("a1", T0, 0.9, 105.03),
            ped("a2", T0 + 30_000, 0.9, 105.03),
        ],
    );
    assert_eq!(out.len(), 1);
    out.clear();
    e.on_record(&tick(T0 + 30_000 + 119_999), &mut out);
    assert!(out.is_empty(), "not yet");
    e.on_record(&tick(T0 + 30_000 + 120_000), &mut out);
    assert_eq!(out.len(), 1);
    let lost = &out[0];
    assert_eq!(lost.status, AlertStatus::Update, "{lost:?}");
    assert_eq!(lost.observed, Some(false));
    assert_eq!(lost.outcome, None);
    assert_eq!(
        lost.event_ts.to_string(),
        "2026-11-28T12:02:30.000+08:00",
        "at the deadline, not the tick"
    );
    // Its dispatch goes on: the unit that reported meanwhile is sent.
    assert_eq!(
        lost.dispatch.as_ref().map(|d| d.unit_id.as_str()),
        Some("P-1")
    );
    assert_eq!(e.stats().open_incidents, 1);
    out.clear();
    // The unit never answers: re-dispatched, escalated; nothing clears it...
    e.advance_to(T0 + 150_000 + 29 * 60_000, &mut out);
    assert!(
        out.iter().all(|a| a.status != AlertStatus::Cleared),
        "{out:?}"
    );
    out.clear();
    // ...until 30 min out of sight: closed, nobody said how it ended.
    e.advance_to(T0 + 150_000 + 30 * 60_000, &mut out);
    let closed = out.last().expect("closed");
    assert_eq!(closed.status, AlertStatus::Cleared);
    assert_eq!(closed.outcome, Some(Outcome::Unknown));
    assert_eq!(closed.closed_by, None);
    assert_eq!(closed.event_ts.to_string(), "2026-11-28T12:32:30.000+08:00");
    assert_eq!(e.stats().open_incidents, 0);
}

/// An accepted incident clears after 120 s without detection as before; its unit still
/// reports, and its `resolved` with an outcome re-sends the `cleared` with it.
#[test]
fn an_accepted_incident_clears_when_out_of_sight_and_takes_its_units_outcome() {
    let mut e = engine();
    let mut out = run(
        &mut e,
        &[
            unit_at("P-1", 105.02, T0 - 5_000),
            ped("a1", T0, 0.9, 105.03),
        ],
    );
    let id = out[0].alert_id.clone();
    assert_eq!(out[0].dispatch.as_ref().unwrap().unit_id, "P-1");
    out.clear();
    e.on_record(
        &ack(&id, "P-1", AckStatus::Accepted, T0 + 20_000, None),
        &mut out,
    );
    e.on_record(&tick(T0 + 120_000), &mut out);
    let cleared = out.last().expect("cleared");
    assert_eq!(cleared.status, AlertStatus::Cleared);
    assert_eq!(cleared.outcome, Some(Outcome::Unknown), "nobody said yet");
    assert_eq!(
        cleared.observed, None,
        "cleared in sight of its unit, never latched"
    );
    out.clear();
    let resolved = ack(
        &id,
        "P-1",
        AckStatus::Resolved,
        T0 + 400_000,
        Some(Outcome::FalseAlarm),
    );
    e.on_record(&resolved, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].status, AlertStatus::Cleared);
    assert_eq!(out[0].outcome, Some(Outcome::FalseAlarm));
    assert!(matches!(&out[0].closed_by, Some(ClosedBy::Unit { unit_id, .. }) if unit_id == "P-1"));
    let events = e.take_lifecycle_events();
    let outcomes: Vec<_> = events
        .iter()
        .filter_map(|ev| match ev {
            LifecycleEvent::Outcome { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        [Outcome::FalseAlarm],
        "counted once, as it finally ended"
    );
}

/// The walker between cameras (DOMAIN.md): seen again 400 m on, 140 s after it was
/// cleared, it is the same alert reopened, not a new one.
#[test]
fn a_walker_seen_again_400_m_on_after_140_s_reopens_the_same_alert() {
    let mut e = engine();
    let mut out = run(
        &mut e,
        &[
            unit_at("P-1", 105.02, T0 - 5_000),
            ped("a1", T0, 0.9, 105.03),
        ],
    );
    let id = out[0].alert_id.clone();
    e.on_record(
        &ack(&id, "P-1", AckStatus::Accepted, T0 + 10_000, None),
        &mut out,
    );
    out.clear();
    e.on_record(&tick(T0 + 121_000), &mut out);
    assert_eq!(out.last().map(|a| a.status), Some(AlertStatus::Cleared));
    out.clear();
    let on = east(105.03, 400.0);
    e.on_record(&ped("b1", T0 + 120_000 + 140_000, 0.6, on), &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let again = &out[0];
    assert_eq!(again.alert_id, id, "the same incident");
    assert_eq!(again.status, AlertStatus::Update);
    assert_eq!(again.observed, Some(true));
    assert_eq!(again.outcome, None, "open again");
    assert_eq!(
        again.dispatch.as_ref().map(|d| d.unit_id.as_str()),
        Some("P-1"),
        "the unit that still holds it"
    );
    // More than 300 s after it was cleared, a detection there is a new incident (with no
    // unit on the road: escalated at once).
    let mut e = engine();
    let out = run(&mut e, &[ped("a1", T0, 0.9, 105.03)]);
    let first = out[0].alert_id.clone();
    let mut out = Vec::new();
    e.advance_to(T0 + 40 * 60_000, &mut out);
    assert_eq!(out.last().map(|a| a.status), Some(AlertStatus::Cleared));
    out.clear();
    e.on_record(&ped("c1", T0 + 41 * 60_000, 0.9, on), &mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_ne!(out[0].alert_id, first);
    assert_eq!(out[0].status, AlertStatus::Escalated);
    assert_eq!(out[0].observed, None);
}

/// Operators: acknowledge (an update with acknowledged_by), note (kept for the next
/// document), assign (a redispatch with assigned_by), close (cleared with the outcome
/// and closed_by; the unit is free). Actions on alerts not open here are counted.
#[test]
fn operator_actions_acknowledge_note_assign_and_close() {
    let mut e = engine();
    let mut out = run(
        &mut e,
        &[
            unit_at("P-1", 105.02, T0 - 5_000),
            unit_at("P-2", 105.00, T0 - 5_000),
            ped("a1", T0, 0.9, 105.03),
        ],
    );
    let id = out[0].alert_id.clone();
    assert_eq!(out[0].dispatch.as_ref().unwrap().unit_id, "P-1");
    out.clear();
    e.on_record(&action(&id, T0 + 5_000, Action::Acknowledge), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, AlertStatus::Update);
    let by = out[0].acknowledged_by.as_ref().expect("acknowledged_by");
    assert_eq!(by.operator_id, "op.zhang");
    assert_eq!(by.ts.to_string(), "2026-11-28T12:00:05.000+08:00");
    out.clear();
    let note = Action::Note {
        text: "camera lens dirty".into(),
    };
    e.on_record(&action(&id, T0 + 6_000, note), &mut out);
    assert!(out.is_empty(), "a note goes out with the next document");
    let assign = Action::Assign {
        unit_id: "P-2".into(),
    };
    e.on_record(&action(&id, T0 + 7_000, assign), &mut out);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!(r.status, AlertStatus::Redispatch);
    let d = r.dispatch.as_ref().unwrap();
    assert_eq!(
        (d.unit_id.as_str(), d.assigned_by.as_deref()),
        ("P-2", Some("op.zhang"))
    );
    assert_eq!(r.notes.len(), 1);
    assert_eq!(r.notes[0].text.as_deref(), Some("camera lens dirty"));
    assert!(
        r.acknowledged_by.is_some(),
        "handling fields stay on every document"
    );
    out.clear();
    let close = Action::Close {
        outcome: Outcome::Confirmed,
    };
    e.on_record(&action(&id, T0 + 60_000, close.clone()), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, AlertStatus::Cleared);
    assert_eq!(out[0].outcome, Some(Outcome::Confirmed));
    assert!(
        matches!(&out[0].closed_by, Some(ClosedBy::Operator { operator_id, .. }) if operator_id == "op.zhang")
    );
    assert_eq!(e.stats().open_assignments, 0, "the unit is free");
    assert_eq!(e.stats().open_incidents, 0, "the incident is over");
    out.clear();
    // Closed: a second close is counted and ignored; so is an unknown alert.
    e.on_record(&action(&id, T0 + 61_000, close), &mut out);
    e.on_record(
        &action("ped-nothing", T0 + 62_000, Action::Acknowledge),
        &mut out,
    );
    assert!(out.is_empty());
    let results: Vec<_> = e
        .take_lifecycle_events()
        .into_iter()
        .filter_map(|ev| match ev {
            LifecycleEvent::Action { action, result } => Some((action, result)),
            _ => None,
        })
        .collect();
    use crate::lifecycle::ActionResult as R;
    use crate::model::ActionKind as K;
    assert_eq!(
        results,
        [
            (K::Acknowledge, R::Applied),
            (K::Note, R::Applied),
            (K::Assign, R::Applied),
            (K::Close, R::Applied),
            (K::Close, R::NotOpen),
            (K::Acknowledge, R::NotOpen),
        ]
    );
}

#[test]
fn idle_advance_fires_timers_without_records() {
    let mut e = engine();
    let mut out = run(&mut e, &[ped("a1", T0, 0.9, 105.03)]);
    out.clear();
    e.advance_to(T0 + 200_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].observed, Some(false), "out of sight, nobody on it");
    // The clock never moves back.
    e.advance_to(T0, &mut out);
    assert_eq!(e.clock(), Some(T0 + 200_000));
}

#[test]
fn late_records_29_s_applied_31_s_dropped() {
    let mut e = engine();
    let mut out = Vec::new();
    e.on_record(&tick(T0 + 60_000), &mut out);
    assert_eq!(
        e.on_record(&ped("a1", T0 + 31_000, 0.9, 105.03), &mut out),
        Applied::Accepted
    );
    assert_eq!(out.len(), 1, "29 s late is still applied");
    assert_eq!(
        e.on_record(&ped("b1", T0 + 29_000, 0.9, 105.07), &mut out),
        Applied::Late
    );
    assert_eq!(out.len(), 1, "31 s late is dropped");
    assert_eq!(e.stats().late_dropped, 1);
}

/// A camera event with nothing in it: it only moves the clock, and no part holds state
/// about it.
fn empty(id: &str, ts: EventTime) -> Record {
    cam(id, ts, &[])
}

/// Timers fire at their deadlines, in deadline order, however dense the stream
/// (docs/SCALING.md, "Exactness"). Here P-2's ack time-out (120 s) and the incident's
/// latch (120.3 s, 120 s after its last detection) fall between two records 500 ms
/// apart. Reached in one jump or in steps of 300 ms, the time-out fires first and the
/// latch second. (Steps under 1 s used to fire every part once at the record that
/// crossed them, the pedestrian detector first, so the answer depended on how many
/// unrelated records there were: under keyed instances, on how records fell on
/// partitions.)
#[test]
fn timers_fire_at_their_deadlines_however_dense_the_stream() {
    let start = [
        unit_at("P-1", 105.02, T0 - 5_000),
        unit_at("P-2", 105.01, T0 - 5_000),
        ped("a1", T0, 0.9, 105.03),
        ped("a2", T0 + 300, 0.9, 105.03),
    ];
    let end = empty("t9", T0 + 120_400);
    let sparse: Vec<Record> = start.iter().cloned().chain([end.clone()]).collect();
    let dense: Vec<Record> = start
        .iter()
        .cloned()
        .chain((0..4).map(|k| empty("t1", T0 + 119_000 + 300 * k)))
        .chain([end])
        .collect();
    let a = run(&mut engine(), &sparse);
    let b = run(&mut engine(), &dense);
    assert_eq!(a, b);
    let times: Vec<String> = a.iter().map(|d| d.event_ts.to_string()).collect();
    assert_eq!(
        &times[times.len() - 2..],
        [
            "2026-11-28T12:02:00.000+08:00",
            "2026-11-28T12:02:00.300+08:00"
        ],
        "the time-out, then the latch: {a:#?}"
    );
    assert_eq!(a.last().unwrap().observed, Some(false));
}

#[test]
fn ids_are_deterministic_and_shared_by_changes() {
    let input = [ped("a1", T0, 0.9, 105.03), tick(T0 + 500_000)];
    let a = run(&mut engine(), &input);
    let b = run(&mut engine(), &input);
    assert_eq!(a, b);
    assert_eq!(a.len(), 2);
    assert_eq!(
        a[0].alert_id, a[1].alert_id,
        "the clear names the same alert"
    );
    assert!(crate::model::is_valid_identifier(&a[0].alert_id));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            0i64..600_000,
            0.0f64..1.0,
            104.99f64..105.11,
            -60.0f64..60.0,
            0u8..4,
        )
            .prop_map(|(dt, conf, lon, north_m, class)| {
                let class = [
                    P,
                    DetectionClass::Bicycle,
                    DetectionClass::Tricycle,
                    DetectionClass::Vehicle,
                ][class as usize];
                cam("x1", T0 + dt, &[(class, conf, lon, LAT + north_m / ky())])
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn no_panic_and_same_input_same_output(records in proptest::collection::vec(arb_record(), 0..60)) {
            let net = network();
            let settings = crate::settings::test_settings();
            let mut a = Engine::new(settings.clone(), net.clone());
            let mut b = Engine::new(settings, net);
            prop_assert_eq!(run(&mut a, &records), run(&mut b, &records));
        }
    }
}
