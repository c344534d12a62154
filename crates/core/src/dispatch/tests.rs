//! Dispatch on a synthetic divided road with hand-computed routes. G1 runs east along
//! 27°N; stakes are K1000+000 plus metres east of 105.0°E; `up` (stakes growing) is the
//! southern carriageway, `down` lies 20 m north. Interchanges at K1002, K1007, K1012,
//! K1017. A second road, G2, runs east along 27.05°N.
use crate::model::EventTime;
use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::model::{
    AckStatus, AlertLocation, AlertStatus, DispatchAck, PatrolPosition, Severity, UnitStatus,
};
use crate::roads::{distance_m, LoadOptions, Scale};

const LAT: f64 = 27.0;
const T0: EventTime = EventTime::from_ms(1_795_838_400_000);

fn kx() -> f64 {
    Scale::at(LAT).kx
}
fn north(m: f64) -> f64 {
    LAT + m / Scale::at(LAT).ky
}
/// Longitude of stake `s` (metres).
fn lon_at(s: f64) -> f64 {
    105.0 + (s - 1_000_000.0) / kx()
}

fn carriageway(road: &str, lat: f64, dir: &str, lon0: f64, lon1: f64) -> String {
    let (s0, s1) = (
        1_000_000.0 + (lon0 - 105.0) * kx(),
        1_000_000.0 + (lon1 - 105.0) * kx(),
    );
    let (a, b, sa, sb) = if dir == "up" {
        (lon0, lon1, s0, s1)
    } else {
        (lon1, lon0, s1, s0)
    };
    let n = 40;
    let pts: Vec<String> = (0..=n)
        .map(|i| format!("[{},{lat}]", a + (b - a) * i as f64 / n as f64))
        .collect();
    format!(
        r#"{{"type":"Feature","geometry":{{"type":"LineString","coordinates":[{}]}},"properties":{{"kind":"carriageway","road_id":"{road}","name":"{road}","direction":"{dir}","stake_start_m":{sa},"stake_end_m":{sb}}}}}"#,
        pts.join(",")
    )
}

fn interchange(road: &str, stake: f64, lat: f64) -> String {
    format!(
        r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{},{lat}]}},"properties":{{"kind":"interchange","road_id":"{road}","name":"IC{stake}","stake_m":{stake}}}}}"#,
        lon_at(stake)
    )
}

fn network() -> Arc<RoadNetwork> {
    let mut f = vec![
        carriageway("G1", LAT, "up", 105.0, 105.2),
        carriageway("G1", north(20.0), "down", 105.0, 105.2),
        carriageway("G2", 27.05, "up", 105.0, 105.2),
        carriageway(
            "G2",
            27.05 + 20.0 / Scale::at(27.05).ky,
            "down",
            105.0,
            105.2,
        ),
    ];
    for s in [1_002_000.0, 1_007_000.0, 1_012_000.0, 1_017_000.0] {
        f.push(interchange("G1", s, north(10.0)));
    }
    let doc = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        f.join(",")
    );
    Arc::new(RoadNetwork::from_geojson(doc.as_bytes(), &LoadOptions::default()).unwrap())
}

fn settings() -> DispatchSettings {
    crate::settings::test_settings().dispatch
}

fn output() -> OutputSettings {
    crate::settings::test_settings().output
}

/// A unit on `dir` at stake `s`.
fn unit_at(id: &str, dir: &str, s: f64, ts: EventTime) -> PatrolPosition {
    let lat = if dir == "up" { LAT } else { north(20.0) };
    PatrolPosition {
        unit_id: id.into(),
        ts,
        lon: lon_at(s),
        lat,
        status: UnitStatus::Available,
        speed_kmh: Some(80.0),
    }
}

fn place(net: &RoadNetwork, lon: f64, lat: f64) -> Place {
    let road = net.locate(lon, lat, T0).map(|p| OnRoad {
        road_id: p.road_id,
        direction: p.direction,
        stake_m: p.stake_m,
    });
    Place { lon, lat, road }
}

fn route_from(net: &RoadNetwork, s: &DispatchSettings, dir: &str, stake: f64) -> Route {
    let u = unit_at("u", dir, stake, T0);
    let target = place(net, lon_at(1_010_000.0), LAT);
    route(net, s, &place(net, u.lon, u.lat), &target)
}

fn assert_route(r: Route, metres: f64, kind: RouteKind) {
    assert_eq!(r.kind, kind, "{r:?}");
    assert!(
        (r.metres - metres).abs() < 1.0,
        "expected {metres} m, got {r:?}"
    );
}

