//! Exactly-once: one transaction per commit interval holds the interval's output and
//! its consumed offsets.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Output, PartitionKey, Progress, Sink, SinkError, CALL_TIMEOUT};
use crate::core::model::{AlertKind, EventTime};
use crate::io::kafka::broker::{BrokerError, Committer, DeliveryTag, ErrorKind};
use crate::io::metrics::Stage;
use crate::io::pipeline::Produced;

/// Commit attempts on a retriable error (a timeout) before the transaction is aborted.
const COMMIT_ATTEMPTS: u32 = 3;
/// How long each later attempt to finish an abort that timed out may block (the runtime
/// backs off between attempts and checks for shutdown).
const ABORT_RETRY: Duration = Duration::from_secs(2);

pub(crate) struct ExactlyOnce {
    out: Output,
    txn_open: bool,
    /// The open transaction's abort timed out (the broker is away). The client goes on
    /// with it in the background; it is finished before anything else.
    abort_pending: bool,
    /// When the first record of the open interval was consumed or produced.
    open_since: Option<Instant>,
    /// Records consumed since the last commit.
    open_records: usize,
    /// The open transaction's alerts, observed once it commits.
    latencies: Vec<(AlertKind, EventTime)>,
    /// A record of the open transaction failed: the commit must not go through.
    delivery_failed: Option<String>,
}

impl ExactlyOnce {
    pub(crate) fn new(out: Output) -> Self {
        ExactlyOnce {
            out,
            txn_open: false,
            abort_pending: false,
            open_since: None,
            open_records: 0,
            latencies: Vec::new(),
            delivery_failed: None,
        }
    }

    /// Forgets the open interval (after an abort, a fatal error or a replacement).
    fn drop_interval(&mut self) {
        self.latencies.clear();
        self.open_since = None;
        self.open_records = 0;
    }

    /// `Err(Rewind)` while the producer waits for its replacement or for an abort to
    /// finish (then only [`Sink::recover`] may go on); a pending abort is given a short
    /// try first.
    fn usable(&mut self) -> Result<(), SinkError> {
        self.out.usable()?;
        if self.abort_pending {
            self.abort(ABORT_RETRY)?;
            // Aborted now: the interval's work is gone and must be read again.
            return Err(SinkError::Rewind(
                "the open transaction was aborted".to_owned(),
            ));
        }
        Ok(())
    }

    fn fatal(&mut self, what: &str, e: &BrokerError) -> SinkError {
        let failure = self.out.fatal(what, e);
        if matches!(failure, SinkError::Rewind(_)) {
            // The producer is replaced: its transaction is gone with it.
            self.txn_open = false;
            self.abort_pending = false;
            self.drop_interval();
        }
        failure
    }

    fn fatal_error(&mut self) -> Option<SinkError> {
        let failure = self.out.fatal_error()?;
        if matches!(failure, SinkError::Rewind(_)) {
            self.txn_open = false;
            self.abort_pending = false;
            self.drop_interval();
        }
        Some(failure)
    }

