//! `roadwatch run`: the production path (docs/KAFKA_RUNTIME.md).
//!
//! One thread drives everything, because the engine is one synchronous state machine:
//!
//! ```text
//!  group consumer (camera, plate, weather) ──────┐   poll a batch, decode
//!  side consumer (patrol positions and acks, ────┤
//!                 all of them: global streams)   │
//!                                                 ▼
//!                    Merge: every partition's records in event-time order
//!                                                 ▼
//!                                  Pipeline (engine → records)
//!                                                 ▼
//!                 Sink: transactional producer + offsets (exactly-once)
//!                       or delivery-confirmed offsets (at-least-once)
//! ```
//!
//! librdkafka runs rebalance, commit and statistics callbacks inside `poll` on this same
//! thread ([`super::group`]); they come out as events, and the runtime, which owns the
//! sink, settles open work before a revocation is finished. Whenever the assignment changes or open work is dropped, the
//! engine is rebuilt from the input window ([`super::state_rebuild`]) before any further
//! record is applied, and the consumers go back to the committed offsets.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::BaseConsumer;

use super::broker::librdkafka::RdProducer;
use super::broker::{
    BrokerError, Consumer, ErrorKind, Fetched, Group, GroupEvent, ListAt, Polled, Producer as _,
    Reader,
};
use super::dispatch_topics::DispatchTopics;
use super::group::GroupContext;
use super::merge::{Merge, Pushed, Reading};
use super::sink::{
    self, clock_from_metadata, globals_from_metadata, PartitionKey, Sink, SinkError,
};
use super::startup::{self, is_global, StreamTopics};
use super::state_rebuild::{self, GlobalCut, GlobalPartition, GroupPartition, RebuildRequest};
use crate::config::{Guarantee, Settings};
use crate::core::detect::ride_hailing::PlateList;
use crate::core::engine::Engine;
use crate::core::model::{DlqSource, EventTime, Stream};
use crate::core::roads::RoadNetwork;
use crate::io::clock::Clock;
use crate::io::http::Readiness;
use crate::io::liveness::{self, Liveness};
use crate::io::metrics::{Metrics, Stage};
use crate::io::pipeline::{Decoded, Pipeline, Produced};
use crate::io::plate_lists::PlateListFiles;

/// Records taken from the group consumer per batch before the loop looks around.
const MAX_BATCH: usize = 5_000;
/// Longest wait in `poll` when nothing arrives: bounds shutdown and global-stream latency.
const MAX_WAIT: Duration = Duration::from_millis(50);
const PLATE_LIST_EVERY: Duration = Duration::from_secs(5);
const READINESS_EVERY: Duration = Duration::from_secs(1);
const STATS_LOG_EVERY: Duration = Duration::from_secs(10);
/// A partition behind its end that delivers nothing for this long while its lane is
/// empty is resumed again ([`Merge::stalled`]).
const STALL_REPAIR_AFTER: Duration = Duration::from_secs(3);
/// How long an empty lane that is behind its end, and has delivered nothing since the
/// last rebuild, holds the others (its consumer has not fetched it yet: a new
/// assignment's leader lookup and connection). Afterwards `processing.merge_wait_ms`.
const FIRST_FETCH_WAIT: Duration = Duration::from_secs(10);
/// Without a first assignment by then, state is built for the global streams alone (an
/// instance that gets no partitions still serves /readyz and keeps its units current).
const FIRST_ASSIGNMENT_WAIT: Duration = Duration::from_secs(15);
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
/// The merge's lookup of partition ends blocks the loop: a broker slower than this to
/// answer leaves the merge to its wait (`processing.merge_wait_ms`).
const END_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);
const INIT_TRANSACTIONS_TIMEOUT: Duration = Duration::from_secs(60);

/// Asks `run` to stop: finish and commit the open work, leave the group, return `Ok`.
/// Cloned into signal handlers; the runtime looks at it at least every 50 ms.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What `Command::Run` does: metrics listener, SIGINT/SIGTERM handling, then [`run`].
pub fn run_command(settings: Settings, network: impl Into<Arc<RoadNetwork>>) -> anyhow::Result<()> {
    let network = network.into();
    serve_and_run(
        &settings.clone(),
        move |metrics, readiness, shutdown, liveness| {
            run(settings, network, metrics, readiness, shutdown, liveness)
        },
    )
}

/// What every long-running Kafka command shares: the HTTP listener (/metrics, /healthz,
/// /readyz) and the signal handlers on a small tokio runtime, the watchdog, and `main`,
/// the command's loop, on this thread.
pub(crate) fn serve_and_run(
    settings: &Settings,
    main: impl FnOnce(Arc<Metrics>, Arc<Readiness>, Shutdown, Arc<Liveness>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("roadwatch-http")
        .enable_all()
        .build()
        .context("starting the tokio runtime for the metrics listener")?;
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let liveness = Liveness::new(Duration::from_millis(settings.processing.stall_limit_ms));
    let addr = tokio.block_on(crate::io::http::serve(
        settings.metrics.listen,
        metrics.clone(),
        readiness.clone(),
        Some(liveness.clone()),
    ))?;
    liveness::spawn_watchdog(liveness.clone(), liveness::exit_on_stall)
        .context("starting the watchdog thread")?;
    tracing::info!(%addr, "metrics listener: /metrics /healthz /readyz");
    let shutdown = Shutdown::new();
    let on_signal = shutdown.clone();
    tokio.spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested: committing the open work and leaving the group");
        on_signal.trigger();
        // A second signal means "now": the open transaction is simply never committed
        // (the broker aborts it) and its input is consumed again after the restart.
        wait_for_signal().await;
        tracing::warn!("second stop signal: exiting at once");
        std::process::exit(130);
    });
    let result = main(metrics, readiness, shutdown, liveness);
    tokio.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Consumes the input topics and produces alerts, dispatches and DLQ records until
