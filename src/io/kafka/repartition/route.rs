//! The locate stage's routing: which repartition partition each decoded input record
//! goes to, under the key its rule's state needs (`core::keys`), and the watermarks
//! that tell every owner how far each lane has been written.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::record::{self, Lane, LaneMark};
use super::RepartitionTopics;
use crate::core::keys;
use crate::core::model::{Record, Stream};
use crate::core::pseudonym::PseudonymKey;
use crate::core::roads::RoadNetwork;
use crate::core::settings::PedestrianSettings;
use crate::io::pipeline::{Content, Produced};

/// Routes the records of the lanes this instance reads.
pub(crate) struct Router {
    topics: RepartitionTopics,
    partitions: u32,
    roads: Arc<RoadNetwork>,
    pedestrian: PedestrianSettings,
    plate_key: PseudonymKey,
    /// Per lane read: the next offset and the event time so far, and whether it moved
    /// since the last watermark.
    lanes: BTreeMap<Lane, Progress>,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    next: i64,
    clock: Option<i64>,
    moved: bool,
}

impl Router {
    pub(crate) fn new(
        topics: RepartitionTopics,
        partitions: u32,
        roads: Arc<RoadNetwork>,
        pedestrian: PedestrianSettings,
        plate_key: PseudonymKey,
    ) -> Self {
        Router {
            topics,
            partitions: partitions.max(1),
            roads,
            pedestrian,
            plate_key,
            lanes: BTreeMap::new(),
        }
    }

    /// Sends `record`, read at `offset` of `lane` with these bytes, to the owner of each
    /// of its keys; nothing for a camera event with no detection any rule reads (its
    /// time still reaches every owner, by the next watermark).
    pub(crate) fn route(
        &mut self,
        lane: Lane,
        offset: i64,
        record: &Record,
        value: &[u8],
        out: &mut Vec<Produced>,
    ) {
        let ts = record.ts().ms();
        let topic = self.topics.of(lane.stream);
        match (record, topic) {
            (Record::Camera(ev), Some(topic)) => {
                for (road, picked) in keys::camera_roads(ev, &self.roads, &self.pedestrian) {
                    let only = (picked.len() < ev.detections.len()).then_some(&picked[..]);
                    out.push(self.produced(
                        topic,
                        &road,
                        record::sighting(lane, offset, ts, only, value),
                    ));
                }
            }
            (Record::Plate(read), Some(topic)) => {
                let key = keys::plate_key(&read.plate, &self.plate_key);
                out.push(self.produced(
                    topic,
                    &key,
                    record::sighting(lane, offset, ts, None, value),
                ));
            }
            (Record::Weather(obs), Some(topic)) => {
                out.push(self.produced(
                    topic,
                    &obs.station_id,
                    record::sighting(lane, offset, ts, None, value),
                ));
            }
            // Positions, acks and actions are every decision owner's input, read in
            // full; they never cross this hop.
            _ => {}
        }
        self.passed(lane, offset, Some(ts));
    }

    /// A record of `lane` at `offset` that goes nowhere (refused, or no rule's input):
    /// the lane moved past it.
    pub(crate) fn passed(&mut self, lane: Lane, offset: i64, ts: Option<i64>) {
        let p = self.lanes.entry(lane).or_insert(Progress {
            next: 0,
            clock: None,
            moved: true,
        });
        p.next = p.next.max(offset + 1);
        p.clock = p.clock.max(ts);
        p.moved = true;
    }

    /// One watermark record per partition of each repartition topic whose lanes moved
    /// since the last call: written before each commit, in the same transaction.
    pub(crate) fn watermarks(&mut self, out: &mut Vec<Produced>) {
        for stream in [Stream::Camera, Stream::Plate, Stream::Weather] {
            let marks: Vec<LaneMark> = self
                .lanes
                .iter()
                .filter(|(lane, p)| lane.stream == stream && p.moved)
                .map(|(&lane, p)| LaneMark {
                    lane,
                    next: p.next,
                    clock: p.clock,
                })
                .collect();
            let Some(topic) = self.topics.of(stream) else {
                continue;
            };
            if marks.is_empty() {
                continue;
            }
            let payload = record::watermark(&marks);
            for partition in 0..self.partitions {
                out.push(Produced {
                    topic: topic.to_owned(),
                    partition: Some(partition as i32),
                    key: None,
                    payload: payload.clone(),
                    content: Content::Internal,
                });
            }
        }
        for p in self.lanes.values_mut() {
            p.moved = false;
        }
    }

    /// Once a second: every lane this instance reads is marked, idle ones too, at the
    /// consumer's position when it has routed nothing of it yet. An owner that starts
    /// (or a pair it has never heard of) learns so that a quiet lane is quiet, instead
    /// of waiting for it.
    pub(crate) fn heartbeat(&mut self, positions: &[(Lane, i64)], out: &mut Vec<Produced>) {
        for &(lane, next) in positions {
            let p = self.lanes.entry(lane).or_insert(Progress {
                next,
                clock: None,
                moved: true,
            });
            p.moved = true;
        }
        self.watermarks(out);
    }

    /// The lanes this instance no longer reads (revoked): their new reader marks them.
    pub(crate) fn forget(&mut self, lanes: &[Lane]) {
        for lane in lanes {
            self.lanes.remove(lane);
        }
    }

    /// After an abort the lanes go back to the committed offsets: their progress is
    /// what the next records say again.
    pub(crate) fn forget_all(&mut self) {
        self.lanes.clear();
    }

    fn produced(&self, topic: &str, key: &str, payload: Vec<u8>) -> Produced {
        Produced {
            topic: topic.to_owned(),
            partition: Some(keys::partition(key.as_bytes(), self.partitions) as i32),
            key: Some(key.to_owned()),
            payload,
            content: Content::Internal,
        }
    }
}
