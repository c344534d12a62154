//! `roadwatch demo`: the simulator and the engine in one process on the shipped network,
//! no Kafka needed. A compressed scenario (a simulated day in about a minute by default),
//! alerts printed as they happen, `/metrics` served while it runs, and a closing report
//! scoring every detector against the simulator's ground truth.
mod report;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use report::{DemoReport, DetectorScore};

use crate::config::Settings;
use crate::core::detect::ride_hailing::PlateList;
use crate::core::engine::Engine;
use crate::core::model::{format_rfc3339, Alert, AlertStatus, DlqSource, UtcOffset};
use crate::core::roads::RoadNetwork;
use crate::io::console::picture::StreamPos;
use crate::io::console::{self, Console, ConsoleParts, Outbox};
use crate::io::http::{self, Readiness};
use crate::io::metrics::Metrics;
use crate::io::pipeline::{Pipeline, Produced};
use crate::sim::{SimConfig, Simulator};

/// How fast simulated time runs against the wall clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// The scored run lasts about a minute, whatever its simulated duration.
    Auto,
    /// As fast as the machine goes.
    Max,
    /// Simulated seconds per wall second.
    Factor(f64),
}

impl Speed {
    pub fn parse(s: &str) -> Option<Speed> {
        match s {
            "auto" => Some(Speed::Auto),
            "max" => Some(Speed::Max),
            x => x
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0)
                .map(Speed::Factor),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub start_ms: i64,
    pub duration_ms: i64,
    /// Days of plate reads before the scored run, so the pattern detector has history.
    pub warmup_ms: i64,
    pub speed: Speed,
    /// Keep serving /metrics this long after the report (operators, Prometheus tests).
    pub linger: Duration,
    /// Print one line per alert as it happens.
    pub print_alerts: bool,
}

/// Wall time the scored run should take at `Speed::Auto`.
const AUTO_WALL: Duration = Duration::from_secs(60);

pub fn run_demo(
    settings: &Settings,
    roads: Arc<RoadNetwork>,
    opts: &DemoOptions,
    out: &mut impl Write,
) -> anyhow::Result<DemoReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the metrics listener's runtime")?;
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let addr = runtime.block_on(http::serve(
        settings.metrics.listen,
        metrics.clone(),
        readiness.clone(),
        None,
    ))?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");

    let cfg = SimConfig {
        seed: opts.seed,
        start_ms: opts.start_ms,
        duration_ms: opts.duration_ms,
        warmup_ms: opts.warmup_ms,
        utc_offset_s: settings.engine.output.utc_offset.seconds(),
        ..SimConfig::default()
    };
    let mut sim = Simulator::try_new(cfg, roads.clone())
        .map_err(|problems| anyhow::anyhow!("simulator: {}", problems.join("; ")))?;
    let mut engine = Engine::new(settings.engine.clone(), roads);
    let truth = sim.truth();
    let (watch, _) = PlateList::parse(&truth.watchlist_plates.join("\n"));
    let (white, _) = PlateList::parse(&truth.whitelist_plates.join("\n"));
    engine.set_plate_lists(watch, white);
    let mut pipeline = Pipeline::new(settings, engine, Some(metrics.clone())).keep_alerts();

    // The console, fed in-process: what the pages send is applied by the demo's engine.
    let outbox = Arc::new(DemoOutbox::default());
    let (accounts, login) = demo_accounts(&truth.patrol_units);
    let console = Console::new(ConsoleParts {
        accounts,
        session_secret: console::session_secret(settings),
        session_ttl_ms: settings.console.session_ttl_ms,
        login_max_failures: settings.console.login_max_failures,
        outbox: outbox.clone(),
        roads_geojson: roads_geojson_of(settings),
        network: pipeline.engine().roads().clone(),
        dispatch: settings.engine.dispatch.clone(),
        metrics: Some(metrics.clone()),
    });
    let console_addr =
        runtime.block_on(console::serve(settings.console.listen, console.clone()))?;
    readiness.set(true, "demo running");

    let offset = settings.engine.output.utc_offset;
    let factor = match opts.speed {
        Speed::Auto => Some(opts.duration_ms as f64 / 1000.0 / AUTO_WALL.as_secs_f64()),
        Speed::Max => None,
        Speed::Factor(f) => Some(f),
    };
    writeln!(
        out,
        "roadwatch demo: seed {}, {} simulated from {} ({} of warm-up first), network {} km",
        opts.seed,
        human_duration(opts.duration_ms),
        format_rfc3339(opts.start_ms, offset),
        human_duration(opts.warmup_ms),
        (pipeline
            .engine()
            .roads()
            .lines()
            .iter()
            .map(|l| l.length_m())
            .sum::<f64>()
            / 1000.0)
            .round(),
    )?;

