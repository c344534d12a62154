//! The output side of the runtime and the consumed offsets that go with it, as two sink
//! types behind one interface ([`Sink`]):
//!
//! - [`ExactlyOnce`]: one Kafka transaction per commit interval holds the alerts, the
//!   dispatches, the DLQ records *and* the consumed offsets (`send_offsets_to_transaction`),
//!   so a `read_committed` reader sees all of an interval's output or none, and the input
//!   is re-read exactly when its output was lost.
//! - [`AtLeastOnce`]: records are produced by an idempotent producer; the consumed
//!   offsets of a batch are committed only once every record the batch produced has a
//!   successful delivery report (rust-rdkafka's `examples/at_least_once.rs`).
//!
//! Both talk to Kafka only through the broker seam (`super::broker`) and read time only
//! from an injected [`Clock`], so their unit tests (tests.rs) run on an in-memory broker
//! with faults injected and time driven by the test.
//!
//! Each commit also records, in the offset metadata, the engine's event clock and how far
//! the global streams (patrol positions, acks: read in full, never committed) had been
//! applied. A rebuilt engine advances to that clock (timers fired by an idle advance,
//! whose output is committed, must not fire a second time) and replays the global
//! streams exactly to those offsets (an ack whose output is committed must not be
//! applied again; one whose output was lost must be).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::broker::{
    BrokerError, Committer, DeliveryTag, ErrorKind, OffsetCommit, Producer, ProducerStats, Report,
};
use super::startup::StreamTopics;
use crate::config::Guarantee;
use crate::core::model::{AlertKind, EventTime, Stream};
use crate::io::clock::Clock;
use crate::io::metrics::Metrics;
use crate::io::pipeline::Produced;

mod at_least_once;
mod exactly_once;
#[cfg(test)]
mod mock_cluster_tests;
#[cfg(test)]
mod tests;

pub(crate) use at_least_once::AtLeastOnce;
pub(crate) use exactly_once::ExactlyOnce;

/// How long one transactional call or flush may block before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// `init_transactions` of a replacement producer; a timeout is retried with the rebuild.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Producer replacements without a successful commit in between before the error is
/// taken as permanent and the process exits.
const MAX_REPLACEMENTS: u32 = 5;
/// A second fencing within this long of the first ends the process. A single fencing is
/// not proof of another process with our transactional id: a new transaction
/// coordinator that rolls back a transaction which outlived `transaction.timeout.ms`
/// during a failover bumps the epoch too (docs/KAFKA_RUNTIME.md, "The cluster test").
/// So the first one replaces the producer, whose `init_transactions` fences such a
/// process in turn; if there is one, it does the same, and this one is fenced again.
const FENCED_AGAIN_WITHIN: Duration = Duration::from_secs(600);

/// A consumed position: topic (as its stream) and partition.
pub(crate) type PartitionKey = (Stream, i32);

/// The committed offset metadata is capped by the broker (`offset.metadata.max.bytes`,
/// 4096 by default); past this the global offsets are left out and a rebuild falls back
/// to cutting the global streams by time.
const MAX_METADATA: usize = 3_500;

/// What a commit records besides the group offsets: the engine clock and the next offset
/// of every global-stream partition applied so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub clock: Option<EventTime>,
    pub globals: HashMap<PartitionKey, i64>,
}

/// Why the sink could not go on.
#[derive(Debug)]
pub(crate) enum SinkError {
    /// The producer cannot continue (fenced by a newer instance with the same
    /// transactional id, or another fatal librdkafka error): the process must exit.
    Fatal(anyhow::Error),
    /// The open work was dropped (transaction aborted, or a delivery failed): consumers
    /// must go back to the committed offsets and the engine be rebuilt.
    Rewind(String),
}

