//! `roadwatch run` on a cluster of three Kafka brokers (issue #17, "scale out"), with
//! the production replication settings (replication factor 3, `min.insync.replicas` 2):
//! the broker that leads the `alerts` partition is killed (SIGKILL) mid-stream, left down
//! for longer than the bound on the failover, and started again with its data, while one
//! instance runs on under exactly-once.
//!
//! The placement is chosen, so that every run tests the same thing (`alerts` is created
//! with the victim as its preferred leader; the group and instance ids are chosen so that
//! the coordinators fall on it or away from it):
//! - in the suite, the killed broker leads `alerts` and a camera partition and is
//!   nothing else: not the active controller, nor roadwatch's group or transaction
//!   coordinator;
//! - `--ignored`, it is the worst a single broker failure can do: at once the active
//!   controller, the leader of `alerts` and of a camera partition, and both
//!   coordinators. roadwatch runs there under a supervisor that restarts it, because
//!   librdkafka can stall on that failover (docs/KAFKA_RUNTIME.md "The cluster test").
//!
//! The test starts a cluster of its own (`scripts/kafka-local` with `KAFKA_BROKERS=3`, its
//! own directory and free ports; stopped on drop, also on failure): it does not use the
//! single broker `scripts/test` starts, and fails, never skips, when the cluster cannot
//! start. As in `tests/kafka_runtime.rs`, the expected alerts are what `replay` derives
//! from the very records produced, read back by `read_committed` readers.
mod kafka_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_support::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use roadwatch::config::{Guarantee, KafkaSettings};
use roadwatch::io::kafka;

/// The first alert raised by a record produced after the kill must reach a
/// `read_committed` reader within this of the kill.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);
/// The same bound when the killed broker held every role. Measured, not wished
/// (docs/KAFKA_RUNTIME.md, "The cluster test"): the election itself takes 11–13 s there;
/// the first alert came 23–30 s after the kill, and up to 57 s when the loop stalled in
/// librdkafka and the supervisor restarted it after the watchdog's 15 s.
const WORST_CASE_FAILOVER_BOUND: Duration = Duration::from_secs(90);
/// A new incident (two detections) this often, over every camera partition.
const INCIDENT_EVERY: Duration = Duration::from_millis(350);
/// The killed node stays down this long by default (`RW_CLUSTER_DOWN_S`): past the
/// bound, so that the alerts the bound is about cannot wait for its return.
const DOWN_FOR_S: u64 = 35;
/// The stream goes on this long after the node is back.
const AFTER_RESTART: Duration = Duration::from_secs(10);

/// A record of the stream and when it was handed to the producer.
type Produced = (Sent, Instant);

/// In the worst case, the watchdog's limit on a loop that does not turn
/// (`processing.stall_limit_s`, 120 s by default). The one setting this test changes, and
/// why: a stall in librdkafka's `send_offsets_to_transaction` on a coordinator failover
/// (docs/KAFKA_RUNTIME.md, "A stuck loop") is ended by the watchdog's exit and the
/// supervisor's restart; at 120 s that would outlast the stream. 15 s still exceeds the
/// 10 s that one transactional call may take.
const WORST_CASE_STALL_LIMIT_S: &str = "15";

/// roadwatch as a supervisor runs it (systemd's `Restart=on-failure`, a Kubernetes
/// pod's restart policy): started again, with the same instance id, whenever it exits
/// with a failure. Every restart is kept, with its exit status, for the report.
struct Supervised {
    child: Child,
    instance: String,
    log: std::path::PathBuf,
    extra: Vec<(&'static str, &'static str)>,
    restarts: Vec<(Instant, std::process::ExitStatus)>,
}

impl Supervised {
    fn start(
        stage: &Stage,
        instance: &str,
        log: std::path::PathBuf,
        extra: Vec<(&'static str, &'static str)>,
    ) -> Supervised {
        let child = Child::spawn_with(stage, instance, log.clone(), &extra);
        Supervised {
            child,
            instance: instance.to_owned(),
            log,
            extra,
            restarts: Vec::new(),
        }
    }

