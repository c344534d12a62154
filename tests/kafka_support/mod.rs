//! What the real-broker tests share: each test's own topics and group (`Stage`), the
//! records it produces, the `read_committed` reader of its outputs, the `replay` oracle,
//! and the runtime in-process (`start`) or as the real binary (`Child`).
#![allow(dead_code)]
mod broker;
#[allow(unused_imports)]
pub use broker::*;
mod cluster;
#[allow(unused_imports)]
pub use cluster::*;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use roadwatch::config::{Guarantee, KafkaSecurity, Settings};
use roadwatch::core::detect::ride_hailing::PlateList;
use roadwatch::core::engine::Engine;
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use roadwatch::io::http::Readiness;
use roadwatch::io::kafka::{self, Shutdown, TopicSpec};
use roadwatch::io::metrics::Metrics;
use roadwatch::io::pipeline::Pipeline;
use serde_json::{json, Value};

pub const ROADS: &str = "config/roads/bijie.geojson";
/// The tunnel on G76 `up` at K1154+953 (tests/fixtures/replay/pedestrian).
pub const TUNNEL: (f64, f64) = (106.011699, 27.044923);
/// Weather station wx-01 beside G76 K1153+900 (tests/fixtures/replay/weather).
pub const WX01: (f64, f64) = (106.022175, 27.046561);
/// The ANPR gantry at G76 `up` K1150 (tests/fixtures/replay/ride_hailing).
pub const GANTRY: (f64, f64) = (106.053889, 27.02847);
/// Patrol units around the tunnel (tests/fixtures/replay/dispatch).
pub const UNITS: [(&str, f64, f64); 4] = [
    ("P-01", 106.053889, 27.02847),
    ("P-02", 106.031152, 27.045749),
    ("P-03", 106.001292, 27.045293),
    ("P-04", 105.987169, 27.058066),
];

// ---------------------------------------------------------------- environment

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn nonce() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}", n % (1u128 << 60))
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn tokio() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn network() -> Arc<RoadNetwork> {
    static NET: OnceLock<Arc<RoadNetwork>> = OnceLock::new();
    NET.get_or_init(|| {
        let opts = LoadOptions {
            max_snap_m: 100.0,
            strict: false,
        };
        Arc::new(roadwatch::io::roads_cmd::load_network_file(Path::new(ROADS), &opts).unwrap())
    })
    .clone()
}

/// A test's own topics, group and settings; the topics are deleted on drop.
pub struct Stage {
    pub settings: Settings,
    pub prefix: String,
}

/// Default settings with the group and every topic named under `prefix` (nothing is
/// created).
pub fn named(bootstrap: &str, prefix: &str) -> Settings {
    let mut s = roadwatch::config::defaults();
    s.kafka.bootstrap_servers = bootstrap.to_owned();
    s.kafka.group_id = format!("{prefix}-group");
    s.kafka.instance_id = "a".to_owned();
    let t = &mut s.kafka.topics;
    t.camera = format!("{prefix}-camera");
    t.plate = format!("{prefix}-plate");
    t.weather = format!("{prefix}-weather");
    t.patrol = format!("{prefix}-patrol");
    t.ack = format!("{prefix}-ack");
    t.operator = format!("{prefix}-operator");
    t.alerts = format!("{prefix}-alerts");
    t.dlq = format!("{prefix}-dlq");
    t.dispatch_prefix = format!("{prefix}-dispatch.");
    s
}

