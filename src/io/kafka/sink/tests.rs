//! The sink's decisions, on the in-memory broker (broker/memory.rs): what becomes
//! visible and what is committed when, and what a fault does — an abortable or fatal
//! transaction error, fencing, a broker gone for a while, a rebalance in the middle of
//! a transaction, a kill between produce and commit, a failed delivery. Time is the
//! test's clock; nothing here sleeps or needs a broker.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::defaults;
use crate::core::model::AlertKind;
use crate::io::kafka::broker::memory::{MemoryBroker, MemoryMember, Op};
use crate::io::kafka::broker::{BrokerError, ErrorKind};
use crate::io::pipeline::Content;

const CAMERA: &str = "camera-detections";
const ALERTS: &str = "alerts";
const INTERVAL: Duration = Duration::from_millis(100);

struct Rig {
    broker: MemoryBroker,
    member: MemoryMember,
    sink: Box<dyn Sink>,
}

fn rig(guarantee: Guarantee) -> Rig {
    let broker = MemoryBroker::new();
    let transactional = guarantee == Guarantee::ExactlyOnce;
    let mut producer = broker.producer(transactional);
    if transactional {
        producer.init_transactions(INIT_TIMEOUT).unwrap();
    }
    let sink = super::new(
        guarantee,
        Box::new(producer),
        StreamTopics::new(&defaults().kafka),
        Arc::new(Metrics::new()),
        broker.clock.clone(),
        INTERVAL,
    );
    Rig {
        member: broker.member(),
        broker,
        sink,
    }
}

fn alert(n: u8) -> Produced {
    Produced {
        topic: ALERTS.to_owned(),
        partition: None,
        key: Some("k".to_owned()),
        payload: vec![n],
        content: Content::Alert {
            kind: AlertKind::Pedestrian,
            event_ms: EventTime::from_ms(1_800_000_000_000),
        },
    }
}

impl Rig {
    /// Camera partition 0's records `offsets` applied, each producing one alert.
    fn work(&mut self, offsets: std::ops::Range<i64>) -> Result<(), SinkError> {
        for o in offsets {
            self.sink
                .consumed((Stream::Camera, 0), o, Some(EventTime::from_ms(1_000 + o)));
            self.sink.send(&alert(o as u8))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.sink.commit(&self.member)
    }

    fn visible(&self) -> Vec<u8> {
        self.broker
            .read_committed(ALERTS)
            .into_iter()
            .map(|p| p[0])
            .collect()
    }

    fn committed_offset(&self) -> Option<i64> {
        self.broker.committed(CAMERA, 0).map(|(o, _)| o)
    }

    /// What the runtime does after a rewind: recover, drop the open work, and go back
    /// to what is committed.
    fn rewind(&mut self) {
        self.sink.recover().expect("recovered");
        self.sink.abandon().expect("abandoned");
        let positions = self
            .committed_offset()
            .map(|o| HashMap::from([((Stream::Camera, 0), o)]))
            .unwrap_or_default();
        self.sink.reset_positions(positions, HashMap::new());
    }
}

fn rewound(result: Result<(), SinkError>) -> String {
    match result {
        Err(SinkError::Rewind(why)) => why,
        Err(SinkError::Fatal(e)) => panic!("fatal instead of a rewind: {e:#}"),
        Ok(()) => panic!("succeeded instead of a rewind"),
    }
}

fn fatal(result: Result<(), SinkError>) -> String {
    match result {
        Err(SinkError::Fatal(e)) => format!("{e:#}"),
        Err(SinkError::Rewind(why)) => panic!("a rewind instead of fatal: {why}"),
        Ok(()) => panic!("succeeded instead of fatal"),
    }
}

#[test]
fn exactly_once_output_and_offsets_become_visible_together_at_the_commit() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..3).unwrap();
    r.sink
        .global_applied((Stream::Ack, 2), 40, Some(EventTime::from_ms(1_002)));
    r.sink.poll(&r.member).unwrap();
    assert!(r.visible().is_empty(), "open transaction visible");
    assert_eq!(r.committed_offset(), None);
    assert_eq!(r.sink.in_flight(), 3, "consumed since the last commit");

    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0, 1, 2]);
    let (offset, metadata) = r.broker.committed(CAMERA, 0).unwrap();
    assert_eq!(offset, 3, "the next offset to read");
    assert_eq!(
        clock_from_metadata(&metadata),
        Some(EventTime::from_ms(1_002))
    );
    assert_eq!(
        globals_from_metadata(&metadata),
        Some(HashMap::from([((Stream::Ack, 2), 41)]))
    );
    assert_eq!(r.sink.in_flight(), 0);
    // Nothing open: a commit is a no-op, not an empty transaction.
    r.commit().unwrap();
}

