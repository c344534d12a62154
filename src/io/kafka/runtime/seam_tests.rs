//! The runtime itself on the in-memory broker (broker/memory.rs): a consumer group with
//! rebalances, transactions, faults injected, and time on the test's clock. Each test
//! compares what a `read_committed` reader of `alerts` finds with what `replay` makes
//! of the same records, as the real-broker tests in tests/kafka_runtime.rs do, in a
//! fraction of a second.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;
use crate::config::defaults;
use crate::core::roads::LoadOptions;
use crate::io::kafka::broker::memory::{MemoryBroker, Op};
use crate::io::kafka::broker::BrokerError;

const CAMERA_PARTITIONS: i32 = 4;
const CAMERAS: usize = 8;

fn network() -> Arc<RoadNetwork> {
    let doc = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
        "geometry":{"type":"LineString","coordinates":[[105.0,27.0],[105.5,27.0]]},
        "properties":{"kind":"carriageway","road_id":"G76","name":"test","direction":"up",
        "stake_start_m":1000000,"stake_end_m":1049600,"width_m":15}}]}"#;
    Arc::new(RoadNetwork::from_geojson(doc.as_bytes(), &LoadOptions::default()).unwrap())
}

fn settings(guarantee: Guarantee) -> Settings {
    let mut s = defaults();
    s.processing.guarantee = guarantee;
    s
}

/// A broker with the input topics created (the camera topic with four partitions).
fn broker(settings: &Settings) -> MemoryBroker {
    let broker = MemoryBroker::new();
    for stream in Stream::ALL {
        let partitions = if stream == Stream::Camera {
            CAMERA_PARTITIONS
        } else {
            1
        };
        broker.create_topic(settings.kafka.topics.input(stream), partitions);
    }
    broker
}

/// A `roadwatch run` instance on `broker`, with the default transactional id.
fn instance(broker: &MemoryBroker, settings: &Settings) -> Runtime {
    let transactional = settings.processing.guarantee == Guarantee::ExactlyOnce;
    instance_with(broker, settings, broker.producer(transactional))
}

fn instance_with(
    broker: &MemoryBroker,
    settings: &Settings,
    mut producer: crate::io::kafka::broker::memory::MemoryProducer,
) -> Runtime {
    let clock: Arc<dyn Clock> = broker.clock.clone();
    let transactional = settings.processing.guarantee == Guarantee::ExactlyOnce;
    if transactional {
        producer
            .init_transactions(INIT_TRANSACTIONS_TIMEOUT)
            .unwrap();
    }
    let metrics = Arc::new(Metrics::new());
    let sink = sink::new(
        settings.processing.guarantee,
        Box::new(producer),
        StreamTopics::new(&settings.kafka),
        metrics.clone(),
        clock.clone(),
        Duration::from_millis(settings.processing.commit_interval_ms),
    );
    let reader_broker = broker.clone();
    let parts = Parts {
        clock,
        sink,
        group: Box::new(broker.group_member()),
        side: Box::new(broker.reader()),
        ends: Box::new(broker.reader()),
        rebuild_reader: Box::new(move || Ok(Box::new(reader_broker.reader()))),
        camera_partitions: CAMERA_PARTITIONS,
        liveness: Liveness::new(Duration::from_secs(60)),
    };
    Runtime::new(
        settings.clone(),
        network(),
        metrics,
        Arc::new(Readiness::default()),
        Shutdown::new(),
        parts,
    )
    .unwrap()
}

/// The input so far, for the replay oracle.
#[derive(Default)]
struct Input {
    records: Vec<(Stream, i64, Vec<u8>)>,
}

impl Input {
    /// One pedestrian event of every camera, each on its camera's partition, each
    /// round at other places (1.2 km apart) so that every record raises an alert of its
    /// own: a lost record is a missing alert.
    fn pedestrians(&mut self, broker: &MemoryBroker, settings: &Settings, round: u32) {
        for c in 0..CAMERAS {
            let ts = broker.clock.wall_ms() - 60_000 + c as i64;
            let camera = format!("cam-{c:02}");
            let json = serde_json::json!({
                "event_id": format!("{camera}-{round:04}"), "camera_id": camera, "ts": ts,
                "detections": [{"class": "pedestrian", "confidence": 0.9,
                                "lon": 105.005 + (round as usize * CAMERAS + c) as f64 * 0.012, "lat": 27.0, "track_id": "1"}]
            });
            let bytes = json.to_string().into_bytes();
            broker.append(
                settings.kafka.topics.input(Stream::Camera),
                c as i32 % CAMERA_PARTITIONS,
                ts,
                &bytes,
            );
            self.records.push((Stream::Camera, ts, bytes));
        }
    }

