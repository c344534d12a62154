//! The locate stage's routing on the shipped network and a simulated morning, keyed the
//! way the devices key (by camera, by reader, by station).
use std::collections::BTreeMap;
use std::sync::Arc;

use super::record::{self, Lane, Repartitioned};
use super::route::Router;
use super::RepartitionTopics;
use crate::core::keys;
use crate::core::model::{decode_record, DecodeContext, Record, Stream};
use crate::core::pseudonym::PseudonymKey;
use crate::core::roads::{LoadOptions, RoadNetwork};
use crate::core::settings::EngineSettings;
use crate::io::pipeline::Produced;
use crate::sim::{SimConfig, Simulator};

const PARTITIONS: u32 = 6;
const INPUT_PARTITIONS: u32 = 4;

fn network() -> Arc<RoadNetwork> {
    Arc::new(
        RoadNetwork::from_geojson(
            include_bytes!("../../../../config/roads/bijie.geojson"),
            &LoadOptions::default(),
        )
        .expect("the shipped network loads"),
    )
}

fn settings() -> EngineSettings {
    EngineSettings::documented_defaults(PseudonymKey::from_bytes(b"repartition routing test"))
}

/// A simulated morning as its devices would write it: each record on the input
/// partition of its device's key, with its offset there.
struct Input {
    records: Vec<(Lane, i64, Record, Vec<u8>)>,
}

fn morning(net: &Arc<RoadNetwork>) -> Input {
    let cfg = SimConfig {
        seed: 5,
        duration_ms: 6 * 3_600_000,
        traffic_scale: 0.2,
        pedestrian_incidents_per_day: 60.0,
        fog_episodes_per_day: 6.0,
        ..SimConfig::default()
    };
    let ctx = DecodeContext::without_clock();
    let mut next: BTreeMap<Lane, i64> = BTreeMap::new();
    let mut records = Vec::new();
    for r in Simulator::new(cfg, net.clone()).run_to_end() {
        let Ok(record) = decode_record(r.stream, &r.value, &ctx) else {
            continue;
        };
        let device = match &record {
            Record::Camera(e) => e.camera_id.clone(),
            Record::Plate(p) => p.reader_id.clone(),
            Record::Weather(w) => w.station_id.clone(),
            _ => "global".to_owned(),
        };
        let lane = Lane {
            stream: r.stream,
            partition: keys::partition(device.as_bytes(), INPUT_PARTITIONS) as i32,
        };
        let offset = next.entry(lane).or_default();
        records.push((lane, *offset, record, r.value.clone()));
        *offset += 1;
    }
    Input { records }
}

fn router(net: &Arc<RoadNetwork>, s: &EngineSettings) -> Router {
    Router::new(
        RepartitionTopics::new("roadwatch"),
        PARTITIONS,
        net.clone(),
        s.pedestrian.clone(),
        s.ride_hailing.plate_key.clone(),
    )
}

/// What an owner rebuilds from a sighting: the record, cut to the named detections.
fn owned(s: &record::Sighting<'_>) -> Record {
    let mut r = decode_record(s.lane.stream, s.value, &DecodeContext::without_clock())
        .expect("a sighting's bytes decode as they did at the locate stage");
    if let (Record::Camera(ev), Some(only)) = (&mut r, &s.only) {
        let all = std::mem::take(&mut ev.detections);
        ev.detections = only.iter().map(|&i| all[usize::from(i)].clone()).collect();
    }
    r
}