/// A fresh broker creates its transaction-state and offsets topics (50 partitions each,
/// Kafka's defaults) on first use, which takes seconds under load: an instance whose
/// `init_transactions` waits for that joins the group late, after its peer has taken
/// every partition (seen once in a loop of the backlog tests). Tests whose instances
/// must start together warm both coordinators first.
pub fn warm_coordinators(stage: &Stage) {
    let k = &stage.settings.kafka;
    let txn_id = format!("{}-warm", stage.prefix);
    let producer: rdkafka::producer::BaseProducer =
        kafka::client_config(k, &[("transactional.id", txn_id.as_str())])
            .create()
            .unwrap();
    // A broker started a moment ago answers "not coordinator" while it loads its
    // internal topics: asked again until it answers, for up to a minute.
    let started = Instant::now();
    let retry = |what: &str, e: &dyn std::fmt::Display| {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the {what} coordinator does not answer within 60 s: {e}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    while let Err(e) =
        rdkafka::producer::Producer::init_transactions(&producer, Duration::from_secs(30))
    {
        retry("transaction", &e);
    }
    let group = format!("{}-warm", stage.prefix);
    let consumer: rdkafka::consumer::BaseConsumer =
        kafka::client_config(k, &[("group.id", group.as_str())])
            .create()
            .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(&k.topics.camera, 0);
    // Asking for a group's committed offsets waits for its coordinator.
    while let Err(e) = consumer.committed_offsets(tpl.clone(), Duration::from_secs(30)) {
        retry("group", &e);
    }
}

/// Two instances of one group (ids `a` and `b`), started together and ready.
pub fn two_instances(stage: &Stage) -> (InProcess, InProcess) {
    warm_coordinators(stage);
    let instance = |id: &str| {
        let mut s = stage.settings.clone();
        s.kafka.instance_id = id.to_owned();
        start(s)
    };
    let (a, b) = (instance("a"), instance("b"));
    a.wait_ready(Duration::from_secs(60));
    b.wait_ready(Duration::from_secs(60));
    (a, b)
}

/// One pedestrian detection at each point, camera `cam-<i>` on camera partition `i mod
/// partitions`.
pub fn pedestrians_on_partitions(
    p: &FutureProducer,
    topic: &str,
    points: &[(f64, f64)],
    partitions: i32,
) {
    for (i, (lon, lat)) in points.iter().enumerate() {
        let camera = format!("cam-{i:03}");
        let v = pedestrian(&camera, 0, *lon, *lat, now_ms());
        produce_to(
            p,
            topic,
            i as i32 % partitions,
            &camera,
            v.to_string().as_bytes(),
        );
    }
}

impl Stage {
    /// `partitions` of the camera topic; the other topics get one.
    pub fn new(test: &str, camera_partitions: i32, guarantee: Guarantee) -> Stage {
        Stage::on(&bootstrap(), test, camera_partitions, guarantee)
    }

    /// The same on the broker at `bootstrap` (a test's private broker).
    pub fn on(bootstrap: &str, test: &str, camera_partitions: i32, guarantee: Guarantee) -> Stage {
        Stage::build(bootstrap, test, camera_partitions, 1, guarantee)
    }

    pub fn build(
        bootstrap: &str,
        test: &str,
        camera_partitions: i32,
        ack_partitions: i32,
        guarantee: Guarantee,
    ) -> Stage {
        Stage::build_with(
            bootstrap,
            test,
            camera_partitions,
            ack_partitions,
            guarantee,
            KafkaSecurity::default(),
        )
    }

    /// `security`: how the test's own clients (topic set-up, producer, reader) connect.
    /// The children of [`Stage::env`] do not inherit it: each test says how they connect.
    pub fn build_with(
        bootstrap: &str,
        test: &str,
        camera_partitions: i32,
        ack_partitions: i32,
        guarantee: Guarantee,
        security: KafkaSecurity,
    ) -> Stage {
        Stage::create(
            bootstrap,
            test,
            camera_partitions,
            ack_partitions,
            guarantee,
            security,
            1,
        )
    }

    /// Every topic with `replication` replicas (a cluster's test: 3).
    pub fn replicated(
        bootstrap: &str,
        test: &str,
        camera_partitions: i32,
        guarantee: Guarantee,
        replication: i32,
    ) -> Stage {
        Stage::create(
            bootstrap,
            test,
            camera_partitions,
            1,
            guarantee,
            KafkaSecurity::default(),
            replication,
        )
    }

    fn create(
        bootstrap: &str,
        test: &str,
        camera_partitions: i32,
        ack_partitions: i32,
        guarantee: Guarantee,
        security: KafkaSecurity,
        replication: i32,
    ) -> Stage {
        let prefix = format!("rw-{test}-{}", nonce());
        let mut s = named(bootstrap, &prefix);
        s.kafka.security = security;
        s.processing.guarantee = guarantee;
        s.metrics.listen = "127.0.0.1:0".parse().unwrap();
        let stage = Stage {
            settings: s,
            prefix,
        };
        let t = &stage.settings.kafka.topics;
        let mut specs = vec![
            TopicSpec {
                name: t.camera.clone(),
                partitions: camera_partitions,
                replication,
            },
            TopicSpec {
                name: t.ack.clone(),
                partitions: ack_partitions,
                replication,
            },
            // Keyed by alert_id, actions fall on any partition: as many as the acks'.
            TopicSpec {
                name: t.operator.clone(),
                partitions: ack_partitions,
                replication,
            },
        ];
        for name in [&t.plate, &t.weather, &t.patrol, &t.alerts, &t.dlq] {
            specs.push(TopicSpec {
                name: name.clone(),
                partitions: 1,
                replication,
            });
        }
        tokio()
            .block_on(kafka::create_topics(&stage.settings.kafka, &specs))
            .unwrap_or_else(|e| panic!("no Kafka broker at {bootstrap} (run scripts/test): {e:#}"));
        stage
    }

    pub fn topics(&self) -> &roadwatch::config::Topics {
        &self.settings.kafka.topics
    }

    /// The `ROADWATCH__…` environment that gives the binary these settings.
    pub fn env(&self, instance: &str) -> Vec<(String, String)> {
        let k = &self.settings.kafka;
        let t = &k.topics;
        let mut env = vec![
            (
                "ROADWATCH__KAFKA__BOOTSTRAP_SERVERS",
                k.bootstrap_servers.clone(),
            ),
            ("ROADWATCH__KAFKA__GROUP_ID", k.group_id.clone()),
            ("ROADWATCH__KAFKA__INSTANCE_ID", instance.to_owned()),
            ("ROADWATCH__KAFKA__TOPICS__CAMERA", t.camera.clone()),
            ("ROADWATCH__KAFKA__TOPICS__PLATE", t.plate.clone()),
            ("ROADWATCH__KAFKA__TOPICS__WEATHER", t.weather.clone()),
            ("ROADWATCH__KAFKA__TOPICS__PATROL", t.patrol.clone()),
            ("ROADWATCH__KAFKA__TOPICS__ACK", t.ack.clone()),
            ("ROADWATCH__KAFKA__TOPICS__OPERATOR", t.operator.clone()),
            ("ROADWATCH__KAFKA__TOPICS__ALERTS", t.alerts.clone()),
            ("ROADWATCH__KAFKA__TOPICS__DLQ", t.dlq.clone()),
            (
                "ROADWATCH__KAFKA__TOPICS__DISPATCH_PREFIX",
                t.dispatch_prefix.clone(),
            ),
            ("ROADWATCH__METRICS__LISTEN", "127.0.0.1:0".to_owned()),
            // The child's pseudonyms must be the oracle's (the test process's key).
            (
                "ROADWATCH__PRIVACY__PLATE_KEY",
                self.settings.engine.ride_hailing.plate_key.reveal_hex(),
            ),
            (
                "ROADWATCH__PROCESSING__GUARANTEE",
                match self.settings.processing.guarantee {
                    Guarantee::ExactlyOnce => "exactly_once",
                    Guarantee::AtLeastOnce => "at_least_once",
                }
                .to_owned(),
            ),
        ];
        if let Some(w) = &self.settings.ride_hailing_files.watchlist_file {
            env.push((
                "ROADWATCH__RIDE_HAILING__WATCHLIST_FILE",
                w.display().to_string(),
            ));
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let k = &self.settings.kafka;
        let Ok(client) = kafka::client_config(k, &[]).create::<rdkafka::consumer::BaseConsumer>()
        else {
            return;
        };
        let Ok(md) = client.fetch_metadata(None, Duration::from_secs(10)) else {
            return;
        };
        let ours: Vec<String> = md
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|n| n.starts_with(&self.prefix))
            .collect();
        let names: Vec<&str> = ours.iter().map(String::as_str).collect();
        if !names.is_empty() {
            let _ = tokio().block_on(kafka::delete_topics(k, &names));
        }
        // The consumer groups too: the runtime's, its side consumers' and the readers'.
        let Ok(list) = client.fetch_group_list(None, Duration::from_secs(10)) else {
            return;
        };
        let groups: Vec<String> = list
            .groups()
            .iter()
            .map(|g| g.name().to_owned())
            .filter(|n| n.starts_with(&self.prefix))
            .collect();
        if groups.is_empty() {
            return;
        }
        let Ok(admin) = kafka::client_config(k, &[])
            .create::<rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>>()
        else {
            return;
        };
        let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let _ = tokio().block_on(admin.delete_groups(&refs, &rdkafka::admin::AdminOptions::new()));
    }
}

// ---------------------------------------------------------------- input

/// Points on carriageways of the shipped network, at least `spacing_m` apart: each is
/// a separate pedestrian incident (the incident radius is 500 m).
pub fn incident_points(n: usize, spacing_m: f64) -> Vec<(f64, f64)> {
    let doc: Value = serde_json::from_slice(&std::fs::read(ROADS).unwrap()).unwrap();
    let mut picked: Vec<(f64, f64)> = Vec::new();
    for f in doc["features"].as_array().unwrap() {
        if f["properties"]["kind"] != "carriageway" {
            continue;
        }
        for c in f["geometry"]["coordinates"].as_array().unwrap() {
            let p = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
            if picked
                .iter()
                .all(|q| roadwatch::core::roads::distance_m([p.0, p.1], [q.0, q.1]) >= spacing_m)
            {
                picked.push(p);
                if picked.len() == n {
                    return picked;
                }
            }
        }
    }
    picked
}

pub fn producer(stage: &Stage) -> FutureProducer {
    kafka::producer(&stage.settings.kafka).unwrap()
}

/// Produces one record and returns its (partition, offset).
pub fn produce(p: &FutureProducer, topic: &str, key: &str, value: &[u8]) -> (i32, i64) {
    tokio()
        .block_on(p.send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(10),
        ))
        .map(|d| (d.partition, d.offset))
        .map_err(|(e, _)| e)
        .expect("delivery")
}

