//! `roadwatch locate` on a real broker (issue #17, docs/SCALING.md): two instances of
//! the binary share six camera partitions of a simulated morning, keyed as devices key
//! (by camera, by reader, by station); one is killed with SIGKILL mid-stream and a third
//! starts later. A `read_committed` reader of the repartition topics then finds every
//! record's sightings exactly once, each on the partition of its rule's key, and the
//! deliberately broken records in the dead-letter topic.
mod kafka_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_support::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use roadwatch::config::Guarantee;
use roadwatch::core::keys;
use roadwatch::core::model::{decode_record, DecodeContext, Record, Stream};
use roadwatch::io::kafka;
use roadwatch::sim::{SimConfig, Simulator};
use serde_json::Value;

const CAMERA_PARTITIONS: i32 = 6;
const PARTITIONS: u32 = 6;

fn repartition_topics(stage: &Stage) -> [String; 3] {
    let app = &stage.settings.kafka.group_id;
    [
        format!("{app}-camera-by-road-repartition"),
        format!("{app}-plates-by-plate-repartition"),
        format!("{app}-weather-by-station-repartition"),
    ]
}

/// A simulated morning's camera, plate and weather records, ending an hour ago.
fn morning() -> Vec<roadwatch::sim::SimRecord> {
    let duration = 3_600_000;
    let cfg = SimConfig {
        seed: 23,
        start_ms: now_ms() - duration - 3_600_000,
        duration_ms: duration,
        traffic_scale: 0.05,
        pedestrian_incidents_per_day: 80.0,
        fog_episodes_per_day: 6.0,
        ..SimConfig::default()
    };
    Simulator::new(cfg, network())
        .run_to_end()
        .into_iter()
        .filter(|r| matches!(r.stream, Stream::Camera | Stream::Plate | Stream::Weather))
        .collect()
}

/// What must come out for one produced record: the repartition partition of each key
/// its rule reads it under (several roads for one camera event are several sightings).
fn owners(stage: &Stage, record: &Record) -> Vec<(usize, u32)> {
    let s = &stage.settings.engine;
    let part = |key: &str| keys::partition(key.as_bytes(), PARTITIONS);
    match record {
        Record::Camera(ev) => keys::camera_roads(ev, &network(), &s.pedestrian)
            .into_iter()
            .map(|(road, _)| (0, part(&road)))
            .collect(),
        Record::Plate(p) => vec![(
            1,
            part(&keys::plate_key(&p.plate, &s.ride_hailing.plate_key)),
        )],
        Record::Weather(w) => vec![(2, part(&w.station_id))],
        _ => Vec::new(),
    }
}

/// The last watermark read of each (repartition topic, partition, stream, lane).
type Marks = BTreeMap<(usize, i32, Stream, i32), i64>;

/// Notes a watermark record's marks; whether the record was one.
fn note_marks(marks: &mut Marks, topic: usize, partition: i32, v: &Value) -> bool {
    let Some(wm) = v.get("wm").and_then(Value::as_array) else {
        return false;
    };
    for m in wm {
        let stream = Stream::parse(m[0].as_str().unwrap()).unwrap();
        let lane = m[1].as_i64().unwrap() as i32;
        marks.insert((topic, partition, stream, lane), m[2].as_i64().unwrap());
    }
    true
}