    /// `bytes` appended to `partition` of `stream`'s topic at the wall clock's Kafka
    /// time, and kept for the oracle under event time `ts`.
    fn append(
        &mut self,
        broker: &MemoryBroker,
        settings: &Settings,
        stream: Stream,
        partition: i32,
        ts: i64,
        bytes: Vec<u8>,
    ) {
        let topic = settings.kafka.topics.input(stream);
        broker.append(topic, partition, broker.clock.wall_ms(), &bytes);
        self.records.push((stream, ts, bytes));
    }

    /// Pedestrian incidents of past event time on `partition` (tests/kafka_runtime.rs's
    /// `backlog`): incident `j` is seen three times, 5 s apart, at `start + j × 30 s`,
    /// at the `j`-th of `places`.
    fn backlog(
        &mut self,
        broker: &MemoryBroker,
        settings: &Settings,
        partition: i32,
        places: std::ops::Range<usize>,
        start: i64,
    ) {
        for (j, place) in places.enumerate() {
            let camera = format!("cam-{place:03}");
            for k in 0..3 {
                let ts = start + j as i64 * 30_000 + k * 5_000;
                let bytes = pedestrian(&camera, k as u32, place_lon(place), ts);
                self.append(broker, settings, Stream::Camera, partition, ts, bytes);
            }
        }
    }

    /// What `replay` produces on `alerts` for the same records in event-time order:
    /// (alert id, status) with how often.
    fn replayed(&self, settings: &Settings) -> BTreeMap<(String, String), usize> {
        let engine = Engine::new(settings.engine.clone(), network());
        let mut pipeline = Pipeline::new(settings, engine, None);
        let mut sorted: Vec<_> = self.records.iter().collect();
        sorted.sort_by_key(|(_, ts, _)| *ts);
        let mut out = Vec::new();
        for (stream, ts, bytes) in sorted {
            pipeline.process(
                *stream,
                bytes,
                DlqSource::default(),
                Some(*ts),
                *ts,
                &mut out,
            );
        }
        let alerts = settings.kafka.topics.alerts.clone();
        ids(out
            .iter()
            .filter(|p| p.topic == alerts)
            .map(|p| p.payload.clone()))
    }
}

/// A camera record of one pedestrian on the carriageway.
fn pedestrian(camera: &str, seq: u32, lon: f64, ts: i64) -> Vec<u8> {
    serde_json::json!({
        "event_id": format!("{camera}-{seq:04}"), "camera_id": camera, "ts": ts,
        "detections": [{"class": "pedestrian", "confidence": 0.9,
                        "lon": lon, "lat": 27.0, "track_id": "1"}]
    })
    .to_string()
    .into_bytes()
}

/// Places 800 m apart along the test road: one incident each.
fn place_lon(place: usize) -> f64 {
    105.005 + place as f64 * 0.008
}

fn ids(payloads: impl Iterator<Item = Vec<u8>>) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for p in payloads {
        let v: Value = serde_json::from_slice(&p).unwrap();
        let mut status = v["status"].as_str().unwrap_or_default().to_owned();
        if v["observed"] == false {
            // The update that says the pedestrian left the cameras' view: due when the
            // clock passes `clear_after_s` without a sighting.
            status.push_str(" unobserved");
        }
        let key = (
            v["alert_id"].as_str().unwrap_or_default().to_owned(),
            status,
        );
        *m.entry(key).or_default() += 1;
    }
    m
}

fn visible(broker: &MemoryBroker, settings: &Settings) -> BTreeMap<(String, String), usize> {
    ids(broker
        .read_committed(&settings.kafka.topics.alerts)
        .into_iter())
}

