//! The output side of the runtime and the consumed offsets that go with it, under either
//! guarantee:
//!
//! - **exactly-once**: one Kafka transaction per commit interval holds the alerts, the
//!   dispatches, the DLQ records *and* the consumed offsets (`send_offsets_to_transaction`),
//!   so a `read_committed` reader sees all of an interval's output or none, and the input
//!   is re-read exactly when its output was lost.
//! - **at-least-once**: records are produced by an idempotent producer; the consumed
//!   offsets of a batch are committed only once every record the batch produced has a
//!   successful delivery report (rust-rdkafka's `examples/at_least_once.rs`).
//!
//! Each commit also records, in the offset metadata, the engine's event clock and how far
//! the global streams (patrol positions, acks: read in full, never committed) had been
//! applied. A rebuilt engine advances to that clock (timers fired by an idle advance,
//! whose output is committed, must not fire a second time) and replays the global
//! streams exactly to those offsets (an ack whose output is committed must not be
//! applied again; one whose output was lost must be).
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::dispatch_topics::DispatchTopics;
use super::startup::StreamTopics;
use crate::config::Guarantee;
use crate::core::model::{AlertKind, EventTime, Stream};
use crate::io::metrics::{Metrics, Stage};
use crate::io::output::wall_clock_ms;
use crate::io::pipeline::Produced;

/// How long one transactional call or flush may block before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The delivery error of a record dropped by our own abort.
const PURGED: &str = "purged by the abort";
/// A delivery report of success without an offset (see [`ProducerCtx::delivery`]).
const NO_OFFSET: &str = "acknowledged without an offset (librdkafka: duplicate sequence number)";
/// Commit attempts on a retriable error (a timeout) before the transaction is aborted.
const COMMIT_ATTEMPTS: u32 = 3;
/// How long each later attempt to finish an abort that timed out may block (the runtime
/// backs off between attempts and checks for shutdown).
const ABORT_RETRY: Duration = Duration::from_secs(2);
/// `init_transactions` of a replacement producer; a timeout is retried with the rebuild.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Producer replacements without a successful commit in between before the error is
/// taken as permanent and the process exits.
const MAX_REPLACEMENTS: u32 = 5;

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

/// Carried through librdkafka with every produced record, back in its delivery report.
pub(crate) struct DeliveryTag {
    batch: u64,
    alert: Option<(AlertKind, EventTime)>,
    /// The first record to a per-unit topic this process has just created or found:
    /// its delivery is logged (docs/KAFKA_RUNTIME.md, "Live equals replay", cause 4).
    new_topic: bool,
}

struct Report {
    batch: u64,
    alert: Option<(AlertKind, EventTime)>,
    error: Option<String>,
    /// The brokers' authorizer refused the record: retrying cannot help.
    denied: bool,
}

/// Producer statistics of interest (where the time goes).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerStats {
    /// Broker round trip p99, µs.
    pub rtt_p99_us: i64,
    /// Time a record waits in librdkafka's queues before it is sent, p99, µs.
    pub int_latency_p99_us: i64,
}

/// The producer's librdkafka context: delivery reports are queued here while librdkafka
/// runs them inside `poll`/`flush`, and handled by the sink right after.
#[derive(Default)]
pub(crate) struct ProducerCtx {
    reports: Mutex<Vec<Report>>,
    /// Delivery reports handed over so far (see [`Sink::serve_reports`]).
    served: std::sync::atomic::AtomicU64,
    pub(crate) stats: Mutex<ProducerStats>,
}

impl ClientContext for ProducerCtx {
    fn stats(&self, s: Statistics) {
        let mut view = ProducerStats::default();
        for b in s.brokers.values().filter(|b| b.nodeid >= 0) {
            if let Some(w) = &b.rtt {
                view.rtt_p99_us = view.rtt_p99_us.max(w.p99);
            }
            if let Some(w) = &b.int_latency {
                view.int_latency_p99_us = view.int_latency_p99_us.max(w.p99);
            }
        }
        if let Ok(mut st) = self.stats.lock() {
            *st = view;
        }
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Box<DeliveryTag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<DeliveryTag>) {
        if tag.new_topic {
            match result {
                Ok(m) => tracing::info!(
                    topic = m.topic(),
                    partition = m.partition(),
                    offset = m.offset(),
                    "first record to a new dispatch topic delivered"
                ),
                Err((e, m)) => tracing::warn!(
                    topic = m.topic(),
                    error = %e,
                    "first record to a new dispatch topic failed"
                ),
            }
        }
        let error = match result {
            // librdkafka reports a produce answered with DUPLICATE_SEQUENCE_NUMBER ("an
            // earlier send succeeded but was not acknowledged") as a success without an
            // offset. The first record to a brand-new per-unit topic was answered so and
            // was not in the log (docs/KAFKA_RUNTIME.md, cause 4). Both producers are
            // idempotent with acks=all, so every real success has an offset: without one
            // the record counts as failed and its work is done again.
            Ok(m) if m.offset() < 0 => {
                Some(format!("{}[{}]: {NO_OFFSET}", m.topic(), m.partition()))
            }
            Ok(_) => None,
            // Purged by our own abort: expected, not worth a warning.
            Err((
                KafkaError::MessageProduction(
                    RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight,
                ),
                _,
            )) => Some(PURGED.to_owned()),
            Err((e, _)) => Some(e.to_string()),
        };
        let denied =
            matches!(&result, Err((e, _)) if e.rdkafka_error_code().is_some_and(is_denied));
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut r) = self.reports.lock() {
            r.push(Report {
                batch: tag.batch,
                alert: tag.alert,
                error,
                denied,
            });
        }
    }
}

