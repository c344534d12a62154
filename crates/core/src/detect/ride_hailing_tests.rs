//! Tests of the ride-hailing detector on a small synthetic network: one straight road
//! `G99` (two carriageways, ~99 km along latitude 27°), six interchanges and a service
//! area at K40.
use crate::model::EventTime;
use proptest::prelude::*;

use super::*;
use crate::roads::LoadOptions;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// 2026-11-28T00:00:00+08:00.
const T0: EventTime = EventTime::from_ms(1_795_795_200_000);
/// Stake at lon 106.0; stakes grow with longitude along the straight road.
const ROAD_END_M: f64 = 99_190.0;
const UP_LAT: f64 = 27.0;
const DOWN_LAT: f64 = 27.0002;
const SA_LAT: f64 = 26.9993;
const SA_STAKE: f64 = 40_000.0;

fn lon_at(stake: f64) -> f64 {
    105.0 + stake / ROAD_END_M
}

fn network() -> RoadNetwork {
    let line = |lat: f64, reverse: bool| {
        let mut pts: Vec<String> = (0..=20)
            .map(|i| format!("[{:.6},{lat}]", 105.0 + f64::from(i) * 0.05))
            .collect();
        if reverse {
            pts.reverse();
        }
        pts.join(",")
    };
    let interchange = |name: &str, stake: f64| {
        format!(
            r#"{{"type":"Feature","properties":{{"kind":"interchange","road_id":"G99","name":"{name}","stake_m":{stake}}},"geometry":{{"type":"Point","coordinates":[{:.6},27.0001]}}}}"#,
            lon_at(stake)
        )
    };
    let (w, e) = (lon_at(SA_STAKE - 100.0), lon_at(SA_STAKE + 100.0));
    let sa = format!(
        r#"{{"type":"Feature","properties":{{"kind":"service_area","name":"测试服务区"}},"geometry":{{"type":"Polygon","coordinates":[[[{w:.6},26.9990],[{e:.6},26.9990],[{e:.6},26.9996],[{w:.6},26.9996],[{w:.6},26.9990]]]}}}}"#
    );
    let mut features = vec![
        format!(
            r#"{{"type":"Feature","properties":{{"kind":"carriageway","road_id":"G99","name":"测试高速","direction":"up","stake_start_m":0,"stake_end_m":{ROAD_END_M}}},"geometry":{{"type":"LineString","coordinates":[{}]}}}}"#,
            line(UP_LAT, false)
        ),
        format!(
            r#"{{"type":"Feature","properties":{{"kind":"carriageway","road_id":"G99","name":"测试高速","direction":"down","stake_start_m":{ROAD_END_M},"stake_end_m":0}},"geometry":{{"type":"LineString","coordinates":[{}]}}}}"#,
            line(DOWN_LAT, true)
        ),
        sa,
    ];
    for (name, stake) in [
        ("甲互通", 2_000.0),
        ("乙互通", 10_000.0),
        ("丙互通", 30_000.0),
        ("丁互通", 50_000.0),
        ("戊互通", 70_000.0),
        ("己互通", 90_000.0),
    ] {
        features.push(interchange(name, stake));
    }
    let text = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    );
    RoadNetwork::from_geojson(text.as_bytes(), &LoadOptions::default()).expect("test network")
}

fn settings() -> RideHailingSettings {
    crate::settings::test_settings().ride_hailing
}

fn output(locale: Locale) -> OutputSettings {
    let mut o = crate::settings::test_settings().output;
    o.locale = locale;
    o
}

fn detector() -> RideHailingDetector {
    RideHailingDetector::new(settings(), output(Locale::ZhCn))
}

fn list(text: &str) -> PlateList {
    let (l, problems) = PlateList::parse(text);
    assert!(problems.is_empty(), "{problems:?}");
    l
}

fn read_at(plate: &str, ms: EventTime, stake: f64, up: bool) -> PlateRead {
    PlateRead {
        event_id: format!("anpr-{ms}"),
        reader_id: format!(
            "anpr-G99-K{}-{}",
            (stake / 1000.0) as i64,
            if up { "U" } else { "D" }
        ),
        ts: ms,
        plate: plate.to_owned(),
        plate_color: PlateColor::Blue,
        vehicle_class: VehicleClass::Car,
        lon: lon_at(stake),
        lat: if up { UP_LAT } else { DOWN_LAT },
        confidence: Some(0.97),
    }
}

