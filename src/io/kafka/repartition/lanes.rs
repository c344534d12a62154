//! An owner's merge of its sightings by event time (docs/SCALING.md, "The locate
//! stage").
//!
//! An owner holds some partitions of a repartition topic. Each carries, interleaved,
//! the sightings of many *lanes* (an input partition as the locate stage read it), each
//! lane in its own order, and now and then a watermark: "everything of this lane below
//! offset n is in this partition already". The unit of order is therefore the *pair*
//! (repartition partition, lane), over every partition owned and every lane of the
//! input. The oldest head among the pairs is released only when no pair could still
//! deliver something older. An empty pair does not block when
//!
//! - a watermark covering its last sighting has been read, and its partition is read to
//!   its end: what comes next was not written yet (as a caught-up input partition in
//!   `run`); or
//! - it has blocked for `wait` without news: a writer that died mid-batch is fenced and
//!   its batch aborted, and the lane's next reader writes it again; what comes after the
//!   wait may be late. It blocks again once it delivers or is marked.
//!
//! Every other empty pair blocks: the rest of a writer's batch, or the partition's
//! unread part, may hold something older. Writers mark every lane they read once a
//! second even when it is idle, so a new owner learns soon that a quiet lane is quiet.
//!
//! A sighting whose lane offset this pair has already queued is a repeat (an
//! at-least-once writer that restarted) and is dropped. No I/O: the caller says which
//! partitions are read to their end, and what time it is.
// The owners' runtime that reads through this merge is the next step (docs/SCALING.md,
// "Order of building"); until then only its tests use it.
#![cfg_attr(not(test), allow(dead_code))]
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::record::{Lane, LaneMark};

/// What became of a pushed sighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Its lane offset was queued before: dropped.
    Repeat,
}

/// A released sighting: where it was read, its lane offset and event time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head<T> {
    pub partition: i32,
    pub lane: Lane,
    pub offset: i64,
    pub ts: i64,
    pub item: T,
}

#[derive(Debug)]
struct Pair<T> {
    queue: VecDeque<(i64, i64, T)>,
    /// The lane offset after the last sighting queued or marked (repeats are below it).
    next: i64,
    /// A watermark covering the last sighting has been read.
    marked: bool,
    /// Since when this pair, empty and not known complete, has held a head.
    blocking_since: Option<Instant>,
    /// The wait ran out: it holds nothing up until it delivers or is marked.
    given_up: bool,
}

impl<T> Pair<T> {
    fn new() -> Self {
        Pair {
            queue: VecDeque::new(),
            next: 0,
            marked: false,
            blocking_since: None,
            given_up: false,
        }
    }
}

pub(crate) struct LaneMerge<T> {
    pairs: BTreeMap<(i32, Lane), Pair<T>>,
    partitions: BTreeSet<i32>,
    lanes: BTreeSet<Lane>,
    /// The greatest lane clock the watermarks carried: an owner's clock moves by it
    /// when its own sightings are quiet.
    clock: Option<i64>,
    wait: Duration,
    gave_up: u64,
}

impl<T> LaneMerge<T> {
    pub(crate) fn new(wait: Duration) -> Self {
        LaneMerge {
            pairs: BTreeMap::new(),
            partitions: BTreeSet::new(),
            lanes: BTreeSet::new(),
            clock: None,
            wait,
            gave_up: 0,
        }
    }

    /// The partitions now owned and the lanes of the input (every partition of the
    /// camera, plate and weather topics): each pair of them blocks until it is known.
    pub(crate) fn assign(&mut self, partitions: &[i32], lanes: &[Lane]) {
        for &p in partitions {
            self.add_partition(p);
        }
        for &l in lanes {
            self.add_lane(l);
        }
    }

    fn add_partition(&mut self, partition: i32) {
        if self.partitions.insert(partition) {
            for &lane in &self.lanes {
                self.pairs
                    .entry((partition, lane))
                    .or_insert_with(Pair::new);
            }
        }
    }

    fn add_lane(&mut self, lane: Lane) {
        if self.lanes.insert(lane) {
            for &p in &self.partitions {
                self.pairs.entry((p, lane)).or_insert_with(Pair::new);
            }
        }
    }

