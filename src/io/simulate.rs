//! `roadwatch simulate`: the simulator's records to NDJSON (the replay format) or to
//! Kafka at a target rate, with a live progress line, plus the ground truth as JSON.
use std::fs::File;
use std::io::{BufWriter, IsTerminal as _, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Settings;
use crate::core::model::{format_rfc3339, Stream};
use crate::core::roads::RoadNetwork;
use crate::io::kafka;
use crate::sim::{write_replay_lines, write_truth, SimConfig, Simulator};

#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub seed: u64,
    pub start_ms: i64,
    pub duration_ms: i64,
    pub warmup_ms: i64,
    /// Records per second to Kafka; 0 = as fast as the producer takes them.
    pub rate: u64,
    /// NDJSON output instead of Kafka.
    pub output: Option<PathBuf>,
    pub truth: Option<PathBuf>,
    /// To Kafka: the simulated patrol apps answer the engine's dispatches.
    pub answer: bool,
}

pub fn simulate(
    settings: &Settings,
    roads: Arc<RoadNetwork>,
    opts: &SimulateOptions,
) -> anyhow::Result<()> {
    let cfg = SimConfig {
        seed: opts.seed,
        start_ms: opts.start_ms,
        duration_ms: opts.duration_ms,
        warmup_ms: opts.warmup_ms,
        utc_offset_s: settings.engine.output.utc_offset.seconds(),
        ..SimConfig::default()
    };
    let mut sim = Simulator::try_new(cfg, roads)
        .map_err(|problems| anyhow::anyhow!("simulator: {}", problems.join("; ")))?;
    let mut sink = match &opts.output {
        Some(path) => Sink::File(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Sink::Kafka(KafkaSink::new(settings, opts.rate > 0)?),
    };
    // To Kafka, the simulated crews answer what the engine sends them.
    let answers = match (&sink, opts.answer) {
        (Sink::Kafka(_), true) => Some(crate::io::simulate_answers::AlertFeed::start(
            &settings.kafka,
        )?),
        _ => None,
    };
    let offset = settings.engine.output.utc_offset;
    let started = Instant::now();
    let mut progress = Progress::new();
    let mut batch = Vec::new();
    let mut sent = 0u64;
    let mut answered = 0u64;
    while sim.next_batch(&mut batch) {
        if let Some(feed) = &answers {
            for alert in feed.take() {
                sim.on_alert(&alert);
                answered += 1;
            }
        }
        match &mut sink {
            Sink::File(w) => write_replay_lines(&batch, w)?,
            Sink::Kafka(k) => {
                for r in &batch {
                    if opts.rate > 0 {
                        // Pace to the target rate: ahead of schedule, wait.
                        let due = Duration::from_secs_f64(sent as f64 / opts.rate as f64);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    k.send(r.stream, &r.key, &r.value)?;
                    sent += 1;
                }
            }
        }
        sent = sent.max(progress.records + batch.len() as u64);
        progress.records += batch.len() as u64;
        batch.clear();
        progress.tick(&format_rfc3339(sim.now_ms(), offset), started);
    }
    match sink {
        Sink::File(mut w) => w.flush()?,
        Sink::Kafka(k) => k.finish()?,
    }
    progress.done(started);
    if answers.is_some() {
        eprintln!("the simulated patrol apps read {answered} alert documents");
    }
    if let Some(path) = &opts.truth {
        let mut w = BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        write_truth(sim.truth(), &mut w)?;
        w.flush()?;
    }
    Ok(())
}

enum Sink {
    File(BufWriter<File>),
    Kafka(KafkaSink),
}

struct KafkaSink {
    producer: ThreadedProducer<DefaultProducerContext>,
    topics: [String; 6],
}

impl KafkaSink {
    /// `paced`: sent at a target rate, standing in for devices that report in real time.
    fn new(settings: &Settings, paced: bool) -> anyhow::Result<Self> {
        let k = &settings.kafka;
        // In `Stream::ALL` order: a record finds its topic by its stream's position.
        let topics = Stream::ALL.map(|s| k.topics.input(s).to_owned());
        let wanted: Vec<(&str, &str)> = Stream::ALL
            .iter()
            .zip(&topics)
            .map(|(s, name)| (input_key(*s), name.as_str()))
            .collect();
        kafka::Probe::connect(k)?.require(&wanted, "write the device streams")?;
        // Paced, the simulator runs about 2,000 times faster than real time at 20,000
        // records/s: 20 ms of batching per partition is 40 s of event time, and a
        // partition's batch reached the broker after newer records of another, more
        // than time.allowed_lateness_s late. 5 ms (10 s of event time) kept 99 % in
        // order; 1 ms did no better and cost the broker enough CPU to double the
        // latency tails (docs/PERFORMANCE.md). As fast as possible, batching pays.
        let linger = if paced { "5" } else { "20" };
        let producer = kafka::client_config(
            k,
            &[
                ("enable.idempotence", "true"),
                ("linger.ms", linger),
                ("compression.type", "lz4"),
            ],
        )
        .create()
        .with_context(|| format!("creating a Kafka producer for {}", k.bootstrap_servers))?;
        Ok(KafkaSink { producer, topics })
    }

    fn send(&self, stream: Stream, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let topic = &self.topics[Stream::ALL.iter().position(|s| *s == stream).unwrap_or(0)];
        let mut record = BaseRecord::to(topic).key(key).payload(value);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    // The local queue is full: let librdkafka drain it, then retry.
                    std::thread::sleep(Duration::from_millis(5));
                    record = r;
                }
                Err((e, _)) => return Err(e).context("producing a simulated record"),
            }
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        self.producer
            .flush(Duration::from_secs(30))
            .context("flushing simulated records to Kafka")
    }
}

/// A progress line on stderr, rewritten in place when a person is watching.
struct Progress {
    records: u64,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            records: 0,
            last: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, sim_time: &str, started: Instant) {
        if self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let rate = self.records as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "simulated up to {sim_time}: {} records, {rate:.0} records/s",
            self.records
        );
        if self.tty {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }

    fn done(&self, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        if self.tty {
            eprintln!();
        }
        eprintln!(
            "simulated {} records in {secs:.1} s ({:.0} records/s)",
            self.records,
            self.records as f64 / secs.max(1e-9)
        );
    }
}

/// The configuration key of an input stream's topic.
fn input_key(stream: Stream) -> &'static str {
    match stream {
        Stream::Camera => "kafka.topics.camera",
        Stream::Plate => "kafka.topics.plate",
        Stream::Weather => "kafka.topics.weather",
        Stream::Patrol => "kafka.topics.patrol",
        Stream::Ack => "kafka.topics.ack",
        Stream::Operator => "kafka.topics.operator",
    }
}
