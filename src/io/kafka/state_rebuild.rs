//! Rebuilding detector state from the input log, with output suppressed.
//!
//! The engine is one state machine per process. When the assignment changes (start-up,
//! rebalance) or open work is thrown away (aborted transaction, failed delivery), a
//! fresh engine is fed the input of the last `processing.state_rebuild_window_s`:
//!
//! - every assigned group partition from the first offset at or after `now − window`
//!   up to (not including) its committed offset — the records whose output is already
//!   out (committed) and must not be produced again;
//! - every partition of the global streams (`patrol-positions`, `dispatch-acks`) over
//!   the same window (dispatch state — which unit holds which alert — needs the positions
//!   and answers that were current when those alerts were raised), up to the offsets
//!   recorded with the committed offsets: exactly what the committed output had seen.
//!   Without such a record (a first start, offsets committed by an older version) a
//!   global partition is replayed up to the time of the first record the live consumers
//!   will read.
//!
//! The partitions are merged by event time with the live loop's own merge (merge.rs):
//! a k-way merge with bounded per-partition lanes (a partition is paused when its lane
//! is full), because the engine drops records more than `time.allowed_lateness_s`
//! behind its clock: reading one partition after another would push the clock to the
//! end of the first and drop most of the rest as late, and another order than the live
//! one would rebuild another state (a record the live loop applied in time could be
//! late here). The merge runs patient here: an empty partition that is not at its end
//! holds the others for as long as it takes (its end is known, so none is looked up
//! again), until it delivers, reaches its end or stalls. Finally the clock advances to the one recorded with the
//! committed offsets, so timers whose output was committed (an idle advance) do not fire
//! again. The cost and the limits are in docs/KAFKA_RUNTIME.md.
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::broker::{Fetched, ListAt, Polled, Reader};
use super::merge::{Merge, Pushed, Reading};
use super::sink::PartitionKey;
use crate::core::model::{DlqSource, EventTime, Stream};
use crate::io::clock::Clock;
use crate::io::pipeline::{Decoded, Pipeline, Produced};

const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
/// A partition's lane is paused at this many records and resumed at half.
const QUEUE_HIGH: usize = 20_000;
/// A partition that neither delivers nor reaches its end for this long is given up (a
/// transactional input whose last transaction never completes keeps its end out of
/// reach under read_committed).
const STALL_LIMIT: Duration = Duration::from_secs(20);
/// The group consumer is polled this often during a long rebuild, so that the group
/// does not consider this member dead (max.poll.interval.ms).
const KEEPALIVE_EVERY: Duration = Duration::from_millis(500);

/// An assigned group partition and the offset the live consumer resumes at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupPartition {
    pub stream: Stream,
    pub topic: String,
    pub partition: i32,
    /// The committed offset (or, without one, where `auto.offset.reset` starts).
    pub live: i64,
}

/// A partition of a global stream, read in full by every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GlobalPartition {
    pub stream: Stream,
    pub topic: String,
    pub partition: i32,
    pub cut: GlobalCut,
}

/// Where the replay of a global partition ends, i.e. where the live consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalCut {
    /// The first offset the committed output had not seen, as the commit recorded it.
    At(i64),
    /// No group partition has ever been committed: no output exists that the rebuilt
    /// state must match, so nothing is replayed and the whole window is applied live,
    /// merged with the group partitions by event time. (Cut by time instead, a global
    /// stream produced before the group's backlog was replayed whole, and the engine
    /// clock it left behind made the group's records late.)
    Nothing,
    /// Committed without a record of the progress (by an older version or another
    /// tool): cut at the Kafka time of the first record the live group consumer reads.
    ByTime,
}

