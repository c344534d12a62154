//! One road line: a carriageway (one direction) or a ramp, with its stakes.

use std::sync::Arc;

use super::geodesy::{distance_m, lerp};
use super::stake::StakeProfile;
use super::types::{Direction, LineId, LineKind, StakeSource, Structure};

/// Per-segment attributes (segment `i` joins vertices `i` and `i + 1`).
///
/// They vary along a line built from several OSM ways (a bridge way between
/// two plain ones), so they live on segments, not on the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentAttr {
    pub structure: Option<Structure>,
    /// Half the paved width: a point within this of the centre line is on
    /// the carriageway.
    pub half_width_m: f32,
    /// The jump between two parts of a MultiLineString: not road, so it is
    /// not indexed (nothing snaps to it). It still counts its straight-line
    /// length along the line, as if the road went straight across: the usual
    /// reason for a gap is a tunnel or bridge missing from the drawing, and
    /// it keeps `along` strictly increasing so stakes can jump at a gap.
    pub gap: bool,
}

/// A polyline with stakes. Built by the loaders, read-only afterwards.
#[derive(Debug, Clone)]
pub struct Line {
    pub(crate) id: LineId,
    pub(crate) road_id: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) direction: Direction,
    pub(crate) kind: LineKind,
    pub(crate) coords: Vec<[f64; 2]>,
    /// Metres along the geometry at each vertex; `along[0] == 0`.
    pub(crate) along: Vec<f64>,
    pub(crate) segments: Vec<SegmentAttr>,
    pub(crate) profile: StakeProfile,
    pub(crate) stake_source: StakeSource,
    /// Indices of the file features this line was built from.
    pub(crate) features: Vec<usize>,
}

/// What a loader hands over to become a [`Line`].
#[derive(Debug, Clone)]
pub(crate) struct LineDraft {
    pub road_id: Arc<str>,
    pub name: Arc<str>,
    pub direction: Direction,
    pub kind: LineKind,
    pub coords: Vec<[f64; 2]>,
    pub segments: Vec<SegmentAttr>,
    pub features: Vec<usize>,
}

impl LineDraft {
    /// Cumulative metres along the geometry (gaps at their straight length).
    pub(crate) fn along(&self) -> Vec<f64> {
        debug_assert_eq!(self.segments.len() + 1, self.coords.len());
        let mut along = Vec::with_capacity(self.coords.len());
        let mut total = 0.0;
        along.push(total);
        for pair in self.coords.windows(2) {
            total += distance_m(pair[0], pair[1]);
            along.push(total);
        }
        along
    }

    pub(crate) fn into_line(
        self,
        along: Vec<f64>,
        profile: StakeProfile,
        stake_source: StakeSource,
    ) -> Line {
        Line {
            id: LineId(u32::MAX),
            road_id: self.road_id,
            name: self.name,
            direction: self.direction,
            kind: self.kind,
            coords: self.coords,
            along,
            segments: self.segments,
            profile,
            stake_source,
            features: self.features,
        }
    }
}

impl Line {
    pub fn id(&self) -> LineId {
        self.id
    }
    pub fn road_id(&self) -> &str {
        &self.road_id
    }
    pub fn road_id_arc(&self) -> &Arc<str> {
        &self.road_id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn direction(&self) -> Direction {
        self.direction
    }
    pub fn kind(&self) -> LineKind {
        self.kind
    }
    /// Vertices as `[lon, lat]`.
    pub fn coords(&self) -> &[[f64; 2]] {
        &self.coords
    }
    /// Metres along the geometry at each vertex.
    pub fn along(&self) -> &[f64] {
        &self.along
    }
    pub fn segments(&self) -> &[SegmentAttr] {
        &self.segments
    }
    pub fn stake_profile(&self) -> &StakeProfile {
        &self.profile
    }
    pub fn stake_source(&self) -> StakeSource {
        self.stake_source
    }
    /// Indices of the file's features this line was built from.
    pub fn features(&self) -> &[usize] {
        &self.features
    }

    /// Length of the geometry in metres (MultiLineString gaps at their
    /// straight-line length).
    pub fn length_m(&self) -> f64 {
        self.along.last().copied().unwrap_or(0.0)
    }

    /// Number of real (indexed) segments.
    pub fn segment_count(&self) -> usize {
        self.segments.iter().filter(|s| !s.gap).count()
    }

    /// Stake at the first vertex.
    pub fn stake_start_m(&self) -> f64 {
        self.profile.stake_at(0.0)
    }

    /// Stake at the last vertex.
    pub fn stake_end_m(&self) -> f64 {
        self.profile.stake_at(self.length_m())
    }

    /// `(lowest, highest)` stake on this line.
    pub fn stake_range(&self) -> (f64, f64) {
        let (a, b) = (self.stake_start_m(), self.stake_end_m());
        (a.min(b), a.max(b))
    }

    /// Whether `stake_m` lies on this line (inclusive).
    pub fn covers_stake(&self, stake_m: f64) -> bool {
        let (lo, hi) = self.stake_range();
        (lo..=hi).contains(&stake_m)
    }

    pub fn stake_at_along(&self, along_m: f64) -> f64 {
        self.profile.stake_at(along_m)
    }

    /// Metres along the geometry at `stake_m`, or `None` off the line.
    pub fn along_at_stake(&self, stake_m: f64) -> Option<f64> {
        if !stake_m.is_finite() || !self.covers_stake(stake_m) {
            return None;
        }
        Some(self.profile.along_at(stake_m).clamp(0.0, self.length_m()))
    }

    /// The `(lon, lat)` at `along_m` metres along the geometry (clamped).
    /// Inside a MultiLineString gap this interpolates across the gap, as the
    /// stakes do.
    pub fn point_at_along(&self, along_m: f64) -> (f64, f64) {
        let i = self.segment_at_along(along_m);
        let (a0, a1) = (self.along[i], self.along[i + 1]);
        let t = if a1 > a0 {
            ((along_m - a0) / (a1 - a0)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let p = lerp(self.coords[i], self.coords[i + 1], t);
        (p[0], p[1])
    }

    /// The `(lon, lat)` where the stake is `stake_m`, or `None` when this
    /// line does not reach that stake. The simulator drives along this.
    pub fn point_at_stake(&self, stake_m: f64) -> Option<(f64, f64)> {
        self.along_at_stake(stake_m).map(|a| self.point_at_along(a))
    }

    /// Structure under the line at `along_m` (from the line's own tags).
    pub fn structure_at_along(&self, along_m: f64) -> Option<Structure> {
        self.segments[self.segment_at_along(along_m)].structure
    }

    /// Index of the segment holding `along_m` (the later one at a shared
    /// vertex; clamped to the line).
    pub(crate) fn segment_at_along(&self, along_m: f64) -> usize {
        let last_segment = self.segments.len() - 1;
        // First vertex strictly beyond `along_m`, minus one.
        self.along
            .partition_point(|&a| a <= along_m)
            .saturating_sub(1)
            .min(last_segment)
    }
}
