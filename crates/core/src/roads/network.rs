//! The loaded road network: its parts, how they are tied together, and the
//! questions detectors, dispatch and the simulator ask about roads by stake.
//!
//! Map-matching (`locate`) lives in `locate.rs`; loading in `load.rs`.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use rstar::RTree;

use super::geodesy::distance_m;
use super::index::{build_segment_tree, build_zone_tree, zone_within, SegmentTree, ZoneEntry};
use super::issues::{Issues, LoadIssue, LoadOptions};
use super::line::Line;
use super::locate::nearest;
use super::spans::RoadSpans;
use super::types::{Direction, LineId, LineKind, ZoneId, ZoneKind};
use super::zones::{Zone, ZoneDraft, ZoneRoad};

/// How far a service area or toll plaza's centre may be from its road.
/// Service areas sit beside the carriageway, often a few hundred metres off.
pub const ZONE_ROAD_SNAP_M: f64 = 1000.0;
/// How far a weather station may be from the road it watches. Stations stand
/// on hills and verges; beyond 1 km it is not watching this road.
pub const STATION_ROAD_SNAP_M: f64 = 1000.0;
/// `opposite`/`carriageway_at` accept a line ending this many stake metres
/// short of the stake asked for: OSM chains of one carriageway meet with
/// small stake gaps and overlaps where they split.
pub const CARRIAGEWAY_STAKE_TOLERANCE_M: f64 = 200.0;

/// An exit, junction or U-turn point on a road.
#[derive(Debug, Clone, PartialEq)]
pub struct Interchange {
    pub road_id: Arc<str>,
    pub name: Arc<str>,
    pub stake_m: f64,
    pub lon: f64,
    pub lat: f64,
    /// The carriageway it was mapped on (OSM junction nodes sit on one
    /// carriageway), or `Both` for native interchanges.
    pub direction: Direction,
    /// Exit number (OSM `ref` of a `motorway_junction`).
    pub exit_ref: Option<Arc<str>>,
    /// Index of the feature in the file.
    pub feature: usize,
}

/// A road weather station.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    pub station_id: Arc<str>,
    pub name: Arc<str>,
    pub lon: f64,
    pub lat: f64,
    /// The carriageway point nearest the station, within
    /// [`STATION_ROAD_SNAP_M`].
    pub road: Option<StationRoad>,
    pub feature: usize,
}

/// Where a station sits on the network.
#[derive(Debug, Clone, PartialEq)]
pub struct StationRoad {
    pub road_id: Arc<str>,
    pub line: LineId,
    pub stake_m: f64,
    pub offset_m: f64,
}

/// One road (`road_id`) and everything on it.
#[derive(Debug, Clone)]
pub struct Road {
    pub(crate) road_id: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) lines: Vec<LineId>,
    /// Indices into `RoadNetwork::interchanges`, sorted by stake.
    pub(crate) interchanges: Vec<usize>,
    /// Zones attached to this road, sorted by stake.
    pub(crate) zones: Vec<ZoneId>,
    /// Its carriageways' stake ranges, for `distance_along`.
    pub(crate) spans: RoadSpans,
}

impl Road {
    pub fn road_id(&self) -> &str {
        &self.road_id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Every line of the road (carriageways and ramps), by id.
    pub fn lines(&self) -> &[LineId] {
        &self.lines
    }
}

/// A stake range on one carriageway, from [`RoadNetwork::stretch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    pub line: LineId,
    pub direction: Direction,
    /// Lower stake of the range (whatever the travel direction).
    pub stake_from_m: f64,
    pub stake_to_m: f64,
}

/// The road network. Immutable once loaded; share it with `Arc`.
#[derive(Debug)]
pub struct RoadNetwork {
    pub(crate) lines: Vec<Line>,
    pub(crate) segment_tree: SegmentTree,
    pub(crate) zones: Vec<Zone>,
    pub(crate) zone_tree: RTree<ZoneEntry>,
    pub(crate) interchanges: Vec<Interchange>,
    pub(crate) stations: Vec<Station>,
    pub(crate) roads: Vec<Road>,
    pub(crate) road_index: HashMap<Arc<str>, usize>,
    pub(crate) max_snap_m: f64,
    pub(crate) issues: Vec<LoadIssue>,
}

