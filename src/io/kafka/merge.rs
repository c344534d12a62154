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
//! - an empty lane that is read to its end never blocks;
//! - an empty lane that is behind its end blocks heads newer than the last time it
//!   delivered (its next record is most likely not older than that), for at most
//!   `wait`; after that it is taken to be silent until it delivers again, so a stuck
//!   partition holds the others up for a bounded time only.
//!
//! "Behind" is decided here, from what the caller's consumer knows ([`Reading`]: its
//! position and librdkafka's cached high watermark) *and* from the end each lane was
//! known to have when it was set up (the rebuild's ListOffsets). The cached watermark
//! exists only after the consumer's first fetch of the partition: before it, a lane
//! used to count as read to its end, so right after an assignment or a rebuild the
//! consumer that fetched first ran ahead of the other by a whole backlog and the
//! other's records were dropped as late (issue #20: 7,038 of 7,236 patrol positions).
//! And a lane that has not delivered since it was set up is not silent but not fetched
//! yet: it holds the others for `first_wait` (longer than `wait`), since a new
//! consumer's first fetch (leader lookup, connection) can take longer than `wait`.
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

/// What the caller's consumer knows of a partition, for [`Merge::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The consumer's position (it moves past transaction markers, which occupy offsets
    /// but are never delivered); -1 when unknown.
    pub position: i64,
    /// librdkafka's cached high watermark (last stable offset under read_committed);
    /// `None` before the consumer's first fetch of the partition.
    pub high: Option<i64>,
}

struct Lane<K, T> {
    key: K,
    queue: VecDeque<(i64, T)>,
    /// The offset after the last record queued.
    next: i64,
    /// The partition's end when the lane was set up: everything below it exists, so
    /// the lane is behind until it has read that far, fetched or not.
    end: i64,
    /// Whether it has delivered a record since it was set up.
    delivered: bool,
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
    first_wait: Duration,
    queued: usize,
}

impl<K: Copy + PartialEq, T> Merge<K, T> {
    /// `capacity` records per lane before it asks to be paused; an empty lane that is
    /// behind holds the others for at most `wait`, or `first_wait` before it has
    /// delivered anything since it was set up.
    pub(crate) fn new(capacity: usize, wait: Duration, first_wait: Duration) -> Self {
        Merge {
            lanes: Vec::new(),
            capacity: capacity.max(1),
            wait,
            first_wait: first_wait.max(wait),
            queued: 0,
        }
    }

