//! The runtime itself on the in-memory broker (broker/memory.rs): a consumer group with
//! rebalances, transactions, faults injected, and time on the test's clock. Each test
//! compares what a `read_committed` reader of `alerts` finds with what `replay` makes
//! of the same records, as the real-broker tests in tests/kafka_runtime.rs do, in a
//! fraction of a second.
use std::collections::BTreeMap;

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
        rebuild_reader: Box::new(move || Ok(Box::new(reader_broker.reader()))),
        camera_partitions: CAMERA_PARTITIONS,
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

fn ids(payloads: impl Iterator<Item = Vec<u8>>) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for p in payloads {
        let v: Value = serde_json::from_slice(&p).unwrap();
        let key = (
            v["alert_id"].as_str().unwrap_or_default().to_owned(),
            v["status"].as_str().unwrap_or_default().to_owned(),
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
    broker.fence();
    input.pedestrians(&broker, &s, 1);
    let mut turns = 0;
    let e = loop {
        if let Err(e) = rt.turn() {
            break format!("{e:#}");
        }
        turns += 1;
        assert!(turns < 100_000, "a fenced producer went on");
    };
    assert!(e.contains("kafka.instance_id"), "{e}");
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