pub(crate) struct RebuildRequest {
    pub group: Vec<GroupPartition>,
    pub globals: Vec<GlobalPartition>,
    /// Start of the window, wall-clock epoch ms.
    pub since_ms: i64,
    /// The smallest engine clock recorded with the committed offsets.
    pub clock_floor: Option<EventTime>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RebuildOutcome {
    /// Where the live side consumer resumes, per global partition.
    pub global_resume: Vec<(PartitionKey, i64)>,
    /// Every partition's end when the rebuild looked it up (read_committed: the last
    /// stable offset): the live merge counts a lane as behind until it has read that far,
    /// before its consumer has fetched anything (merge.rs).
    pub ends: Vec<(PartitionKey, i64)>,
    pub replayed: u64,
    pub elapsed: Duration,
    /// The rebuild stopped early because `keepalive` asked it to (shutdown).
    pub interrupted: bool,
}

struct Rec {
    /// Kafka timestamp: the time-bounded global replay stops at the first live record's.
    kafka_ts: i64,
    offset: i64,
    decoded: Decoded,
}

struct Source {
    stream: Stream,
    topic: String,
    partition: i32,
    /// Group partitions: the first offset not to replay. Global streams: none.
    live: Option<i64>,
    /// Global partitions whose committed progress is known: `end` is that progress, the
    /// first offset not to replay. Otherwise they are cut by time (the first live group
    /// record's).
    exact: bool,
    /// The next offset this source will read.
    next: i64,
    /// Where the replay stops: the partition's end when the rebuild started
    /// (read_committed: the last stable offset; records appended later are for the live
    /// consumers), or for a global partition the recorded progress, if less.
    end: i64,
    /// The partition's end when the rebuild started, whatever the replay's own `end`.
    log_end: i64,
    /// Nothing more will be read from it.
    done: bool,
    /// Group partitions: the Kafka timestamp of the first live record, once seen.
    live_ts: Option<i64>,
    /// Global partitions cut by time: the first offset left to the live consumer.
    cut_at: Option<i64>,
    /// Kafka timestamp of the last record read.
    last_ts: i64,
    progress_at: Instant,
}

impl Source {
    fn is_group(&self) -> bool {
        self.live.is_some()
    }

    /// A global partition cut by time rather than by a recorded offset.
    fn time_bounded(&self) -> bool {
        self.live.is_none() && !self.exact
    }

