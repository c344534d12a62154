//! The broker seam: exactly what the runtime's output side needs of Kafka, as traits.
//!
//! - [`Producer`]: a producer, transactional under exactly-once, plain (idempotent)
//!   under at-least-once, with delivery results taken back as [`Report`]s.
//! - [`Committer`]: what the sink needs of the group consumer: the group metadata a
//!   transaction's offsets are sent with, and a plain offset commit.
//! - [`Reader`]: a consumer assigned its partitions (the state rebuild's);
//!   [`Consumer`] adds what the live loop needs of one (cached ends, seeks, metadata),
//!   the side consumer of the global streams; [`Group`] is the group member, with its
//!   rebalance events.
//!
//! [`librdkafka`] is the production implementation; `memory` (unit tests only) is an
//! in-memory broker with fault injection, so that the sink's decisions about aborts,
//! fencing, outages and commits are tested in milliseconds. The real-broker tests in
//! tests/kafka_*.rs prove that the two behave alike where it matters.
//!
//! Errors cross the seam already sorted ([`BrokerError`]): the sink decides from
//! `fatal`, `retriable` and [`ErrorKind`], never from a librdkafka code.
use std::any::Any;
use std::fmt;
use std::time::{Duration, Instant};

use crate::core::model::{AlertKind, EventTime};
use crate::io::pipeline::Produced;

pub(crate) mod librdkafka;
#[cfg(test)]
pub(crate) mod memory;

/// What the sink must tell apart in a broker's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Another producer took our transactional id (fencing): a new producer would fence
    /// it in turn, so the process must stop.
    Fenced,
    /// The brokers' authorizer refused: an ACL does not appear by retrying.
    Denied,
    /// The producer's local queue is full: serve delivery reports and send again.
    QueueFull,
    /// Anything else; `fatal` and `retriable` say what it means.
    Other,
}

/// A broker operation's failure, sorted by the implementation.
#[derive(Debug, Clone)]
pub(crate) struct BrokerError {
    pub kind: ErrorKind,
    /// The producer cannot go on (a transactional error the client calls fatal, or the
    /// client holds a fatal error).
    pub fatal: bool,
    /// Trying the same call again may succeed (a timeout, a coordinator loading).
    pub retriable: bool,
    pub message: String,
}

impl BrokerError {
    pub(crate) fn ends_the_process(&self) -> bool {
        matches!(self.kind, ErrorKind::Fenced | ErrorKind::Denied)
    }

    /// What an operator should check, for errors that end the process.
    pub(crate) fn hint(&self) -> &'static str {
        match self.kind {
            ErrorKind::Fenced => {
                " (another process uses the same transactional id: each running instance needs its own kafka.instance_id)"
            }
            _ => "",
        }
    }
}

impl BrokerError {
    /// An error that is none of the kinds the sink tells apart, and not fatal.
    pub(crate) fn other(message: String) -> Self {
        BrokerError {
            kind: ErrorKind::Other,
            fatal: false,
            retriable: false,
            message,
        }
    }
}

impl std::error::Error for BrokerError {}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Carried with every produced record and back in its delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeliveryTag {
    /// The at-least-once batch the record belongs to (0 under exactly-once).
    pub batch: u64,
    /// An alert's first copy: its kind and event time, for the latency metric.
    pub alert: Option<(AlertKind, EventTime)>,
    /// The first record to a per-unit topic this process has just created or found:
    /// its delivery is logged (docs/KAFKA_RUNTIME.md, "Live equals replay", cause 4).
    pub new_topic: bool,
}

/// A delivery result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub tag: DeliveryTag,
    pub failure: Option<DeliveryFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeliveryFailure {
    pub message: String,
    /// Dropped by our own abort or purge: expected, its work is done again anyway.
    pub purged: bool,
    /// The authorizer refused the record (no Write ACL).
    pub denied: bool,
}

/// Consumed offsets to commit: every partition's next offset to read, all with the same
/// metadata (the engine clock and the global streams' progress, see sink).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OffsetCommit {
    pub offsets: Vec<(String, i32, i64)>,
    pub metadata: String,
}

/// The group consumer's metadata (group, generation, member) that ties a transaction's
/// offsets to the current group generation: a member that was rebalanced away cannot
/// commit them. Opaque: each implementation hands its own to its own producer.
pub(crate) struct GroupMetadata(pub(crate) Box<dyn Any + Send>);

