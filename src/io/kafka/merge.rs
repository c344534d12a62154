//! The live k-way merge of the group partitions by event time.
//!
//! librdkafka hands over what it fetched partition batch by partition batch. Applied in
//! that order, the records of one partition push the engine clock ahead, and those of
//! another partition that are more than `time.allowed_lateness_s` older are dropped as
//! late — after any backlog (a restart, a broker outage, a slow partition). So every
//! polled record waits in its partition's lane, and the oldest head (by the record's
//! own event time, which is what the engine's lateness is about) is applied only when no
//! other lane could still deliver something older:
//!
//! - a lane with records never blocks: its head takes part in the minimum;
//! - an empty lane that is read to its end (the caller says so) never blocks;
//! - an empty lane that is behind its end blocks heads newer than the last time it
//!   delivered (its next record is most likely not older than that), for at most
//!   `wait`; after that it is taken to be silent until it delivers again, so a stuck
//!   partition holds the others up for a bounded time only.
//!
//! Lanes are bounded: [`Merge::push`] says when a lane is full and its partition should
//! be paused, [`Merge::resumable`] when it has drained enough to fetch again.
//! No I/O here: the runtime supplies "is it behind" and the current instant.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What became of a pushed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Queued, and the lane is now full: pause the partition.
    QueuedFull,
    /// Not queued: no lane for the partition (revoked, or not yet rebuilt) or an offset
    /// already queued (fetched again after a resume).
    Ignored,
}

struct Lane<K, T> {
    key: K,
    queue: VecDeque<(i64, T)>,
    /// The offset after the last record queued.
    next: i64,
    /// Merge key of the last record queued (`i64::MIN` before the first).
    last_ts: i64,
    paused: bool,
    /// Since when this lane, empty and behind, has been holding the others up.
    blocking_since: Option<Instant>,
}

pub(crate) struct Merge<K, T> {
    lanes: Vec<Lane<K, T>>,
    capacity: usize,
    wait: Duration,
    queued: usize,
}

impl<K: Copy + PartialEq, T> Merge<K, T> {
    /// `capacity` records per lane before it asks to be paused; an empty lane that is
    /// behind holds the others for at most `wait`.
    pub(crate) fn new(capacity: usize, wait: Duration) -> Self {
        Merge {
            lanes: Vec::new(),
            capacity: capacity.max(1),
            wait,
            queued: 0,
        }
    }

    /// A new set of lanes (after a rebuild), each starting at its next offset. Returns
    /// the partitions the old lanes had paused: the caller resumes them.
    pub(crate) fn reset(&mut self, lanes: impl IntoIterator<Item = (K, i64)>) -> Vec<K> {
        let paused = self.paused();
        self.lanes = lanes
            .into_iter()
            .map(|(key, next)| Lane {
                key,
                queue: VecDeque::new(),
                next,
                last_ts: i64::MIN,
                paused: false,
                blocking_since: None,
            })
            .collect();
        self.queued = 0;
        paused
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// The partitions currently paused because their lane was full.
    pub(crate) fn paused(&self) -> Vec<K> {
        self.lanes
            .iter()
            .filter(|l| l.paused)
            .map(|l| l.key)
            .collect()
    }

    /// Whether a record at `offset` of `key` would be queued (so the caller can skip
    /// decoding it when not).
    pub(crate) fn wants(&self, key: K, offset: i64) -> bool {
        self.lanes.iter().any(|l| l.key == key && offset >= l.next)
    }

    /// Queues one record. `ts` is its merge key; `None` (a record that could not be
    /// decoded) keeps it right behind its predecessor in the lane.
    pub(crate) fn push(&mut self, key: K, offset: i64, ts: Option<i64>, item: T) -> Pushed {
        let Some(lane) = self.lanes.iter_mut().find(|l| l.key == key) else {
            return Pushed::Ignored;
        };
        if offset < lane.next {
            return Pushed::Ignored;
        }
        let ts = ts.unwrap_or(lane.last_ts);
        lane.next = offset + 1;
        lane.last_ts = ts;
        lane.blocking_since = None;
        lane.queue.push_back((ts, item));
        self.queued += 1;
        if lane.queue.len() >= self.capacity && !lane.paused {
            lane.paused = true;
            Pushed::QueuedFull
        } else {
            Pushed::Queued
        }
    }

    /// The oldest head, if nothing could still arrive before it. `behind(key, next)`:
    /// whether the partition has records past `next` that have not been polled yet.
    /// `patient`: wait for a lane that is behind however long it takes (the input is
    /// paused on purpose, e.g. for delivery backpressure, so silence means nothing).
    pub(crate) fn pop(
        &mut self,
        now: Instant,
        patient: bool,
        behind: &mut dyn FnMut(K, i64) -> bool,
    ) -> Option<(K, T)> {
        let mut best: Option<(i64, usize)> = None;
        // Heads newer than this wait for an empty lane that is behind.
        let mut bound = i64::MAX;
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            match lane.queue.front() {
                Some((ts, _)) => {
                    if best.map_or(true, |(b, _)| *ts < b) {
                        best = Some((*ts, i));
                    }
                }
                None => {
                    if !behind(lane.key, lane.next) {
                        lane.blocking_since = None;
                        continue;
                    }
                    let since = *lane.blocking_since.get_or_insert(now);
                    if patient || now.duration_since(since) < self.wait {
                        bound = bound.min(lane.last_ts);
                    }
                }
            }
        }
        let (ts, i) = best?;
        if ts > bound {
            return None;
        }
        let (_, item) = self.lanes[i].queue.pop_front().expect("a head");
        self.queued -= 1;
        Some((self.lanes[i].key, item))
    }