/// `shutdown` is triggered (then returns `Ok` after committing) or a fatal error occurs.
/// The loop beats `liveness` as it turns ([`crate::io::liveness`]).
pub fn run(
    settings: Settings,
    network: Arc<RoadNetwork>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: Shutdown,
    liveness: Arc<Liveness>,
) -> anyhow::Result<()> {
    readiness.set(false, "starting");
    let k = &settings.kafka;
    let cluster = startup::ensure_topics(k)?;
    let instance = startup::instance_id(k);
    let transactional_id = startup::transactional_id(k, &instance);
    let camera_partitions = cluster.get(&k.topics.camera).copied().unwrap_or(1).max(1);
    // The wall clock enters here, at the adapter's edge; the runtime reads only this.
    let clock = crate::io::clock::system();
    let (sink, group) = sink_and_group(&settings, &cluster, &transactional_id, &metrics, &clock)?;
    let reader_config = startup::side_consumer_config(&settings, &instance);
    let side: Box<dyn Consumer> = Box::new(
        reader_config
            .create::<BaseConsumer>()
            .with_context(|| format!("creating the side consumer for {}", k.bootstrap_servers))?,
    );
    // The merge's lookups of partition ends have a client of their own: on the side
    // consumer's connection a ListOffsets request queues behind its fetch long-poll
    // (a broker answers one connection's requests in order), which held every lookup
    // 5–10 ms at 20,000 records/s (docs/PERFORMANCE.md, "Tail latency").
    let ends: Box<dyn Consumer> =
        Box::new(reader_config.create::<BaseConsumer>().with_context(|| {
            format!("creating the end-lookup client for {}", k.bootstrap_servers)
        })?);
    // Each rebuild reads with a consumer of its own (state_rebuild.rs says why).
    let rebuild_reader: ReaderFactory = Box::new(move || {
        let reader: BaseConsumer = reader_config
            .create()
            .context("creating the state-rebuild consumer")?;
        Ok(Box::new(reader))
    });

    tracing::info!(
        transactional_id = %transactional_id,
        guarantee = ?settings.processing.guarantee,
        group = %k.group_id,
        "Kafka runtime started"
    );
    let parts = Parts {
        clock,
        sink,
        group,
        side,
        ends,
        rebuild_reader,
        camera_partitions,
        liveness,
    };
    let mut runtime = Runtime::new(settings, network, metrics, readiness, shutdown, parts)?;
    let result = runtime.main_loop();
    let closed = runtime.close(result.is_ok());
    result.and(closed)
}