    writeln!(
        out,
        "console: http://{console_addr}/  sign in as {} / {}; a patrol unit's app: http://{console_addr}/unit#unit_id={}&token={}",
        login.operator, login.password, login.unit_id, login.token
    )?;
    let alerts_topic = settings.kafka.topics.alerts.clone();
    let mut alert_seq = 0i64;
    let mut ack_seq = 0i64;
    let mut from_pages: Vec<(crate::core::model::Stream, String, serde_json::Value)> = Vec::new();
    let mut batch = Vec::new();
    let mut produced: Vec<Produced> = Vec::new();
    let mut all_alerts: Vec<Alert> = Vec::new();
    let mut records = 0u64;
    let mut busy = Duration::ZERO;
    // Every 32nd record's engine time, in nanoseconds: bounded memory however long the run.
    let mut per_record_ns = hdrhistogram::Histogram::<u64>::new(3).expect("valid precision");
    let mut scored_started: Option<Instant> = None;
    // Dispatch counters at the end of the warm-up: the warm-up has plate reads only, no
    // patrol units, so its ride-hailing alerts all escalate; the report counts the run.
    let mut dispatch_before = None;
    let mut last_progress = Instant::now();
    while sim.next_batch(&mut batch) {
        let sim_now = sim.now_ms();
        let t = Instant::now();
        // What operators and units sent since the last batch, at the simulated time (the
        // pages stamp the wall clock, which the simulated world is not at).
        outbox.take(&mut from_pages);
        for (stream, _, mut value) in from_pages.drain(..) {
            value["ts"] = serde_json::json!(sim_now);
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            if stream == crate::core::model::Stream::Ack {
                console.ack(StreamPos::ack(0, ack_seq), value.clone());
                ack_seq += 1;
            }
            pipeline.process(
                stream,
                &bytes,
                DlqSource::default(),
                Some(sim_now),
                sim_now,
                &mut produced,
            );
        }
        feed_console(&console, &alerts_topic, &mut alert_seq, &mut produced);
        for (i, r) in batch.iter().enumerate() {
            let source = DlqSource {
                topic: Some(pipeline.topic_of(r.stream).to_owned()),
                ..DlqSource::default()
            };
            // In the demo the world's clock is the simulated one.
            let t0 = Instant::now();
            pipeline.process(
                r.stream,
                &r.value,
                source,
                Some(sim_now),
                r.ts,
                &mut produced,
            );
            let took = t0.elapsed();
            if i % 32 == 0 {
                per_record_ns.saturating_record(took.as_nanos() as u64);
            }
            match r.stream {
                crate::core::model::Stream::Patrol => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.value) {
                        console.position(&v);
                    }
                }
                crate::core::model::Stream::Weather => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.value) {
                        console.station(v);
                    }
                }
                crate::core::model::Stream::Ack => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.value) {
                        console.ack(StreamPos::ack(0, ack_seq), v);
                        ack_seq += 1;
                    }
                }
                _ => {}
            }
            feed_console(&console, &alerts_topic, &mut alert_seq, &mut produced);
            for alert in pipeline.take_alerts() {
                // The record "arrives" when the demo hands it over, so event→alert is the
                // time from then until the alert is out.
                metrics.observe_latency(alert.kind, took.as_secs_f64());
                sim.on_alert(&alert);
                if opts.print_alerts && sim_now > opts.start_ms {
                    writeln!(out, "{}", alert_line(&alert, offset))?;
                }
                all_alerts.push(alert);
            }
        }
        records += batch.len() as u64;
        busy += t.elapsed();
        batch.clear();
        if sim_now <= opts.start_ms {
            if last_progress.elapsed() > Duration::from_secs(2) {
                writeln!(out, "  warming up: {} ...", format_rfc3339(sim_now, offset))?;
                last_progress = Instant::now();
            }
            continue;
        }
        dispatch_before.get_or_insert_with(|| pipeline.engine().dispatch_stats().clone());
        let started = *scored_started.get_or_insert_with(Instant::now);
        if let Some(f) = factor {
            let due =
                Duration::from_secs_f64(((sim_now - opts.start_ms) as f64 / 1000.0 / f).max(0.0));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let engine_stats = pipeline.engine().stats();
    metrics.update_engine(&engine_stats, pipeline.engine().dispatch_stats());
    let dispatch = report::since(
        pipeline.engine().dispatch_stats(),
        &dispatch_before.unwrap_or_default(),
    );
    let report = DemoReport::build(
        sim.truth(),
        &all_alerts,
        &engine_stats,
        &dispatch,
        records,
        busy,
        &per_record_ns,
    );
    write!(out, "{}", report.render())?;
    if !opts.linger.is_zero() {
        writeln!(
            out,
            "serving /metrics on {addr} for {} s more",
            opts.linger.as_secs()
        )?;
        out.flush()?;
        std::thread::sleep(opts.linger);
    }
    readiness.set(false, "demo finished");
    Ok(report)
}