#[test]
fn exactly_once_an_alert_is_due_after_a_fifth_of_the_interval_offsets_after_all_of_it() {
    let mut r = rig(Guarantee::ExactlyOnce);
    assert!(!r.sink.commit_due());
    assert_eq!(r.sink.until_due(), None, "nothing open, nothing due");
    r.sink
        .consumed((Stream::Camera, 0), 0, Some(EventTime::from_ms(1)));
    r.broker.clock.advance(INTERVAL / 5);
    assert!(!r.sink.commit_due(), "offsets alone wait for the interval");
    r.broker.clock.advance(INTERVAL);
    assert!(r.sink.commit_due());
    r.commit().unwrap();

    r.work(1..2).unwrap();
    assert_eq!(r.sink.until_due(), Some(INTERVAL / 5));
    r.broker
        .clock
        .advance(INTERVAL / 5 - Duration::from_millis(1));
    assert!(!r.sink.commit_due());
    r.broker.clock.advance(Duration::from_millis(1));
    assert!(
        r.sink.commit_due(),
        "an alert waits a fifth of the interval"
    );
}

#[test]
fn exactly_once_an_abortable_error_aborts_and_rewinds_and_the_redo_commits_once() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..2).unwrap();
    r.commit().unwrap();
    r.work(2..4).unwrap();
    r.broker.fail_next(
        Op::Commit,
        BrokerError::abortable("Broker: Coordinator not available"),
    );
    let why = rewound(r.commit());
    assert!(why.contains("committing the transaction"), "{why}");
    assert_eq!(
        r.visible(),
        vec![0, 1],
        "the aborted interval is not visible"
    );
    assert_eq!(r.committed_offset(), Some(2));
    assert!(
        !r.sink.needs_recovery(),
        "an abort that finished needs nothing"
    );

    r.rewind();
    r.work(2..4).unwrap();
    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0, 1, 2, 3], "the redo, once");
    assert_eq!(r.committed_offset(), Some(4));
}

#[test]
fn exactly_once_a_timed_out_commit_is_tried_three_times_before_it_aborts() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..1).unwrap();
    for _ in 0..2 {
        r.broker
            .fail_next(Op::Commit, BrokerError::timed_out("committing"));
    }
    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0]);

    r.work(1..2).unwrap();
    for _ in 0..3 {
        r.broker
            .fail_next(Op::Commit, BrokerError::timed_out("committing"));
    }
    rewound(r.commit());
    assert_eq!(r.visible(), vec![0]);
    assert_eq!(r.committed_offset(), Some(1));
}

#[test]
fn exactly_once_fencing_by_another_instance_ends_the_process_with_a_hint() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..2).unwrap();
    // Another process initialises transactions with our transactional id. Once could be
    // a coordinator's rollback: the producer is replaced, which fences the other.
    r.broker.fence();
    let why = rewound(r.commit());
    assert!(why.contains("fenced"), "{why}");
    r.sink.recover().unwrap();
    r.rewind();
    r.work(0..2).unwrap();
    // The other process, fenced in turn, does the same within minutes: this one goes.
    r.broker.clock.advance(Duration::from_secs(60));
    r.broker.fence();
    let e = fatal(r.commit());
    assert!(e.contains("fenced"), "{e}");
    assert!(e.contains("kafka.instance_id"), "{e}");
    assert!(r.visible().is_empty());
    assert_eq!(r.committed_offset(), None);
}

/// A coordinator failover can roll back a transaction that outlived
/// `transaction.timeout.ms` and bump the epoch: fenced once, with no other process, the
/// producer is replaced and the interval's work commits again, exactly once.
#[test]
fn exactly_once_one_fencing_replaces_the_producer_and_loses_nothing() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..1).unwrap();
    r.commit().unwrap();
    r.work(1..3).unwrap();
    r.broker.fence();
    rewound(r.commit());
    assert!(r.sink.needs_recovery());
    r.sink.recover().unwrap();
    r.rewind();
    r.work(1..3).unwrap();
    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0, 1, 2], "nothing lost, nothing twice");
    assert_eq!(r.committed_offset(), Some(3));
    // Fenced again long after the first: a replacement again, not an exit.
    r.broker.clock.advance(Duration::from_secs(3600));
    r.work(3..4).unwrap();
    r.broker.fence();
    rewound(r.commit());
    r.sink.recover().unwrap();
    r.rewind();
    r.work(3..4).unwrap();
    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0, 1, 2, 3]);
}

