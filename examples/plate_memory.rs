//! Memory of the ride-hailing state over weeks of a city's plate reads (issue #18,
//! docs/PERFORMANCE.md "Ride-hailing memory"): how many bytes each tracked plate costs,
//! what the process holds in all, and that it stops growing once the 7-day window is full.
//!
//! ```text
//! cargo run --release --example plate_memory -- [--days 14] [--commuters 200000]
//!     [--operators 5000] [--occasional 120000] [--max-plates 2000000]
//! ```
//!
//! The stream is synthetic, on the shipped Bijie network (readers every 1.5 km of every
//! line long enough for a trip of four reads), fed to `RideHailingDetector` in event-time order as the engine does:
//! - commuters drive to work and back on weekdays (two trips of four reads);
//! - operators drive six trips of four reads every day;
//! - occasional drivers make one trip of two reads, each plate on one day only: the worst
//!   case for memory, since every one is kept for the whole window.
//!
//! After each day it prints the tracked plates, the detector's own estimate of its state
//! (`approx_state_bytes`, the figure DETECTION.md's formula gives per plate) and the
//! process's resident size from /proc/self/statm, against the resident size before the
//! first read (the network, the allocator and the day's schedule buffer).
use std::fmt::Write as _;

use clap::Parser;
use roadwatch::core::detect::ride_hailing::RideHailingDetector;
use roadwatch::core::model::{EventTime, PlateColor, PlateRead, VehicleClass};
use roadwatch::core::pseudonym::PseudonymKey;
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use roadwatch::core::settings::EngineSettings;

// As in the binary: the allocator decides what resident size the state costs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value_t = 14)]
    days: u32,
    #[arg(long, default_value_t = 200_000)]
    commuters: u32,
    #[arg(long, default_value_t = 5_000)]
    operators: u32,
    /// New plates per day, each seen on that day only.
    #[arg(long, default_value_t = 120_000)]
    occasional: u32,
    /// `ride_hailing.max_tracked_plates` for the run (the product's default unless set).
    #[arg(long)]
    max_plates: Option<usize>,
}

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// Monday 2026-11-02 00:00 in Guizhou (UTC+8).
const T0: i64 = 1_793_548_800_000;
const SITE_EVERY_M: f64 = 1_500.0;
/// Reads per trip at most; a line needs this many readers to carry trips.
const MAX_TRIP_READS: usize = 4;
const READ_EVERY: i64 = 3 * MIN;

/// A cheap, fixed mixing of ids into schedules (no RNG state to keep in sync).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Reader positions: every 3 km along every carriageway, grouped by line so that a trip
/// passes consecutive readers in the direction of travel.
fn reader_lines(roads: &RoadNetwork) -> Vec<Vec<(f64, f64)>> {
    roads
        .lines()
        .iter()
        .map(|l| {
            let n = (l.length_m() / SITE_EVERY_M) as usize;
            (0..n)
                .map(|i| l.point_at_along(i as f64 * SITE_EVERY_M + 100.0))
                .collect::<Vec<_>>()
        })
        .filter(|sites| sites.len() >= MAX_TRIP_READS)
        .collect()
}

/// An ordinary plate for an id: `贵`, a letter, five letters or digits (GA 36's alphabet).
fn plate_of(id: u32, out: &mut String) {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const ALNUM: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    out.clear();
    out.push('贵');
    let mut x = id as u64;
    out.push(char::from(LETTERS[(x % 24) as usize]));
    x /= 24;
    for _ in 0..5 {
        out.push(char::from(ALNUM[(x % 34) as usize]));
        x /= 34;
    }
}