#[test]
fn behind_on_the_same_carriageway_drives_straight_there() {
    let net = network();
    assert_route(
        route_from(&net, &settings(), "up", 1_008_000.0),
        2_000.0,
        RouteKind::Direct,
    );
}

#[test]
fn other_carriageway_turns_at_the_interchange_beyond_the_target() {
    let net = network();
    // Coming down from K1013: past the target's stake to K1007, then back up 3 km.
    assert_route(
        route_from(&net, &settings(), "down", 1_013_000.0),
        9_000.0,
        RouteKind::OneTurn,
    );
    // Already below the target on `down`: on to K1007 (1 km), then up 3 km.
    assert_route(
        route_from(&net, &settings(), "down", 1_008_000.0),
        4_000.0,
        RouteKind::OneTurn,
    );
}

#[test]
fn past_the_target_turns_twice() {
    let net = network();
    // K1011 up: on to K1012 (1 km), down to K1007 (5 km), up to K1010 (3 km).
    assert_route(
        route_from(&net, &settings(), "up", 1_011_000.0),
        9_000.0,
        RouteKind::TwoTurns,
    );
}

#[test]
fn median_uturn_when_allowed() {
    let net = network();
    let mut s = settings();
    s.allow_median_uturn = true;
    assert_route(
        route_from(&net, &s, "up", 1_011_000.0),
        1_000.0,
        RouteKind::MedianUturn,
    );
    assert_route(
        route_from(&net, &s, "down", 1_013_000.0),
        3_000.0,
        RouteKind::MedianUturn,
    );
}

#[test]
fn other_road_or_nowhere_to_turn_is_straight_line_times_1_3() {
    let net = network();
    let s = settings();
    let target = place(&net, lon_at(1_010_000.0), LAT);
    let on_g2 = place(&net, lon_at(1_010_000.0), 27.05);
    assert_eq!(on_g2.road.as_ref().unwrap().road_id.as_ref(), "G2");
    let r = route(&net, &s, &on_g2, &target);
    let straight = distance_m([on_g2.lon, on_g2.lat], [target.lon, target.lat]);
    assert_route(r, straight * 1.3, RouteKind::StraightLine);
    // On `down` at K1001: no interchange ahead of it to turn at.
    let r = route_from(&net, &s, "down", 1_001_000.0);
    assert_eq!(r.kind, RouteKind::StraightLine);
}

fn alert_at(stake: f64) -> Alert {
    Alert {
        alert_id: "ped-G1-up-1010000-20261128T040000".into(),
        kind: crate::model::AlertKind::Pedestrian,
        subtype: "pedestrian".into(),
        severity: Severity::Severe,
        status: AlertStatus::New,
        event_ts: serde_json::from_str("\"2026-11-28T12:00:00.000+08:00\"").unwrap(),
        emitted_ts: "2026-11-28T12:00:00.000+08:00".into(),
        location: AlertLocation {
            lon: lon_at(stake),
            lat: LAT,
            road_id: Some("G1".into()),
            road_name: Some("G1".into()),
            direction: Some("up".into()),
            stake: None,
            stake_m: Some(stake as i64),
            structure: None,
        },
        summary: String::new(),
        details: Default::default(),
        dispatch: None,
        source_event_ids: vec![],
        observed: None,
        acknowledged_by: None,
        notes: Vec::new(),
        outcome: None,
        closed_by: None,
        intercept: None,
    }
}

fn dispatcher_with(net: &RoadNetwork, units: &[PatrolPosition]) -> Dispatcher {
    let mut d = Dispatcher::new(settings(), output(), net);
    for u in units {
        d.on_position(u, net);
    }
    d
}

/// An ack for the alert of `alert_at`.
fn ack(unit: &str, status: AckStatus, ts: EventTime) -> DispatchAck {
    ack_for("ped-G1-up-1010000-20261128T040000", unit, status, ts)
}

fn ack_for(alert_id: &str, unit: &str, status: AckStatus, ts: EventTime) -> DispatchAck {
    DispatchAck {
        alert_id: alert_id.into(),
        unit_id: unit.into(),
        ts,
        status,
        outcome: None,
    }
}

#[test]
fn the_nearest_by_road_wins_not_by_radius() {
    let net = network();
    // P-1 is 1 km away as the crow flies but past the target (9 km by road);
    // P-2 is 3 km behind on the same carriageway.
    let mut d = dispatcher_with(
        &net,
        &[
            unit_at("P-1", "up", 1_011_000.0, T0),
            unit_at("P-2", "up", 1_007_000.0, T0),
        ],
    );
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    let disp = out[0].dispatch.as_ref().unwrap();
    assert_eq!(disp.unit_id, "P-2");
    assert_eq!(disp.attempt, 1);
    assert!((disp.route_m - 3_000).abs() <= 1);
    assert_eq!(disp.eta_s, 120, "3 km at 25 m/s");
    assert_eq!(out[0].status, AlertStatus::New);
}