/// What the runtime asks of its output, under either guarantee.
pub(crate) trait Sink: Send {
    /// What both sink types share.
    fn output(&self) -> &Output;
    fn output_mut(&mut self) -> &mut Output;
    /// The next offset to read of every assigned partition, as last consumed or sought.
    fn positions(&self) -> &HashMap<PartitionKey, i64> {
        &self.output().positions
    }
    /// The position key of a group topic's partition.
    fn key_of(&self, topic: &str, partition: i32) -> Option<PartitionKey> {
        self.output().key_of(topic, partition)
    }
    /// Right after a successful [`Sink::settle`]: the offsets and progress now committed.
    fn committed(&self) -> (HashMap<PartitionKey, i64>, Progress);
    /// After a fatal error: nothing more is committed, so that closing the consumer
    /// (which runs the revoke callback) does not wait on a producer that cannot answer.
    fn disable(&mut self) {
        self.output_mut().disabled = true;
    }
    /// The work the runtime bounds (`processing.max_in_flight_records`).
    fn in_flight(&self) -> usize;
    /// How the runtime keeps [`Sink::in_flight`] bounded: `true`, by committing early
    /// (exactly-once: a full interval is committed); `false`, by pausing the input until
    /// deliveries catch up (at-least-once).
    fn bounded_by_commit(&self) -> bool;
    /// After a rebuild: the positions consumers were sought to (group partitions, and the
    /// global streams as far as the rebuilt engine has applied them), nothing in flight.
    fn reset_positions(
        &mut self,
        positions: HashMap<PartitionKey, i64>,
        globals: HashMap<PartitionKey, i64>,
    );
    /// Forgets revoked partitions (their offsets were committed, or the work aborted).
    fn forget(&mut self, revoked: &[PartitionKey]);
    /// One input record was applied; its offset is part of the next commit.
    fn consumed(&mut self, key: PartitionKey, offset: i64, clock: Option<EventTime>);
    /// The engine clock moved without a record (idle advance).
    fn clock_advanced(&mut self, clock: Option<EventTime>);
    /// A record of a global stream was applied: no offset of the group's to commit, but
    /// the next commit records how far the stream was applied, and the clock it moved.
    fn global_applied(&mut self, key: PartitionKey, offset: i64, clock: Option<EventTime>);
    /// Produces one record (inside the open transaction under exactly-once).
    fn send(&mut self, p: &Produced) -> Result<(), SinkError>;
    /// Whether the commit interval of the open work has passed.
    fn commit_due(&self) -> bool;
    /// Time left until the open work is due, for the consumer's poll timeout.
    fn until_due(&self) -> Option<Duration>;
    /// Serves delivery reports; under at-least-once commits what is fully delivered.
    fn poll(&mut self, consumer: &dyn Committer) -> Result<(), SinkError>;
    /// Commits the open work (exactly-once: the transaction with the consumed offsets;
    /// at-least-once: seals the current batch and commits what is delivered).
    fn commit(&mut self, consumer: &dyn Committer) -> Result<(), SinkError>;
    /// Before partitions are revoked or the process stops: everything consumed so far is
    /// committed (exactly-once), or flushed and committed (at-least-once), synchronously,
    /// so that the next owner starts where this one stopped. When the assignment was
    /// lost (the group moved on without us) the open transaction is aborted instead: its
    /// offsets could no longer be committed.
    fn settle(&mut self, consumer: &dyn Committer, lost: bool) -> Result<(), SinkError>;
    /// Before a rebuild that follows a rewind: drops the open work without committing any
    /// of it. Whatever was consumed since the failure must not be committed: its offsets
    /// lie past the dropped interval, whose input would then never be read again.
    fn abandon(&mut self) -> Result<(), SinkError>;
    /// Before a rebuild: replaces a producer that hit a fatal error other than fencing,
    /// and finishes an abort that timed out. `Err(Rewind)` while the broker is still
    /// away (the runtime backs off and tries again); `Err(Fatal)` when the process must
    /// exit.
    fn recover(&mut self) -> Result<(), SinkError>;
    /// The producer waits for its replacement or for an abort to finish.
    fn needs_recovery(&self) -> bool;
    fn producer_stats(&self) -> ProducerStats {
        self.output().producer.stats()
    }
    /// When the last asynchronous offset commit was sent (its callback times it).
    fn take_async_commit_sent(&mut self) -> Option<Instant>;
}