#[test]
fn exactly_once_a_broker_gone_for_thirty_seconds_leaves_the_abort_pending_until_it_is_back() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..1).unwrap();
    r.commit().unwrap();
    r.work(1..3).unwrap();
    r.broker.go_away(Duration::from_secs(30));
    rewound(r.commit());
    assert!(r.sink.needs_recovery(), "the abort could not finish");
    // While the broker is away every attempt fails as transient, within its limit.
    let before = r.broker.clock.now();
    rewound(r.sink.recover());
    assert!(r.broker.clock.now() - before <= Duration::from_secs(3));
    rewound(r.sink.send(&alert(9)));
    assert!(r.sink.needs_recovery());

    r.broker.clock.advance(Duration::from_secs(30));
    r.sink.recover().unwrap();
    assert!(!r.sink.needs_recovery());
    r.rewind();
    r.work(1..3).unwrap();
    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0, 1, 2], "nothing lost, nothing twice");
    assert_eq!(r.committed_offset(), Some(3));
}

#[test]
fn exactly_once_a_fatal_error_that_is_not_fencing_replaces_the_producer_at_most_five_times() {
    let mut r = rig(Guarantee::ExactlyOnce);
    let invalid_state = || {
        BrokerError::fatal(
            ErrorKind::Other,
            "Broker: Producer attempted a transactional operation in an invalid state",
        )
    };
    r.work(0..1).unwrap();
    r.broker.fail_next(Op::Commit, invalid_state());
    let why = rewound(r.commit());
    assert!(why.contains("fatal producer error"), "{why}");
    assert!(r.sink.needs_recovery());
    let why = rewound(r.sink.send(&alert(0)));
    assert!(why.contains("being replaced"), "{why}");
    r.rewind();
    r.work(0..1).unwrap();
    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0]);

    // Without a successful commit in between, the sixth replacement is refused.
    for _ in 0..5 {
        r.work(1..2).unwrap();
        r.broker.fail_next(Op::Commit, invalid_state());
        rewound(r.commit());
        r.rewind();
    }
    r.work(1..2).unwrap();
    r.broker.fail_next(Op::Commit, invalid_state());
    rewound(r.commit());
    let e = fatal(r.sink.recover());
    assert!(e.contains("5 times in a row"), "{e}");
}

#[test]
fn exactly_once_a_rebalance_in_the_middle_of_a_transaction_aborts_it() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..2).unwrap();
    // The group moved to a new generation while this member's transaction was open:
    // its offsets are refused, so its output must not become visible either.
    r.broker.rebalance();
    let why = rewound(r.commit());
    assert!(why.contains("generation"), "{why}");
    assert!(r.visible().is_empty());
    assert_eq!(r.committed_offset(), None);

    r.member.rejoin();
    r.rewind();
    r.work(0..2).unwrap();
    r.commit().unwrap();
    assert_eq!(r.visible(), vec![0, 1]);
}

#[test]
fn exactly_once_settling_a_revoked_assignment_commits_a_lost_one_aborts() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..2).unwrap();
    r.sink.settle(&r.member, false).unwrap();
    assert_eq!(r.visible(), vec![0, 1]);
    assert_eq!(r.committed_offset(), Some(2));
    assert_eq!(r.sink.committed().0[&(Stream::Camera, 0)], 2);

    r.work(2..4).unwrap();
    r.sink.settle(&r.member, true).unwrap();
    assert_eq!(
        r.visible(),
        vec![0, 1],
        "a lost assignment's work is dropped"
    );
    assert_eq!(r.committed_offset(), Some(2));

    // A disabled sink (the process is failing) settles nothing.
    r.work(4..5).unwrap();
    r.sink.disable();
    r.sink.settle(&r.member, false).unwrap();
    assert_eq!(r.committed_offset(), Some(2));
}

#[test]
fn exactly_once_a_kill_between_produce_and_commit_leaves_nothing_visible() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.work(0..1).unwrap();
    r.commit().unwrap();
    r.work(1..3).unwrap();
    r.sink.poll(&r.member).unwrap();
    // The process dies with its records delivered into the open transaction.
    let Rig { broker, sink, .. } = r;
    drop(sink);
    let visible = || -> Vec<u8> { broker.read_committed(ALERTS).concat() };
    assert_eq!(visible(), vec![0]);
    // Its successor initialises the same transactional id: the open transaction is
    // aborted and the successor starts at the committed offset.
    let mut successor = broker.producer(true);
    successor.init_transactions(INIT_TIMEOUT).unwrap();
    assert_eq!(visible(), vec![0]);
    assert_eq!(broker.committed(CAMERA, 0).map(|(o, _)| o), Some(1));
}

#[test]
fn exactly_once_a_failed_record_fails_the_commit() {
    let mut r = rig(Guarantee::ExactlyOnce);
    r.broker.fail_deliveries(1);
    r.work(0..2).unwrap();
    let why = rewound(r.commit());
    assert!(why.contains("a record of the transaction"), "{why}");
    assert!(r.visible().is_empty());
    assert_eq!(r.committed_offset(), None);
}