/// At-least-once bookkeeping: consecutive batches of consumed records and the deliveries
/// their output still waits for.
struct AloBatch {
    id: u64,
    positions: HashMap<PartitionKey, i64>,
    clock: Option<EventTime>,
    globals: HashMap<PartitionKey, i64>,
    records: usize,
    outstanding: usize,
    sealed: bool,
    /// A record of this batch failed delivery: its offsets must not be committed.
    failed: bool,
}

impl AloBatch {
    fn new(id: u64) -> Self {
        AloBatch {
            id,
            positions: HashMap::new(),
            clock: None,
            globals: HashMap::new(),
            records: 0,
            outstanding: 0,
            sealed: false,
            failed: false,
        }
    }
}

pub(crate) struct Sink {
    guarantee: Guarantee,
    producer: BaseProducer<ProducerCtx>,
    /// To build a replacement producer (below).
    producer_config: ClientConfig,
    /// The producer hit a fatal error that is not fencing (why): it is replaced before
    /// anything else is done. Broker outages cause these: an `AddOffsetsToTxn` that was
    /// sent but died with the broker leaves the coordinator without the transaction, and
    /// librdkafka takes the coordinator's `INVALID_TXN_STATE` answer to the abort as
    /// fatal.
    broken: Option<String>,
    /// Replacements since the last successful commit.
    replacements: u32,
    /// Exactly-once: the open transaction's abort timed out (the broker is away).
    /// librdkafka goes on with it in the background; it is finished before anything else.
    abort_pending: bool,
    dispatch_topics: DispatchTopics,
    topics: StreamTopics,
    metrics: Arc<Metrics>,
    commit_interval: Duration,
    /// Next offset to read, per assigned group partition: what the next commit records.
    positions: HashMap<PartitionKey, i64>,
    /// The engine clock as of the last consumed record or idle advance.
    clock: Option<EventTime>,
    /// Next offset of each global-stream partition, as far as applied.
    globals: HashMap<PartitionKey, i64>,
    // Exactly-once state.
    txn_open: bool,
    /// When the first record of the open interval was consumed or produced.
    open_since: Option<Instant>,
    open_records: usize,
    latencies: Vec<(AlertKind, EventTime)>,
    // At-least-once state.
    batches: VecDeque<AloBatch>,
    acked: HashMap<PartitionKey, i64>,
    acked_clock: Option<EventTime>,
    acked_globals: HashMap<PartitionKey, i64>,
    acked_dirty: bool,
    sealed_at: Instant,
    delivery_failed: Option<String>,
    /// A record the authorizer refused (no Write ACL): ends the process.
    denied: Option<String>,
    /// Set when an asynchronous offset commit is sent; its callback times it.
    pub(crate) async_commit_sent: Option<Instant>,
    disabled: bool,
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

impl Sink {
    pub(crate) fn new(
        guarantee: Guarantee,
        producer: BaseProducer<ProducerCtx>,
        producer_config: ClientConfig,
        dispatch_topics: DispatchTopics,
        topics: StreamTopics,
        metrics: Arc<Metrics>,
        commit_interval: Duration,
    ) -> Self {
        let mut batches = VecDeque::new();
        batches.push_back(AloBatch::new(0));
        Sink {
            guarantee,
            producer,
            producer_config,
            broken: None,
            replacements: 0,
            abort_pending: false,
            dispatch_topics,
            topics,
            metrics,
            commit_interval,
            positions: HashMap::new(),
            clock: None,
            globals: HashMap::new(),
            txn_open: false,
            open_since: None,
            open_records: 0,
            latencies: Vec::new(),
            batches,
            acked: HashMap::new(),
            acked_clock: None,
            acked_globals: HashMap::new(),
            acked_dirty: false,
            sealed_at: Instant::now(),
            delivery_failed: None,
            denied: None,
            async_commit_sent: None,
            disabled: false,
        }
    }

    pub(crate) fn producer(&self) -> &BaseProducer<ProducerCtx> {
        &self.producer
    }

    /// The position key of a group topic's partition.
    pub(crate) fn key_of(&self, topic: &str, partition: i32) -> Option<PartitionKey> {
        self.topics.stream_of(topic).map(|s| (s, partition))
    }

    /// The next offset to read of every assigned partition, as last consumed or sought.
    pub(crate) fn positions(&self) -> &HashMap<PartitionKey, i64> {
        &self.positions
    }

    /// Right after a successful [`Sink::settle`]: the offsets and progress now committed.
    pub(crate) fn committed(&self) -> (HashMap<PartitionKey, i64>, Progress) {
        match self.guarantee {
            Guarantee::ExactlyOnce => (
                self.positions.clone(),
                Progress {
                    clock: self.clock,
                    globals: self.globals.clone(),
                },
            ),
            Guarantee::AtLeastOnce => (
                self.acked.clone(),
                Progress {
                    clock: self.acked_clock,
                    globals: self.acked_globals.clone(),
                },
            ),
        }
    }

