//! R-trees over line segments and zone polygons.
//!
//! Segments, not whole lines: a whole carriageway's bounding box covers
//! kilometres of countryside, so an envelope query on lines returns every
//! line nearby and then walks all their vertices. A segment's box is tight,
//! so a query box of ±`max_snap_m` returns a handful of candidates whose exact
//! distance is cheap (see `locate.rs`).
//!
//! Each entry carries what locate needs about its segment inline — end
//! points, metres along the line at both ends, half width, structure — so
//! the query and the answer touch no other memory but the winning line's
//! header and stake anchors. (Profiling showed locate bound by cache misses
//! on the line's separate arrays before this.)

use std::ops::ControlFlow;

use rstar::{RStarInsertionStrategy, RTree, RTreeObject, RTreeParams, AABB};

use super::geodesy::Scale;

use super::line::Line;
use super::types::Structure;
use super::zones::Zone;

/// One segment of one line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SegmentEntry {
    pub a: [f64; 2],
    pub b: [f64; 2],
    /// Metres along the line at `a` and `b`.
    pub along_a: f64,
    pub along_b: f64,
    pub line: u32,
    pub segment: u32,
    pub half_width_m: f32,
    pub structure: Option<Structure>,
    /// Some zone's bounding box comes within the snap distance of this
    /// segment; when not, locate skips the zone tree.
    pub zone_nearby: bool,
}

impl RTreeObject for SegmentEntry {
    type Envelope = AABB<[f64; 2]>;

    #[inline]
    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners(self.a, self.b)
    }
}

/// Node size for the segment tree. rstar's default (6) makes deep trees; a
/// wider node keeps a 50,000-segment tree four levels deep, which measured
/// faster for the small-box queries locate makes (docs/PERFORMANCE.md).
pub(crate) struct SegmentParams;

impl RTreeParams for SegmentParams {
    const MIN_SIZE: usize = 4;
    const MAX_SIZE: usize = 12;
    const REINSERTION_COUNT: usize = 3;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

pub(crate) type SegmentTree = RTree<SegmentEntry, SegmentParams>;

/// Builds the segment tree of `lines`, skipping MultiLineString gaps.
/// `line` in each entry is the position in `lines`; `zone_nearby(a, b)`
/// sets each segment's zone flag.
pub(crate) fn build_segment_tree(
    lines: &[Line],
    zone_nearby: impl Fn([f64; 2], [f64; 2]) -> bool,
) -> SegmentTree {
    let mut entries = Vec::with_capacity(lines.iter().map(|l| l.segments.len()).sum());
    for (line_index, line) in lines.iter().enumerate() {
        for (i, pair) in line.coords.windows(2).enumerate() {
            if line.segments[i].gap {
                continue;
            }
            let attr = line.segments[i];
            entries.push(SegmentEntry {
                a: pair[0],
                b: pair[1],
                along_a: line.along[i],
                along_b: line.along[i + 1],
                line: line_index as u32,
                segment: i as u32,
                half_width_m: attr.half_width_m,
                structure: attr.structure,
                zone_nearby: zone_nearby(pair[0], pair[1]),
            });
        }
    }
    RTree::bulk_load_with_params(entries)
}

/// A zone's bounding box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ZoneEntry {
    pub bbox: [f64; 4],
    pub zone: u32,
}

impl RTreeObject for ZoneEntry {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners([self.bbox[0], self.bbox[1]], [self.bbox[2], self.bbox[3]])
    }
}

/// Whether any zone's bounding box comes within `margin_m` of the segment
/// `a`–`b` (its bounding box grown by the margin, in degrees at the
/// latitude farther from the equator, where a metre is more degrees of
/// longitude).
pub(crate) fn zone_within(
    zone_tree: &RTree<ZoneEntry>,
    a: [f64; 2],
    b: [f64; 2],
    margin_m: f64,
) -> bool {
    if zone_tree.size() == 0 {
        return false;
    }
    let (dlon, dlat) = Scale::at(a[1].abs().max(b[1].abs())).degrees_for(margin_m);
    let query = AABB::from_corners(
        [a[0].min(b[0]) - dlon, a[1].min(b[1]) - dlat],
        [a[0].max(b[0]) + dlon, a[1].max(b[1]) + dlat],
    );
    zone_tree
        .locate_in_envelope_intersecting_int(&query, |_| ControlFlow::Break(()))
        .is_break()
}

pub(crate) fn build_zone_tree(zones: &[Zone]) -> RTree<ZoneEntry> {
    RTree::bulk_load(
        zones
            .iter()
            .enumerate()
            .map(|(i, z)| ZoneEntry {
                bbox: z.bbox,
                zone: i as u32,
            })
            .collect(),
    )
}
