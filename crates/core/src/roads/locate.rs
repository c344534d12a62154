//! Map-matching: where on the road is this point?
//!
//! An envelope query of ±`max_snap_m` on the segment R-tree, then the exact
//! distance to each candidate in the query point's local metric plane
//! (`geodesy.rs`). No nearest-neighbour search over whole lines: the nearest
//! *line* by bounding box is often not the nearest by distance, and a fixed
//! box bounds the work per query.

use std::ops::ControlFlow;
use std::sync::Arc;

use rstar::AABB;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::geodesy::{lerp, project_on_segment, valid_position, Scale};
use super::index::{SegmentEntry, SegmentTree};
use super::line::Line;
use super::network::RoadNetwork;
use super::stake::Stake;
use super::types::{Direction, LineId, LineKind, Structure, ZoneId, ZoneKind};
use super::zones::Zone;
use crate::model::EventTime;

/// A point's place on the road network.
///
/// Serializes to exactly the CONTRACT section 7 object
/// `{"road_id","name","direction","kind","stake_m","stake","offset_m",
/// "on_carriageway","structure","zone"}`; the remaining fields are for
/// in-process callers only.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadPosition {
    pub road_id: Arc<str>,
    /// The road's name (e.g. 厦蓉高速), or its ref when it has none.
    pub name: Arc<str>,
    pub direction: Direction,
    pub kind: LineKind,
    /// Interpolated stake, metres.
    pub stake_m: f64,
    /// The same stake as text, `K1203+450`.
    pub stake: Stake,
    /// Distance from the centre line, metres (never negative).
    pub offset_m: f64,
    /// `offset_m <= width_m / 2` of the segment matched.
    pub on_carriageway: bool,
    /// Tunnel or bridge: from the line's own properties, else from a tunnel
    /// or bridge polygon containing the matched centre-line point.
    pub structure: Option<Structure>,
    /// Service area, toll plaza or work zone (active at the time asked)
    /// containing the point itself; see `ZoneKind::zone_priority` for overlaps.
    pub zone: Option<ZoneKind>,
    /// The line matched.
    pub line: LineId,
    /// Metres along that line's geometry.
    pub along_m: f64,
    /// The matched point on the centre line, `(lon, lat)`.
    pub snapped: (f64, f64),
    /// Which zone `zone` refers to.
    pub zone_id: Option<ZoneId>,
}

/// Decimetres: finer than any position fix, and it keeps the JSON short.
fn round_dm(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Serialize for RoadPosition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RoadPosition", 10)?;
        st.serialize_field("road_id", &*self.road_id)?;
        st.serialize_field("name", &*self.name)?;
        st.serialize_field("direction", &self.direction)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("stake_m", &round_dm(self.stake_m))?;
        st.serialize_field("stake", &self.stake)?;
        st.serialize_field("offset_m", &round_dm(self.offset_m))?;
        st.serialize_field("on_carriageway", &self.on_carriageway)?;
        st.serialize_field("structure", &self.structure)?;
        st.serialize_field("zone", &self.zone)?;
        st.end()
    }
}

/// A segment near a query point, with what locate needs from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    pub line: u32,
    pub segment: u32,
    /// Position along the segment, 0..=1.
    pub t: f64,
    pub dist_m: f64,
    /// Metres along the line at the closest point.
    pub along_m: f64,
    /// The closest point, `[lon, lat]`.
    pub point: [f64; 2],
    pub half_width_m: f32,
    pub structure: Option<Structure>,
    pub zone_nearby: bool,
}

impl Hit {
    fn new(entry: &SegmentEntry, t: f64, dist_m: f64) -> Hit {
        Hit {
            line: entry.line,
            segment: entry.segment,
            t,
            dist_m,
            along_m: entry.along_a + t * (entry.along_b - entry.along_a),
            point: lerp(entry.a, entry.b, t),
            half_width_m: entry.half_width_m,
            structure: entry.structure,
            zone_nearby: entry.zone_nearby,
        }
    }
}

