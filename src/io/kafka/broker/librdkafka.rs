//! The production side of the broker seam: librdkafka through rust-rdkafka.
//!
//! What is librdkafka's own stays here: its error codes (sorted into [`BrokerError`]),
//! its delivery-report callback, its statistics, the success reported without an
//! offset, and serving reports one event at a time.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::{
    BrokerError, Committer, DeliveryFailure, DeliveryTag, ErrorKind, Fetched, GroupMetadata,
    ListAt, OffsetCommit, Polled, Producer, ProducerStats, Reader, Report,
};
use crate::io::kafka::dispatch_topics::DispatchTopics;
use crate::io::pipeline::Produced;

/// The delivery error of a record dropped by our own abort.
const PURGED: &str = "purged by the abort";
/// A delivery report of success without an offset (see [`ProducerCtx::delivery`]).
const NO_OFFSET: &str = "acknowledged without an offset (librdkafka: duplicate sequence number)";

/// The producer's librdkafka context: delivery reports are queued here while librdkafka
/// runs them inside `poll`/`flush`, and taken by the sink right after.
#[derive(Default)]
pub(crate) struct ProducerCtx {
    reports: Mutex<Vec<Report>>,
    /// Delivery reports handed over so far (see [`RdProducer::serve_ready`]).
    served: AtomicU64,
    stats: Mutex<ProducerStats>,
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
        let failure = match result {
            // librdkafka reports a produce answered with DUPLICATE_SEQUENCE_NUMBER ("an
            // earlier send succeeded but was not acknowledged") as a success without an
            // offset. The first record to a brand-new per-unit topic was answered so and
            // was not in the log (docs/KAFKA_RUNTIME.md, cause 4). Both producers are
            // idempotent with acks=all, so every real success has an offset: without one
            // the record counts as failed and its work is done again.
            Ok(m) if m.offset() < 0 => Some(DeliveryFailure {
                message: format!("{}[{}]: {NO_OFFSET}", m.topic(), m.partition()),
                purged: false,
                denied: false,
            }),
            Ok(_) => None,
            Err((e, _)) => Some(DeliveryFailure {
                purged: matches!(
                    e,
                    KafkaError::MessageProduction(
                        RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight
                    )
                ),
                denied: e.rdkafka_error_code().is_some_and(is_denied),
                message: e.to_string(),
            })
            .map(|mut f| {
                if f.purged {
                    PURGED.clone_into(&mut f.message);
                }
                f
            }),
        };
        self.served.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut r) = self.reports.lock() {
            r.push(Report { tag: *tag, failure });
        }
    }
}

/// A librdkafka producer, with what it takes to build its replacement.
pub(crate) struct RdProducer {
    producer: BaseProducer<ProducerCtx>,
    config: ClientConfig,
    dispatch_topics: DispatchTopics,
}

impl RdProducer {
    pub(crate) fn new(
        config: ClientConfig,
        dispatch_topics: DispatchTopics,
    ) -> anyhow::Result<Self> {
        let producer = BaseProducer::from_config_and_context(&config, ProducerCtx::default())?;
        Ok(RdProducer {
            producer,
            config,
            dispatch_topics,
        })
    }

    /// Sorts a librdkafka error: the client's own fatal error, if it holds one, decides
    /// the kind before the call's error code does.
    fn sorted(&self, e: &KafkaError) -> BrokerError {
        let held = self.producer.client().fatal_error();
        let code = held
            .as_ref()
            .map(|(c, _)| *c)
            .or_else(|| e.rdkafka_error_code());
        BrokerError {
            kind: code.map_or(ErrorKind::Other, kind_of),
            fatal: held.is_some() || matches!(e, KafkaError::Transaction(re) if re.is_fatal()),
            retriable: is_retriable(e),
            message: e.to_string(),
        }
    }
}

impl Producer for RdProducer {
    fn ensure_topic(&mut self, topic: &str) -> anyhow::Result<bool> {
        self.dispatch_topics.ensure(topic, self.producer.client())
    }

    fn forget_topics(&mut self) {
        self.dispatch_topics.forget_all();
    }

