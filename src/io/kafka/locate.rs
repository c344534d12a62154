//! `roadwatch locate`: the first stage of the scale-out topology (docs/SCALING.md).
//!
//! A member of its own consumer group (`<kafka.group_id>-locate`) over the camera, plate
//! and weather topics. Each record is decoded and checked as `run` checks it (a refusal
//! goes to the dead-letter topic), then sent to the repartition partition of the key its
//! rule's state needs ([`super::repartition`]). It keeps no state, so a rebalance or a
//! restart costs nothing to rebuild: the consumers go back to the committed offsets.
//!
//! Under exactly-once the repartition records, the dead letters, the watermarks and the
//! consumed offsets commit in one transaction, so a `read_committed` owner downstream
//! sees each input record's sightings exactly once. Under at-least-once a restart may
//! write a sighting again; owners drop it by its lane and offset.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use super::broker::{Fetched, Group, GroupEvent, Polled};
use super::repartition::record::Lane;
use super::repartition::route::Router;
use super::repartition::RepartitionTopics;
use super::runtime::{consumer_error, send_all, serve_and_run, Shutdown};
use super::sink::{PartitionKey, Sink, SinkError};
use super::startup::{self, StreamTopics};
use crate::config::{PlateKeySource, Settings};
use crate::core::model::{DlqSource, EventTime};
use crate::core::roads::RoadNetwork;
use crate::io::clock::Clock;
use crate::io::http::Readiness;
use crate::io::liveness::Liveness;
use crate::io::metrics::Metrics;
use crate::io::pipeline::{dead_letter, Decoded, Produced, RecordDecoder};

const MAX_BATCH: usize = 5_000;
const MAX_WAIT: Duration = Duration::from_millis(50);
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
const STATS_LOG_EVERY: Duration = Duration::from_secs(10);
/// How often every lane read is marked, idle or not (`Router::heartbeat`).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// `roadwatch locate` with its HTTP listener and signal handling.
pub fn run_command(settings: Settings, network: Arc<RoadNetwork>) -> anyhow::Result<()> {
    serve_and_run(
        &settings.clone(),
        move |metrics, readiness, shutdown, liveness| {
            run(settings, network, metrics, readiness, shutdown, liveness)
        },
    )
}

/// The settings of the locate stage's clients: its own group, hence its own
/// transactional id, beside a `run` of the same `kafka.group_id`.
pub fn stage_settings(settings: &Settings) -> anyhow::Result<Settings> {
    if settings.plate_key_source == PlateKeySource::Generated {
        // Plates are keyed by their pseudonym: under a key of its own, each instance
        // would send one plate's reads to a different owner.
        bail!(
            "privacy.plate_key: `roadwatch locate` keys plate reads by their pseudonym, so \
             every instance must share one key; set privacy.plate_key or \
             privacy.plate_key_file (docs/SECURITY.md)"
        );
    }
    let mut s = settings.clone();
    s.kafka.group_id = format!("{}-locate", settings.kafka.group_id);
    Ok(s)
}

/// Reads the input topics and writes the repartition topics until `shutdown` (then
/// commits and returns `Ok`) or a fatal error.
pub fn run(
    settings: Settings,
    network: Arc<RoadNetwork>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: Shutdown,
    liveness: Arc<Liveness>,
) -> anyhow::Result<()> {
    readiness.set(false, "starting");
    let application = settings.kafka.group_id.clone();
    let settings = stage_settings(&settings)?;
    let k = &settings.kafka;
    let cluster = startup::ensure_topics(k)?;
    let repartition = RepartitionTopics::new(&application);
    startup::ensure_repartition_topics(k, &repartition.all(), settings.scaling.partitions)?;
    let instance = startup::instance_id(k);
    let transactional_id = startup::transactional_id(k, &instance);
    let clock = crate::io::clock::system();
    let (sink, group) =
        super::runtime::sink_and_group(&settings, &cluster, &transactional_id, &metrics, &clock)?;
    tracing::info!(
        transactional_id = %transactional_id,
        group = %k.group_id,
        partitions = settings.scaling.partitions,
        topics = ?repartition.all(),
        "locate stage started"
    );
    let parts = Parts {
        clock,
        sink,
        group,
        liveness,
    };
    let mut stage = Locate::new(
        &settings,
        repartition,
        network,
        metrics,
        readiness,
        shutdown,
        parts,
    )?;
    let result = stage.main_loop();
    let closed = stage.close(result.is_ok());
    result.and(closed)
}

