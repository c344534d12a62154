//! Issue #19, "Bounded resources": seven simulated days of the whole region (every
//! camera, ANPR gantry, weather station and patrol unit of the simulator's Bijie, at its
//! default traffic: about 800,000 records a day) through the pipeline `replay` runs, with
//! the resident memory of this process read at the end of every simulated day.
//!
//! The history that grows with time is the ride-hailing detector's plate window
//! (`ride_hailing.window_days`). It is set to 2 days here, so that the window is full
//! from day 3 on and five days show whether memory keeps growing once it is. The
//! assertion has generous slack (allocator pages, the simulator's own state, a noisy
//! machine): from the end of day 3 to the end of day 7 the resident memory may grow by
//! at most 25 % + 16 MiB, about 25 MiB at the 34 MiB measured: a leak of 8 bytes per
//! record (3.2 million records in those four days) would fail it. docs/SECURITY.md has
//! the figures of a run.
use std::sync::Arc;

use roadwatch::core::engine::Engine;
use roadwatch::core::model::DlqSource;
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use roadwatch::io::output::wall_clock_ms;
use roadwatch::io::pipeline::Pipeline;
use roadwatch::sim::{SimConfig, Simulator};

const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 7;
const WINDOW_DAYS: i64 = 2;

/// Resident set size of this process, in KiB (Linux's /proc).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn seven_days_at_city_scale_memory_stops_growing_once_the_window_is_full() {
    let network: Arc<RoadNetwork> = Arc::new(
        roadwatch::io::roads_cmd::load_network_file(
            std::path::Path::new("config/roads/bijie.geojson"),
            &LoadOptions {
                max_snap_m: 100.0,
                strict: false,
            },
        )
        .unwrap(),
    );
    let mut settings = roadwatch::config::defaults();
    settings.engine.ride_hailing.window_ms = WINDOW_DAYS * DAY_MS;
    let cfg = SimConfig {
        seed: 19,
        duration_ms: DAYS * DAY_MS,
        warmup_ms: 0,
        ..SimConfig::default()
    };
    let start = cfg.start_ms;
    let mut sim = Simulator::new(cfg, network.clone());
    let engine = Engine::new(settings.engine.clone(), network);
    let mut pipeline = Pipeline::new(&settings, engine, None);

    let mut batch = Vec::new();
    let mut out = Vec::new();
    let mut records = 0u64;
    let mut day_end = start + DAY_MS;
    // (day, records so far, RSS KiB, tracked plates, open incidents, open assignments)
    let mut days: Vec<(i64, u64, u64, usize, usize, usize)> = Vec::new();
    let mut sample = |day: i64, records: u64, pipeline: &Pipeline| {
        let s = pipeline.engine().stats();
        let row = (
            day,
            records,
            rss_kib(),
            s.tracked_plates,
            s.open_incidents,
            s.open_assignments,
        );
        eprintln!(
            "day {}: {} records, RSS {} KiB, {} plates, {} incidents, {} assignments",
            row.0, row.1, row.2, row.3, row.4, row.5
        );
        days.push(row);
    };
    while sim.next_batch(&mut batch) {
        for r in batch.drain(..) {
            while r.ts >= day_end {
                sample((day_end - start) / DAY_MS, records, &pipeline);
                day_end += DAY_MS;
            }
            records += 1;
            // The wall clock is the reference for "too far in the future", as in replay
            // (the simulated days lie in the past).
            let now = wall_clock_ms();
            pipeline.process(
                r.stream,
                &r.value,
                DlqSource::default(),
                Some(now),
                now,
                &mut out,
            );
            out.clear();
        }
    }
    sample(DAYS, records, &pipeline);

    assert!(
        records > 5_000_000,
        "city scale: {records} records in seven days"
    );
    let at = |day: i64| days.iter().find(|d| d.0 == day).map(|d| d.2).unwrap();
    let full = at(WINDOW_DAYS + 1);
    let last = at(DAYS);
    eprintln!(
        "RSS: end of day {} {} KiB, end of day {DAYS} {} KiB ({:+.1} %)",
        WINDOW_DAYS + 1,
        full,
        last,
        (last as f64 / full as f64 - 1.0) * 100.0
    );
    assert!(
        last <= full + full / 4 + 16 * 1024,
        "resident memory kept growing after the window was full: {days:?}"
    );
    // The state the window bounds stopped growing too (the plates of one-off trips
    // leave it; a day's plates come and go).
    let plates = |day: i64| days.iter().find(|d| d.0 == day).map(|d| d.3).unwrap();
    assert!(
        plates(DAYS) <= plates(WINDOW_DAYS + 1) * 5 / 4,
        "tracked plates kept growing: {days:?}"
    );
}
