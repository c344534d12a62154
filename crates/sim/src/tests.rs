use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use super::*;
use roadwatch_core::model::EventTime;
use roadwatch_core::model::{decode_record, is_valid_plate, DecodeContext, Record};
use roadwatch_core::roads::{distance_m, LoadOptions, RoadNetwork};

fn network() -> Arc<RoadNetwork> {
    static NET: OnceLock<Arc<RoadNetwork>> = OnceLock::new();
    NET.get_or_init(|| {
        Arc::new(
            RoadNetwork::from_geojson(
                include_bytes!("../../../config/roads/bijie.geojson"),
                &LoadOptions::default(),
            )
            .expect("the shipped network loads"),
        )
    })
    .clone()
}

/// A small, fast configuration: two hours, a tenth of the one-off traffic.
fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        duration_ms: 2 * 3_600_000,
        traffic_scale: 0.1,
        private_commuters: 200,
        ..SimConfig::default()
    }
}

fn replay_bytes(records: &[SimRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    write_replay_lines(records, &mut out).unwrap();
    out
}

/// Two simulated days at a reduced scale (shared by several tests: it is the slow part).
fn two_days() -> &'static (Vec<SimRecord>, GroundTruth) {
    static RUN: OnceLock<(Vec<SimRecord>, GroundTruth)> = OnceLock::new();
    RUN.get_or_init(|| {
        let cfg = SimConfig {
            seed: 42,
            duration_ms: 2 * DAY_MS,
            warmup_ms: DAY_MS,
            traffic_scale: 0.1,
            private_commuters: 400,
            ..SimConfig::default()
        };
        let mut sim = Simulator::new(cfg, network());
        let records = sim.run_to_end();
        (records, sim.into_truth())
    })
}

#[test]
fn same_seed_same_bytes_and_other_seed_other_bytes() {
    let run = |seed| {
        let mut sim = Simulator::new(small(seed), network());
        let records = sim.run_to_end();
        let mut truth = Vec::new();
        write_truth(sim.truth(), &mut truth).unwrap();
        (replay_bytes(&records), truth)
    };
    let (a, ta) = run(5);
    let (b, tb) = run(5);
    assert!(!a.is_empty());
    assert!(a == b, "same seed must give identical records");
    assert!(ta == tb, "same seed must give identical truth");
    let (c, _) = run(6);
    assert!(a != c, "another seed must give other records");
}

#[test]
fn batches_concatenate_to_the_same_run() {
    // The batch size changes only how the run is cut, not what is in it.
    let whole = Simulator::new(small(9), network()).run_to_end();
    let mut sim = Simulator::new(
        SimConfig {
            batch_ms: 1_000,
            ..small(9)
        },
        network(),
    );
    let mut cut = Vec::new();
    let mut batch = Vec::new();
    let mut batches = 0;
    while sim.next_batch(&mut batch) {
        cut.append(&mut batch);
        batches += 1;
    }
    assert!(batches >= 7_200);
    assert_eq!(whole.len(), cut.len());
    assert!(whole == cut);
    assert!(!sim.next_batch(&mut batch), "stays done");
}

#[test]
fn every_record_decodes_or_is_refused_for_the_reason_the_truth_gives() {
    let (records, truth) = two_days();
    let ctx = DecodeContext::without_clock();
    let mut dlq: BTreeMap<String, u64> = BTreeMap::new();
    let mut streams: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        *streams.entry(r.stream.as_str().to_owned()).or_default() += 1;
        match (decode_record(r.stream, &r.value, &ctx), r.expect_reject) {
            (Ok(rec), None) => {
                assert_eq!(rec.stream(), r.stream);
                assert_eq!(
                    rec.ts(),
                    EventTime::from_ms(r.ts),
                    "{}",
                    String::from_utf8_lossy(&r.value)
                );
            }
            (Err(e), Some(reason)) => {
                assert_eq!(e.reason, reason, "{}", String::from_utf8_lossy(&r.value));
                *dlq.entry(reason.as_str().to_owned()).or_default() += 1;
            }
            (Ok(_), Some(reason)) => panic!(
                "expected {reason}, decoded: {}",
                String::from_utf8_lossy(&r.value)
            ),
            (Err(e), None) => panic!("{e}: {}", String::from_utf8_lossy(&r.value)),
        }
    }
    assert_eq!(&dlq, &truth.expected_dlq);
    assert_eq!(&streams, &truth.records_by_stream);
    for reason in [
        "invalid_json",
        "invalid_identifier",
        "lat_out_of_range",
        "invalid_plate",
        "missing_field",
    ] {
        assert!(
            dlq.get(reason).copied().unwrap_or(0) > 0,
            "no {reason} in {dlq:?}"
        );
    }
    // About 0.1 % of records.
    let dirty: u64 = dlq.values().sum();
    let share = dirty as f64 / records.len() as f64;
    assert!((0.0005..0.002).contains(&share), "{share}");
}