#[test]
fn ties_go_to_the_smaller_unit_id_and_stale_or_busy_units_are_skipped() {
    let net = network();
    let mut units = vec![
        unit_at("P-9", "up", 1_008_000.0, T0),
        unit_at("P-3", "up", 1_008_000.0, T0),
    ];
    let mut stale = unit_at("P-0", "up", 1_009_500.0, T0 - 121_000);
    units.push(stale.clone());
    let mut busy = unit_at("P-1", "up", 1_009_600.0, T0);
    busy.status = UnitStatus::Busy;
    units.push(busy);
    let mut d = dispatcher_with(&net, &units);
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    assert_eq!(out[0].dispatch.as_ref().unwrap().unit_id, "P-3");
    // Exactly 120 s old is still a candidate.
    stale.ts = T0 - 120_000;
    let mut d = dispatcher_with(&net, &[stale, unit_at("P-3", "up", 1_008_000.0, T0)]);
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    assert_eq!(out[0].dispatch.as_ref().unwrap().unit_id, "P-0");
}

#[test]
fn no_candidate_escalates_with_null_dispatch() {
    let net = network();
    let mut d = dispatcher_with(&net, &[]);
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    assert_eq!(out[0].status, AlertStatus::Escalated);
    assert!(out[0].dispatch.is_none());
    assert_eq!(d.stats().escalated, 1);
}

#[test]
fn decline_then_timeout_then_escalation() {
    let net = network();
    let units = [
        unit_at("P-1", "up", 1_009_000.0, T0),
        unit_at("P-2", "up", 1_008_000.0, T0),
        unit_at("P-3", "up", 1_007_000.0, T0),
        unit_at("P-4", "up", 1_006_000.0, T0),
    ];
    let mut d = dispatcher_with(&net, &units);
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    assert_eq!(out[0].dispatch.as_ref().unwrap().unit_id, "P-1");
    // P-1 declines: P-2, attempt 2.
    d.on_ack(
        &ack("P-1", AckStatus::Declined, T0 + 5_000),
        T0 + 5_000,
        &net,
        &mut out,
    );
    assert_eq!(out[1].status, AlertStatus::Redispatch);
    assert_eq!(out[1].dispatch.as_ref().unwrap().unit_id, "P-2");
    assert_eq!(out[1].dispatch.as_ref().unwrap().attempt, 2);
    assert_eq!(out[1].event_ts.to_string(), "2026-11-28T12:00:05.000+08:00");
    // P-2 stays silent: at 59.999 s nothing, at 60 s P-3, attempt 3.
    d.on_time(T0 + 5_000 + 59_999, &net, &mut out);
    assert_eq!(out.len(), 2);
    d.on_time(T0 + 5_000 + 60_000, &net, &mut out);
    assert_eq!(out[2].dispatch.as_ref().unwrap().unit_id, "P-3");
    assert_eq!(out[2].dispatch.as_ref().unwrap().attempt, 3);
    // P-3 declines: three attempts made, escalate (P-4 is not tried).
    d.on_ack(
        &ack("P-3", AckStatus::Declined, T0 + 70_000),
        T0 + 70_000,
        &net,
        &mut out,
    );
    assert_eq!(out[3].status, AlertStatus::Escalated);
    assert!(out[3].dispatch.is_none());
    assert_eq!(d.open_assignments(), 0);
    // Everyone is free again.
    assert!(d.registry().units().all(|u| u.assignment.is_none()));
}

#[test]
fn accepted_unit_stays_busy_until_resolved_or_30_min_after_arrival() {
    let net = network();
    let mut d = dispatcher_with(&net, &[unit_at("P-1", "up", 1_009_000.0, T0)]);
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    d.on_ack(
        &ack("P-1", AckStatus::Accepted, T0 + 10_000),
        T0 + 10_000,
        &net,
        &mut out,
    );
    d.on_time(T0 + 120_000, &net, &mut out);
    assert_eq!(out.len(), 1, "accepted: no time-out");
    d.on_ack(
        &ack("P-1", AckStatus::Arrived, T0 + 200_000),
        T0 + 200_000,
        &net,
        &mut out,
    );
    d.on_time(T0 + 200_000 + 1_799_999, &net, &mut out);
    assert!(
        d.registry().units().next().unwrap().assignment.is_some(),
        "still busy"
    );
    d.on_time(T0 + 200_000 + 1_800_000, &net, &mut out);
    assert!(
        d.registry().units().next().unwrap().assignment.is_none(),
        "free 30 min after arrival"
    );
    // A resolved ack frees at once.
    let mut d = dispatcher_with(&net, &[unit_at("P-1", "up", 1_009_000.0, T0)]);
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    d.on_ack(
        &ack("P-1", AckStatus::Resolved, T0 + 1_000),
        T0 + 1_000,
        &net,
        &mut out,
    );
    assert_eq!(d.open_assignments(), 0);
}

