//! Load tool for `roadwatch run` through a real broker (docs/PERFORMANCE.md, "Kafka
//! runtime"). It creates a prefixed set of topics, produces a mixed stream whose event
//! time is the wall clock, and measures what a patrol app would see:
//!
//! ```text
//! kafka_load setup    --prefix P [--partitions 4]      topics + a 100,000-plate watchlist
//! kafka_load produce  --prefix P --rate 20000 --seconds 60 [--alerts-per-s 20]
//! kafka_load latency  --prefix P --seconds 70 [--warmup 10]   event→alert, read_committed
//! kafka_load latency  --prefix P --produce-time ...      the same for `roadwatch simulate --rate`
//! kafka_load drain    --prefix P --group G               committed records/s of group G
//! kafka_load cleanup  --prefix P
//! ```
//!
//! `roadwatch run` itself runs as its own process with `ROADWATCH__KAFKA__TOPICS__*`
//! pointing at the prefixed topics (`kafka_load env --prefix P` prints them).
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use roadwatch::config::KafkaSettings;
use roadwatch::io::kafka::{self, TopicSpec};

#[derive(Parser)]
struct Cli {
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the prefixed topics and write the watchlist file.
    Setup {
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Print the ROADWATCH__ environment for `roadwatch run` on these topics.
    Env {
        #[arg(long)]
        prefix: String,
    },
    /// Produce a mixed stream at a target rate (0 = as fast as possible).
    Produce {
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Stop after this many records instead (backlog for a throughput run).
        #[arg(long)]
        records: Option<u64>,
        /// Reads of never-seen watchlisted plates per second: one alert each.
        #[arg(long, default_value_t = 20)]
        alerts_per_s: u64,
    },
    /// Read `alerts` as a patrol app does (read_committed) and report event→alert.
    Latency {
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 70)]
        seconds: u64,
        #[arg(long, default_value_t = 10)]
        warmup: u64,
        /// For streams whose event time is not the wall clock (`roadwatch simulate
        /// --rate`): measure each `new` alert from the Kafka timestamp of its newest
        /// source event (when the producer sent it) instead of from its `event_ts`.
        #[arg(long)]
        produce_time: bool,
    },
    /// Follow the committed offsets of a consumer group: records/s it processes.
    Drain {
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        group: String,
        #[arg(long, default_value_t = 300)]
        max_seconds: u64,
    },
    /// Baseline: a bare librdkafka consumer reading the input topics to their end, with
    /// roadwatch's consumer settings but no processing. Compare with `drain`.
    Baseline {
        #[arg(long)]
        prefix: String,
        /// Follow a live stream for this long instead of reading to the current end.
        #[arg(long)]
        follow_seconds: Option<u64>,
    },
    /// Delete the prefixed topics.
    Cleanup {
        #[arg(long)]
        prefix: String,
    },
}

const INPUTS: [&str; 6] = ["camera", "plate", "weather", "patrol", "ack", "operator"];
const OUTPUTS: [&str; 2] = ["alerts", "dlq"];
/// Watchlisted plates are 贵W00000..贵W99999; others 贵A + 5 digits.
const WATCHLIST_SIZE: u32 = 100_000;
/// A gantry on G76 `up` (tests/fixtures/replay/ride_hailing).
const GANTRY: (f64, f64) = (106.053889, 27.02847);

fn settings(bootstrap: &str) -> KafkaSettings {
    let mut k = roadwatch::config::defaults().kafka;
    k.bootstrap_servers = bootstrap.to_owned();
    k
}

fn topic(prefix: &str, name: &str) -> String {
    format!("{prefix}-{name}")
}