/// How the sink commits through the group consumer.
pub(crate) trait Committer {
    /// `None` while the consumer is not a group member.
    fn member_metadata(&self) -> Option<GroupMetadata>;
    /// Commits offsets outside a transaction (at-least-once). `sync`: waits for the
    /// coordinator's answer; otherwise the answer arrives through the consumer's poll.
    fn commit_offsets(&self, offsets: &OffsetCommit, sync: bool) -> Result<(), BrokerError>;
}

/// Producer statistics of interest (where the time goes).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerStats {
    /// Broker round trip p99, µs.
    pub rtt_p99_us: i64,
    /// Time a record waits in the client's queues before it is sent, p99, µs.
    pub int_latency_p99_us: i64,
}

/// A Kafka producer as the sink uses it. Every call that waits takes its limit; a call
/// that runs out of it returns a retriable error.
pub(crate) trait Producer: Send {
    /// Makes sure `topic` exists when it is a per-unit dispatch topic (other topics were
    /// checked at start-up); whether it was new to this process.
    fn ensure_topic(&mut self, topic: &str) -> anyhow::Result<bool>;
    /// After a failed transaction a per-unit topic may be the cause: check them again.
    fn forget_topics(&mut self);
    /// Queues one record; its [`Report`] comes back through [`Producer::take_reports`].
    fn send(&mut self, record: &Produced, tag: DeliveryTag) -> Result<(), BrokerError>;
    /// Serves the client's events (delivery results) for up to `wait`.
    fn poll(&mut self, wait: Duration);
    /// Serves every delivery result that is ready, without waiting.
    fn serve_ready(&mut self);
    /// The delivery results served since the last call.
    fn take_reports(&mut self) -> Vec<Report>;
    /// Records queued or sent without a delivery result yet.
    fn in_flight(&self) -> usize;
    /// Waits until every record has its delivery result.
    fn flush(&mut self, limit: Duration) -> Result<(), BrokerError>;
    /// Drops what is queued or in flight; each gets a purged failure.
    fn purge(&mut self);
    /// The fatal error the client holds, if any.
    fn fatal_error(&self) -> Option<BrokerError>;
    fn init_transactions(&mut self, limit: Duration) -> Result<(), BrokerError>;
    fn begin_transaction(&mut self) -> Result<(), BrokerError>;
    fn send_offsets_to_transaction(
        &mut self,
        offsets: &OffsetCommit,
        group: &GroupMetadata,
        limit: Duration,
    ) -> Result<(), BrokerError>;
    fn commit_transaction(&mut self, limit: Duration) -> Result<(), BrokerError>;
    fn abort_transaction(&mut self, limit: Duration) -> Result<(), BrokerError>;
    /// Replaces the client with a new one of the same configuration (what it held is
    /// dropped; transactions are not initialised yet).
    fn renew(&mut self) -> Result<(), BrokerError>;
    fn stats(&self) -> ProducerStats;
}

/// A record as a [`Reader`] hands it over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fetched<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's Kafka timestamp, if it has one.
    pub kafka_ts: Option<i64>,
    pub payload: &'a [u8],
}

/// What a [`Reader::poll`] found.
#[derive(Debug, Clone)]
pub(crate) enum Polled {
    /// One record, handed to the callback.
    Record,
    /// Nothing within the wait (or the end of a partition).
    Idle,
    /// A consumer error: reading goes on unless it is fatal.
    Failed(BrokerError),
}

/// Where a list-offsets query looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListAt {
    /// The first offset whose Kafka timestamp is at or after this (epoch ms).
    Time(i64),
    /// The end: the next offset to be written (under read_committed the last stable
    /// offset).
    End,
}

