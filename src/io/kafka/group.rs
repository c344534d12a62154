//! The consumer-group member's librdkafka context: rebalance callbacks, offset-commit
//! callbacks and statistics. librdkafka runs all of them inside `poll` on the runtime's
//! own thread; the mutexes only satisfy the `Send + Sync` bound of a context (and are
//! never held across `poll`).
//!
//! A revocation is not finished inside the callback: the callback records it, and the
//! runtime, which owns the sink, commits the open transaction (or aborts it, if the
//! assignment was lost) *before* it calls [`Group::give_up`], so the next owner starts
//! exactly after what this one committed (librdkafka's examples/transactions.c does
//! the same inside the callback). librdkafka waits for the unassign call
//! (its join state `wait-unassign-call`, heartbeats going on), and its header allows
//! (incremental) unassigning outside the callback. On assign, the partitions are added
//! at once and the runtime rebuilds the engine before it applies any further record
//! (docs/KAFKA_RUNTIME.md).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::broker::{BrokerError, Committed, Group, GroupEvent, GroupStats};
use crate::io::metrics::Metrics;

pub(crate) struct GroupContext {
    events: Mutex<Vec<GroupEvent>>,
    /// A fatal error raised inside a callback; the runtime returns it after `poll`.
    failure: Mutex<Option<anyhow::Error>>,
    /// A revocation recorded and not yet given up.
    revoking: AtomicBool,
    /// Leaving the group: the runtime settled before, so a revocation is finished in
    /// the callback (the consumer's close polls until it is).
    closing: AtomicBool,
    stats: Mutex<GroupStats>,
    metrics: Arc<Metrics>,
    /// The (topic, partition) labels of the lag gauge currently set.
    lag_labels: Mutex<BTreeSet<(String, i32)>>,
}

fn pairs(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

/// Unassigns `partitions` (cooperative) or everything (eager).
fn unassign(
    consumer: &BaseConsumer<GroupContext>,
    partitions: &[(String, i32)],
) -> KafkaResult<()> {
    match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => {
            let mut tpl = TopicPartitionList::with_capacity(partitions.len());
            for (topic, partition) in partitions {
                tpl.add_partition(topic, *partition);
            }
            consumer.incremental_unassign(&tpl)
        }
        _ => consumer.unassign(),
    }
}