/// Everything the loaders produced, before indexing.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub lines: Vec<Line>,
    pub zones: Vec<ZoneDraft>,
    pub interchanges: Vec<Interchange>,
    pub stations: Vec<Station>,
}

impl RoadNetwork {
    /// Indexes the loaders' output and ties zones, stations and interchanges
    /// to their roads.
    pub(crate) fn assemble(parts: Parts, opts: &LoadOptions, mut issues: Issues) -> RoadNetwork {
        let mut lines = parts.lines;
        for (i, line) in lines.iter_mut().enumerate() {
            line.id = LineId(i as u32);
        }
        // Zones first: each segment records whether a zone is near it, so
        // locate can skip the zone tree for the many that have none.
        let mut zones: Vec<Zone> = parts
            .zones
            .into_iter()
            .enumerate()
            .map(|(i, d)| d.into_zone(ZoneId(i as u32)))
            .collect();
        let zone_tree = build_zone_tree(&zones);
        let zone_margin_m = opts.max_snap_m * 1.1 + 1.0;
        let segment_tree =
            build_segment_tree(&lines, |a, b| zone_within(&zone_tree, a, b, zone_margin_m));

        let mut roads: Vec<Road> = Vec::new();
        let mut road_index: HashMap<Arc<str>, usize> = HashMap::new();
        for line in &lines {
            let slot = *road_index.entry(line.road_id.clone()).or_insert_with(|| {
                roads.push(Road {
                    road_id: line.road_id.clone(),
                    name: line.name.clone(),
                    lines: Vec::new(),
                    interchanges: Vec::new(),
                    zones: Vec::new(),
                    spans: RoadSpans::default(),
                });
                roads.len() - 1
            });
            // A carriageway's name beats a ramp's for naming the road.
            if line.kind == LineKind::Carriageway
                && roads[slot]
                    .lines
                    .iter()
                    .all(|l| lines[l.index()].kind != LineKind::Carriageway)
            {
                roads[slot].name = line.name.clone();
            }
            roads[slot].lines.push(line.id);
        }
        for road in &mut roads {
            road.spans = RoadSpans::build(&lines, &road.lines);
        }

        let is_carriageway = |i: u32| lines[i as usize].kind == LineKind::Carriageway;

        for zone in &mut zones {
            if zone.kind.structure().is_some() {
                continue;
            }
            let [lon, lat] = zone.centre();
            let declared = zone.declared_road.clone();
            let hit = nearest(&segment_tree, lon, lat, ZONE_ROAD_SNAP_M, |i| {
                is_carriageway(i)
                    && declared
                        .as_ref()
                        .map_or(true, |d| *d == lines[i as usize].road_id)
            });
            if let Some(hit) = hit {
                let line = &lines[hit.line as usize];
                zone.road = Some(ZoneRoad {
                    road_id: line.road_id.clone(),
                    stake_m: line.profile.stake_at(hit.along_m),
                });
            } else if zone.kind == ZoneKind::ServiceArea || zone.kind == ZoneKind::TollPlaza {
                issues.note(
                    Some(zone.feature),
                    format!(
                        "{} {:?} is more than {ZONE_ROAD_SNAP_M} m from any carriageway",
                        zone.kind, &*zone.name
                    ),
                );
            }
        }
        for zone in &zones {
            if let Some(r) = &zone.road {
                if let Some(&slot) = road_index.get(&r.road_id) {
                    roads[slot].zones.push(zone.id);
                }
            }
        }
        for road in &mut roads {
            road.zones.sort_by(|a, b| {
                let stake = |z: &ZoneId| zones[z.index()].road.as_ref().map_or(0.0, |r| r.stake_m);
                stake(a).total_cmp(&stake(b)).then(a.cmp(b))
            });
        }

        let mut interchanges = parts.interchanges;
        interchanges.sort_by(|a, b| {
            a.road_id
                .cmp(&b.road_id)
                .then(a.stake_m.total_cmp(&b.stake_m))
                .then(a.feature.cmp(&b.feature))
        });
        for (i, ic) in interchanges.iter().enumerate() {
            match road_index.get(&ic.road_id) {
                Some(&slot) => roads[slot].interchanges.push(i),
                None => issues.note(
                    Some(ic.feature),
                    format!(
                        "interchange {:?} is on road {:?}, which has no lines",
                        &*ic.name, &*ic.road_id
                    ),
                ),
            }
        }

        let mut stations = parts.stations;
        for station in &mut stations {
            let hit = nearest(
                &segment_tree,
                station.lon,
                station.lat,
                STATION_ROAD_SNAP_M,
                is_carriageway,
            );
            station.road = hit.map(|hit| {
                let line = &lines[hit.line as usize];
                StationRoad {
                    road_id: line.road_id.clone(),
                    line: line.id,
                    stake_m: line.profile.stake_at(hit.along_m),
                    offset_m: hit.dist_m,
                }
            });
            if station.road.is_none() {
                issues.note(
                    Some(station.feature),
                    format!("weather station {:?} is more than {STATION_ROAD_SNAP_M} m from any carriageway", &*station.station_id),
                );
            }
        }

        if lines.is_empty() {
            issues.note(
                None,
                "the file holds no road lines: every locate will answer null",
            );
        }

        RoadNetwork {
            lines,
            segment_tree,
            zones,
            zone_tree,
            interchanges,
            stations,
            roads,
            road_index,
            max_snap_m: opts.max_snap_m,
            issues: issues.into_vec(),
        }
    }