/// A read by the entrance reader of the service area (on the up side).
fn sa_read(plate: &str, ms: EventTime) -> PlateRead {
    let mut r = read_at(plate, ms, SA_STAKE, true);
    r.lat = SA_LAT;
    r.reader_id = "anpr-G99-SA40".into();
    r
}

struct Sim {
    det: RideHailingDetector,
    roads: RoadNetwork,
    out: Vec<AlertDraft>,
}

impl Sim {
    fn new(det: RideHailingDetector) -> Sim {
        Sim {
            det,
            roads: network(),
            out: Vec::new(),
        }
    }

    fn read(&mut self, r: &PlateRead) {
        // As the engine does: the watermark moves to the record before it is applied.
        self.det.on_time(r.ts);
        self.det.on_plate_read(r, &self.roads, &mut self.out);
    }

    /// Drives from `from` to `to` at 100 km/h, read by gantries every 10 km (and at both
    /// ends); with `stop`, the car calls at the service area for 5 minutes on the way.
    /// Returns the time of the last read.
    fn drive(
        &mut self,
        plate: &str,
        start: EventTime,
        from: f64,
        to: f64,
        stop: bool,
    ) -> EventTime {
        let up = to > from;
        let mut stakes = vec![from];
        let mut k = if up {
            (from / 10_000.0).floor() + 1.0
        } else {
            (from / 10_000.0).ceil() - 1.0
        };
        loop {
            let s = k * 10_000.0;
            if (up && s >= to) || (!up && s <= to) {
                break;
            }
            stakes.push(s);
            k += if up { 1.0 } else { -1.0 };
        }
        stakes.push(to);
        let mut t = start;
        let mut prev = from;
        for s in stakes {
            t += ((s - prev).abs() / 100_000.0 * HOUR as f64) as i64;
            prev = s;
            if stop && up && s == SA_STAKE {
                self.read(&sa_read(plate, t));
                t += 5 * MIN;
            } else {
                self.read(&read_at(plate, t, s, up));
            }
        }
        t
    }

    fn alerts(&self, subtype: &str) -> Vec<&AlertDraft> {
        self.out.iter().filter(|a| a.subtype == subtype).collect()
    }

    fn state(&self, plate: &str) -> &PlateState {
        let code = PlateCode::new(plate).expect("a valid plate");
        self.det.plates.get(&code).expect("plate tracked")
    }
}

// --- lists ---------------------------------------------------------------------------

#[test]
fn lists_parse_comments_blanks_and_report_bad_lines() {
    let text = "\u{feff}# 重点车辆 watchlist\n贵F12345\n\n   \n  贵A·B1234   # after a plate\nnot a plate\n贵F12345\n贵fd12345\n贵F1234O\n# end\n";
    let (l, problems) = PlateList::parse(text);
    assert_eq!(l.len(), 3);
    assert!(l.contains("贵F12345"));
    assert!(l.contains("贵AB1234"));
    assert!(l.contains("贵FD12345"), "lower case is normalised");
    assert!(!l.contains("贵F1234O"));
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].starts_with("line 6:"), "{problems:?}");
    assert!(problems[1].starts_with("line 7:") && problems[1].contains("duplicate of line 2"));
    assert!(problems[2].starts_with("line 9:"));
    // Problems and Debug never carry plate text (personal data).
    for p in &problems {
        assert!(!p.contains("贵"), "{p}");
    }
    assert_eq!(format!("{l:?}"), "PlateList(3 plates)");
    let (empty, problems) = PlateList::parse("");
    assert!(empty.is_empty() && problems.is_empty());
    assert_eq!(PlateList::empty().len(), 0);
}

// --- watchlist -----------------------------------------------------------------------

