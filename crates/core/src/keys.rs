//! Which key each rule's state needs, and which partition a key goes to (docs/SCALING.md
//! "Which state each rule needs"). Scale-out sends every record to the owner of its key,
//! whatever key its producer gave it: a camera's records are keyed by camera, a reader's
//! by reader, and neither is what the rules group by.
//!
//! - pedestrian incidents: the **road** the detection locates on (both directions: the
//!   confirmation pairs detections of any camera within 100 m);
//! - ride-hailing: the **plate**, as its keyed pseudonym (plates are personal data and
//!   never become a Kafka key);
//! - weather: the **station**.
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{CameraEvent, DetectionClass};
use crate::pseudonym::PseudonymKey;
use crate::roads::RoadNetwork;
use crate::settings::PedestrianSettings;

/// The partition Kafka's Java client (and librdkafka's `murmur2_random` partitioner)
/// gives `key` among `partitions`: the positive murmur2 hash modulo the count. Owners are
/// found from it, so it must be Kafka's, not any hash.
pub fn partition(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), unsigned.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// The part of one camera event each road's owner needs: the detections that could
/// qualify (DOMAIN.md: a pedestrian, bicycle or tricycle at `min_confidence` or more,
/// located on a road), grouped by that road, in road order. Vehicles and detections
/// that locate nowhere are no rule's input and go nowhere (most of a camera's
/// detections: they would cost the repartition hop for nothing). The event's time
/// still moves every owner's clock, through the watermark.
pub fn camera_by_road(
    ev: &CameraEvent,
    roads: &RoadNetwork,
    settings: &PedestrianSettings,
) -> Vec<(Arc<str>, CameraEvent)> {
    camera_roads(ev, roads, settings)
        .into_iter()
        .map(|(road, picked)| {
            let part = CameraEvent {
                event_id: ev.event_id.clone(),
                camera_id: ev.camera_id.clone(),
                ts: ev.ts,
                detections: picked
                    .iter()
                    .map(|&i| ev.detections[usize::from(i)].clone())
                    .collect(),
            };
            (road, part)
        })
        .collect()
}

/// [`camera_by_road`] as indices into `ev.detections`, in input order per road: what a
/// repartition record names, so that it can carry the camera's own bytes.
pub fn camera_roads(
    ev: &CameraEvent,
    roads: &RoadNetwork,
    settings: &PedestrianSettings,
) -> Vec<(Arc<str>, Vec<u16>)> {
    let mut parts: BTreeMap<Arc<str>, Vec<u16>> = BTreeMap::new();
    for (i, d) in ev.detections.iter().enumerate() {
        let candidate = matches!(
            d.class,
            DetectionClass::Pedestrian | DetectionClass::Bicycle | DetectionClass::Tricycle
        ) && d.confidence >= settings.min_confidence;
        // Input limits cap a camera event's detections far below u16::MAX.
        let (true, Ok(i)) = (candidate, u16::try_from(i)) else {
            continue;
        };
        let Some(pos) = roads.locate(d.lon, d.lat, ev.ts) else {
            continue;
        };
        parts.entry(pos.road_id.clone()).or_default().push(i);
    }
    parts.into_iter().collect()
}

/// A plate's key: its pseudonym under `privacy.plate_key`, the same one its alert ids
/// carry.
pub fn plate_key(plate: &str, key: &PseudonymKey) -> String {
    key.pseudonym(plate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // The vectors of Apache Kafka's `UtilsTest.testMurmur2` (signed, as Java
        // returns them).
        for (key, hash) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(key.as_bytes()) as i32, hash, "{key}");
        }
        let got: Vec<u32> = ["G56", "G76", "S82"]
            .iter()
            .map(|k| partition(k.as_bytes(), 6))
            .collect();
        assert_eq!(got, [3, 5, 2], "the shipped roads over six partitions");
        assert_eq!(partition(b"G76", 0), 0, "no partitions is one");
    }
}