/// A record as the test produced it, in production order, for the replay oracle.
#[derive(Clone)]
pub struct Sent {
    pub stream: &'static str,
    pub value: Value,
}

pub fn pedestrian(camera: &str, seq: u32, lon: f64, lat: f64, ts: i64) -> Value {
    json!({"event_id": format!("{camera}-{seq:06}"), "camera_id": camera, "ts": ts,
           "detections": [{"class": "pedestrian", "confidence": 0.9, "lon": lon, "lat": lat, "track_id": "1"}]})
}

/// Every unit of `UNITS` reports its position; then a pause, because the patrol consumer
/// is separate from the group and must fetch them first.
pub fn send_units(p: &FutureProducer, topic: &str) -> Vec<Sent> {
    let mut sent = Vec::new();
    for (unit, lon, lat) in UNITS {
        let v = patrol(unit, lon, lat, now_ms());
        produce(p, topic, unit, v.to_string().as_bytes());
        sent.push(Sent {
            stream: "patrol",
            value: v,
        });
    }
    std::thread::sleep(Duration::from_millis(1500));
    sent
}

pub fn patrol(unit: &str, lon: f64, lat: f64, ts: i64) -> Value {
    json!({"unit_id": unit, "ts": ts, "lon": lon, "lat": lat, "status": "available", "speed_kmh": 60.0})
}

