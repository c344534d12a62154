//! Live patrol positions, kept in step with the group's records.
//!
//! Every instance reads all of `patrol-positions` with its own group-less consumer, so
//! those records arrive on a different schedule from the group's. Applied as they come,
//! a caught-up position stream would push the engine clock ahead of a group partition
//! that is still working through a backlog (after a restart, say), and the engine would
//! drop that backlog as late. So positions are held here and applied in Kafka-timestamp
//! order with the group records: before each group record, the positions up to its
//! time; and everything once the group partitions are read to their end.
use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::TopicPartitionList;

use super::sink::{Sink, SinkError};
use crate::core::model::{DlqSource, EventTime, Stream};
use crate::io::pipeline::{Pipeline, Produced};

/// Held positions above this pause the patrol partitions (bounded memory).
const HIGH: usize = 50_000;
/// Records taken from librdkafka per fill.
const FILL_BATCH: usize = 5_000;

struct Held {
    ts: i64,
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
}

pub(crate) struct PatrolBuffer {
    topic: String,
    held: VecDeque<Held>,
    paused: bool,
    assignment: TopicPartitionList,
}

impl PatrolBuffer {
    pub(crate) fn new(topic: String) -> Self {
        PatrolBuffer {
            topic,
            held: VecDeque::new(),
            paused: false,
            assignment: TopicPartitionList::new(),
        }
    }

    /// Resumes the partitions this buffer paused, if it did.
    pub(crate) fn unpause(&mut self, side: &BaseConsumer) {
        if self.paused && side.resume(&self.assignment).is_ok() {
            self.paused = false;
        }
    }

    /// After a rebuild: the consumer's new assignment, nothing held.
    pub(crate) fn reset(&mut self, assignment: TopicPartitionList) {
        self.assignment = assignment;
        self.held.clear();
        self.paused = false;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Takes what librdkafka has fetched, without waiting; pauses when too much is held.
    pub(crate) fn fill(
        &mut self,
        side: &BaseConsumer,
        fallback_ts: i64,
    ) -> Vec<rdkafka::error::KafkaError> {
        let mut errors = Vec::new();
        for _ in 0..FILL_BATCH {
            match side.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    let ts = m.timestamp().to_millis().unwrap_or(fallback_ts);
                    self.held.push_back(Held {
                        ts,
                        partition: m.partition(),
                        offset: m.offset(),
                        payload: m.payload().unwrap_or_default().to_vec(),
                    });
                }
                Some(Err(e)) => {
                    errors.push(e);
                    break;
                }
            }
        }
        tracing::trace!(held = self.held.len(), errors = errors.len(), "patrol fill");
        if !self.paused && self.held.len() >= HIGH && side.pause(&self.assignment).is_ok() {
            self.paused = true;
        } else if self.paused && self.held.len() < HIGH / 4 && side.resume(&self.assignment).is_ok()
        {
            self.paused = false;
        }
        errors
    }

    /// Applies the held positions with a Kafka timestamp up to `bound`, in order, and
    /// hands what they produce (timers the clock passed) to the sink.
    pub(crate) fn apply_upto(
        &mut self,
        bound: i64,
        pipeline: &mut Pipeline,
        out: &mut Vec<Produced>,
        sink: &mut Sink,
        now_ms: EventTime,
    ) -> Result<usize, SinkError> {
        let mut applied = 0;
        while self.held.front().is_some_and(|h| h.ts <= bound) {
            let h = self.held.pop_front().expect("a head");
            let source = DlqSource {
                topic: Some(self.topic.clone()),
                partition: Some(h.partition),
                offset: Some(h.offset),
                line: None,
            };
            pipeline.process(
                Stream::Patrol,
                &h.payload,
                source,
                Some(now_ms),
                now_ms,
                out,
            );
            sink.clock_advanced(pipeline.engine().clock());
            applied += 1;
            for p in out.drain(..) {
                sink.send(&p)?;
            }
        }
        Ok(applied)
    }
}