/// One trip of `reads` reads starting at `start`, on a line and from a reader chosen by `seed`.
fn trip(
    lines: &[Vec<(f64, f64)>],
    plate: u32,
    seed: u64,
    start: i64,
    reads: usize,
    out: &mut Vec<(i64, u32, u32, u32)>,
) {
    let line = (seed % lines.len() as u64) as usize;
    let sites = lines[line].len();
    let first = ((seed >> 20) % (sites - reads + 1) as u64) as usize;
    for k in 0..reads {
        out.push((
            start + k as i64 * READ_EVERY,
            plate,
            line as u32,
            (first + k) as u32,
        ));
    }
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The largest resident size so far (`VmHWM`): the map's growth holds its old and new
/// table at once for a moment.
fn peak_resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() {
    let cli = Cli::parse();
    let roads = RoadNetwork::from_geojson(
        include_bytes!("../config/roads/bijie.geojson"),
        &LoadOptions::default(),
    )
    .expect("the shipped network loads");
    let lines = reader_lines(&roads);
    let mut settings = EngineSettings::documented_defaults(PseudonymKey::from_bytes(&[7; 16]));
    if let Some(max) = cli.max_plates {
        settings.ride_hailing.max_tracked_plates = max;
    }
    let max_plates = settings.ride_hailing.max_tracked_plates;
    let mut det = RideHailingDetector::new(settings.ride_hailing.clone(), settings.output.clone());

    let per_day =
        cli.commuters as usize * 8 + cli.operators as usize * 24 + cli.occasional as usize * 2;
    let mut day_reads: Vec<(i64, u32, u32, u32)> = Vec::with_capacity(per_day);
    // Touch the buffer once so that its pages count in the baseline, not in day 1.
    day_reads.resize(per_day, (0, 0, 0, 0));
    day_reads.clear();
    let baseline = resident_bytes();
    println!(
        "readers: {} lines, {} sites; max_tracked_plates {max_plates}; baseline resident {:.1} MiB",
        lines.len(),
        lines.iter().map(Vec::len).sum::<usize>(),
        mib(baseline)
    );
    println!("| day | reads | tracked plates | evicted | state (approx) | B/plate | resident | resident − baseline | B/plate resident |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");

    let mut read = PlateRead {
        event_id: "memory-probe".into(),
        reader_id: "reader".into(),
        ts: EventTime::from_ms(T0),
        plate: String::with_capacity(16),
        plate_color: PlateColor::Blue,
        vehicle_class: VehicleClass::Car,
        lon: 0.0,
        lat: 0.0,
        confidence: Some(0.99),
    };
    let mut alerts = Vec::new();
    let mut pattern_alerts = 0usize;
    let occasional_base = cli.commuters + cli.operators;
    for day in 0..cli.days {
        let base = T0 + i64::from(day) * DAY;
        day_reads.clear();
        let weekday = day % 7 < 5;
        if weekday {
            for c in 0..cli.commuters {
                let h = mix(u64::from(c));
                let out = base + 7 * HOUR + (h % 90) as i64 * MIN;
                let back = base + 17 * HOUR + 30 * MIN + ((h >> 8) % 90) as i64 * MIN;
                trip(&lines, c, h, out, 4, &mut day_reads);
                trip(&lines, c, h.rotate_left(17), back, 4, &mut day_reads);
            }
        }
        for o in 0..cli.operators {
            let id = cli.commuters + o;
            for t in 0..6u64 {
                let h = mix(u64::from(id) << 8 | t);
                let start = base + 7 * HOUR + t as i64 * 2 * HOUR + (h % 30) as i64 * MIN;
                trip(&lines, id, h, start, 4, &mut day_reads);
            }
        }
        for i in 0..cli.occasional {
            let id = occasional_base + day * cli.occasional + i;
            let h = mix(u64::from(id));
            let start = base + 6 * HOUR + (h % (16 * 60)) as i64 * MIN;
            trip(&lines, id, h, start, 2, &mut day_reads);
        }
        day_reads.sort_unstable();
        for &(ts, plate, line, site) in &day_reads {
            let (lon, lat) = lines[line as usize][site as usize];
            read.ts = EventTime::from_ms(ts);
            plate_of(plate, &mut read.plate);
            read.lon = lon;
            read.lat = lat;
            det.on_time(read.ts);
            det.on_plate_read(&read, &roads, &mut alerts);
            pattern_alerts += alerts.len();
            alerts.clear();
        }
        let tracked = det.tracked_plates();
        let state = det.approx_state_bytes();
        let resident = resident_bytes();
        let mut row = String::new();
        let _ = write!(
            row,
            "| {} | {} | {} | {} | {:.1} MiB | {} | {:.1} MiB | {:.1} MiB | {} |",
            day + 1,
            day_reads.len(),
            tracked,
            det.evicted_plates(),
            mib(state),
            state / tracked.max(1),
            mib(resident),
            mib(resident.saturating_sub(baseline)),
            resident.saturating_sub(baseline) / tracked.max(1),
        );
        println!("{row}");
    }
    println!(
        "peak resident {:.1} MiB; pattern alerts raised: {pattern_alerts}",
        mib(peak_resident_bytes())
    );
}