    /// A new set of lanes (after a rebuild), each as `(key, next offset, end)`: the
    /// partition's end as last looked up (the lane is behind until it has read that
    /// far). Returns the partitions the old lanes had paused: the caller resumes them.
    pub(crate) fn reset(&mut self, lanes: impl IntoIterator<Item = (K, i64, i64)>) -> Vec<K> {
        let paused = self.paused();
        self.lanes = lanes
            .into_iter()
            .map(|(key, next, end)| Lane {
                key,
                queue: VecDeque::new(),
                next,
                end,
                delivered: false,
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
        lane.delivered = true;
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

    /// The oldest head, if nothing could still arrive before it. `reading(key)`: what the
    /// partition's consumer knows of it (asked only for empty lanes). `patient`: wait for
    /// a lane that is behind however long it takes (the input is paused on purpose, e.g.
    /// for delivery backpressure, so silence means nothing).
    pub(crate) fn pop(
        &mut self,
        now: Instant,
        patient: bool,
        reading: &mut dyn FnMut(K) -> Reading,
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
                    if !Self::behind(lane, reading(lane.key)) {
                        lane.blocking_since = None;
                        continue;
                    }
                    let since = *lane.blocking_since.get_or_insert(now);
                    let limit = if lane.delivered {
                        self.wait
                    } else {
                        self.first_wait
                    };
                    if patient || now.duration_since(since) < limit {
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

    /// Whether an empty lane's partition has records it has not delivered: below the
    /// end known at set-up, or below the consumer's cached high watermark; read past
    /// either by the consumer's position (transaction markers) it is not.
    fn behind(lane: &Lane<K, T>, r: Reading) -> bool {
        let read = lane.next.max(r.position);
        read < lane.end || r.high.is_some_and(|high| read < high)
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
    const FIRST: Duration = Duration::from_secs(5);

    /// A consumer that has fetched: `behind` lanes have records past any offset.
    fn fetched(behind: bool) -> Reading {
        Reading {
            position: -1,
            high: Some(if behind { i64::MAX } else { 0 }),
        }
    }

    fn drain(m: &mut Merge<u8, &'static str>, now: Instant, behind: &[u8]) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some((_, item)) = m.pop(now, false, &mut |k| fetched(behind.contains(&k))) {
            out.push(item);
        }
        out
    }

    /// Lanes whose end is not known at set-up (the consumer's reading decides).
    fn lanes(keys: &[(u8, i64)]) -> Vec<(u8, i64, i64)> {
        keys.iter().map(|&(k, next)| (k, next, -1)).collect()
    }

    #[test]
    fn heads_come_out_oldest_first_across_lanes() {
        let mut m = Merge::new(100, WAIT, WAIT);
        m.reset(lanes(&[(0u8, 0), (1, 0)]));
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
        let mut m = Merge::new(100, WAIT, WAIT);
        m.reset(lanes(&[(0u8, 0), (1, 0)]));
        m.push(0, 0, Some(100), "a100");
        let t0 = Instant::now();
        assert!(
            drain(&mut m, t0, &[1]).is_empty(),
            "lane 1 has not delivered yet"
        );
        assert!(drain(&mut m, t0 + WAIT / 2, &[1]).is_empty());
        // Patient (input paused on purpose): waits past the limit.
        assert!(m
            .pop(t0 + WAIT * 3, true, &mut |k| fetched(k == 1))
            .is_none());
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
        let mut m = Merge::new(100, WAIT, WAIT);
        m.reset(lanes(&[(0u8, 0), (1, 0)]));
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
        let mut m = Merge::new(1, WAIT, WAIT);
        m.reset(lanes(&[(0u8, 0), (1, 0)]));
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
        let mut m = Merge::new(100, WAIT, WAIT);
        m.reset(lanes(&[(0u8, 0), (1, 0)]));
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
        let mut m = Merge::new(8, WAIT, WAIT);
        m.reset(lanes(&[(0u8, 10), (1, 0)]));
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
            assert!(m.pop(now, false, &mut |_| fetched(false)).is_some());
            assert!(m.resumable().is_empty());
        }
        m.pop(now, false, &mut |_| fetched(false));
        assert_eq!(m.resumable(), [0], "4 left of 8");
        assert!(m.paused().is_empty());
        m.push(0, 18, Some(18), "a");
        for o in 19..30 {
            m.push(0, o, Some(o), "a");
        }
        assert_eq!(
            m.reset(lanes(&[(0, 0)])),
            [0],
            "reset hands back the paused lanes"
        );
        assert!(m.is_empty());
    }

    /// Issue #20: right after a rebuild one consumer has fetched and the other has not.
    /// librdkafka knows no high watermark before the first fetch, so the unfetched lane
    /// used to count as read to its end, and the other's backlog ran ahead of it by
    /// hours of event time. The end known at set-up keeps it behind, for `first_wait`.
    #[test]
    fn a_lane_not_fetched_yet_holds_the_others_by_the_end_known_at_set_up() {
        let mut m = Merge::new(100, WAIT, FIRST);
        // Lane 0: group records, fetched. Lane 1: patrol positions, 500 of them exist,
        // its consumer has fetched nothing yet (no watermark, no position).
        m.reset([(0u8, 0, 3), (1, 0, 500)]);
        m.push(0, 0, Some(100), "a100");
        m.push(0, 1, Some(200), "a200");
        let unfetched = |k: u8| {
            if k == 1 {
                Reading {
                    position: -1001,
                    high: None,
                }
            } else {
                fetched(false)
            }
        };
        let t0 = Instant::now();
        assert!(m.pop(t0, false, &mut |k| unfetched(k)).is_none());
        // Longer than the merge's wait: a lane that has never delivered is not silent.
        assert!(m.pop(t0 + WAIT * 2, false, &mut |k| unfetched(k)).is_none());
        // It delivers; from then on the usual wait applies.
        m.push(1, 0, Some(150), "p150");
        let mut order = Vec::new();
        while let Some((_, x)) = m.pop(t0 + WAIT * 2, false, &mut |k| unfetched(k)) {
            order.push(x);
        }
        assert_eq!(
            order,
            ["a100", "p150"],
            "a200 waits for lane 1's next record"
        );
        let t1 = t0 + WAIT * 2;
        assert!(m.pop(t1 + WAIT / 2, false, &mut |k| unfetched(k)).is_none());
        assert_eq!(
            m.pop(t1 + WAIT, false, &mut |k| unfetched(k))
                .map(|(_, x)| x),
            Some("a200"),
            "delivered before: silent after the usual wait"
        );
        // A lane that never delivers gives way after `first_wait`.
        let mut m = Merge::new(100, WAIT, FIRST);
        m.reset([(0u8, 0, 1), (1, 0, 500)]);
        m.push(0, 0, Some(100), "a100");
        assert!(m.pop(t0, false, &mut |k| unfetched(k)).is_none());
        assert!(m
            .pop(t0 + FIRST / 2, false, &mut |k| unfetched(k))
            .is_none());
        assert!(m.pop(t0 + FIRST, false, &mut |k| unfetched(k)).is_some());
    }

    #[test]
    fn a_lane_read_past_its_end_by_position_does_not_hold_the_others() {
        let mut m = Merge::new(100, WAIT, FIRST);
        // Lane 1's last two offsets below the end are transaction markers: never
        // delivered, but the consumer's position moves past them.
        m.reset([(0u8, 0, 1), (1, 8, 10)]);
        m.push(0, 0, Some(100), "a100");
        let now = Instant::now();
        let at = |position: i64| {
            move |k: u8| {
                if k == 1 {
                    Reading {
                        position,
                        high: Some(10),
                    }
                } else {
                    fetched(false)
                }
            }
        };
        assert!(
            m.pop(now, false, &mut at(8)).is_none(),
            "offsets 8, 9 to come"
        );
        assert_eq!(m.pop(now, false, &mut at(10)).map(|(_, x)| x), Some("a100"));
        // The cached watermark counts as well as the end known at set-up.
        let mut m = Merge::new(100, WAIT, FIRST);
        m.reset([(0u8, 0, 1), (1, 0, 0)]);
        m.push(0, 0, Some(100), "a100");
        let grown = |k: u8| Reading {
            position: -1,
            high: Some(if k == 1 { 5 } else { 1 }),
        };
        assert!(
            m.pop(now, false, &mut |k| grown(k)).is_none(),
            "lane 1 grew"
        );
    }
}
