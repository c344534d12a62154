//! An in-memory broker behind the seam, for unit tests of the runtime's logic: one
//! transactional id, one consumer group, a log per topic, and faults injected on
//! purpose — an operation's next answer, the broker gone for a while, fencing by a
//! newer producer, a rebalance in the middle of a transaction, failed deliveries.
//!
//! Time is the test's [`ManualClock`]: a call that waits for an unreachable broker
//! moves the clock by its limit and fails as a timeout, as librdkafka's would.
//! What it models is what the sink relies on; the real-broker tests in
//! tests/kafka_*.rs keep it honest.
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{
    BrokerError, Committer, DeliveryFailure, DeliveryTag, ErrorKind, Fetched, GroupMetadata,
    ListAt, OffsetCommit, Polled, Producer, ProducerStats, Reader, Report,
};
use crate::io::clock::{Clock, ManualClock};
use crate::io::kafka::broker::{Committed, Consumer, Group, GroupEvent, GroupStats};
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
    /// The partition the producer named (the repartition records name theirs).
    partition: Option<i32>,
    payload: Vec<u8>,
    visibility: Visibility,
}

/// A record sent and not delivered yet: topic, partition, payload, tag, transaction.
type Queued = (String, Option<i32>, Vec<u8>, DeliveryTag, Option<u64>);

/// An input record: its Kafka timestamp and payload.
type InputRecord = (i64, Vec<u8>);

#[derive(Default)]
struct State {
    log: Vec<Stored>,
    offsets: BTreeMap<(String, i32), (i64, String)>,
    /// Each transactional id's current epoch: a producer of an older one is fenced.
    epochs: BTreeMap<String, u32>,
    /// Which transactional id each transaction belongs to.
    txn_owner: BTreeMap<u64, String>,
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
    /// How many of the next resumes are lost (librdkafka can lose one that races an
    /// assignment or seek, confluentinc/librdkafka#5591).
    lost_resumes: usize,
    /// Partitions per topic.
    partitions: BTreeMap<String, i32>,
    /// The group's members, in joining order; each generation assigns the partitions
    /// round-robin over them.
    members: Vec<u32>,
    /// Which member holds each assigned partition: a partition moves to its new owner
    /// only once the old one has given it up.
    holders: BTreeMap<(String, i32), u32>,
    next_member: u32,
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

    /// The next `n` resumes of any consumer's partitions do nothing.
    pub(crate) fn lose_resumes(&self, n: usize) {
        self.state().lost_resumes = n;
    }

    /// Holds (or releases) every delivery while the group coordinator still answers.
    pub(crate) fn hold_deliveries(&self, held: bool) {
        self.state().deliveries_held = held;
    }

    /// Another producer with the default transactional id initialised: the one of the
    /// tests is fenced and its open transaction aborted.
    pub(crate) fn fence(&self) {
        self.fence_id(DEFAULT_ID);
    }

    /// The default transactional id's epoch: how often it was initialised.
    pub(crate) fn fence_epoch(&self) -> u32 {
        self.state().epochs.get(DEFAULT_ID).copied().unwrap_or(0)
    }