    /// Nothing more is read from it.
    fn finish(&mut self, consumer: &dyn Reader) {
        self.done = true;
        consumer.pause(&self.topic, self.partition);
    }
}

/// Feeds `pipeline` (whose output is discarded) and returns where the live side
/// consumer resumes. `consumer` is a fresh group-less consumer used for this rebuild
/// only: librdkafka keeps pauses and cached watermarks across assignments, which would
/// leak from one rebuild into the next. `keepalive` is called now and then; returning
/// false stops early.
pub(crate) fn rebuild(
    consumer: &dyn Reader,
    req: &RebuildRequest,
    pipeline: &mut Pipeline,
    keepalive: &mut dyn FnMut() -> bool,
    clock: &dyn Clock,
) -> anyhow::Result<RebuildOutcome> {
    let started = clock.now();
    let mut sources = plan_sources(consumer, req, clock)?;
    let mut outcome = RebuildOutcome::default();
    let assignment: Vec<(&str, i32, i64)> = sources
        .iter()
        .map(|s| (s.topic.as_str(), s.partition, s.next))
        .collect();
    consumer
        .assign(&assignment)
        .context("assigning the rebuild consumer")?;
    for s in &sources {
        tracing::debug!(topic = %s.topic, partition = s.partition, start = s.next, live = ?s.live, end = s.end, "rebuild source");
    }
    for s in sources.iter().filter(|s| s.done) {
        consumer.pause(&s.topic, s.partition);
    }

    // Wait limits and lateness do not matter to a patient merge whose ends are known.
    let mut merge: Merge<usize, Rec> = Merge::new(QUEUE_HIGH, Duration::ZERO, Duration::ZERO, 0);
    merge.reset(sources.iter().enumerate().map(|(i, s)| (i, s.next, s.end)));
    merge.ends_known();
    let mut scratch: Vec<Produced> = Vec::new();
    let mut last_keepalive = clock.now();
    let mut since_end_check = 0usize;
    let mut bound = None;
    loop {
        release(
            &mut merge,
            &sources,
            pipeline,
            &mut scratch,
            &mut outcome,
            clock.now(),
        );
        if merge.is_empty() && sources.iter().all(|s| s.done) {
            break;
        }
        if clock.now() - last_keepalive >= KEEPALIVE_EVERY {
            for (i, s) in sources.iter().enumerate().filter(|(_, s)| !s.done) {
                tracing::debug!(topic = %s.topic, partition = s.partition, next = s.next, end = s.end, queued = merge.len_of(i), "rebuild waiting");
            }
            last_keepalive = clock.now();
            if !keepalive() {
                outcome.interrupted = true;
                return Ok(outcome);
            }
        }
        let polled = consumer.poll(Duration::from_millis(20), &mut |m| {
            route(
                &mut sources,
                &mut merge,
                bound,
                consumer,
                m,
                pipeline,
                clock.now(),
            );
        });
        let now_bound = patrol_bound(&sources);
        if now_bound != bound {
            bound = now_bound;
            cut_by_time(&mut sources, &mut merge, bound, consumer);
        }
        let idle = match polled {
            Polled::Record => {
                since_end_check += 1;
                false
            }
            Polled::Idle => true,
            Polled::Failed(e) => {
                tracing::warn!(error = %e, "reading the rebuild window");
                true
            }
        };
        if idle || since_end_check >= 4096 {
            since_end_check = 0;
            check_ends(&mut sources, &merge, consumer, clock.now());
        }
        for i in merge.resumable() {
            let s = &sources[i];
            if !s.done {
                consumer.resume(&s.topic, s.partition);
            }
        }
    }
    // Timers whose output the previous owner committed fire here, silently.
    if let Some(floor) = req.clock_floor {
        let now = clock.wall_ms();
        pipeline.advance_to(floor, now, &mut scratch);
        scratch.clear();
    }
    outcome.global_resume = sources
        .iter()
        .filter(|s| !s.is_group())
        .map(|s| ((s.stream, s.partition), s.cut_at.unwrap_or(s.next)))
        .collect();
    outcome.ends = sources
        .iter()
        .map(|s| ((s.stream, s.partition), s.log_end))
        .collect();
    outcome.elapsed = clock.now() - started;
    Ok(outcome)
}

/// Resolves each partition's first offset in the window.
fn plan_sources(
    consumer: &dyn Reader,
    req: &RebuildRequest,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<Source>> {
    // Two batched ListOffsets requests: the first offset at or after the window start,
    // and the current end (under read_committed the last stable offset).
    let partitions: Vec<(&str, i32)> = req
        .group
        .iter()
        .map(|g| (g.topic.as_str(), g.partition))
        .chain(req.globals.iter().map(|g| (g.topic.as_str(), g.partition)))
        .collect();
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let starts = consumer
        .list_offsets(&partitions, ListAt::Time(req.since_ms), QUERY_TIMEOUT)
        .context("looking up the offsets at the start of the rebuild window")?;
    let ends = consumer
        .list_offsets(&partitions, ListAt::End, QUERY_TIMEOUT)
        .context("looking up the end offsets")?;
    let index = |topic: &str, partition: i32| {
        partitions
            .iter()
            .position(|&(t, p)| t == topic && p == partition)
            .expect("asked for")
    };
    // `None`: no record at or after the window start, the window is empty.
    let first_in_window = |topic: &str, partition: i32| -> anyhow::Result<Option<i64>> {
        Ok(starts[index(topic, partition)])
    };
    let end_of = |topic: &str, partition: i32| -> anyhow::Result<i64> {
        ends[index(topic, partition)]
            .with_context(|| format!("no end offset for {topic}[{partition}]"))
    };
    let now = clock.now();
    let mut sources = Vec::new();
    for g in &req.group {
        let start = first_in_window(&g.topic, g.partition)?
            .unwrap_or(g.live)
            .min(g.live);
        let end = end_of(&g.topic, g.partition)?;
        sources.push(Source {
            stream: g.stream,
            topic: g.topic.clone(),
            partition: g.partition,
            live: Some(g.live),
            exact: false,
            next: start,
            end,
            log_end: end,
            // Nothing to read: the window is empty and no live record exists yet.
            done: start >= end,
            live_ts: None,
            cut_at: None,
            last_ts: i64::MIN,
            progress_at: now,
        });
    }
    for g in &req.globals {
        // A recorded offset is where the replay ends (and the live consumer starts);
        // before the window's start, nothing is replayed.
        let log_end = end_of(&g.topic, g.partition)?;
        let window = first_in_window(&g.topic, g.partition)?;
        let end = match g.cut {
            GlobalCut::At(u) => u.min(log_end),
            GlobalCut::Nothing => window.unwrap_or(log_end).min(log_end),
            GlobalCut::ByTime => log_end,
        };
        let start = window.unwrap_or(end).min(end);
        sources.push(Source {
            stream: g.stream,
            topic: g.topic.clone(),
            partition: g.partition,
            live: None,
            exact: g.cut != GlobalCut::ByTime,
            next: start,
            end,
            log_end,
            // Nothing to read: the window is empty and no live record exists yet.
            done: start >= end,
            live_ts: None,
            cut_at: None,
            last_ts: i64::MIN,
            progress_at: now,
        });
    }
    Ok(sources)
}

fn route(
    sources: &mut [Source],
    merge: &mut Merge<usize, Rec>,
    bound: Option<i64>,
    consumer: &dyn Reader,
    m: Fetched<'_>,
    pipeline: &mut Pipeline,
    now: Instant,
) {
    let Some(i) = sources
        .iter()
        .position(|s| s.partition == m.partition && s.topic == m.topic)
    else {
        return;
    };
    let s = &mut sources[i];
    if s.done || m.offset < s.next {
        // Past the end we settled on, or a duplicate after a pause: the live consumer
        // reads it.
        return;
    }
    if s.exact && m.offset >= s.end {
        // Past the recorded progress: the live consumer applies it.
        s.finish(consumer);
        return;
    }
    let ts = m.kafka_ts.unwrap_or(s.last_ts);
    if s.time_bounded() && bound.is_some_and(|b| ts >= b) {
        // In step with the live group records: the live consumer applies it.
        s.cut_at = Some(m.offset);
        s.finish(consumer);
        return;
    }
    s.next = m.offset + 1;
    s.progress_at = now;
    if let Some(live) = s.live {
        if m.offset >= live {
            // The first live record: not replayed, but its time bounds the patrol replay.
            s.live_ts = Some(ts);
            s.finish(consumer);
            return;
        }
    }
    s.last_ts = s.last_ts.max(ts);
    // The record's Kafka time stands in for the wall clock of its first processing in
    // the future-skew check, so a record refused then is refused now.
    let decoded = pipeline.decode(s.stream, m.payload, Some(ts));
    let rec = Rec {
        kafka_ts: ts,
        offset: m.offset,
        decoded,
    };
    // A refused record (no event time) stays right behind its predecessor.
    let key = rec.decoded.ts().map(EventTime::ms);
    if merge.push(i, m.offset, key, rec) == Pushed::QueuedFull {
        consumer.pause(&s.topic, s.partition);
    }
}

/// Marks partitions that reached their end (librdkafka's cached high watermark) or their
/// committed offset, or stalled.
fn check_ends(
    sources: &mut [Source],
    merge: &Merge<usize, Rec>,
    consumer: &dyn Reader,
    now: Instant,
) {
    // The consumer's own position counts too: it moves past transaction markers, which
    // occupy offsets but are never delivered.
    let positions = consumer.positions();
    for (i, s) in sources.iter_mut().enumerate().filter(|(_, s)| !s.done) {
        let position = positions
            .iter()
            .find(|(t, p, _)| *t == s.topic && *p == s.partition)
            .map_or(-1, |(_, _, o)| *o);
        if s.next.max(position) >= s.end {
            s.finish(consumer);
        } else if merge.len_of(i) == 0 && now - s.progress_at >= STALL_LIMIT {
            tracing::warn!(
                topic = %s.topic,
                partition = s.partition,
                next = s.next,
                end = s.end,
                "rebuild: partition made no progress for {STALL_LIMIT:?}; going on without the rest of it"
            );
            s.finish(consumer);
        }
    }
}

/// A global partition cut by time ends at the first record at or after `bound`: what
/// it has queued from there on is the live consumer's.
fn cut_by_time(
    sources: &mut [Source],
    merge: &mut Merge<usize, Rec>,
    bound: Option<i64>,
    consumer: &dyn Reader,
) {
    let Some(b) = bound else {
        return;
    };
    for (i, s) in sources.iter_mut().enumerate() {
        if !s.time_bounded() {
            continue;
        }
        if let Some(first) = merge.cut(i, |r| r.kafka_ts < b).first() {
            s.cut_at = Some(first.offset);
            if !s.done {
                s.finish(consumer);
            }
        }
    }
}

/// A global partition without recorded progress stops at the first live group record's
/// time (the earliest of them): later records are for the live consumer, in step with
/// the group records.
fn patrol_bound(sources: &[Source]) -> Option<i64> {
    sources.iter().filter_map(|s| s.live_ts).min()
}

/// Applies queued records in event-time order for as long as no partition that could
/// still deliver an earlier record is waiting for data.
fn release(
    merge: &mut Merge<usize, Rec>,
    sources: &[Source],
    pipeline: &mut Pipeline,
    scratch: &mut Vec<Produced>,
    outcome: &mut RebuildOutcome,
    now: Instant,
) {
    // A finished partition holds nothing up; the others are behind until they are.
    let mut reading = |i: usize| Reading {
        position: if sources[i].done { i64::MAX } else { -1 },
        high: None,
        drained_at: None,
    };
    while let Some((i, rec)) = merge.pop(now, true, &mut reading) {
        let s = &sources[i];
        let source = DlqSource {
            topic: Some(s.topic.clone()),
            partition: Some(s.partition),
            offset: Some(rec.offset),
            line: None,
        };
        pipeline.apply(s.stream, rec.decoded, source, rec.kafka_ts, scratch);
        scratch.clear();
        outcome.replayed += 1;
    }
}

#[cfg(test)]
mod tests {
    //! The rebuild on the in-memory broker (broker/memory.rs), which hands records over
    //! in batches of 100 per partition as librdkafka does; time is the test's clock.
    use std::sync::Arc;

    use super::*;
    use crate::config::defaults;
    use crate::core::engine::Engine;
    use crate::core::roads::{LoadOptions, RoadNetwork};
    use crate::io::kafka::broker::memory::MemoryBroker;

    const BASE: i64 = 1_800_000_000_000;
    const PATROL: &str = "patrol-positions";
    const WEATHER: &str = "weather-observations";

    fn pipeline() -> Pipeline {
        let doc = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
            "geometry":{"type":"LineString","coordinates":[[105.0,27.0],[105.1,27.0]]},
            "properties":{"kind":"carriageway","road_id":"G76","name":"test","direction":"up",
            "stake_start_m":1000000,"stake_end_m":1009900,"width_m":15}}]}"#;
        let net = RoadNetwork::from_geojson(doc.as_bytes(), &LoadOptions::default()).unwrap();
        let settings = defaults();
        Pipeline::new(
            &settings,
            Engine::new(settings.engine.clone(), Arc::new(net)),
            None,
        )
    }

    /// A patrol position at event (and Kafka) time `ms`.
    fn position(broker: &MemoryBroker, topic: &str, partition: i32, ms: i64) -> i64 {
        let ts = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let json = format!(
            r#"{{"unit_id":"P-{partition}","ts":"{ts}","lon":105.05,"lat":27.0,"status":"available","speed_kmh":60.0}}"#
        );
        broker.append(topic, partition, ms, json.as_bytes())
    }

    /// Two partitions of five minutes each, interleaved by half a second: applied in
    /// the order the reader hands them over (100 s of one, then 100 s of the other),
    /// most of the second would be late.
    fn two_partitions(broker: &MemoryBroker, topic: &str) {
        for i in 0..300 {
            position(broker, topic, 0, BASE + i * 1_000);
            position(broker, topic, 1, BASE + i * 1_000 + 500);
        }
    }

    fn group(topic: &str, partition: i32, live: i64) -> GroupPartition {
        GroupPartition {
            stream: Stream::Patrol,
            topic: topic.to_owned(),
            partition,
            live,
        }
    }

    fn run(broker: &MemoryBroker, req: &RebuildRequest, pipeline: &mut Pipeline) -> RebuildOutcome {
        let reader = broker.reader();
        rebuild(&reader, req, pipeline, &mut || true, &*broker.clock).unwrap()
    }

    #[test]
    fn the_window_is_replayed_in_event_time_order_up_to_the_committed_offsets() {
        let broker = MemoryBroker::new();
        // The group's partitions (a stream of the group in production; the rebuild
        // treats every stream alike).
        two_partitions(&broker, WEATHER);
        let req = RebuildRequest {
            group: vec![group(WEATHER, 0, 250), group(WEATHER, 1, 200)],
            globals: vec![],
            since_ms: BASE + 10_000,
            clock_floor: None,
        };
        let mut p = pipeline();
        let outcome = run(&broker, &req, &mut p);
        assert!(!outcome.interrupted);
        // From the first record at or after the window start (offset 10 of each) up to,
        // not including, the committed offsets.
        assert_eq!(outcome.replayed, 240 + 190);
        assert_eq!(p.engine().stats().late_dropped, 0, "applied out of order");
        assert_eq!(p.engine().clock(), Some(EventTime::from_ms(BASE + 249_000)));
        let mut ends = outcome.ends.clone();
        ends.sort();
        assert_eq!(
            ends,
            vec![((Stream::Patrol, 0), 300), ((Stream::Patrol, 1), 300)]
        );
        assert!(outcome.global_resume.is_empty());
    }

    #[test]
    fn global_partitions_end_at_their_recorded_progress_or_at_the_first_live_record() {
        let broker = MemoryBroker::new();
        two_partitions(&broker, PATROL);
        for i in 0..100 {
            position(&broker, WEATHER, 0, BASE + i * 1_000 + 250);
        }
        let global = |partition, cut| GlobalPartition {
            stream: Stream::Patrol,
            topic: PATROL.to_owned(),
            partition,
            cut,
        };
        let req = RebuildRequest {
            group: vec![group(WEATHER, 0, 60)],
            globals: vec![global(0, GlobalCut::At(40)), global(1, GlobalCut::ByTime)],
            since_ms: BASE,
            clock_floor: None,
        };
        let mut p = pipeline();
        let outcome = run(&broker, &req, &mut p);
        let mut resume = outcome.global_resume.clone();
        resume.sort();
        // Partition 0 exactly where the committed output had seen it; partition 1 at
        // the first record not older than the first live group record (offset 60 of
        // the group partition, Kafka time BASE + 60.25 s: partition 1's offset 60 is
        // at BASE + 60.5 s).
        assert_eq!(
            resume,
            vec![((Stream::Patrol, 0), 40), ((Stream::Patrol, 1), 60)]
        );
        assert_eq!(outcome.replayed, 60 + 40 + 60);
        assert_eq!(p.engine().stats().late_dropped, 0);
    }

    #[test]
    fn a_global_partition_cut_by_time_ends_at_its_first_record_at_the_bound() {
        let broker = MemoryBroker::new();
        for i in 0..100 {
            position(&broker, WEATHER, 0, BASE + i * 1_000 + 250);
        }
        for i in 0..60 {
            position(&broker, PATROL, 0, BASE + i * 1_000 + 500);
        }
        // Kafka timestamps out of order (producers' clocks): offset 60 is past the
        // first live group record's time (BASE + 60.25 s), offset 61 before it. The
        // live consumer resumes at 60 and applies 61, so the replay must not.
        position(&broker, PATROL, 0, BASE + 61_000);
        position(&broker, PATROL, 0, BASE + 60_000);
        for i in 62..100 {
            position(&broker, PATROL, 0, BASE + i * 1_000 + 500);
        }
        let req = RebuildRequest {
            group: vec![group(WEATHER, 0, 60)],
            globals: vec![GlobalPartition {
                stream: Stream::Patrol,
                topic: PATROL.to_owned(),
                partition: 0,
                cut: GlobalCut::ByTime,
            }],
            since_ms: BASE,
            clock_floor: None,
        };
        let mut p = pipeline();
        let outcome = run(&broker, &req, &mut p);
        assert_eq!(outcome.global_resume, vec![((Stream::Patrol, 0), 60)]);
        assert_eq!(outcome.replayed, 60 + 60);
    }

    #[test]
    fn a_global_stream_of_a_never_committed_group_is_not_replayed() {
        let broker = MemoryBroker::new();
        two_partitions(&broker, PATROL);
        let req = RebuildRequest {
            group: vec![],
            globals: vec![GlobalPartition {
                stream: Stream::Patrol,
                topic: PATROL.to_owned(),
                partition: 0,
                cut: GlobalCut::Nothing,
            }],
            since_ms: BASE + 100_000,
            clock_floor: None,
        };
        let mut p = pipeline();
        let outcome = run(&broker, &req, &mut p);
        assert_eq!(outcome.replayed, 0);
        // The live consumer applies the whole window, merged with the group's records.
        assert_eq!(outcome.global_resume, vec![((Stream::Patrol, 0), 100)]);
        assert_eq!(p.engine().clock(), None);
    }

    #[test]
    fn a_partition_that_delivers_nothing_holds_the_rest_until_the_stall_limit_only() {
        let broker = MemoryBroker::new();
        two_partitions(&broker, WEATHER);
        broker.silence(WEATHER, 1, true);
        let req = RebuildRequest {
            group: vec![group(WEATHER, 0, 300), group(WEATHER, 1, 300)],
            globals: vec![],
            since_ms: BASE,
            clock_floor: None,
        };
        let mut p = pipeline();
        let before = broker.clock.now();
        let outcome = run(&broker, &req, &mut p);
        let waited = broker.clock.now() - before;
        assert!(
            (STALL_LIMIT..STALL_LIMIT + Duration::from_secs(1)).contains(&waited),
            "{waited:?}"
        );
        assert_eq!(
            outcome.replayed, 300,
            "the rest of partition 0, after the wait"
        );
        assert_eq!(p.engine().stats().late_dropped, 0);
    }

    #[test]
    fn the_clock_advances_to_the_committed_floor_and_a_stop_request_interrupts() {
        let broker = MemoryBroker::new();
        two_partitions(&broker, WEATHER);
        let mut req = RebuildRequest {
            group: vec![group(WEATHER, 0, 10)],
            globals: vec![],
            since_ms: BASE,
            clock_floor: Some(EventTime::from_ms(BASE + 3_600_000)),
        };
        let mut p = pipeline();
        run(&broker, &req, &mut p);
        assert_eq!(
            p.engine().clock(),
            Some(EventTime::from_ms(BASE + 3_600_000))
        );

        // A partition that never delivers keeps the rebuild waiting; the keepalive is
        // asked every half second and a stop request ends it early.
        broker.silence(WEATHER, 0, true);
        req.clock_floor = None;
        let reader = broker.reader();
        let mut asked = 0;
        let outcome = rebuild(
            &reader,
            &req,
            &mut pipeline(),
            &mut || {
                asked += 1;
                asked < 3
            },
            &*broker.clock,
        )
        .unwrap();
        assert!(outcome.interrupted);
        assert_eq!(asked, 3);
    }
}