#[test]
fn at_least_once_offsets_are_committed_only_once_every_delivery_is_in() {
    let mut r = rig(Guarantee::AtLeastOnce);
    r.broker.hold_deliveries(true);
    r.work(0..2).unwrap();
    assert_eq!(r.sink.in_flight(), 2, "records awaiting their delivery");
    r.broker.clock.advance(INTERVAL);
    r.sink.poll(&r.member).unwrap();
    assert_eq!(r.committed_offset(), None, "deliveries still outstanding");

    r.broker.hold_deliveries(false);
    r.sink.poll(&r.member).unwrap();
    assert_eq!(r.sink.in_flight(), 0);
    assert_eq!(r.visible(), vec![0, 1]);
    r.broker.clock.advance(INTERVAL);
    r.sink.poll(&r.member).unwrap();
    assert_eq!(r.committed_offset(), Some(2));
}

#[test]
fn at_least_once_a_failed_delivery_commits_up_to_the_last_fully_delivered_batch() {
    let mut r = rig(Guarantee::AtLeastOnce);
    r.work(0..2).unwrap();
    r.sink.poll(&r.member).unwrap();
    r.commit().unwrap();
    r.broker.fail_deliveries(1);
    r.work(2..4).unwrap();
    let why = rewound(r.sink.poll(&r.member));
    assert!(why.contains("in-sync replicas"), "{why}");
    assert_eq!(
        r.committed_offset(),
        Some(2),
        "the failed batch is read again"
    );
    assert_eq!(r.sink.in_flight(), 0, "the dropped batch is forgotten");

    r.rewind();
    r.work(2..4).unwrap();
    r.sink.settle(&r.member, false).unwrap();
    assert_eq!(r.committed_offset(), Some(4));
    // At-least-once: the redo repeats the record that had made it.
    assert_eq!(r.visible(), vec![0, 1, 3, 2, 3]);
}

#[test]
fn at_least_once_a_revoked_partition_is_not_committed_again() {
    let mut r = rig(Guarantee::AtLeastOnce);
    r.work(0..2).unwrap();
    r.sink.settle(&r.member, false).unwrap();
    assert_eq!(r.committed_offset(), Some(2));
    r.work(2..3).unwrap();
    r.sink.forget(&[(Stream::Camera, 0)]);
    r.sink.settle(&r.member, false).unwrap();
    assert_eq!(r.committed_offset(), Some(2));
    assert!(r.sink.positions().is_empty());
}
#[test]
fn the_global_offsets_survive_the_offset_metadata_or_are_left_out_whole() {
    let globals: HashMap<PartitionKey, i64> = [
        ((Stream::Patrol, 0), 1_234),
        ((Stream::Patrol, 11), 0),
        ((Stream::Ack, 3), 98_765_432_101),
    ]
    .into_iter()
    .collect();
    let m = commit_metadata(Some(EventTime::from_ms(7)), &globals);
    assert_eq!(
        m,
        "roadwatch;clock=7;g=patrol.0:1234,patrol.11:0,ack.3:98765432101"
    );
    assert_eq!(clock_from_metadata(&m), Some(EventTime::from_ms(7)));
    assert_eq!(globals_from_metadata(&m), Some(globals));
    assert_eq!(globals_from_metadata("roadwatch;clock=7"), None);
    // Anything malformed is no answer at all, never a partial one.
    assert_eq!(
        globals_from_metadata("roadwatch;g=patrol.0:1,bogus.1:2"),
        None
    );
    assert_eq!(globals_from_metadata("roadwatch;g=patrol.x:1"), None);
    // Too many partitions for the broker's metadata limit: the clock stays, the
    // offsets go (the rebuild then cuts the global streams by time).
    let many: HashMap<PartitionKey, i64> = (0..400)
        .map(|p| ((Stream::Patrol, p), 1_000_000_000))
        .collect();
    let m = commit_metadata(Some(EventTime::from_ms(7)), &many);
    assert!(m.len() <= MAX_METADATA);
    assert_eq!(clock_from_metadata(&m), Some(EventTime::from_ms(7)));
    assert_eq!(globals_from_metadata(&m), None);
}

#[test]
fn a_full_client_queue_is_waited_out_not_failed() {
    for guarantee in [Guarantee::ExactlyOnce, Guarantee::AtLeastOnce] {
        let mut r = rig(guarantee);
        let full = || BrokerError {
            kind: ErrorKind::QueueFull,
            fatal: false,
            retriable: true,
            message: "Local: Queue full".to_owned(),
        };
        r.broker.fail_next(Op::Send, full());
        r.broker.fail_next(Op::Send, full());
        r.work(0..2).unwrap();
        r.sink.settle(&r.member, false).unwrap();
        assert_eq!(r.visible(), vec![0, 1], "{guarantee:?}");
        assert_eq!(r.committed_offset(), Some(2), "{guarantee:?}");
    }
}
