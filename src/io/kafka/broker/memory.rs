//! An in-memory broker behind the seam, for unit tests of the runtime's logic: one
//! transactional id, one consumer group, a log per topic, and faults injected on
//! purpose — an operation's next answer, the broker gone for a while, fencing by a
//! newer producer, a rebalance in the middle of a transaction, failed deliveries.
//!
//! Time is the test's [`ManualClock`]: a call that waits for an unreachable broker
//! moves the clock by its limit and fails as a timeout, as librdkafka's would.
//! What it models is what the sink relies on; the real-broker tests in
//! tests/kafka_*.rs keep it honest.
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{
    BrokerError, Committer, DeliveryFailure, DeliveryTag, ErrorKind, Fetched, GroupMetadata,
    ListAt, OffsetCommit, Polled, Producer, ProducerStats, Reader, Report,
};
use crate::io::clock::{Clock, ManualClock};
use crate::io::pipeline::Produced;

/// The operations a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    InitTransactions,
    Begin,
    Send,
    SendOffsets,
    Commit,
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visibility {
    /// Written inside transaction `n`, not yet committed.
    Open(u64),
    Committed,
    Aborted,
}

#[derive(Debug, Clone)]
struct Stored {
    topic: String,
    payload: Vec<u8>,
    visibility: Visibility,
}

/// An input record: its Kafka timestamp and payload.
type InputRecord = (i64, Vec<u8>);

#[derive(Default)]
struct State {
    log: Vec<Stored>,
    offsets: BTreeMap<(String, i32), (i64, String)>,
    epoch: u32,
    generation: u32,
    down_until: Option<Instant>,
    faults: VecDeque<(Op, BrokerError)>,
    failing_deliveries: usize,
    /// The output partitions' leader is away: nothing is delivered, the coordinator
    /// still answers.
    deliveries_held: bool,
    next_txn: u64,
    /// Input partitions: each record's Kafka timestamp and payload, by offset.
    inputs: BTreeMap<(String, i32), Vec<InputRecord>>,
    /// Input partitions that deliver nothing (their end is still listed).
    silent: HashSet<(String, i32)>,
}

/// The shared broker; producers and group members are made from it.
#[derive(Clone)]
pub(crate) struct MemoryBroker {
    state: Arc<Mutex<State>>,
    pub(crate) clock: Arc<ManualClock>,
}

impl BrokerError {
    /// An error that aborts the transaction (the producer goes on).
    pub(crate) fn abortable(message: &str) -> Self {
        BrokerError {
            kind: ErrorKind::Other,
            fatal: false,
            retriable: false,
            message: message.to_owned(),
        }
    }

    /// A call that ran out of time.
    pub(crate) fn timed_out(what: &str) -> Self {
        BrokerError {
            kind: ErrorKind::Other,
            fatal: false,
            retriable: true,
            message: format!("{what}: Local: Timed out"),
        }
    }

    pub(crate) fn fatal(kind: ErrorKind, message: &str) -> Self {
        BrokerError {
            kind,
            fatal: true,
            retriable: false,
            message: message.to_owned(),
        }
    }
}