// ---------------------------------------------------------------- output

#[derive(Debug, Clone)]
pub struct Out {
    pub topic: String,
    pub key: Option<String>,
    pub value: Value,
}

impl Out {
    /// Alerts by (topic, alert_id, status); DLQ records by (topic, reason, offset).
    pub fn id(&self) -> (String, String, String) {
        if self.value.get("alert_id").is_some() {
            (
                self.topic.clone(),
                self.value["alert_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                self.value["status"].as_str().unwrap_or_default().to_owned(),
            )
        } else {
            (
                self.topic.clone(),
                self.value["reason"].as_str().unwrap_or_default().to_owned(),
                self.value["offset"].to_string(),
            )
        }
    }
}

/// A read_committed consumer over the alerts, DLQ and per-unit topics of a stage.
pub struct Reader {
    pub consumer: StreamConsumer,
    pub seen: Vec<Out>,
    /// (topic, partition, offset) already read (a safeguard: each partition is assigned
    /// once, from its beginning).
    pub offsets: std::collections::HashSet<(String, i32, i64)>,
    /// `alerts` and the DLQ, and the prefix of the per-unit topics.
    names: Vec<String>,
    dispatch_prefix: String,
    assigned: std::collections::BTreeSet<(String, i32)>,
    refreshed: Option<Instant>,
    kafka: roadwatch::config::KafkaSettings,
}

impl Reader {
    pub fn new(stage: &Stage) -> Reader {
        let k = &stage.settings.kafka;
        // StreamConsumer spawns its wake-up task on the ambient tokio runtime.
        let _in_runtime = tokio().enter();
        let consumer: StreamConsumer = kafka::client_config(
            k,
            &[
                ("group.id", &format!("{}-reader-{}", stage.prefix, nonce())),
                ("isolation.level", "read_committed"),
                ("enable.auto.commit", "false"),
                // A partition of a topic created a moment ago may answer the lookup of its
                // beginning with an error; librdkafka then falls back to this, and its
                // default (`latest`) skipped a new per-unit topic's first documents.
                ("auto.offset.reset", "earliest"),
            ],
        )
        .create()
        .unwrap();
        let t = &k.topics;
        let mut reader = Reader {
            consumer,
            seen: Vec::new(),
            offsets: Default::default(),
            names: vec![t.alerts.clone(), t.dlq.clone()],
            dispatch_prefix: t.dispatch_prefix.clone(),
            assigned: Default::default(),
            refreshed: None,
            kafka: k.clone(),
        };
        reader.refresh();
        reader
    }