impl GroupContext {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        GroupContext {
            events: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            revoking: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            stats: Mutex::new(GroupStats::default()),
            metrics,
            lag_labels: Mutex::new(BTreeSet::new()),
        }
    }

    fn push(&self, event: GroupEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    fn fail(&self, error: anyhow::Error) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(error);
        }
    }

    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            self.fail(anyhow::anyhow!(
                "assigning partitions {:?}: {e}",
                pairs(tpl)
            ));
            return;
        }
        // Not paused: `poll` returns right after this callback, the runtime rebuilds
        // before it applies another record, and whatever librdkafka fetches meanwhile
        // is dropped by the seek that ends the rebuild. Pausing a partition right after
        // assigning it left one of ten partitions silently paused for good in one of
        // twelve throughput runs (librdkafka's pause and assign ops race, cf.
        // confluentinc/librdkafka#5591).
        tracing::info!(partitions = ?pairs(tpl), "partitions assigned");
        self.push(GroupEvent::Assigned(pairs(tpl)));
    }

    fn on_revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions = pairs(tpl);
        if self.closing.load(Ordering::Relaxed) {
            if let Err(e) = unassign(consumer, &partitions) {
                tracing::warn!(error = %e, "giving up partitions while leaving");
            }
            return;
        }
        // Read now: librdkafka clears it with the next assignment.
        let lost = consumer.assignment_lost();
        self.revoking.store(true, Ordering::Relaxed);
        self.push(GroupEvent::Revoking { partitions, lost });
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, s: Statistics) {
        let now = Instant::now();
        let mut view = GroupStats {
            received: Some(now),
            ..GroupStats::default()
        };
        for b in s.brokers.values().filter(|b| b.nodeid >= 0) {
            view.brokers += 1;
            if b.state == "UP" {
                view.brokers_up += 1;
            }
            if let Some(w) = &b.rtt {
                view.rtt_p99_us = view.rtt_p99_us.max(w.p99);
            }
        }
        if view.brokers_up > 0 {
            let before = self.stats.lock().ok().and_then(|st| st.up_since);
            view.up_since = Some(before.unwrap_or(now));
        }
        let mut lags = BTreeMap::new();
        for (topic, t) in &s.topics {
            for (id, p) in &t.partitions {
                // librdkafka's own `consumer_lag` counts from this consumer's committed
                // offset, which offsets committed inside a transaction (through the
                // producer) never update: under exactly-once it stayed at its value from
                // the assignment while records were processed. The lag an operator
                // means is how far roadwatch's reading trails the log: the end (last
                // stable offset for read_committed) minus the next offset handed to
                // roadwatch, or the committed one before anything was handed over.
                let end = if p.ls_offset >= 0 {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                let read = p.app_offset.max(p.committed_offset);
                // -1 is librdkafka's internal unassigned partition; `desired` marks the
                // assigned ones; negative offsets are "not known yet".
                if *id < 0 || !p.desired || end < 0 || read < 0 {
                    continue;
                }
                let lag = (end - read).max(0);
                lags.insert((topic.clone(), *id), lag);
                view.total_lag += lag;
            }
        }
        if let Ok(mut labels) = self.lag_labels.lock() {
            for gone in labels.iter().filter(|l| !lags.contains_key(*l)) {
                let _ = self
                    .metrics
                    .consumer_lag
                    .remove_label_values(&[&gone.0, &gone.1.to_string()]);
            }
            for ((topic, p), lag) in &lags {
                self.metrics
                    .consumer_lag
                    .with_label_values(&[topic, &p.to_string()])
                    .set(*lag);
            }
            *labels = lags.into_keys().collect();
        }
        if let Ok(mut st) = self.stats.lock() {
            *st = view;
        }
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.on_assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.on_revoke(consumer, tpl),
            other => {
                // librdkafka asks for the whole assignment to be dropped on a rebalance
                // error; the group then assigns again.
                tracing::warn!(error = ?other, "rebalance error; giving up the assignment");
                if let Ok(current) = consumer.assignment() {
                    self.on_revoke(consumer, &current);
                }
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        // Only at-least-once commits asynchronously; the runtime times the round trip.
        self.push(GroupEvent::CommitAnswered(Instant::now()));
        if let Err(e) = result {
            tracing::warn!(error = %e, "offset commit failed; the next interval commits again");
        }
    }
}

impl Group for BaseConsumer<GroupContext> {
    fn committer(&self) -> &dyn super::broker::Committer {
        self
    }

    fn subscribe(&self, topics: &[&str]) -> Result<(), BrokerError> {
        Consumer::subscribe(self, topics).map_err(|e| BrokerError::other(e.to_string()))
    }

    fn take_events(&self) -> Vec<GroupEvent> {
        self.context()
            .events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    fn revoke_pending(&self) -> bool {
        self.context().revoking.load(Ordering::Relaxed)
    }

    fn give_up(&self, partitions: &[(String, i32)]) -> Result<(), BrokerError> {
        self.context().revoking.store(false, Ordering::Relaxed);
        unassign(self, partitions).map_err(|e| BrokerError::other(e.to_string()))
    }

    fn take_failure(&self) -> Option<anyhow::Error> {
        self.context()
            .failure
            .lock()
            .ok()
            .and_then(|mut f| f.take())
    }

    fn committed(
        &self,
        partitions: &[(&str, i32)],
        limit: Duration,
    ) -> Result<Vec<Committed>, BrokerError> {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &(topic, partition) in partitions {
            tpl.add_partition(topic, partition);
        }
        let answer = self
            .committed_offsets(tpl, limit)
            .map_err(|e| BrokerError::other(e.to_string()))?;
        Ok(answer
            .elements()
            .iter()
            .map(|e| Committed {
                topic: e.topic().to_owned(),
                partition: e.partition(),
                offset: match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                },
                metadata: e.metadata().to_owned(),
            })
            .collect())
    }

    fn stats(&self) -> GroupStats {
        self.context()
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    fn leave(self: Box<Self>) {
        tracing::debug!("leaving the group");
        self.context().closing.store(true, Ordering::Relaxed);
        Consumer::unsubscribe(&*self);
        // Dropping the consumer leaves the group (librdkafka's close runs the revoke
        // callback, which now gives the partitions up at once).
        drop(self);
    }
}