fn watchlist_path(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{prefix}-watchlist.txt"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let k = settings(&cli.bootstrap);
    match cli.command {
        Cmd::Setup { prefix, partitions } => setup(&k, &prefix, partitions),
        Cmd::Env { prefix } => {
            for name in INPUTS.iter().chain(OUTPUTS.iter()) {
                println!(
                    "ROADWATCH__KAFKA__TOPICS__{}={}",
                    name.to_uppercase(),
                    topic(&prefix, name)
                );
            }
            println!("ROADWATCH__KAFKA__TOPICS__DISPATCH_PREFIX={prefix}-dispatch.");
            println!("ROADWATCH__KAFKA__GROUP_ID={prefix}-group");
            println!(
                "ROADWATCH__RIDE_HAILING__WATCHLIST_FILE={}",
                watchlist_path(&prefix).display()
            );
            Ok(())
        }
        Cmd::Produce {
            prefix,
            rate,
            seconds,
            records,
            alerts_per_s,
        } => produce(&k, &prefix, rate, seconds, records, alerts_per_s),
        Cmd::Latency {
            prefix,
            seconds,
            warmup,
            produce_time: false,
        } => latency(&k, &prefix, seconds, warmup),
        Cmd::Latency {
            prefix,
            seconds,
            warmup,
            produce_time: true,
        } => latency_from_produce_time(&k, &prefix, seconds, warmup),
        Cmd::Drain {
            prefix,
            group,
            max_seconds,
        } => drain(&k, &prefix, &group, max_seconds),
        Cmd::Baseline {
            prefix,
            follow_seconds,
        } => baseline(&k, &prefix, follow_seconds),
        Cmd::Cleanup { prefix } => {
            let client: BaseConsumer = kafka::client_config(&k, &[]).create()?;
            let md = client.fetch_metadata(None, Duration::from_secs(10))?;
            let ours: Vec<String> = md
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .filter(|n| n.starts_with(&format!("{prefix}-")))
                .collect();
            let refs: Vec<&str> = ours.iter().map(String::as_str).collect();
            if !refs.is_empty() {
                block_on(kafka::delete_topics(&k, &refs))?;
            }
            let _ = std::fs::remove_file(watchlist_path(&prefix));
            println!("deleted {} topics", refs.len());
            Ok(())
        }
    }
}

fn setup(k: &KafkaSettings, prefix: &str, partitions: i32) -> anyhow::Result<()> {
    let mut specs = Vec::new();
    for name in INPUTS.iter().chain(OUTPUTS.iter()) {
        specs.push(TopicSpec {
            name: topic(prefix, name),
            partitions: if *name == "camera" || *name == "plate" {
                partitions
            } else {
                1
            },
            replication: 1,
        });
    }
    block_on(kafka::create_topics(k, &specs))?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(watchlist_path(prefix))?);
    for i in 0..WATCHLIST_SIZE {
        writeln!(w, "贵W{i:05}")?;
    }
    w.flush()?;
    println!(
        "created {} topics; watchlist {}",
        specs.len(),
        watchlist_path(prefix).display()
    );
    Ok(())
}

/// A small deterministic generator (xorshift): no dependency, reproducible mixes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Points on carriageways of the shipped network, for detections and patrol units.
fn road_points() -> Vec<(f64, f64)> {
    let bytes = std::fs::read("config/roads/bijie.geojson").unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let mut out = Vec::new();
    for f in doc["features"].as_array().into_iter().flatten() {
        if f["properties"]["kind"] == "carriageway" {
            for c in f["geometry"]["coordinates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                out.push((c[0].as_f64().unwrap_or(0.0), c[1].as_f64().unwrap_or(0.0)));
            }
        }
    }
    if out.is_empty() {
        out.push(GANTRY);
    }
    out
}

/// One record of the mix: 70 % camera events (vehicles, now and then an animal), 27 %
/// plate reads of ordinary plates, 2 % weather, 1 % patrol positions; plus the
/// requested watchlist reads, each of a plate never read before (one alert each).
fn record(
    rng: &mut Rng,
    points: &[(f64, f64)],
    seq: u64,
    ts: i64,
) -> (&'static str, String, String) {
    let roll = rng.below(100);
    let (lon, lat) = points[rng.below(points.len() as u64) as usize];
    if roll < 70 {
        let cam = format!("cam-{:04}", rng.below(2_000));
        let class = if rng.below(50) == 0 {
            "animal"
        } else {
            "vehicle"
        };
        let v = format!(
            r#"{{"event_id":"{cam}-{seq}","camera_id":"{cam}","ts":{ts},"detections":[{{"class":"{class}","confidence":{:.2},"lon":{lon},"lat":{lat}}},{{"class":"vehicle","confidence":0.95,"lon":{lon},"lat":{lat}}}]}}"#,
            0.6 + 0.4 * rng.unit()
        );
        ("camera", cam, v)
    } else if roll < 97 {
        let reader = format!("anpr-{:03}", rng.below(300));
        let plate = format!("贵A{:05}", rng.below(100_000));
        let v = format!(
            r#"{{"event_id":"{reader}-{seq}","reader_id":"{reader}","ts":{ts},"plate":"{plate}","plate_color":"blue","vehicle_class":"car","lon":{lon},"lat":{lat},"confidence":0.97}}"#
        );
        ("plate", reader, v)
    } else if roll < 99 {
        let station = format!("wx-{:02}", rng.below(14));
        let v = format!(
            r#"{{"event_id":"{station}-{seq}","station_id":"{station}","ts":{ts},"lon":{lon},"lat":{lat},"visibility_m":{:.0},"precipitation_mm_h":0.0,"wind_speed_ms":3.0,"wind_gust_ms":5.0}}"#,
            2_000.0 + 5_000.0 * rng.unit()
        );
        ("weather", station, v)
    } else {
        let unit = format!("P-{:02}", rng.below(50));
        let v = format!(
            r#"{{"unit_id":"{unit}","ts":{ts},"lon":{lon},"lat":{lat},"status":"available","speed_kmh":70.0}}"#
        );
        ("patrol", unit, v)
    }
}