    fn send(&mut self, p: &Produced, tag: DeliveryTag) -> Result<(), BrokerError> {
        let mut record =
            BaseRecord::<str, [u8], Box<DeliveryTag>>::with_opaque_to(&p.topic, Box::new(tag))
                .payload(&p.payload[..]);
        if let Some(k) = &p.key {
            record = record.key(k.as_str());
        }
        if let Some(partition) = p.partition {
            record = record.partition(partition);
        }
        self.producer.send(record).map_err(|(e, _)| match e {
            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => BrokerError {
                kind: ErrorKind::QueueFull,
                fatal: false,
                retriable: true,
                message: e.to_string(),
            },
            e => self.sorted(&e),
        })
    }

    fn poll(&mut self, wait: Duration) {
        self.producer.poll(wait);
    }

    /// rust-rdkafka's `poll(Duration::ZERO)` serves a single event (one produce
    /// request's reports): called once per loop turn, reports of single-record requests
    /// — alerts — trickled in at one per turn, and at-least-once commits fell tens of
    /// seconds behind a backlog that raised many alerts (docs/PERFORMANCE.md).
    fn serve_ready(&mut self) {
        let served = |p: &BaseProducer<ProducerCtx>| p.context().served.load(Ordering::Relaxed);
        for _ in 0..10_000 {
            let before = served(&self.producer);
            self.producer.poll(Duration::ZERO);
            if served(&self.producer) == before {
                break;
            }
        }
    }