/// Turns of every instance in `rts`, in step, for `d` of the test's clock.
fn run_for(broker: &MemoryBroker, rts: &mut [&mut Runtime], d: Duration) {
    let until = broker.clock.now() + d;
    let mut turns = 0;
    while broker.clock.now() < until {
        for rt in rts.iter_mut() {
            rt.turn().unwrap();
        }
        turns += 1;
        assert!(turns < 1_000_000, "the clock does not move");
    }
}

/// Rounds of input, two seconds apart, through the instances `rts`.
fn play(
    broker: &MemoryBroker,
    s: &Settings,
    input: &mut Input,
    rts: &mut [&mut Runtime],
    rounds: std::ops::Range<u32>,
) {
    for round in rounds {
        input.pedestrians(broker, s, round);
        run_for(broker, rts, Duration::from_secs(2));
    }
}

/// Turns until the last round's alerts are produced into the open transaction, not
/// yet committed.
fn until_alerts_wait_uncommitted(rt: &mut Runtime) {
    let mut turns = 0;
    while rt.sink.in_flight() == 0 {
        rt.turn().unwrap();
        turns += 1;
        assert!(turns < 10_000, "the round is never applied");
    }
}

/// How many camera partitions the instance holds.
fn camera_partitions(rt: &Runtime) -> usize {
    rt.sink
        .positions()
        .keys()
        .filter(|(stream, _)| *stream == Stream::Camera)
        .count()
}

#[test]
fn live_on_the_seam_equals_replay() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut input = Input::default();
    let mut rt = instance(&broker, &s);
    play(&broker, &s, &mut input, &mut [&mut rt], 0..5);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(10));
    let expected = input.replayed(&s);
    assert!(!expected.is_empty(), "the input raises alerts");
    assert_eq!(expected.len(), 5 * CAMERAS, "{expected:?}");
    assert_eq!(visible(&broker, &s), expected);
    rt.close(true).unwrap();
}

/// Five rounds of input, two seconds apart, with `fault` injected before the third;
/// then long enough for every alert to be committed.
fn five_rounds(
    broker: &MemoryBroker,
    s: &Settings,
    rts: &mut [&mut Runtime],
    fault: impl FnOnce(),
) -> Input {
    let mut input = Input::default();
    let mut fault = Some(fault);
    for round in 0..5 {
        if round == 2 {
            (fault.take().expect("once"))();
        }
        input.pedestrians(broker, s, round);
        run_for(broker, rts, Duration::from_secs(2));
    }
    run_for(broker, rts, Duration::from_secs(30));
    input
}

#[test]
fn an_aborted_transaction_is_rewound_and_its_output_appears_exactly_once() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    let input = five_rounds(&broker, &s, &mut [&mut rt], || {
        broker.fail_next(
            Op::Commit,
            BrokerError::abortable("Broker: Coordinator not available"),
        );
    });
    assert_eq!(visible(&broker, &s), input.replayed(&s));
    assert!(rt.metrics.state_rebuilds.get() >= 2, "a rewind rebuilds");
}

#[test]
fn a_broker_gone_for_twenty_seconds_mid_stream_loses_nothing_and_repeats_nothing() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    let input = five_rounds(&broker, &s, &mut [&mut rt], || {
        broker.go_away(Duration::from_secs(20));
    });
    assert_eq!(visible(&broker, &s), input.replayed(&s));
}

/// A first instance alone for two rounds, then a second one joining (each has a
/// transactional id of its own, kafka.instance_id), both through three more rounds:
/// what a read_committed reader finds must equal replay. With `mid_transaction` the
/// second joins while the first holds the third round's alerts uncommitted: the
/// partitions it gives up must have their output committed first, or the newcomer,
/// starting from the older committed offsets, would produce them a second time.
fn a_second_instance_joins(mid_transaction: bool) -> (Runtime, Runtime) {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut first = instance(&broker, &s);
    let mut input = Input::default();
    play(&broker, &s, &mut input, &mut [&mut first], 0..2);
    let mut next = 2;
    if mid_transaction {
        input.pedestrians(&broker, &s, 2);
        until_alerts_wait_uncommitted(&mut first);
        next = 3;
    }
    let mut second = instance_with(&broker, &s, broker.producer_with_id("second"));
    let both = &mut [&mut first, &mut second];
    play(&broker, &s, &mut input, both, next..5);
    run_for(&broker, both, Duration::from_secs(30));
    assert_eq!(visible(&broker, &s), input.replayed(&s));
    (first, second)
}

