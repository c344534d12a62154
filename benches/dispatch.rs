//! Flat-dispatch decision latency (issue 5): one decision with 2,000 patrol units on a
//! 100,000-segment network; target p99 < 50 µs. Criterion gives the median of batches;
//! the percentile report times 20,000 single decisions with `Instant` and sorts them.
//!
//! `cargo bench --bench dispatch`
use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use roadwatch::core::dispatch::{Dispatcher, OnRoad, Place};
use roadwatch::core::model::{EventTime, PatrolPosition, UnitStatus};
use roadwatch::core::roads::{LoadOptions, RoadNetwork};

mod common;
use common::{road_lat, synthetic_network, Lcg, BASE_LON, CARRIAGEWAY_GAP_DEG, SEGMENT_DEG};

const ROADS: usize = 100;
const PER_LINE: usize = 500;
const UNITS: usize = 2_000;
const NOW: EventTime = EventTime::from_ms(1_790_000_000_000);

fn random_point(rng: &mut Lcg) -> (f64, f64) {
    let r = (rng.next() * ROADS as f64) as usize;
    let x = rng.next() * PER_LINE as f64 * SEGMENT_DEG;
    let gap = if rng.next() < 0.5 {
        0.0
    } else {
        CARRIAGEWAY_GAP_DEG
    };
    (BASE_LON + x, road_lat(r, x) + gap)
}

fn setup() -> (Arc<RoadNetwork>, Dispatcher, Vec<Place>) {
    let bytes = synthetic_network(ROADS, PER_LINE);
    let net = Arc::new(RoadNetwork::from_geojson(&bytes, &LoadOptions::default()).expect("loads"));
    assert_eq!(net.segment_count(), ROADS * 2 * PER_LINE);
    let settings = roadwatch::config::defaults().engine;
    let mut d = Dispatcher::new(settings.dispatch, settings.output, &net);
    let mut rng = Lcg(7);
    for i in 0..UNITS {
        let (lon, lat) = random_point(&mut rng);
        d.on_position(
            &PatrolPosition {
                unit_id: format!("P-{i:04}"),
                ts: NOW - 10_000,
                lon,
                lat,
                status: UnitStatus::Available,
                speed_kmh: None,
            },
            &net,
        );
    }
    let targets = (0..10_000)
        .map(|_| {
            let (lon, lat) = random_point(&mut rng);
            let road = net.locate(lon, lat, NOW).map(|p| OnRoad {
                road_id: p.road_id,
                direction: p.direction,
                stake_m: p.stake_m,
            });
            Place { lon, lat, road }
        })
        .collect();
    (net, d, targets)
}

fn percentile_report(net: &RoadNetwork, d: &Dispatcher, targets: &[Place]) {
    let none = BTreeSet::new();
    let mut times: Vec<f64> = Vec::with_capacity(20_000);
    let mut chosen = 0usize;
    for round in 0..2 {
        for t in targets {
            let start = Instant::now();
            let c = d.choose(black_box(t), &none, NOW, net);
            let el = start.elapsed().as_secs_f64() * 1e6;
            if round == 1 {
                times.push(el);
                chosen += usize::from(c.is_some());
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    eprintln!(
        "dispatch decision, {UNITS} units, {} segments, {} decisions ({chosen} assigned): \
         p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        net.segment_count(),
        times.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        times[times.len() - 1],
    );
}

fn main() {
    let (net, d, targets) = setup();
    percentile_report(&net, &d, &targets);
    let mut c = Criterion::default().configure_from_args();
    let none = BTreeSet::new();
    let mut group = c.benchmark_group("dispatch_2000_units_100k_segments");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("choose", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for t in &targets[..1_000] {
                n += usize::from(d.choose(black_box(t), &none, NOW, &net).is_some());
            }
            n
        })
    });
    group.finish();
    c.final_summary();
}
