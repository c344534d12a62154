//! Road geometry performance (issue 3): `locate` on a network of ≥ 50,000
//! segments (target ≥ 1,000,000 locates/s on one core) and loading 100,000
//! segments (target < 1 s). Figures go in docs/PERFORMANCE.md.
//!
//! `cargo bench --bench locate`
//!
//! The synthetic network: parallel divided expressways around 27°N (Bijie's
//! latitude), each gently winding, two carriageways 30 m apart, ~200 m
//! segments, with service areas, work zones and tunnel polygons along them.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use roadwatch::core::model::EventTime;
use roadwatch::core::roads::{LoadOptions, RoadNetwork};

mod common;
use common::{road_lat, synthetic_network, Lcg, BASE_LAT, BASE_LON, ROAD_SPACING_DEG, SEGMENT_DEG};

type Points = Vec<(f64, f64)>;

/// Points within ~100 m of the roads (the common case: detections on or
/// beside the carriageway) and uniformly over the whole area (mostly misses).
fn queries(roads: usize, segments_per_line: usize, n: usize) -> (Points, Points) {
    let mut rng = Lcg(42);
    let length_deg = segments_per_line as f64 * SEGMENT_DEG;
    let near = (0..n)
        .map(|_| {
            let r = (rng.next() * roads as f64) as usize;
            let x = rng.next() * length_deg;
            let offset = (rng.next() - 0.3) * 0.0015;
            (BASE_LON + x, road_lat(r, x) + offset)
        })
        .collect();
    let anywhere = (0..n)
        .map(|_| {
            (
                BASE_LON + rng.next() * length_deg,
                BASE_LAT - 0.01 + rng.next() * (roads as f64 * ROAD_SPACING_DEG + 0.02),
            )
        })
        .collect();
    (near, anywhere)
}

fn bench_locate(c: &mut Criterion) {
    // 50 roads × 2 carriageways × 500 segments = 50,000 segments.
    let (roads, per_line) = (50, 500);
    let bytes = synthetic_network(roads, per_line);
    let net = RoadNetwork::from_geojson(&bytes, &LoadOptions::default())
        .expect("synthetic network loads");
    assert_eq!(net.segment_count(), roads * 2 * per_line);
    let at_ms = 1_790_000_000_000; // inside the work zones' window
    let (near, anywhere) = queries(roads, per_line, 10_000);
    let hits = near
        .iter()
        .filter(|q| net.locate(q.0, q.1, EventTime::from_ms(at_ms)).is_some())
        .count();
    let zoned = near
        .iter()
        .filter(|q| {
            net.locate(q.0, q.1, EventTime::from_ms(at_ms))
                .is_some_and(|p| p.zone.is_some())
        })
        .count();
    eprintln!(
        "network: {} segments, {} zones; near-road queries: {hits}/10000 located, {zoned} in a zone",
        net.segment_count(),
        net.zones().len()
    );

    let mut group = c.benchmark_group("locate_50k_segments");
    group.throughput(Throughput::Elements(near.len() as u64));
    group.bench_function("near_road", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for &(lon, lat) in &near {
                found += usize::from(
                    net.locate(black_box(lon), black_box(lat), EventTime::from_ms(at_ms))
                        .is_some(),
                );
            }
            found
        })
    });
    group.bench_function("anywhere", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for &(lon, lat) in &anywhere {
                found += usize::from(
                    net.locate(black_box(lon), black_box(lat), EventTime::from_ms(at_ms))
                        .is_some(),
                );
            }
            found
        })
    });
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    // 100 roads × 2 × 500 = 100,000 segments.
    let bytes = synthetic_network(100, 500);
    eprintln!("100k-segment file: {:.1} MB", bytes.len() as f64 / 1e6);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("100k_segments", |b| {
        b.iter_batched(
            || (),
            |()| {
                RoadNetwork::from_geojson(black_box(&bytes), &LoadOptions::default())
                    .expect("loads")
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_locate, bench_load);
criterion_main!(benches);