/// What every Kafka stage's loop runs on: the producer (under exactly-once its
/// transactions initialised, which fences any earlier producer with this id, a crashed or
/// hung predecessor, and aborts its open transaction before anything is written), the
/// sink around it, and the group member over `settings.kafka.group_id`.
pub(super) fn sink_and_group(
    settings: &Settings,
    cluster: &std::collections::BTreeMap<String, i32>,
    transactional_id: &str,
    metrics: &Arc<Metrics>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<(Box<dyn Sink>, Box<dyn Group>)> {
    let k = &settings.kafka;
    let mut producer = RdProducer::new(
        startup::producer_config(settings, transactional_id),
        DispatchTopics::new(k, cluster.keys().cloned())?,
    )
    .with_context(|| format!("creating the Kafka producer for {}", k.bootstrap_servers))?;
    if settings.processing.guarantee == Guarantee::ExactlyOnce {
        producer
            .init_transactions(INIT_TRANSACTIONS_TIMEOUT)
            .map_err(|e| {
                anyhow!(
                    "initialising transactions for transactional.id {transactional_id} on {}: {e} \
                     (the broker must allow transactions: transaction.state.log.* settings)",
                    k.bootstrap_servers
                )
            })?;
    }
    let sink = sink::new(
        settings.processing.guarantee,
        Box::new(producer),
        StreamTopics::new(k),
        metrics.clone(),
        clock.clone(),
        Duration::from_millis(settings.processing.commit_interval_ms),
    );
    let group: Box<dyn Group> = Box::new(
        BaseConsumer::<GroupContext>::from_config_and_context(
            &startup::group_consumer_config(settings),
            GroupContext::new(metrics.clone()),
        )
        .with_context(|| format!("creating the group consumer for {}", k.bootstrap_servers))?,
    );
    Ok((sink, group))
}

/// Repeated rewinds (a broker that keeps failing the transaction) wait a little longer
/// each time, up to 5 s, so that a loop does not spin; the caller resets `backoff` after
/// a clean commit. Meanwhile the group is served (heartbeat partner, rebalance
/// callbacks); a record polled here is read again after the rewind's seek.
pub(super) fn back_off(
    backoff: &mut Duration,
    clock: &dyn Clock,
    group: &dyn Group,
    shutdown: &Shutdown,
    liveness: &Liveness,
) {
    let wait = *backoff;
    *backoff = (wait * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let until = clock.now() + wait;
    while clock.now() < until && !shutdown.is_triggered() && !group.revoke_pending() {
        group.poll(Duration::from_millis(20), &mut |_| {});
        liveness.beat();
    }
}

/// Makes the consumer a state rebuild reads the input window with.
type ReaderFactory = Box<dyn Fn() -> anyhow::Result<Box<dyn Reader>>>;

/// What the runtime runs on: the broker's side of the seam and the clock. `run` makes
/// them of librdkafka and the wall clock; unit tests of the in-memory broker and theirs.
struct Parts {
    clock: Arc<dyn Clock>,
    /// The output side; the input side hands it what it applied.
    sink: Box<dyn Sink>,
    group: Box<dyn Group>,
    side: Box<dyn Consumer>,
    /// Looks up partition ends for the merge; never assigned, so it never fetches.
    ends: Box<dyn Consumer>,
    rebuild_reader: ReaderFactory,
    /// Partitions of the camera topic (see [`dead_letters_global`]).
    camera_partitions: i32,
    liveness: Arc<Liveness>,
}

struct Runtime {
    clock: Arc<dyn Clock>,
    settings: Settings,
    network: Arc<RoadNetwork>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: Shutdown,
    liveness: Arc<Liveness>,
    sink: Box<dyn Sink>,
    group: Box<dyn Group>,
    side: Box<dyn Consumer>,
    ends: Box<dyn Consumer>,
    /// The consumer each rebuild creates and drops.
    rebuild_reader: ReaderFactory,
    topics: StreamTopics,
    pipeline: Pipeline,
    out: Vec<Produced>,
    plate_files: PlateListFiles,
    lists: (PlateList, PlateList),
    /// Polled records of every input partition (the group's and the global streams')
    /// waiting to be applied in event-time order (merge.rs).
    merge: Merge<PartitionKey, Queued>,
    /// Partitions of the camera topic: which instance dead-letters a bad record of a
    /// global stream (see [`dead_letters_global`]).
    camera_partitions: i32,
    last_input: Instant,
    rebuilt_once: bool,
    pending: Pending,
    rewind_backoff: Duration,
    /// Where the loop's time goes, logged at debug level with the statistics.
    loop_stats: LoopStats,
    started: Instant,
    backpressure: bool,
    next_plate_check: Instant,
    next_readiness: Instant,
    next_stats_log: Instant,
    error_logged_at: Option<Instant>,
    stall_logged_at: Option<Instant>,
    gave_up_logged_at: Option<Instant>,
    /// When a poll of the group (side) consumer last came back empty: the merge counts
    /// a partition silent only if its consumer was found empty after the wait.
    group_drained_at: Instant,
    side_drained_at: Instant,
}

impl Runtime {
    /// Subscribes the group member to the input topics; nothing is read yet.
    fn new(
        settings: Settings,
        network: Arc<RoadNetwork>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        shutdown: Shutdown,
        parts: Parts,
    ) -> anyhow::Result<Self> {
        let topics = StreamTopics::new(&settings.kafka);
        let (plate_files, watchlist, whitelist) =
            PlateListFiles::load(&settings.ride_hailing_files).map_err(|e| anyhow!("{e}"))?;
        let mut engine = Engine::new(settings.engine.clone(), network.clone());
        engine.set_plate_lists(watchlist.clone(), whitelist.clone());
        let pipeline = Pipeline::new(&settings, engine, Some(metrics.clone()));
        parts
            .group
            .subscribe(&topics.group_topics())
            .context("subscribing to the input topics")?;
        let merge = Merge::new(
            settings.processing.merge_lane_records,
            Duration::from_millis(settings.processing.merge_wait_ms),
            FIRST_FETCH_WAIT,
            settings.engine.time.allowed_lateness_ms,
        );
        let now = parts.clock.now();
        Ok(Runtime {
            clock: parts.clock,
            settings,
            network,
            metrics,
            readiness,
            shutdown,
            liveness: parts.liveness,
            sink: parts.sink,
            group: parts.group,
            side: parts.side,
            ends: parts.ends,
            rebuild_reader: parts.rebuild_reader,
            topics,
            pipeline,
            out: Vec::new(),
            plate_files,
            lists: (watchlist, whitelist),
            merge,
            camera_partitions: parts.camera_partitions,
            last_input: now,
            rebuilt_once: false,
            pending: Pending::default(),
            rewind_backoff: Duration::ZERO,
            loop_stats: LoopStats::default(),
            started: now,
            backpressure: false,
            next_plate_check: now + PLATE_LIST_EVERY,
            next_readiness: now,
            next_stats_log: now + STATS_LOG_EVERY,
            error_logged_at: None,
            stall_logged_at: None,
            gave_up_logged_at: None,
            group_drained_at: now,
            side_drained_at: now,
        })
    }

    fn main_loop(&mut self) -> anyhow::Result<()> {
        while !self.shutdown.is_triggered() {
            self.turn()?;
        }
        Ok(())
    }

    /// One turn of the loop: a rebuild if one is owed, else a batch polled, merged,
    /// applied and served to the sink.
    fn turn(&mut self) -> anyhow::Result<()> {
        // The first beat arms the watchdog; from then on every turn beats it.
        self.liveness.beat();
        self.take_callbacks()?;
        if !self.rebuilt_once && self.clock.now() - self.started >= FIRST_ASSIGNMENT_WAIT {
            self.pending.rebuild = true;
        }
        if self.pending.rebuild {
            if self.pending.rewound {
                self.back_off();
            }
            match self.rebuild() {
                Ok(()) => {}
                Err(RebuildError::Fatal(e)) => return Err(e),
                Err(RebuildError::Transient(e)) => {
                    // A coordinator still waiting for a dead owner's transaction to
                    // time out, a broker restarting: try again shortly.
                    tracing::warn!(error = %format!("{e:#}"), "state rebuild failed; retrying");
                    self.pending.rebuild = true;
                    self.pending.rewound = true;
                }
            }
            return Ok(());
        }
        self.housekeeping();
        self.apply_backpressure()?;
        if self.pending.rebuild {
            // The commit it forced failed: nothing more is applied before the rewind.
            return Ok(());
        }
        self.poll_side()?;
        let wait = self.poll_wait();
        self.poll_group_batch(wait)?;
        self.take_callbacks()?;
        if self.pending.rebuild {
            return Ok(());
        }
        self.apply_merged()?;
        self.repair_stalled();
        if self.rebuilt_once {
            self.idle_advance()?;
        }
        self.serve_sink()
    }

    fn back_off(&mut self) {
        back_off(
            &mut self.rewind_backoff,
            &*self.clock,
            &*self.group,
            &self.shutdown,
            &self.liveness,
        );
    }

    /// Acts on what the group member recorded during the last `poll`.
    fn take_callbacks(&mut self) -> anyhow::Result<()> {
        if let Some(e) = self.group.take_failure() {
            return Err(e);
        }
        for event in self.group.take_events() {
            match event {
                // The second round of a cooperative rebalance often assigns nothing new.
                GroupEvent::Assigned(p) if p.is_empty() && self.rebuilt_once => {}
                GroupEvent::Assigned(p) => {
                    tracing::debug!(partitions = ?p, "assignment changed");
                    self.pending.rebuild = true;
                }
                GroupEvent::Revoking { partitions, lost } => self.give_up(&partitions, lost)?,
                GroupEvent::CommitAnswered(at) => {
                    if let Some(sent) = self.sink.take_async_commit_sent() {
                        self.metrics
                            .transaction_commit
                            .with_label_values(&["at_least_once"])
                            .observe(at.saturating_duration_since(sent).as_secs_f64());
                    }
                }
            }
        }
        Ok(())
    }

    /// Settles the open work before the partitions go, then gives them up: committed,
    /// the next owner starts exactly after it; when the assignment was lost (another
    /// member may own the partitions already) it is aborted instead.
    fn give_up(&mut self, partitions: &[(String, i32)], lost: bool) -> anyhow::Result<()> {
        match self.sink.settle(self.group.committer(), lost) {
            Ok(()) => {}
            Err(SinkError::Fatal(e)) => return Err(e),
            Err(SinkError::Rewind(why)) => {
                tracing::warn!(reason = %why, "open work dropped during a rebalance; rebuilding");
                self.pending.rewound = true;
            }
        }
        let keys: Vec<_> = partitions
            .iter()
            .filter_map(|(topic, p)| self.sink.key_of(topic, *p))
            .collect();
        self.sink.forget(&keys);
        self.group
            .give_up(partitions)
            .map_err(|e| anyhow!("giving up partitions {partitions:?}: {e}"))?;
        tracing::info!(partitions = ?partitions, lost, "partitions revoked");
        self.pending.rebuild = true;
        Ok(())
    }

    fn poll_wait(&self) -> Duration {
        let mut wait = MAX_WAIT;
        if let Some(due) = self.sink.until_due() {
            wait = wait.min(due);
        }
        if !self.merge.is_empty() {
            // Waiting for another partition's records before applying these.
            wait = wait.min(Duration::from_millis(10));
        }
        wait
    }

    /// Takes up to a batch of records from the group consumer, decodes them and queues
    /// them in their partition's lane of the merge. The first `poll` waits up to `wait`;
    /// the rest only drain what librdkafka has fetched.
    fn poll_group_batch(&mut self, wait: Duration) -> anyhow::Result<()> {
        let Runtime {
            clock,
            group,
            pipeline,
            topics,
            merge,
            last_input,
            error_logged_at,
            loop_stats,
            group_drained_at,
            ..
        } = self;
        let now_ms = clock.wall_ms();
        let mut timeout = wait;
        let mut taken = 0;
        let mut full = Vec::new();
        while taken < MAX_BATCH {
            let polled_at = clock.now();
            let polled = group.poll(timeout, &mut |m| {
                let Some(stream) = topics.stream_of(m.topic) else {
                    return;
                };
                if queue_message(merge, pipeline, stream, m, now_ms) {
                    full.push((stream, m.partition));
                }
            });
            loop_stats.polling += clock.now() - polled_at;
            match polled {
                Polled::Record => {}
                Polled::Idle => {
                    loop_stats.empty_polls += 1;
                    *group_drained_at = clock.now();
                    break;
                }
                Polled::Failed(e) => {
                    consumer_error(e, error_logged_at, clock.now())?;
                    break;
                }
            }
            if group.revoke_pending() {
                // Settled before anything more is read (take_callbacks).
                break;
            }
            timeout = Duration::ZERO;
            taken += 1;
        }
        if taken > 0 {
            *last_input = clock.now();
        }
        loop_stats.records += taken as u64;
        loop_stats.batches += 1;
        self.hold(&full, true);
        Ok(())
    }

    /// Applies the merged records, oldest event time first, for as long as no partition
    /// could still deliver an older one (merge.rs), then resumes drained partitions.
    fn apply_merged(&mut self) -> anyhow::Result<()> {
        if self.merge.is_empty() {
            return Ok(());
        }
        let Runtime {
            clock,
            sink,
            group,
            side,
            ends,
            pipeline,
            out,
            topics,
            pending,
            merge,
            backpressure,
            camera_partitions,
            loop_stats,
            group_drained_at,
            side_drained_at,
            ..
        } = self;
        let now_ms = clock.wall_ms();
        let now = clock.now();
        let mut produce_time = Duration::ZERO;
        let mut produced = 0usize;
        // What each consumer knows of an empty lane's partition (the merge decides
        // from it, and from the ends it has looked up, whether the lane is behind).
        // Once per partition per call: it does not change while nothing is polled.
        let mut positions: [Option<Vec<(String, i32, i64)>>; 2] = [None, None];
        let mut known: Vec<(PartitionKey, Reading)> = Vec::new();
        let mut reading = |key: PartitionKey| -> Reading {
            if let Some((_, r)) = known.iter().find(|(k, _)| *k == key) {
                return *r;
            }
            let topic = topics.topic_of(key.0);
            let global = is_global(key.0);
            let position = positions[usize::from(global)]
                .get_or_insert_with(|| {
                    if global {
                        side.positions()
                    } else {
                        group.positions()
                    }
                })
                .iter()
                .find(|(t, p, _)| t == topic && *p == key.1)
                .map_or(-1, |(_, _, o)| *o);
            let high = if global {
                side.cached_end(topic, key.1)
            } else {
                group.cached_end(topic, key.1)
            };
            let r = Reading {
                position,
                high,
                drained_at: Some(if global {
                    *side_drained_at
                } else {
                    *group_drained_at
                }),
            };
            known.push((key, r));
            r
        };
        // At most one lookup of partition ends per call: a head that waits for one
        // (merge.rs) is looked at again after it; waiting on, it is the next call's.
        let mut looked_up = false;
        loop {
            while let Some((key, q)) = merge.pop(now, *backpressure, &mut reading) {
                let (stream, partition) = key;
                let source = DlqSource {
                    topic: Some(topics.topic_of(stream).to_owned()),
                    partition: Some(partition),
                    offset: Some(q.offset),
                    line: None,
                };
                let refused = matches!(q.decoded, Decoded::Refused { .. });
                if !refused
                    || !is_global(stream)
                    || dead_letters_global(&**sink, partition, *camera_partitions)
                {
                    pipeline.apply(stream, q.decoded, source, now_ms, out);
                }
                if is_global(stream) {
                    // Not the group's: no offset to commit, but the next commit records
                    // how far the stream was applied, and the clock it moved.
                    sink.global_applied(key, q.offset, pipeline.engine().clock());
                } else {
                    sink.consumed(key, q.offset, pipeline.engine().clock());
                }
                if !out.is_empty() {
                    produced += out.len();
                    let t = clock.now();
                    let sent = send_all(&mut **sink, out);
                    produce_time += clock.now() - t;
                    if let Err(e) = sent {
                        return handle_sink_error(e, pending);
                    }
                }
            }
            let unsure = merge.take_lookups();
            if looked_up || unsure.is_empty() {
                break;
            }
            looked_up = true;
            let ticket = merge.ticket();
            let started = clock.now();
            // A client that never fetches learns of a new leader late: after a broker
            // failure its lookups failed until the merge gave up (5 s). The side
            // consumer, which fetches, then answers instead, as it did before.
            let found = look_up_ends(&**ends, topics, &unsure).or_else(|e| {
                tracing::debug!(error = %format!("{e:#}"), "looking up partition ends; asking the side consumer");
                look_up_ends(&**side, topics, &unsure)
            });
            loop_stats.end_lookups += 1;
            loop_stats.looking_up += clock.now() - started;
            match found {
                Ok(found) => {
                    for (key, end) in found {
                        merge.confirm(key, end, ticket);
                    }
                }
                // The merge gives up waiting for it after its wait.
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "looking up partition ends"),
            }
        }
        if produced > 0 {
            self.metrics
                .observe_stage(Stage::Produce, produce_time.as_secs_f64());
        }
        self.report_gave_up();
        let resumable = self.merge.resumable();
        self.hold(&resumable, false);
        Ok(())
    }

    /// Counts, and logs at most once a minute, the partitions the merge stopped waiting
    /// for: each time, records of that partition may come in behind the clock.
    fn report_gave_up(&mut self) {
        let gave_up = self.merge.gave_up();
        if gave_up.is_empty() {
            return;
        }
        for (_, why) in &gave_up {
            self.metrics
                .merge_gave_up
                .with_label_values(&[why.as_str()])
                .inc();
        }
        let now = self.clock.now();
        if self
            .gave_up_logged_at
            .map_or(true, |t| now - t >= Duration::from_secs(60))
        {
            self.gave_up_logged_at = Some(now);
            let partitions: Vec<String> = gave_up
                .iter()
                .map(|((stream, p), why)| {
                    format!("{}[{p}] ({})", self.topics.topic_of(*stream), why.as_str())
                })
                .collect();
            tracing::warn!(
                partitions = ?partitions,
                wait_ms = self.settings.processing.merge_wait_ms,
                "event-time merge went on without partitions that delivered nothing within the wait; their next records may be late"
            );
        }
    }

    /// Resumes again the partitions that are behind and deliver nothing. librdkafka can
    /// lose a pause or resume that races an assignment or seek (cf.
    /// confluentinc/librdkafka#5591); a partition left paused would hold its records back
    /// for good. Resuming a partition that is not paused does nothing.
    fn repair_stalled(&mut self) {
        let now = self.clock.now();
        let stalled = self.merge.stalled(now, STALL_REPAIR_AFTER);
        if stalled.is_empty() {
            return;
        }
        if self
            .stall_logged_at
            .map_or(true, |t| now - t >= Duration::from_secs(60))
        {
            self.stall_logged_at = Some(now);
            tracing::warn!(
                partitions = ?stalled,
                "partitions behind their end delivered nothing for {STALL_REPAIR_AFTER:?}; resuming them again"
            );
        }
        self.hold(&stalled, false);
    }

    /// Pauses (or resumes) partitions for the merge, each on its own consumer. Group
    /// partitions stay paused while delivery backpressure holds them all.
    fn hold(&self, keys: &[PartitionKey], pause: bool) {
        if keys.is_empty() {
            return;
        }
        let (global, rest): (Vec<PartitionKey>, Vec<PartitionKey>) =
            keys.iter().partition(|k| is_global(k.0));
        if !global.is_empty() {
            pause_or_resume(&*self.side, &self.topics, &global, pause);
        }
        if !rest.is_empty() && (pause || !self.backpressure) {
            pause_or_resume(&*self.group, &self.topics, &rest, pause);
        }
    }

    /// Takes what the side consumer (global streams) has fetched, without waiting, into
    /// the merge.
    fn poll_side(&mut self) -> anyhow::Result<()> {
        let now_ms = self.clock.wall_ms();
        let mut full = Vec::new();
        let mut error = None;
        for _ in 0..MAX_BATCH {
            let polled = self.side.poll(Duration::ZERO, &mut |m| {
                let Some(stream) = self.topics.stream_of(m.topic) else {
                    return;
                };
                // Positions and acks are input too: the idle wall-clock advance waits
                // for them.
                self.last_input = self.clock.now();
                if queue_message(&mut self.merge, &mut self.pipeline, stream, m, now_ms) {
                    full.push((stream, m.partition));
                }
            });
            match polled {
                Polled::Record => {}
                Polled::Idle => {
                    self.side_drained_at = self.clock.now();
                    break;
                }
                Polled::Failed(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        self.hold(&full, true);
        match error {
            Some(e) => consumer_error(e, &mut self.error_logged_at, self.clock.now()),
            None => Ok(()),
        }
    }

    /// Whether every assigned partition has been read to librdkafka's last known end.
    fn group_caught_up(&self) -> bool {
        let positions: Vec<(PartitionKey, i64)> = self
            .sink
            .positions()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        positions.iter().all(|((stream, partition), next)| {
            let topic = self.topics.topic_of(*stream);
            self.group
                .cached_end(topic, *partition)
                .is_some_and(|high| *next >= high)
        })
    }

    /// Live mode: with every partition read to its end and no record for
    /// `time.idle_advance_after_s`, event time follows the wall clock so that acks still
    /// time out and incidents still clear on a quiet night.
    fn idle_advance(&mut self) -> anyhow::Result<()> {
        let Some(after) = self.settings.processing.idle_advance_after_ms else {
            return Ok(());
        };
        if self.clock.now() - self.last_input < Duration::from_millis(after) {
            return Ok(());
        }
        let has_partitions = !self.sink.positions().is_empty();
        if !has_partitions || !self.merge.is_empty() || !self.group_caught_up() {
            return Ok(());
        }
        // "Read to the end" comes from librdkafka's cached high watermarks, which go stale
        // when the broker is away: input produced meanwhile (producers buffer through an
        // outage) would arrive behind a clock that had followed the wall clock, and be
        // dropped as late. So the clock follows only while a broker has been up for the
        // whole idle period.
        let broker_up_since = self.group.stats().up_since;
        if !broker_up_since.is_some_and(|t| self.clock.now() - t >= Duration::from_millis(after)) {
            return Ok(());
        }
        // The one place event time is moved by the wall clock (its documented rule).
        let now_ms = self.clock.wall_ms();
        let now = EventTime::from_ms(now_ms);
        let Some(clock) = self.pipeline.engine().clock() else {
            // No record yet since the start and none in the rebuild window: no timer can
            // be pending, and moving the clock to "now" would make a first input of past
            // event time (a backlog produced into fresh topics, an incident log played
            // back) late before its first record.
            return Ok(());
        };
        if clock >= now {
            return Ok(());
        }
        self.pipeline.advance_to(now, now_ms, &mut self.out);
        self.sink.clock_advanced(self.pipeline.engine().clock());
        if let Err(e) = send_all(&mut *self.sink, &mut self.out) {
            return handle_sink_error(e, &mut self.pending);
        }
        Ok(())
    }

    /// Delivery reports, and the commit when its interval has passed.
    fn serve_sink(&mut self) -> anyhow::Result<()> {
        let mut result = self.sink.poll(self.group.committer());
        if result.is_ok() && self.sink.commit_due() {
            result = self.sink.commit(self.group.committer());
            if result.is_ok() {
                self.rewind_backoff = Duration::ZERO;
            }
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => handle_sink_error(e, &mut self.pending),
        }
    }

    /// Bounded in-flight work: under exactly-once a full interval is committed early;
    /// under at-least-once the partitions pause until deliveries catch up.
    fn apply_backpressure(&mut self) -> anyhow::Result<()> {
        let max = self.settings.processing.max_in_flight_records;
        let in_flight = self.sink.in_flight();
        let result = match self.sink.bounded_by_commit() {
            true if in_flight >= max => self.sink.commit(self.group.committer()),
            true => Ok(()),
            false => {
                if !self.backpressure && in_flight >= max {
                    if let Ok(a) = self.group.assignment() {
                        let all: Vec<(&str, i32)> =
                            a.iter().map(|(t, p)| (t.as_str(), *p)).collect();
                        let _ = self.group.hold(&all, true);
                    }
                    self.backpressure = true;
                    tracing::debug!(in_flight, "pausing input: deliveries behind");
                } else if self.backpressure && in_flight <= max / 2 {
                    // Not the partitions the merge keeps paused (ahead of the others).
                    let held = self.merge.paused();
                    if let Ok(a) = self.group.assignment() {
                        let free: Vec<(&str, i32)> = a
                            .iter()
                            .filter(|(t, p)| {
                                let key = self.topics.stream_of(t).map(|s| (s, *p));
                                !key.is_some_and(|k| held.contains(&k))
                            })
                            .map(|(t, p)| (t.as_str(), *p))
                            .collect();
                        let _ = self.group.hold(&free, false);
                    }
                    self.backpressure = false;
                }
                Ok(())
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => handle_sink_error(e, &mut self.pending),
        }
    }

    fn housekeeping(&mut self) {
        let now = self.clock.now();
        if now >= self.next_plate_check {
            self.next_plate_check = now + PLATE_LIST_EVERY;
            if let Some((watch, white)) = self.plate_files.reload_if_changed() {
                self.pipeline
                    .engine_mut()
                    .set_plate_lists(watch.clone(), white.clone());
                self.lists = (watch, white);
            }
        }
        if now >= self.next_readiness {
            self.next_readiness = now + READINESS_EVERY;
            self.update_readiness();
        }
        if now >= self.next_stats_log {
            self.next_stats_log = now + STATS_LOG_EVERY;
            let ls = std::mem::take(&mut self.loop_stats);
            tracing::debug!(
                records = ls.records,
                batches = ls.batches,
                empty_polls = ls.empty_polls,
                polling_s = ls.polling.as_secs_f64(),
                end_lookups = ls.end_lookups,
                looking_up_s = ls.looking_up.as_secs_f64(),
                merge_queued = self.merge.len(),
                merge_paused = self.merge.paused().len(),
                "runtime loop"
            );
            let stats = self.group.stats();
            let producer = self.sink.producer_stats();
            // The consumer's round trips include fetch long-polls (fetch.wait.max.ms)
            // when input is quiet; the producer's are the broker's real answer time.
            tracing::info!(
                lag = stats.total_lag,
                consumer_rtt_p99_ms = stats.rtt_p99_us as f64 / 1000.0,
                producer_rtt_p99_ms = producer.rtt_p99_us as f64 / 1000.0,
                producer_queue_p99_ms = producer.int_latency_p99_us as f64 / 1000.0,
                "kafka statistics"
            );
        }
    }

    fn update_readiness(&self) {
        let stats = self.group.stats();
        let partitions = self.sink.positions().len();
        let max_lag = self.settings.processing.ready_max_lag_records;
        let (ready, reason) = if !self.rebuilt_once || self.pending.rebuild {
            (false, "rebuilding detector state".to_owned())
        } else if partitions == 0 {
            (false, "no partitions assigned".to_owned())
        } else if stats.received.is_none() {
            (
                false,
                "waiting for the first librdkafka statistics".to_owned(),
            )
        } else if stats.brokers_up == 0 {
            (
                false,
                format!("no broker reachable (0 of {} up)", stats.brokers),
            )
        } else if stats.total_lag as u64 > max_lag {
            (
                false,
                format!(
                    "lagging {} records behind (processing.ready_max_lag_records = {max_lag})",
                    stats.total_lag
                ),
            )
        } else {
            (
                true,
                format!("{partitions} partitions, lag {}", stats.total_lag),
            )
        };
        self.readiness.set(ready, reason);
    }

    /// Settles open work, rebuilds a fresh engine from the input window of the current
    /// assignment (output suppressed), and puts every consumer at the committed offsets.
    fn rebuild(&mut self) -> Result<(), RebuildError> {
        let started = self.clock.now();
        self.readiness.set(false, "rebuilding detector state");
        // What was polled and not applied is read again after the seek below; librdkafka
        // keeps a pause across seeks and assignments, so the merge's pauses are lifted.
        let held = self.merge.reset([]);
        self.hold(&held, false);
        // Partitions this instance keeps, with the offsets it has just committed itself:
        // no need to ask the coordinator, whose answer for freshly committed
        // transactional offsets waits until their markers are written (~1 s).
        let (kept, own) = {
            let sink = &mut self.sink;
            // First a producer that failed fatally (not fenced) is replaced and an abort
            // that timed out is finished: both wait for the broker, so during an outage
            // the rebuild fails here as transient and is retried with back-off.
            let settled = match sink.recover() {
                Ok(()) if self.pending.rewound => {
                    // After a rewind nothing is committed: what was consumed since the
                    // failure lies past the dropped interval, and committing its offsets
                    // would skip that interval's input for good.
                    sink.abandon()
                        .map(|()| (HashMap::new(), Default::default()))
                }
                Ok(()) => sink
                    .settle(self.group.committer(), false)
                    .map(|()| sink.committed()),
                Err(e) => Err(e),
            };
            match settled {
                Ok(kept) => kept,
                Err(SinkError::Fatal(e)) => return Err(RebuildError::Fatal(e)),
                Err(SinkError::Rewind(why)) if sink.needs_recovery() => {
                    return Err(RebuildError::Transient(anyhow!(
                        "{why} (waiting for the broker)"
                    )))
                }
                Err(SinkError::Rewind(_)) => (HashMap::new(), Default::default()),
            }
        };
        self.pending = Pending::default();
        let assignment = self
            .group
            .assignment()
            .context("reading the consumer assignment")?;
        let mut group_partitions = Vec::new();
        let mut clock_floor: Option<EventTime> = None;
        // How far the global streams had been applied when each partition's offset was
        // committed; the least of them is where their replay ends.
        let mut progress = GlobalProgress::default();
        // Whether any partition of the assignment has output out (committed offsets).
        let mut committed_any = false;
        let mut unknown: Vec<(&str, i32)> = Vec::new();
        for (topic, partition) in &assignment {
            let Some(stream) = self.topics.stream_of(topic) else {
                continue;
            };
            match kept.get(&(stream, *partition)) {
                Some(&live) => {
                    group_partitions.push(GroupPartition {
                        stream,
                        topic: topic.clone(),
                        partition: *partition,
                        live,
                    });
                    if let Some(c) = own.clock {
                        clock_floor = Some(clock_floor.map_or(c, |f: EventTime| f.min(c)));
                    }
                    committed_any = true;
                    progress.add(Some(&own.globals).filter(|g| !g.is_empty()).cloned());
                }
                None => unknown.push((topic, *partition)),
            }
        }
        let committed = if unknown.is_empty() {
            Vec::new()
        } else {
            self.group
                .committed(&unknown, QUERY_TIMEOUT)
                .context("reading the committed offsets of the assignment")?
        };
        for c in committed {
            let Some(stream) = self.topics.stream_of(&c.topic) else {
                continue;
            };
            let live = match c.offset {
                Some(o) => {
                    committed_any = true;
                    if let Some(clock) = clock_from_metadata(&c.metadata) {
                        clock_floor = Some(clock_floor.map_or(clock, |f: EventTime| f.min(clock)));
                    }
                    progress.add(globals_from_metadata(&c.metadata));
                    o
                }
                // Never committed: no output of it is out, so it bounds nothing.
                None => self.reset_offset(&c.topic, c.partition)?,
            };
            group_partitions.push(GroupPartition {
                stream,
                topic: c.topic,
                partition: c.partition,
                live,
            });
        }
        let committed_at = self.clock.now() - started;
        let mut globals = Vec::new();
        for (stream, topic) in self.topics.global_topics() {
            for partition in self.partitions_of(topic)? {
                globals.push(GlobalPartition {
                    stream,
                    topic: topic.to_owned(),
                    partition,
                    cut: if group_partitions.is_empty() || committed_any {
                        progress
                            .until((stream, partition))
                            .map_or(GlobalCut::ByTime, GlobalCut::At)
                    } else {
                        GlobalCut::Nothing
                    },
                });
            }
        }
        let exact = globals
            .iter()
            .filter(|g| g.cut != GlobalCut::ByTime)
            .count();
        let window = self.settings.processing.state_rebuild_window_ms as i64;
        let request = RebuildRequest {
            group: group_partitions.clone(),
            globals,
            since_ms: self.clock.wall_ms() - window,
            clock_floor,
        };

        let mut engine = Engine::new(self.settings.engine.clone(), self.network.clone());
        engine.set_plate_lists(self.lists.0.clone(), self.lists.1.clone());
        // No metrics: replayed records were counted when they were first processed.
        let mut fresh = Pipeline::new(&self.settings, engine, None);
        let group = &self.group;
        let shutdown = &self.shutdown;
        let liveness = &self.liveness;
        let mut keepalive = || {
            // A long window is progress, not a stall.
            liveness.beat();
            // Keeps the member within max.poll.interval.ms and serves rebalance
            // callbacks; records returned here are dropped and read again after the seek.
            // A revocation ends the rebuild: the group waits for it, and the state
            // rebuilt would be of partitions about to go.
            group.poll(Duration::ZERO, &mut |_| {});
            !shutdown.is_triggered() && !group.revoke_pending()
        };
        let reader = (self.rebuild_reader)()?;
        let outcome =
            state_rebuild::rebuild(&*reader, &request, &mut fresh, &mut keepalive, &*self.clock)?;
        drop(reader);
        if outcome.interrupted {
            return Ok(());
        }
        std::mem::swap(self.pipeline.engine_mut(), fresh.engine_mut());
        self.metrics
            .rebase_dispatch(self.pipeline.engine().dispatch_stats());

        // Consumers to the committed offsets: what was consumed after them is applied
        // again, now by an engine that has not seen it.
        let mut positions: HashMap<PartitionKey, i64> = HashMap::new();
        if !group_partitions.is_empty() {
            let seek: Vec<(&str, i32, i64)> = group_partitions
                .iter()
                .map(|g| (g.topic.as_str(), g.partition, g.live))
                .collect();
            for g in &group_partitions {
                positions.insert((g.stream, g.partition), g.live);
            }
            // A partition revoked meanwhile fails its seek: the pending event rebuilds
            // again.
            if let Err(e) = self.group.seek(&seek, QUERY_TIMEOUT) {
                tracing::warn!(error = %e, "seeking to the committed offsets");
            }
        }
        self.sink
            .reset_positions(positions, outcome.global_resume.iter().copied().collect());

        let side: Vec<(&str, i32, i64)> = outcome
            .global_resume
            .iter()
            .map(|((stream, p), offset)| (self.topics.topic_of(*stream), *p, *offset))
            .collect();
        self.place_side_consumer(&side)?;
        // Each lane with the end the rebuild saw: until its consumer has fetched it, the
        // lane counts as behind that far (merge.rs), so neither consumer runs ahead.
        let end_of = |key: PartitionKey| {
            outcome
                .ends
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(-1, |(_, e)| *e)
        };
        let lanes = group_partitions
            .iter()
            .map(|g| ((g.stream, g.partition), g.live))
            .chain(outcome.global_resume.iter().copied())
            .map(|(key, next)| (key, next, end_of(key)));
        self.merge.reset(lanes);

        if self.backpressure {
            let current = self.group.assignment().unwrap_or(assignment);
            let all: Vec<(&str, i32)> = current.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            let _ = self.group.hold(&all, false);
            self.backpressure = false;
        }
        self.rebuilt_once = true;
        self.metrics.state_rebuilds.inc();
        self.last_input = self.clock.now();
        tracing::info!(
            partitions = group_partitions.len(),
            replayed = outcome.replayed,
            global_partitions = outcome.global_resume.len(),
            global_exact = exact,
            replay_seconds = outcome.elapsed.as_secs_f64(),
            total_seconds = (self.clock.now() - started).as_secs_f64(),
            committed_seconds = committed_at.as_secs_f64(),
            window_s = window / 1000,
            instance = %self.settings.kafka.instance_id,
            "detector state rebuilt"
        );
        self.update_readiness();
        Ok(())
    }

    /// Puts the side consumer at the rebuild's resume offsets: a seek when it already
    /// holds those partitions, an assignment otherwise. Re-assigning the same partitions
    /// on every rebuild (a run of aborts rebuilds twice a second) exposes librdkafka
    /// 2.12's assignment teardown race (confluentinc/librdkafka#5573: a second stop for
    /// a partition whose first is still pending fails the assertion
    /// `rktp->rktp_started`); one CI run aborted on that assertion during the
    /// abort-and-rewind test.
    fn place_side_consumer(&self, side: &[(&str, i32, i64)]) -> anyhow::Result<()> {
        let held = self.side.assignment().unwrap_or_default();
        if !side.is_empty()
            && held.len() == side.len()
            && side
                .iter()
                .all(|(t, p, _)| held.iter().any(|(ht, hp)| ht == t && hp == p))
        {
            match self.side.seek(side, QUERY_TIMEOUT) {
                Ok(done) if done.iter().all(|ok| *ok) => return Ok(()),
                Ok(_) | Err(_) => {
                    tracing::debug!("seeking the side consumer failed; assigning it again");
                }
            }
        }
        self.side
            .assign(side)
            .context("assigning the side consumer")
    }

    /// Where a partition without a committed offset starts (`auto.offset.reset`).
    fn reset_offset(&self, topic: &str, partition: i32) -> anyhow::Result<i64> {
        let (low, high) = self
            .side
            .watermarks(topic, partition, QUERY_TIMEOUT)
            .with_context(|| format!("watermarks of {topic}[{partition}]"))?;
        let reset = self
            .settings
            .kafka
            .options
            .get("auto.offset.reset")
            .map(String::as_str)
            .unwrap_or("earliest");
        Ok(match reset {
            "latest" | "largest" | "end" => high,
            _ => low,
        })
    }

    fn partitions_of(&self, topic: &str) -> anyhow::Result<Vec<i32>> {
        self.side
            .partitions_of(topic, QUERY_TIMEOUT)
            .with_context(|| format!("fetching the partitions of {topic}"))
    }

    /// Commits the open work (clean stop) and leaves the group.
    fn close(self, clean: bool) -> anyhow::Result<()> {
        self.readiness.set(false, "shutting down");
        let Runtime {
            mut sink,
            group,
            side,
            clock,
            ..
        } = self;
        let mut result = Ok(());
        {
            if clean {
                let started = clock.now();
                match sink.settle(group.committer(), false) {
                    Ok(()) => tracing::info!(
                        seconds = (clock.now() - started).as_secs_f64(),
                        "open work committed"
                    ),
                    Err(SinkError::Rewind(why)) => tracing::warn!(
                        reason = %why,
                        "the last interval's work was dropped; it is consumed again after a restart"
                    ),
                    Err(SinkError::Fatal(e)) => result = Err(e),
                }
            }
            sink.disable();
        }
        tracing::debug!("closing the side consumer");
        drop(side);
        group.leave();
        // The producer flushes what it holds as it goes.
        drop(sink);
        tracing::info!("Kafka runtime stopped");
        result
    }
}

/// The current end of each partition (one batched ListOffsets; under read_committed the
/// last stable offset), for the merge's check that a lane caught up by its consumer's
/// last fetch still is.
fn look_up_ends(
    consumer: &dyn Consumer,
    topics: &StreamTopics,
    keys: &[PartitionKey],
) -> anyhow::Result<Vec<(PartitionKey, i64)>> {
    let list: Vec<(&str, i32)> = keys
        .iter()
        .map(|(stream, partition)| (topics.topic_of(*stream), *partition))
        .collect();
    let ends = consumer.list_offsets(&list, ListAt::End, END_LOOKUP_TIMEOUT)?;
    Ok(keys
        .iter()
        .zip(ends)
        .filter_map(|(key, end)| Some((*key, end?)))
        .collect())
}

/// Decodes a polled record into its partition's lane of the merge; true when the lane
/// is now full (the caller pauses the partition).
fn queue_message(
    merge: &mut Merge<PartitionKey, Queued>,
    pipeline: &mut Pipeline,
    stream: Stream,
    message: Fetched<'_>,
    now_ms: i64,
) -> bool {
    let key = (stream, message.partition);
    if !merge.wants(key, message.offset) {
        // Revoked or newly assigned (the rebuild seeks it again), or fetched again
        // after a resume.
        return false;
    }
    let decoded = pipeline.decode(stream, message.payload, Some(now_ms));
    let ts = decoded.ts().map(EventTime::ms);
    let queued = Queued {
        offset: message.offset,
        decoded,
    };
    merge.push(key, message.offset, ts, queued) == Pushed::QueuedFull
}

/// Every instance reads the global streams, so a bad record there would reach the
/// dead-letter topic (and `roadwatch_dlq_total`) once per instance. Only the instance
/// that holds camera partition `p mod n` dead-letters those of global partition `p`:
/// every camera partition has exactly one owner at a time. Around a rebalance a record
/// may be dead-lettered by both the old and the new owner, never by neither.
fn dead_letters_global(sink: &dyn Sink, partition: i32, camera_partitions: i32) -> bool {
    sink.positions()
        .contains_key(&(Stream::Camera, partition.rem_euclid(camera_partitions)))
}

/// `C` is a consumer or the group member (a `dyn Group` is not a `dyn Consumer` before
/// Rust 1.86's trait upcasting).
fn pause_or_resume<C: Consumer + ?Sized>(
    consumer: &C,
    topics: &StreamTopics,
    keys: &[PartitionKey],
    pause: bool,
) {
    let list: Vec<(&str, i32)> = keys
        .iter()
        .map(|(stream, partition)| (topics.topic_of(*stream), *partition))
        .collect();
    if let Err(e) = consumer.hold(&list, pause) {
        tracing::warn!(error = %e, pause, "pausing or resuming partitions for the merge");
    }
}

pub(super) fn send_all(sink: &mut dyn Sink, out: &mut Vec<Produced>) -> Result<(), SinkError> {
    // On an error the rest is dropped with the drain: the rewind produces it again.
    for p in out.drain(..) {
        sink.send(&p)?;
    }
    Ok(())
}

/// Fatal errors end `run`; a rewind marks the state for a rebuild from the committed
/// offsets.
fn handle_sink_error(e: SinkError, pending: &mut Pending) -> anyhow::Result<()> {
    match e {
        SinkError::Fatal(e) => Err(e),
        SinkError::Rewind(why) => {
            tracing::warn!(reason = %why, "rewinding to the committed offsets");
            pending.rebuild = true;
            pending.rewound = true;
            Ok(())
        }
    }
}

enum RebuildError {
    /// The producer cannot go on: `run` ends.
    Fatal(anyhow::Error),
    /// Anything else (a query timed out, a broker is away): the rebuild is retried.
    Transient(anyhow::Error),
}

impl From<anyhow::Error> for RebuildError {
    fn from(e: anyhow::Error) -> Self {
        RebuildError::Transient(e)
    }
}

#[derive(Debug, Clone, Default)]
struct LoopStats {
    records: u64,
    batches: u64,
    empty_polls: u64,
    /// Time inside the group consumer's `poll` (waiting for and fetching records).
    polling: Duration,
    /// The merge's lookups of partition ends, and the time they blocked the loop.
    end_lookups: u64,
    looking_up: Duration,
}

/// The least recorded global-stream progress over the group partitions of a rebuild.
/// A partition committed without a record of it (by an older version, or by another
/// tool) leaves every global partition without one.
#[derive(Debug, Default)]
struct GlobalProgress {
    least: Option<HashMap<PartitionKey, i64>>,
    incomplete: bool,
}

impl GlobalProgress {
    fn add(&mut self, globals: Option<HashMap<PartitionKey, i64>>) {
        let Some(globals) = globals else {
            self.incomplete = true;
            return;
        };
        match &mut self.least {
            None => self.least = Some(globals),
            Some(least) => {
                // A global partition one commit knows and another does not: unknown.
                least.retain(|k, _| globals.contains_key(k));
                for (k, v) in least.iter_mut() {
                    *v = (*v).min(globals[k]);
                }
            }
        }
    }

    /// Where the replay of a global partition ends; `None`: cut it by time. The least
    /// offset: partitions taken over from two previous owners were committed at
    /// different points, and the records between them are applied live. For the
    /// partitions of the owner that had applied them, that may repeat an output (a
    /// decline re-dispatched twice); the greatest offset would instead skip the output
    /// the other owner never produced. A repeat is the lesser harm.
    fn until(&self, key: PartitionKey) -> Option<i64> {
        if self.incomplete {
            return None;
        }
        self.least.as_ref().and_then(|l| l.get(&key).copied())
    }
}

/// A group record polled and decoded, waiting in the merge.
struct Queued {
    offset: i64,
    decoded: Decoded,
}

/// A rebuild the loop owes before it applies another record.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    rebuild: bool,
    /// Open work was dropped: every position must come from the coordinator again.
    rewound: bool,
}

/// Consumer errors are transient (a broker restarting, a leader moving) unless
/// librdkafka calls them fatal; transient ones are logged at most every 10 s.
pub(super) fn consumer_error(
    e: BrokerError,
    logged_at: &mut Option<Instant>,
    now: Instant,
) -> anyhow::Result<()> {
    if e.fatal {
        return Err(anyhow!("fatal Kafka consumer error: {e}"));
    }
    if e.kind == ErrorKind::Denied {
        return Err(anyhow!(
            "not authorized to read: {e} (the brokers' ACLs; docs/SECURITY.md, \"Kafka ACLs\")"
        ));
    }
    if logged_at.map_or(true, |t| now - t >= Duration::from_secs(10)) {
        *logged_at = Some(now);
        tracing::warn!(error = %e, "Kafka consumer error (retrying)");
    }
    Ok(())
}

#[cfg(test)]
mod seam_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn globals(pairs: &[(Stream, i32, i64)]) -> Option<HashMap<PartitionKey, i64>> {
        Some(pairs.iter().map(|&(s, p, o)| ((s, p), o)).collect())
    }

    #[test]
    fn the_global_replay_ends_at_the_least_recorded_offset_or_is_cut_by_time() {
        let mut progress = GlobalProgress::default();
        assert_eq!(progress.until((Stream::Ack, 0)), None, "nothing recorded");
        progress.add(globals(&[
            (Stream::Patrol, 0, 500),
            (Stream::Ack, 0, 40),
            (Stream::Ack, 1, 7),
        ]));
        progress.add(globals(&[(Stream::Patrol, 0, 450), (Stream::Ack, 0, 41)]));
        assert_eq!(progress.until((Stream::Patrol, 0)), Some(450));
        assert_eq!(progress.until((Stream::Ack, 0)), Some(40));
        // Known to one commit only (a partition added since): cut by time.
        assert_eq!(progress.until((Stream::Ack, 1)), None);
        // A commit without a record (an older version): everything cut by time.
        progress.add(None);
        assert_eq!(progress.until((Stream::Patrol, 0)), None);
    }
}
