//! Counts that tell an operator whether a road file loaded as intended
//! (`roadwatch roads stats`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::issues::IssueLevel;
use super::network::RoadNetwork;
use super::types::{Direction, LineKind, ZoneKind};

/// Lines of one road in one direction and kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineGroupStats {
    pub direction: Direction,
    pub kind: LineKind,
    pub lines: usize,
    pub segments: usize,
    pub length_km: f64,
    pub stake_min_m: f64,
    pub stake_max_m: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoadStats {
    pub road_id: String,
    pub name: String,
    pub groups: Vec<LineGroupStats>,
    pub interchanges: usize,
    pub service_areas: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkStats {
    pub roads: Vec<RoadStats>,
    pub lines: usize,
    pub segments: usize,
    pub length_km: f64,
    pub interchanges: usize,
    /// Zones by kind (`service_area`, `toll_plaza`, `work_zone`, `tunnel`, `bridge`).
    pub zones: BTreeMap<String, usize>,
    pub stations: usize,
    /// Stations farther than 1 km from every carriageway.
    pub stations_off_road: usize,
    /// Lines by where their stakes came from.
    pub stake_sources: BTreeMap<String, usize>,
    pub issue_errors: usize,
    pub issue_notes: usize,
}

impl RoadNetwork {
    pub fn stats(&self) -> NetworkStats {
        let roads = self
            .roads
            .iter()
            .map(|road| {
                let mut groups: BTreeMap<(LineKind, Direction), LineGroupStats> = BTreeMap::new();
                for id in &road.lines {
                    let line = &self.lines[id.index()];
                    let (lo, hi) = line.stake_range();
                    let g = groups
                        .entry((line.kind, line.direction))
                        .or_insert(LineGroupStats {
                            direction: line.direction,
                            kind: line.kind,
                            lines: 0,
                            segments: 0,
                            length_km: 0.0,
                            stake_min_m: f64::INFINITY,
                            stake_max_m: f64::NEG_INFINITY,
                        });
                    g.lines += 1;
                    g.segments += line.segment_count();
                    g.length_km += line.length_m() / 1000.0;
                    g.stake_min_m = g.stake_min_m.min(lo);
                    g.stake_max_m = g.stake_max_m.max(hi);
                }
                RoadStats {
                    road_id: road.road_id.to_string(),
                    name: road.name.to_string(),
                    groups: groups.into_values().collect(),
                    interchanges: road.interchanges.len(),
                    service_areas: road
                        .zones
                        .iter()
                        .filter(|z| self.zones[z.index()].kind == ZoneKind::ServiceArea)
                        .count(),
                }
            })
            .collect();
        let mut zones = BTreeMap::new();
        for z in &self.zones {
            *zones.entry(z.kind.as_str().to_string()).or_insert(0) += 1;
        }
        let mut stake_sources = BTreeMap::new();
        for l in &self.lines {
            *stake_sources
                .entry(l.stake_source.as_str().to_string())
                .or_insert(0) += 1;
        }
        NetworkStats {
            roads,
            lines: self.lines.len(),
            segments: self.segment_count(),
            length_km: self.lines.iter().map(|l| l.length_m()).sum::<f64>() / 1000.0,
            interchanges: self.interchanges.len(),
            zones,
            stations: self.stations.len(),
            stations_off_road: self.stations.iter().filter(|s| s.road.is_none()).count(),
            stake_sources,
            issue_errors: self
                .issues
                .iter()
                .filter(|i| i.level == IssueLevel::Error)
                .count(),
            issue_notes: self
                .issues
                .iter()
                .filter(|i| i.level == IssueLevel::Note)
                .count(),
        }
    }
}