    fn take_reports(&mut self) -> Vec<Report> {
        match self.producer.context().reports.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => Vec::new(),
        }
    }

    fn in_flight(&self) -> usize {
        self.producer.in_flight_count().max(0) as usize
    }

    fn flush(&mut self, limit: Duration) -> Result<(), BrokerError> {
        self.producer.flush(limit).map_err(|e| self.sorted(&e))
    }

    fn purge(&mut self) {
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
    }

    fn fatal_error(&self) -> Option<BrokerError> {
        let (code, reason) = self.producer.client().fatal_error()?;
        Some(BrokerError {
            kind: kind_of(code),
            fatal: true,
            retriable: false,
            message: format!("{code}: {reason}"),
        })
    }

    fn init_transactions(&mut self, limit: Duration) -> Result<(), BrokerError> {
        self.producer
            .init_transactions(limit)
            .map_err(|e| self.sorted(&e))
    }

    fn begin_transaction(&mut self) -> Result<(), BrokerError> {
        self.producer
            .begin_transaction()
            .map_err(|e| self.sorted(&e))
    }

    fn send_offsets_to_transaction(
        &mut self,
        offsets: &OffsetCommit,
        group: &GroupMetadata,
        limit: Duration,
    ) -> Result<(), BrokerError> {
        let Some(group) = group
            .0
            .downcast_ref::<rdkafka::consumer::ConsumerGroupMetadata>()
        else {
            return Err(BrokerError {
                kind: ErrorKind::Other,
                fatal: false,
                retriable: false,
                message: "group metadata of another broker implementation".to_owned(),
            });
        };
        self.producer
            .send_offsets_to_transaction(&partition_list(offsets), group, limit)
            .map_err(|e| self.sorted(&e))
    }

    fn commit_transaction(&mut self, limit: Duration) -> Result<(), BrokerError> {
        self.producer
            .commit_transaction(limit)
            .map_err(|e| self.sorted(&e))
    }

    fn abort_transaction(&mut self, limit: Duration) -> Result<(), BrokerError> {
        self.producer
            .abort_transaction(limit)
            .map_err(|e| self.sorted(&e))
    }

    fn renew(&mut self) -> Result<(), BrokerError> {
        let producer = BaseProducer::from_config_and_context(&self.config, ProducerCtx::default())
            .map_err(|e| BrokerError {
                kind: ErrorKind::Other,
                fatal: true,
                retriable: false,
                message: format!("creating a new Kafka producer: {e}"),
            })?;
        // Dropping the old one purges what it still holds (its reports are not needed:
        // that work is rewound).
        self.producer = producer;
        Ok(())
    }

    fn stats(&self) -> ProducerStats {
        self.producer
            .context()
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

impl<C: ConsumerContext> Committer for BaseConsumer<C> {
    fn member_metadata(&self) -> Option<GroupMetadata> {
        Consumer::group_metadata(self).map(|g| GroupMetadata(Box::new(g)))
    }

    fn commit_offsets(&self, offsets: &OffsetCommit, sync: bool) -> Result<(), BrokerError> {
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        Consumer::commit(self, &partition_list(offsets), mode).map_err(|e| BrokerError {
            kind: e.rdkafka_error_code().map_or(ErrorKind::Other, kind_of),
            fatal: false,
            retriable: true,
            message: e.to_string(),
        })
    }
}

impl<C: ConsumerContext> Reader for BaseConsumer<C> {
    fn assign(&self, at: &[(&str, i32, i64)]) -> Result<(), BrokerError> {
        let mut tpl = TopicPartitionList::with_capacity(at.len());
        for &(topic, partition, offset) in at {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(|e| consumer_error(&e))?;
        }
        Consumer::assign(self, &tpl).map_err(|e| consumer_error(&e))
    }

    fn poll(&self, wait: Duration, f: &mut dyn FnMut(Fetched<'_>)) -> Polled {
        match BaseConsumer::poll(self, wait) {
            Some(Ok(m)) => {
                f(Fetched {
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    kafka_ts: m.timestamp().to_millis(),
                    payload: m.payload().unwrap_or_default(),
                });
                Polled::Record
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => Polled::Idle,
            Some(Err(e)) => Polled::Failed(polled_error(&e)),
        }
    }

    fn pause(&self, topic: &str, partition: i32) -> bool {
        Consumer::pause(self, &single(topic, partition)).is_ok()
    }

    fn resume(&self, topic: &str, partition: i32) -> bool {
        Consumer::resume(self, &single(topic, partition)).is_ok()
    }

    fn positions(&self) -> Vec<(String, i32, i64)> {
        let Ok(tpl) = Consumer::position(self) else {
            return Vec::new();
        };
        tpl.elements()
            .iter()
            .filter_map(|e| {
                let o = e.offset().to_raw()?;
                (o >= 0).then(|| (e.topic().to_owned(), e.partition(), o))
            })
            .collect()
    }

    fn list_offsets(
        &self,
        partitions: &[(&str, i32)],
        at: ListAt,
        limit: Duration,
    ) -> Result<Vec<Option<i64>>, BrokerError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let offset = match at {
            ListAt::Time(ms) => Offset::Offset(ms),
            ListAt::End => Offset::End,
        };
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &(topic, partition) in partitions {
            tpl.add_partition_offset(topic, partition, offset)
                .map_err(|e| consumer_error(&e))?;
        }
        let answer = self
            .offsets_for_times(tpl, limit)
            .map_err(|e| consumer_error(&e))?;
        partitions
            .iter()
            .map(|&(topic, partition)| {
                let elem = answer.find_partition(topic, partition).ok_or_else(|| {
                    BrokerError::other(format!("no offset answer for {topic}[{partition}]"))
                })?;
                Ok(match elem.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
            })
            .collect()
    }
}

impl<C: ConsumerContext> super::Consumer for BaseConsumer<C> {
    fn cached_end(&self, topic: &str, partition: i32) -> Option<i64> {
        cached_high_watermark(self, topic, partition)
    }

    fn hold(&self, partitions: &[(&str, i32)], pause: bool) -> Result<(), BrokerError> {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &(topic, partition) in partitions {
            tpl.add_partition(topic, partition);
        }
        let done = if pause {
            Consumer::pause(self, &tpl)
        } else {
            Consumer::resume(self, &tpl)
        };
        done.map_err(|e| consumer_error(&e))
    }

    fn assignment(&self) -> Result<Vec<(String, i32)>, BrokerError> {
        let tpl = Consumer::assignment(self).map_err(|e| consumer_error(&e))?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect())
    }

    fn seek(&self, at: &[(&str, i32, i64)], limit: Duration) -> Result<Vec<bool>, BrokerError> {
        let mut tpl = TopicPartitionList::with_capacity(at.len());
        for &(topic, partition, offset) in at {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(|e| consumer_error(&e))?;
        }
        let result = self
            .seek_partitions(tpl, limit)
            .map_err(|e| consumer_error(&e))?;
        Ok(at
            .iter()
            .map(|&(topic, partition, _)| {
                let ok = result
                    .find_partition(topic, partition)
                    .is_some_and(|e| e.error().is_ok());
                if !ok {
                    // Revoked meanwhile: the pending event rebuilds again.
                    tracing::debug!(topic, partition, "seek failed");
                }
                ok
            })
            .collect())
    }

    fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        limit: Duration,
    ) -> Result<(i64, i64), BrokerError> {
        self.fetch_watermarks(topic, partition, limit)
            .map_err(|e| consumer_error(&e))
    }

    fn partitions_of(&self, topic: &str, limit: Duration) -> Result<Vec<i32>, BrokerError> {
        let md = self
            .fetch_metadata(Some(topic), limit)
            .map_err(|e| consumer_error(&e))?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect())
    }
}