    /// After a fatal error: nothing more is committed, so that closing the consumer (which
    /// runs the revoke callback) does not wait on a producer that cannot answer.
    pub(crate) fn disable(&mut self) {
        self.disabled = true;
    }

    fn guarantee_label(&self) -> &'static str {
        match self.guarantee {
            Guarantee::ExactlyOnce => "exactly_once",
            Guarantee::AtLeastOnce => "at_least_once",
        }
    }

    /// The work the runtime bounds (`processing.max_in_flight_records`). Exactly-once:
    /// records consumed since the last commit (a full interval is committed early).
    /// At-least-once: records produced and not yet acknowledged by the broker (the
    /// partitions are paused until they are). Counting the consumed records waiting
    /// on those acknowledgements instead made the input pause whenever the broker took
    /// longer than a few commit intervals to answer, and each pause throws away
    /// librdkafka's prefetched records (at 100,000 records/s: 70 pauses a minute,
    /// throughput down to a third).
    pub(crate) fn in_flight(&self) -> usize {
        match self.guarantee {
            Guarantee::ExactlyOnce => self.open_records,
            Guarantee::AtLeastOnce => self.batches.iter().map(|b| b.outstanding).sum(),
        }
    }

    /// After a rebuild: the positions consumers were sought to (group partitions, and the
    /// global streams as far as the rebuilt engine has applied them), nothing in flight.
    pub(crate) fn reset_positions(
        &mut self,
        positions: HashMap<PartitionKey, i64>,
        globals: HashMap<PartitionKey, i64>,
    ) {
        debug_assert!(!self.txn_open, "reset with an open transaction");
        self.positions = positions;
        self.acked = self.positions.clone();
        self.globals = globals;
        self.acked_globals = self.globals.clone();
        self.acked_dirty = false;
        // Batch numbers keep counting: a late report for a dropped batch must not be
        // taken for one of the new batch.
        let next = self.sealed_next_id();
        self.batches.clear();
        self.batches.push_back(AloBatch::new(next));
        self.open_records = 0;
        self.open_since = None;
        self.delivery_failed = None;
    }

    /// Forgets revoked partitions (their offsets were committed, or the work aborted).
    pub(crate) fn forget(&mut self, revoked: &[PartitionKey]) {
        for key in revoked {
            self.positions.remove(key);
            self.acked.remove(key);
            for b in &mut self.batches {
                b.positions.remove(key);
            }
        }
    }

    /// One input record was applied; its offset is part of the next commit.
    pub(crate) fn consumed(&mut self, key: PartitionKey, offset: i64, clock: Option<EventTime>) {
        self.positions.insert(key, offset + 1);
        self.clock = clock;
        match self.guarantee {
            Guarantee::ExactlyOnce => {
                self.open_records += 1;
                self.open_since.get_or_insert_with(Instant::now);
            }
            Guarantee::AtLeastOnce => {
                let batch = self.batches.back_mut().expect("a current batch");
                batch.positions.insert(key, offset + 1);
                batch.records += 1;
                batch.clock = clock;
            }
        }
    }

    /// The engine clock moved without a record (idle advance).
    pub(crate) fn clock_advanced(&mut self, clock: Option<EventTime>) {
        self.clock = clock;
        if let Some(b) = self.batches.back_mut() {
            b.clock = clock;
        }
    }

    /// A record of a global stream was applied: no offset of the group's to commit, but
    /// the next commit records how far the stream was applied, and the clock it moved.
    pub(crate) fn global_applied(
        &mut self,
        key: PartitionKey,
        offset: i64,
        clock: Option<EventTime>,
    ) {
        self.globals.insert(key, offset + 1);
        if let Some(b) = self.batches.back_mut() {
            b.globals.insert(key, offset + 1);
        }
        self.clock_advanced(clock);
    }