    /// Empty lanes, not paused by the merge, that have held the others up (behind their
    /// end, yet nothing arrives) for `after` or longer: their partition may have stayed
    /// paused after all (librdkafka's pause and resume race, docs/KAFKA_RUNTIME.md), so
    /// the caller resumes it again. A lane is reported at most once per `after`.
    pub(crate) fn stalled(&mut self, now: Instant, after: Duration) -> Vec<K> {
        let mut out = Vec::new();
        for lane in self.lanes.iter_mut() {
            if lane.paused || !lane.queue.is_empty() {
                continue;
            }
            if let Some(since) = lane.blocking_since {
                if now.duration_since(since) >= after {
                    lane.blocking_since = Some(now);
                    out.push(lane.key);
                }
            }
        }
        out
    }

    /// Paused lanes drained to half their capacity: resume their partitions (the other
    /// half covers the refetch).
    pub(crate) fn resumable(&mut self) -> Vec<K> {
        let low = self.capacity / 2;
        let mut out = Vec::new();
        for lane in self.lanes.iter_mut() {
            if lane.paused && lane.queue.len() <= low {
                lane.paused = false;
                out.push(lane.key);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(500);

    fn drain(m: &mut Merge<u8, &'static str>, now: Instant, behind: &[u8]) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some((_, item)) = m.pop(now, false, &mut |k, _| behind.contains(&k)) {
            out.push(item);
        }
        out
    }

    #[test]
    fn heads_come_out_oldest_first_across_lanes() {
        let mut m = Merge::new(100, WAIT);
        m.reset([(0u8, 0), (1, 0)]);
        // Partition 0 delivered minutes ahead of partition 1, as after a backlog.
        m.push(0, 0, Some(100), "a100");
        m.push(0, 1, Some(200), "a200");
        m.push(0, 2, Some(300), "a300");
        m.push(1, 0, Some(150), "b150");
        m.push(1, 1, Some(250), "b250");
        let now = Instant::now();
        // Partition 1 may still deliver: only what is older than its last record goes.
        assert_eq!(drain(&mut m, now, &[1]), ["a100", "b150", "a200", "b250"]);
        assert_eq!(m.len(), 1);
        // Read to its end, it no longer holds the rest back.
        assert_eq!(drain(&mut m, now, &[]), ["a300"]);
        assert!(m.is_empty());
    }

    #[test]
    fn an_empty_lane_that_is_behind_holds_newer_heads_for_the_wait_only() {
        let mut m = Merge::new(100, WAIT);
        m.reset([(0u8, 0), (1, 0)]);
        m.push(0, 0, Some(100), "a100");
        let t0 = Instant::now();
        assert!(
            drain(&mut m, t0, &[1]).is_empty(),
            "lane 1 has not delivered yet"
        );
        assert!(drain(&mut m, t0 + WAIT / 2, &[1]).is_empty());
        // Patient (input paused on purpose): waits past the limit.
        assert!(m.pop(t0 + WAIT * 3, true, &mut |k, _| k == 1).is_none());
        assert_eq!(drain(&mut m, t0 + WAIT, &[1]), ["a100"], "silent: given up");
        // Silent until it delivers; then it holds newer heads again.
        m.push(0, 1, Some(400), "a400");
        assert_eq!(drain(&mut m, t0 + WAIT, &[1]), ["a400"]);
        m.push(1, 0, Some(300), "b300");
        m.push(0, 2, Some(500), "a500");
        assert_eq!(drain(&mut m, t0 + WAIT, &[1]), ["b300"]);
        assert!(
            drain(&mut m, t0 + WAIT, &[1]).is_empty(),
            "a500 waits for lane 1"
        );
    }

    #[test]
    fn a_lane_behind_that_stays_empty_is_reported_once_per_period() {
        let mut m = Merge::new(100, WAIT);
        m.reset([(0u8, 0), (1, 0)]);
        m.push(0, 0, Some(100), "a100");
        let t0 = Instant::now();
        assert!(drain(&mut m, t0, &[1]).is_empty(), "lane 1 blocks");
        assert!(m.stalled(t0 + WAIT, WAIT * 4).is_empty(), "not yet");
        assert_eq!(m.stalled(t0 + WAIT * 4, WAIT * 4), [1]);
        assert!(
            m.stalled(t0 + WAIT * 5, WAIT * 4).is_empty(),
            "once per period"
        );
        assert_eq!(m.stalled(t0 + WAIT * 8, WAIT * 4), [1]);
        // It delivers: no longer stalled.
        m.push(1, 0, Some(50), "b50");
        assert_eq!(drain(&mut m, t0 + WAIT * 8, &[]), ["b50", "a100"]);
        assert!(m.stalled(t0 + WAIT * 20, WAIT * 4).is_empty());
        // A lane the merge paused itself is never reported.
        let mut m = Merge::new(1, WAIT);
        m.reset([(0u8, 0), (1, 0)]);
        assert_eq!(m.push(0, 0, Some(100), "a100"), Pushed::QueuedFull);
        assert!(drain(&mut m, t0, &[0, 1]).is_empty());
        assert_eq!(
            m.stalled(t0 + WAIT * 10, WAIT),
            [1],
            "lane 0 is paused on purpose"
        );
    }

    #[test]
    fn undecodable_records_stay_behind_their_predecessor() {
        let mut m = Merge::new(100, WAIT);
        m.reset([(0u8, 0), (1, 0)]);
        m.push(1, 0, None, "bad-first");
        m.push(0, 0, Some(100), "a100");
        m.push(0, 1, None, "bad-after-a100");
        m.push(1, 1, Some(50), "b50");
        assert_eq!(
            drain(&mut m, Instant::now(), &[]),
            ["bad-first", "b50", "a100", "bad-after-a100"]
        );
    }

    #[test]
    fn full_lanes_ask_to_pause_and_resume_at_half() {
        let mut m = Merge::new(8, WAIT);
        m.reset([(0u8, 10), (1, 0)]);
        assert_eq!(
            m.push(0, 9, Some(1), "old"),
            Pushed::Ignored,
            "before the lane"
        );
        assert_eq!(m.push(2, 0, Some(1), "x"), Pushed::Ignored, "no such lane");
        let mut full = 0;
        for o in 10..18 {
            if m.push(0, o, Some(o), "a") == Pushed::QueuedFull {
                full += 1;
            }
        }
        assert_eq!(full, 1);
        assert_eq!(
            m.push(0, 12, Some(12), "again"),
            Pushed::Ignored,
            "refetched"
        );
        assert!(!m.wants(0, 17) && m.wants(0, 18) && !m.wants(3, 0));
        assert_eq!(m.paused(), [0]);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(m.pop(now, false, &mut |_, _| false).is_some());
            assert!(m.resumable().is_empty());
        }
        m.pop(now, false, &mut |_, _| false);
        assert_eq!(m.resumable(), [0], "4 left of 8");
        assert!(m.paused().is_empty());
        m.push(0, 18, Some(18), "a");
        for o in 19..30 {
            m.push(0, o, Some(o), "a");
        }
        assert_eq!(m.reset([(0, 0)]), [0], "reset hands back the paused lanes");
        assert!(m.is_empty());
    }
}