    /// Assigns, from their beginning, the output partitions that have appeared since
    /// (per-unit topics are created while a test runs). Assigned, not subscribed: a
    /// pattern subscription found a new topic only after its own group rebalanced, and
    /// once under the suite's load not within 90 s.
    fn refresh(&mut self) {
        if self
            .refreshed
            .is_some_and(|t: Instant| t.elapsed() < Duration::from_millis(500))
        {
            return;
        }
        self.refreshed = Some(Instant::now());
        let Ok(md) = self.consumer.fetch_metadata(None, Duration::from_secs(5)) else {
            return;
        };
        let mut tpl = rdkafka::TopicPartitionList::new();
        for topic in md.topics() {
            let name = topic.name();
            if !(self.names.iter().any(|n| n == name) || name.starts_with(&self.dispatch_prefix)) {
                continue;
            }
            for p in topic.partitions() {
                if self.assigned.insert((name.to_owned(), p.id())) {
                    // Offset 0, not `Beginning`: no lookup that a topic created a moment
                    // ago may fail (the tests' topics are young: nothing has expired).
                    tpl.add_partition_offset(name, p.id(), rdkafka::Offset::Offset(0))
                        .unwrap();
                }
            }
        }
        if tpl.count() > 0 {
            self.consumer.incremental_assign(&tpl).unwrap();
        }
    }

    /// For a failure message: where the documents this reader missed are on the broker.
    /// A fresh consumer reads partition 0 of each topic in `topics` (the tests' output
    /// topics have one) from offset 0 under both isolation levels; for each record it
    /// says whether this reader had read that offset.
    pub fn explain_missing(&self, topics: &[String]) -> String {
        let mut out = String::new();
        for isolation in ["read_committed", "read_uncommitted"] {
            let consumer: rdkafka::consumer::BaseConsumer = kafka::client_config(
                &self.kafka,
                &[
                    ("group.id", &format!("explain-{}", nonce())),
                    ("isolation.level", isolation),
                    ("enable.auto.commit", "false"),
                    ("auto.offset.reset", "earliest"),
                ],
            )
            .create()
            .unwrap();
            let mut tpl = rdkafka::TopicPartitionList::new();
            for t in topics {
                tpl.add_partition_offset(t, 0, rdkafka::Offset::Offset(0))
                    .unwrap();
            }
            consumer.assign(&tpl).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match consumer.poll(Duration::from_millis(500)) {
                    Some(Ok(m)) => {
                        let had = self.offsets.contains(&(
                            m.topic().to_owned(),
                            m.partition(),
                            m.offset(),
                        ));
                        let value: Value = serde_json::from_slice(m.payload().unwrap_or_default())
                            .unwrap_or(Value::Null);
                        out.push_str(&format!(
                            "{isolation} {}[{}]@{} ts={:?} read by the test's reader: {had}: {} {}\n",
                            m.topic(),
                            m.partition(),
                            m.offset(),
                            m.timestamp().to_millis(),
                            value["alert_id"],
                            value["status"],
                        ));
                    }
                    Some(Err(e)) => out.push_str(&format!("{isolation}: {e}\n")),
                    None => {}
                }
            }
            for t in topics {
                if let Ok((low, high)) = consumer.fetch_watermarks(t, 0, Duration::from_secs(5)) {
                    out.push_str(&format!("{isolation} {t}[0] watermarks {low}..{high}\n"));
                }
            }
        }
        out
    }