/// What the stage runs on: librdkafka and the wall clock in `run`; the in-memory
/// broker and its clock in the unit tests.
pub(crate) struct Parts {
    pub clock: Arc<dyn Clock>,
    pub sink: Box<dyn Sink>,
    pub group: Box<dyn Group>,
    pub liveness: Arc<Liveness>,
}

pub(crate) struct Locate {
    clock: Arc<dyn Clock>,
    sink: Box<dyn Sink>,
    group: Box<dyn Group>,
    liveness: Arc<Liveness>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: Shutdown,
    topics: StreamTopics,
    dlq: String,
    decoder: RecordDecoder,
    router: Router,
    max_in_flight: usize,
    out: Vec<Produced>,
    /// Open work was dropped: the consumers go back to the committed offsets first.
    rewind: bool,
    /// The input is paused until deliveries catch up (at-least-once).
    backpressure: bool,
    rewind_backoff: Duration,
    error_logged_at: Option<Instant>,
    next_stats_log: Instant,
    next_heartbeat: Instant,
    records: u64,
    sightings: u64,
}

impl Locate {
    pub(crate) fn new(
        settings: &Settings,
        repartition: RepartitionTopics,
        network: Arc<RoadNetwork>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        shutdown: Shutdown,
        parts: Parts,
    ) -> anyhow::Result<Self> {
        let topics = StreamTopics::new(&settings.kafka);
        parts
            .group
            .subscribe(&topics.group_topics())
            .context("subscribing to the input topics")?;
        let engine = &settings.engine;
        let router = Router::new(
            repartition,
            settings.scaling.partitions as u32,
            network,
            engine.pedestrian.clone(),
            engine.ride_hailing.plate_key.clone(),
        );
        let now = parts.clock.now();
        Ok(Locate {
            clock: parts.clock,
            sink: parts.sink,
            group: parts.group,
            liveness: parts.liveness,
            metrics,
            readiness,
            shutdown,
            topics,
            dlq: settings.kafka.topics.dlq.clone(),
            decoder: RecordDecoder::new(engine.time.max_future_skew_ms, engine.input),
            router,
            max_in_flight: settings.processing.max_in_flight_records,
            out: Vec::new(),
            rewind: false,
            backpressure: false,
            rewind_backoff: Duration::ZERO,
            error_logged_at: None,
            next_stats_log: now + STATS_LOG_EVERY,
            next_heartbeat: now,
            records: 0,
            sightings: 0,
        })
    }

    fn main_loop(&mut self) -> anyhow::Result<()> {
        while !self.shutdown.is_triggered() {
            self.turn()?;
        }
        Ok(())
    }

    /// One turn: a rewind if one is owed, else a batch polled, routed and served.
    pub(crate) fn turn(&mut self) -> anyhow::Result<()> {
        self.liveness.beat();
        self.take_callbacks()?;
        if self.rewind {
            self.back_off();
            return self.rewind_to_committed();
        }
        self.log_stats();
        let in_flight = self.sink.in_flight();
        if in_flight >= self.max_in_flight && self.sink.bounded_by_commit() {
            // Exactly-once: the full interval is committed early.
            let r = self.sink.commit(self.group.committer());
            self.sink_result(r)?;
        } else {
            // At-least-once: the input pauses until the deliveries catch up.
            if !self.backpressure && in_flight >= self.max_in_flight {
                self.hold_all(true);
            } else if self.backpressure && in_flight <= self.max_in_flight / 2 {
                self.hold_all(false);
            }
            self.poll_batch()?;
            self.take_callbacks()?;
            if self.rewind {
                return Ok(());
            }
            self.heartbeat();
            if let Err(e) = send_all(&mut *self.sink, &mut self.out) {
                return self.sink_result(Err(e));
            }
        }
        let mut r = self.sink.poll(self.group.committer());
        if r.is_ok() && self.sink.commit_due() {
            r = self.sink.commit(self.group.committer());
            if r.is_ok() {
                self.rewind_backoff = Duration::ZERO;
            }
        }
        self.sink_result(r)
    }