#[test]
fn every_record_reaches_the_owner_of_its_rules_key_and_only_what_that_rule_reads() {
    let net = network();
    let s = settings();
    let input = morning(&net);
    let mut router = router(&net, &s);
    let mut routed: Vec<Produced> = Vec::new();
    // What the owners must get: the keyed split of docs/SCALING.md (tests/keyed_detectors.rs
    // shows it gives the single detector's answer).
    let mut expected: BTreeMap<(String, i32), Vec<Record>> = BTreeMap::new();
    let topics = RepartitionTopics::new("roadwatch");
    for (lane, offset, record, value) in &input.records {
        router.route(*lane, *offset, record, value, &mut routed);
        let mut expect = |stream: Stream, key: &str, r: Record| {
            let topic = topics.of(stream).unwrap().to_owned();
            let partition = keys::partition(key.as_bytes(), PARTITIONS) as i32;
            expected.entry((topic, partition)).or_default().push(r);
        };
        match record {
            Record::Camera(ev) => {
                for (road, part) in keys::camera_by_road(ev, &net, &s.pedestrian) {
                    expect(Stream::Camera, &road, Record::Camera(part));
                }
            }
            Record::Plate(p) => expect(
                Stream::Plate,
                &keys::plate_key(&p.plate, &s.ride_hailing.plate_key),
                record.clone(),
            ),
            Record::Weather(w) => expect(Stream::Weather, &w.station_id, record.clone()),
            _ => {}
        }
    }
    let mut got: BTreeMap<(String, i32), Vec<Record>> = BTreeMap::new();
    let mut plates_in_keys = 0;
    for p in &routed {
        let Ok(Repartitioned::Sighting(sighting)) = record::decode(&p.payload) else {
            panic!("routing made a record that is not a sighting");
        };
        let r = owned(&sighting);
        if let Record::Plate(read) = &r {
            plates_in_keys += usize::from(p.key.as_deref() == Some(read.plate.as_str()));
        }
        got.entry((p.topic.clone(), p.partition.expect("a named partition")))
            .or_default()
            .push(r);
    }
    assert_eq!(
        plates_in_keys, 0,
        "a plate in clear text never becomes a key"
    );
    for stream in [Stream::Camera, Stream::Plate, Stream::Weather] {
        let topic = topics.of(stream).unwrap();
        let n: usize = got
            .iter()
            .filter(|((t, _), _)| t == topic)
            .map(|(_, v)| v.len())
            .sum();
        assert!(n > 20, "{topic}: only {n} sightings, the test says little");
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (place, records) in &expected {
        assert!(
            got[place] == *records,
            "{place:?}: the owner does not get the keyed split in input order"
        );
    }
}

#[test]
fn watermarks_tell_every_partition_how_far_each_lane_was_written() {
    let net = network();
    let s = settings();
    let input = morning(&net);
    let mut router = router(&net, &s);
    let mut out = Vec::new();
    let mut last: BTreeMap<Lane, (i64, i64)> = BTreeMap::new();
    for (lane, offset, record, value) in &input.records {
        router.route(*lane, *offset, record, value, &mut out);
        let e = last.entry(*lane).or_insert((0, i64::MIN));
        *e = (offset + 1, e.1.max(record.ts().ms()));
    }
    out.clear();
    router.watermarks(&mut out);
    let topics = RepartitionTopics::new("roadwatch");
    let mut seen: BTreeMap<(String, i32), BTreeMap<Lane, (i64, i64)>> = BTreeMap::new();
    for p in &out {
        let Ok(Repartitioned::Watermark(marks)) = record::decode(&p.payload) else {
            panic!("not a watermark");
        };
        for m in marks {
            assert_eq!(Some(p.topic.as_str()), topics.of(m.lane.stream));
            let clock = m.clock.expect("a lane that was read has a clock");
            seen.entry((p.topic.clone(), p.partition.unwrap()))
                .or_default()
                .insert(m.lane, (m.next, clock));
        }
    }
    for (topic, lanes) in [Stream::Camera, Stream::Plate, Stream::Weather].map(|st| {
        let want: BTreeMap<Lane, (i64, i64)> = last
            .iter()
            .filter(|(l, _)| l.stream == st)
            .map(|(l, v)| (*l, *v))
            .collect();
        (topics.of(st).unwrap().to_owned(), want)
    }) {
        assert!(!lanes.is_empty(), "{topic}: no lane in the first records");
        for partition in 0..PARTITIONS as i32 {
            assert_eq!(
                seen.get(&(topic.clone(), partition)),
                Some(&lanes),
                "{topic}[{partition}]"
            );
        }
    }
    out.clear();
    router.watermarks(&mut out);
    assert!(out.is_empty(), "no lane moved, no watermark");
}