#[test]
fn a_second_instance_joining_mid_stream_takes_over_partitions_without_loss_or_repeat() {
    let (first, second) = a_second_instance_joins(false);
    // The rebalance gave the newcomer half of the camera partitions.
    assert_eq!(
        (camera_partitions(&first), camera_partitions(&second)),
        (2, 2)
    );
}

#[test]
fn a_kill_between_produce_and_commit_then_a_restart_gives_every_alert_once() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut input = Input::default();
    let mut first = instance(&broker, &s);
    play(&broker, &s, &mut input, &mut [&mut first], 0..3);
    input.pedestrians(&broker, &s, 3);
    let before = broker.read_committed(&s.kafka.topics.alerts).len();
    until_alerts_wait_uncommitted(&mut first);
    assert_eq!(broker.read_committed(&s.kafka.topics.alerts).len(), before);
    // kill -9: no commit, no leave; the session times out.
    drop(first);
    broker.expire_members();

    let mut second = instance(&broker, &s);
    input.pedestrians(&broker, &s, 4);
    run_for(&broker, &mut [&mut second], Duration::from_secs(30));
    assert_eq!(visible(&broker, &s), input.replayed(&s));
}

#[test]
fn at_least_once_failed_deliveries_are_produced_again() {
    let s = settings(Guarantee::AtLeastOnce);
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    let input = five_rounds(&broker, &s, &mut [&mut rt], || broker.fail_deliveries(3));
    let expected = input.replayed(&s);
    let seen = visible(&broker, &s);
    // Every alert at least once: the failed ones again after the rewind, and perhaps
    // others of their batch with them.
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
}

#[test]
fn another_process_with_the_same_transactional_id_stops_this_one() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    let mut input = Input::default();
    input.pedestrians(&broker, &s, 0);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(2));
    // The other process starts (fences us), and each time we take the id back with a
    // new producer it does the same (its own first fencing replaces its producer).
    broker.fence();
    let mut others = broker.fence_epoch();
    input.pedestrians(&broker, &s, 1);
    let mut turns = 0;
    let mut taken_back = 0;
    let e = loop {
        if let Err(e) = rt.turn() {
            break format!("{e:#}");
        }
        if broker.fence_epoch() > others {
            // Our replacement producer fenced the other: it answers in kind.
            taken_back += 1;
            broker.fence();
            others = broker.fence_epoch();
        }
        broker.clock.advance(Duration::from_millis(10));
        turns += 1;
        assert!(turns < 100_000, "a fenced producer went on");
    };
    assert!(e.contains("kafka.instance_id"), "{e}");
    assert_eq!(
        taken_back, 1,
        "one replacement after the first fencing, then the exit"
    );
}

#[test]
fn a_lost_assignment_aborts_the_open_transaction_rejoins_and_loses_nothing() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut input = Input::default();
    let mut rt = instance(&broker, &s);
    play(&broker, &s, &mut input, &mut [&mut rt], 0..2);
    input.pedestrians(&broker, &s, 2);
    until_alerts_wait_uncommitted(&mut rt);
    let rebuilds = rt.metrics.state_rebuilds.get();
    // The process stalled past session.timeout.ms: the group dropped it while its
    // transaction was open; it is alive and polls again.
    broker.expire_members();
    play(&broker, &s, &mut input, &mut [&mut rt], 3..5);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(30));
    assert_eq!(visible(&broker, &s), input.replayed(&s));
    assert!(
        rt.metrics.state_rebuilds.get() > rebuilds,
        "the rejoined member rebuilds"
    );
    assert_eq!(
        camera_partitions(&rt),
        CAMERA_PARTITIONS as usize,
        "it holds every partition again"
    );
}

#[test]
fn a_rebalance_while_alerts_wait_in_the_transaction_commits_them_before_the_partitions_move() {
    a_second_instance_joins(true);
}