/// librdkafka's cached high watermark of a partition, refreshed by every fetch response
/// (no network call). `None` until the first fetch.
fn cached_high_watermark<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives; librdkafka reads the
    // NUL-terminated topic name and writes the two integers, keeping no reference.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// A polled consumer error, sorted: fatal, refused by the authorizer, or transient (a
/// broker restarting, a leader moving).
fn polled_error(e: &KafkaError) -> BrokerError {
    match e {
        KafkaError::MessageConsumptionFatal(code) => BrokerError {
            kind: kind_of(*code),
            fatal: true,
            retriable: false,
            message: code.to_string(),
        },
        KafkaError::MessageConsumption(code) => BrokerError {
            kind: kind_of(*code),
            fatal: false,
            retriable: true,
            message: code.to_string(),
        },
        other => consumer_error(other),
    }
}

fn single(topic: &str, partition: i32) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(1);
    tpl.add_partition(topic, partition);
    tpl
}

fn consumer_error(e: &KafkaError) -> BrokerError {
    BrokerError {
        kind: e.rdkafka_error_code().map_or(ErrorKind::Other, kind_of),
        fatal: false,
        retriable: true,
        message: e.to_string(),
    }
}

fn partition_list(commit: &OffsetCommit) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(commit.offsets.len());
    for (topic, partition, offset) in &commit.offsets {
        let mut elem = tpl.add_partition(topic, *partition);
        // Offsets come from records we consumed, so they are always representable.
        let _ = elem.set_offset(Offset::Offset(*offset));
        elem.set_metadata(commit.metadata.as_str());
    }
    tpl
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

/// Fencing (another process uses our transactional id, and a replacement would fence
/// it in turn) and authorisation are the codes the sink must tell apart.
fn kind_of(code: RDKafkaErrorCode) -> ErrorKind {
    match code {
        RDKafkaErrorCode::ProducerFenced
        | RDKafkaErrorCode::Fenced
        | RDKafkaErrorCode::InvalidProducerEpoch => ErrorKind::Fenced,
        c if is_denied(c) => ErrorKind::Denied,
        RDKafkaErrorCode::QueueFull => ErrorKind::QueueFull,
        _ => ErrorKind::Other,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_and_authorisation_end_the_process_other_fatal_errors_replace_the_producer() {
        for code in [
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::Fenced,
            RDKafkaErrorCode::InvalidProducerEpoch,
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        ] {
            let e = BrokerError {
                kind: kind_of(code),
                fatal: true,
                retriable: false,
                message: String::new(),
            };
            assert!(e.ends_the_process(), "{code:?}");
        }
        // What a broker outage leaves behind: an abort of a transaction the restarted
        // coordinator never heard of, a sequence gap of the idempotent producer.
        for code in [
            RDKafkaErrorCode::InvalidTransactionalState,
            RDKafkaErrorCode::OutOfOrderSequenceNumber,
            RDKafkaErrorCode::UnknownProducerId,
        ] {
            assert_eq!(kind_of(code), ErrorKind::Other, "{code:?}");
        }
    }
}