#[test]
fn watchlist_alerts_at_once_with_intercept_ahead_and_rate_limit() {
    let mut sim = Sim::new(detector());
    sim.det.set_lists(list("贵F12345\n"), PlateList::empty());
    let t = T0 + 9 * HOUR;
    sim.read(&read_at("贵F12345", t, 35_000.0, true));
    let alerts = sim.alerts("watchlist");
    assert_eq!(alerts.len(), 1);
    let a = alerts[0];
    assert_eq!(a.kind, AlertKind::IllegalRideHailing);
    assert_eq!(a.severity, Severity::Severe);
    assert_eq!(a.status, AlertStatus::New);
    assert_eq!(a.details["plate"], "贵F12345");
    assert_eq!(a.details["plate_color"], "blue");
    assert_eq!(a.details["vehicle_class"], "car");
    assert_eq!(a.details["direction"], "up");
    assert_eq!(a.details["position"]["stake"], "K35+000");
    // The alert id names the plate only through its hash.
    assert!(!a.alert_id.contains("贵") && !a.alert_id.contains("12345"));
    assert!(a.alert_id.starts_with(&format!(
        "rh-watchlist-{}-",
        settings().plate_key.pseudonym("贵F12345")
    )));
    assert!(crate::model::is_valid_identifier(&a.alert_id));
    let i = &a.details["intercept"];
    assert_eq!(i["kind"], "service_area");
    assert_eq!(i["name"], "测试服务区");
    assert_eq!(i["road_id"], "G99");
    assert_eq!(i["direction"], "up");
    let d = i["distance_m"].as_i64().unwrap();
    assert!((4_800..=5_200).contains(&d), "{d}");
    assert_eq!(a.details["next_interchange"]["name"], "丁互通");
    assert_eq!(a.details["next_interchange"]["stake_m"], 50_000);
    assert!(
        a.summary
            .starts_with("重点车辆 贵F12345 出现在 G99 测试高速 上行 K35+000，前方 测试服务区 "),
        "{}",
        a.summary
    );
    assert_eq!(a.location.road_id.as_deref(), Some("G99"));
    assert_eq!(a.source_event_ids, vec![format!("anpr-{t}")]);

    // 29 minutes later: still within the cooldown.
    sim.read(&read_at("贵F12345", t + 29 * MIN, 70_000.0, true));
    assert_eq!(sim.alerts("watchlist").len(), 1);
    // 31 minutes after the first alert: another.
    sim.read(&read_at("贵F12345", t + 31 * MIN, 75_000.0, true));
    let alerts = sim.alerts("watchlist");
    assert_eq!(alerts.len(), 2);
    assert_ne!(alerts[0].alert_id, alerts[1].alert_id);
}

#[test]
fn watchlist_intercept_follows_the_direction_of_travel() {
    let mut sim = Sim::new(RideHailingDetector::new(settings(), output(Locale::En)));
    sim.det
        .set_lists(list("贵F12345\n川B12345\n"), PlateList::empty());
    // Down at K35: the service area (K40) is behind; the next exit is 丙互通 at K30.
    sim.read(&read_at("贵F12345", T0, 35_000.0, false));
    let a = sim.alerts("watchlist")[0].clone();
    assert_eq!(a.details["intercept"]["kind"], "interchange");
    assert_eq!(a.details["intercept"]["name"], "丙互通");
    assert_eq!(a.details["intercept"]["direction"], "down");
    assert_eq!(a.details["next_service_area"], Value::Null);
    assert!(
        a.summary.starts_with(
            "Watchlist vehicle 贵F12345 seen at G99 测试高速 down K35+000; ahead: 丙互通 5.0 km"
        ),
        "{}",
        a.summary
    );
    // Inside the service area: intercept there, now.
    sim.read(&sa_read("川B12345", T0 + MIN));
    let a = sim.alerts("watchlist")[1].clone();
    assert_eq!(a.details["intercept"]["name"], "测试服务区");
    assert_eq!(a.details["intercept"]["distance_m"], 0);
    assert_eq!(a.details["position"]["zone"], "service_area");
    assert!(a.summary.ends_with("now in 测试服务区"), "{}", a.summary);
    // Off the network: still an alert, without road fields or intercept.
    sim.read(&PlateRead {
        lon: 104.0,
        lat: 26.0,
        ..read_at("贵F12345", T0 + HOUR, 0.0, true)
    });
    let a = sim.alerts("watchlist")[2].clone();
    assert_eq!(a.details["intercept"], Value::Null);
    assert_eq!(a.location.road_id, None);
    assert_eq!(
        a.summary,
        "Watchlist vehicle 贵F12345 seen at 104.00000,26.00000"
    );
}