/// Every `(alert id, status)` the oracle finds appears as often; beyond them only the
/// updates that a pedestrian left the cameras' view. For streams whose clock follows
/// the wall clock after the last record (idle advance), which `replay` does not do.
fn assert_each_once(
    seen: &BTreeMap<(String, String), usize>,
    expected: &BTreeMap<(String, String), usize>,
) {
    assert!(!expected.is_empty(), "the input raises alerts");
    for (key, n) in expected {
        assert_eq!(seen.get(key), Some(n), "{key:?} in {seen:?}");
    }
    for key in seen.keys().filter(|k| !expected.contains_key(*k)) {
        assert!(key.1.ends_with(" unobserved"), "{key:?} in {seen:?}");
    }
}

/// For input of past event time (twenty minutes ago, `begin`): no idle advance (it
/// would clear the incidents before replay would), and lanes of 16 records, so that the
/// merge pauses partitions that run ahead.
fn a_past_backlog() -> (Settings, MemoryBroker, Input, i64) {
    let mut s = settings(Guarantee::ExactlyOnce);
    s.processing.idle_advance_after_ms = None;
    s.processing.merge_lane_records = 16;
    let broker = broker(&s);
    let begin = broker.clock.wall_ms() - 20 * 60_000;
    (s, broker, Input::default(), begin)
}

/// tests/kafka_runtime.rs's backlog test on the seam: two partitions whose event times
/// overlap over ten minutes, the second appended after the first. Applied partition by
/// partition, the second's records would fall more than `time.allowed_lateness_s`
/// behind the first's and be dropped as late; the merge applies them in event-time
/// order. Lanes of 16 records make it pause the partition that runs ahead. A restart
/// rebuilds the state in that order too: incident 36 (partition 1, last seen at
/// begin + 505 s) seen again at begin + 600 s is the same incident, not a new one.
#[test]
fn a_backlog_over_two_partitions_is_applied_in_event_time_order_with_nothing_late() {
    let (s, broker, mut input, begin) = a_past_backlog();
    input.backlog(&broker, &s, 0, 0..20, begin);
    input.backlog(&broker, &s, 1, 20..40, begin + 15_000);
    let mut rt = instance(&broker, &s);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(30));
    assert_eq!(visible(&broker, &s), input.replayed(&s));
    assert_eq!(rt.metrics.late_records.get(), 0, "records dropped as late");
    rt.close(true).unwrap();

    let mut rt = instance(&broker, &s);
    let again = begin + 600_000;
    let bytes = pedestrian("cam-036", 3, place_lon(36), again);
    input.append(&broker, &s, Stream::Camera, 1, again, bytes);
    let later = begin + 13 * 60_000;
    input.backlog(&broker, &s, 0, 40..41, later);
    input.backlog(&broker, &s, 1, 41..42, later + 1_000);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(30));
    assert_eq!(visible(&broker, &s), input.replayed(&s));
    assert_eq!(rt.metrics.late_records.get(), 0, "records dropped as late");
    assert!(rt.metrics.state_rebuilds.get() >= 1, "the restart rebuilds");
}

/// An instance started on empty topics idles through several idle-advance periods;
/// then a backlog of half an hour ago arrives. With no record seen yet there is no
/// clock to move, so the backlog is not late.
#[test]
fn a_first_input_of_past_event_time_after_an_idle_start_is_not_late() {
    let s = settings(Guarantee::ExactlyOnce);
    assert!(s.processing.idle_advance_after_ms.is_some(), "the default");
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(20));
    let mut input = Input::default();
    input.backlog(&broker, &s, 0, 0..6, broker.clock.wall_ms() - 30 * 60_000);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(30));
    let expected = input.replayed(&s);
    let raised: BTreeSet<&str> = expected.keys().map(|(id, _)| id.as_str()).collect();
    assert_eq!(raised.len(), 6, "one alert per incident: {expected:?}");
    assert_each_once(&visible(&broker, &s), &expected);
    assert_eq!(rt.metrics.late_records.get(), 0, "records dropped as late");
}