/// A consumer that is assigned its partitions (no group): what the state rebuild reads
/// the input window with.
pub(crate) trait Reader {
    /// Reads each `(topic, partition)` from the given offset.
    fn assign(&self, at: &[(&str, i32, i64)]) -> Result<(), BrokerError>;
    /// Waits up to `wait` for a record and hands it to `f`.
    fn poll(&self, wait: Duration, f: &mut dyn FnMut(Fetched<'_>)) -> Polled;
    /// Stops fetching a partition; whether that worked.
    fn pause(&self, topic: &str, partition: i32) -> bool;
    fn resume(&self, topic: &str, partition: i32) -> bool;
    /// The next offset the consumer will read, per assigned partition it knows one of.
    /// It moves past transaction markers, which occupy offsets but are never delivered.
    fn positions(&self) -> Vec<(String, i32, i64)>;
    /// Per partition, in order: the offset `at` names, `None` when there is none (no
    /// record at or after the time). A partition missing from the answer is an error.
    fn list_offsets(
        &self,
        partitions: &[(&str, i32)],
        at: ListAt,
        limit: Duration,
    ) -> Result<Vec<Option<i64>>, BrokerError>;
}

/// What the live loop needs of a consumer besides reading: the side consumer of the
/// global streams, and the group member.
pub(crate) trait Consumer: Reader {
    /// The partition's end as of the consumer's last fetch (no network call); `None`
    /// before its first fetch.
    fn cached_end(&self, topic: &str, partition: i32) -> Option<i64>;
    /// Pauses or resumes several partitions in one call.
    fn hold(&self, partitions: &[(&str, i32)], pause: bool) -> Result<(), BrokerError>;
    fn assignment(&self) -> Result<Vec<(String, i32)>, BrokerError>;
    /// Moves each partition's position; per partition whether that worked.
    fn seek(&self, at: &[(&str, i32, i64)], limit: Duration) -> Result<Vec<bool>, BrokerError>;
    /// The partition's first and next offsets.
    fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        limit: Duration,
    ) -> Result<(i64, i64), BrokerError>;
    fn partitions_of(&self, topic: &str, limit: Duration) -> Result<Vec<i32>, BrokerError>;
}

/// What happened to the group member during `poll`, for the runtime to act on after it
/// returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupEvent {
    /// Partitions added to the assignment (empty: the member joined with none).
    Assigned(Vec<(String, i32)>),
    /// Partitions being taken away. They stay assigned, and the group waits, until the
    /// runtime has settled its open work and called [`Group::give_up`]; `lost`: the
    /// member's session ended, so another member may own them already.
    Revoking {
        partitions: Vec<(String, i32)>,
        lost: bool,
    },
    /// The coordinator answered an asynchronous offset commit, at this instant.
    CommitAnswered(Instant),
}

/// The consumer statistics /readyz and the metrics use.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupStats {
    pub received: Option<Instant>,
    /// Summed lag of the assigned partitions whose lag the client knows.
    pub total_lag: i64,
    pub brokers_up: usize,
    pub brokers: usize,
    /// Since when some broker has been up without a break (`None` while none is).
    pub up_since: Option<Instant>,
    /// Worst broker round trip p99 seen by the consumer, µs.
    pub rtt_p99_us: i64,
}

/// A group's committed offset of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub topic: String,
    pub partition: i32,
    /// `None`: never committed.
    pub offset: Option<i64>,
    pub metadata: String,
}

/// The consumer-group member. Rebalances happen inside `poll` and come out as
/// [`GroupEvent`]s; a revocation is finished only when the runtime calls
/// [`Group::give_up`], so that the runtime, which owns the sink, settles its open work
/// first (librdkafka's examples/transactions.c commits before the partitions go).
pub(crate) trait Group: Consumer + Committer {
    /// Itself as what the sink commits through.
    fn committer(&self) -> &dyn Committer;
    fn subscribe(&self, topics: &[&str]) -> Result<(), BrokerError>;
    fn take_events(&self) -> Vec<GroupEvent>;
    /// Whether a [`GroupEvent::Revoking`] waits for [`Group::give_up`]: the runtime
    /// reads no further records before it has settled.
    fn revoke_pending(&self) -> bool;
    /// Finishes a revocation: the partitions leave the assignment.
    fn give_up(&self, partitions: &[(String, i32)]) -> Result<(), BrokerError>;
    /// A fatal error raised inside a rebalance; the runtime returns it.
    fn take_failure(&self) -> Option<anyhow::Error>;
    fn committed(
        &self,
        partitions: &[(&str, i32)],
        limit: Duration,
    ) -> Result<Vec<Committed>, BrokerError>;
    fn stats(&self) -> GroupStats;
    /// Leaves the group; the open work must be settled before (a revocation during
    /// leaving gives the partitions up at once).
    fn leave(self: Box<Self>);
}