#[test]
fn whitelisted_commercial_and_non_cars_are_ignored() {
    let mut sim = Sim::new(detector());
    sim.det.set_lists(
        list("贵F12345\n贵A11111\n贵A22222\n贵A33333\n"),
        list("贵F12345\n"),
    );
    sim.read(&read_at("贵F12345", T0, 35_000.0, true));
    let mut yellow = read_at("贵A11111", T0, 35_000.0, true);
    yellow.plate_color = PlateColor::Yellow;
    sim.read(&yellow);
    let mut truck = read_at("贵A22222", T0, 35_000.0, true);
    truck.vehicle_class = VehicleClass::Truck;
    sim.read(&truck);
    let mut bus = read_at("贵A33333", T0, 35_000.0, true);
    bus.vehicle_class = VehicleClass::Bus;
    sim.read(&bus);
    assert!(sim.out.is_empty(), "{:?}", sim.out);
    assert_eq!(sim.det.tracked_plates(), 0, "ignored reads leave no state");
    // A van with a green (new-energy) plate is a private car.
    let mut van = read_at("贵A11111", T0, 35_000.0, true);
    van.vehicle_class = VehicleClass::Van;
    van.plate_color = PlateColor::Green;
    sim.read(&van);
    assert_eq!(sim.alerts("watchlist").len(), 1);
    assert_eq!(sim.det.tracked_plates(), 1);
    // Whitelisting a tracked plate drops its state.
    sim.det.set_lists(PlateList::empty(), list("贵A11111\n"));
    assert_eq!(sim.det.tracked_plates(), 0);
    assert_eq!(sim.det.list_sizes(), (0, 1));
}

// --- trips ---------------------------------------------------------------------------

#[test]
fn trips_split_at_gaps_longer_than_trip_gap() {
    let mut sim = Sim::new(detector());
    let p = "贵F12345";
    sim.read(&read_at(p, T0 + 8 * HOUR, 10_000.0, true));
    sim.read(&read_at(p, T0 + 8 * HOUR + 6 * MIN, 20_000.0, true));
    // Exactly 30 minutes: same trip.
    sim.read(&read_at(p, T0 + 8 * HOUR + 36 * MIN, 30_000.0, true));
    assert!(sim.state(p).trips.is_empty());
    assert_eq!(sim.state(p).open.reads, 3);
    // 31 minutes: a new trip.
    let t2 = T0 + 8 * HOUR + 67 * MIN;
    sim.read(&read_at(p, t2, 30_000.0, false));
    sim.read(&read_at(p, t2 + 12 * MIN, 10_000.0, false));
    let st = sim.state(p);
    assert_eq!(st.trips.len(), 1);
    let first = st.trips[0];
    assert_eq!(first.duration_min, 36);
    assert_eq!(first.distance_hm, 200, "20 km along the carriageway");
    assert_eq!(first.from, place_of_stake(&sim.roads, 10_000.0));
    assert_eq!(first.to, place_of_stake(&sim.roads, 30_000.0));
    assert_eq!(st.open.start_ms, t2);
    assert_eq!(
        st.open.from, first.to,
        "the return starts where the first trip ended"
    );
    assert_eq!(st.open.to, first.from);
    assert_eq!(st.open.reads, 2);
    // A late read (older than the last) marks the day but does not touch the trip.
    sim.read(&read_at(p, t2 + 11 * MIN, 50_000.0, true));
    assert_eq!(sim.state(p).open.reads, 2);
}

fn place_of_stake(roads: &RoadNetwork, stake: f64) -> u16 {
    let pos = roads.locate(lon_at(stake), UP_LAT, T0).unwrap();
    let place = Places::of(roads).index(place_of(roads, &pos));
    assert_ne!(
        place, NO_PLACE,
        "every key place_of gives is a place of the network"
    );
    place
}

#[test]
fn implausible_jumps_do_not_add_distance() {
    let mut sim = Sim::new(detector());
    let p = "贵F12345";
    sim.read(&read_at(p, T0, 10_000.0, true));
    // 80 km in one minute: a misread or a cloned plate.
    sim.read(&read_at(p, T0 + MIN, 90_000.0, true));
    assert_eq!(sim.state(p).open.distance_m, 0.0);
}