    /// Produces one record (inside the open transaction under exactly-once).
    pub(crate) fn send(&mut self, p: &Produced) -> Result<(), SinkError> {
        self.usable()?;
        let new_topic = match self
            .dispatch_topics
            .ensure(&p.topic, self.producer.client())
        {
            Ok(new) => new,
            Err(e) => return Err(self.fail_open_work(format!("{e:#}"))),
        };
        if self.guarantee == Guarantee::ExactlyOnce && !self.txn_open {
            self.begin()?;
        }
        let batch = self.batches.back().map(|b| b.id).unwrap_or_default();
        let tag = Box::new(DeliveryTag {
            batch,
            alert: p.content.alert(),
            new_topic,
        });
        let mut record = BaseRecord::<str, [u8], Box<DeliveryTag>>::with_opaque_to(&p.topic, tag)
            .payload(&p.payload[..]);
        if let Some(k) = &p.key {
            record = record.key(k.as_str());
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // librdkafka's queue is full: serve delivery reports until it drains.
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                    self.take_reports();
                }
                Err((e, _)) => {
                    if let Some(failure) = self.fatal_error() {
                        return Err(failure);
                    }
                    return Err(self.fail_open_work(format!("producing to {}: {e}", p.topic)));
                }
            }
        }
        match self.guarantee {
            Guarantee::ExactlyOnce => {
                self.open_since.get_or_insert_with(Instant::now);
                if let Some(a) = p.content.alert() {
                    self.latencies.push(a);
                }
            }
            Guarantee::AtLeastOnce => {
                if let Some(b) = self.batches.back_mut() {
                    b.outstanding += 1;
                }
            }
        }
        // (After the bookkeeping above: the drain serves this record's report.)
        if new_topic {
            // librdkafka can report a new partition's failed first batch delivered when a
            // later batch of that partition succeeds (cause 4): no later record goes out
            // until the first one has its own answer. Once per new topic and process.
            self.drain_in_flight(CALL_TIMEOUT);
        }
        Ok(())
    }

    /// How long the open transaction may stay open. An alert is waited for by a patrol
    /// officer and becomes visible only with the commit, so a transaction holding one
    /// is committed after a fifth of the interval (20 ms by default) rather than the
    /// whole of it; offsets alone wait for the full interval. The transaction rate stays
    /// bounded by five per interval.
    fn open_limit(&self) -> Duration {
        if self.latencies.is_empty() {
            self.commit_interval
        } else {
            self.commit_interval / 5
        }
    }

    /// Whether the commit interval of the open work has passed.
    pub(crate) fn commit_due(&self) -> bool {
        match self.guarantee {
            Guarantee::ExactlyOnce => self
                .open_since
                .is_some_and(|t| t.elapsed() >= self.open_limit()),
            Guarantee::AtLeastOnce => self.sealed_at.elapsed() >= self.commit_interval,
        }
    }

    /// Time left until the open work is due, for the consumer's poll timeout.
    pub(crate) fn until_due(&self) -> Option<Duration> {
        match self.guarantee {
            Guarantee::ExactlyOnce => self
                .open_since
                .map(|t| self.open_limit().saturating_sub(t.elapsed())),
            Guarantee::AtLeastOnce => Some(
                self.commit_interval
                    .saturating_sub(self.sealed_at.elapsed()),
            ),
        }
    }

    /// Serves delivery reports; under at-least-once stores what is fully delivered.
    pub(crate) fn poll<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), SinkError> {
        self.usable()?;
        self.serve_reports();
        self.take_reports();
        if let Some(failure) = self.fatal_error() {
            return Err(failure);
        }
        if self.guarantee == Guarantee::AtLeastOnce {
            if let Some(why) = self.delivery_failed.take() {
                return Err(self.rewind_at_least_once(consumer, why));
            }
            if self.commit_due() {
                self.seal();
                self.commit_acked(consumer, CommitMode::Async);
            }
        }
        Ok(())
    }

    /// Exactly-once: commits the open transaction with the consumed offsets.
    /// At-least-once: seals the current batch and commits what is delivered.
    pub(crate) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), SinkError> {
        self.usable()?;
        match self.guarantee {
            Guarantee::ExactlyOnce => self.commit_transaction(consumer),
            Guarantee::AtLeastOnce => {
                self.take_reports();
                if let Some(why) = self.delivery_failed.take() {
                    return Err(self.rewind_at_least_once(consumer, why));
                }
                self.seal();
                self.commit_acked(consumer, CommitMode::Async);
                Ok(())
            }
        }
    }

    /// Before partitions are revoked or the process stops: everything consumed so far is
    /// committed (exactly-once), or flushed and committed (at-least-once), synchronously,
    /// so that the next owner starts where this one stopped. When the assignment was
    /// lost (the group moved on without us) the open transaction is aborted instead: its
    /// offsets could no longer be committed.
    pub(crate) fn settle<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        lost: bool,
    ) -> Result<(), SinkError> {
        if self.disabled {
            return Ok(());
        }
        self.usable()?;
        match self.guarantee {
            Guarantee::ExactlyOnce => {
                if lost {
                    if self.txn_open {
                        self.abort(CALL_TIMEOUT)?;
                    }
                    self.open_since = None;
                    self.open_records = 0;
                    return Ok(());
                }
                self.commit_transaction(consumer)
            }
            Guarantee::AtLeastOnce => {
                let started = Instant::now();
                self.drain_in_flight(CALL_TIMEOUT);
                if self.producer.in_flight_count() > 0 {
                    tracing::warn!(
                        "flush before commit timed out; undelivered records will be consumed again"
                    );
                }
                self.seal();
                if !lost {
                    self.commit_acked(consumer, CommitMode::Sync);
                    self.metrics
                        .transaction_commit
                        .with_label_values(&[self.guarantee_label()])
                        .observe(started.elapsed().as_secs_f64());
                }
                match self.delivery_failed.take() {
                    Some(why) => Err(self.rewind_at_least_once(consumer, why)),
                    None => Ok(()),
                }
            }
        }
    }

    /// Before a rebuild that follows a rewind: drops the open work without committing any
    /// of it. Whatever was consumed since the failure must not be committed: its offsets
    /// lie past the dropped interval, whose input would then never be read again.
    pub(crate) fn abandon(&mut self) -> Result<(), SinkError> {
        self.usable()?;
        match self.guarantee {
            Guarantee::ExactlyOnce => self.abort(CALL_TIMEOUT)?,
            Guarantee::AtLeastOnce => {
                let next = self.sealed_next_id();
                self.batches.clear();
                self.batches.push_back(AloBatch::new(next));
                self.delivery_failed = None;
            }
        }
        self.open_since = None;
        self.open_records = 0;
        Ok(())
    }

    /// Before a rebuild: replaces a producer that hit a fatal error other than fencing,
    /// and finishes an abort that timed out. `Err(Rewind)` while the broker is still
    /// away (the runtime backs off and tries again); `Err(Fatal)` when the process must
    /// exit.
    pub(crate) fn recover(&mut self) -> Result<(), SinkError> {
        if self.disabled {
            return Ok(());
        }
        if self.broken.is_some() {
            self.replace_producer()?;
        }
        if self.abort_pending {
            self.abort(ABORT_RETRY)?;
        }
        Ok(())
    }

    /// The producer waits for its replacement or for an abort to finish.
    pub(crate) fn needs_recovery(&self) -> bool {
        self.broken.is_some() || self.abort_pending
    }

    /// `Err(Rewind)` while the producer waits for its replacement or for an abort to
    /// finish (then only [`Sink::recover`] may go on); a pending abort is given a short
    /// try first.
    fn usable(&mut self) -> Result<(), SinkError> {
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
        if self.abort_pending {
            self.abort(ABORT_RETRY)?;
            // Aborted now: the interval's work is gone and must be read again.
            return Err(SinkError::Rewind(
                "the open transaction was aborted".to_owned(),
            ));
        }
        Ok(())
    }

    /// A new producer in place of one that hit a fatal error. Under exactly-once its
    /// `init_transactions` bumps the epoch of our transactional id: the old producer is
    /// fenced and whatever transaction it left open on the coordinator is aborted, as
    /// after a restart of the process.
    fn replace_producer(&mut self) -> Result<(), SinkError> {
        if self.replacements >= MAX_REPLACEMENTS {
            return Err(SinkError::Fatal(anyhow::anyhow!(
                "the Kafka producer failed fatally {} times in a row without a successful commit; last: {}",
                self.replacements,
                self.broken.as_deref().unwrap_or_default()
            )));
        }
        let producer: BaseProducer<ProducerCtx> =
            BaseProducer::from_config_and_context(&self.producer_config, ProducerCtx::default())
                .map_err(|e| {
                    SinkError::Fatal(anyhow::anyhow!("creating a new Kafka producer: {e}"))
                })?;
        if self.guarantee == Guarantee::ExactlyOnce {
            if let Err(e) = producer.init_transactions(INIT_TIMEOUT) {
                let code = producer
                    .client()
                    .fatal_error()
                    .map(|(c, _)| c)
                    .or_else(|| e.rdkafka_error_code());
                if code.is_some_and(ends_the_process) {
                    return Err(SinkError::Fatal(fatal_context(
                        "initialising transactions of a new producer",
                        &e,
                    )));
                }
                // The broker is still away (a timeout), or the coordinator is loading:
                // this producer is dropped and the next attempt builds another.
                return Err(SinkError::Rewind(format!(
                    "initialising transactions of a new producer: {e}"
                )));
            }
        }
        tracing::info!(
            replaced_after = self.broken.as_deref().unwrap_or_default(),
            "new Kafka producer ready"
        );
        // Dropping the old one purges what it still holds (its reports are not needed:
        // that work is rewound).
        self.producer = producer;
        self.broken = None;
        self.replacements += 1;
        self.txn_open = false;
        self.abort_pending = false;
        self.latencies.clear();
        self.open_since = None;
        self.open_records = 0;
        // A per-unit topic may be what failed: check them again.
        self.dispatch_topics.forget_all();
        Ok(())
    }

    /// A fatal producer error. Fencing (another process took our transactional id) and
    /// authorisation failures end the process; any other fatal error marks the producer
    /// for replacement and rewinds.
    fn fatal(&mut self, what: &str, e: &KafkaError) -> SinkError {
        let code = self
            .producer
            .client()
            .fatal_error()
            .map(|(c, _)| c)
            .or_else(|| e.rdkafka_error_code());
        self.fatal_code(what, e, code)
    }

    fn fatal_code(
        &mut self,
        what: &str,
        e: &dyn std::fmt::Display,
        code: Option<RDKafkaErrorCode>,
    ) -> SinkError {
        if let Some(code) = code.filter(|c| ends_the_process(*c)) {
            return SinkError::Fatal(anyhow::anyhow!(
                "fatal Kafka error while {what}: {e}{}",
                fencing_hint(code)
            ));
        }
        tracing::error!(
            error = %e,
            "fatal Kafka producer error while {what}; replacing the producer and rewinding to the committed offsets"
        );
        self.broken = Some(format!("{what}: {e}"));
        self.txn_open = false;
        self.abort_pending = false;
        self.latencies.clear();
        self.open_since = None;
        self.open_records = 0;
        SinkError::Rewind(format!("fatal producer error while {what}: {e}"))
    }

    fn begin(&mut self) -> Result<(), SinkError> {
        match self.producer.begin_transaction() {
            Ok(()) => {
                self.txn_open = true;
                Ok(())
            }
            Err(e) => Err(self.transaction_failure("beginning a transaction", e)),
        }
    }

    fn offsets_list(
        &self,
        positions: &HashMap<PartitionKey, i64>,
        clock: Option<EventTime>,
        globals: &HashMap<PartitionKey, i64>,
    ) -> TopicPartitionList {
        let metadata = commit_metadata(clock, globals);
        let mut tpl = TopicPartitionList::with_capacity(positions.len());
        let mut sorted: Vec<_> = positions.iter().collect();
        sorted.sort();
        for (&(stream, partition), &offset) in sorted {
            let mut elem = tpl.add_partition(self.topics.topic_of(stream), partition);
            // Offsets come from records we consumed, so they are always representable.
            let _ = elem.set_offset(Offset::Offset(offset));
            elem.set_metadata(metadata.as_str());
        }
        tpl
    }

    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), SinkError> {
        if self.open_since.is_none() && !self.txn_open {
            return Ok(());
        }
        let started = Instant::now();
        if !self.txn_open {
            self.begin()?;
        }
        if !self.positions.is_empty() {
            let Some(group) = consumer.group_metadata() else {
                return Err(self.fail_open_work("no consumer group metadata".to_owned()));
            };
            let offsets = self.offsets_list(&self.positions, self.clock, &self.globals);
            if let Err(e) =
                self.producer
                    .send_offsets_to_transaction(&offsets, &group, CALL_TIMEOUT)
            {
                return Err(self.transaction_failure("sending offsets to the transaction", e));
            }
        }
        self.drain_in_flight(CALL_TIMEOUT);
        // Every record's report must be in before the commit: one acknowledged without an
        // offset is not in the log, and after the commit its work could not be redone.
        let in_flight = self.producer.in_flight_count();
        if in_flight > 0 {
            return Err(self.fail_open_work(format!(
                "{in_flight} records still unacknowledged after {CALL_TIMEOUT:?}"
            )));
        }
        if let Some(why) = self.delivery_failed.take() {
            return Err(self.fail_open_work(format!("a record of the transaction: {why}")));
        }
        let mut attempt = 1;
        loop {
            match self.producer.commit_transaction(CALL_TIMEOUT) {
                Ok(()) => break,
                Err(e) if attempt < COMMIT_ATTEMPTS && is_retriable(&e) => {
                    tracing::warn!(error = %e, attempt, "transaction commit timed out; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(self.transaction_failure("committing the transaction", e)),
            }
        }
        self.take_reports();
        let took = started.elapsed().as_secs_f64();
        self.metrics
            .transaction_commit
            .with_label_values(&[self.guarantee_label()])
            .observe(took);
        self.metrics.observe_stage(Stage::Commit, took);
        // The output is visible to read_committed readers only now.
        let now = wall_clock_ms();
        for (kind, event_ms) in self.latencies.drain(..) {
            self.metrics
                .observe_latency(kind, (now - event_ms) as f64 / 1000.0);
        }
        self.txn_open = false;
        self.open_since = None;
        self.open_records = 0;
        self.replacements = 0;
        Ok(())
    }

    /// Serves every delivery report librdkafka has ready, without waiting. rust-rdkafka's
    /// `poll(Duration::ZERO)` serves a single event (one produce request's reports):
    /// called once per loop turn, reports of single-record requests — alerts — trickled
    /// in at one per turn, and at-least-once commits fell tens of seconds behind a
    /// backlog that raised many alerts (docs/PERFORMANCE.md).
    fn serve_reports(&self) {
        let served = || {
            self.producer
                .context()
                .served
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        for _ in 0..10_000 {
            let before = served();
            self.producer.poll(Duration::ZERO);
            if served() == before {
                break;
            }
        }
    }

    /// Waits, in 1 ms steps, until librdkafka has a delivery report for every record.
    /// `commit_transaction` flushes first anyway, but rust-rdkafka's flush sleeps in
    /// 100 ms polls while anything is in flight, and right after an alert something
    /// always is: commits took 100–250 ms instead of 5–25 ms.
    fn drain_in_flight(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
            self.producer.poll(Duration::from_millis(1));
        }
        self.take_reports();
    }

    /// Sorts a transactional error into fatal (see [`Sink::fatal`]) or abortable (abort,
    /// rewind).
    fn transaction_failure(&mut self, what: &str, e: KafkaError) -> SinkError {
        let fatal = match &e {
            KafkaError::Transaction(re) => re.is_fatal(),
            _ => false,
        } || self.producer.client().fatal_error().is_some()
            || e.rdkafka_error_code().is_some_and(is_denied);
        if fatal {
            return self.fatal(what, &e);
        }
        tracing::warn!(error = %e, "{what} failed; aborting the transaction and rewinding to the committed offsets");
        self.dispatch_topics.forget_all();
        if let Err(failure) = self.abort(CALL_TIMEOUT) {
            return failure;
        }
        SinkError::Rewind(format!("{what}: {e}"))
    }

    /// Aborts the open transaction, trying for up to `limit`. A timeout is not fatal: with
    /// the broker away the abort cannot finish, so it is left pending (`Err(Rewind)`) and
    /// resumed by the next call, after the runtime has backed off. (It used to be fatal
    /// after 10 s: a broker stopped for longer made roadwatch exit.)
    fn abort(&mut self, limit: Duration) -> Result<(), SinkError> {
        self.latencies.clear();
        self.open_since = None;
        self.open_records = 0;
        if !self.txn_open {
            self.abort_pending = false;
            return Ok(());
        }
        // librdkafka's abort waits until every outstanding record has had its delivery
        // report served, and with a BaseProducer nobody serves them but us: purge what
        // is queued or in flight, then alternate polling and short abort attempts.
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + limit;
        loop {
            self.producer.poll(Duration::from_millis(10));
            self.take_reports();
            match self.producer.abort_transaction(Duration::from_millis(200)) {
                Ok(()) => {
                    if self.abort_pending {
                        tracing::info!("the pending abort finished");
                    }
                    self.txn_open = false;
                    self.abort_pending = false;
                    self.take_reports();
                    // The aborted records' failures are moot: their work is done again.
                    self.delivery_failed = None;
                    return Ok(());
                }
                Err(e) if is_retriable(&e) && Instant::now() < deadline => {
                    tracing::debug!(error = %e, "abort not done yet; serving delivery reports");
                }
                Err(e) if is_retriable(&e) => {
                    if !self.abort_pending {
                        tracing::warn!(error = %e, "the abort did not finish (is the broker reachable?); retrying until it does");
                    }
                    self.abort_pending = true;
                    return Err(SinkError::Rewind(format!("aborting the transaction: {e}")));
                }
                Err(e) => return Err(self.fatal("aborting the transaction", &e)),
            }
        }
    }

    /// Drops the open work after a failure outside the transactional calls.
    fn fail_open_work(&mut self, why: String) -> SinkError {
        match self.guarantee {
            Guarantee::ExactlyOnce => {
                if let Err(failure) = self.abort(CALL_TIMEOUT) {
                    return failure;
                }
            }
            Guarantee::AtLeastOnce => {
                self.delivery_failed = None;
            }
        }
        SinkError::Rewind(why)
    }

    /// The producer's fatal error, if it has one, sorted by [`Sink::fatal`].
    fn fatal_error(&mut self) -> Option<SinkError> {
        let (code, reason) = self.producer.client().fatal_error()?;
        let detail = format!("the Kafka producer hit a fatal error: {code}: {reason}");
        Some(self.fatal_code("producing", &detail, Some(code)))
    }

    fn take_reports(&mut self) {
        let reports = match self.producer.context().reports.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        let now = wall_clock_ms();
        for r in reports {
            if r.denied && self.denied.is_none() {
                self.denied = r.error.clone();
            }
            match self.guarantee {
                Guarantee::ExactlyOnce => {
                    // A failed record fails the commit as well, but a record acknowledged
                    // without an offset does not: the commit checks this first.
                    if let Some(e) = r.error.filter(|e| e != PURGED) {
                        tracing::warn!(error = %e, "a record of the open transaction failed");
                        self.delivery_failed.get_or_insert(e);
                    }
                }
                Guarantee::AtLeastOnce => {
                    let Some(front) = self.batches.front().map(|b| b.id) else {
                        continue;
                    };
                    let Some(batch) = r
                        .batch
                        .checked_sub(front)
                        .and_then(|i| self.batches.get_mut(i as usize))
                    else {
                        // A report for work dropped by a rewind.
                        continue;
                    };
                    batch.outstanding = batch.outstanding.saturating_sub(1);
                    match r.error {
                        Some(e) => {
                            batch.failed = true;
                            self.delivery_failed.get_or_insert(e);
                        }
                        None => {
                            if let Some((kind, event_ms)) = r.alert {
                                self.metrics
                                    .observe_latency(kind, (now - event_ms) as f64 / 1000.0);
                            }
                        }
                    }
                }
            }
        }
    }

    fn seal(&mut self) {
        self.sealed_at = Instant::now();
        let next = match self.batches.back_mut() {
            Some(b) if b.records == 0 && b.outstanding == 0 => return,
            Some(b) => {
                b.sealed = true;
                b.id + 1
            }
            None => 0,
        };
        self.batches.push_back(AloBatch::new(next));
    }

    /// Moves fully delivered batches into the committable offsets and commits them.
    fn commit_acked<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, mode: CommitMode) {
        while self
            .batches
            .front()
            .is_some_and(|b| b.sealed && b.outstanding == 0 && !b.failed)
        {
            let b = self.batches.pop_front().expect("checked");
            self.acked.extend(b.positions);
            if b.clock.is_some() {
                self.acked_clock = b.clock;
            }
            self.acked_globals.extend(b.globals);
            self.acked_dirty = true;
            self.replacements = 0;
        }
        if self.batches.is_empty() {
            let next = self.sealed_next_id();
            self.batches.push_back(AloBatch::new(next));
        }
        if !self.acked_dirty || self.acked.is_empty() {
            return;
        }
        let offsets = self.offsets_list(&self.acked, self.acked_clock, &self.acked_globals);
        if matches!(mode, CommitMode::Async) {
            self.async_commit_sent = Some(Instant::now());
        }
        match consumer.commit(&offsets, mode) {
            Ok(()) => self.acked_dirty = false,
            // The next interval commits newer offsets anyway.
            Err(e) => tracing::warn!(error = %e, "offset commit failed; retried next interval"),
        }
    }

    fn sealed_next_id(&self) -> u64 {
        self.batches.back().map(|b| b.id + 1).unwrap_or_default()
    }

    /// A delivery failed: commit the batches before it, drop the rest; the runtime
    /// rewinds to the committed offsets and consumes the dropped records again.
    fn rewind_at_least_once<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        why: String,
    ) -> SinkError {
        tracing::warn!(error = %why, "a delivery failed; rewinding to the last fully delivered offsets");
        let _ = self.producer.flush(CALL_TIMEOUT);
        self.take_reports();
        self.seal();
        // Stops at the first batch that failed or still waits for a report.
        self.commit_acked(consumer, CommitMode::Sync);
        let next = self.sealed_next_id();
        self.batches.clear();
        self.batches.push_back(AloBatch::new(next));
        self.delivery_failed = None;
        SinkError::Rewind(why)
    }
}