#[test]
fn replay_lines_are_json_and_bad_json_is_a_string_value() {
    let (records, _) = two_days();
    let records = &records[..records.len().min(300_000)];
    let bytes = replay_bytes(records);
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), records.len());
    let mut strings = 0;
    for (line, r) in bytes.split(|&b| b == b'\n').zip(records) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("each line is JSON");
        assert_eq!(v["stream"], r.stream.as_str());
        if r.expect_reject == Some(RejectReason::InvalidJson) {
            assert!(v["value"].is_string());
            // What the replay decoder sees is not an object: refused as invalid JSON.
            let raw = serde_json::to_vec(&v["value"]).unwrap();
            let e = decode_record(r.stream, &raw, &DecodeContext::without_clock()).unwrap_err();
            assert_eq!(e.reason, RejectReason::InvalidJson);
            strings += 1;
        } else {
            assert!(v["value"].is_object());
        }
    }
    assert!(strings > 0);
}

#[test]
fn time_order_holds_within_thirty_seconds() {
    let (records, truth) = two_days();
    let mut max_ts = i64::MIN;
    let mut late = 0u64;
    for r in records {
        if r.ts < max_ts {
            assert!(max_ts - r.ts <= 30_000, "{} ms late", max_ts - r.ts);
            late += 1;
        }
        max_ts = max_ts.max(r.ts);
        assert!(r.ts >= truth.warmup_start_ms && r.ts < truth.end_ms);
    }
    assert!(late > 0, "the run has late records");
    // Records from the warm-up are plate reads only.
    assert!(records
        .iter()
        .filter(|r| r.ts < truth.start_ms)
        .all(|r| r.stream == Stream::Plate));
}

#[test]
fn plates_are_valid_except_the_deliberately_broken_ones() {
    let (records, truth) = two_days();
    let ctx = DecodeContext::without_clock();
    let mut plates = 0;
    for r in records.iter().filter(|r| r.stream == Stream::Plate) {
        if r.expect_reject.is_none() {
            assert!(is_valid_plate(&r.key).is_some(), "{}", r.key);
            plates += 1;
        }
        if r.expect_reject == Some(RejectReason::InvalidPlate) {
            assert!(decode_record(r.stream, &r.value, &ctx).is_err());
        }
    }
    assert!(plates > 10_000);
    for p in truth.watchlist_plates.iter().chain(&truth.whitelist_plates) {
        assert!(is_valid_plate(p).is_some(), "{p}");
    }
}