fn produce(
    k: &KafkaSettings,
    prefix: &str,
    rate: u64,
    seconds: u64,
    records: Option<u64>,
    alerts_per_s: u64,
) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = kafka::client_config(
        k,
        &[
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "1000000"),
            ("enable.idempotence", "true"),
        ],
    )
    .create()?;
    let points = road_points();
    let topics: BTreeMap<&str, String> = INPUTS.iter().map(|n| (*n, topic(prefix, n))).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    let limit = records.unwrap_or(u64::MAX);
    let deadline = Duration::from_secs(seconds);
    let mut sent = 0u64;
    let mut watch_sent = 0u64;
    let mut next_report = Duration::from_secs(5);
    while sent < limit && (records.is_some() || started.elapsed() < deadline) {
        let elapsed = started.elapsed();
        if rate > 0 {
            let due = (elapsed.as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        }
        let ts = now_ms();
        let watch_due = (elapsed.as_secs_f64() * alerts_per_s as f64) as u64;
        let (stream, key, value) = if watch_sent < watch_due && watch_sent < WATCHLIST_SIZE as u64 {
            let plate = format!("贵W{watch_sent:05}");
            watch_sent += 1;
            let v = format!(
                r#"{{"event_id":"w-{sent}","reader_id":"anpr-G76-K1150-U","ts":{ts},"plate":"{plate}","plate_color":"blue","vehicle_class":"car","lon":{},"lat":{},"confidence":0.97}}"#,
                GANTRY.0, GANTRY.1
            );
            ("plate", plate, v)
        } else {
            record(&mut rng, &points, sent, ts)
        };
        let mut rec = BaseRecord::to(&topics[stream]).key(&key).payload(&value);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        sent += 1;
        if elapsed >= next_report {
            next_report += Duration::from_secs(5);
            eprintln!(
                "{:>5.1} s: {sent} records ({:.0}/s), {watch_sent} watchlist reads",
                elapsed.as_secs_f64(),
                sent as f64 / elapsed.as_secs_f64()
            );
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let took = started.elapsed().as_secs_f64();
    println!(
        "produced {sent} records in {took:.1} s ({:.0}/s), {watch_sent} watchlist reads",
        sent as f64 / took
    );
    Ok(())
}

/// A reader of `alerts` as a patrol app has one: read_committed, from now on.
fn alerts_reader(k: &KafkaSettings, prefix: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = kafka::client_config(
        k,
        &[
            ("group.id", group),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "latest"),
            ("enable.auto.commit", "false"),
            // A patrol app wants alerts at once, not in 500 ms fetch batches.
            ("fetch.wait.max.ms", "5"),
        ],
    )
    .create()?;
    consumer.subscribe(&[&topic(prefix, "alerts")])?;
    Ok(consumer)
}

fn latency(k: &KafkaSettings, prefix: &str, seconds: u64, warmup: u64) -> anyhow::Result<()> {
    let consumer = alerts_reader(k, prefix, &format!("{prefix}-latency-{}", now_ms()))?;
    let started = Instant::now();
    let mut samples: Vec<i64> = Vec::new();
    // The alert record's CreateTime is when roadwatch handed it to librdkafka: it splits
    // each sample into the way in (the generator's producer, the broker, roadwatch's
    // fetch, merge and engine) and the way out (roadwatch's producer, the commit under
    // exactly-once, the broker, this consumer's fetch).
    let (mut way_in, mut way_out): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let seen = now_ms();
        let created = m.timestamp().to_millis();
        let Some(payload) = m.payload() else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
            continue;
        };
        drop(m);
        let Some(event_ms) = v["event_ts"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
        else {
            continue;
        };
        if started.elapsed() < Duration::from_secs(warmup) {
            continue;
        }
        *by_kind
            .entry(v["kind"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        samples.push(seen - event_ms);
        if let Some(created) = created {
            way_in.push(created - event_ms);
            way_out.push(seen - created);
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    report("  event→produce call over", "alerts", way_in, &by_kind, "");
    report(
        "  produce call→receipt over",
        "alerts",
        way_out,
        &by_kind,
        "",
    );
    report(
        "event→alert (read_committed) over",
        "alerts",
        samples,
        &by_kind,
        "",
    );
    Ok(())
}

/// Prints p50/p99/max of latency samples in ms.
fn report(
    what: &str,
    alerts: &str,
    samples: Vec<i64>,
    by_kind: &BTreeMap<String, usize>,
    note: &str,
) {
    // Whole milliseconds, exact up to 2 s with three significant digits.
    let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("valid precision");
    for s in &samples {
        // A clock step on this host can make one negative; it counts as 0.
        h.saturating_record((*s).max(0) as u64);
    }
    if h.is_empty() {
        println!("no {alerts} after the warm-up{note}");
        return;
    }
    println!(
        "{what} {} {alerts} {by_kind:?}{note}: p50 {} ms, p99 {} ms, max {} ms",
        h.len(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.max(),
    );
}

/// A simulated stream's event time is simulated; what a patrol app waits for is the
/// time from the moment the triggering record entered Kafka to the alert's arrival. The
/// input topics are read alongside the alerts (event_id → CreateTime), and each `new`
/// alert (the one a patrol acts on; timer-driven updates have no triggering record among
/// their sources) is measured from its newest source event.
fn latency_from_produce_time(
    k: &KafkaSettings,
    prefix: &str,
    seconds: u64,
    warmup: u64,
) -> anyhow::Result<()> {
    let stamp = now_ms();
    let alerts = alerts_reader(k, prefix, &format!("{prefix}-latency-{stamp}"))?;
    let inputs: BaseConsumer = kafka::client_config(
        k,
        &[
            (
                "group.id",
                format!("{prefix}-latency-inputs-{stamp}").as_str(),
            ),
            ("auto.offset.reset", "latest"),
            ("enable.auto.commit", "false"),
        ],
    )
    .create()?;
    let input_topics: Vec<String> = ["camera", "plate", "weather"]
        .iter()
        .map(|n| topic(prefix, n))
        .collect();
    let refs: Vec<&str> = input_topics.iter().map(String::as_str).collect();
    inputs.subscribe(&refs)?;

    #[derive(serde::Deserialize)]
    struct EventId<'a> {
        #[serde(borrow)]
        event_id: Option<&'a str>,
    }
    let mut produced: std::collections::HashMap<String, i64> = Default::default();
    let mut read_inputs = |budget: usize| {
        for _ in 0..budget {
            let Some(Ok(m)) = inputs.poll(Duration::ZERO) else {
                return;
            };
            let (Some(ts), Some(payload)) = (m.timestamp().to_millis(), m.payload()) else {
                continue;
            };
            if let Ok(EventId { event_id: Some(id) }) = serde_json::from_slice(payload) {
                produced.insert(id.to_owned(), ts);
            }
        }
    };
    // (arrival, kind, source ids) of each `new` alert after the warm-up.
    let mut seen: Vec<(i64, String, Vec<String>)> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        read_inputs(10_000);
        let Some(Ok(m)) = alerts.poll(Duration::from_millis(5)) else {
            continue;
        };
        let at = now_ms();
        let Some(Ok(v)) = m.payload().map(serde_json::from_slice::<serde_json::Value>) else {
            continue;
        };
        drop(m);
        if started.elapsed() < Duration::from_secs(warmup) || v["status"] != "new" {
            continue;
        }
        let sources = v["source_event_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        seen.push((at, v["kind"].as_str().unwrap_or("?").to_owned(), sources));
    }
    // The input reader may trail the alerts a little: let it catch up.
    let catch_up = Instant::now();
    while catch_up.elapsed() < Duration::from_secs(5) {
        read_inputs(10_000);
        std::thread::sleep(Duration::from_millis(10));
    }
    alerts.unsubscribe();
    inputs.unsubscribe();
    let mut samples = Vec::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut unmatched = 0usize;
    for (at, kind, sources) in &seen {
        match sources.iter().filter_map(|id| produced.get(id)).max() {
            Some(sent) => {
                samples.push(at - sent);
                *by_kind.entry(kind.clone()).or_default() += 1;
            }
            None => unmatched += 1,
        }
    }
    report(
        "produce→alert (read_committed) over",
        "new alerts",
        samples,
        &by_kind,
        &format!(" ({unmatched} without a source read here)"),
    );
    Ok(())
}

fn drain(k: &KafkaSettings, prefix: &str, group: &str, max_seconds: u64) -> anyhow::Result<()> {
    let client: BaseConsumer = kafka::client_config(k, &[("group.id", group)]).create()?;
    let md = client.fetch_metadata(None, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    let mut end = 0i64;
    for t in md.topics() {
        let name = t.name();
        if !["camera", "plate", "weather", "ack"]
            .iter()
            .any(|n| name == topic(prefix, n))
        {
            continue;
        }
        for p in t.partitions() {
            tpl.add_partition(name, p.id());
            end += client
                .fetch_watermarks(name, p.id(), Duration::from_secs(10))?
                .1;
        }
    }
    let committed = |c: &BaseConsumer| -> i64 {
        c.committed_offsets(tpl.clone(), Duration::from_secs(10))
            .map(|t| {
                t.elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .sum()
            })
            .unwrap_or(0)
    };
    let started = Instant::now();
    let mut first: Option<(Instant, i64)> = None;
    let mut last = (started, committed(&client));
    println!("group {group}: {} of {end} input records committed", last.1);
    while started.elapsed() < Duration::from_secs(max_seconds) && last.1 < end {
        std::thread::sleep(Duration::from_secs(1));
        let now = (Instant::now(), committed(&client));
        let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64();
        eprintln!(
            "{:>5.0} s: {} committed, {rate:.0}/s",
            started.elapsed().as_secs_f64(),
            now.1
        );
        if first.is_none() && now.1 > last.1 {
            first = Some(last);
        }
        last = now;
    }
    if last.1 < end {
        // Which partitions are behind, for diagnosis.
        if let Ok(t) = client.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            for e in t.elements() {
                let high = client
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
                    .map(|w| w.1)
                    .unwrap_or(-1);
                println!(
                    "  {}[{}]: committed {:?}, end {high}",
                    e.topic(),
                    e.partition(),
                    e.offset()
                );
            }
        }
    }
    if let Some((t0, c0)) = first {
        let secs = last.0.duration_since(t0).as_secs_f64();
        println!(
            "processed {} records in {secs:.1} s: {:.0} records/s (from the first committed progress to {})",
            last.1 - c0,
            (last.1 - c0) as f64 / secs,
            if last.1 >= end { "the end" } else { "the time limit" }
        );
    }
    Ok(())
}

fn baseline(k: &KafkaSettings, prefix: &str, follow: Option<u64>) -> anyhow::Result<()> {
    let group = format!("{prefix}-baseline-{}", now_ms());
    let consumer: BaseConsumer = kafka::client_config(
        k,
        &[
            ("group.id", group.as_str()),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()?;
    let inputs: Vec<String> = ["camera", "plate", "weather", "ack"]
        .iter()
        .map(|n| topic(prefix, n))
        .collect();
    let mut end = 0;
    for t in &inputs {
        let md = consumer.fetch_metadata(Some(t), Duration::from_secs(10))?;
        for p in md.topics().iter().flat_map(|t| t.partitions()) {
            end += consumer
                .fetch_watermarks(t, p.id(), Duration::from_secs(10))?
                .1;
        }
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    if std::env::var_os("BASELINE_SEEK").is_some() {
        // Like roadwatch's rebuild: wait for the assignment, pause, seek, resume.
        while consumer.assignment()?.count() == 0 {
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let a = consumer.assignment()?;
        consumer.pause(&a)?;
        let mut seek = TopicPartitionList::new();
        for e in a.elements() {
            seek.add_partition_offset(e.topic(), e.partition(), Offset::Offset(0))?;
        }
        consumer.seek_partitions(seek, Duration::from_secs(10))?;
        consumer.resume(&a)?;
    }
    let mut n = 0i64;
    let mut first: Option<Instant> = None;
    let started = Instant::now();
    if let Some(secs) = follow {
        end = 0;
        while started.elapsed() < Duration::from_secs(secs) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                first.get_or_insert_with(Instant::now);
                n += 1;
                drop(m);
            }
        }
    }
    while n < end && started.elapsed() < Duration::from_secs(300) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            n += 1;
            drop(m);
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    println!(
        "bare consumer: {n} records in {secs:.1} s: {:.0} records/s",
        n as f64 / secs
    );
    consumer.unsubscribe();
    Ok(())
}
