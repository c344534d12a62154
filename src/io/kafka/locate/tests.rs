//! The locate stage on the in-memory broker (broker/memory.rs): every input record's
//! sightings reach the partition of their key exactly once under exactly-once, across
//! an abort and a second member joining; none is lost under at-least-once; bad records
//! go to the dead-letter topic.
use std::collections::BTreeMap;

use super::*;
use crate::config::{defaults, Guarantee};
use crate::core::keys;
use crate::core::model::Stream;
use crate::core::pseudonym::PseudonymKey;
use crate::core::roads::LoadOptions;
use crate::io::kafka::broker::memory::{MemoryBroker, Op};
use crate::io::kafka::broker::{BrokerError, Producer as _};
use crate::io::kafka::repartition::record::{self, Repartitioned};
use crate::io::kafka::sink;

const INPUT_PARTITIONS: i32 = 4;
const PARTITIONS: i32 = 6;

fn network() -> Arc<RoadNetwork> {
    // Two roads 2 km apart: their detections have two owners.
    let doc = r#"{"type":"FeatureCollection","features":[
        {"type":"Feature","geometry":{"type":"LineString","coordinates":[[105.0,27.0],[105.5,27.0]]},
         "properties":{"kind":"carriageway","road_id":"G76","name":"a","direction":"up",
         "stake_start_m":1000000,"stake_end_m":1049600,"width_m":15}},
        {"type":"Feature","geometry":{"type":"LineString","coordinates":[[105.0,27.02],[105.5,27.02]]},
         "properties":{"kind":"carriageway","road_id":"G56","name":"b","direction":"up",
         "stake_start_m":1000000,"stake_end_m":1049600,"width_m":15}}]}"#;
    Arc::new(RoadNetwork::from_geojson(doc.as_bytes(), &LoadOptions::default()).unwrap())
}

fn settings(guarantee: Guarantee) -> Settings {
    let mut s = defaults();
    s.processing.guarantee = guarantee;
    s.scaling.partitions = PARTITIONS;
    s.engine.ride_hailing.plate_key = PseudonymKey::from_bytes(b"locate stage test key");
    s.plate_key_source = PlateKeySource::Configured;
    s
}

fn broker(s: &Settings) -> MemoryBroker {
    let broker = MemoryBroker::new();
    for stream in Stream::ALL {
        broker.create_topic(s.kafka.topics.input(stream), INPUT_PARTITIONS);
    }
    broker
}

fn stage(broker: &MemoryBroker, s: &Settings) -> Locate {
    let transactional = s.processing.guarantee == Guarantee::ExactlyOnce;
    stage_with(broker, s, broker.producer(transactional))
}

fn stage_with(
    broker: &MemoryBroker,
    s: &Settings,
    mut producer: crate::io::kafka::broker::memory::MemoryProducer,
) -> Locate {
    let transactional = s.processing.guarantee == Guarantee::ExactlyOnce;
    if transactional {
        producer.init_transactions(Duration::from_secs(1)).unwrap();
    }
    let clock: Arc<dyn Clock> = broker.clock.clone();
    let metrics = Arc::new(Metrics::new());
    let sink = sink::new(
        s.processing.guarantee,
        Box::new(producer),
        StreamTopics::new(&s.kafka),
        metrics.clone(),
        clock.clone(),
        Duration::from_millis(s.processing.commit_interval_ms),
    );
    let parts = Parts {
        clock,
        sink,
        group: Box::new(broker.group_member()),
        liveness: Liveness::new(Duration::from_secs(60)),
    };
    Locate::new(
        &stage_settings(s).unwrap(),
        RepartitionTopics::new(&s.kafka.group_id),
        network(),
        metrics,
        Arc::new(Readiness::default()),
        Shutdown::new(),
        parts,
    )
    .unwrap()
}

/// What was appended, by lane: for the oracle.
#[derive(Default)]
struct Input {
    /// (lane, offset) → the road, plate or station the record's rule keys it by; `None`:
    /// a record no owner gets (its detections are no rule's input).
    keys: BTreeMap<(Stream, i32, i64), Option<String>>,
}

