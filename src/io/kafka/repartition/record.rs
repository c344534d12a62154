//! The records of the repartition topics (docs/SCALING.md, "The repartition records").
//!
//! A **sighting** carries one input record to the owner of its key: the record's own
//! bytes, unchanged, with where it was read (its *lane*: stream and input partition, and
//! its offset) and, for a camera event, which of its decoded detections this owner
//! needs. Carrying the bytes, not a re-encoding, keeps the owner's decode, and so its
//! answer, the one a single engine gives (an encoder of our own could drift from the
//! decoder). A **watermark** tells an owner how far each lane of the writer has been
//! written to it: every record of that lane below `next` is already in the partition,
//! and the lane's event time has reached `clock`. Owners merge lanes by event time the
//! way the single runtime merges input partitions, and drop a lane's record whose
//! offset they have applied (a resend after an at-least-once restart).
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::core::model::Stream;

/// Where an input record was read: the unit an owner orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Lane {
    pub stream: Stream,
    pub partition: i32,
}

// Read by the owners' stage, built next (docs/SCALING.md, "Order of building").
#[cfg_attr(not(test), allow(dead_code))]
/// A sighting as the owner reads it; `value` borrows the record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sighting<'a> {
    pub lane: Lane,
    pub offset: i64,
    /// Event time, epoch ms: the owner's merge orders by it before decoding.
    pub ts: i64,
    /// A camera event's detections for this owner, as indices into its decoded
    /// detections (`core::keys::camera_roads`); `None`: the whole record.
    pub only: Option<Vec<u16>>,
    pub value: &'a [u8],
}

/// One lane's progress in a watermark record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaneMark {
    pub lane: Lane,
    /// Every record of the lane below this offset has been written before the mark.
    pub next: i64,
    /// The lane's event time so far (epoch ms); `None` before its first record.
    pub clock: Option<i64>,
}

// Read by the owners' stage, built next (docs/SCALING.md, "Order of building").
#[cfg_attr(not(test), allow(dead_code))]
/// What a repartition record is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Repartitioned<'a> {
    Sighting(Sighting<'a>),
    Watermark(Vec<LaneMark>),
}

/// A lane's mark on the wire: stream, partition, next offset, clock.
type WireMark<'a> = (&'a str, i32, i64, Option<i64>);

/// The wire form. Field names are short: a sighting's envelope is paid per record.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    o: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    only: Option<Vec<u16>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    v: Option<&'a RawValue>,
    /// Watermarks: `[stream, partition, next, clock or null]` per lane.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    wm: Option<Vec<WireMark<'a>>>,
}

impl Wire<'_> {
    fn empty() -> Self {
        Wire {
            s: None,
            p: None,
            o: None,
            ts: None,
            only: None,
            v: None,
            wm: None,
        }
    }
}

/// Encodes a sighting. `value` must be one JSON value: it is a record that decoded
/// (the decoder parses JSON), written as it came.
pub(crate) fn sighting(
    lane: Lane,
    offset: i64,
    ts: i64,
    only: Option<&[u16]>,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 64);
    // The envelope by serde, the value spliced in: RawValue would validate it again.
    let head = Wire {
        s: Some(lane.stream.as_str()),
        p: Some(lane.partition),
        o: Some(offset),
        ts: Some(ts),
        only: only.map(<[u16]>::to_vec),
        ..Wire::empty()
    };
    serde_json::to_writer(&mut out, &head).expect("a sighting's envelope serializes");
    out.pop(); // the closing brace
    out.extend_from_slice(b",\"v\":");
    out.extend_from_slice(value.trim_ascii());
    out.push(b'}');
    out
}

/// Encodes a watermark record.
pub(crate) fn watermark(marks: &[LaneMark]) -> Vec<u8> {
    let wire = Wire {
        wm: Some(
            marks
                .iter()
                .map(|m| (m.lane.stream.as_str(), m.lane.partition, m.next, m.clock))
                .collect(),
        ),
        ..Wire::empty()
    };
    serde_json::to_vec(&wire).expect("a watermark serializes")
}

// Read by the owners' stage, built next (docs/SCALING.md, "Order of building").
#[cfg_attr(not(test), allow(dead_code))]
/// Decodes a repartition record; `Err` names what is wrong (only our own writers write
/// these topics, so an error means a foreign writer or a version this build cannot
/// read).
pub(crate) fn decode(bytes: &[u8]) -> Result<Repartitioned<'_>, String> {
    let w: Wire<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if let Some(marks) = w.wm {
        let marks = marks
            .into_iter()
            .map(|(s, partition, next, clock)| {
                let stream = Stream::parse(s).ok_or_else(|| format!("unknown stream {s:?}"))?;
                Ok(LaneMark {
                    lane: Lane { stream, partition },
                    next,
                    clock,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        return Ok(Repartitioned::Watermark(marks));
    }
    let (Some(s), Some(partition), Some(offset), Some(ts), Some(v)) = (w.s, w.p, w.o, w.ts, w.v)
    else {
        return Err("neither a sighting (s, p, o, ts, v) nor a watermark (wm)".to_owned());
    };
    let stream = Stream::parse(s).ok_or_else(|| format!("unknown stream {s:?}"))?;
    Ok(Repartitioned::Sighting(Sighting {
        lane: Lane { stream, partition },
        offset,
        ts,
        only: w.only,
        value: v.get().as_bytes(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMERA_3: Lane = Lane {
        stream: Stream::Camera,
        partition: 3,
    };

    #[test]
    fn a_sighting_carries_its_records_bytes_unchanged() {
        let value = br#"  {"event_id":"e1","camera_id":"c","detections":[{"class":"pedestrian"}],"note":"\u4eba"}
"#;
        let bytes = sighting(CAMERA_3, 41, 1_800_000_000_000, Some(&[0, 2]), value);
        let Ok(Repartitioned::Sighting(s)) = decode(&bytes) else {
            panic!("{}", String::from_utf8_lossy(&bytes));
        };
        assert_eq!(s.lane, CAMERA_3);
        assert_eq!((s.offset, s.ts), (41, 1_800_000_000_000));
        assert_eq!(s.only.as_deref(), Some(&[0u16, 2][..]));
        assert_eq!(
            s.value,
            value.trim_ascii(),
            "the record's own bytes, escapes and all"
        );
    }

    #[test]
    fn a_whole_record_has_no_detection_list() {
        let lane = Lane {
            stream: Stream::Plate,
            partition: 0,
        };
        let bytes = sighting(lane, 0, -5, None, b"{}");
        assert_eq!(
            decode(&bytes),
            Ok(Repartitioned::Sighting(Sighting {
                lane,
                offset: 0,
                ts: -5,
                only: None,
                value: b"{}",
            }))
        );
    }

    #[test]
    fn watermarks_round_trip() {
        let marks = vec![
            LaneMark {
                lane: CAMERA_3,
                next: 100,
                clock: Some(1_800_000_000_000),
            },
            LaneMark {
                lane: Lane {
                    stream: Stream::Weather,
                    partition: 0,
                },
                next: 0,
                clock: None,
            },
        ];
        assert_eq!(
            decode(&watermark(&marks)),
            Ok(Repartitioned::Watermark(marks))
        );
    }

    #[test]
    fn foreign_records_are_refused_with_a_reason() {
        for bad in [
            &b""[..],
            b"{}",
            b"[1,2]",
            br#"{"s":"camera","p":1,"o":2,"ts":3}"#,
            br#"{"s":"radar","p":1,"o":2,"ts":3,"v":{}}"#,
            br#"{"wm":[["radar",0,1,null]]}"#,
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