/// The sink of `guarantee` around `producer` (whose transactions, under exactly-once,
/// are initialised already).
pub(crate) fn new(
    guarantee: Guarantee,
    producer: Box<dyn Producer>,
    topics: StreamTopics,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    commit_interval: Duration,
) -> Box<dyn Sink> {
    let out = Output::new(producer, topics, metrics, clock, commit_interval);
    match guarantee {
        Guarantee::ExactlyOnce => Box::new(ExactlyOnce::new(out)),
        Guarantee::AtLeastOnce => Box::new(AtLeastOnce::new(out)),
    }
}

/// What both sink types share: the producer and its replacement after a fatal error,
/// the positions and progress to commit, the clock, the metrics.
pub(crate) struct Output {
    producer: Box<dyn Producer>,
    /// The producer hit a fatal error that is not fencing (why): it is replaced before
    /// anything else is done. Broker outages cause these: an `AddOffsetsToTxn` that was
    /// sent but died with the broker leaves the coordinator without the transaction, and
    /// librdkafka takes the coordinator's `INVALID_TXN_STATE` answer to the abort as
    /// fatal.
    broken: Option<String>,
    /// Replacements since the last successful commit.
    replacements: u32,
    /// When this process was last fenced ([`FENCED_AGAIN_WITHIN`]).
    fenced_at: Option<Instant>,
    /// A record the authorizer refused (no Write ACL): ends the process.
    denied: Option<String>,
    /// Delivery reports served while a send waited for room in the client's queue,
    /// handed out by the next [`Output::take_reports`].
    early_reports: Vec<Report>,
    topics: StreamTopics,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    commit_interval: Duration,
    /// Next offset to read, per assigned group partition.
    positions: HashMap<PartitionKey, i64>,
    /// The engine clock as of the last consumed record or idle advance.
    event_clock: Option<EventTime>,
    /// Next offset of each global-stream partition, as far as applied.
    globals: HashMap<PartitionKey, i64>,
    disabled: bool,
}