    /// Snap distance `locate` uses, metres.
    pub fn max_snap_m(&self) -> f64 {
        self.max_snap_m
    }

    /// What the load found wrong (skipped features) or worth noting.
    pub fn issues(&self) -> &[LoadIssue] {
        &self.issues
    }

    /// All lines; `lines()[id.index()]` is line `id`.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn line(&self, id: LineId) -> Option<&Line> {
        self.lines.get(id.index())
    }

    /// Number of indexed segments.
    pub fn segment_count(&self) -> usize {
        self.segment_tree.size()
    }

    /// Roads in the order their first line appears.
    pub fn roads(&self) -> &[Road] {
        &self.roads
    }

    pub fn road(&self, road_id: &str) -> Option<&Road> {
        self.road_index.get(road_id).map(|&i| &self.roads[i])
    }

    /// All interchanges, sorted by road then stake.
    pub fn interchanges(&self) -> &[Interchange] {
        &self.interchanges
    }

    /// Interchanges of one road, sorted by stake.
    pub fn road_interchanges<'a>(
        &'a self,
        road_id: &str,
    ) -> impl Iterator<Item = &'a Interchange> + 'a {
        let list: &'a [usize] = self
            .road(road_id)
            .map_or(&[], |r| r.interchanges.as_slice());
        list.iter().map(move |&i| &self.interchanges[i])
    }

    /// All polygons: zones and structure areas; `zones()[id.index()]` is zone `id`.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    pub fn zone(&self, id: ZoneId) -> Option<&Zone> {
        self.zones.get(id.index())
    }

    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    pub fn station(&self, station_id: &str) -> Option<&Station> {
        self.stations.iter().find(|s| &*s.station_id == station_id)
    }

    /// Carriageways (not ramps) of a road in a direction. `Both` lines serve
    /// either direction, so they are included for `Up` and `Down`.
    pub fn carriageways<'a>(
        &'a self,
        road_id: &str,
        direction: Direction,
    ) -> impl Iterator<Item = &'a Line> + 'a {
        let ids: &'a [LineId] = self.road(road_id).map_or(&[], |r| r.lines.as_slice());
        ids.iter()
            .map(move |id| &self.lines[id.index()])
            .filter(move |l| {
                l.kind == LineKind::Carriageway
                    && (l.direction == direction || l.direction == Direction::Both)
            })
    }

    /// The carriageway of `road_id` in `direction` that reaches `stake_m`
    /// (or ends within [`CARRIAGEWAY_STAKE_TOLERANCE_M`] of it). A line of
    /// the exact direction beats a `Both` line; then the closest; then the
    /// lower id.
    pub fn carriageway_at(
        &self,
        road_id: &str,
        direction: Direction,
        stake_m: f64,
    ) -> Option<LineId> {
        if !stake_m.is_finite() {
            return None;
        }
        self.carriageways(road_id, direction)
            .filter_map(|l| {
                let (lo, hi) = l.stake_range();
                let miss = (lo - stake_m).max(stake_m - hi).max(0.0);
                (miss <= CARRIAGEWAY_STAKE_TOLERANCE_M).then_some((
                    l.direction != direction,
                    miss,
                    l.id,
                ))
            })
            .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)))
            .map(|(_, _, id)| id)
    }

    /// The other carriageway of the same road at the same stake (for a
    /// patrol that must turn, or a weather stretch on both sides). `None` for
    /// `Both` lines and single-carriageway roads.
    pub fn opposite(&self, line: LineId, stake_m: f64) -> Option<LineId> {
        let l = self.line(line)?;
        let other = l.direction.opposite()?;
        let found = self.carriageway_at(&l.road_id, other, stake_m)?;
        (self.lines[found.index()].direction == other).then_some(found)
    }

    /// The point at `stake_m` on a line, `(lon, lat)`; `None` when the line
    /// does not reach that stake. The simulator drives vehicles with it.
    pub fn point_at(&self, line: LineId, stake_m: f64) -> Option<(f64, f64)> {
        self.line(line)?.point_at_stake(stake_m)
    }

    /// The nearest interchange ahead of (`ahead = true`) or behind `stake_m`
    /// for traffic travelling in `direction` on `road_id`. Ahead on `up`
    /// (and `both`) means growing stakes, on `down` shrinking ones. An
    /// interchange exactly at `stake_m` counts both ways (you can still take
    /// that exit). Interchanges on either carriageway count: a junction
    /// serves both directions.
    pub fn next_interchange(
        &self,
        road_id: &str,
        direction: Direction,
        stake_m: f64,
        ahead: bool,
    ) -> Option<&Interchange> {
        let road = self.road(road_id)?;
        let stakes: Vec<f64> = road
            .interchanges
            .iter()
            .map(|&i| self.interchanges[i].stake_m)
            .collect();
        let pick = next_by_stake(&stakes, direction, stake_m, ahead)?;
        Some(&self.interchanges[road.interchanges[pick]])
    }

    /// Like [`Self::next_interchange`], for zones of a kind tied to the road
    /// (e.g. the next service area, where an intercept can happen).
    pub fn next_zone(
        &self,
        road_id: &str,
        direction: Direction,
        stake_m: f64,
        kind: ZoneKind,
        ahead: bool,
    ) -> Option<&Zone> {
        let road = self.road(road_id)?;
        let candidates: Vec<(&Zone, f64)> = road
            .zones
            .iter()
            .map(|z| &self.zones[z.index()])
            .filter(|z| z.kind == kind)
            .filter_map(|z| z.road.as_ref().map(|r| (z, r.stake_m)))
            .collect();
        let stakes: Vec<f64> = candidates.iter().map(|c| c.1).collect();
        let pick = next_by_stake(&stakes, direction, stake_m, ahead)?;
        Some(candidates[pick].0)
    }

    /// The next service area ahead/behind; see [`Self::next_zone`].
    pub fn next_service_area(
        &self,
        road_id: &str,
        direction: Direction,
        stake_m: f64,
        ahead: bool,
    ) -> Option<&Zone> {
        self.next_zone(road_id, direction, stake_m, ZoneKind::ServiceArea, ahead)
    }

    /// Metres driven along `road_id`'s carriageway in `direction` between two
    /// stakes (order does not matter), measured along the geometry, so a
    /// chain break counts at its real length, not its stake jump. Between
    /// two lines that do not meet in stake (a chain break, or a gap in an
    /// OSM export) the straight distance from one's end to the other's start
    /// counts; beyond every line, stake metres count one for one. `None` for
    /// an unknown road or one with no carriageway in that direction.
    pub fn distance_along(
        &self,
        road_id: &str,
        direction: Direction,
        from_stake_m: f64,
        to_stake_m: f64,
    ) -> Option<f64> {
        if !from_stake_m.is_finite() || !to_stake_m.is_finite() {
            return None;
        }
        let spans = self.road(road_id)?.spans.get(direction);
        if spans.is_empty() {
            return None;
        }
        let (lo, hi) = (from_stake_m.min(to_stake_m), from_stake_m.max(to_stake_m));
        // Each line's share of [lo, hi]: stake from, stake to, the line.
        let mut pieces: Vec<(f64, f64, &Line)> = spans
            .overlapping(lo, hi)
            .map(|(a, b, id)| (a, b, &self.lines[id.index()]))
            .collect();
        pieces.sort_by(|x, y| {
            x.0.total_cmp(&y.0)
                .then(x.1.total_cmp(&y.1))
                .then(x.2.id.cmp(&y.2.id))
        });
        let along = |l: &Line, stake: f64| l.profile.along_at(stake).clamp(0.0, l.length_m());
        let mut covered_to = lo;
        // Where the road so far ends: the line and the stake on it.
        let mut last: Option<(&Line, f64)> = None;
        let mut total = 0.0;
        for (a, b, line) in pieces {
            if b <= covered_to {
                continue;
            }
            // Overlapping lines (chains of a split carriageway): only the
            // part beyond what is already counted.
            let start = a.max(covered_to);
            if start > covered_to {
                total += match last {
                    Some((prev, stake)) => {
                        let (x0, y0) = prev.point_at_along(along(prev, stake));
                        let (x1, y1) = line.point_at_along(along(line, start));
                        distance_m([x0, y0], [x1, y1])
                    }
                    None => start - covered_to,
                };
            }
            total += (along(line, b) - along(line, start)).abs();
            covered_to = b;
            last = Some((line, b));
        }
        total += hi - covered_to;
        Some(total)
    }

    /// For each carriageway of `road_id` (both directions), the part of
    /// `stake_m ± d_m` it covers: where a weather warning applies. Sorted by
    /// direction, then stake.
    pub fn stretch(&self, road_id: &str, stake_m: f64, d_m: f64) -> Vec<Stretch> {
        let Some(road) = self.road(road_id) else {
            return Vec::new();
        };
        if !stake_m.is_finite() || !d_m.is_finite() || d_m < 0.0 {
            return Vec::new();
        }
        let (lo, hi) = (stake_m - d_m, stake_m + d_m);
        let mut out: Vec<Stretch> = road
            .lines
            .iter()
            .map(|id| &self.lines[id.index()])
            .filter(|l| l.kind == LineKind::Carriageway)
            .filter_map(|l| {
                let (s0, s1) = l.stake_range();
                let (a, b) = (s0.max(lo), s1.min(hi));
                (a <= b).then_some(Stretch {
                    line: l.id,
                    direction: l.direction,
                    stake_from_m: a,
                    stake_to_m: b,
                })
            })
            .collect();
        out.sort_by(|x, y| {
            x.direction
                .cmp(&y.direction)
                .then(x.stake_from_m.total_cmp(&y.stake_from_m))
        });
        out
    }
}