/// Calls `visit` for every segment within `max_m` metres of the point, with
/// its exact distance. Used by locate and by the OSM stake builder.
pub(crate) fn for_each_within(
    tree: &SegmentTree,
    lon: f64,
    lat: f64,
    max_m: f64,
    mut visit: impl FnMut(&SegmentEntry, Hit),
) {
    // A NaN or negative radius finds nothing (and never reaches the tree).
    if !valid_position(lon, lat) || max_m.is_nan() || max_m < 0.0 {
        return;
    }
    let scale = Scale::at(lat);
    let (dlon, dlat) = scale.degrees_for(max_m);
    let query = AABB::from_corners([lon - dlon, lat - dlat], [lon + dlon, lat + dlat]);
    let max2 = max_m * max_m;
    // Internal iteration: rstar walks the tree on the call stack instead of
    // keeping an iterator's heap stack (measurably faster per query).
    let _ = tree.locate_in_envelope_intersecting_int(&query, |entry| {
        let p = project_on_segment([lon, lat], entry.a, entry.b, scale);
        if p.dist2_m2 <= max2 {
            visit(entry, Hit::new(entry, p.t, p.dist2_m2.sqrt()));
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The nearest segment within `max_m` among lines that `accept` lets in.
/// Ties (a point equidistant from two segments, e.g. on a shared vertex) go
/// to the lower line id, then segment, so the answer never depends on the
/// tree's internal order.
pub(crate) fn nearest(
    tree: &SegmentTree,
    lon: f64,
    lat: f64,
    max_m: f64,
    accept: impl Fn(u32) -> bool,
) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    for_each_within(tree, lon, lat, max_m, |_, hit| {
        if !accept(hit.line) {
            return;
        }
        let better = match &best {
            None => true,
            Some(b) => (hit.dist_m, hit.line, hit.segment) < (b.dist_m, b.line, b.segment),
        };
        if better {
            best = Some(hit);
        }
    });
    best
}

impl RoadNetwork {
    /// The nearest road position within the network's `max_snap_m` of
    /// (`lon`, `lat`), or `None`. `at_ms` (epoch milliseconds, event time)
    /// decides which work zones are active.
    pub fn locate(&self, lon: f64, lat: f64, at_ms: EventTime) -> Option<RoadPosition> {
        self.locate_within(lon, lat, at_ms, self.max_snap_m)
    }

    /// [`Self::locate`] with an explicit snap distance, e.g. for a weather
    /// station set back from the road or a patrol car in a lay-by.
    pub fn locate_within(
        &self,
        lon: f64,
        lat: f64,
        at_ms: EventTime,
        max_m: f64,
    ) -> Option<RoadPosition> {
        let hit = nearest(&self.segment_tree, lon, lat, max_m, |_| true)?;
        Some(self.position_from_hit(hit, lon, lat, at_ms))
    }

    /// [`Self::locate_within`] restricted to lines `accept` lets in (by id):
    /// e.g. only carriageways, or only one road.
    pub fn locate_filtered(
        &self,
        lon: f64,
        lat: f64,
        at_ms: EventTime,
        max_m: f64,
        accept: impl Fn(&Line) -> bool,
    ) -> Option<RoadPosition> {
        let hit = nearest(&self.segment_tree, lon, lat, max_m, |i| {
            accept(&self.lines[i as usize])
        })?;
        Some(self.position_from_hit(hit, lon, lat, at_ms))
    }

    /// The position at `stake_m` on a line (on its centre line, offset 0),
    /// or `None` when the line does not reach that stake.
    pub fn position_at_stake(
        &self,
        line: LineId,
        stake_m: f64,
        at_ms: EventTime,
    ) -> Option<RoadPosition> {
        let l = self.lines.get(line.index())?;
        let along = l.along_at_stake(stake_m)?;
        let (lon, lat) = l.point_at_along(along);
        let segment = l.segment_at_along(along);
        let (a0, a1) = (l.along[segment], l.along[segment + 1]);
        let t = if a1 > a0 {
            ((along - a0) / (a1 - a0)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let attr = l.segments[segment];
        let hit = Hit {
            line: line.0,
            segment: segment as u32,
            t,
            dist_m: 0.0,
            along_m: along,
            point: [lon, lat],
            half_width_m: attr.half_width_m,
            structure: attr.structure,
            // Not known without the tree; the full zone search is exact.
            zone_nearby: true,
        };
        Some(self.position_from_hit(hit, lon, lat, at_ms))
    }

    fn position_from_hit(&self, hit: Hit, lon: f64, lat: f64, at_ms: EventTime) -> RoadPosition {
        let line = &self.lines[hit.line as usize];
        let stake_m = line.profile.stake_at(hit.along_m);
        // The segment's flag says whether any zone is near enough to matter
        // at the network's snap distance; beyond it, search anyway.
        let (zone, structure_polygon) = if hit.zone_nearby || hit.dist_m > self.max_snap_m {
            self.polygons_at([lon, lat], hit.point, at_ms)
        } else {
            (None, None)
        };
        let zone = zone.map(|z| &self.zones[z.index()]);
        RoadPosition {
            road_id: line.road_id.clone(),
            name: line.name.clone(),
            direction: line.direction,
            kind: line.kind,
            stake_m,
            stake: Stake(stake_m),
            offset_m: hit.dist_m,
            on_carriageway: hit.dist_m <= f64::from(hit.half_width_m),
            structure: hit.structure.or(structure_polygon),
            zone: zone.map(Zone::kind),
            line: LineId(hit.line),
            along_m: hit.along_m,
            snapped: (hit.point[0], hit.point[1]),
            zone_id: zone.map(Zone::id),
        }
    }

    /// In one pass over the zone tree: the zone containing the query point
    /// (strongest by `zone_priority`, then lowest id) and the structure of
    /// the tunnel/bridge polygon containing the matched centre-line point
    /// (lowest id).
    fn polygons_at(
        &self,
        point: [f64; 2],
        snapped: [f64; 2],
        at_ms: EventTime,
    ) -> (Option<ZoneId>, Option<Structure>) {
        if self.zones.is_empty() {
            return (None, None);
        }
        let mut zone: Option<&Zone> = None;
        let mut structure: Option<(ZoneId, Structure)> = None;
        let query = AABB::from_corners(point, snapped);
        let _ = self
            .zone_tree
            .locate_in_envelope_intersecting_int(&query, |entry| {
                let candidate = &self.zones[entry.zone as usize];
                if !candidate.is_active(at_ms) {
                    return ControlFlow::<()>::Continue(());
                }
                match candidate.kind.structure() {
                    Some(s) => {
                        let better = structure.map_or(true, |(current, _)| candidate.id < current);
                        if better && candidate.contains(snapped[0], snapped[1]) {
                            structure = Some((candidate.id, s));
                        }
                    }
                    None => {
                        let better = match zone {
                            None => true,
                            Some(b) => {
                                (candidate.kind.zone_priority(), candidate.id)
                                    < (b.kind.zone_priority(), b.id)
                            }
                        };
                        if better && candidate.contains(point[0], point[1]) {
                            zone = Some(candidate);
                        }
                    }
                }
                ControlFlow::Continue(())
            });
        (zone.map(Zone::id), structure.map(|(_, s)| s))
    }

    /// The service area, toll plaza or active work zone containing the point
    /// (the strongest by `zone_priority` when several do; lower id on ties).
    pub fn zone_at(&self, lon: f64, lat: f64, at_ms: EventTime) -> Option<&Zone> {
        self.polygons_at([lon, lat], [lon, lat], at_ms)
            .0
            .map(|id| &self.zones[id.index()])
    }

    /// Every zone (structures included) containing the point and active at `at_ms`.
    pub fn zones_at(&self, lon: f64, lat: f64, at_ms: EventTime) -> Vec<&Zone> {
        let mut found: Vec<&Zone> = Vec::new();
        let _ = self.zone_tree.locate_in_envelope_intersecting_int(
            &AABB::from_point([lon, lat]),
            |e| {
                let zone = &self.zones[e.zone as usize];
                if zone.is_active(at_ms) && zone.contains(lon, lat) {
                    found.push(zone);
                }
                ControlFlow::<()>::Continue(())
            },
        );
        found.sort_by_key(|z| z.id);
        found
    }
}
