//! What the fuzz targets share: each target feeds libFuzzer's bytes to one of
//! roadwatch's parsers, and whatever parses is used the way the service uses it, so a
//! panic further on is found too. A target fails only by panicking (or by a sanitizer
//! report): bad input must end as an `Err`, never as a crash.
use std::sync::{Arc, OnceLock};

use roadwatch::config::Settings;
use roadwatch::core::model::{decode_record, DecodeContext, EventTime, Stream};
use roadwatch::core::roads::{Direction, LoadOptions, RoadNetwork};

/// Decodes `data` as a record of `stream`, with and without a reference clock (the
/// future-skew check is its own branch), and checks what the service relies on.
pub fn decode(stream: Stream, data: &[u8]) {
    let live = DecodeContext {
        now_ms: Some(1_764_300_000_000),
        max_future_skew_ms: 300_000,
        limits: roadwatch::core::settings::InputLimits::DEFAULT,
    };
    for ctx in [live, DecodeContext::without_clock()] {
        match decode_record(stream, data, &ctx) {
            Ok(record) => {
                // Everything a decoded record holds can be shown (logs, the debugger).
                let _ = format!("{record:?}");
            }
            Err(reject) => {
                // The reason goes to the dead-letter topic and a metric label: it must
                // exist and be one of the contract's names.
                assert!(!reject.reason.as_str().is_empty());
                let _ = reject.to_string();
            }
        }
    }
}

/// The shipped Bijie network, loaded once per process.
pub fn bijie() -> Arc<RoadNetwork> {
    static NET: OnceLock<Arc<RoadNetwork>> = OnceLock::new();
    NET.get_or_init(|| {
        let bytes = include_bytes!("../../config/roads/bijie.geojson");
        Arc::new(RoadNetwork::from_geojson(bytes, &LoadOptions::default()).expect("bijie loads"))
    })
    .clone()
}

/// The defaults, with a fixed pseudonym key (no random key per process to announce).
pub fn settings() -> Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            roadwatch::config::load(
                None,
                [(
                    "ROADWATCH__PRIVACY__PLATE_KEY".to_owned(),
                    "66757a7a2d6b65792d66757a7a2d6b6579".to_owned(),
                )],
            )
            .expect("defaults load")
        })
        .clone()
}

/// Loads `data` as a road file and, if it loads, asks it what the engine asks.
pub fn load_roads(data: &[u8], strict: bool) {
    let opts = LoadOptions {
        strict,
        ..LoadOptions::default()
    };
    let Ok(net) = RoadNetwork::from_geojson(data, &opts) else {
        return;
    };
    let _ = net.stats();
    // Points on and beside the network's own lines, so that queries find something.
    let probes: Vec<(f64, f64)> = net
        .lines()
        .iter()
        .take(8)
        .flat_map(|l| {
            let p = net.point_at(l.id(), l.stake_start_m());
            p.into_iter()
                .flat_map(|(lon, lat)| [(lon, lat), (lon + 0.0005, lat - 0.0005)])
        })
        .chain([(105.0, 27.0), (0.0, 0.0), (f64::NAN, 1.0)])
        .collect();
    let t = EventTime::from_ms(0);
    for (lon, lat) in probes {
        if let Some(p) = net.locate(lon, lat, t) {
            let _ = net.next_interchange(&p.road_id, p.direction, p.stake_m, true);
            let _ = net.next_service_area(&p.road_id, p.direction, p.stake_m, false);
            let _ = net.distance_along(&p.road_id, p.direction, p.stake_m, p.stake_m + 500.0);
            let _ = net.stretch(&p.road_id, p.stake_m, 5000.0);
            let _ = net.opposite(p.line, p.stake_m);
            let _ = net.position_at_stake(p.line, p.stake_m, t);
        }
        let _ = net.locate_within(lon, lat, t, 10_000.0);
        let _ = net.zones_at(lon, lat, t);
    }
    for line in net.lines().iter().take(8) {
        let _ = net.carriageway_at(line.road_id(), Direction::Up, line.stake_end_m());
        let _ = net.next_interchange(line.road_id(), line.direction(), line.stake_end_m(), true);
    }
}