/// Records the pages sent, waiting for the demo's loop.
#[derive(Default)]
struct DemoOutbox(std::sync::Mutex<Vec<(crate::core::model::Stream, String, serde_json::Value)>>);

impl DemoOutbox {
    fn take(&self, into: &mut Vec<(crate::core::model::Stream, String, serde_json::Value)>) {
        if let Ok(mut q) = self.0.lock() {
            into.append(&mut q);
        }
    }
}

impl Outbox for DemoOutbox {
    fn send(
        &self,
        stream: crate::core::model::Stream,
        key: String,
        value: serde_json::Value,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        let r = match self.0.lock() {
            Ok(mut q) => {
                q.push((stream, key, value));
                Ok(())
            }
            Err(_) => Err(anyhow::anyhow!("the demo has stopped")),
        };
        Box::pin(async move { r })
    }
}

/// The demo's sign-ins, made up for the run and printed.
struct DemoLogin {
    operator: String,
    password: String,
    unit_id: String,
    token: String,
}

fn demo_accounts(units: &[crate::sim::PatrolUnitTruth]) -> (console::auth::Accounts, DemoLogin) {
    let mut accounts = console::auth::Accounts::default();
    let password = console::auth::new_secret();
    accounts.add_operator("demo", &password);
    let mut first = None;
    for u in units {
        let token = console::auth::new_secret();
        accounts.add_unit(&u.unit_id, &token);
        first.get_or_insert((u.unit_id.clone(), token));
    }
    let (unit_id, token) = first.unwrap_or_default();
    (
        accounts,
        DemoLogin {
            operator: "demo".into(),
            password,
            unit_id,
            token,
        },
    )
}

/// The road network for the console's map: the configured file as it is.
fn roads_geojson_of(settings: &Settings) -> Vec<u8> {
    std::fs::read(&settings.roads.file)
        .unwrap_or_else(|_| br#"{"type":"FeatureCollection","features":[]}"#.to_vec())
}

/// Hands the alert documents just produced to the console, numbered in order, and
/// clears `produced`.
fn feed_console(
    console: &Console,
    alerts_topic: &str,
    seq: &mut i64,
    produced: &mut Vec<Produced>,
) {
    for p in produced.drain(..) {
        if p.topic != alerts_topic {
            continue;
        }
        if let Ok(v) = serde_json::from_slice(&p.payload) {
            console.alert(
                StreamPos {
                    partition: 0,
                    offset: *seq,
                },
                v,
            );
            *seq += 1;
        }
    }
}

/// One readable line per alert: time, status, kind, severity, place, unit.
fn alert_line(a: &Alert, offset: UtcOffset) -> String {
    let time = format_rfc3339(a.event_ts.ms.ms(), offset);
    let clock = time.get(11..19).unwrap_or(&time);
    let day = time.get(5..10).unwrap_or("");
    let place = match (
        &a.location.road_id,
        &a.location.direction,
        &a.location.stake,
    ) {
        (Some(r), Some(d), Some(s)) => format!("{r} {d} {s}"),
        _ => format!("{:.4},{:.4}", a.location.lon, a.location.lat),
    };
    let unit = match (&a.dispatch, a.status) {
        (Some(d), _) => format!("→ {} (eta {} s, attempt {})", d.unit_id, d.eta_s, d.attempt),
        (None, AlertStatus::Escalated) => "→ command center (no unit)".to_owned(),
        (None, _) => String::new(),
    };
    format!(
        "{day} {clock}  {:<10} {:<28} {:<8} {:<22} {unit}",
        a.status.as_str(),
        format!("{}/{}", a.kind.as_str(), a.subtype),
        a.severity.as_str(),
        place,
    )
}

pub fn human_duration(ms: i64) -> String {
    let s = ms / 1000;
    match (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// Parses a simulated duration the way humantime does: `90m`, `24h`, `2d`, `1h 30m`.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let d = humantime::parse_duration(s.trim()).ok()?;
    i64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("24h"), Some(86_400_000));
        assert_eq!(parse_duration_ms("90m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("2d"), Some(172_800_000));
        assert_eq!(parse_duration_ms("45s"), Some(45_000));
        assert_eq!(parse_duration_ms("1h 30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("soon"), None);
        assert_eq!(parse_duration_ms("12q"), None);
        assert_eq!(human_duration(86_400_000), "1 d");
        assert_eq!(human_duration(5_400_000), "1 h 30 min");
        assert_eq!(Speed::parse("max"), Some(Speed::Max));
        assert_eq!(Speed::parse("0"), None);
    }
}