#[test]
fn service_area_stops_mid_trip_are_counted_once() {
    let mut sim = Sim::new(detector());
    let p = "贵F12345";
    sim.drive(p, T0 + 8 * HOUR, 10_000.0, 70_000.0, true);
    let st = sim.state(p);
    assert_eq!(st.open.stops, 1);
    // Metres along the geometry (the test road's stakes are ~0.07% short of it).
    assert!(
        (st.open.distance_m - 60_000.0).abs() < 100.0,
        "{}",
        st.open.distance_m
    );
    // A trip that begins at the service area has no mid-trip stop there.
    let q = "川B12345";
    sim.read(&sa_read(q, T0 + 9 * HOUR));
    sim.read(&read_at(q, T0 + 9 * HOUR + 5 * MIN, 50_000.0, true));
    assert_eq!(sim.state(q).open.stops, 0);
}

// --- pattern -------------------------------------------------------------------------

/// Six trips a day between 乙互通 (K10) and 戊互通 (K70), 60 km each, turning round in
/// 40 minutes, one service-area pickup a day.
fn operator_day(sim: &mut Sim, plate: &str, day: i64) {
    let mut t = T0 + day * DAY + 7 * HOUR;
    for trip in 0..6 {
        let (from, to) = if trip % 2 == 0 {
            (10_000.0, 70_000.0)
        } else {
            (70_000.0, 10_000.0)
        };
        t = sim.drive(plate, t, from, to, trip == 0) + 40 * MIN;
    }
}

#[test]
fn an_operator_alerts_after_enough_days_and_once_per_24h() {
    let mut sim = Sim::new(detector());
    let p = "贵F88888";
    for day in 0..5 {
        operator_day(&mut sim, p, day);
        if day < 2 {
            assert!(
                sim.alerts("pattern").is_empty(),
                "no pattern alert before 3 active days"
            );
        }
    }
    let alerts = sim.alerts("pattern");
    assert!(!alerts.is_empty(), "an operator must be found");
    for w in alerts.windows(2) {
        assert!(w[1].event_ms - w[0].event_ms >= DAY, "at most one per 24 h");
    }
    assert!(alerts.len() <= 3, "days 3, 4, 5 at most");
    let a = alerts[0];
    assert!(a.event_ms >= T0 + 2 * DAY, "needs 3 active days");
    assert_eq!(a.kind, AlertKind::IllegalRideHailing);
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.details["plate"], p);
    assert!(a.alert_id.starts_with(&format!(
        "rh-pattern-{}-",
        settings().plate_key.pseudonym(p)
    )));
    let score = a.details["score"].as_f64().unwrap();
    assert!((0.7..=1.0).contains(&score), "{score}");
    assert_eq!(a.details["window_days"], 7);
    assert!(a.details["active_days"].as_u64().unwrap() >= 3);
    assert!(a.details["km_per_day"].as_f64().unwrap() > 128.0);
    assert_eq!(a.details["main_route"]["from"], "乙互通");
    assert_eq!(a.details["main_route"]["to"], "戊互通");
    // The window starts at 04:00 local, six operating days before the alert's.
    assert_eq!(a.details["since"], "2026-11-24T04:00:00.000+08:00");
    // At 乙互通 now: the intercept is the next point at least 1 km ahead.
    assert_eq!(a.details["position"]["stake"], "K10+000");
    assert_eq!(a.details["next_interchange"]["name"], "丙互通");
    assert_eq!(a.details["intercept"]["name"], "丙互通");
    let features = a.details["features"].as_object().unwrap();
    assert_eq!(features.len(), 6);
    let weights: f64 = features
        .values()
        .map(|f| f["weight"].as_f64().unwrap())
        .sum();
    assert!((weights - 1.0).abs() < 1e-9);
    assert!(features["daily_km"]["value"].as_f64().unwrap() > 128.0);
    assert!(
        features["corridor_trips_per_day"]["value"]
            .as_f64()
            .unwrap()
            >= 4.0
    );
    assert!(
        a.summary
            .starts_with("疑似非法营运车辆 贵F88888：近7天活跃3天"),
        "{}",
        a.summary
    );
}