/// With every partition read to its end and nothing arriving, event time follows the
/// wall clock (acks time out, incidents clear on a quiet night), but not while the
/// broker is away: its cached ends are stale then, and input produced meanwhile (the
/// cameras' producers buffer it) would arrive behind a clock that had moved on, late.
#[test]
fn on_a_quiet_stream_event_time_follows_the_wall_clock_but_not_while_the_broker_is_away() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    let mut input = Input::default();
    play(&broker, &s, &mut input, &mut [&mut rt], 0..1);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(10));
    let clock = |rt: &Runtime| rt.pipeline.engine().clock().expect("records seen").ms();
    let wall = broker.clock.wall_ms();
    assert!(
        clock(&rt) >= wall - 1_000,
        "event time {} stayed behind the wall clock {wall}",
        clock(&rt)
    );

    broker.go_away(Duration::from_secs(60));
    let outage = broker.clock.wall_ms();
    for c in 0..CAMERAS {
        let ts = outage + c as i64;
        let bytes = pedestrian(&format!("cam-{c:02}"), 100, place_lon(40 + c), ts);
        input.append(
            &broker,
            &s,
            Stream::Camera,
            c as i32 % CAMERA_PARTITIONS,
            ts,
            bytes,
        );
    }
    run_for(&broker, &mut [&mut rt], Duration::from_secs(50));
    assert!(
        clock(&rt) < outage + 30_000,
        "event time followed the wall clock through the outage"
    );
    run_for(&broker, &mut [&mut rt], Duration::from_secs(60));
    assert_eq!(rt.metrics.late_records.get(), 0, "records dropped as late");
    assert_each_once(&visible(&broker, &s), &input.replayed(&s));
}

/// tests/kafka_runtime.rs's dead-letter test on the seam: each bad record reaches the
/// dead-letter topic once with its reason and where it came from, and the good record
/// after them raises its alert.
#[test]
fn bad_records_go_to_the_dlq_with_their_reason_and_the_stream_goes_on() {
    let s = settings(Guarantee::AtLeastOnce);
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(1));
    let now = broker.clock.wall_ms();
    let off_the_map = String::from_utf8(pedestrian("cam-X", 1, place_lon(1), now))
        .unwrap()
        .replace("27.0", "95.2");
    let bad: [(&str, Vec<u8>); 3] = [
        ("invalid_json", b"{not json".to_vec()),
        ("lat_out_of_range", off_the_map.into_bytes()),
        (
            "future_timestamp",
            pedestrian("cam-X", 2, place_lon(2), now + 3_600_000),
        ),
    ];
    let camera = s.kafka.topics.input(Stream::Camera).to_owned();
    for (_, bytes) in &bad {
        broker.append(&camera, 0, now, bytes);
    }
    let mut input = Input::default();
    let good = pedestrian("cam-G", 1, place_lon(3), now - 1_000);
    input.append(&broker, &s, Stream::Camera, 0, now - 1_000, good);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(10));

    let dlq: Vec<Value> = broker
        .read_committed(&s.kafka.topics.dlq)
        .iter()
        .map(|p| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(dlq.len(), bad.len(), "each bad record once: {dlq:?}");
    for (offset, (reason, bytes)) in bad.iter().enumerate() {
        let rec = &dlq[offset];
        assert_eq!(rec["reason"], *reason, "{rec}");
        assert_eq!(rec["source_topic"], camera.as_str());
        assert_eq!(rec["partition"], 0);
        assert_eq!(rec["offset"], offset as i64);
        assert_eq!(rec["value"], std::str::from_utf8(bytes).unwrap());
    }
    assert_eq!(visible(&broker, &s), input.replayed(&s));
    let metrics = rt.metrics.render();
    assert!(
        metrics.contains("roadwatch_dlq_total{reason=\"invalid_json\"} 1"),
        "{metrics}"
    );
}