    fn pair(&mut self, partition: i32, lane: Lane) -> &mut Pair<T> {
        self.add_partition(partition);
        self.add_lane(lane);
        self.pairs.get_mut(&(partition, lane)).expect("added")
    }

    /// Queues a sighting of `lane` read from `partition`.
    pub(crate) fn push(
        &mut self,
        partition: i32,
        lane: Lane,
        offset: i64,
        ts: i64,
        item: T,
    ) -> Pushed {
        let pair = self.pair(partition, lane);
        if offset < pair.next {
            return Pushed::Repeat;
        }
        pair.next = offset + 1;
        pair.marked = false;
        pair.given_up = false;
        pair.queue.push_back((ts, offset, item));
        Pushed::Queued
    }

    /// A watermark read from `partition`.
    pub(crate) fn mark(&mut self, partition: i32, marks: &[LaneMark]) {
        for m in marks {
            let pair = self.pair(partition, m.lane);
            if m.next >= pair.next {
                pair.marked = true;
                pair.given_up = false;
                pair.next = m.next;
            }
            self.clock = self.clock.max(m.clock);
        }
    }

    /// The oldest head (partition, lane, offset, event time, item), if no pair could
    /// still deliver something older. `read_to_end(p)`: the owner's consumer has read
    /// partition `p` to its end.
    pub(crate) fn pop(
        &mut self,
        now: Instant,
        read_to_end: impl Fn(i32) -> bool,
    ) -> Option<Head<T>> {
        // Oldest first; ties by partition, then lane: the same order on every run.
        let (_, partition, lane) = self
            .pairs
            .iter()
            .filter_map(|(&(p, l), pair)| pair.queue.front().map(|&(ts, _, _)| (ts, p, l)))
            .min()?;
        let key = (partition, lane);
        let mut held = false;
        for (&(partition, _), pair) in self.pairs.iter_mut() {
            if !pair.queue.is_empty() || pair.given_up || (pair.marked && read_to_end(partition)) {
                pair.blocking_since = None;
                continue;
            }
            let since = *pair.blocking_since.get_or_insert(now);
            if now.saturating_duration_since(since) < self.wait {
                held = true;
            } else {
                pair.given_up = true;
                pair.blocking_since = None;
                self.gave_up += 1;
            }
        }
        if held {
            return None;
        }
        let pair = self.pairs.get_mut(&key).expect("the head's pair");
        let (ts, offset, item) = pair.queue.pop_front().expect("a head");
        Some(Head {
            partition,
            lane,
            offset,
            ts,
            item,
        })
    }

    /// The greatest lane clock seen in watermarks.
    pub(crate) fn clock(&self) -> Option<i64> {
        self.clock
    }

    /// How often an empty pair was given up on after the wait.
    pub(crate) fn gave_up(&self) -> u64 {
        self.gave_up
    }

    /// Sightings queued, over every pair.
    pub(crate) fn len(&self) -> usize {
        self.pairs.values().map(|p| p.queue.len()).sum()
    }

