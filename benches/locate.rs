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
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use serde_json::{json, Value};

const BASE_LON: f64 = 105.0;
const BASE_LAT: f64 = 27.0;
/// Degrees between roads (≈ 2.2 km).
const ROAD_SPACING_DEG: f64 = 0.02;
/// Degrees of longitude per segment (≈ 200 m at 27°N).
const SEGMENT_DEG: f64 = 0.002;
/// The down carriageway's offset north of the up one (≈ 30 m).
const CARRIAGEWAY_GAP_DEG: f64 = 0.00027;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Centre-line latitude of road `r` at longitude offset `x` degrees: a
/// gentle meander so segments are not all axis-aligned.
fn road_lat(r: usize, x: f64) -> f64 {
    BASE_LAT + r as f64 * ROAD_SPACING_DEG + 0.003 * (x * 40.0 + r as f64).sin()
}

/// GeoJSON bytes of `roads` divided roads of `segments_per_line` segments
/// per carriageway, with zones every ~10 km.
fn synthetic_network(roads: usize, segments_per_line: usize) -> Vec<u8> {
    let mut features: Vec<Value> = Vec::new();
    let length_deg = segments_per_line as f64 * SEGMENT_DEG;
    for r in 0..roads {
        let road_id = format!("S{r}");
        let up: Vec<[f64; 2]> = (0..=segments_per_line)
            .map(|i| {
                let x = i as f64 * SEGMENT_DEG;
                [BASE_LON + x, road_lat(r, x)]
            })
            .collect();
        let down: Vec<[f64; 2]> = up
            .iter()
            .rev()
            .map(|p| [p[0], p[1] + CARRIAGEWAY_GAP_DEG])
            .collect();
        let stake_end = segments_per_line as f64 * 200.0;
        for (dir, coords, s0, s1) in [("up", up, 0.0, stake_end), ("down", down, stake_end, 0.0)] {
            features.push(json!({"type": "Feature",
                "properties": {"kind": "carriageway", "road_id": road_id, "name": road_id, "direction": dir,
                               "stake_start_m": s0, "stake_end_m": s1},
                "geometry": {"type": "LineString", "coordinates": coords}}));
        }
        let mut x = 0.05;
        let mut k = 0;
        while x < length_deg {
            let lat = road_lat(r, x);
            let kind = ["service_area", "work_zone", "tunnel", "toll_plaza"][k % 4];
            let ring = [
                [BASE_LON + x, lat - 0.002],
                [BASE_LON + x + 0.004, lat - 0.002],
                [BASE_LON + x + 0.004, lat + 0.002],
                [BASE_LON + x, lat + 0.002],
                [BASE_LON + x, lat - 0.002],
            ];
            features.push(json!({"type": "Feature",
                "properties": {"kind": kind, "name": format!("{kind} {r}-{k}"),
                               "active_from": "2026-01-01T00:00:00+08:00", "active_to": "2027-01-01T00:00:00+08:00"},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}));
            x += 0.1;
            k += 1;
        }
    }
    serde_json::to_vec(&json!({"type": "FeatureCollection", "features": features}))
        .expect("serializable")
}

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
        .filter(|q| net.locate(q.0, q.1, at_ms).is_some())
        .count();
    let zoned = near
        .iter()
        .filter(|q| {
            net.locate(q.0, q.1, at_ms)
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
                found += usize::from(net.locate(black_box(lon), black_box(lat), at_ms).is_some());
            }
            found
        })
    });
    group.bench_function("anywhere", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for &(lon, lat) in &anywhere {
                found += usize::from(net.locate(black_box(lon), black_box(lat), at_ms).is_some());
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