/// Every instance reads the global streams; a bad record there is dead-lettered once,
/// by the instance that holds the matching camera partition, not once per instance.
#[test]
fn a_bad_record_on_a_global_stream_is_dead_lettered_once_by_two_instances() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut first = instance(&broker, &s);
    let mut second = instance_with(&broker, &s, broker.producer_with_id("second"));
    let both = &mut [&mut first, &mut second];
    run_for(&broker, both, Duration::from_secs(5));
    assert_eq!(
        (camera_partitions(both[0]), camera_partitions(both[1])),
        (2, 2)
    );
    let ack = s.kafka.topics.input(Stream::Ack).to_owned();
    broker.append(&ack, 0, broker.clock.wall_ms(), &[0xff, 0xfe, 0x00]);
    run_for(&broker, both, Duration::from_secs(10));
    let dlq: Vec<Value> = broker
        .read_committed(&s.kafka.topics.dlq)
        .iter()
        .map(|p| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0]["reason"], "invalid_json");
    assert_eq!(dlq[0]["source_topic"], ack.as_str());
    assert!(dlq[0]["value_base64"].is_string(), "{}", dlq[0]);
}

/// A partition whose fetches return nothing (its leader gone): its consumer's cached
/// end goes stale, so it looks read to its end and does not hold the other partitions
/// back; when it delivers again nothing of it is lost.
#[test]
fn a_partition_gone_silent_does_not_hold_the_others_back_and_loses_nothing() {
    let mut s = settings(Guarantee::ExactlyOnce);
    // With no input meanwhile, the idle advance would move event time past the records
    // of the input's minute-old event time; this test is about the merge alone.
    s.processing.idle_advance_after_ms = None;
    let broker = broker(&s);
    let mut rt = instance(&broker, &s);
    let mut input = Input::default();
    play(&broker, &s, &mut input, &mut [&mut rt], 0..1);
    let camera = s.kafka.topics.input(Stream::Camera).to_owned();
    broker.silence(&camera, 1, true);
    play(&broker, &s, &mut input, &mut [&mut rt], 1..2);
    run_for(
        &broker,
        &mut [&mut rt],
        Duration::from_millis(s.processing.merge_wait_ms) + Duration::from_secs(5),
    );
    // The round's records of the other three partitions are applied and committed.
    let others = CAMERAS - CAMERAS / CAMERA_PARTITIONS as usize;
    let alerts: BTreeSet<String> = visible(&broker, &s).into_keys().map(|(id, _)| id).collect();
    assert!(
        alerts.len() >= CAMERAS + others,
        "the silent partition held the others back: {alerts:?}"
    );
    broker.silence(&camera, 1, false);
    play(&broker, &s, &mut input, &mut [&mut rt], 2..4);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(30));
    assert_eq!(visible(&broker, &s), input.replayed(&s));
    assert_eq!(rt.metrics.late_records.get(), 0, "records dropped as late");
}