    /// Restarts it if it has exited; an exit with success while the test runs is a
    /// failure of the test (nothing asked it to stop).
    fn keep_alive(&mut self, stage: &Stage, when: &str) {
        let Some(status) = self.child.exited() else {
            return;
        };
        assert!(
            !status.success(),
            "roadwatch exited with success {when}, unasked:\n{}",
            self.child.log()
        );
        progress(&format!(
            "roadwatch exited ({status}) {when}; restarting it"
        ));
        self.restarts.push((Instant::now(), status));
        self.child = Child::spawn_with(stage, &self.instance, self.log.clone(), &self.extra);
    }
}

/// New incidents, one every `every` (two detections `every / 2` apart, keyed by camera),
/// until `stop` is set or the points run out. The records are queued without waiting for
/// each delivery, as a camera's producer would: a camera partition whose leader is gone
/// holds back only its own records, not the stream. Returns the records and whether
/// `stop` ended the stream (not the end of the points).
fn produce_incidents_until(
    p: FutureProducer,
    topic: String,
    points: Vec<(f64, f64)>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(Vec<Produced>, bool)> {
    std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut deliveries = Vec::new();
        let mut stopped = false;
        for (i, (lon, lat)) in points.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                stopped = true;
                break;
            }
            let camera = format!("cam-{i:03}");
            for seq in 0..2 {
                let v = pedestrian(&camera, seq, *lon, *lat, now_ms());
                let payload = v.to_string();
                let at = Instant::now();
                let delivery = p
                    .send_result(FutureRecord::to(&topic).key(&camera).payload(&payload))
                    .map_err(|(e, _)| e)
                    .expect("the record is queued");
                deliveries.push(delivery);
                sent.push((
                    Sent {
                        stream: "camera",
                        value: v,
                    },
                    at,
                ));
                std::thread::sleep(every / 2);
            }
        }
        for d in deliveries {
            tokio()
                .block_on(d)
                .expect("the delivery is reported")
                .map_err(|(e, _)| e)
                .expect("every input record is delivered");
        }
        (sent, stopped)
    })
}

/// Kafka's coordinator partition for a group or transactional id:
/// `Utils.abs(id.hashCode()) % partitions` (Java's `String.hashCode`).
fn coordinator_partition(id: &str, partitions: usize) -> i32 {
    let h = id
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions as i32
}

/// roadwatch's transactional id (docs/KAFKA_RUNTIME.md, "Transactional id and fencing").
fn transactional_id(k: &KafkaSettings, instance: &str) -> String {
    format!("{}-{}-{instance}", k.client_id, k.group_id)
}