/// Home at 乙互通 (K10), work at K22.5: 12.5 km each way, weekdays, for three weeks.
#[test]
fn a_commuter_never_alerts() {
    let mut sim = Sim::new(detector());
    let p = "贵F66666";
    for day in 0..21 {
        if day % 7 >= 5 {
            continue;
        }
        let base = T0 + day * DAY;
        sim.drive(p, base + 7 * HOUR + 30 * MIN, 10_000.0, 22_500.0, false);
        sim.drive(p, base + 18 * HOUR, 22_500.0, 10_000.0, false);
        let st = sim.state(p);
        let today = sim.det.day_of(st.last.ms);
        let ev = evidence(st, today, 7, sim.det.offset_ms, &settings());
        assert!(ev.score < 0.3, "day {day}: {ev:?}");
    }
    assert!(sim.out.is_empty(), "{:?}", sim.out);
    let st = sim.state(p);
    let ev = evidence(
        st,
        sim.det.day_of(st.last.ms),
        7,
        sim.det.offset_ms,
        &settings(),
    );
    assert!((ev.km_per_day - 25.0).abs() < 0.5, "{ev:?}");
    assert_eq!(ev.features[1].value, 2.0, "two trips a day on the corridor");
}

#[test]
fn one_long_distance_day_does_not_alert() {
    let mut sim = Sim::new(detector());
    let p = "贵F77777";
    // ~290 km in one day: up the whole road, back, and up again, short turns.
    let t = sim.drive(p, T0 + 6 * HOUR, 2_000.0, 99_000.0, true);
    let t = sim.drive(p, t + 10 * MIN, 99_000.0, 2_000.0, false);
    sim.drive(p, t + 10 * MIN, 2_000.0, 99_000.0, false);
    // Then a week of silence and one more short trip.
    sim.drive(p, T0 + 6 * DAY + 9 * HOUR, 10_000.0, 30_000.0, false);
    assert!(sim.alerts("pattern").is_empty(), "{:?}", sim.out);
    let st = sim.state(p);
    let ev = evidence(
        st,
        sim.det.day_of(T0 + 6 * HOUR),
        7,
        sim.det.offset_ms,
        &settings(),
    );
    assert!(ev.km_per_day > 280.0, "{ev:?}");
    assert_eq!(ev.active_days, 1);
}

#[test]
fn pattern_without_enough_days_never_fires_even_with_a_high_score() {
    let mut s = settings();
    s.score_threshold = 0.01;
    let mut sim = Sim::new(RideHailingDetector::new(s, output(Locale::En)));
    operator_day(&mut sim, "贵F88888", 0);
    operator_day(&mut sim, "贵F88888", 1);
    assert!(sim.alerts("pattern").is_empty());
    operator_day(&mut sim, "贵F88888", 2);
    let a = sim.alerts("pattern");
    assert_eq!(a.len(), 1);
    assert!(a[0]
        .summary
        .starts_with("Suspected illegal ride-hailing vehicle 贵F88888: active 3 of 7 days"));
}

// --- expiry, bounds, memory ----------------------------------------------------------

#[test]
fn state_expires_by_event_time() {
    let mut sim = Sim::new(detector());
    sim.det.set_lists(list("贵F12345\n"), PlateList::empty());
    sim.drive("贵F12345", T0 + 8 * HOUR, 10_000.0, 30_000.0, false);
    let last = sim.state("贵F12345").last.ms;
    sim.drive("川B12345", T0 + 6 * DAY, 10_000.0, 30_000.0, false);
    sim.det.on_time(last + 7 * DAY - MIN);
    assert_eq!(sim.det.tracked_plates(), 2);
    assert!(
        sim.det.watch_alerted.is_empty(),
        "cooldowns end with their time"
    );
    // Sweeps run at most every SWEEP_INTERVAL_MS of event time.
    sim.det.on_time(last + 7 * DAY + SWEEP_INTERVAL_MS);
    assert_eq!(sim.det.tracked_plates(), 1, "unseen for a window");
    // A plate read again after a window without a sweep in between starts afresh.
    let q = "贵A44444";
    sim.drive(q, T0 + 10 * DAY, 10_000.0, 30_000.0, false);
    sim.read(&read_at(q, T0 + 17 * DAY + HOUR, 10_000.0, true));
    assert!(sim.state(q).trips.is_empty());
    assert_eq!(sim.state(q).open.reads, 1);
    // Trips older than the window are dropped from a plate that stays.
    let p = "贵A55555";
    sim.drive(p, T0 + 20 * DAY + 8 * HOUR, 10_000.0, 30_000.0, false);
    sim.drive(p, T0 + 25 * DAY + 8 * HOUR, 10_000.0, 30_000.0, false);
    sim.drive(p, T0 + 26 * DAY + 8 * HOUR, 10_000.0, 30_000.0, false);
    assert_eq!(sim.state(p).trips.len(), 2);
    sim.det.on_time(T0 + 27 * DAY + 10 * HOUR);
    assert_eq!(
        sim.state(p).trips.len(),
        1,
        "the day-20 trip left the window"
    );
}