/// tests/kafka_runtime.rs's acks test on the seam: two instances, a unit at each of
/// eight incidents; every instance reads the acks, and each ack reaches the instance
/// that raised its alert, whichever holds it: no dispatch times out, each accept is
/// heard once. The patrol apps accept their first dispatch and decline any other while
/// on one (two instances may pick the same unit for two incidents at once).
#[test]
fn acks_reach_the_instance_that_raised_the_alert_whichever_instance_reads_them() {
    let mut s = settings(Guarantee::ExactlyOnce);
    s.engine.dispatch.ack_timeout_ms = 3_000;
    // Time-outs fall due while the test waits.
    s.processing.idle_advance_after_ms = Some(1_000);
    let broker = broker(&s);
    let mut first = instance(&broker, &s);
    let mut second = instance_with(&broker, &s, broker.producer_with_id("second"));
    let both = &mut [&mut first, &mut second];
    run_for(&broker, both, Duration::from_secs(5));
    let topic = |stream| s.kafka.topics.input(stream).to_owned();
    const PLACES: usize = 8;
    for i in 0..PLACES {
        let unit = format!("U-{i}");
        let v = serde_json::json!({"unit_id": unit, "ts": broker.clock.wall_ms(),
            "lon": place_lon(i), "lat": 27.0, "status": "available", "speed_kmh": 60.0});
        broker.append(
            &topic(Stream::Patrol),
            0,
            broker.clock.wall_ms(),
            v.to_string().as_bytes(),
        );
    }
    run_for(&broker, both, Duration::from_secs(2));
    for i in 0..PLACES {
        let ts = broker.clock.wall_ms();
        let bytes = pedestrian(&format!("cam-{i:02}"), 0, place_lon(i), ts);
        broker.append(&topic(Stream::Camera), (i % 4) as i32, ts, &bytes);
    }

    let mut apps = roadwatch_sim::OneJobAtATime::default();
    let mut quiet = Duration::ZERO;
    let mut waited = Duration::ZERO;
    // Quiet for longer than the ack time-out: an alert whose ack went unheard would
    // have been dispatched again by then, and answered again.
    while quiet < Duration::from_secs(8) {
        assert!(waited < Duration::from_secs(90), "dispatches never settled");
        run_for(&broker, both, Duration::from_millis(500));
        waited += Duration::from_millis(500);
        quiet += Duration::from_millis(500);
        for p in broker.read_committed(&s.kafka.topics.alerts) {
            let v: Value = serde_json::from_slice(&p).unwrap();
            let (Some(alert_id), Some(unit), Some(attempt)) = (
                v["alert_id"].as_str(),
                v["dispatch"]["unit_id"].as_str(),
                v["dispatch"]["attempt"].as_i64(),
            ) else {
                continue;
            };
            let Some(status) = apps.answer(alert_id, unit, attempt) else {
                continue;
            };
            quiet = Duration::ZERO;
            let ack = serde_json::json!({"alert_id": alert_id, "unit_id": unit,
                "ts": broker.clock.wall_ms(), "status": status});
            broker.append(
                &topic(Stream::Ack),
                0,
                broker.clock.wall_ms(),
                ack.to_string().as_bytes(),
            );
        }
    }
    let count = |outcome: &str| {
        both.iter()
            .map(|rt| rt.metrics.dispatch.with_label_values(&[outcome]).get())
            .sum::<u64>()
    };
    assert_eq!(
        count("ack_timeout"),
        0,
        "an ack did not reach the alert's owner"
    );
    assert_eq!(
        count("ack_accepted"),
        apps.accepted(),
        "each accept heard once"
    );
    assert_eq!(
        apps.accepted(),
        PLACES as u64,
        "every incident has a unit on its way"
    );
    assert_eq!(
        count("booked_elsewhere"),
        apps.accepted(),
        "each accepting unit booked by the other instance too"
    );
    let assigned = |rt: &Runtime| rt.metrics.dispatch.with_label_values(&["assigned"]).get();
    assert!(
        assigned(both[0]) > 0 && assigned(both[1]) > 0,
        "both instances raised alerts: {} and {}",
        assigned(both[0]),
        assigned(both[1])
    );
}

/// The merge pauses a partition whose lane is full and resumes it once the lane has
/// drained; a resume lost inside librdkafka (confluentinc/librdkafka#5591) would leave
/// it paused for good. A partition behind its end that delivers nothing is resumed
/// again. Two partitions of 3,000 records each (more than one poll batch takes), each
/// ending with a pedestrian: a partition left paused never raises its alert.
#[test]
fn a_lost_resume_does_not_leave_a_partition_paused() {
    let (s, broker, mut input, begin) = a_past_backlog();
    for partition in 0..2 {
        let camera = format!("cam-v{partition}");
        for seq in 0..3_000 {
            let ts = begin + seq as i64 * 100 + partition as i64 * 50;
            let bytes = serde_json::json!({"event_id": format!("{camera}-{seq}"),
                "camera_id": camera, "ts": ts, "detections": [{"class": "vehicle",
                "confidence": 0.9, "lon": place_lon(partition), "lat": 27.0}]});
            let bytes = bytes.to_string().into_bytes();
            input.append(&broker, &s, Stream::Camera, partition as i32, ts, bytes);
        }
        let ts = begin + 300_000 + partition as i64;
        let bytes = pedestrian(&camera, 0, place_lon(10 + partition), ts);
        input.append(&broker, &s, Stream::Camera, partition as i32, ts, bytes);
    }
    broker.lose_resumes(1);
    let mut rt = instance(&broker, &s);
    run_for(&broker, &mut [&mut rt], Duration::from_secs(30));
    let expected = input.replayed(&s);
    assert_eq!(expected.len(), 2, "{expected:?}");
    assert_eq!(visible(&broker, &s), expected);
    assert_eq!(rt.metrics.late_records.get(), 0, "records dropped as late");
}