    /// Whether at least `n` records arrived on `topic` within 60 s.
    pub fn alerts_seen(&mut self, topic: &str, n: usize) -> bool {
        self.until(Duration::from_secs(60), |seen| {
            seen.iter().filter(|o| o.topic == topic).count() >= n
        })
    }

    /// Reads until `done(seen)` holds or `limit` passes; returns whether it held.
    pub fn until(&mut self, limit: Duration, done: impl Fn(&[Out]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.refresh();
            let got = tokio().block_on(async {
                tokio::time::timeout(left.min(Duration::from_millis(500)), self.consumer.recv())
                    .await
                    .ok()
                    .map(|r| r.map(|m| m.detach()))
            });
            if let Some(Ok(m)) = got {
                if !self
                    .offsets
                    .insert((m.topic().to_owned(), m.partition(), m.offset()))
                {
                    continue;
                }
                self.seen.push(Out {
                    topic: m.topic().to_owned(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: serde_json::from_slice(m.payload().unwrap_or_default())
                        .unwrap_or(Value::Null),
                });
            }
        }
        true
    }

    /// Whatever else arrives within `quiet`.
    pub fn drain(&mut self, quiet: Duration) {
        self.until(quiet, |_| false);
    }
}

/// What `replay` produces for the same records in the same order.
pub fn replay_expected(settings: &Settings, sent: &[Sent], watchlist: &str) -> Vec<Out> {
    let mut engine = Engine::new(settings.engine.clone(), network());
    engine.set_plate_lists(PlateList::parse(watchlist).0, PlateList::empty());
    let mut pipeline = Pipeline::new(settings, engine, None);
    let mut input = Vec::new();
    for s in sent {
        writeln!(input, "{}", json!({"stream": s.stream, "value": s.value})).unwrap();
    }
    let mut output = Vec::new();
    roadwatch::io::replay::replay(&mut pipeline, &input[..], &mut output, |_| {}).unwrap();
    output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_slice(l).unwrap();
            Out {
                topic: v["topic"].as_str().unwrap().to_owned(),
                key: v["key"].as_str().map(str::to_owned),
                value: v["value"].clone(),
            }
        })
        .collect()
}

pub fn alert_ids(outs: &[Out]) -> BTreeMap<(String, String, String), usize> {
    let mut m = BTreeMap::new();
    for o in outs.iter().filter(|o| o.value.get("alert_id").is_some()) {
        *m.entry(o.id()).or_default() += 1;
    }
    m
}

// ---------------------------------------------------------------- the runtime

pub struct InProcess {
    pub handle: JoinHandle<anyhow::Result<()>>,
    pub shutdown: Shutdown,
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
}

pub fn start(mut settings: Settings) -> InProcess {
    roadwatch::logging::init(roadwatch::logging::LogFormat::Text);
    // For a diagnosis: librdkafka's `debug` contexts (e.g. `eos`), logged with
    // RUST_LOG=info,librdkafka=debug. The spawned binary takes ROADWATCH__KAFKA__OPTIONS__DEBUG.
    if let Ok(contexts) = std::env::var("ROADWATCH_TEST_KAFKA_DEBUG") {
        settings.kafka.options.insert("debug".to_owned(), contexts);
    }
    let shutdown = Shutdown::new();
    let readiness = Arc::new(Readiness::default());
    let metrics = Arc::new(Metrics::new());
    let (s, r, m, n) = (
        shutdown.clone(),
        readiness.clone(),
        metrics.clone(),
        network(),
    );
    let liveness = roadwatch::io::liveness::Liveness::new(Duration::from_secs(120));
    let handle = std::thread::spawn(move || kafka::run(settings, n, m, r, s, liveness));
    InProcess {
        handle,
        shutdown,
        readiness,
        metrics,
    }
}