#[test]
fn tracked_plates_are_bounded_and_the_least_recently_seen_go() {
    let mut s = settings();
    s.max_tracked_plates = 3;
    let mut sim = Sim::new(RideHailingDetector::new(s, output(Locale::ZhCn)));
    let plates = ["贵A00001", "贵A00002", "贵A00003", "贵A00004", "贵A00005"];
    for (i, p) in plates.iter().enumerate().take(3) {
        sim.read(&read_at(p, T0 + i as i64 * MIN, 20_000.0, true));
    }
    // Seen again: now the most recent.
    sim.read(&read_at(plates[0], T0 + 10 * MIN, 30_000.0, true));
    sim.read(&read_at(plates[3], T0 + 11 * MIN, 30_000.0, true));
    sim.read(&read_at(plates[4], T0 + 12 * MIN, 30_000.0, true));
    assert_eq!(sim.det.tracked_plates(), 3);
    let mut kept: Vec<String> = sim.det.plates.keys().map(|k| k.to_plate()).collect();
    kept.sort_unstable();
    assert_eq!(kept, vec!["贵A00001", "贵A00004", "贵A00005"]);
}

#[test]
fn bytes_per_plate_stay_small() {
    let mut sim = Sim::new(detector());
    let commuter = "贵F66666";
    let operator = "贵F88888";
    for day in 0..7 {
        let base = T0 + day * DAY;
        sim.drive(
            commuter,
            base + 7 * HOUR + 30 * MIN,
            10_000.0,
            22_500.0,
            false,
        );
        sim.drive(commuter, base + 18 * HOUR, 22_500.0, 10_000.0, false);
        operator_day(&mut sim, operator, day);
    }
    let c = sim.state(commuter);
    let o = sim.state(operator);
    let commuter_bytes = c.bytes();
    let operator_bytes = o.bytes();
    eprintln!(
        "PlateState {} B, TripRec {} B; commuter: {} trips, {} B; operator: {} trips, {} B",
        std::mem::size_of::<PlateState>(),
        std::mem::size_of::<TripRec>(),
        c.trips.len(),
        commuter_bytes,
        o.trips.len(),
        operator_bytes
    );
    assert_eq!(std::mem::size_of::<TripRec>(), 12);
    assert_eq!(std::mem::size_of::<PlateCode>(), 8);
    assert!(std::mem::size_of::<PlateState>() <= 112);
    // Issue #18: at most 300 bytes for a week of a commuter's plate.
    assert!(commuter_bytes <= 300, "{commuter_bytes}");
    assert!(operator_bytes <= 700, "{operator_bytes}");
    assert!(sim.det.approx_state_bytes() >= commuter_bytes);
}

// --- properties ----------------------------------------------------------------------

const PLATES: [&str; 5] = ["贵F12345", "贵A88888", "川B12345", "贵FD12345", "贵C0000A"];

#[derive(Debug, Clone)]
struct Step {
    plate: usize,
    dt_ms: i64,
    stake: f64,
    up: bool,
    where_: u8,
    color: usize,
    class: usize,
    tick: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..PLATES.len(),
        prop_oneof![-60_000i64..0, 0i64..2 * HOUR, 0i64..3 * DAY],
        -5_000.0f64..105_000.0,
        any::<bool>(),
        0u8..4,
        0..PlateColor::ALL.len(),
        0..VehicleClass::ALL.len(),
        any::<bool>(),
    )
        .prop_map(
            |(plate, dt_ms, stake, up, where_, color, class, tick)| Step {
                plate,
                dt_ms,
                stake,
                up,
                where_,
                color,
                class,
                tick,
            },
        )
}