impl Input {
    /// A round of records: a pedestrian on each road, a car on neither (vehicles are no
    /// rule's input), a plate read per reader, a weather observation per station; each
    /// on the partition of its device, as the devices key them.
    fn round(&mut self, broker: &MemoryBroker, s: &Settings, round: u32) {
        let ts = broker.clock.wall_ms() - 60_000;
        for (c, (class, lat, road)) in [
            ("pedestrian", 27.0, Some("G76")),
            ("pedestrian", 27.02, Some("G56")),
            ("car", 27.0, None),
        ]
        .into_iter()
        .enumerate()
        {
            let camera = format!("cam-{c}");
            let v = serde_json::json!({
                "event_id": format!("{camera}-{round}"), "camera_id": camera, "ts": ts,
                "detections": [{"class": class, "confidence": 0.9,
                                "lon": 105.01 + f64::from(round) * 0.01, "lat": lat}]
            });
            self.append(
                broker,
                s,
                Stream::Camera,
                &camera,
                v,
                road.map(str::to_owned),
            );
        }
        for r in 0..3 {
            let reader = format!("anpr-{r}");
            let plate = format!("贵F{:05}", round * 10 + r);
            let key = keys::plate_key(&plate, &s.engine.ride_hailing.plate_key);
            let v = serde_json::json!({
                "event_id": format!("{reader}-{round}"), "reader_id": reader, "ts": ts,
                "plate": plate, "plate_color": "blue", "vehicle_class": "car",
                "lon": 105.1, "lat": 27.0
            });
            self.append(broker, s, Stream::Plate, &reader, v, Some(key));
        }
        for w in 0..2 {
            let station = format!("wx-{w}");
            let v = serde_json::json!({
                "event_id": format!("{station}-{round}"), "station_id": station, "ts": ts,
                "lon": 105.2, "lat": 27.0, "visibility_m": 800.0
            });
            self.append(
                broker,
                s,
                Stream::Weather,
                &station,
                v,
                Some(station.clone()),
            );
        }
    }

    fn append(
        &mut self,
        broker: &MemoryBroker,
        s: &Settings,
        stream: Stream,
        device: &str,
        value: serde_json::Value,
        key: Option<String>,
    ) {
        let partition = keys::partition(device.as_bytes(), INPUT_PARTITIONS as u32) as i32;
        let bytes = value.to_string().into_bytes();
        let offset = broker.append(
            s.kafka.topics.input(stream),
            partition,
            broker.clock.wall_ms(),
            &bytes,
        );
        self.keys.insert((stream, partition, offset), key);
    }

    /// Where every sighting must be, and how often (once).
    fn expected(&self, s: &Settings) -> BTreeMap<(Stream, i32, i64), (i32, usize)> {
        self.keys
            .iter()
            .filter_map(|(lane, key)| {
                let key = key.as_ref()?;
                let partition = keys::partition(key.as_bytes(), s.scaling.partitions as u32);
                Some((*lane, (partition as i32, 1)))
            })
            .collect()
    }
}

/// Each sighting a read_committed reader finds: its lane and offset, the partition it
/// was written to, and how many times it was found.
fn sightings(broker: &MemoryBroker, s: &Settings) -> BTreeMap<(Stream, i32, i64), (i32, usize)> {
    let topics = RepartitionTopics::new(&s.kafka.group_id);
    let mut found: BTreeMap<(Stream, i32, i64), (i32, usize)> = BTreeMap::new();
    for topic in topics.all() {
        for (partition, payload) in broker.read_committed_with_partitions(topic) {
            let partition = partition.expect("repartition records name their partition");
            if let Ok(Repartitioned::Sighting(x)) = record::decode(&payload) {
                assert_eq!(topics.of(x.lane.stream), Some(topic));
                let e = found
                    .entry((x.lane.stream, x.lane.partition, x.offset))
                    .or_insert((partition, 0));
                assert_eq!(e.0, partition, "one record, two partitions");
                e.1 += 1;
            }
        }
    }
    for topic in topics.all() {
        for payload in broker.read_committed(topic) {
            assert!(
                record::decode(&payload).is_ok(),
                "{topic}: a record that does not decode"
            );
        }
    }
    found
}

fn run_for(broker: &MemoryBroker, stages: &mut [&mut Locate], d: Duration) {
    let until = broker.clock.now() + d;
    let mut turns = 0;
    while broker.clock.now() < until {
        for st in stages.iter_mut() {
            st.turn().unwrap();
        }
        turns += 1;
        assert!(turns < 1_000_000, "the clock does not move");
    }
}