#[test]
fn two_days_contain_every_kind_of_ground_truth() {
    let (_, t) = two_days();
    assert!(
        t.pedestrian_incidents.len() >= 20,
        "{}",
        t.pedestrian_incidents.len()
    );
    for class in ["pedestrian", "bicycle"] {
        assert!(
            t.pedestrian_incidents.iter().any(|i| i.class == class),
            "{class}"
        );
    }
    for s in ["tunnel", "bridge"] {
        assert!(
            t.pedestrian_incidents
                .iter()
                .any(|i| i.structure == Some(s) && i.detectable),
            "no detectable incident in a {s}"
        );
    }
    let detectable = t
        .pedestrian_incidents
        .iter()
        .filter(|i| i.detectable)
        .count();
    assert!(
        detectable * 10 >= t.pedestrian_incidents.len() * 6,
        "{detectable}"
    );
    assert!(
        t.pedestrian_incidents.iter().any(|i| !i.detectable),
        "some are hard"
    );
    for i in &t.pedestrian_incidents {
        assert!(i.start_ms >= t.start_ms && i.end_ms < t.end_ms);
        if let Some(c) = i.confirmable_at_ms {
            assert!(i.first_detection_ms.unwrap() <= c && c <= i.last_detection_ms.unwrap());
        }
    }
    let p = &t.people_not_incidents;
    assert!(p.service_area > 100 && p.roadside > 20 && !p.work_zone_crews.is_empty());
    let n = &t.camera_noise;
    assert!(n.low_confidence > 0 && n.phantom_single > 0 && n.off_road > 0 && n.unknown_class > 0);

    assert_eq!(t.illegal_operators.len(), 30);
    for o in &t.illegal_operators {
        let active: u32 = o.days.iter().map(|d| d.trips).sum();
        assert!(active > 0, "{o:?}");
        assert!(
            o.first_seen_ms.is_some() && o.reads as u32 >= active,
            "{o:?}"
        );
    }
    assert_eq!(t.whitelist_plates.len(), 25);
    assert_eq!(t.watchlist_plates.len(), 8 + 3 + 5);
    assert!(t
        .watchlist
        .iter()
        .filter(|w| w.kind == "absent")
        .all(|w| w.reads == 0));
    assert!(t
        .watchlist
        .iter()
        .filter(|w| w.kind == "illegal_operator")
        .all(|w| w.reads > 0));
    assert!(!t.hard_negatives.is_empty());

    for kind in ["fog", "ice", "wind", "rain"] {
        assert!(
            t.weather_episodes.iter().any(|e| e.subtype == kind),
            "no {kind} episode"
        );
    }
    assert!(t
        .weather_episodes
        .iter()
        .any(|e| e.subtype == "fog" && e.level == 4 && e.peak_value < 50.0));
    assert!(t
        .weather_episodes
        .iter()
        .any(|e| e.subtype == "ice" && e.level == 2));
    assert!(!t.weather_dropouts.is_empty() && !t.missing_sensors.is_empty());
    assert_eq!(t.patrol_units.len(), 14);
    assert!(t.dispatch_answers.is_empty(), "no engine, no dispatches");
    assert_eq!(t.records_by_stream.get("ack"), None);
    assert!(t.late_records > 0 && t.plate_misreads > 0 && t.plate_reads_missed > 0);
}

/// Kilometres a plate was seen to cover per local day: straight lines between
/// consecutive reads less than 30 minutes apart (a gap ends a trip, DOMAIN.md).
fn km_per_day(records: &[SimRecord]) -> HashMap<(String, i64), f64> {
    let ctx = DecodeContext::without_clock();
    let mut reads: HashMap<String, Vec<(i64, f64, f64)>> = HashMap::new();
    for r in records
        .iter()
        .filter(|r| r.stream == Stream::Plate && r.expect_reject.is_none())
    {
        if let Ok(Record::Plate(p)) = decode_record(r.stream, &r.value, &ctx) {
            reads
                .entry(p.plate)
                .or_default()
                .push((p.ts.ms(), p.lon, p.lat));
        }
    }
    let mut km = HashMap::new();
    for (plate, mut list) in reads {
        list.sort_by_key(|x| x.0);
        for w in list.windows(2) {
            if w[1].0 - w[0].0 > 30 * 60_000 {
                continue;
            }
            let day = traffic::local_day(w[1].0, 8 * 3600);
            *km.entry((plate.clone(), day)).or_default() +=
                distance_m([w[0].1, w[0].2], [w[1].1, w[1].2]) / 1000.0;
        }
    }
    km
}

