//! The consumer-group member's librdkafka context: rebalance callbacks, offset-commit
//! callbacks and statistics. librdkafka runs all of them inside `poll` on the runtime's
//! own thread, so the sink they touch is never used by two threads at once; the mutexes
//! only satisfy the `Send + Sync` bound of a context (and are never held across `poll`).
//!
//! Rebalances follow librdkafka's examples/transactions.c: on revoke, the open
//! transaction is committed (or aborted, if the assignment was lost) *before* the
//! partitions are given up, so the next owner starts exactly after what this one
//! committed; on assign, the partitions are added and the runtime rebuilds the engine
//! before it applies any further record (docs/KAFKA_RUNTIME.md).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::broker::{BrokerError, Committed, Group, GroupEvent, GroupStats};
use super::sink::{Sink, SinkError};
use crate::io::metrics::Metrics;

pub(crate) struct GroupContext {
    sink: Mutex<Box<dyn Sink>>,
    events: Mutex<Vec<GroupEvent>>,
    /// A fatal error raised inside a callback; the runtime returns it after `poll`.
    failure: Mutex<Option<anyhow::Error>>,
    /// A rewind needed because a revoke-time commit failed.
    rewind: Mutex<Option<String>>,
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

impl GroupContext {
    pub(crate) fn new(sink: Box<dyn Sink>, metrics: Arc<Metrics>) -> Self {
        GroupContext {
            sink: Mutex::new(sink),
            events: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            rewind: Mutex::new(None),
            stats: Mutex::new(GroupStats::default()),
            metrics,
            lag_labels: Mutex::new(BTreeSet::new()),
        }
    }

    pub(crate) fn take_events(&self) -> Vec<GroupEvent> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    pub(crate) fn take_failure(&self) -> Option<anyhow::Error> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }

    pub(crate) fn take_rewind(&self) -> Option<String> {
        self.rewind.lock().ok().and_then(|mut r| r.take())
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
        let lost = consumer.assignment_lost();
        let revoked = pairs(tpl);
        if let Ok(mut sink) = self.sink.lock() {
            match sink.settle(consumer, lost) {
                Ok(()) => {}
                Err(SinkError::Fatal(e)) => self.fail(e),
                Err(SinkError::Rewind(why)) => {
                    if let Ok(mut r) = self.rewind.lock() {
                        r.get_or_insert(why);
                    }
                }
            }
            let keys: Vec<_> = revoked
                .iter()
                .filter_map(|(topic, p)| sink.key_of(topic, *p))
                .collect();
            sink.forget(&keys);
        }
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            self.fail(anyhow::anyhow!("giving up partitions {revoked:?}: {e}"));
        }
        tracing::info!(partitions = ?revoked, lost, "partitions revoked");
        self.push(GroupEvent::Revoked(revoked));
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
        // Only at-least-once commits asynchronously; time the round trip it took.
        if let Ok(mut sink) = self.sink.lock() {
            if let Some(sent) = sink.take_async_commit_sent() {
                self.metrics
                    .transaction_commit
                    .with_label_values(&["at_least_once"])
                    .observe(sent.elapsed().as_secs_f64());
            }
        }
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
        self.context().take_events()
    }

    fn take_failure(&self) -> Option<anyhow::Error> {
        self.context().take_failure()
    }

    fn take_rewind(&self) -> Option<String> {
        self.context().take_rewind()
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

    fn sink(&self) -> MutexGuard<'_, Box<dyn Sink>> {
        self.context().sink.lock().expect("sink lock")
    }

    fn leave(self: Box<Self>) {
        tracing::debug!("leaving the group");
        Consumer::unsubscribe(&*self);
        // Dropping the consumer leaves the group (librdkafka's close runs the revoke
        // callback, which now commits nothing) and then the producer flushes.
        drop(self);
    }
}