    /// Sorts a transactional error into fatal (see [`Output::fatal`]) or abortable
    /// (abort, rewind).
    fn transaction_failure(&mut self, what: &str, e: BrokerError) -> SinkError {
        if e.fatal || self.out.producer.fatal_error().is_some() || e.kind == ErrorKind::Denied {
            return self.fatal(what, &e);
        }
        tracing::warn!(error = %e, "{what} failed; aborting the transaction and rewinding to the committed offsets");
        self.out.producer.forget_topics();
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
        self.drop_interval();
        if !self.txn_open {
            self.abort_pending = false;
            return Ok(());
        }
        // librdkafka's abort waits until every outstanding record has had its delivery
        // report served, and with a BaseProducer nobody serves them but us: purge what
        // is queued or in flight, then alternate polling and short abort attempts.
        self.out.producer.purge();
        let deadline = self.out.now() + limit;
        loop {
            self.out.producer.poll(Duration::from_millis(10));
            self.take_reports();
            match self
                .out
                .producer
                .abort_transaction(Duration::from_millis(200))
            {
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
                Err(e) if e.retriable && self.out.now() < deadline => {
                    tracing::debug!(error = %e, "abort not done yet; serving delivery reports");
                }
                Err(e) if e.retriable => {
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
        if let Err(failure) = self.abort(CALL_TIMEOUT) {
            return failure;
        }
        SinkError::Rewind(why)
    }

    fn take_reports(&mut self) {
        for r in self.out.take_reports() {
            // A failed record fails the commit as well, but a record acknowledged
            // without an offset does not: the commit checks this first.
            if let Some(f) = r.failure.filter(|f| !f.purged) {
                tracing::warn!(error = %f.message, "a record of the open transaction failed");
                self.delivery_failed.get_or_insert(f.message);
            }
        }
    }

    fn drain_in_flight(&mut self, limit: Duration) {
        self.out.drain_in_flight(limit);
        self.take_reports();
    }

    fn begin(&mut self) -> Result<(), SinkError> {
        match self.out.producer.begin_transaction() {
            Ok(()) => {
                self.txn_open = true;
                Ok(())
            }
            Err(e) => Err(self.transaction_failure("beginning a transaction", e)),
        }
    }

    /// How long the open transaction may stay open. An alert is waited for by a patrol
    /// officer and becomes visible only with the commit, so a transaction holding one
    /// is committed after a fifth of the interval (20 ms by default) rather than the
    /// whole of it; offsets alone wait for the full interval. The transaction rate stays
    /// bounded by five per interval.
    fn open_limit(&self) -> Duration {
        if self.latencies.is_empty() {
            self.out.commit_interval
        } else {
            self.out.commit_interval / 5
        }
    }

    fn commit_transaction(&mut self, consumer: &dyn Committer) -> Result<(), SinkError> {
        if self.open_since.is_none() && !self.txn_open {
            return Ok(());
        }
        let started = self.out.now();
        if !self.txn_open {
            self.begin()?;
        }
        if !self.out.positions.is_empty() {
            let Some(group) = consumer.member_metadata() else {
                return Err(self.fail_open_work("no consumer group metadata".to_owned()));
            };
            let offsets =
                self.out
                    .offsets(&self.out.positions, self.out.event_clock, &self.out.globals);
            if let Err(e) =
                self.out
                    .producer
                    .send_offsets_to_transaction(&offsets, &group, CALL_TIMEOUT)
            {
                return Err(self.transaction_failure("sending offsets to the transaction", e));
            }
        }
        self.drain_in_flight(CALL_TIMEOUT);
        // Every record's report must be in before the commit: one acknowledged without an
        // offset is not in the log, and after the commit its work could not be redone.
        let in_flight = self.out.producer.in_flight();
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
            match self.out.producer.commit_transaction(CALL_TIMEOUT) {
                Ok(()) => break,
                Err(e) if attempt < COMMIT_ATTEMPTS && e.retriable => {
                    tracing::warn!(error = %e, attempt, "transaction commit timed out; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(self.transaction_failure("committing the transaction", e)),
            }
        }
        self.take_reports();
        let took = (self.out.now() - started).as_secs_f64();
        self.out
            .metrics
            .transaction_commit
            .with_label_values(&["exactly_once"])
            .observe(took);
        self.out.metrics.observe_stage(Stage::Commit, took);
        // The output is visible to read_committed readers only now.
        for (kind, event_ms) in std::mem::take(&mut self.latencies) {
            self.out.observe_latency(kind, event_ms);
        }
        self.txn_open = false;
        self.open_since = None;
        self.open_records = 0;
        self.out.replacements = 0;
        Ok(())
    }
}

impl Sink for ExactlyOnce {
    fn output(&self) -> &Output {
        &self.out
    }

    fn output_mut(&mut self) -> &mut Output {
        &mut self.out
    }

    fn committed(&self) -> (HashMap<PartitionKey, i64>, Progress) {
        // Settled means committed: everything consumed is.
        self.out.checkpoint()
    }

    /// Records consumed since the last commit: a full interval is committed early.
    fn in_flight(&self) -> usize {
        self.open_records
    }

    fn bounded_by_commit(&self) -> bool {
        true
    }

    fn reset_positions(
        &mut self,
        positions: HashMap<PartitionKey, i64>,
        globals: HashMap<PartitionKey, i64>,
    ) {
        debug_assert!(!self.txn_open, "reset with an open transaction");
        self.out.positions = positions;
        self.out.globals = globals;
        self.open_records = 0;
        self.open_since = None;
        self.delivery_failed = None;
    }

    fn forget(&mut self, revoked: &[PartitionKey]) {
        self.out.forget(revoked);
    }

    fn consumed(&mut self, key: PartitionKey, offset: i64, clock: Option<EventTime>) {
        self.out.positions.insert(key, offset + 1);
        self.out.event_clock = clock;
        self.open_records += 1;
        if self.open_since.is_none() {
            self.open_since = Some(self.out.now());
        }
    }

    fn clock_advanced(&mut self, clock: Option<EventTime>) {
        self.out.event_clock = clock;
    }

    fn global_applied(&mut self, key: PartitionKey, offset: i64, clock: Option<EventTime>) {
        self.out.globals.insert(key, offset + 1);
        self.clock_advanced(clock);
    }

    fn send(&mut self, p: &Produced) -> Result<(), SinkError> {
        self.usable()?;
        let new_topic = match self.out.ensure_topic(&p.topic) {
            Ok(new) => new,
            Err(e) => return Err(self.fail_open_work(e)),
        };
        if !self.txn_open {
            self.begin()?;
        }
        let tag = DeliveryTag {
            batch: 0,
            alert: p.content.alert(),
            new_topic,
        };
        if let Err(e) = self.out.send(p, tag) {
            return Err(match self.fatal_error() {
                Some(failure) => failure,
                None => self.fail_open_work(format!("producing to {}: {e}", p.topic)),
            });
        }
        if self.open_since.is_none() {
            self.open_since = Some(self.out.now());
        }
        if let Some(a) = p.content.alert() {
            self.latencies.push(a);
        }
        if new_topic {
            // librdkafka can report a new partition's failed first batch delivered when a
            // later batch of that partition succeeds (cause 4): no later record goes out
            // until the first one has its own answer. Once per new topic and process.
            self.drain_in_flight(CALL_TIMEOUT);
        }
        Ok(())
    }

    fn commit_due(&self) -> bool {
        self.open_since
            .is_some_and(|t| self.out.now() - t >= self.open_limit())
    }

    fn until_due(&self) -> Option<Duration> {
        self.open_since
            .map(|t| self.open_limit().saturating_sub(self.out.now() - t))
    }

    fn poll(&mut self, _consumer: &dyn Committer) -> Result<(), SinkError> {
        self.usable()?;
        self.out.producer.serve_ready();
        self.take_reports();
        match self.fatal_error() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    fn commit(&mut self, consumer: &dyn Committer) -> Result<(), SinkError> {
        self.usable()?;
        self.commit_transaction(consumer)
    }

    fn settle(&mut self, consumer: &dyn Committer, lost: bool) -> Result<(), SinkError> {
        if self.out.disabled {
            return Ok(());
        }
        self.usable()?;
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

    fn abandon(&mut self) -> Result<(), SinkError> {
        self.usable()?;
        self.abort(CALL_TIMEOUT)
    }

    fn recover(&mut self) -> Result<(), SinkError> {
        if self.out.disabled {
            return Ok(());
        }
        if self.out.broken.is_some() {
            self.out.replace_producer(true)?;
            self.txn_open = false;
            self.abort_pending = false;
            self.drop_interval();
        }
        if self.abort_pending {
            self.abort(ABORT_RETRY)?;
        }
        Ok(())
    }

    fn needs_recovery(&self) -> bool {
        self.out.broken.is_some() || self.abort_pending
    }

    fn take_async_commit_sent(&mut self) -> Option<Instant> {
        None
    }
}
