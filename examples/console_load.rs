//! Load tool for the console's live events (issue #15's target: with 50 connected pages
//! and 200 alert documents a second, every page receives every document within 200 ms
//! p99). An in-process console on the shipped network, fed documents at a steady rate
//! as the Kafka feed would; N real SSE clients over TCP, each signed in as an operator,
//! measure the time from feeding a document to reading it. Bounded in count and time,
//! loopback only.
//!
//! cargo run --release --example console_load -- [--clients 50] [--rate 200] [--seconds 30]
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roadwatch::core::model::Stream;
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use roadwatch::io::console::auth::Accounts;
use roadwatch::io::console::picture::StreamPos;
use roadwatch::io::console::{serve, Console, ConsoleParts, Outbox};
use serde_json::{json, Value};

const ROADS: &[u8] = include_bytes!("../config/roads/bijie.geojson");

struct Nowhere;

impl Outbox for Nowhere {
    fn send(
        &self,
        _: Stream,
        _: String,
        _: Value,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let clients = arg("--clients", 50) as usize;
    let rate = arg("--rate", 200);
    let seconds = arg("--seconds", 30);
    let network = Arc::new(RoadNetwork::from_geojson(ROADS, &LoadOptions::default())?);
    let mut accounts = Accounts::default();
    accounts.add_operator("load", "load");
    let console = Console::new(ConsoleParts {
        accounts,
        session_secret: "load".into(),
        session_ttl_ms: 3_600_000,
        login_max_failures: 1_000,
        outbox: Arc::new(Nowhere),
        roads_geojson: ROADS.to_vec(),
        network,
        dispatch: roadwatch::config::defaults().engine.dispatch,
        metrics: None,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let addr = rt.block_on(serve("127.0.0.1:0".parse()?, console.clone()))?;
    let base = format!("http://{addr}");
    let started = Instant::now();
    // Feeding time of each document, by sequence number (the clients look it up).
    let fed: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let total = (rate * seconds) as usize;
    let mut handles = Vec::new();
    for _ in 0..clients {
        let base = base.clone();
        let fed = fed.clone();
        handles.push(std::thread::spawn(move || -> anyhow::Result<Vec<f64>> {
            let login = ureq::post(&format!("{base}/api/login"))
                .send_string(r#"{"user":"load","password":"load"}"#)?;
            let cookie = login
                .header("set-cookie")
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            let resp = ureq::get(&format!("{base}/api/events"))
                .set("Cookie", &cookie)
                .timeout(Duration::from_secs(seconds + 30))
                .call()?;
            let mut lat = Vec::with_capacity(total);
            let mut event = String::new();
            for line in BufReader::new(resp.into_reader()).lines() {
                let line = line?;
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    if event == "alert" {
                        let v: Value = serde_json::from_str(d.trim())?;
                        let seq = v["details"]["seq"].as_u64().unwrap_or(0) as usize;
                        let at = fed.lock().unwrap()[seq];
                        lat.push(at.elapsed().as_secs_f64() * 1000.0);
                        if lat.len() == total {
                            break;
                        }
                    }
                }
            }
            Ok(lat)
        }));
    }
    // Every client connected and past its (empty) picture before the feed starts.
    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    for seq in 0..total {
        let due = t0 + Duration::from_secs_f64(seq as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // 500 open alerts, each updated in turn: documents of the size the engine makes.
        let doc = json!({
            "alert_id": format!("ped-G76-up-{}-load", seq % 500), "kind": "pedestrian",
            "subtype": "pedestrian", "severity": "critical",
            "status": if seq < 500 { "new" } else { "update" },
            "event_ts": "2026-11-28T21:15:30.120+08:00", "emitted_ts": "2026-11-28T21:15:30.131+08:00",
            "location": {"lon": 106.0117, "lat": 27.0449, "road_id": "G76", "road_name": "厦蓉高速",
                         "direction": "up", "stake": "K1154+953", "stake_m": 1154953, "structure": "tunnel"},
            "summary": "G76 厦蓉高速 上行 K1154+953 隧道内发现行人",
            "details": {"seq": seq, "camera_ids": ["cam-G76-0042"], "detections": 3, "max_confidence": 0.91},
            "dispatch": {"unit_id": "P-02", "eta_s": 240, "route_m": 4000, "attempt": 1},
            "source_event_ids": ["cam-G76-0042-000193"],
        });
        fed.lock().unwrap().push(Instant::now());
        console.alert(
            StreamPos {
                partition: 0,
                offset: seq as i64,
            },
            doc,
        );
    }
    let mut all = Vec::new();
    let mut short = 0;
    for h in handles {
        let lat = h.join().expect("client thread")?;
        if lat.len() < total {
            short += 1;
        }
        all.extend(lat);
    }
    // Microseconds, three significant digits.
    let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("valid precision");
    for ms in &all {
        h.saturating_record((ms * 1000.0).round() as u64);
    }
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    println!(
        "console_load: {clients} clients, {rate} documents/s for {seconds} s ({total} documents, {} deliveries); \
         feed to page p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; clients that missed documents: {short}; wall {:.1} s",
        all.len(),
        q(0.5),
        q(0.99),
        h.max() as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