fn rounds(
    broker: &MemoryBroker,
    s: &Settings,
    stages: &mut [&mut Locate],
    mut before: impl FnMut(u32, &mut [&mut Locate]),
) -> Input {
    let mut input = Input::default();
    for round in 0..6 {
        before(round, stages);
        input.round(broker, s, round);
        run_for(broker, stages, Duration::from_secs(2));
    }
    run_for(broker, stages, Duration::from_secs(30));
    input
}

#[test]
fn every_record_reaches_the_partition_of_its_key_once_with_its_offsets() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let input = rounds(&broker, &s, &mut [&mut st], |_, _| {});
    let expected = input.expected(&s);
    assert_eq!(
        expected.len(),
        6 * 7,
        "two pedestrians, three plates, two stations a round"
    );
    assert_eq!(sightings(&broker, &s), expected);
    // The offsets committed with them: every input partition read to its end.
    let mut ends: BTreeMap<(Stream, i32), i64> = BTreeMap::new();
    for (stream, partition, offset) in input.keys.keys() {
        let e = ends.entry((*stream, *partition)).or_default();
        *e = (*e).max(offset + 1);
    }
    for ((stream, partition), end) in ends {
        let committed = broker.committed(s.kafka.topics.input(stream), partition);
        assert_eq!(committed.map(|c| c.0), Some(end), "{stream:?}[{partition}]");
    }
    st.close(true).unwrap();
}

#[test]
fn the_watermarks_reach_every_partition_with_each_lanes_end() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let input = rounds(&broker, &s, &mut [&mut st], |_, _| {});
    let topics = RepartitionTopics::new(&s.kafka.group_id);
    for stream in [Stream::Camera, Stream::Plate, Stream::Weather] {
        let topic = topics.of(stream).unwrap();
        // Idle lanes are marked at their start (the heartbeat).
        let mut ends: BTreeMap<i32, i64> = (0..INPUT_PARTITIONS).map(|p| (p, 0)).collect();
        for (st_, p, o) in input.keys.keys() {
            if *st_ == stream {
                let e = ends.entry(*p).or_default();
                *e = (*e).max(o + 1);
            }
        }
        for partition in 0..PARTITIONS {
            // The last watermark of each lane in this partition.
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            for (p, payload) in broker.read_committed_with_partitions(topic) {
                if p != Some(partition) {
                    continue;
                }
                if let Ok(Repartitioned::Watermark(marks)) = record::decode(&payload) {
                    for m in marks {
                        assert_eq!(m.lane.stream, stream);
                        last.insert(m.lane.partition, m.next);
                    }
                }
            }
            assert_eq!(last, ends, "{topic}[{partition}]");
        }
    }
}

#[test]
fn an_aborted_transaction_is_routed_again_and_appears_once() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let input = rounds(&broker, &s, &mut [&mut st], |round, _| {
        if round == 2 {
            broker.fail_next(
                Op::Commit,
                BrokerError::abortable("Broker: Coordinator not available"),
            );
        }
    });
    assert_eq!(sightings(&broker, &s), input.expected(&s));
}

#[test]
fn a_second_member_joining_mid_stream_takes_partitions_without_loss_or_repeat() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut first = stage(&broker, &s);
    let mut input = Input::default();
    for round in 0..3 {
        input.round(&broker, &s, round);
        run_for(&broker, &mut [&mut first], Duration::from_secs(2));
    }
    let mut second = stage_with(&broker, &s, broker.producer_with_id("second"));
    for round in 3..6 {
        input.round(&broker, &s, round);
        run_for(
            &broker,
            &mut [&mut first, &mut second],
            Duration::from_secs(2),
        );
    }
    run_for(
        &broker,
        &mut [&mut first, &mut second],
        Duration::from_secs(30),
    );
    assert!(
        !second.sink.positions().is_empty(),
        "the second member holds partitions"
    );
    assert_eq!(sightings(&broker, &s), input.expected(&s));
}

#[test]
fn at_least_once_failed_deliveries_are_routed_again_and_none_is_lost() {
    let s = settings(Guarantee::AtLeastOnce);
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let input = rounds(&broker, &s, &mut [&mut st], |round, _| {
        if round == 2 {
            broker.fail_deliveries(3);
        }
    });
    let found = sightings(&broker, &s);
    let expected = input.expected(&s);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every sighting arrives (owners drop a repeat by its lane and offset)"
    );
    for (lane, (partition, _)) in &expected {
        assert_eq!(found[lane].0, *partition);
    }
}