fn run(
    roads: &RoadNetwork,
    start: EventTime,
    steps: &[Step],
    max_plates: usize,
) -> Vec<AlertDraft> {
    let mut s = settings();
    s.max_tracked_plates = max_plates;
    // A low threshold so that pattern alerts happen in short random runs too.
    s.score_threshold = 0.05;
    let mut det = RideHailingDetector::new(s, output(Locale::ZhCn));
    det.set_lists(list("贵F12345\n川B12345\n"), list("贵C0000A\n"));
    let mut out = Vec::new();
    let mut t = start;
    for st in steps {
        t = (t + st.dt_ms).clamp(
            EventTime::from_ms(0),
            EventTime::from_ms(253_402_300_799_999),
        );
        let mut r = read_at(PLATES[st.plate], t, st.stake, st.up);
        r.plate_color = PlateColor::ALL[st.color];
        r.vehicle_class = VehicleClass::ALL[st.class];
        match st.where_ {
            0 => {
                r.lat = SA_LAT;
            }
            1 => {
                r.lon = 104.0;
            }
            _ => {}
        }
        if st.tick {
            det.on_time(t);
        }
        det.on_plate_read(&r, roads, &mut out);
        assert!(det.tracked_plates() <= max_plates);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_reads_never_panic_and_replay_identically(
        steps in proptest::collection::vec(step(), 0..120),
        start in prop_oneof![Just(T0), (0i64..253_402_300_799_999).prop_map(EventTime::from_ms)],
        max_plates in 1usize..6,
    ) {
        let roads = network();
        let first = run(&roads, start, &steps, max_plates);
        let second = run(&roads, start, &steps, max_plates);
        prop_assert_eq!(first, second);
    }
}

/// Hostile input (issue #19): one plate read a million times in a minute (a stuck or
/// spoofed reader) costs one plate's state, which does not grow, and one watchlist
/// alert per cooldown.
#[test]
fn a_million_reads_of_one_plate_in_a_minute_stay_one_plates_state() {
    let mut det = detector();
    det.set_lists(list("贵F12345\n"), PlateList::empty());
    let mut sim = Sim::new(det);
    let t0 = EventTime::from_ms(1_764_288_000_000);
    let mut first = read_at("贵F12345", t0, 50_000.0, true);
    sim.read(&first);
    let bytes_after_one = sim.det.approx_state_bytes();
    for i in 1..1_000_000i64 {
        // 60,000 ms for a million reads: up to 17 reads in the same millisecond.
        first.ts = t0 + i * 60_000 / 1_000_000;
        sim.det.on_plate_read(&first, &sim.roads, &mut sim.out);
    }
    assert_eq!(sim.det.tracked_plates(), 1);
    assert_eq!(
        sim.det.approx_state_bytes(),
        bytes_after_one,
        "state grew with reads"
    );
    let watchlist = sim.out.iter().filter(|a| a.subtype == "watchlist").count();
    assert_eq!(watchlist, 1, "one alert per cooldown");
    assert!(sim.out.len() <= 2, "{} alerts", sim.out.len());
}

/// A flood of new plates (spoofed reads, or a misreading gantry): the map stays within
/// `max_tracked_plates`, the least recently seen go first, and each eviction is counted.
#[test]
fn a_flood_of_new_plates_is_bounded_and_counted() {
    let mut s = settings();
    s.max_tracked_plates = 1_000;
    let mut sim = Sim::new(RideHailingDetector::new(s, output(Locale::ZhCn)));
    let t0 = EventTime::from_ms(1_764_288_000_000);
    let mut peak_bytes = 0;
    for i in 0..200_000i64 {
        let plate = format!("贵{}{:05}", ["A", "B", "C", "D"][(i % 4) as usize], i / 4);
        let r = read_at(&plate, t0 + i * 10, 50_000.0, true);
        sim.det.on_plate_read(&r, &sim.roads, &mut sim.out);
        assert!(sim.det.tracked_plates() <= 1_000);
        if i % 10_000 == 0 {
            peak_bytes = peak_bytes.max(sim.det.approx_state_bytes());
        }
    }
    assert_eq!(
        sim.det.evicted_plates(),
        200_000 - sim.det.tracked_plates() as u64
    );
    // The newest plate is still tracked; the first one was evicted long ago.
    let newest = format!("贵D{:05}", 199_999 / 4);
    let r = read_at(&newest, t0 + 2_000_000, 50_000.0, true);
    let before = sim.det.evicted_plates();
    sim.det.on_plate_read(&r, &sim.roads, &mut sim.out);
    assert_eq!(
        sim.det.evicted_plates(),
        before,
        "a tracked plate evicts nothing"
    );
    // Bounded memory: state for 1,000 plates, not 200,000 (under 1 KB each, map table
    // included; docs/DETECTION.md has the measured figure).
    assert!(peak_bytes < 1_000 * 1_024, "{peak_bytes} bytes");
}