#[test]
fn illegal_operators_exceed_the_daily_distance_and_commuters_do_not() {
    let (records, t) = two_days();
    let km = km_per_day(records);
    let start_day = traffic::local_day(t.start_ms, 8 * 3600);
    let mut operator_days = 0;
    let mut over = 0;
    for op in &t.illegal_operators {
        for d in 0..2 {
            let seen = km
                .get(&(op.plate.clone(), start_day + d))
                .copied()
                .unwrap_or(0.0);
            if seen > 0.0 {
                operator_days += 1;
                over += usize::from(seen > 85.8);
            }
        }
    }
    assert!(operator_days >= 40, "{operator_days}");
    // A day with only a few short trips can fall short (straight lines between gantries
    // also undercount the road); most days are beyond the line.
    assert!(over * 4 >= operator_days * 3, "{over} of {operator_days}");

    // Private commuters: find them as the plates with exactly two trips on a weekday
    // that are neither operators, buses nor long-distance commuters.
    let special: std::collections::HashSet<&str> = t
        .illegal_operators
        .iter()
        .chain(&t.licensed_operators)
        .map(|o| o.plate.as_str())
        .chain(t.hard_negatives.iter().map(|h| h.plate.as_str()))
        .chain(t.watchlist_plates.iter().map(String::as_str))
        .collect();
    let sim = Simulator::new(
        SimConfig {
            seed: 42,
            duration_ms: 2 * DAY_MS,
            warmup_ms: DAY_MS,
            traffic_scale: 0.1,
            private_commuters: 400,
            ..SimConfig::default()
        },
        network(),
    );
    let commuters: Vec<String> = sim
        .traffic
        .vehicles
        .iter()
        .filter(|v| v.kind == traffic::VehicleKind::PrivateCommuter)
        .map(|v| v.plate.clone())
        .collect();
    assert_eq!(commuters.len(), 400);
    let mut commuter_days = 0;
    for plate in &commuters {
        assert!(!special.contains(plate.as_str()));
        for d in 0..2 {
            if let Some(&seen) = km.get(&(plate.clone(), start_day + d)) {
                commuter_days += 1;
                assert!(seen < 85.8, "commuter {plate} drove {seen} km");
            }
        }
    }
    assert!(commuter_days > 300, "{commuter_days}");
}

#[test]
fn pedestrian_incidents_are_seen_where_the_truth_says() {
    let (records, t) = two_days();
    let ctx = DecodeContext::without_clock();
    let net = network();
    let inc = t
        .pedestrian_incidents
        .iter()
        .find(|i| i.detectable && i.structure == Some("tunnel"))
        .expect("a detectable tunnel incident");
    let mut hits = 0;
    for r in records
        .iter()
        .filter(|r| r.stream == Stream::Camera && r.expect_reject.is_none())
        .filter(|r| r.ts >= inc.start_ms && r.ts <= inc.end_ms)
    {
        let Ok(Record::Camera(ev)) = decode_record(r.stream, &r.value, &ctx) else {
            panic!()
        };
        for d in &ev.detections {
            if d.class.as_str() != inc.class || d.confidence < 0.5 {
                continue;
            }
            let Some(pos) = net.locate(d.lon, d.lat, EventTime::from_ms(r.ts)) else {
                continue;
            };
            if *pos.road_id == inc.road_id
                && pos.direction.as_str() == inc.direction
                && pos.on_carriageway
                && (pos.stake_m - inc.stake_start_m).abs() < 2_000.0
            {
                // They may walk out of the tunnel; the first sightings are inside.
                hits += usize::from(pos.structure.map(|s| s.as_str()) == Some("tunnel"));
            }
        }
    }
    assert!(hits >= 2, "{hits}");
}

