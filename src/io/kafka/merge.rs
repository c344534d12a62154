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
//! "Read to its end" is only as fresh as the consumer's last fetch response, and the two
//! consumers fetch independently: when every stream bursts at once (producers that
//! buffered through an outage, a backfill), one consumer's batch can carry an hour of
//! event time while the other's cached watermark still says "nothing more". Applied,
//! that batch moves the clock past everything the other side is about to deliver (issue
//! #20: 1,110 records late with two instances started together). So a head that is more
//! than half the allowed lateness ahead of an empty, caught-up lane's last record waits
//! until the lane's end has been looked up *after* the head was polled ([`Merge::ticket`],
//! [`Merge::take_lookups`], [`Merge::confirm`]) — for at most `wait`, so a broker that
//! cannot answer does not stop the stream. The other half of the lateness is the lane's
//! own disorder.
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

/// Why the merge stopped waiting for an empty lane ([`Merge::gave_up`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GaveUp {
    /// Behind its end, it delivered nothing for the whole wait: the heads newer than its
    /// last record go ahead, and what it delivers later may be late.
    Behind,
    /// Read to its end as far as its consumer had heard, but its end could not be
    /// looked up again within the wait.
    Unconfirmed,
}

impl GaveUp {
    /// The `reason` label of `roadwatch_merge_gave_up_total`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GaveUp::Behind => "behind",
            GaveUp::Unconfirmed => "unconfirmed",
        }
    }
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
    /// When a poll of the consumer last came back empty (it had handed over everything
    /// it had fetched); `None`: not known, the wall clock alone decides. A lane is
    /// silent only if its consumer has been found empty after the wait: while the loop
    /// was busy elsewhere (a batch of other partitions' records, a topic being created)
    /// the lane's records may have been waiting in the consumer.
    pub drained_at: Option<Instant>,
}

struct Lane<K, T> {
    key: K,
    /// `(merge key, ticket at push, record)`.
    queue: VecDeque<(i64, u64, T)>,
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
    /// The ticket of the newest lookup of its end: it covers records pushed before it.
    confirmed: u64,
    /// Since when this lane, empty and caught up, has held a head for a lookup.
    unconfirmed_since: Option<Instant>,
    /// It held a head for a lookup that has not been asked for yet.
    wants_lookup: bool,
    /// The merge stopped waiting for it (reported once, until it delivers or is looked up).
    given_up: bool,
}

pub(crate) struct Merge<K, T> {
    lanes: Vec<Lane<K, T>>,
    capacity: usize,
    wait: Duration,
    first_wait: Duration,
    /// Half the allowed lateness, in merge-key units (ms of event time).
    margin: i64,
    /// Stamped on every push; [`Merge::ticket`] moves it on.
    epoch: u64,
    queued: usize,
    gave_up: Vec<(K, GaveUp)>,
}

impl<K: Copy + PartialEq, T> Merge<K, T> {
    /// `capacity` records per lane before it asks to be paused; an empty lane that is
    /// behind holds the others for at most `wait`, or `first_wait` before it has
    /// delivered anything since it was set up; `lateness`: the engine's allowed
    /// lateness, in merge-key units.
    pub(crate) fn new(
        capacity: usize,
        wait: Duration,
        first_wait: Duration,
        lateness: i64,
    ) -> Self {
        Merge {
            lanes: Vec::new(),
            capacity: capacity.max(1),
            wait,
            first_wait: first_wait.max(wait),
            margin: lateness.max(0) / 2,
            epoch: 1,
            queued: 0,
            gave_up: Vec::new(),
        }
    }

    /// The lanes the merge has stopped waiting for since the last call, and why.
    pub(crate) fn gave_up(&mut self) -> Vec<(K, GaveUp)> {
        std::mem::take(&mut self.gave_up)
    }

    /// Call right before looking up partition ends: a [`Merge::confirm`] with this
    /// ticket covers every record pushed until now, and none pushed after.
    pub(crate) fn ticket(&mut self) -> u64 {
        let t = self.epoch;
        self.epoch += 1;
        t
    }

    /// The lanes whose end must be looked up before the oldest head may go (asked once
    /// per hold).
    pub(crate) fn take_lookups(&mut self) -> Vec<K> {
        let mut out = Vec::new();
        for lane in self.lanes.iter_mut() {
            if std::mem::take(&mut lane.wants_lookup) {
                out.push(lane.key);
            }
        }
        out
    }