/// Makes the cluster create `__transaction_state` and `__consumer_offsets` (as
/// `warm_coordinators`, but a young coordinator of a cluster first answers
/// NOT_COORDINATOR, which librdkafka's committed-offsets call returns instead of
/// retrying).
fn warm_up(stage: &Stage) {
    let k = &stage.settings.kafka;
    let txn_id = format!("{}-warm", stage.prefix);
    let producer: rdkafka::producer::BaseProducer =
        kafka::client_config(k, &[("transactional.id", txn_id.as_str())])
            .create()
            .unwrap();
    rdkafka::producer::Producer::init_transactions(&producer, Duration::from_secs(60))
        .expect("the transaction coordinator answers");
    let group = format!("{}-warm", stage.prefix);
    let consumer: BaseConsumer = kafka::client_config(k, &[("group.id", group.as_str())])
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(&k.topics.camera, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
        assert!(
            Instant::now() < deadline,
            "the group coordinator does not answer within 60 s: {e}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The leader of each partition of `topic`, by partition (-1 while it has none).
fn leaders(client: &BaseConsumer, topic: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(md) = client.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                let mut ps: Vec<(i32, i32)> = t
                    .partitions()
                    .iter()
                    .map(|p| (p.id(), p.leader()))
                    .collect();
                ps.sort_unstable();
                if !ps.is_empty() && ps.iter().all(|p| p.1 >= 1) {
                    return ps.into_iter().map(|p| p.1).collect();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leaders for {topic} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A one-partition topic whose replicas are `leader` first (its preferred leader) and
/// then the other nodes; returns once metadata shows `leader` leading it.
fn create_led_by(k: &KafkaSettings, client: &BaseConsumer, topic: &str, leader: i32) {
    let replicas: Vec<i32> = std::iter::once(leader)
        .chain((1..=PrivateCluster::NODES).filter(|n| *n != leader))
        .collect();
    let assignment: [&[i32]; 1] = [&replicas];
    let admin: AdminClient<DefaultClientContext> = kafka::client_config(k, &[]).create().unwrap();
    let results = tokio()
        .block_on(admin.create_topics(
            &[NewTopic::new(
                topic,
                1,
                TopicReplication::Variable(&assignment),
            )],
            &AdminOptions::new(),
        ))
        .expect("the create request is answered");
    for r in results {
        r.unwrap_or_else(|(name, e)| panic!("creating {name}: {e}"));
    }
    assert_eq!(
        leaders(client, topic),
        vec![leader],
        "{topic} is led by node {leader}"
    );
}

/// Where things are in the cluster, from metadata.
#[derive(Debug, Clone)]
struct Placement {
    alerts_leader: i32,
    alerts_isr: Vec<i32>,
    /// The leader of each camera partition.
    camera_leaders: Vec<i32>,
    /// The leaders of the `__consumer_offsets` partition of roadwatch's group and of the
    /// `__transaction_state` partition of its transactional id.
    group_coordinator: i32,
    txn_coordinator: i32,
}

fn placement(client: &BaseConsumer, k: &KafkaSettings, instance: &str) -> Option<Placement> {
    let partitions = |topic: &str| -> Option<Vec<(i32, i32, Vec<i32>)>> {
        let md = client
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        let mut ps: Vec<(i32, i32, Vec<i32>)> = t
            .partitions()
            .iter()
            .map(|p| (p.id(), p.leader(), p.isr().to_vec()))
            .collect();
        ps.sort_by_key(|p| p.0);
        (!ps.is_empty()).then_some(ps)
    };
    let coordinator = |topic: &str, id: &str| -> Option<i32> {
        let ps = partitions(topic)?;
        Some(ps[coordinator_partition(id, ps.len()) as usize].1)
    };
    let alerts = partitions(&k.topics.alerts)?;
    let camera = partitions(&k.topics.camera)?;
    let txn_id = transactional_id(k, instance);
    Some(Placement {
        alerts_leader: alerts[0].1,
        alerts_isr: alerts[0].2.clone(),
        camera_leaders: camera.iter().map(|p| p.1).collect(),
        group_coordinator: coordinator("__consumer_offsets", &k.group_id)?,
        txn_coordinator: coordinator("__transaction_state", &txn_id)?,
    })
}

/// What broker `node` was doing, for the record.
fn roles(p: &Placement, node: i32, controller: Option<i32>) -> String {
    let mut roles = vec!["leader of alerts[0]".to_owned()];
    if controller == Some(node) {
        roles.push("active controller".to_owned());
    }
    for (i, leader) in p.camera_leaders.iter().enumerate() {
        if *leader == node {
            roles.push(format!("leader of camera[{i}]"));
        }
    }
    if p.group_coordinator == node {
        roles.push("group coordinator".to_owned());
    }
    if p.txn_coordinator == node {
        roles.push("transaction coordinator".to_owned());
    }
    roles.join(", ")
}

/// Every expected (topic, alert_id, status) exactly once, nothing else; the failure
/// names (the first few of) what is missing, duplicated and unexpected, after `context`.
fn exactly_once(
    what: &str,
    want: &BTreeMap<(String, String, String), usize>,
    seen: &[Out],
    context: &str,
) {
    let got = alert_ids(seen);
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, n)| !got.get(*k).is_some_and(|g| g >= *n))
        .collect();
    let duplicated: Vec<_> = got
        .iter()
        .filter(|(k, n)| **n > want.get(*k).copied().unwrap_or(0) && want.contains_key(*k))
        .collect();
    let unexpected: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && duplicated.is_empty() && unexpected.is_empty(),
        "{what}: {} expected alert documents, {} read; {context}\n\
         {} missing {:?}\n{} duplicated {:?}\n{} unexpected {:?}",
        want.values().sum::<usize>(),
        got.values().sum::<usize>(),
        missing.len(),
        &missing[..missing.len().min(10)],
        duplicated.len(),
        &duplicated[..duplicated.len().min(10)],
        unexpected.len(),
        &unexpected[..unexpected.len().min(10)],
    );
}

fn covers(want: &BTreeMap<(String, String, String), usize>, seen: &[Out]) -> bool {
    let got = alert_ids(seen);
    want.iter().all(|(k, n)| got.get(k).is_some_and(|g| g >= n))
}

/// With RW_BROKER_LOGS=DIR, roadwatch's log is kept there too (as the nodes' logs are).
struct KeepLog(std::path::PathBuf);

impl Drop for KeepLog {
    fn drop(&mut self) {
        if let Some(dest) = std::env::var_os("RW_BROKER_LOGS") {
            let _ = std::fs::copy(&self.0, std::path::Path::new(&dest).join("roadwatch.log"));
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[test]
fn the_alerts_leader_killed_mid_stream_loses_and_duplicates_no_alert_and_alerts_resume_within_30_s()
{
    failover(Victim::Leader);
}

/// The worst single broker failure. Run under a supervisor ([`Supervised`]) that
/// restarts roadwatch when it exits, as systemd or Kubernetes would: a stall in
/// librdkafka's `send_offsets_to_transaction` on the coordinator failover (librdkafka
/// issues #5511, #5456) is ended by the watchdog's exit (status 70) and that restart.
/// Session 17, six runs: nothing lost or duplicated in any; three restarts; the first
/// alert 23–57 s after the kill, against an election of 11–13 s (docs/KAFKA_RUNTIME.md,
/// "The cluster test"). Held out of the suite while a restart can take it that close to
/// its bound: `cargo test --test kafka_cluster -- --ignored`.
#[test]
#[ignore = "a librdkafka stall and restart bring the resume close to its bound (docs/KAFKA_RUNTIME.md, \"The cluster test\")"]
fn the_broker_holding_every_role_killed_mid_stream_loses_and_duplicates_no_alert_and_alerts_resume_within_30_s(
) {
    failover(Victim::EveryRole);
}

/// Which broker is killed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Victim {
    /// The leader of `alerts` and of a camera partition, and nothing else: not the active
    /// controller, nor roadwatch's group or transaction coordinator.
    Leader,
    /// At once the active controller, the leader of `alerts` and of a camera partition,
    /// and roadwatch's group and transaction coordinator.
    EveryRole,
}

fn failover(kind: Victim) {
    let started = Instant::now();
    let cluster = PrivateCluster::start();
    progress(&format!(
        "cluster of {} up on {} after {}",
        PrivateCluster::NODES,
        cluster.bootstrap(),
        secs(started.elapsed())
    ));
    // The worst single failure: one broker that is at once the active controller, the
    // leader of `alerts` and of a camera partition, roadwatch's group coordinator and its
    // transaction coordinator. Three camera partitions, one led by each broker (Kafka
    // spreads the leaders); `alerts` is created with the controller as its leader; the
    // group and instance ids are chosen so that both coordinators fall on it.
    let controller = cluster
        .active_controller()
        .expect("the nodes' logs name the active controller");
    let victim = match kind {
        Victim::EveryRole => controller,
        Victim::Leader => controller % PrivateCluster::NODES + 1,
    };
    // The coordinators fall on the victim, or away from it.
    let on_victim = |leader: i32| (leader == victim) == (kind == Victim::EveryRole);
    let mut stage = Stage::replicated(
        &cluster.bootstrap(),
        "cluster",
        3,
        Guarantee::ExactlyOnce,
        3,
    );
    warm_up(&stage);
    let metadata: BaseConsumer = kafka::client_config(&stage.settings.kafka, &[])
        .create()
        .unwrap();
    let alerts = format!("{}-alerts-on-{victim}", stage.prefix);
    create_led_by(&stage.settings.kafka, &metadata, &alerts, victim);
    stage.settings.kafka.topics.alerts = alerts;
    let offsets = leaders(&metadata, "__consumer_offsets");
    stage.settings.kafka.group_id = (0..1000)
        .map(|n| format!("{}-group-{n}", stage.prefix))
        .find(|g| on_victim(offsets[coordinator_partition(g, offsets.len()) as usize]))
        .expect("a group id whose coordinator is placed as wanted");
    let states = leaders(&metadata, "__transaction_state");
    let instance = (0..1000)
        .map(|n| format!("a{n}"))
        .find(|i| {
            let id = transactional_id(&stage.settings.kafka, i);
            on_victim(states[coordinator_partition(&id, states.len()) as usize])
        })
        .expect("an instance id whose transaction coordinator is placed as wanted");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("roadwatch.log");
    let _show_log = ShowLogOnPanic(log.clone());
    let _keep_log = KeepLog(log.clone());
    let t = stage.topics().clone();
    let k = stage.settings.kafka.clone();
    let reader = Reader::new(&stage);
    // No unit reports a position, so nothing is dispatched; were a per-unit topic
    // created, it would be replicated like the others.
    let mut extra = vec![("ROADWATCH__KAFKA__DISPATCH_TOPIC_REPLICATION", "3")];
    if kind == Victim::EveryRole {
        extra.push((
            "ROADWATCH__PROCESSING__STALL_LIMIT_S",
            WORST_CASE_STALL_LIMIT_S,
        ));
    }
    let mut rw = Supervised::start(&stage, &instance, log.clone(), extra);
    rw.child
        .wait_for_log("detector state rebuilt", Duration::from_secs(90));
    progress("roadwatch ready");

    // A reader of `alerts` that notes when each document arrives, throughout.
    let arrivals: Arc<Mutex<Vec<(Out, Instant)>>> = Arc::default();
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reading = {
        let (arrivals, stop) = (arrivals.clone(), stop_reading.clone());
        std::thread::spawn(move || {
            let mut reader = reader;
            while !stop.load(Ordering::SeqCst) {
                let n = reader.seen.len();
                reader.until(Duration::from_millis(200), |seen| seen.len() > n);
                let now = Instant::now();
                let mut arrived = arrivals.lock().unwrap();
                arrived.extend(reader.seen[n..].iter().map(|o| (o.clone(), now)));
            }
            reader
        })
    };
    let arrived = || arrivals.lock().unwrap().len();
    // Only the worst case may need its supervisor: when the killed broker leads
    // nothing but partitions, roadwatch must live through it on its own.
    let alive = |rw: &mut Supervised, when: &str| {
        if kind == Victim::EveryRole {
            rw.keep_alive(&stage, when);
        } else if let Some(status) = rw.child.exited() {
            panic!("roadwatch exited ({status}) {when}:\n{}", rw.child.log());
        }
    };

    let points = incident_points(400, 800.0);
    let stop_producing = Arc::new(AtomicBool::new(false));
    let producing = produce_incidents_until(
        producer(&stage),
        t.camera.clone(),
        points.clone(),
        INCIDENT_EVERY,
        stop_producing.clone(),
    );
    let stream_started = Instant::now();
    // Steady flow first: a few seconds of alerts.
    while arrived() < 10 || stream_started.elapsed() < Duration::from_secs(5) {
        assert!(
            stream_started.elapsed() < Duration::from_secs(60),
            "fewer than 10 alerts within 60 s of the stream's start:\n{}",
            rw.child.log()
        );
        alive(&mut rw, "before the kill");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = placement(&metadata, &k, &instance).expect("metadata of the cluster");
    let controller = cluster.active_controller();
    assert_eq!(
        before.alerts_isr.len(),
        3,
        "alerts[0] has three in-sync replicas before the kill: {before:?}"
    );
    let victim_roles = roles(&before, victim, controller);
    let leads = before.alerts_leader == victim && before.camera_leaders.contains(&victim);
    let others = [
        controller == Some(victim),
        before.group_coordinator == victim,
        before.txn_coordinator == victim,
    ];
    assert!(
        leads
            && match kind {
                Victim::EveryRole => others.iter().all(|x| *x),
                Victim::Leader => !others.iter().any(|x| *x),
            },
        "node {victim} holds the roles wanted before the kill (active controller: {controller:?}): {before:?}"
    );
    progress(&format!(
        "killing node {victim} ({victim_roles}); {} alert documents so far; {before:?}",
        arrived()
    ));
    let killed_at = Instant::now();
    cluster.kill(victim);
    let kill_took = killed_at.elapsed();
    progress("node killed");

    // When metadata names a new leader (for the record: the bound is on the alerts).
    let down_for = Duration::from_secs(
        std::env::var("RW_CLUSTER_DOWN_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DOWN_FOR_S),
    );
    let mut new_leader: Option<(i32, Duration)> = None;
    while killed_at.elapsed() < down_for {
        alive(&mut rw, "after the kill");
        if new_leader.is_none() {
            if let Some(p) = placement(&metadata, &k, &instance) {
                if p.alerts_leader != victim && p.alerts_leader >= 1 {
                    new_leader = Some((p.alerts_leader, killed_at.elapsed()));
                    progress(&format!("alerts[0] led by node {}", p.alerts_leader));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    progress(&format!("starting node {victim} again"));
    let restarting = Instant::now();
    cluster.start_node(victim);
    let restart_took = restarting.elapsed();
    progress("node started");
    let back_at = Instant::now();
    let mut in_sync_after: Option<Duration> = None;
    while back_at.elapsed() < AFTER_RESTART || in_sync_after.is_none() {
        alive(&mut rw, "after the restart");
        let in_sync =
            || placement(&metadata, &k, &instance).is_some_and(|p| p.alerts_isr.contains(&victim));
        if in_sync_after.is_none() && in_sync() {
            in_sync_after = Some(back_at.elapsed());
            progress(&format!("node {victim} is in sync on alerts[0] again"));
        }
        if back_at.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_producing.store(true, Ordering::SeqCst);
    let (produced, stopped) = {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !producing.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the input was not delivered within 120 s of the stream's end"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        producing.join().unwrap()
    };
    assert!(
        stopped,
        "the {} points ran out before the stream's planned end",
        points.len()
    );
    progress(&format!("stream produced: {} records", produced.len()));

    let sent: Vec<Sent> = produced.iter().map(|(s, _)| s.clone()).collect();
    let expected = replay_expected(&stage.settings, &sent, "");
    let want = alert_ids(&expected);
    assert!(
        want.len() >= 50,
        "the scenario must raise enough alerts to mean something: {}",
        want.len()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        alive(&mut rw, "before every alert arrived");
        let seen: Vec<Out> = arrivals
            .lock()
            .unwrap()
            .iter()
            .map(|(o, _)| o.clone())
            .collect();
        if covers(&want, &seen) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    stop_reading.store(true, Ordering::SeqCst);
    let live_reader = reading.join().unwrap();
    let arrivals = arrivals.lock().unwrap().clone();
    progress("read");

    // When each alert's first document arrived, against when its first record was
    // queued.
    let queued: HashMap<String, Instant> = produced
        .iter()
        .map(|(s, at)| (s.value["event_id"].as_str().unwrap().to_owned(), *at))
        .collect();
    let mut first: BTreeMap<String, (Instant, Instant)> = BTreeMap::new();
    for (o, at) in &arrivals {
        let Some(id) = o.value["alert_id"].as_str() else {
            continue;
        };
        let cause = o.value["source_event_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| queued.get(e.as_str()?))
            .min()
            .copied();
        if let Some(cause) = cause {
            first.entry(id.to_owned()).or_insert((cause, *at));
        }
    }
    let latency_ms = |(cause, at): &(Instant, Instant)| at.duration_since(*cause).as_millis();
    let before_kill: Vec<u128> = first
        .values()
        .filter(|(cause, _)| *cause + Duration::from_secs(2) < killed_at)
        .map(latency_ms)
        .collect();
    let first_after_kill = first
        .iter()
        .filter(|(_, (cause, _))| *cause > killed_at)
        .min_by_key(|(_, (cause, _))| *cause);
    let resumed = first
        .values()
        .filter(|(cause, _)| *cause > killed_at)
        .map(|(_, at)| *at)
        .min();
    let worst = first
        .iter()
        .max_by_key(|(_, v)| latency_ms(v))
        .map(|(id, v)| (id.clone(), latency_ms(v)));
    let slow = first.values().filter(|v| latency_ms(v) > 1000).count();
    let gap = first_after_kill.map(|(_, (_, at))| at.duration_since(killed_at));
    eprintln!(
        "cluster failover: killed node {victim} ({victim_roles}) in {}; metadata named a new alerts leader {}; \
         the first alert of a record queued after the kill ({}) arrived {} after the kill (bound {}); \
         the first such alert of any arrived {} after it; {slow} of {} alerts over 1 s from record to reader, \
         worst {worst:?} ms; before the kill at most {} ms; node restart took {}, back in sync on alerts[0] {} later; \
         {} records, {} alert documents; test {}",
        secs(kill_took),
        new_leader.map_or("never".to_owned(), |(n, d)| format!("{n} after {}", secs(d))),
        first_after_kill.map_or("none", |(id, _)| id.as_str()),
        gap.map_or("never".to_owned(), secs),
        secs(match kind {
            Victim::Leader => FAILOVER_BOUND,
            Victim::EveryRole => WORST_CASE_FAILOVER_BOUND,
        }),
        resumed.map_or("never".to_owned(), |at| secs(at.duration_since(killed_at))),
        first.len(),
        before_kill.iter().max().copied().unwrap_or_default(),
        secs(restart_took),
        in_sync_after.map_or("never".to_owned(), secs),
        produced.len(),
        want.values().sum::<usize>(),
        secs(started.elapsed()),
    );
    // How roadwatch lived through it (aborts, rebuilds, producer replacements show here).
    // It logs Kafka statistics every 10 s: a log silent for longer means a stalled loop.
    let silent = std::fs::metadata(&log)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    let context = format!(
        "roadwatch's log was last written {} ago (it logs statistics every 10 s)",
        secs(silent)
    );
    eprintln!("{context}");
    eprintln!(
        "supervisor: {} restarts{}",
        rw.restarts.len(),
        rw.restarts
            .iter()
            .map(|(at, st)| format!(
                "; exit {st} {} after the kill",
                secs(at.duration_since(killed_at))
            ))
            .collect::<String>()
    );
    let text = rw.child.log();
    let warnings: Vec<String> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(|l| l.chars().take(400).collect())
        .collect();
    eprintln!(
        "roadwatch: {} warnings and errors{}\n{}",
        warnings.len(),
        if warnings.len() > 20 {
            " (the first 20)"
        } else {
            ""
        },
        warnings[..warnings.len().min(20)].join("\n")
    );

    // Nothing lost, nothing duplicated: for the reader that lived through the failover,
    // and for one that reads the committed log afterwards.
    exactly_once(
        "the read_committed reader during the failover",
        &want,
        &live_reader.seen,
        &context,
    );
    let mut after = Reader::new(&stage);
    after.until(Duration::from_secs(60), |seen| covers(&want, seen));
    after.drain(Duration::from_secs(3));
    exactly_once(
        "a read_committed reader afterwards",
        &want,
        &after.seen,
        &context,
    );

    let gap = gap.expect("an alert of a record queued after the kill arrived");
    let bound = match kind {
        Victim::Leader => FAILOVER_BOUND,
        Victim::EveryRole => WORST_CASE_FAILOVER_BOUND,
    };
    assert!(
        gap <= bound,
        "the first alert of a record queued after the kill arrived {} after the kill (bound {})",
        secs(gap),
        secs(bound)
    );
    alive(&mut rw, "at the end");
    assert!(
        rw.restarts.len() <= 2,
        "roadwatch was restarted {} times: {:?}",
        rw.restarts.len(),
        rw.restarts
            .iter()
            .map(|(at, st)| format!("{st} {} after the kill", secs(at.duration_since(killed_at))))
            .collect::<Vec<_>>()
    );
    let status = rw.child.terminate();
    assert!(status.success(), "exit status {status:?} after SIGTERM");
    drop(after);
    drop(live_reader);
    drop(stage);
}