impl Output {
    fn new(
        producer: Box<dyn Producer>,
        topics: StreamTopics,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        commit_interval: Duration,
    ) -> Self {
        Output {
            producer,
            broken: None,
            replacements: 0,
            fenced_at: None,
            denied: None,
            early_reports: Vec::new(),
            topics,
            metrics,
            clock,
            commit_interval,
            positions: HashMap::new(),
            event_clock: None,
            globals: HashMap::new(),
            disabled: false,
        }
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The positions and progress as far as consumed.
    fn checkpoint(&self) -> (HashMap<PartitionKey, i64>, Progress) {
        let progress = Progress {
            clock: self.event_clock,
            globals: self.globals.clone(),
        };
        (self.positions.clone(), progress)
    }

    fn key_of(&self, topic: &str, partition: i32) -> Option<PartitionKey> {
        self.topics.stream_of(topic).map(|s| (s, partition))
    }

    /// `Err` while the process must stop (a refused write) or the producer waits for its
    /// replacement (then only `recover` may go on).
    fn usable(&self) -> Result<(), SinkError> {
        if let Some(why) = &self.denied {
            return Err(SinkError::Fatal(anyhow::anyhow!(
                "not authorized to write: {why} (docs/SECURITY.md, \"Kafka ACLs\")"
            )));
        }
        if let Some(why) = &self.broken {
            return Err(SinkError::Rewind(format!(
                "the producer is being replaced after: {why}"
            )));
        }
        Ok(())
    }

    /// The delivery reports served since the last call; a refused one is remembered.
    fn take_reports(&mut self) -> Vec<Report> {
        let mut reports = std::mem::take(&mut self.early_reports);
        reports.extend(self.producer.take_reports());
        for r in &reports {
            if let Some(f) = r.failure.as_ref().filter(|f| f.denied) {
                self.denied.get_or_insert_with(|| f.message.clone());
            }
        }
        reports
    }

    /// Waits, in 1 ms steps, until the producer has a delivery report for every record.
    /// `commit_transaction` flushes first anyway, but rust-rdkafka's flush sleeps in
    /// 100 ms polls while anything is in flight, and right after an alert something
    /// always is: commits took 100–250 ms instead of 5–25 ms.
    fn drain_in_flight(&mut self, limit: Duration) {
        let deadline = self.now() + limit;
        while self.producer.in_flight() > 0 && self.now() < deadline {
            self.producer.poll(Duration::from_millis(1));
        }
    }

    /// A fatal producer error. Fencing a second time within [`FENCED_AGAIN_WITHIN`]
    /// (another process took our transactional id) and authorisation failures end the
    /// process; any other fatal error, and a first fencing, marks the producer for
    /// replacement and rewinds (the sink type drops its open work as well).
    fn fatal(&mut self, what: &str, e: &BrokerError) -> SinkError {
        let now = self.now();
        let first_fencing = e.kind == ErrorKind::Fenced
            && self.fenced_at.map_or(true, |at| {
                now.saturating_duration_since(at) >= FENCED_AGAIN_WITHIN
            });
        if first_fencing {
            self.fenced_at = Some(now);
            tracing::warn!(
                error = %e,
                "the producer was fenced while {what}: by a transaction coordinator that rolled back a timed-out transaction, or by another process with this transactional id; replacing the producer once (fenced again within {} s, the process exits)",
                FENCED_AGAIN_WITHIN.as_secs()
            );
            self.broken = Some(format!("{what}: {e}"));
            return SinkError::Rewind(format!("fenced while {what}: {e}"));
        }
        if e.ends_the_process() {
            return SinkError::Fatal(anyhow::anyhow!(
                "fatal Kafka error while {what}: {e}{}",
                e.hint()
            ));
        }
        tracing::error!(
            error = %e,
            "fatal Kafka producer error while {what}; replacing the producer and rewinding to the committed offsets"
        );
        self.broken = Some(format!("{what}: {e}"));
        SinkError::Rewind(format!("fatal producer error while {what}: {e}"))
    }

    /// The producer's fatal error, if it has one, sorted by [`Output::fatal`].
    fn fatal_error(&mut self) -> Option<SinkError> {
        let mut e = self.producer.fatal_error()?;
        e.message = format!("the Kafka producer hit a fatal error: {}", e.message);
        Some(self.fatal("producing", &e))
    }

    /// A new producer in place of one that hit a fatal error. Under exactly-once
    /// (`transactional`) its `init_transactions` bumps the epoch of our transactional
    /// id: the old producer is fenced and whatever transaction it left open on the
    /// coordinator is aborted, as after a restart of the process.
    fn replace_producer(&mut self, transactional: bool) -> Result<(), SinkError> {
        if self.replacements >= MAX_REPLACEMENTS {
            return Err(SinkError::Fatal(anyhow::anyhow!(
                "the Kafka producer failed fatally {} times in a row without a successful commit; last: {}",
                self.replacements,
                self.broken.as_deref().unwrap_or_default()
            )));
        }
        self.producer
            .renew()
            .map_err(|e| SinkError::Fatal(anyhow::anyhow!("{e}")))?;
        if transactional {
            if let Err(e) = self.producer.init_transactions(INIT_TIMEOUT) {
                if e.ends_the_process() {
                    return Err(SinkError::Fatal(anyhow::anyhow!(
                        "fatal Kafka error while initialising transactions of a new producer: {e}{}",
                        e.hint()
                    )));
                }
                // The broker is still away (a timeout), or the coordinator is loading:
                // the next attempt builds another producer.
                return Err(SinkError::Rewind(format!(
                    "initialising transactions of a new producer: {e}"
                )));
            }
        }
        tracing::info!(
            replaced_after = self.broken.as_deref().unwrap_or_default(),
            "new Kafka producer ready"
        );
        self.broken = None;
        self.replacements += 1;
        // A per-unit topic may be what failed: check them again.
        self.producer.forget_topics();
        Ok(())
    }

    /// Queues one record; while the client's queue is full, serves delivery reports
    /// until it has room.
    fn send(&mut self, p: &Produced, tag: DeliveryTag) -> Result<(), BrokerError> {
        loop {
            match self.producer.send(p, tag) {
                Err(e) if e.kind == ErrorKind::QueueFull => {
                    self.producer.poll(Duration::from_millis(10));
                    let served = self.producer.take_reports();
                    self.early_reports.extend(served);
                }
                done => return done,
            }
        }
    }

    /// Makes sure a per-unit topic exists; whether it is new to this process.
    fn ensure_topic(&mut self, topic: &str) -> Result<bool, String> {
        self.producer
            .ensure_topic(topic)
            .map_err(|e| format!("{e:#}"))
    }

    /// Offsets to commit, sorted, each with the metadata of `clock` and `globals`.
    fn offsets(
        &self,
        positions: &HashMap<PartitionKey, i64>,
        clock: Option<EventTime>,
        globals: &HashMap<PartitionKey, i64>,
    ) -> OffsetCommit {
        let mut sorted: Vec<_> = positions.iter().collect();
        sorted.sort();
        OffsetCommit {
            offsets: sorted
                .into_iter()
                .map(|(&(stream, partition), &offset)| {
                    (self.topics.topic_of(stream).to_owned(), partition, offset)
                })
                .collect(),
            metadata: commit_metadata(clock, globals),
        }
    }

    /// Event → alert latency, once the alert is really out.
    fn observe_latency(&self, kind: AlertKind, event_ms: EventTime) {
        let now = self.clock.wall_ms();
        self.metrics
            .observe_latency(kind, (now - event_ms.ms()) as f64 / 1000.0);
    }

    fn forget(&mut self, revoked: &[PartitionKey]) {
        for key in revoked {
            self.positions.remove(key);
        }
    }
}

/// `roadwatch;clock=<ms>;g=<stream>.<partition>:<offset>,…` (either part may be absent).
fn commit_metadata(clock: Option<EventTime>, globals: &HashMap<PartitionKey, i64>) -> String {
    let mut m = match clock {
        Some(ms) => format!("roadwatch;clock={ms}"),
        None => "roadwatch".to_owned(),
    };
    if !globals.is_empty() {
        let mut sorted: Vec<_> = globals.iter().collect();
        sorted.sort();
        let list: Vec<String> = sorted
            .iter()
            .map(|((stream, p), o)| format!("{}.{p}:{o}", stream.as_str()))
            .collect();
        let g = format!(";g={}", list.join(","));
        if m.len() + g.len() <= MAX_METADATA {
            m.push_str(&g);
        }
    }
    m
}

/// The engine clock recorded in a committed offset's metadata, if any.
pub(crate) fn clock_from_metadata(metadata: &str) -> Option<EventTime> {
    metadata
        .split(';')
        .find_map(|part| part.strip_prefix("clock="))
        .and_then(|v| v.parse().ok())
        .map(EventTime::from_ms)
}

/// The global-stream offsets recorded in a committed offset's metadata; `None` when it
/// has none (committed by an older version, another tool, or cut for size).
pub(crate) fn globals_from_metadata(metadata: &str) -> Option<HashMap<PartitionKey, i64>> {
    let list = metadata
        .split(';')
        .find_map(|part| part.strip_prefix("g="))?;
    let mut globals = HashMap::new();
    for item in list.split(',') {
        let (key, offset) = item.split_once(':')?;
        let (stream, partition) = key.rsplit_once('.')?;
        globals.insert(
            (Stream::parse(stream)?, partition.parse().ok()?),
            offset.parse().ok()?,
        );
    }
    Some(globals)
}