    /// A lane's end as looked up with `ticket`: it is behind until it has read that far.
    pub(crate) fn confirm(&mut self, key: K, end: i64, ticket: u64) {
        if let Some(lane) = self.lanes.iter_mut().find(|l| l.key == key) {
            lane.end = lane.end.max(end);
            lane.confirmed = lane.confirmed.max(ticket);
            lane.unconfirmed_since = None;
            lane.given_up = false;
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
                confirmed: 0,
                unconfirmed_since: None,
                wants_lookup: false,
                given_up: false,
            })
            .collect();
        self.queued = 0;
        paused
    }

    /// Every lane's end is known exactly and nothing is appended meanwhile (the state
    /// rebuild looked the ends up before it read): no head waits for a lookup.
    pub(crate) fn ends_known(&mut self) {
        for lane in self.lanes.iter_mut() {
            lane.confirmed = u64::MAX;
        }
    }

    /// Takes out of `key`'s lane the first record `keep` refuses and every one after it
    /// (the rest of the partition is read by someone else), oldest first.
    pub(crate) fn cut(&mut self, key: K, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
        let Some(lane) = self.lanes.iter_mut().find(|l| l.key == key) else {
            return Vec::new();
        };
        let Some(at) = lane.queue.iter().position(|(_, _, item)| !keep(item)) else {
            return Vec::new();
        };
        let cut: Vec<T> = lane.queue.drain(at..).map(|(_, _, item)| item).collect();
        self.queued -= cut.len();
        cut
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// Records queued in `key`'s lane.
    pub(crate) fn len_of(&self, key: K) -> usize {
        self.lanes
            .iter()
            .find(|l| l.key == key)
            .map_or(0, |l| l.queue.len())
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
        lane.unconfirmed_since = None;
        lane.wants_lookup = false;
        lane.given_up = false;
        lane.queue.push_back((ts, self.epoch, item));
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
        let mut best: Option<(i64, u64, usize)> = None;
        // Heads newer than this wait for an empty lane that is behind.
        let mut bound = i64::MAX;
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            match lane.queue.front() {
                Some((ts, stamp, _)) => {
                    if best.map_or(true, |(b, _, _)| *ts < b) {
                        best = Some((*ts, *stamp, i));
                    }
                }
                None => {
                    let r = reading(lane.key);
                    if !Self::behind(lane, r) {
                        lane.blocking_since = None;
                        continue;
                    }
                    let since = *lane.blocking_since.get_or_insert(now);
                    let limit = if lane.delivered {
                        self.wait
                    } else {
                        self.first_wait
                    };
                    let silent = now.duration_since(since) >= limit
                        && r.drained_at.map_or(true, |d| d >= since + limit);
                    if patient || !silent {
                        bound = bound.min(lane.last_ts);
                    } else if !std::mem::replace(&mut lane.given_up, true) {
                        self.gave_up.push((lane.key, GaveUp::Behind));
                    }
                }
            }
        }
        let (ts, stamp, i) = best?;
        if ts > bound {
            return None;
        }
        // Empty lanes read to their end as far as their consumer has heard, that the
        // head is far ahead of and that were not looked up since it was polled (the
        // cheap tests first: this runs for every record applied).
        let mut hold = false;
        for lane in self.lanes.iter_mut() {
            if !lane.queue.is_empty()
                || ts <= lane.last_ts.saturating_add(self.margin)
                || lane.confirmed >= stamp
                || Self::behind(lane, reading(lane.key))
            {
                continue;
            }
            let since = *lane.unconfirmed_since.get_or_insert(now);
            if patient || now.duration_since(since) < self.wait {
                lane.wants_lookup = true;
                hold = true;
            } else if !std::mem::replace(&mut lane.given_up, true) {
                self.gave_up.push((lane.key, GaveUp::Unconfirmed));
            }
        }
        if hold {
            return None;
        }
        let (_, _, item) = self.lanes[i].queue.pop_front().expect("a head");
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
    /// Far more than the merge keys of most tests: a lane that has delivered is never
    /// looked up there.
    const LATENESS: i64 = 1_000_000;

    /// A consumer that has fetched: `behind` lanes have records past any offset.
    fn fetched(behind: bool) -> Reading {
        Reading {
            position: -1,
            high: Some(if behind { i64::MAX } else { 0 }),
            drained_at: None,
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
    fn a_cut_takes_the_first_refused_record_and_all_after_it() {
        let mut m: Merge<u8, (i64, &str)> = Merge::new(10, WAIT, FIRST, LATENESS);
        m.reset(lanes(&[(0, 0)]));
        for (o, ts) in [(0, 10), (1, 30), (2, 20), (3, 40)] {
            m.push(0, o, Some(ts), (ts, "r"));
        }
        let cut = m.cut(0, |(ts, _)| *ts < 25);
        assert_eq!(cut, vec![(30, "r"), (20, "r"), (40, "r")]);
        assert_eq!(m.len(), 1);
        assert!(m.cut(0, |_| true).is_empty());
    }

    #[test]
    fn with_every_end_known_no_head_waits_for_a_lookup() {
        let mut m: Merge<u8, &str> = Merge::new(10, WAIT, FIRST, 100);
        m.reset(lanes(&[(0, 0), (1, 0)]));
        m.push(1, 0, Some(5), "b0");
        m.push(0, 0, Some(10_000), "a0");
        let now = Instant::now();
        // Lane 1 emptied and caught up, lane 0's head far ahead of it: held for a
        // fresh look at lane 1's end...
        assert_eq!(drain(&mut m, now, &[]), vec!["b0"]);
        assert!(!m.take_lookups().is_empty());
        // ...unless the ends are known.
        m.ends_known();
        assert_eq!(drain(&mut m, now, &[]), vec!["a0"]);
    }

    #[test]
    fn heads_come_out_oldest_first_across_lanes() {
        let mut m = Merge::new(100, WAIT, WAIT, LATENESS);
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
        let mut m = Merge::new(100, WAIT, WAIT, LATENESS);
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
        assert_eq!(m.gave_up(), [(1, GaveUp::Behind)]);
        assert!(m.gave_up().is_empty(), "reported once");
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

    /// Under load the group consumer hands over a full batch of other partitions'
    /// records per poll, or the loop is away creating a topic, while this lane's records
    /// wait in the consumer: that is not silence.
    #[test]
    fn a_lane_is_silent_only_if_its_consumer_was_found_empty_after_the_wait() {
        let mut m = Merge::new(100, WAIT, WAIT, LATENESS);
        m.reset(lanes(&[(0u8, 0), (1, 0)]));
        m.push(0, 0, Some(100), "a100");
        m.push(1, 0, Some(50), "b50");
        let t0 = Instant::now();
        assert_eq!(drain(&mut m, t0, &[1]), ["b50"]);
        let drained = |at: Instant| {
            move |k: u8| Reading {
                drained_at: Some(at),
                ..fetched(k == 1)
            }
        };
        assert!(
            m.pop(t0, false, &mut drained(t0)).is_none(),
            "lane 1 blocks"
        );
        for step in 1..=4 {
            assert!(
                m.pop(t0 + WAIT * step, false, &mut drained(t0)).is_none(),
                "not found empty since, after {step} waits"
            );
        }
        // Found empty, but before the wait was over: still waiting.
        assert!(m
            .pop(t0 + WAIT * 5, false, &mut drained(t0 + WAIT / 2))
            .is_none());
        // Found empty after the wait: silent.
        assert_eq!(
            m.pop(t0 + WAIT * 5, false, &mut drained(t0 + WAIT))
                .map(|(_, x)| x),
            Some("a100")
        );
        assert_eq!(m.gave_up(), [(1, GaveUp::Behind)]);
    }

    #[test]
    fn a_lane_behind_that_stays_empty_is_reported_once_per_period() {
        let mut m = Merge::new(100, WAIT, WAIT, LATENESS);
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
        let mut m = Merge::new(1, WAIT, WAIT, LATENESS);
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
        let mut m = Merge::new(100, WAIT, WAIT, LATENESS);
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
        let mut m = Merge::new(8, WAIT, WAIT, LATENESS);
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
        // Lane 1 has delivered nothing: it is looked up before lane 0's records go.
        let t = m.ticket();
        m.confirm(1, 0, t);
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
        let mut m = Merge::new(100, WAIT, FIRST, LATENESS);
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
                    drained_at: None,
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
        let mut m = Merge::new(100, WAIT, FIRST, LATENESS);
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
        let mut m = Merge::new(100, WAIT, FIRST, LATENESS);
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
                        drained_at: None,
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
        let t = m.ticket();
        m.confirm(1, 10, t);
        assert_eq!(m.pop(now, false, &mut at(10)).map(|(_, x)| x), Some("a100"));
        // The cached watermark counts as well as the end known at set-up.
        let mut m = Merge::new(100, WAIT, FIRST, LATENESS);
        m.reset([(0u8, 0, 1), (1, 0, 0)]);
        m.push(0, 0, Some(100), "a100");
        let grown = |k: u8| Reading {
            position: -1,
            high: Some(if k == 1 { 5 } else { 1 }),
            drained_at: None,
        };
        assert!(
            m.pop(now, false, &mut |k| grown(k)).is_none(),
            "lane 1 grew"
        );
    }

    /// Issue #20, live: every stream bursts at once while both consumers are at their
    /// end. The side consumer's batch carries hours of event time; the group lane's
    /// cached watermark predates the burst, so by what its consumer knows it is read to
    /// its end. A head far ahead of that lane waits for a lookup of its end made after
    /// the head was polled: here it shows the lane behind, so the head waits for the
    /// lane's records.
    #[test]
    fn a_head_far_ahead_of_a_caught_up_lane_waits_for_a_fresh_look_at_its_end() {
        const MIN: i64 = 60_000;
        let mut m = Merge::new(100, WAIT, FIRST, 30_000);
        m.reset([(0u8, 0, 0), (1, 0, 0)]);
        // Before the burst: lane 0 delivered at minute 10, then went quiet.
        m.push(0, 0, Some(10 * MIN), "g10");
        let now = Instant::now();
        let caught_up = |k: u8| Reading {
            position: if k == 0 { 1 } else { 0 },
            high: Some(if k == 0 { 1 } else { 0 }),
            drained_at: None,
        };
        // A first global record of the same minute has to wait for nobody; g10 and p10
        // are within the margin of each other.
        m.push(1, 0, Some(10 * MIN + 5_000), "p10");
        let mut out = Vec::new();
        while let Some((_, x)) = m.pop(now, false, &mut |k| caught_up(k)) {
            out.push(x);
        }
        assert_eq!(out, ["g10", "p10"]);
        assert!(m.take_lookups().is_empty());
        // The burst: the side consumer's batch runs to minute 90.
        for (o, minute) in (1..).zip([11, 30, 60, 90]) {
            m.push(1, o, Some(minute * MIN), "p");
        }
        // Minute 11 is more than the margin (15 s) past lane 0's last record.
        assert!(m.pop(now, false, &mut |k| caught_up(k)).is_none());
        assert!(m.pop(now, false, &mut |k| caught_up(k)).is_none());
        assert_eq!(m.take_lookups(), [0], "asked for once per hold");
        assert!(m.take_lookups().is_empty());
        // The lookup finds lane 0's part of the burst on the broker: lane 0 is behind.
        let t = m.ticket();
        m.confirm(0, 40, t);
        assert!(m.pop(now, false, &mut |k| caught_up(k)).is_none());
        m.push(0, 1, Some(20 * MIN), "g20");
        m.push(0, 2, Some(95 * MIN), "g95");
        let mut out = Vec::new();
        while let Some((_, x)) = m.pop(now, false, &mut |k| caught_up(k)) {
            out.push(x);
        }
        assert_eq!(
            out,
            ["p", "g20", "p", "p", "p"],
            "minute 11, 20, 30, 60, 90"
        );
        // A lookup covers only what was polled before it.
        let mut m = Merge::new(100, WAIT, FIRST, 30_000);
        m.reset([(0u8, 0, 0), (1, 0, 0)]);
        let t = m.ticket();
        m.confirm(0, 0, t);
        m.push(1, 0, Some(90 * MIN), "later");
        let idle = |_| Reading {
            position: 0,
            high: Some(0),
            drained_at: None,
        };
        assert!(m.pop(now, false, &mut |k| idle(k)).is_none());
        assert_eq!(m.take_lookups(), [0]);
        // The broker does not answer: after the merge's wait the head goes anyway.
        assert!(m.pop(now + WAIT / 2, false, &mut |k| idle(k)).is_none());
        assert!(
            m.pop(now + WAIT, true, &mut |k| idle(k)).is_none(),
            "patient"
        );
        assert_eq!(
            m.pop(now + WAIT, false, &mut |k| idle(k)).map(|(_, x)| x),
            Some("later")
        );
        assert_eq!(m.gave_up(), [(0, GaveUp::Unconfirmed)]);
    }
}