    /// A producer initialised transactional id `id`: the epoch moves on and the id's
    /// open transaction is aborted; its new epoch.
    fn fence_id(&self, id: &str) -> u32 {
        let mut st = self.state();
        let epoch = {
            let e = st.epochs.entry(id.to_owned()).or_default();
            *e += 1;
            *e
        };
        let State { log, txn_owner, .. } = &mut *st;
        for r in log.iter_mut() {
            if let Visibility::Open(n) = r.visibility {
                if txn_owner.get(&n).is_some_and(|o| o == id) {
                    r.visibility = Visibility::Aborted;
                }
            }
        }
        epoch
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

    /// Creates `topic` with `partitions` (input topics; output topics need none).
    pub(crate) fn create_topic(&self, topic: &str, partitions: i32) {
        self.state().partitions.insert(topic.to_owned(), partitions);
    }

    /// A new member of the group; it joins when it subscribes.
    pub(crate) fn group_member(&self) -> MemoryGroup {
        let id = {
            let mut st = self.state();
            st.next_member += 1;
            st.next_member
        };
        MemoryGroup {
            broker: self.clone(),
            id,
            reader: self.reader(),
            topics: Mutex::default(),
            generation: Mutex::new(None),
            events: Mutex::default(),
            revoking: Mutex::default(),
            joined_at: self.clock.now(),
        }
    }

    /// Every member's session times out (the processes were killed, or stalled past
    /// `session.timeout.ms`): the group rebalances without them and their partitions
    /// are free. A member still alive finds its assignment lost at its next poll.
    pub(crate) fn expire_members(&self) {
        let mut st = self.state();
        st.members.clear();
        st.holders.clear();
        st.generation += 1;
    }

    /// Until when the broker is away, if it is.
    fn down_until(&self) -> Option<Instant> {
        let now = self.clock.now();
        self.state().down_until.filter(|t| now < *t)
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

    /// What a read_committed reader of `topic` finds, with the partition each record
    /// was sent to.
    pub(crate) fn read_committed_with_partitions(
        &self,
        topic: &str,
    ) -> Vec<(Option<i32>, Vec<u8>)> {
        self.state()
            .log
            .iter()
            .filter(|r| r.topic == topic && r.visibility == Visibility::Committed)
            .map(|r| (r.partition, r.payload.clone()))
            .collect()
    }

    /// The group's committed offset and metadata of `topic[partition]`.
    pub(crate) fn committed(&self, topic: &str, partition: i32) -> Option<(i64, String)> {
        self.state()
            .offsets
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// A producer; a transactional one has the default transactional id.
    pub(crate) fn producer(&self, transactional: bool) -> MemoryProducer {
        let mut p = self.producer_with_id(DEFAULT_ID);
        p.transactional = transactional;
        p
    }

    /// A transactional producer with its own transactional id (one per instance).
    pub(crate) fn producer_with_id(&self, id: &str) -> MemoryProducer {
        MemoryProducer {
            broker: self.clone(),
            transactional: true,
            id: id.to_owned(),
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

/// The transactional id of [`MemoryBroker::producer`].
const DEFAULT_ID: &str = "roadwatch-test";

pub(crate) struct MemoryProducer {
    broker: MemoryBroker,
    transactional: bool,
    /// The transactional id.
    id: String,
    /// The epoch `init_transactions` got.
    epoch: Option<u32>,
    txn: Option<u64>,
    queue: VecDeque<Queued>,
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
        if self.transactional && self.epoch != self.broker.state().epochs.get(&self.id).copied() {
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
        for (topic, partition, payload, tag, txn) in self.queue.drain(..) {
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
                partition,
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
        self.queue.push_back((
            record.topic.clone(),
            record.partition,
            record.payload.clone(),
            tag,
            self.txn,
        ));
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
        for (_, _, _, tag, _) in self.queue.drain(..) {
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
        self.epoch = Some(self.broker.fence_id(&self.id));
        Ok(())
    }

    fn begin_transaction(&mut self) -> Result<(), BrokerError> {
        self.fenced()?;
        if let Some(e) = self.broker.fault(Op::Begin) {
            return Err(e);
        }
        let mut st = self.broker.state();
        st.next_txn += 1;
        let n = st.next_txn;
        st.txn_owner.insert(n, self.id.clone());
        self.txn = Some(n);
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
        let mut renewed = self.broker.producer_with_id(&self.id);
        renewed.transactional = self.transactional;
        *self = renewed;
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
    /// Each partition's end as of its last fetch: librdkafka's cached high watermark,
    /// unknown until a first fetch, and stale while the broker is away or the partition
    /// is paused or silent.
    ends: HashMap<(String, i32), i64>,
}

pub(crate) struct MemoryReader {
    broker: MemoryBroker,
    inner: Mutex<ReaderState>,
}

type Record = (String, i32, i64, i64, Vec<u8>);

impl MemoryReader {
    fn add(&self, topic: &str, partition: i32, offset: i64) {
        let mut r = self.inner.lock().expect("reader lock");
        r.assigned.push(((topic.to_owned(), partition), offset));
    }

    fn remove(&self, topic: &str, partition: i32) {
        let mut r = self.inner.lock().expect("reader lock");
        r.assigned
            .retain(|((t, p), _)| !(t == topic && *p == partition));
        r.paused.remove(&(topic.to_owned(), partition));
        r.ends.remove(&(topic.to_owned(), partition));
        r.left = 0;
    }

    /// The next record of the partition whose turn it is; when its batch is over or it
    /// has nothing to give, the next partition's.
    fn next_record(&self) -> Option<Record> {
        let st = self.broker.state();
        let mut r = self.inner.lock().expect("reader lock");
        let n = r.assigned.len();
        if n == 0 || st.down_until.is_some_and(|t| self.broker.clock.now() < t) {
            return None;
        }
        // A fetch answers with each fetched partition's high watermark.
        for i in 0..n {
            let key = r.assigned[i].0.clone();
            if !r.paused.contains(&key) && !st.silent.contains(&key) {
                let end = st.inputs.get(&key).map_or(0, Vec::len) as i64;
                r.ends.insert(key, end);
            }
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
        let kept: HashSet<_> = r.assigned.iter().map(|(k, _)| k.clone()).collect();
        r.ends.retain(|k, _| kept.contains(k));
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
        let mut st = self.broker.state();
        let mut r = self.inner.lock().expect("reader lock");
        let key = (topic.to_owned(), partition);
        if st.lost_resumes > 0 && r.paused.contains(&key) {
            st.lost_resumes -= 1;
            return true;
        }
        r.paused.remove(&key);
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

impl Consumer for MemoryReader {
    fn cached_end(&self, topic: &str, partition: i32) -> Option<i64> {
        let r = self.inner.lock().expect("reader lock");
        r.ends.get(&(topic.to_owned(), partition)).copied()
    }

    fn hold(&self, partitions: &[(&str, i32)], pause: bool) -> Result<(), BrokerError> {
        for &(t, p) in partitions {
            if pause {
                self.pause(t, p);
            } else {
                self.resume(t, p);
            }
        }
        Ok(())
    }

    fn assignment(&self) -> Result<Vec<(String, i32)>, BrokerError> {
        let r = self.inner.lock().expect("reader lock");
        Ok(r.assigned.iter().map(|(k, _)| k.clone()).collect())
    }

    fn seek(&self, at: &[(&str, i32, i64)], _limit: Duration) -> Result<Vec<bool>, BrokerError> {
        let mut r = self.inner.lock().expect("reader lock");
        r.left = 0;
        Ok(at
            .iter()
            .map(|&(t, p, o)| {
                match r
                    .assigned
                    .iter_mut()
                    .find(|((at, ap), _)| at == t && *ap == p)
                {
                    Some((_, next)) => {
                        *next = o;
                        true
                    }
                    None => false,
                }
            })
            .collect())
    }

    fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        _limit: Duration,
    ) -> Result<(i64, i64), BrokerError> {
        // A query to the broker, not the cache.
        let st = self.broker.state();
        let end = st
            .inputs
            .get(&(topic.to_owned(), partition))
            .map_or(0, Vec::len);
        Ok((0, end as i64))
    }

    fn partitions_of(&self, topic: &str, _limit: Duration) -> Result<Vec<i32>, BrokerError> {
        let n = self
            .broker
            .state()
            .partitions
            .get(topic)
            .copied()
            .unwrap_or(0);
        Ok((0..n).collect())
    }
}

/// A member of the one consumer group. A rebalance (a member joins or leaves) takes
/// effect at each member's next poll: what it loses comes out as a revocation that it
/// gives up once the runtime has settled, and what it gains is assigned once the old
/// holder has given it up, as librdkafka's cooperative protocol does.
pub(crate) struct MemoryGroup {
    broker: MemoryBroker,
    id: u32,
    reader: MemoryReader,
    topics: Mutex<Vec<String>>,
    /// The generation whose assignment this member holds (`None`: not joined yet).
    generation: Mutex<Option<u32>>,
    events: Mutex<Vec<GroupEvent>>,
    /// The revocation waiting for `give_up`, and whether it was lost.
    revoking: Mutex<Option<bool>>,
    joined_at: Instant,
}

impl MemoryGroup {
    /// This member's share of the current generation.
    fn share(&self) -> (u32, Vec<(String, i32)>) {
        let st = self.broker.state();
        let topics = self.topics.lock().expect("topics lock");
        let mut all: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| {
                let n = st.partitions.get(t).copied().unwrap_or(0);
                (0..n).map(move |p| (t.clone(), p))
            })
            .collect();
        all.sort();
        let members = st.members.len().max(1);
        let me = st.members.iter().position(|m| *m == self.id);
        let mine = match me {
            Some(i) => all
                .into_iter()
                .enumerate()
                .filter(|(n, _)| n % members == i)
                .map(|(_, k)| k)
                .collect(),
            None => Vec::new(),
        };
        (st.generation, mine)
    }

    fn push(&self, event: GroupEvent) {
        self.events.lock().expect("lock").push(event);
    }

    /// Takes part in a rebalance that happened since the last poll.
    fn follow_rebalance(&self) {
        if self.revoking.lock().expect("lock").is_some() {
            return;
        }
        let member = self.broker.state().members.contains(&self.id);
        let held = Consumer::assignment(&self.reader).unwrap_or_default();
        let joined = self.generation.lock().expect("generation lock").is_some();
        if !member {
            // The session ended while this member was away: what it holds is lost.
            if joined && !held.is_empty() {
                *self.revoking.lock().expect("lock") = Some(true);
                self.push(GroupEvent::Revoking {
                    partitions: held,
                    lost: true,
                });
            }
            return;
        }
        let (generation, mine) = self.share();
        // The coordinator completes the new generation only once this member has
        // given up its revoked partitions, so the settle before commits as a member in
        // good standing.
        let first = self
            .generation
            .lock()
            .expect("generation lock")
            .replace(generation)
            .is_none();
        let revoked: Vec<(String, i32)> =
            held.iter().filter(|k| !mine.contains(k)).cloned().collect();
        if !revoked.is_empty() {
            *self.revoking.lock().expect("lock") = Some(false);
            self.push(GroupEvent::Revoking {
                partitions: revoked,
                lost: false,
            });
            return;
        }
        let assigned: Vec<(String, i32)> = {
            let mut st = self.broker.state();
            let free: Vec<_> = mine
                .iter()
                .filter(|k| !held.contains(k) && !st.holders.contains_key(*k))
                .cloned()
                .collect();
            for k in &free {
                st.holders.insert(k.clone(), self.id);
            }
            free
        };
        for (t, p) in &assigned {
            let at = self.broker.committed(t, *p).map_or(0, |(o, _)| o);
            self.reader.add(t, *p, at);
        }
        if !assigned.is_empty() || first {
            self.push(GroupEvent::Assigned(assigned));
        }
    }
}

impl Reader for MemoryGroup {
    fn assign(&self, at: &[(&str, i32, i64)]) -> Result<(), BrokerError> {
        self.reader.assign(at)
    }

    fn poll(&self, wait: Duration, f: &mut dyn FnMut(Fetched<'_>)) -> Polled {
        self.follow_rebalance();
        if self.revoking.lock().expect("lock").is_some() {
            // librdkafka returns what it fetched before; none of it is applied.
            return Polled::Idle;
        }
        self.reader.poll(wait, f)
    }

    fn pause(&self, topic: &str, partition: i32) -> bool {
        self.reader.pause(topic, partition)
    }

    fn resume(&self, topic: &str, partition: i32) -> bool {
        self.reader.resume(topic, partition)
    }

    fn positions(&self) -> Vec<(String, i32, i64)> {
        self.reader.positions()
    }

    fn list_offsets(
        &self,
        partitions: &[(&str, i32)],
        at: ListAt,
        limit: Duration,
    ) -> Result<Vec<Option<i64>>, BrokerError> {
        self.reader.list_offsets(partitions, at, limit)
    }
}

impl Consumer for MemoryGroup {
    fn cached_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.reader.cached_end(topic, partition)
    }

    fn hold(&self, partitions: &[(&str, i32)], pause: bool) -> Result<(), BrokerError> {
        self.reader.hold(partitions, pause)
    }

    fn assignment(&self) -> Result<Vec<(String, i32)>, BrokerError> {
        Consumer::assignment(&self.reader)
    }

    fn seek(&self, at: &[(&str, i32, i64)], limit: Duration) -> Result<Vec<bool>, BrokerError> {
        self.reader.seek(at, limit)
    }

    fn watermarks(
        &self,
        topic: &str,
        partition: i32,
        limit: Duration,
    ) -> Result<(i64, i64), BrokerError> {
        self.reader.watermarks(topic, partition, limit)
    }

    fn partitions_of(&self, topic: &str, limit: Duration) -> Result<Vec<i32>, BrokerError> {
        self.reader.partitions_of(topic, limit)
    }
}

impl Committer for MemoryGroup {
    fn member_metadata(&self) -> Option<GroupMetadata> {
        let generation = (*self.generation.lock().expect("generation lock"))?;
        Some(GroupMetadata(Box::new(generation)))
    }

    fn commit_offsets(&self, offsets: &OffsetCommit, sync: bool) -> Result<(), BrokerError> {
        MemoryMember {
            broker: self.broker.clone(),
            generation: self.generation.lock().expect("lock").unwrap_or(u32::MAX),
        }
        .commit_offsets(offsets, sync)
    }
}

impl Group for MemoryGroup {
    fn committer(&self) -> &dyn Committer {
        self
    }

    fn subscribe(&self, topics: &[&str]) -> Result<(), BrokerError> {
        *self.topics.lock().expect("topics lock") =
            topics.iter().map(|t| (*t).to_owned()).collect();
        let mut st = self.broker.state();
        st.members.push(self.id);
        st.generation += 1;
        Ok(())
    }

    fn take_events(&self) -> Vec<GroupEvent> {
        std::mem::take(&mut *self.events.lock().expect("lock"))
    }

    fn revoke_pending(&self) -> bool {
        self.revoking.lock().expect("lock").is_some()
    }

    fn give_up(&self, partitions: &[(String, i32)]) -> Result<(), BrokerError> {
        let lost = self.revoking.lock().expect("lock").take() == Some(true);
        for (t, p) in partitions {
            self.reader.remove(t, *p);
        }
        let mut st = self.broker.state();
        for k in partitions {
            if st.holders.get(k) == Some(&self.id) {
                st.holders.remove(k);
            }
        }
        if lost {
            // librdkafka rejoins the group after a lost assignment.
            st.members.push(self.id);
            st.generation += 1;
        }
        Ok(())
    }

    fn take_failure(&self) -> Option<anyhow::Error> {
        // Nothing fails inside its rebalances.
        None
    }

    fn committed(
        &self,
        partitions: &[(&str, i32)],
        _limit: Duration,
    ) -> Result<Vec<Committed>, BrokerError> {
        if let Some(until) = self.broker.down_until() {
            self.broker.clock.advance(until - self.broker.clock.now());
            return Err(BrokerError::timed_out("reading committed offsets"));
        }
        Ok(partitions
            .iter()
            .map(|&(t, p)| {
                let c = self.broker.committed(t, p);
                Committed {
                    topic: t.to_owned(),
                    partition: p,
                    offset: c.as_ref().map(|(o, _)| *o),
                    metadata: c.map(|(_, m)| m).unwrap_or_default(),
                }
            })
            .collect())
    }

    fn stats(&self) -> GroupStats {
        let down = self.broker.down_until().is_some();
        let back = self.broker.state().down_until;
        GroupStats {
            received: Some(self.joined_at),
            total_lag: 0,
            brokers_up: usize::from(!down),
            brokers: 1,
            up_since: (!down).then(|| back.map_or(self.joined_at, |b| b.max(self.joined_at))),
            rtt_p99_us: 0,
        }
    }

    fn leave(self: Box<Self>) {
        let mut st = self.broker.state();
        st.members.retain(|m| *m != self.id);
        st.holders.retain(|_, m| *m != self.id);
        st.generation += 1;
    }
}