impl InProcess {
    pub fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.readiness.is_ready() {
            assert!(
                !self.handle.is_finished(),
                "the runtime stopped before it was ready"
            );
            assert!(Instant::now() < deadline, "not ready within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it as SIGTERM would and returns how long that took.
    pub fn stop(self) -> Duration {
        let started = Instant::now();
        self.shutdown.trigger();
        while !self.handle.is_finished() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "graceful shutdown took more than 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.handle
            .join()
            .unwrap()
            .expect("run returns Ok after a graceful stop");
        assert!(!self.readiness.is_ready(), "/readyz is false once stopped");
        started.elapsed()
    }
}

pub struct Child {
    pub child: std::process::Child,
    pub log: std::path::PathBuf,
}

impl Child {
    pub fn spawn(stage: &Stage, instance: &str, log: std::path::PathBuf) -> Child {
        Child::spawn_with(stage, instance, log, &[])
    }

    /// With extra `ROADWATCH__…` settings.
    pub fn spawn_with(
        stage: &Stage,
        instance: &str,
        log: std::path::PathBuf,
        extra: &[(&str, &str)],
    ) -> Child {
        Child::spawn_command(stage, instance, log, &["run"], extra)
    }

    /// Another command of the binary (`console`), with the stage's settings.
    pub fn spawn_command(
        stage: &Stage,
        instance: &str,
        log: std::path::PathBuf,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> Child {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_roadwatch"))
            .args(args)
            .envs(stage.env(instance))
            .envs(extra.iter().copied())
            // ROADWATCH_TEST_CHILD_LOG widens the child's log for a diagnosis (e.g.
            // `roadwatch=info,librdkafka=debug` with ROADWATCH__KAFKA__OPTIONS__DEBUG=eos).
            .env(
                "RUST_LOG",
                std::env::var("ROADWATCH_TEST_CHILD_LOG")
                    .unwrap_or_else(|_| "roadwatch=info".to_owned()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()
            .expect("the roadwatch binary starts");
        Child { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits until the log contains `line`; fails if the process exits or `limit` passes.
    pub fn wait_for_log(&mut self, line: &str, limit: Duration) {
        let started = Instant::now();
        while !self.log().contains(line) {
            if let Some(status) = self.exited() {
                panic!(
                    "roadwatch exited ({status}) before logging {line:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < limit,
                "no {line:?} within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then the exit status within 10 s.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("no exit within 10 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
/// Produces one record to a chosen partition.
pub fn produce_to(p: &FutureProducer, topic: &str, partition: i32, key: &str, value: &[u8]) {
    tokio()
        .block_on(
            p.send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key(key)
                    .payload(value),
                Duration::from_secs(10),
            ),
        )
        .map_err(|(e, _)| e)
        .expect("delivery");
}

/// Prints the roadwatch log when the test fails (or always with RW_SHOW_LOG).
pub struct ShowLogOnPanic(pub std::path::PathBuf);

thread_local! {
    static PANIC_MESSAGE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Keeps each test thread's panic message (and where it was raised), so that a test can
/// repeat it as the last line of its output: CI shows the end of a long failure output,
/// where the logs dumped after the panic would otherwise bury it.
pub fn remember_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = format!("{info}");
            PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(text));
            previous(info);
        }));
    });
}

/// The message of this thread's panic, if `remember_panics` ran before it.
pub fn panic_message() -> Option<String> {
    PANIC_MESSAGE.with(|m| m.borrow().clone())
}

impl Drop for ShowLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("RW_SHOW_LOG").is_some() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- roadwatch log\n{text}");
        }
    }
}
/// Polls `done` every 100 ms for up to 30 s.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "not {what} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A progress line with the wall-clock time, to line up with the roadwatch and broker logs.
pub fn progress(what: &str) {
    let ms = now_ms();
    eprintln!(
        "[{:02}:{:02}:{:02}.{:03} UTC] {what}",
        ms / 3_600_000 % 24,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}