/// Index of the nearest stake ahead/behind in `sorted` (ascending).
fn next_by_stake(sorted: &[f64], direction: Direction, stake_m: f64, ahead: bool) -> Option<usize> {
    if !stake_m.is_finite() {
        return None;
    }
    let increasing = direction.ahead_is_increasing() == ahead;
    if increasing {
        let i = sorted.partition_point(|&s| s < stake_m);
        (i < sorted.len()).then_some(i)
    } else {
        let i = sorted.partition_point(|&s| s <= stake_m);
        i.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_by_stake_respects_direction() {
        let s = [100.0, 200.0, 300.0];
        assert_eq!(next_by_stake(&s, Direction::Up, 150.0, true), Some(1));
        assert_eq!(next_by_stake(&s, Direction::Up, 150.0, false), Some(0));
        assert_eq!(next_by_stake(&s, Direction::Down, 150.0, true), Some(0));
        assert_eq!(next_by_stake(&s, Direction::Down, 150.0, false), Some(1));
        assert_eq!(next_by_stake(&s, Direction::Up, 200.0, true), Some(1));
        assert_eq!(next_by_stake(&s, Direction::Up, 200.0, false), Some(1));
        assert_eq!(next_by_stake(&s, Direction::Up, 301.0, true), None);
        assert_eq!(next_by_stake(&s, Direction::Down, 99.0, true), None);
        assert_eq!(next_by_stake(&[], Direction::Both, 0.0, true), None);
        assert_eq!(next_by_stake(&s, Direction::Up, f64::NAN, true), None);
    }
}
