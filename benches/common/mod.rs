//! The synthetic road network shared by the benches: parallel divided expressways
//! around 27°N (Bijie's latitude), each gently winding, two carriageways 30 m apart,
//! ~200 m segments, interchanges every ~5 km, and service areas, work zones and tunnel
//! polygons along them. Deterministic.
#![allow(dead_code)]

use serde_json::{json, Value};

pub const BASE_LON: f64 = 105.0;
pub const BASE_LAT: f64 = 27.0;
/// Degrees between roads (≈ 2.2 km).
pub const ROAD_SPACING_DEG: f64 = 0.02;
/// Degrees of longitude per segment (≈ 200 m at 27°N).
pub const SEGMENT_DEG: f64 = 0.002;
/// The down carriageway's offset north of the up one (≈ 30 m).
pub const CARRIAGEWAY_GAP_DEG: f64 = 0.00027;

pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Centre-line latitude of road `r` at longitude offset `x` degrees: a
/// gentle meander so segments are not all axis-aligned.
pub fn road_lat(r: usize, x: f64) -> f64 {
    BASE_LAT + r as f64 * ROAD_SPACING_DEG + 0.003 * (x * 40.0 + r as f64).sin()
}

/// GeoJSON bytes of `roads` divided roads of `segments_per_line` segments
/// per carriageway, with zones every ~10 km.
pub fn synthetic_network(roads: usize, segments_per_line: usize) -> Vec<u8> {
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
        // Interchanges every 25 segments (~5 km): dispatch turns there.
        for i in (10..segments_per_line).step_by(25) {
            let x = i as f64 * SEGMENT_DEG;
            features.push(json!({"type": "Feature",
                "properties": {"kind": "interchange", "road_id": road_id, "name": format!("IC {r}-{i}"),
                               "stake_m": i as f64 * 200.0},
                "geometry": {"type": "Point", "coordinates": [BASE_LON + x, road_lat(r, x) + CARRIAGEWAY_GAP_DEG / 2.0]}}));
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