#[test]
fn acks_from_other_units_or_unknown_units_are_counted_and_ignored() {
    let net = network();
    let mut d = dispatcher_with(
        &net,
        &[
            unit_at("P-1", "up", 1_009_000.0, T0),
            unit_at("P-2", "up", 1_008_000.0, T0),
        ],
    );
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    d.on_ack(
        &ack("P-2", AckStatus::Declined, T0 + 1_000),
        T0 + 1_000,
        &net,
        &mut out,
    );
    d.on_ack(
        &ack("P-77", AckStatus::Accepted, T0 + 1_000),
        T0 + 1_000,
        &net,
        &mut out,
    );
    let mut unknown = ack("P-77", AckStatus::Accepted, T0 + 1_000);
    unknown.alert_id = "nope".into();
    d.on_ack(&unknown, T0 + 1_000, &net, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(d.stats().acks_wrong_unit, 2);
    assert_eq!(d.stats().acks_unknown_alert, 1);
    assert_eq!(d.stats().booked_elsewhere, 0, "P-77 is not a known unit");
    assert_eq!(out[0].dispatch.as_ref().unwrap().unit_id, "P-1");
}

/// With several instances, each raises alerts from its own partitions but every instance
/// reads every ack: a unit that accepted another instance's alert is not free here.
#[test]
fn a_unit_that_accepted_an_alert_held_elsewhere_is_not_sent_here_until_it_is_free() {
    let net = network();
    let mut d = dispatcher_with(
        &net,
        &[
            unit_at("P-1", "up", 1_009_000.0, T0),
            unit_at("P-2", "up", 1_006_000.0, T0),
        ],
    );
    let mut out = Vec::new();
    d.on_ack(
        &ack_for("wx-elsewhere", "P-1", AckStatus::Accepted, T0),
        T0,
        &net,
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(d.stats().acks_unknown_alert, 1);
    assert_eq!(d.stats().booked_elsewhere, 1);
    d.on_alert(alert_at(1_010_000.0), T0 + 1_000, &net, &mut out);
    assert_eq!(
        out[0].dispatch.as_ref().unwrap().unit_id,
        "P-2",
        "P-1 is nearer but busy elsewhere"
    );
    // Resolved elsewhere: P-1 is free again and wins the next alert nearby.
    d.on_ack(
        &ack_for("wx-elsewhere", "P-1", AckStatus::Resolved, T0 + 2_000),
        T0 + 2_000,
        &net,
        &mut out,
    );
    let mut second = alert_at(1_010_500.0);
    second.alert_id = "ped-second".into();
    d.on_alert(second, T0 + 3_000, &net, &mut out);
    assert_eq!(out[1].dispatch.as_ref().unwrap().unit_id, "P-1");

    // Without a resolved ack the booking ends `busy_after_arrived` after the last answer.
    let mut d = dispatcher_with(&net, &[unit_at("P-1", "up", 1_009_000.0, T0)]);
    d.on_ack(
        &ack_for("wx-elsewhere", "P-1", AckStatus::Arrived, T0),
        T0,
        &net,
        &mut out,
    );
    d.on_time(T0 + 1_799_999, &net, &mut out);
    assert!(d.registry().units().next().unwrap().assignment.is_some());
    d.on_time(T0 + 1_800_000, &net, &mut out);
    assert!(d.registry().units().next().unwrap().assignment.is_none());
    // A decline of an alert the unit was never booked for frees nothing.
    d.on_ack(
        &ack_for("wx-elsewhere", "P-1", AckStatus::Accepted, T0 + 1_800_000),
        T0 + 1_800_000,
        &net,
        &mut out,
    );
    d.on_ack(
        &ack_for("other", "P-1", AckStatus::Declined, T0 + 1_800_001),
        T0 + 1_800_001,
        &net,
        &mut out,
    );
    assert_eq!(
        d.registry().units().next().unwrap().assignment.as_deref(),
        Some("wx-elsewhere")
    );
}

/// Two instances can pick the same unit for two incidents within the same moment; the
/// unit answers one of them. The other instance hears that answer and sends its alert to
/// the next unit at once instead of waiting out the ack time-out.
#[test]
fn a_unit_that_accepts_elsewhere_before_answering_ours_is_replaced_at_once() {
    let net = network();
    let mut d = dispatcher_with(
        &net,
        &[
            unit_at("P-1", "up", 1_009_000.0, T0),
            unit_at("P-2", "up", 1_006_000.0, T0),
        ],
    );
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    assert_eq!(out[0].dispatch.as_ref().unwrap().unit_id, "P-1");
    d.on_ack(
        &ack_for("ped-elsewhere", "P-1", AckStatus::Accepted, T0 + 4_000),
        T0 + 4_000,
        &net,
        &mut out,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].status, AlertStatus::Redispatch);
    let disp = out[1].dispatch.as_ref().unwrap();
    assert_eq!((disp.unit_id.as_str(), disp.attempt), ("P-2", 2));
    assert_eq!(d.stats().preempted, 1);
    assert_eq!(d.stats().redispatched, 1);
    // Once ours is accepted, an answer elsewhere does not take the unit off it.
    d.on_ack(
        &ack("P-2", AckStatus::Accepted, T0 + 5_000),
        T0 + 5_000,
        &net,
        &mut out,
    );
    d.on_ack(
        &ack_for("ped-third", "P-2", AckStatus::Accepted, T0 + 6_000),
        T0 + 6_000,
        &net,
        &mut out,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(d.stats().preempted, 1);
    assert_eq!(d.open_assignments(), 1);
}

#[test]
fn updates_go_to_the_assigned_unit() {
    let net = network();
    let mut d = dispatcher_with(
        &net,
        &[
            unit_at("P-1", "up", 1_009_000.0, T0),
            unit_at("P-2", "up", 1_008_000.0, T0),
        ],
    );
    let mut out = Vec::new();
    d.on_alert(alert_at(1_010_000.0), T0, &net, &mut out);
    let mut update = alert_at(1_010_000.0);
    update.status = AlertStatus::Update;
    update.severity = Severity::Critical;
    d.on_alert(update, T0 + 3_000, &net, &mut out);
    assert_eq!(out[1].status, AlertStatus::Update);
    assert_eq!(out[1].dispatch.as_ref().unwrap().unit_id, "P-1");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Oracle: the chosen unit has the minimum route among eligible units (ties: smaller
    /// id), computed by brute force over every unit.
    #[test]
    fn choice_is_the_minimum_eta_among_eligible_units(
        units in proptest::collection::vec(
            (0u32..40, 0.0f64..20_000.0, 0u8..3, -60.0f64..60.0, 0i64..200_000, 0u8..4), 1..40),
        target_stake in 1_000_500.0f64..1_019_500.0,
        target_up in any::<bool>(),
    ) {
        let net = network();
        let s = settings();
        let mut d = Dispatcher::new(s.clone(), output(), &net);
        for (id, stake, road, off, age, status) in &units {
            let lat = match road { 0 => LAT, 1 => north(20.0), _ => 27.05 } + off / Scale::at(LAT).ky / 10.0;
            let status = if *status == 0 { UnitStatus::Busy } else { UnitStatus::Available };
            d.on_position(&PatrolPosition {
                unit_id: format!("P-{id:02}"), ts: T0 - *age, lon: lon_at(1_000_000.0 + stake), lat, status, speed_kmh: None,
            }, &net);
        }
        let lat = if target_up { LAT } else { north(20.0) };
        let target = place(&net, lon_at(target_stake), lat);
        let chosen = d.choose(&target, &BTreeSet::new(), T0, &net);
        let mut brute: Option<(String, f64)> = None;
        for u in d.registry().units() {
            if T0 - u.ts > s.max_position_age_ms || u.status != UnitStatus::Available { continue; }
            let r = route(&net, &s, &u.place, &target).metres;
            let better = match &brute { None => true, Some((bid, bm)) => r < *bm || (r == *bm && u.unit_id.as_ref() < bid.as_str()) };
            if better { brute = Some((u.unit_id.to_string(), r)); }
        }
        match (chosen, brute) {
            (None, None) => {}
            (Some((i, r)), Some((bid, bm))) => {
                prop_assert_eq!(d.registry().get(i).unit_id.as_ref(), bid.as_str());
                prop_assert!((r.metres - bm).abs() < 1e-6);
            }
            (c, b) => prop_assert!(false, "chosen {:?} vs brute force {:?}", c, b),
        }
    }
}