impl MemoryBroker {
    pub(crate) fn new() -> Self {
        MemoryBroker {
            state: Arc::default(),
            clock: ManualClock::new(1_800_000_000_000),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("broker lock")
    }

    fn down(&self) -> bool {
        let now = self.clock.now();
        self.state().down_until.is_some_and(|t| now < t)
    }

    /// The next call of `op` fails with `error`.
    pub(crate) fn fail_next(&self, op: Op, error: BrokerError) {
        self.state().faults.push_back((op, error));
    }

    fn fault(&self, op: Op) -> Option<BrokerError> {
        let mut st = self.state();
        let i = st.faults.iter().position(|(o, _)| *o == op)?;
        st.faults.remove(i).map(|(_, e)| e)
    }

    /// The broker is unreachable for `d` from now (clock time).
    pub(crate) fn go_away(&self, d: Duration) {
        let until = self.clock.now() + d;
        self.state().down_until = Some(until);
    }

    /// The next `n` deliveries fail (a broker's error for the produce request).
    pub(crate) fn fail_deliveries(&self, n: usize) {
        self.state().failing_deliveries = n;
    }

    /// Holds (or releases) every delivery while the group coordinator still answers.
    pub(crate) fn hold_deliveries(&self, held: bool) {
        self.state().deliveries_held = held;
    }

    /// Another producer with our transactional id initialised: ours is fenced and its
    /// open transaction aborted.
    pub(crate) fn fence(&self) {
        let mut st = self.state();
        st.epoch += 1;
        abort_open(&mut st.log);
    }

    /// The group rebalanced: offsets of members of an older generation are refused.
    pub(crate) fn rebalance(&self) {
        self.state().generation += 1;
    }

    /// Appends an input record; its offset.
    pub(crate) fn append(&self, topic: &str, partition: i32, kafka_ts: i64, payload: &[u8]) -> i64 {
        let mut st = self.state();
        let log = st.inputs.entry((topic.to_owned(), partition)).or_default();
        log.push((kafka_ts, payload.to_vec()));
        log.len() as i64 - 1
    }

    /// `topic[partition]` stops delivering (a fetch that never returns), or starts again.
    pub(crate) fn silence(&self, topic: &str, partition: i32, silent: bool) {
        let key = (topic.to_owned(), partition);
        let mut st = self.state();
        if silent {
            st.silent.insert(key);
        } else {
            st.silent.remove(&key);
        }
    }

    /// A consumer with no group, reading input partitions by assignment.
    pub(crate) fn reader(&self) -> MemoryReader {
        MemoryReader {
            broker: self.clone(),
            inner: Mutex::default(),
        }
    }

    /// What a read_committed reader of `topic` finds.
    pub(crate) fn read_committed(&self, topic: &str) -> Vec<Vec<u8>> {
        self.state()
            .log
            .iter()
            .filter(|r| r.topic == topic && r.visibility == Visibility::Committed)
            .map(|r| r.payload.clone())
            .collect()
    }

    /// The group's committed offset and metadata of `topic[partition]`.
    pub(crate) fn committed(&self, topic: &str, partition: i32) -> Option<(i64, String)> {
        self.state()
            .offsets
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    pub(crate) fn producer(&self, transactional: bool) -> MemoryProducer {
        MemoryProducer {
            broker: self.clone(),
            transactional,
            epoch: None,
            txn: None,
            queue: VecDeque::new(),
            reports: Vec::new(),
            fatal: None,
            offsets: None,
            topics: HashSet::new(),
        }
    }

    /// A member of the group's current generation.
    pub(crate) fn member(&self) -> MemoryMember {
        MemoryMember {
            broker: self.clone(),
            generation: self.state().generation,
        }
    }

    /// Waits for an unreachable broker: the clock moves by `limit`.
    fn timed_out(&self, what: &str, limit: Duration) -> BrokerError {
        self.clock.advance(limit);
        BrokerError::timed_out(what)
    }
}

fn abort_open(log: &mut [Stored]) {
    for r in log.iter_mut() {
        if matches!(r.visibility, Visibility::Open(_)) {
            r.visibility = Visibility::Aborted;
        }
    }
}

pub(crate) struct MemoryProducer {
    broker: MemoryBroker,
    transactional: bool,
    /// The epoch `init_transactions` got.
    epoch: Option<u32>,
    txn: Option<u64>,
    queue: VecDeque<(String, Vec<u8>, DeliveryTag, Option<u64>)>,
    reports: Vec<Report>,
    fatal: Option<BrokerError>,
    offsets: Option<OffsetCommit>,
    topics: HashSet<String>,
}

impl MemoryProducer {
    /// Fencing is found out by the next transactional call, and is fatal.
    fn fenced(&mut self) -> Result<(), BrokerError> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        if self.transactional && self.epoch != Some(self.broker.state().epoch) {
            let e = BrokerError::fatal(ErrorKind::Fenced, "Broker: Producer fenced");
            self.fatal = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// Delivers what is queued, unless the broker is away; whether anything was.
    fn deliver(&mut self) -> bool {
        if self.queue.is_empty() || self.broker.down() || self.broker.state().deliveries_held {
            return false;
        }
        let mut st = self.broker.state();
        for (topic, payload, tag, txn) in self.queue.drain(..) {
            if st.failing_deliveries > 0 {
                st.failing_deliveries -= 1;
                self.reports.push(Report {
                    tag,
                    failure: Some(DeliveryFailure {
                        message: format!("{topic}: Broker: Not enough in-sync replicas"),
                        purged: false,
                        denied: false,
                    }),
                });
                continue;
            }
            st.log.push(Stored {
                topic,
                payload,
                visibility: txn.map_or(Visibility::Committed, Visibility::Open),
            });
            self.reports.push(Report { tag, failure: None });
        }
        true
    }
}

impl Producer for MemoryProducer {
    fn ensure_topic(&mut self, topic: &str) -> anyhow::Result<bool> {
        Ok(topic.starts_with("dispatch.") && self.topics.insert(topic.to_owned()))
    }

    fn forget_topics(&mut self) {
        self.topics.clear();
    }

    fn send(&mut self, record: &Produced, tag: DeliveryTag) -> Result<(), BrokerError> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        if let Some(e) = self.broker.fault(Op::Send) {
            return Err(e);
        }
        if self.transactional && self.txn.is_none() {
            return Err(BrokerError::abortable("no transaction in progress"));
        }
        self.queue
            .push_back((record.topic.clone(), record.payload.clone(), tag, self.txn));
        Ok(())
    }

    fn poll(&mut self, wait: Duration) {
        if !self.deliver() {
            self.broker.clock.advance(wait);
        }
    }

    fn serve_ready(&mut self) {
        self.deliver();
    }

    fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }

    fn in_flight(&self) -> usize {
        self.queue.len()
    }

    fn flush(&mut self, limit: Duration) -> Result<(), BrokerError> {
        self.deliver();
        if self.queue.is_empty() {
            Ok(())
        } else {
            Err(self.broker.timed_out("flushing", limit))
        }
    }

    fn purge(&mut self) {
        for (_, _, tag, _) in self.queue.drain(..) {
            self.reports.push(Report {
                tag,
                failure: Some(DeliveryFailure {
                    message: "purged".to_owned(),
                    purged: true,
                    denied: false,
                }),
            });
        }
    }

    fn fatal_error(&self) -> Option<BrokerError> {
        self.fatal.clone()
    }

    fn init_transactions(&mut self, limit: Duration) -> Result<(), BrokerError> {
        if self.broker.down() {
            return Err(self.broker.timed_out("initialising transactions", limit));
        }
        if let Some(e) = self.broker.fault(Op::InitTransactions) {
            return Err(e);
        }
        self.broker.fence();
        self.epoch = Some(self.broker.state().epoch);
        Ok(())
    }

    fn begin_transaction(&mut self) -> Result<(), BrokerError> {
        self.fenced()?;
        if let Some(e) = self.broker.fault(Op::Begin) {
            return Err(e);
        }
        let mut st = self.broker.state();
        st.next_txn += 1;
        self.txn = Some(st.next_txn);
        Ok(())
    }

    fn send_offsets_to_transaction(
        &mut self,
        offsets: &OffsetCommit,
        group: &GroupMetadata,
        limit: Duration,
    ) -> Result<(), BrokerError> {
        if self.broker.down() {
            return Err(self.broker.timed_out("sending offsets", limit));
        }
        self.fenced()?;
        if let Some(e) = self.broker.fault(Op::SendOffsets) {
            return Err(e);
        }
        let generation = group.0.downcast_ref::<u32>().copied();
        if generation != Some(self.broker.state().generation) {
            return Err(BrokerError::abortable(
                "Broker: Specified group generation id is not valid",
            ));
        }
        self.offsets = Some(offsets.clone());
        Ok(())
    }

    fn commit_transaction(&mut self, limit: Duration) -> Result<(), BrokerError> {
        self.deliver();
        if self.broker.down() {
            return Err(self.broker.timed_out("committing the transaction", limit));
        }
        self.fenced()?;
        if let Some(e) = self.broker.fault(Op::Commit) {
            return Err(e);
        }
        let Some(txn) = self.txn.take() else {
            return Err(BrokerError::abortable("no transaction in progress"));
        };
        let mut st = self.broker.state();
        for r in st.log.iter_mut() {
            if r.visibility == Visibility::Open(txn) {
                r.visibility = Visibility::Committed;
            }
        }
        if let Some(o) = self.offsets.take() {
            for (topic, partition, offset) in o.offsets {
                st.offsets
                    .insert((topic, partition), (offset, o.metadata.clone()));
            }
        }
        Ok(())
    }

    fn abort_transaction(&mut self, limit: Duration) -> Result<(), BrokerError> {
        if self.broker.down() {
            return Err(self.broker.timed_out("aborting the transaction", limit));
        }
        self.fenced()?;
        if let Some(e) = self.broker.fault(Op::Abort) {
            return Err(e);
        }
        if let Some(txn) = self.txn.take() {
            let mut st = self.broker.state();
            for r in st.log.iter_mut() {
                if r.visibility == Visibility::Open(txn) {
                    r.visibility = Visibility::Aborted;
                }
            }
        }
        self.offsets = None;
        Ok(())
    }

    fn renew(&mut self) -> Result<(), BrokerError> {
        *self = self.broker.producer(self.transactional);
        Ok(())
    }

    fn stats(&self) -> ProducerStats {
        ProducerStats::default()
    }
}

/// A group member: commits offsets, and hands its generation to transactions.
pub(crate) struct MemoryMember {
    broker: MemoryBroker,
    generation: u32,
}

impl MemoryMember {
    /// Joins the group's current generation (after a rebalance).
    pub(crate) fn rejoin(&mut self) {
        self.generation = self.broker.state().generation;
    }
}

impl Committer for MemoryMember {
    fn member_metadata(&self) -> Option<GroupMetadata> {
        Some(GroupMetadata(Box::new(self.generation)))
    }