    /// Up to a batch of records, each routed (or dead-lettered) with its offset, and one
    /// watermark per partition after them.
    fn poll_batch(&mut self) -> anyhow::Result<()> {
        let mut wait = MAX_WAIT;
        if let Some(due) = self.sink.until_due() {
            wait = wait.min(due);
        }
        let now_ms = self.clock.wall_ms();
        let Locate {
            group,
            sink,
            topics,
            decoder,
            router,
            out,
            metrics,
            dlq,
            ..
        } = self;
        let mut taken = 0;
        while taken < MAX_BATCH {
            let polled = group.poll(wait, &mut |m: Fetched<'_>| {
                let Some(stream) = topics.stream_of(m.topic) else {
                    return;
                };
                let lane = Lane {
                    stream,
                    partition: m.partition,
                };
                match decoder.decode(stream, m.payload, Some(now_ms)) {
                    Decoded::Record(record) => {
                        router.route(lane, m.offset, &record, m.payload, out);
                        sink.consumed((stream, m.partition), m.offset, Some(record.ts()));
                    }
                    Decoded::Refused { reject, value } => {
                        metrics.dlq(reject.reason.as_str());
                        let source = DlqSource {
                            topic: Some(m.topic.to_owned()),
                            partition: Some(m.partition),
                            offset: Some(m.offset),
                            line: None,
                        };
                        out.push(dead_letter(dlq, &reject, Some(stream), source, &value));
                        router.passed(lane, m.offset, None);
                        sink.consumed((stream, m.partition), m.offset, None::<EventTime>);
                    }
                }
            });
            match polled {
                Polled::Record => {}
                Polled::Idle => break,
                Polled::Failed(e) => {
                    consumer_error(e, &mut self.error_logged_at, self.clock.now())?;
                    break;
                }
            }
            taken += 1;
            wait = Duration::ZERO;
            if group.revoke_pending() {
                break;
            }
        }
        if taken > 0 {
            self.records += taken as u64;
            self.sightings += self.out.len() as u64;
            self.router.watermarks(&mut self.out);
        }
        Ok(())
    }

    fn hold_all(&mut self, pause: bool) {
        if let Ok(a) = self.group.assignment() {
            let all: Vec<(&str, i32)> = a.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            if let Err(e) = self.group.hold(&all, pause) {
                tracing::warn!(error = %e, pause, "pausing or resuming the input");
            }
        }
        self.backpressure = pause;
    }

    /// Marks every lane read, idle ones too, once a second.
    fn heartbeat(&mut self) {
        let now = self.clock.now();
        if now < self.next_heartbeat {
            return;
        }
        self.next_heartbeat = now + HEARTBEAT_EVERY;
        let positions: Vec<(Lane, i64)> = self
            .group
            .positions()
            .into_iter()
            .filter(|(_, _, next)| *next >= 0)
            .filter_map(|(topic, partition, next)| {
                let stream = self.topics.stream_of(&topic)?;
                Some((Lane { stream, partition }, next))
            })
            .collect();
        self.router.heartbeat(&positions, &mut self.out);
    }

    fn take_callbacks(&mut self) -> anyhow::Result<()> {
        if let Some(e) = self.group.take_failure() {
            return Err(e);
        }
        for event in self.group.take_events() {
            match event {
                GroupEvent::Assigned(p) => {
                    tracing::info!(partitions = ?p, "locate: partitions assigned");
                    self.readiness.set(true, "");
                }
                GroupEvent::Revoking { partitions, lost } => self.give_up(&partitions, lost)?,
                GroupEvent::CommitAnswered(_) => {}
            }
        }
        Ok(())
    }

    /// Commits the open work before the partitions go (aborts it when the assignment
    /// was lost: the rest is then read again from the committed offsets).
    fn give_up(&mut self, partitions: &[(String, i32)], lost: bool) -> anyhow::Result<()> {
        // Routed but not sent yet: sent now, inside the work being settled.
        if let Err(e) = send_all(&mut *self.sink, &mut self.out) {
            self.sink_result(Err(e))?;
        }
        match self.sink.settle(self.group.committer(), lost) {
            Ok(()) => {}
            Err(SinkError::Fatal(e)) => return Err(e),
            Err(SinkError::Rewind(why)) => {
                tracing::warn!(reason = %why, "open work dropped during a rebalance");
                self.rewind = true;
            }
        }
        if lost {
            self.rewind = true;
        }
        let keys: Vec<PartitionKey> = partitions
            .iter()
            .filter_map(|(topic, p)| self.sink.key_of(topic, *p))
            .collect();
        self.sink.forget(&keys);
        let lanes: Vec<Lane> = keys
            .iter()
            .map(|&(stream, partition)| Lane { stream, partition })
            .collect();
        self.router.forget(&lanes);
        self.group
            .give_up(partitions)
            .map_err(|e| anyhow!("giving up partitions {partitions:?}: {e}"))?;
        tracing::info!(partitions = ?partitions, lost, "locate: partitions revoked");
        Ok(())
    }

    fn sink_result(&mut self, r: Result<(), SinkError>) -> anyhow::Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(SinkError::Fatal(e)) => Err(e),
            Err(SinkError::Rewind(why)) => {
                tracing::warn!(reason = %why, "rewinding to the committed offsets");
                self.out.clear();
                self.rewind = true;
                Ok(())
            }
        }
    }

    fn back_off(&mut self) {
        super::runtime::back_off(
            &mut self.rewind_backoff,
            &*self.clock,
            &*self.group,
            &self.shutdown,
            &self.liveness,
        );
    }

    /// Drops the open work and puts every assigned partition back at its committed
    /// offset: what was routed after it is routed again.
    fn rewind_to_committed(&mut self) -> anyhow::Result<()> {
        self.readiness
            .set(false, "rewinding to the committed offsets");
        let recovered = self.sink.recover().and_then(|()| self.sink.abandon());
        match recovered {
            Ok(()) => {}
            Err(SinkError::Fatal(e)) => return Err(e),
            Err(SinkError::Rewind(why)) => {
                tracing::warn!(reason = %why, "rewind failed (waiting for the broker); retrying");
                return Ok(());
            }
        }
        self.out.clear();
        self.router.forget_all();
        let assignment = self
            .group
            .assignment()
            .context("reading the consumer assignment")?;
        let wanted: Vec<(&str, i32)> = assignment
            .iter()
            .filter(|(t, _)| self.topics.stream_of(t).is_some())
            .map(|(t, p)| (t.as_str(), *p))
            .collect();
        let committed = match self.group.committed(&wanted, QUERY_TIMEOUT) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "reading the committed offsets; retrying");
                return Ok(());
            }
        };
        let mut seek = Vec::new();
        let mut positions = std::collections::HashMap::new();
        for c in &committed {
            let Some(stream) = self.topics.stream_of(&c.topic) else {
                continue;
            };
            let at = match c.offset {
                Some(o) => o,
                // Never committed: from the start, as `auto.offset.reset = earliest`.
                None => match self.group.watermarks(&c.topic, c.partition, QUERY_TIMEOUT) {
                    Ok((low, _)) => low,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a partition's start; retrying");
                        return Ok(());
                    }
                },
            };
            seek.push((c.topic.as_str(), c.partition, at));
            positions.insert((stream, c.partition), at);
        }
        if let Err(e) = self.group.seek(&seek, QUERY_TIMEOUT) {
            tracing::warn!(error = %e, "seeking to the committed offsets; retrying");
            return Ok(());
        }
        self.sink.reset_positions(positions, Default::default());
        if self.backpressure {
            self.hold_all(false);
        }
        self.rewind = false;
        self.readiness.set(true, "");
        tracing::info!(
            partitions = seek.len(),
            "locate: rewound to the committed offsets"
        );
        Ok(())
    }

    fn log_stats(&mut self) {
        let now = self.clock.now();
        if now < self.next_stats_log {
            return;
        }
        self.next_stats_log = now + STATS_LOG_EVERY;
        tracing::info!(
            records = std::mem::take(&mut self.records),
            sightings = std::mem::take(&mut self.sightings),
            lag = self.group.stats().total_lag,
            "locate: records routed in the last 10 s"
        );
    }

    /// Commits the open work (on a clean stop) and leaves the group.
    pub(crate) fn close(self, clean: bool) -> anyhow::Result<()> {
        self.readiness.set(false, "shutting down");
        let Locate {
            mut sink,
            group,
            mut out,
            ..
        } = self;
        let mut result = Ok(());
        if clean {
            let settled =
                send_all(&mut *sink, &mut out).and_then(|()| sink.settle(group.committer(), false));
            match settled {
                Ok(()) => tracing::info!("locate: open work committed"),
                Err(SinkError::Rewind(why)) => tracing::warn!(
                    reason = %why,
                    "the last interval's work was dropped; it is read again after a restart"
                ),
                Err(SinkError::Fatal(e)) => result = Err(e),
            }
        }
        sink.disable();
        group.leave();
        drop(sink);
        tracing::info!("locate stage stopped");
        result
    }
}

#[cfg(test)]
mod tests;