#[test]
fn two_locate_instances_one_killed_and_one_started_later_route_every_record_once() {
    let stage = Stage::new("locate", CAMERA_PARTITIONS, Guarantee::ExactlyOnce);
    warm_coordinators(&stage);
    let t = stage.topics().clone();
    let dir = std::env::temp_dir().join(format!("{}-logs", stage.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let spawn = |name: &str| {
        Child::spawn_command(
            &stage,
            name,
            dir.join(format!("{name}.log")),
            &["locate"],
            &[],
        )
    };
    let mut a = spawn("a");
    let mut b = spawn("b");
    a.wait_for_log("locate: partitions assigned", Duration::from_secs(60));
    b.wait_for_log("locate: partitions assigned", Duration::from_secs(60));

    let records = morning();
    let producer: FutureProducer = producer(&stage);
    let ctx = DecodeContext::without_clock();
    // (topic index, input partition, offset) → the owners' partitions it must reach.
    let mut expected: BTreeMap<(Stream, i32, i64), Vec<(usize, u32)>> = BTreeMap::new();
    let mut broken = 0;
    // Each input partition's end: where every lane's last watermark must be.
    let mut ends: BTreeMap<(Stream, i32), i64> = (0..CAMERA_PARTITIONS)
        .map(|p| ((Stream::Camera, p), 0))
        .chain([((Stream::Plate, 0), 0), ((Stream::Weather, 0), 0)])
        .collect();
    // Produced in chunks, each awaited before the next: fast, yet the stages are
    // still reading when the kill and the newcomer come.
    let chunks: Vec<&[roadwatch::sim::SimRecord]> = records.chunks(records.len() / 8 + 1).collect();
    let mut c = None;
    for (n, chunk) in chunks.iter().enumerate() {
        if n == 6 {
            c = Some(spawn("c"));
        }
        // Devices key by device: a reader's key spreads one plate over partitions.
        let keys: Vec<String> = chunk
            .iter()
            .map(|r| match r.stream {
                Stream::Plate => serde_json::from_slice::<Value>(&r.value)
                    .ok()
                    .and_then(|v| v["reader_id"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| r.key.clone()),
                _ => r.key.clone(),
            })
            .collect();
        let sends: Vec<_> = chunk
            .iter()
            .zip(&keys)
            .map(|(r, key)| {
                producer
                    .send_result(
                        FutureRecord::to(t.input(r.stream))
                            .key(key)
                            .payload(&r.value[..]),
                    )
                    .map_err(|(e, _)| e)
                    .expect("queued")
            })
            .collect();
        for (r, delivery) in chunk.iter().zip(sends) {
            let (partition, offset) = tokio()
                .block_on(delivery)
                .expect("not cancelled")
                .map(|d| (d.partition, d.offset))
                .map_err(|(e, _)| e)
                .expect("delivery");
            let end = ends.entry((r.stream, partition)).or_default();
            *end = (*end).max(offset + 1);
            if r.expect_reject.is_some() {
                broken += 1;
                continue;
            }
            let record = decode_record(r.stream, &r.value, &ctx).expect("a sound record decodes");
            let owners = owners(&stage, &record);
            if !owners.is_empty() {
                expected.insert((r.stream, partition, offset), owners);
            }
        }
        if n == 4 {
            // Mid-stream, while it reads this chunk: a kill without any chance to commit.
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let total: usize = expected.values().map(Vec::len).sum();
    assert!(
        total > 500,
        "only {total} sightings expected: the test says little"
    );
    assert!(broken > 0, "the simulated morning has broken records");
    eprintln!(
        "{} records produced, {total} sightings and {broken} dead letters expected",
        records.len()
    );

    // Every repartition partition and the DLQ, read_committed from the start.
    let reader: BaseConsumer = kafka::client_config(
        &stage.settings.kafka,
        &[
            ("group.id", &format!("{}-reader", stage.prefix)),
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    )
    .create()
    .unwrap();
    let topics = repartition_topics(&stage);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for topic in &topics {
        for p in 0..PARTITIONS as i32 {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(0))
                .unwrap();
        }
    }
    tpl.add_partition_offset(&t.dlq, 0, rdkafka::Offset::Offset(0))
        .unwrap();
    reader.assign(&tpl).unwrap();
    let mut found: BTreeMap<(Stream, i32, i64), Vec<(usize, u32)>> = BTreeMap::new();
    let mut marks: Marks = BTreeMap::new();
    let mut dead_letters = 0;
    let started = Instant::now();
    let complete = |found: &BTreeMap<_, Vec<_>>| {
        found.len() == expected.len() && found.values().map(Vec::len).sum::<usize>() >= total
    };
    while (!complete(&found) || dead_letters < broken)
        && started.elapsed() < Duration::from_secs(180)
    {
        let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        if m.topic() == t.dlq {
            dead_letters += 1;
            continue;
        }
        let topic = topics.iter().position(|n| n == m.topic()).unwrap();
        let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        if note_marks(&mut marks, topic, m.partition(), &v) {
            continue;
        }
        let stream = Stream::parse(v["s"].as_str().unwrap()).unwrap();
        let lane = (
            stream,
            v["p"].as_i64().unwrap() as i32,
            v["o"].as_i64().unwrap(),
        );
        found
            .entry(lane)
            .or_default()
            .push((topic, m.partition() as u32));
    }
    for owners in found.values_mut().chain(expected.values_mut()) {
        owners.sort_unstable();
    }
    if found != expected {
        let missing = expected.keys().filter(|k| !found.contains_key(k)).count();
        let twice = found.values().filter(|v| v.len() > 1).count();
        panic!(
            "{missing} records missing, {twice} found more than once, of {} expected\n\
             --- a\n{}\n--- b\n{}",
            expected.len(),
            a.log(),
            b.log()
        );
    }
    // Nothing more arrives but watermarks: no late duplicate. Their heartbeat, once a
    // second, reaches every partition with every lane at its end.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let topic = topics.iter().position(|n| n == m.topic());
            assert!(
                topic.is_some_and(|topic| note_marks(&mut marks, topic, m.partition(), &v)),
                "a record after all were found: {v}"
            );
        }
    }
    for (topic, stream) in [Stream::Camera, Stream::Plate, Stream::Weather]
        .into_iter()
        .enumerate()
    {
        let lanes: BTreeMap<i32, i64> = ends
            .iter()
            .filter(|((s, _), _)| *s == stream)
            .map(|((_, p), end)| (*p, *end))
            .collect();
        for partition in 0..PARTITIONS as i32 {
            let last: BTreeMap<i32, i64> = marks
                .iter()
                .filter(|((t, p, s, _), _)| *t == topic && *p == partition && *s == stream)
                .map(|((_, _, _, lane), next)| (*lane, *next))
                .collect();
            assert_eq!(
                last, lanes,
                "{}[{partition}]: each lane's last watermark",
                topics[topic]
            );
        }
    }
    assert_eq!(
        dead_letters, broken,
        "each broken record dead-lettered once"
    );
    assert!(
        c.is_some_and(|mut c| c.exited().is_none()),
        "the newcomer runs"
    );
    assert!(b.exited().is_none(), "the survivor runs");
}