    fn commit_offsets(&self, offsets: &OffsetCommit, _sync: bool) -> Result<(), BrokerError> {
        if self.broker.down() {
            return Err(BrokerError::timed_out("committing offsets"));
        }
        let mut st = self.broker.state();
        if self.generation != st.generation {
            return Err(BrokerError::abortable(
                "Broker: Specified group generation id is not valid",
            ));
        }
        for (topic, partition, offset) in &offsets.offsets {
            st.offsets.insert(
                (topic.clone(), *partition),
                (*offset, offsets.metadata.clone()),
            );
        }
        Ok(())
    }
}

/// Records handed over from one partition before the next has its turn: librdkafka
/// delivers fetched batches partition by partition, which is what the merges are for.
const BATCH: usize = 100;

#[derive(Default)]
struct ReaderState {
    assigned: Vec<((String, i32), i64)>,
    paused: HashSet<(String, i32)>,
    /// The partition whose batch is being handed over, and how much of it is left.
    turn: usize,
    left: usize,
}

pub(crate) struct MemoryReader {
    broker: MemoryBroker,
    inner: Mutex<ReaderState>,
}

type Record = (String, i32, i64, i64, Vec<u8>);

impl MemoryReader {
    /// The next record of the partition whose turn it is; when its batch is over or it
    /// has nothing to give, the next partition's.
    fn next_record(&self) -> Option<Record> {
        let st = self.broker.state();
        let mut r = self.inner.lock().expect("reader lock");
        let n = r.assigned.len();
        if n == 0 {
            return None;
        }
        for _ in 0..=n {
            if r.left == 0 {
                r.turn = (r.turn + 1) % n;
                r.left = BATCH;
            }
            let i = r.turn;
            let (key, next) = r.assigned[i].clone();
            let record = st
                .inputs
                .get(&key)
                .and_then(|log| log.get(next as usize))
                .filter(|_| !r.paused.contains(&key) && !st.silent.contains(&key));
            let Some((ts, payload)) = record else {
                r.left = 0;
                continue;
            };
            let record = (key.0.clone(), key.1, next, *ts, payload.clone());
            r.assigned[i].1 = next + 1;
            r.left -= 1;
            return Some(record);
        }
        None
    }
}

impl Reader for MemoryReader {
    fn assign(&self, at: &[(&str, i32, i64)]) -> Result<(), BrokerError> {
        let mut r = self.inner.lock().expect("reader lock");
        r.assigned = at.iter().map(|&(t, p, o)| ((t.to_owned(), p), o)).collect();
        r.paused.clear();
        // The first poll starts with the first partition.
        r.turn = at.len().saturating_sub(1);
        r.left = 0;
        Ok(())
    }