#[test]
fn dispatches_are_answered_in_later_batches() {
    use roadwatch_core::model::{AlertDispatch, AlertKind, AlertLocation, AlertStatus, Severity};
    let mut sim = Simulator::new(small(3), network());
    let mut batch = Vec::new();
    // Run 20 minutes, then dispatch every unit to an incident on G76.
    while sim.now_ms() < sim.config().start_ms + 20 * 60_000 {
        assert!(sim.next_batch(&mut batch));
    }
    let at = sim.now_ms() - 5_000;
    for k in 1..=14 {
        let alert = Alert {
            alert_id: format!("ped-G76-up-1203450-test{k}"),
            kind: AlertKind::Pedestrian,
            subtype: "pedestrian".into(),
            severity: Severity::Critical,
            status: AlertStatus::New,
            event_ts: roadwatch_core::model::EventTimestamp::new(
                EventTime::from_ms(at),
                UtcOffset::china_standard_time(),
            ),
            emitted_ts: String::new(),
            location: AlertLocation {
                lon: 105.6,
                lat: 27.15,
                road_id: Some("G76".into()),
                road_name: None,
                direction: Some("up".into()),
                stake: None,
                stake_m: Some(1_203_450),
                structure: None,
            },
            summary: String::new(),
            details: serde_json::Map::new(),
            dispatch: Some(AlertDispatch {
                unit_id: format!("P-{k:02}"),
                eta_s: 0,
                route_m: 0,
                attempt: 1,
                assigned_by: None,
            }),
            source_event_ids: vec![],
            observed: None,
            acknowledged_by: None,
            notes: Vec::new(),
            outcome: None,
            closed_by: None,
            intercept: None,
        };
        sim.on_alert(&alert);
        sim.on_alert(&alert); // a repeat (update) is not answered twice
    }
    assert_eq!(sim.truth().dispatch_answers.len(), 14);
    let emitted_until = sim.now_ms();
    let mut rest = Vec::new();
    while sim.next_batch(&mut batch) {
        rest.append(&mut batch);
    }
    let ctx = DecodeContext::without_clock();
    let acks: Vec<_> = rest
        .iter()
        .filter(|r| r.stream == Stream::Ack)
        .map(|r| match decode_record(r.stream, &r.value, &ctx) {
            Ok(Record::Ack(a)) => a,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(!acks.is_empty());
    assert!(acks
        .iter()
        .all(|a| a.ts >= EventTime::from_ms(emitted_until)));
    // The crews say what they found: nobody was ever on the road there (these alerts
    // are the test's own), so every `resolved` reports a false alarm.
    let resolved: Vec<_> = acks
        .iter()
        .filter(|a| a.status == roadwatch_core::model::AckStatus::Resolved)
        .collect();
    assert!(!resolved.is_empty());
    assert!(
        resolved
            .iter()
            .all(|a| a.outcome == Some(roadwatch_core::model::Outcome::FalseAlarm)),
        "{resolved:?}"
    );
    let answers = &sim.truth().dispatch_answers;
    let accepted = answers.iter().filter(|a| a.decision == "accepted").count();
    assert!(accepted >= 5, "{answers:?}");
    assert_eq!(
        acks.iter()
            .filter(|a| a.status == roadwatch_core::model::AckStatus::Accepted)
            .count(),
        accepted
    );
    // Accepting units drive there: the last positions of one of them are near G76 K1203.
    let unit = &answers.iter().find(|a| a.decision == "accepted").unwrap();
    let arrived = unit.arrived_ms.unwrap();
    let resolved = unit.resolved_ms.unwrap();
    let near = rest
        .iter()
        .filter(|r| {
            r.stream == Stream::Patrol && r.expect_reject.is_none() && r.key == unit.unit_id
        })
        .filter(|r| r.ts > arrived + 10_000 && r.ts < resolved)
        .filter_map(|r| match decode_record(r.stream, &r.value, &ctx) {
            Ok(Record::Patrol(p)) => Some(p),
            _ => None,
        })
        .all(|p| {
            let pos = network().locate(p.lon, p.lat, p.ts).unwrap();
            &*pos.road_id == "G76" && (pos.stake_m - 1_203_450.0).abs() < 300.0
        });
    assert!(near);
}

/// Every record decodes (or is refused as the simulator says) and the run keeps its
/// promises on time order.
fn check_run(records: &[SimRecord]) {
    let ctx = DecodeContext::without_clock();
    let mut max_ts = i64::MIN;
    for r in records {
        let got = decode_record(r.stream, &r.value, &ctx);
        match r.expect_reject {
            None => assert!(
                got.is_ok(),
                "{:?}: {}",
                got,
                String::from_utf8_lossy(&r.value)
            ),
            Some(reason) => assert_eq!(got.unwrap_err().reason, reason),
        }
        assert!(max_ts.saturating_sub(r.ts) <= 30_000);
        max_ts = max_ts.max(r.ts);
    }
}

#[test]
fn runs_on_an_openstreetmap_export() {
    // Other roads, no stations, undivided stretches, junction nodes on each carriageway:
    // the simulator must still run and emit only valid records.
    let net = Arc::new(
        RoadNetwork::from_geojson(
            include_bytes!("../../../tests/fixtures/osm/motorways-rhine-neckar.geojson"),
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let mut sim = Simulator::new(
        SimConfig {
            duration_ms: 3_600_000,
            traffic_scale: 0.05,
            private_commuters: 100,
            utc_offset_s: 3600,
            ..SimConfig::default()
        },
        net,
    );
    let records = sim.run_to_end();
    check_run(&records);
    let t = sim.truth();
    assert!(t.devices.cameras > 0 && t.devices.anpr_gantries > 0);
    assert_eq!(t.devices.weather_stations, 0);
    assert!(t.records_by_stream.get("plate").copied().unwrap_or(0) > 100);
    assert!(t.records_by_stream.get("camera").copied().unwrap_or(0) > 1000);
}

#[test]
fn runs_on_a_single_road_without_interchanges() {
    // 20 km of straight divided road along 27°N, nothing else.
    let kx = roadwatch_core::roads::Scale::at(27.0).kx;
    let line = |dir: &str, lat: f64, s0: f64, s1: f64, x0: f64, x1: f64| {
        format!(
            r#"{{"type":"Feature","properties":{{"kind":"carriageway","road_id":"X1","direction":"{dir}","stake_start_m":{s0},"stake_end_m":{s1},"width_m":13}},"geometry":{{"type":"LineString","coordinates":[[{x0},{lat}],[{x1},{lat}]]}}}}"#
        )
    };
    let east = 105.0 + 20_000.0 / kx;
    let geojson = format!(
        r#"{{"type":"FeatureCollection","features":[{},{}]}}"#,
        line("up", 27.0, 0.0, 20_000.0, 105.0, east),
        line("down", 27.00018, 20_000.0, 0.0, east, 105.0)
    );
    let net =
        Arc::new(RoadNetwork::from_geojson(geojson.as_bytes(), &LoadOptions::default()).unwrap());
    let mut sim = Simulator::new(
        SimConfig {
            duration_ms: 2 * 3_600_000,
            patrol_units: 2,
            ..SimConfig::default()
        },
        net,
    );
    let records = sim.run_to_end();
    check_run(&records);
    assert!(
        sim.truth()
            .records_by_stream
            .get("plate")
            .copied()
            .unwrap_or(0)
            > 100
    );
    assert!(
        sim.truth()
            .records_by_stream
            .get("patrol")
            .copied()
            .unwrap_or(0)
            > 100
    );
}

#[test]
fn an_empty_network_gives_an_empty_run() {
    let net = Arc::new(
        RoadNetwork::from_geojson(
            br#"{"type":"FeatureCollection","features":[]}"#,
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let mut sim = Simulator::new(small(1), net);
    assert!(sim.run_to_end().is_empty());
    assert!(sim.is_done());
}

#[test]
fn bad_configuration_is_reported_at_once() {
    let cfg = SimConfig {
        duration_ms: 0,
        dirty_rate: 2.0,
        watchlisted_operators: 99,
        ..SimConfig::default()
    };
    let problems = Simulator::try_new(cfg, network()).err().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn vehicles_and_patrols_move_plausibly() {
    let (records, _) = two_days();
    let ctx = DecodeContext::without_clock();
    let net = network();
    let mut reads: HashMap<String, Vec<(i64, f64, f64, bool)>> = HashMap::new();
    let (mut fixes, mut on_road) = (0, 0);
    for r in records.iter().filter(|r| r.expect_reject.is_none()) {
        match decode_record(r.stream, &r.value, &ctx).unwrap() {
            Record::Plate(p) => {
                let sa = p.reader_id.ends_with("-SA");
                reads
                    .entry(p.plate)
                    .or_default()
                    .push((p.ts.ms(), p.lon, p.lat, sa));
            }
            Record::Patrol(p) => {
                fixes += 1;
                on_road += usize::from(
                    net.locate(p.lon, p.lat, p.ts)
                        .is_some_and(|x| x.offset_m < 15.0),
                );
            }
            _ => {}
        }
    }
    // Straight-line speed between consecutive gantries of one trip (a service-area stop
    // in between excluded): what highway traffic does, never faster than a car can go.
    let (mut pairs, mut plausible) = (0, 0);
    for list in reads.values_mut() {
        list.sort_by_key(|x| x.0);
        for w in list.windows(2) {
            let hours = (w[1].0 - w[0].0) as f64 / 3_600_000.0;
            if hours <= 0.0 || hours > 0.5 || w[0].3 || w[1].3 {
                continue;
            }
            let kmh = distance_m([w[0].1, w[0].2], [w[1].1, w[1].2]) / 1000.0 / hours;
            assert!(kmh < 160.0, "{kmh} km/h");
            pairs += 1;
            plausible += usize::from((40.0..=130.0).contains(&kmh));
        }
    }
    assert!(pairs > 5_000);
    assert!(plausible * 100 >= pairs * 95, "{plausible} of {pairs}");
    // Patrol cars are on the road, apart from the nights of day-shift units at base.
    assert!(fixes > 50_000);
    assert!(on_road * 100 >= fixes * 98, "{on_road} of {fixes}");
}
