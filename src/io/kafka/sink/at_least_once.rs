//! At-least-once: the offsets of a batch of consumed records are committed once every
//! record the batch produced has a successful delivery report.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{Output, PartitionKey, Progress, Sink, SinkError, CALL_TIMEOUT};
use crate::core::model::EventTime;
use crate::io::kafka::broker::{Committer, DeliveryTag};
use crate::io::pipeline::Produced;

/// Consecutive records consumed within one commit interval, and the deliveries their
/// output still waits for.
struct Batch {
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

impl Batch {
    fn new(id: u64) -> Self {
        Batch {
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

pub(crate) struct AtLeastOnce {
    out: Output,
    batches: VecDeque<Batch>,
    /// What the fully delivered batches cover: the next commit's offsets and progress.
    acked: HashMap<PartitionKey, i64>,
    /// The engine clock and global-stream progress committed with `acked`.
    acked_progress: Progress,
    acked_dirty: bool,
    sealed_at: Instant,
    delivery_failed: Option<String>,
    /// Set when an asynchronous offset commit is sent; its callback times it.
    async_commit_sent: Option<Instant>,
}

impl AtLeastOnce {
    pub(crate) fn new(out: Output) -> Self {
        let sealed_at = out.now();
        AtLeastOnce {
            out,
            batches: VecDeque::from([Batch::new(0)]),
            acked: HashMap::new(),
            acked_progress: Progress::default(),
            acked_dirty: false,
            sealed_at,
            delivery_failed: None,
            async_commit_sent: None,
        }
    }

    fn take_reports(&mut self) {
        for r in self.out.take_reports() {
            let Some(front) = self.batches.front().map(|b| b.id) else {
                continue;
            };
            let Some(batch) = r
                .tag
                .batch
                .checked_sub(front)
                .and_then(|i| self.batches.get_mut(i as usize))
            else {
                // A report for work dropped by a rewind.
                continue;
            };
            batch.outstanding = batch.outstanding.saturating_sub(1);
            match r.failure {
                Some(f) => {
                    batch.failed = true;
                    self.delivery_failed.get_or_insert(f.message);
                }
                None => {
                    if let Some((kind, event_ms)) = r.tag.alert {
                        self.out.observe_latency(kind, event_ms);
                    }
                }
            }
        }
    }

    fn drain_in_flight(&mut self, limit: Duration) {
        self.out.drain_in_flight(limit);
        self.take_reports();
    }

    fn next_id(&self) -> u64 {
        self.batches.back().map(|b| b.id + 1).unwrap_or_default()
    }

    /// Drops every open batch. Batch numbers keep counting: a late report for a dropped
    /// batch must not be taken for one of the new batch.
    fn drop_batches(&mut self) {
        let next = self.next_id();
        self.batches.clear();
        self.batches.push_back(Batch::new(next));
        self.delivery_failed = None;
    }

    fn seal(&mut self) {
        self.sealed_at = self.out.now();
        let next = match self.batches.back_mut() {
            Some(b) if b.records == 0 && b.outstanding == 0 => return,
            Some(b) => {
                b.sealed = true;
                b.id + 1
            }
            None => 0,
        };
        self.batches.push_back(Batch::new(next));
    }

    /// Moves fully delivered batches into the committable offsets and commits them.
    fn commit_acked(&mut self, consumer: &dyn Committer, sync: bool) {
        while self
            .batches
            .front()
            .is_some_and(|b| b.sealed && b.outstanding == 0 && !b.failed)
        {
            let b = self.batches.pop_front().expect("checked");
            self.acked.extend(b.positions);
            if b.clock.is_some() {
                self.acked_progress.clock = b.clock;
            }
            self.acked_progress.globals.extend(b.globals);
            self.acked_dirty = true;
            self.out.replacements = 0;
        }
        if self.batches.is_empty() {
            let next = self.next_id();
            self.batches.push_back(Batch::new(next));
        }
        if !self.acked_dirty || self.acked.is_empty() {
            return;
        }
        let offsets = self.out.offsets(
            &self.acked,
            self.acked_progress.clock,
            &self.acked_progress.globals,
        );
        if !sync {
            self.async_commit_sent = Some(self.out.now());
        }
        match consumer.commit_offsets(&offsets, sync) {
            Ok(()) => self.acked_dirty = false,
            // The next interval commits newer offsets anyway.
            Err(e) => tracing::warn!(error = %e, "offset commit failed; retried next interval"),
        }
    }

    /// A delivery failed: commit the batches before it, drop the rest; the runtime
    /// rewinds to the committed offsets and consumes the dropped records again.
    fn rewind(&mut self, consumer: &dyn Committer, why: String) -> SinkError {
        tracing::warn!(error = %why, "a delivery failed; rewinding to the last fully delivered offsets");
        let _ = self.out.producer.flush(CALL_TIMEOUT);
        self.take_reports();
        self.seal();
        // Stops at the first batch that failed or still waits for a report.
        self.commit_acked(consumer, true);
        self.drop_batches();
        SinkError::Rewind(why)
    }
}

impl Sink for AtLeastOnce {
    fn output(&self) -> &Output {
        &self.out
    }

    fn output_mut(&mut self) -> &mut Output {
        &mut self.out
    }

    fn committed(&self) -> (HashMap<PartitionKey, i64>, Progress) {
        (self.acked.clone(), self.acked_progress.clone())
    }

    /// Records produced and not yet acknowledged by the broker (the partitions are
    /// paused until they are). Counting the consumed records waiting on those
    /// acknowledgements instead made the input pause whenever the broker took longer
    /// than a few commit intervals to answer, and each pause throws away librdkafka's
    /// prefetched records (at 100,000 records/s: 70 pauses a minute, throughput down to
    /// a third).
    fn in_flight(&self) -> usize {
        self.batches.iter().map(|b| b.outstanding).sum()
    }

    fn bounded_by_commit(&self) -> bool {
        false
    }

    fn reset_positions(
        &mut self,
        positions: HashMap<PartitionKey, i64>,
        globals: HashMap<PartitionKey, i64>,
    ) {
        self.acked = positions.clone();
        self.out.positions = positions;
        self.acked_progress.globals = globals.clone();
        self.out.globals = globals;
        self.acked_dirty = false;
        self.drop_batches();
    }

    fn forget(&mut self, revoked: &[PartitionKey]) {
        self.out.forget(revoked);
        for key in revoked {
            self.acked.remove(key);
            for b in &mut self.batches {
                b.positions.remove(key);
            }
        }
    }

    fn consumed(&mut self, key: PartitionKey, offset: i64, clock: Option<EventTime>) {
        self.out.positions.insert(key, offset + 1);
        self.out.event_clock = clock;
        let batch = self.batches.back_mut().expect("a current batch");
        batch.positions.insert(key, offset + 1);
        batch.records += 1;
        batch.clock = clock;
    }

    fn clock_advanced(&mut self, clock: Option<EventTime>) {
        self.out.event_clock = clock;
        if let Some(b) = self.batches.back_mut() {
            b.clock = clock;
        }
    }

    fn global_applied(&mut self, key: PartitionKey, offset: i64, clock: Option<EventTime>) {
        self.out.globals.insert(key, offset + 1);
        if let Some(b) = self.batches.back_mut() {
            b.globals.insert(key, offset + 1);
        }
        self.clock_advanced(clock);
    }

    fn send(&mut self, p: &Produced) -> Result<(), SinkError> {
        self.out.usable()?;
        let new_topic = match self.out.ensure_topic(&p.topic) {
            Ok(new) => new,
            Err(e) => {
                self.delivery_failed = None;
                return Err(SinkError::Rewind(e));
            }
        };
        let tag = DeliveryTag {
            batch: self.batches.back().map(|b| b.id).unwrap_or_default(),
            alert: p.content.alert(),
            new_topic,
        };
        if let Err(e) = self.out.send(p, tag) {
            if let Some(failure) = self.out.fatal_error() {
                return Err(failure);
            }
            self.delivery_failed = None;
            return Err(SinkError::Rewind(format!("producing to {}: {e}", p.topic)));
        }
        if let Some(b) = self.batches.back_mut() {
            b.outstanding += 1;
        }
        if new_topic {
            // See ExactlyOnce::send: a new topic's first record has its own answer first.
            self.drain_in_flight(CALL_TIMEOUT);
        }
        Ok(())
    }

    fn commit_due(&self) -> bool {
        self.out.now() - self.sealed_at >= self.out.commit_interval
    }

    fn until_due(&self) -> Option<Duration> {
        Some(
            self.out
                .commit_interval
                .saturating_sub(self.out.now() - self.sealed_at),
        )
    }

    fn poll(&mut self, consumer: &dyn Committer) -> Result<(), SinkError> {
        self.out.usable()?;
        self.out.producer.serve_ready();
        self.take_reports();
        if let Some(failure) = self.out.fatal_error() {
            return Err(failure);
        }
        if let Some(why) = self.delivery_failed.take() {
            return Err(self.rewind(consumer, why));
        }
        if self.commit_due() {
            self.seal();
            self.commit_acked(consumer, false);
        }
        Ok(())
    }

    fn commit(&mut self, consumer: &dyn Committer) -> Result<(), SinkError> {
        self.out.usable()?;
        self.take_reports();
        if let Some(why) = self.delivery_failed.take() {
            return Err(self.rewind(consumer, why));
        }
        self.seal();
        self.commit_acked(consumer, false);
        Ok(())
    }

    fn settle(&mut self, consumer: &dyn Committer, lost: bool) -> Result<(), SinkError> {
        if self.out.disabled {
            return Ok(());
        }
        self.out.usable()?;
        let started = self.out.now();
        self.drain_in_flight(CALL_TIMEOUT);
        if self.out.producer.in_flight() > 0 {
            tracing::warn!(
                "flush before commit timed out; undelivered records will be consumed again"
            );
        }
        self.seal();
        if !lost {
            self.commit_acked(consumer, true);
            self.out
                .metrics
                .transaction_commit
                .with_label_values(&["at_least_once"])
                .observe((self.out.now() - started).as_secs_f64());
        }
        match self.delivery_failed.take() {
            Some(why) => Err(self.rewind(consumer, why)),
            None => Ok(()),
        }
    }

    fn abandon(&mut self) -> Result<(), SinkError> {
        self.out.usable()?;
        self.drop_batches();
        Ok(())
    }

    fn recover(&mut self) -> Result<(), SinkError> {
        if self.out.disabled {
            return Ok(());
        }
        if self.out.broken.is_some() {
            self.out.replace_producer(false)?;
        }
        Ok(())
    }

    fn needs_recovery(&self) -> bool {
        self.out.broken.is_some()
    }

    fn take_async_commit_sent(&mut self) -> Option<Instant> {
        self.async_commit_sent.take()
    }
}