    fn poll(&self, wait: Duration, f: &mut dyn FnMut(Fetched<'_>)) -> Polled {
        // Handed over outside the locks: the callback pauses partitions.
        match self.next_record() {
            Some((topic, partition, offset, ts, payload)) => {
                f(Fetched {
                    topic: &topic,
                    partition,
                    offset,
                    kafka_ts: Some(ts),
                    payload: &payload,
                });
                Polled::Record
            }
            None => {
                self.broker.clock.advance(wait);
                Polled::Idle
            }
        }
    }

    fn pause(&self, topic: &str, partition: i32) -> bool {
        let mut r = self.inner.lock().expect("reader lock");
        r.paused.insert((topic.to_owned(), partition));
        true
    }

    fn resume(&self, topic: &str, partition: i32) -> bool {
        let mut r = self.inner.lock().expect("reader lock");
        r.paused.remove(&(topic.to_owned(), partition));
        true
    }

    fn positions(&self) -> Vec<(String, i32, i64)> {
        let r = self.inner.lock().expect("reader lock");
        r.assigned
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect()
    }

    fn list_offsets(
        &self,
        partitions: &[(&str, i32)],
        at: ListAt,
        _limit: Duration,
    ) -> Result<Vec<Option<i64>>, BrokerError> {
        let st = self.broker.state();
        Ok(partitions
            .iter()
            .map(|&(t, p)| {
                let log = st.inputs.get(&(t.to_owned(), p));
                match at {
                    ListAt::End => Some(log.map_or(0, Vec::len) as i64),
                    ListAt::Time(ms) => log
                        .and_then(|l| l.iter().position(|(ts, _)| *ts >= ms))
                        .map(|o| o as i64),
                }
            })
            .collect())
    }
}