fn is_retriable(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(re) => {
            re.is_retriable() || re.code() == RDKafkaErrorCode::OperationTimedOut
        }
        KafkaError::Flush(_) => true,
        _ => false,
    }
}

/// Fatal errors a new producer would hit again: fencing (another process uses our
/// transactional id, and a replacement would fence it in turn) and authorisation.
fn ends_the_process(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    ) || is_denied(code)
}

/// The authorizer's refusals: an ACL does not appear by retrying.
pub(crate) fn is_denied(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
    )
}

fn fencing_hint(code: RDKafkaErrorCode) -> &'static str {
    match code {
        RDKafkaErrorCode::ProducerFenced
        | RDKafkaErrorCode::Fenced
        | RDKafkaErrorCode::InvalidProducerEpoch => {
            " (another process uses the same transactional id: each running instance needs its own kafka.instance_id)"
        }
        _ => "",
    }
}

fn fatal_context(what: &str, e: &KafkaError) -> anyhow::Error {
    let hint = e.rdkafka_error_code().map(fencing_hint).unwrap_or_default();
    anyhow::anyhow!("fatal Kafka error while {what}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_survives_the_offset_metadata() {
        assert_eq!(
            clock_from_metadata(&commit_metadata(Some(1_795_912_845_824), &HashMap::new())),
            Some(1_795_912_845_824)
        );
        assert_eq!(
            clock_from_metadata(&commit_metadata(None, &HashMap::new())),
            None
        );
        // Offsets committed by other tools carry other metadata, or none.
        assert_eq!(clock_from_metadata(""), None);
        assert_eq!(clock_from_metadata("clock=soon"), None);
    }

    #[test]
    fn the_global_offsets_survive_the_offset_metadata_or_are_left_out_whole() {
        let globals: HashMap<PartitionKey, i64> = [
            ((Stream::Patrol, 0), 1_234),
            ((Stream::Patrol, 11), 0),
            ((Stream::Ack, 3), 98_765_432_101),
        ]
        .into_iter()
        .collect();
        let m = commit_metadata(Some(7), &globals);
        assert_eq!(
            m,
            "roadwatch;clock=7;g=patrol.0:1234,patrol.11:0,ack.3:98765432101"
        );
        assert_eq!(clock_from_metadata(&m), Some(7));
        assert_eq!(globals_from_metadata(&m), Some(globals));
        assert_eq!(globals_from_metadata("roadwatch;clock=7"), None);
        // Anything malformed is no answer at all, never a partial one.
        assert_eq!(
            globals_from_metadata("roadwatch;g=patrol.0:1,bogus.1:2"),
            None
        );
        assert_eq!(globals_from_metadata("roadwatch;g=patrol.x:1"), None);
        // Too many partitions for the broker's metadata limit: the clock stays, the
        // offsets go (the rebuild then cuts the global streams by time).
        let many: HashMap<PartitionKey, i64> = (0..400)
            .map(|p| ((Stream::Patrol, p), 1_000_000_000))
            .collect();
        let m = commit_metadata(Some(7), &many);
        assert!(m.len() <= MAX_METADATA);
        assert_eq!(clock_from_metadata(&m), Some(7));
        assert_eq!(globals_from_metadata(&m), None);
    }

    #[test]
    fn fencing_ends_the_process_other_fatal_errors_replace_the_producer() {
        for code in [
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::Fenced,
            RDKafkaErrorCode::InvalidProducerEpoch,
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        ] {
            assert!(ends_the_process(code), "{code:?}");
        }
        // What a broker outage leaves behind: an abort of a transaction the restarted
        // coordinator never heard of, a sequence gap of the idempotent producer.
        for code in [
            RDKafkaErrorCode::InvalidTransactionalState,
            RDKafkaErrorCode::OutOfOrderSequenceNumber,
            RDKafkaErrorCode::UnknownProducerId,
        ] {
            assert!(!ends_the_process(code), "{code:?}");
        }
    }
}