    /// Partitions no longer owned: their pairs go, queued sightings with them (the next
    /// owner reads them from the committed offsets).
    pub(crate) fn forget(&mut self, partitions: &[i32]) {
        self.pairs.retain(|(p, _), _| !partitions.contains(p));
        for p in partitions {
            self.partitions.remove(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::core::model::Stream;

    fn lane(p: i32) -> Lane {
        Lane {
            stream: Stream::Camera,
            partition: p,
        }
    }

    fn mark(l: i32, next: i64, clock: i64) -> LaneMark {
        LaneMark {
            lane: lane(l),
            next,
            clock: Some(clock),
        }
    }

    #[test]
    fn a_head_waits_for_a_lane_whose_batch_has_no_watermark_yet() {
        let t0 = Instant::now();
        let mut m = LaneMerge::new(Duration::from_secs(1));
        m.assign(&[0], &[lane(1), lane(2)]);
        m.push(0, lane(1), 0, 100, "a");
        m.push(0, lane(2), 0, 50, "b");
        m.mark(0, &[mark(1, 1, 100), mark(2, 1, 50)]);
        assert_eq!(m.pop(t0, |_| true).map(|h| h.item), Some("b"));
        // Lane 2's next sighting, without its watermark: lane 1's head must wait.
        m.push(0, lane(2), 1, 70, "c");
        assert_eq!(m.pop(t0, |_| true).map(|h| h.item), Some("c"));
        assert_eq!(m.pop(t0, |_| true), None, "lane 2's batch may go on");
        m.mark(0, &[mark(2, 2, 70)]);
        assert_eq!(m.pop(t0, |_| true).map(|h| h.item), Some("a"));
        assert_eq!(m.pop(t0, |_| true), None);
    }

    #[test]
    fn a_partition_behind_its_end_holds_heads_for_the_wait_only() {
        let t0 = Instant::now();
        let mut m = LaneMerge::new(Duration::from_secs(1));
        m.assign(&[0, 1], &[lane(1)]);
        m.push(0, lane(1), 0, 100, "a");
        m.mark(0, &[mark(1, 1, 100)]);
        m.mark(1, &[mark(1, 1, 100)]);
        let behind = |p: i32| p != 1;
        assert_eq!(
            m.pop(t0, behind),
            None,
            "partition 1 may hold something older"
        );
        assert_eq!(m.pop(t0 + Duration::from_millis(900), behind), None);
        let late = t0 + Duration::from_millis(1_100);
        assert_eq!(m.pop(late, behind).map(|h| h.item), Some("a"));
        assert_eq!(m.gave_up(), 1);
        m.push(0, lane(1), 1, 200, "b");
        m.mark(0, &[mark(1, 2, 200)]);
        assert_eq!(
            m.pop(late, behind).map(|h| h.item),
            Some("b"),
            "given up: it holds nothing"
        );
        m.mark(1, &[mark(1, 2, 200)]);
        m.push(0, lane(1), 2, 300, "c");
        m.mark(0, &[mark(1, 3, 300)]);
        assert_eq!(
            m.pop(late, behind),
            None,
            "marked again: it holds heads again"
        );
    }

    #[test]
    fn an_owned_partition_that_has_delivered_nothing_holds_heads() {
        let t0 = Instant::now();
        let mut m = LaneMerge::new(Duration::from_secs(1));
        m.assign(&[0, 1], &[lane(1), lane(2)]);
        m.push(0, lane(1), 0, 100, "a");
        m.mark(0, &[mark(1, 1, 100), mark(2, 0, 0)]);
        assert_eq!(m.pop(t0, |_| true), None, "partition 1 is unknown yet");
        m.mark(1, &[mark(1, 1, 100), mark(2, 0, 0)]);
        assert_eq!(m.pop(t0, |_| true).map(|h| h.item), Some("a"));
    }

    #[test]
    fn a_revoked_partition_holds_nothing_and_the_clock_follows_the_marks() {
        let t0 = Instant::now();
        let mut m = LaneMerge::new(Duration::from_secs(1));
        m.assign(&[0, 1], &[lane(1)]);
        m.push(0, lane(1), 0, 100, "a");
        m.mark(0, &[mark(1, 1, 100)]);
        assert_eq!(m.pop(t0, |_| true), None, "partition 1 is not known yet");
        m.forget(&[1]);
        assert_eq!(m.pop(t0, |_| true).map(|h| h.item), Some("a"));
        m.mark(0, &[mark(1, 1, 250)]);
        assert_eq!(m.clock(), Some(250));
    }

    #[test]
    fn a_repeat_of_an_at_least_once_writer_is_dropped() {
        let mut m = LaneMerge::new(Duration::ZERO);
        assert_eq!(m.push(0, lane(1), 5, 100, ()), Pushed::Queued);
        assert_eq!(m.push(0, lane(1), 5, 100, ()), Pushed::Repeat);
        assert_eq!(m.push(0, lane(1), 4, 90, ()), Pushed::Repeat);
        assert_eq!(m.push(0, lane(1), 6, 110, ()), Pushed::Queued);
        assert_eq!(m.len(), 2);
    }

    /// The offline k-way merge of complete pair sequences: the order the merge must
    /// give whatever the interleaving.
    fn offline(seqs: &BTreeMap<(i32, Lane), Vec<(i64, i64)>>) -> Vec<(i32, Lane, i64)> {
        let mut heads: BTreeMap<(i32, Lane), usize> = seqs.keys().map(|k| (*k, 0)).collect();
        let mut out = Vec::new();
        loop {
            let best = heads
                .iter()
                .filter_map(|(k, &i)| seqs[k].get(i).map(|&(ts, o)| ((ts, k.0, k.1), o, *k)))
                .min_by_key(|(rank, _, _)| *rank);
            let Some((_, o, k)) = best else {
                return out;
            };
            *heads.get_mut(&k).unwrap() += 1;
            out.push((k.0, k.1, o));
        }
    }

    proptest! {
        /// Writers route lanes to partitions in batches, each followed by watermarks;
        /// the owner reads the partitions in arbitrary chunks. With nothing given up
        /// (the wait is long), the merge gives the offline merge of the pairs.
        #[test]
        fn any_interleaving_gives_the_offline_merge(
            records in proptest::collection::vec((0i32..3, 0i32..2, 0i64..40), 1..120),
            batch in 1usize..10,
            chunks in proptest::collection::vec(0usize..2, 1..400),
        ) {
            // records: (lane, partition, ts jitter) in each lane's offset order.
            let mut next: BTreeMap<i32, i64> = BTreeMap::new();
            let mut clock: BTreeMap<i32, i64> = BTreeMap::new();
            let mut partitions: [Vec<Rec>; 2] = [Vec::new(), Vec::new()];
            let mut seqs: BTreeMap<(i32, Lane), Vec<(i64, i64)>> = BTreeMap::new();
            #[derive(Clone)]
            enum Rec { S(i32, i64, i64), W(Vec<LaneMark>) }
            for (i, &(l, p, jitter)) in records.iter().enumerate() {
                let o = next.entry(l).or_default();
                let ts = i as i64 * 10 + jitter; // mostly ascending, with disorder
                partitions[p as usize].push(Rec::S(l, *o, ts));
                seqs.entry((p, lane(l))).or_default().push((ts, *o));
                *o += 1;
                let c = clock.entry(l).or_insert(ts);
                *c = (*c).max(ts);
                if (i + 1) % batch == 0 || i + 1 == records.len() {
                    // Every lane the writers read, idle ones too (their heartbeat).
                    let marks: Vec<LaneMark> = (0..3)
                        .map(|l| LaneMark {
                            lane: lane(l),
                            next: next.get(&l).copied().unwrap_or(0),
                            clock: clock.get(&l).copied(),
                        })
                        .collect();
                    for part in &mut partitions {
                        part.push(Rec::W(marks.clone()));
                    }
                }
            }
            let t0 = Instant::now();
            let mut m = LaneMerge::new(Duration::from_secs(3600));
            m.assign(&[0, 1], &[lane(0), lane(1), lane(2)]);
            let mut read = [0usize, 0usize];
            let mut out = Vec::new();
            let mut step = 0;
            while read[0] < partitions[0].len() || read[1] < partitions[1].len() {
                let p = chunks[step % chunks.len()];
                step += 1;
                let p = if read[p] < partitions[p].len() { p } else { 1 - p };
                match partitions[p][read[p]].clone() {
                    Rec::S(l, o, ts) => { m.push(p as i32, lane(l), o, ts, ()); }
                    Rec::W(marks) => m.mark(p as i32, &marks),
                }
                read[p] += 1;
                let ends = read;
                let lens = [partitions[0].len(), partitions[1].len()];
                while let Some(h) = m.pop(t0, |q| ends[q as usize] == lens[q as usize]) {
                    out.push((h.partition, h.lane, h.offset));
                }
            }
            prop_assert_eq!(m.len(), 0, "everything released at the end");
            prop_assert_eq!(m.gave_up(), 0);
            prop_assert_eq!(out, offline(&seqs));
        }
    }
}
