//! Engine throughput (issue 4) and decoding (issue 8): a realistic mixed stream from the simulator (cameras,
//! plate reads, weather, patrol positions; dirty records included) on the shipped Bijie
//! network, through the whole replay path — decode + locate + rules + dispatch +
//! serialising the alerts — against roadwatch's own decode-and-validate alone and plain
//! `serde_json::Value` decoding of the same bytes.
//! Targets: ≥ 400,000 records/s on one core; ≥ 0.5 of decode-only throughput.
//!
//! `cargo bench --bench engine`
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput};
use roadwatch::core::detect::ride_hailing::PlateList;
use roadwatch::core::engine::Engine;
use roadwatch::core::model::{decode_record, DecodeContext, DlqSource};
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use roadwatch::io::pipeline::Pipeline;
use roadwatch::sim::{SimConfig, SimRecord, Simulator};

// The binary's allocator (src/main.rs), so the bench measures what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Six simulated hours (07:00–13:00, the morning peak and midday) of the default scale.
fn stream(roads: &Arc<RoadNetwork>) -> (Vec<SimRecord>, Vec<String>, Vec<String>) {
    let cfg = SimConfig {
        seed: 7,
        start_ms: 1_795_388_400_000, // 2026-11-23T07:00:00+08:00
        duration_ms: 6 * 3_600_000,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(cfg, roads.clone());
    let records = sim.run_to_end();
    let t = sim.truth();
    (
        records,
        t.watchlist_plates.clone(),
        t.whitelist_plates.clone(),
    )
}

fn main() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/roads/bijie.geojson"
    ))
    .expect("the shipped network");
    let roads =
        Arc::new(RoadNetwork::from_geojson(&bytes, &LoadOptions::default()).expect("loads"));
    let settings = roadwatch::config::defaults();
    let (records, watch, white) = stream(&roads);
    let n = records.len();
    let mut by_stream = std::collections::BTreeMap::new();
    for r in &records {
        *by_stream.entry(r.stream.as_str()).or_insert(0usize) += 1;
    }
    eprintln!("stream: {n} records {by_stream:?}");

    let fresh = || {
        let mut engine = Engine::new(settings.engine.clone(), roads.clone());
        engine.set_plate_lists(
            PlateList::parse(&watch.join("\n")).0,
            PlateList::parse(&white.join("\n")).0,
        );
        Pipeline::new(&settings, engine, None)
    };
    let now = records.last().map_or(0, |r| r.ts);
    // 10 samples by default (each is a whole stream); `-- --sample-size N` overrides.
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let mut group = c.benchmark_group("engine_mixed_stream");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("replay_path", |b| {
        b.iter_batched(
            fresh,
            |mut pipeline| {
                let mut out = Vec::with_capacity(64);
                let mut produced = 0usize;
                for r in &records {
                    pipeline.process(
                        r.stream,
                        &r.value,
                        DlqSource::default(),
                        Some(now),
                        r.ts,
                        &mut out,
                    );
                    produced += out.len();
                    out.clear();
                }
                black_box(produced)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("roadwatch_decode", |b| {
        let ctx = DecodeContext {
            now_ms: Some(now),
            max_future_skew_ms: 300_000,
            limits: roadwatch::core::settings::InputLimits::DEFAULT,
        };
        b.iter(|| {
            let mut ok = 0usize;
            for r in &records {
                ok += usize::from(decode_record(r.stream, black_box(&r.value), &ctx).is_ok());
            }
            ok
        })
    });
    group.bench_function("serde_json_value_decode", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for r in &records {
                ok += usize::from(
                    serde_json::from_slice::<serde_json::Value>(black_box(&r.value)).is_ok(),
                );
            }
            ok
        })
    });
    group.finish();
    c.final_summary();
}