#[test]
fn a_bad_record_goes_to_the_dead_letter_topic_and_the_stream_goes_on() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let mut input = Input::default();
    input.round(&broker, &s, 0);
    broker.append(
        &s.kafka.topics.camera,
        1,
        broker.clock.wall_ms(),
        b"{not json",
    );
    input.round(&broker, &s, 1);
    run_for(&broker, &mut [&mut st], Duration::from_secs(30));
    let dlq = broker.read_committed(&s.kafka.topics.dlq);
    assert_eq!(dlq.len(), 1);
    let doc: serde_json::Value = serde_json::from_slice(&dlq[0]).unwrap();
    assert_eq!(doc["reason"], "invalid_json", "{doc}");
    assert_eq!(doc["partition"], 1, "{doc}");
    assert_eq!(sightings(&broker, &s), input.expected(&s));
    assert_eq!(st.metrics.dlq.with_label_values(&["invalid_json"]).get(), 1);
}

#[test]
fn a_generated_plate_key_stops_start_up_naming_the_key() {
    let mut s = settings(Guarantee::ExactlyOnce);
    s.plate_key_source = PlateKeySource::Generated;
    let e = stage_settings(&s).unwrap_err().to_string();
    assert!(e.starts_with("privacy.plate_key:"), "{e}");
}

#[test]
fn a_lost_assignment_aborts_the_open_transaction_and_loses_nothing() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let mut input = Input::default();
    for round in 0..2 {
        input.round(&broker, &s, round);
        run_for(&broker, &mut [&mut st], Duration::from_secs(2));
    }
    input.round(&broker, &s, 2);
    let mut turns = 0;
    while st.sink.in_flight() == 0 {
        st.turn().unwrap();
        turns += 1;
        assert!(turns < 10_000, "the round is never routed");
    }
    // Stalled past session.timeout.ms with its transaction open; alive again.
    broker.expire_members();
    for round in 3..5 {
        input.round(&broker, &s, round);
        run_for(&broker, &mut [&mut st], Duration::from_secs(2));
    }
    run_for(&broker, &mut [&mut st], Duration::from_secs(30));
    assert_eq!(sightings(&broker, &s), input.expected(&s));
}

#[test]
fn idle_lanes_are_marked_too_so_that_owners_need_not_wait_for_them() {
    let s = settings(Guarantee::ExactlyOnce);
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let input = rounds(&broker, &s, &mut [&mut st], |_, _| {});
    let busy: std::collections::BTreeSet<(Stream, i32)> =
        input.keys.keys().map(|(st_, p, _)| (*st_, *p)).collect();
    let topics = RepartitionTopics::new(&s.kafka.group_id);
    for stream in [Stream::Camera, Stream::Plate, Stream::Weather] {
        let topic = topics.of(stream).unwrap();
        let idle = (0..INPUT_PARTITIONS).filter(|p| !busy.contains(&(stream, *p)));
        assert!(
            idle.count() > 0,
            "{stream:?}: some input partition stays idle"
        );
        for partition in 0..PARTITIONS {
            let marked: std::collections::BTreeSet<i32> = broker
                .read_committed_with_partitions(topic)
                .into_iter()
                .filter(|(p, _)| *p == Some(partition))
                .filter_map(|(_, payload)| match record::decode(&payload) {
                    Ok(Repartitioned::Watermark(marks)) => Some(marks),
                    _ => None,
                })
                .flatten()
                .map(|m| m.lane.partition)
                .collect();
            assert_eq!(
                marked,
                (0..INPUT_PARTITIONS).collect(),
                "{topic}[{partition}]: every lane read is marked, idle or not"
            );
        }
    }
}

#[test]
fn at_least_once_deliveries_behind_pause_the_input_and_nothing_is_lost() {
    let mut s = settings(Guarantee::AtLeastOnce);
    s.processing.max_in_flight_records = 4;
    let broker = broker(&s);
    let mut st = stage(&broker, &s);
    let mut paused = false;
    let input = rounds(&broker, &s, &mut [&mut st], |round, st| {
        if round == 2 {
            broker.hold_deliveries(true);
        }
        if round == 4 {
            paused = st[0].backpressure;
            broker.hold_deliveries(false);
        }
    });
    assert!(paused, "deliveries held: the input paused");
    assert!(!st.backpressure, "caught up: the input resumed");
    let found = sightings(&broker, &s);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        input.expected(&s).keys().collect::<Vec<_>>()
    );
}
