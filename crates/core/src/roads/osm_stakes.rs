//! Stakes and directions for OSM chains, from milestones.
//!
//! OSM has no stakes on ways; `highway=milestone` nodes with `distance` (km)
//! stand beside the road. For each chain (see `osm_chains.rs`):
//!
//! 1. **Snap milestones.** A milestone goes to the road of the nearest chain
//!    within [`MILESTONE_SNAP_M`] (its own `ref` restricts the choice when it
//!    has one), and becomes an anchor (metres along, stake) on *every* chain
//!    of that road within that distance — a marker in the median serves both
//!    carriageways, which share one stake series. A foot of the perpendicular
//!    beyond a chain's end is not an anchor for that chain.
//! 2. **Drop anchors that disagree.** Equal stakes within
//!    `EQUAL_STAKE_MERGE_M` of each other (the markers on both sides of the
//!    road) first merge into one at their mean position. Stakes must be
//!    monotone along a chain;
//!    the longest strictly monotone run of anchors is kept (increasing or
//!    decreasing; on a tie, the one whose overall slope is nearer 1 m/m), so
//!    a marker of a crossing road or a typo cannot bend the profile.
//! 3. **Two or more anchors** → stakes interpolate linearly between them and
//!    continue at ±1 m/m beyond the ends (`Milestones`).
//! 4. **Otherwise borrow** from already-staked chains of the same road within
//!    [`TWIN_SNAP_M`] of each vertex — usually the other carriageway — if the
//!    borrowed anchors span at least [`MIN_BORROW_SPAN_M`] (`Borrowed`).
//!    Repeated while it helps.
//! 5. **Otherwise continue** from a staked chain of the same road that ends
//!    where this one starts (or starts where it ends), directly or across a
//!    gap of up to [`CONTINUE_GAP_M`] ahead: its end stake and sense, the
//!    gap counted at its straight length (`Continued`).
//! 6. **Otherwise** one anchor with slope +1 (`SingleAnchor`), or stakes =
//!    metres along the geometry (`Unanchored`); both with direction `both`.
//!
//! **Direction rule:** a one-way chain whose stakes grow along its geometry
//! (its travel direction) is `up`, one whose stakes shrink is `down`; a
//! two-way way, or a chain whose sense could not be found, is `both`.

use std::sync::Arc;

use super::geodesy::{distance_m, Scale};
use super::index::{build_segment_tree, SegmentTree};
use super::issues::Issues;
use super::line::{Line, LineDraft};
use super::load_osm::Milestone;
use super::locate::{for_each_within, nearest, Hit};
use super::stake::StakeProfile;
use super::types::{Direction, LineKind, StakeSource};

/// How far a milestone may stand from the centre line of a carriageway it
/// marks: half a German RQ 31 cross-section (31 m) plus mapping error.
pub const MILESTONE_SNAP_M: f64 = 50.0;
/// How far the other carriageway may be when borrowing its stakes: wide
/// medians and separately routed carriageways stay within this.
pub const TWIN_SNAP_M: f64 = 150.0;
/// Borrowed anchors must span this much of a chain before its direction is
/// trusted (over a few metres the stake trend is mapping noise).
pub const MIN_BORROW_SPAN_M: f64 = 200.0;
/// Anchors closer than this along a chain are one anchor (the first kept):
/// a profile cannot jump at a point.
const MIN_ANCHOR_SPACING_M: f64 = 1.0;
/// Equal-stake anchors within this distance along a chain are one marker.
const EQUAL_STAKE_MERGE_M: f64 = 100.0;
/// A chain that starts within this distance of where a staked chain of the
/// same road ends (heading on) continues its stakes across the gap: OSM
/// splits a motorway's ways at junctions, and the pieces between may carry
/// another ref or be links.
pub const CONTINUE_GAP_M: f64 = 2000.0;
/// A ramp end this close to a carriageway joins it.
pub const RAMP_ATTACH_M: f64 = 50.0;
/// Ramps swing away from the main line; they borrow its stakes this far out.
pub const RAMP_BORROW_M: f64 = 500.0;
/// Rounds of borrowing and continuing before giving up.
const MAX_PASSES: usize = 8;

/// Gives each carriageway chain a stake profile and a direction. Returns the
/// lines (positions in the returned vec match the input order) and a
/// segment tree over them for the ramps and junctions that follow.
pub(crate) fn stake_carriageways(
    drafts: Vec<(LineDraft, bool)>,
    milestones: &[Milestone],
    issues: &mut Issues,
) -> (Vec<Line>, SegmentTree) {
    let oneway: Vec<bool> = drafts.iter().map(|d| d.1).collect();
    let mut lines: Vec<Line> = drafts
        .into_iter()
        .map(|(d, _)| {
            let along = d.along();
            d.into_line(along, StakeProfile::length_only(), StakeSource::Unanchored)
        })
        .collect();
    let tree = build_segment_tree(&lines, |_, _| false);
    let own = snap_milestones(&lines, &tree, milestones, issues);
    let mut staked: Vec<Option<StakeSource>> = vec![None; lines.len()];

    for (i, anchors) in own.iter().enumerate() {
        let fit = fit_anchors(anchors.clone());
        if fit.dropped > 0 {
            issues.note(
                line_feature(&lines[i]),
                format!(
                    "{}: {} of {} milestones disagree with the others' order along the chain: ignored",
                    lines[i].road_id,
                    fit.dropped,
                    anchors.len()
                ),
            );
        }
        if let Some(profile) = fit.profile {
            lines[i].profile = profile;
            staked[i] = Some(StakeSource::Milestones);
        }
    }

    for _ in 0..MAX_PASSES {
        let borrowed = borrow_pass(&mut lines, &tree, &own, &mut staked);
        let continued = continue_pass(&mut lines, &own, &oneway, &mut staked);
        if !borrowed && !continued {
            break;
        }
    }

    for (i, line) in lines.iter_mut().enumerate() {
        let source = match staked[i] {
            Some(source) => source,
            None => {
                let fit = fit_anchors(own[i].clone());
                match fit.kept.first() {
                    Some(&[along, stake]) => {
                        line.profile = StakeProfile::single(along, stake, true)
                            .unwrap_or_else(StakeProfile::length_only);
                        StakeSource::SingleAnchor
                    }
                    None => StakeSource::Unanchored,
                }
            }
        };
        line.stake_source = source;
        line.direction = match source {
            StakeSource::SingleAnchor | StakeSource::Unanchored => Direction::Both,
            _ if !oneway[i] => Direction::Both,
            _ if line.profile.is_increasing() => Direction::Up,
            _ => Direction::Down,
        };
        match source {
            StakeSource::Borrowed | StakeSource::Continued => issues.note(
                line_feature(line),
                format!(
                    "{} chain of {:.1} km has no milestones of its own: stakes {} ({})",
                    line.road_id,
                    line.length_m() / 1000.0,
                    source,
                    line.direction
                ),
            ),
            StakeSource::SingleAnchor => issues.note(
                line_feature(line),
                format!(
                    "{} chain of {:.1} km has a single milestone: stakes run from it at +1 m/m, direction unknown (both)",
                    line.road_id,
                    line.length_m() / 1000.0
                ),
            ),
            StakeSource::Unanchored => issues.note(
                line_feature(line),
                format!(
                    "{} chain of {:.1} km has nothing to anchor stakes to: stakes are metres along the geometry, direction unknown (both)",
                    line.road_id,
                    line.length_m() / 1000.0
                ),
            ),
            StakeSource::Given | StakeSource::Milestones => {}
        }
    }
    (lines, tree)
}

fn line_feature(line: &Line) -> Option<usize> {
    line.features.first().copied()
}

/// Anchors `[along, stake]` per line from the milestones (step 1).
fn snap_milestones(
    lines: &[Line],
    tree: &SegmentTree,
    milestones: &[Milestone],
    issues: &mut Issues,
) -> Vec<Vec<[f64; 2]>> {
    let mut own: Vec<Vec<[f64; 2]>> = vec![Vec::new(); lines.len()];
    let mut unmatched: Vec<usize> = Vec::new();
    for m in milestones {
        let [lon, lat] = m.point;
        let wanted = |i: u32| {
            m.road_id
                .as_ref()
                .map_or(true, |r| *r == lines[i as usize].road_id)
        };
        let Some(best) = nearest(tree, lon, lat, MILESTONE_SNAP_M, wanted) else {
            unmatched.push(m.feature);
            continue;
        };
        let road: Arc<str> = lines[best.line as usize].road_id.clone();
        let mut per_line: Vec<Hit> = Vec::new();
        for_each_within(tree, lon, lat, MILESTONE_SNAP_M, |_, hit| {
            if lines[hit.line as usize].road_id != road {
                return;
            }
            match per_line.iter_mut().find(|h| h.line == hit.line) {
                Some(h) if (hit.dist_m, hit.segment) < (h.dist_m, h.segment) => *h = hit,
                Some(_) => {}
                None => per_line.push(hit),
            }
        });
        for hit in per_line {
            let line = &lines[hit.line as usize];
            let at_start = hit.segment == 0 && hit.t == 0.0;
            let at_end = hit.segment as usize == line.segments.len() - 1 && hit.t == 1.0;
            // Beyond the chain's end the nearest point is its end vertex,
            // which is not where this stake is; a marker right on the end
            // vertex (OSM often makes it one) still counts.
            if (at_start || at_end) && hit.dist_m > 1.0 {
                continue;
            }
            own[hit.line as usize].push([hit.along_m, m.stake_m]);
        }
    }
    if !unmatched.is_empty() {
        let shown: Vec<String> = unmatched.iter().take(10).map(usize::to_string).collect();
        issues.note(
            None,
            format!(
                "{} milestone(s) more than {MILESTONE_SNAP_M} m from any motorway were ignored (features {}{})",
                unmatched.len(),
                shown.join(", "),
                if unmatched.len() > 10 { ", …" } else { "" }
            ),
        );
    }
    own
}

/// Step 4: borrow stakes from staked chains of the same road alongside.
fn borrow_pass(
    lines: &mut [Line],
    tree: &SegmentTree,
    own: &[Vec<[f64; 2]>],
    staked: &mut [Option<StakeSource>],
) -> bool {
    let mut changed = false;
    let snapshot: Vec<bool> = staked.iter().map(Option::is_some).collect();
    for i in 0..lines.len() {
        if staked[i].is_some() {
            continue;
        }
        let line = &lines[i];
        let mut borrowed: Vec<[f64; 2]> = Vec::new();
        for (v, p) in line.coords.iter().enumerate() {
            let lender = nearest(tree, p[0], p[1], TWIN_SNAP_M, |j| {
                j as usize != i && snapshot[j as usize] && lines[j as usize].road_id == line.road_id
            });
            if let Some(hit) = lender {
                let lender_line = &lines[hit.line as usize];
                borrowed.push([line.along[v], lender_line.profile.stake_at(hit.along_m)]);
            }
        }
        let span = match (borrowed.first(), borrowed.last()) {
            (Some(a), Some(b)) => b[0] - a[0],
            _ => 0.0,
        };
        if span < MIN_BORROW_SPAN_M {
            continue;
        }
        borrowed.extend_from_slice(&own[i]);
        if let Some(profile) = fit_anchors(borrowed).profile {
            lines[i].profile = profile;
            staked[i] = Some(StakeSource::Borrowed);
            changed = true;
        }
    }
    changed
}

/// Step 5: continue from a staked chain of the same road that ends where
/// this one starts (or starts where it ends), directly or across a gap of
/// up to [`CONTINUE_GAP_M`] in the direction of travel. Stakes carry on
/// across the gap at ±1 m/m of straight-line distance.
fn continue_pass(
    lines: &mut [Line],
    own: &[Vec<[f64; 2]>],
    oneway: &[bool],
    staked: &mut [Option<StakeSource>],
) -> bool {
    let mut changed = false;
    let snapshot: Vec<bool> = staked.iter().map(Option::is_some).collect();
    for i in 0..lines.len() {
        if staked[i].is_some() {
            continue;
        }
        let line = &lines[i];
        let mut best: Option<(f64, [f64; 2], bool)> = None;
        for (j, other) in lines.iter().enumerate() {
            if !snapshot[j] || j == i || other.road_id != line.road_id || oneway[j] != oneway[i] {
                continue;
            }
            let increasing = other.profile.is_increasing();
            let slope = if increasing { 1.0 } else { -1.0 };
            // `other` then `line`: other's end → line's start.
            if let Some(gap) = joins(other, line) {
                let anchor = [0.0, other.stake_end_m() + slope * gap];
                if best.as_ref().map_or(true, |b| gap < b.0) {
                    best = Some((gap, anchor, increasing));
                }
            }
            // `line` then `other`: line's end → other's start.
            if let Some(gap) = joins(line, other) {
                let anchor = [line.length_m(), other.stake_start_m() - slope * gap];
                if best.as_ref().map_or(true, |b| gap < b.0) {
                    best = Some((gap, anchor, increasing));
                }
            }
        }
        let Some((_, anchor, increasing)) = best else {
            continue;
        };
        // The chain's own single milestone (if any) pins the far end better
        // than a slope of 1, provided it agrees with the sense.
        let own_fit = fit_anchors(own[i].clone());
        let mut two = vec![anchor];
        two.extend(own_fit.kept.first().copied());
        two.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let profile = StakeProfile::from_anchors(two)
            .filter(|p| p.is_increasing() == increasing)
            .or_else(|| StakeProfile::single(anchor[0], anchor[1], increasing));
        if let Some(profile) = profile {
            lines[i].profile = profile;
            staked[i] = Some(StakeSource::Continued);
            changed = true;
        }
    }
    changed
}

/// If `second` carries on from `first` — starts at or within
/// [`CONTINUE_GAP_M`] of `first`'s end, heading the same way, the gap itself
/// pointing ahead — the gap's length in metres.
fn joins(first: &Line, second: &Line) -> Option<f64> {
    let n = first.coords.len();
    let (p0, p1) = (first.coords[n - 2], first.coords[n - 1]);
    let (q0, q1) = (second.coords[0], second.coords[1]);
    let gap = distance_m(p1, q0);
    if gap > CONTINUE_GAP_M {
        return None;
    }
    let scale = Scale::at(p1[1]);
    let heading = |a: [f64; 2], b: [f64; 2]| [(b[0] - a[0]) * scale.kx, (b[1] - a[1]) * scale.ky];
    let dot = |u: [f64; 2], v: [f64; 2]| u[0] * v[0] + u[1] * v[1];
    let (h_first, h_second) = (heading(p0, p1), heading(q0, q1));
    if dot(h_first, h_second) <= 0.0 {
        return None;
    }
    // A direct join needs nothing more; across a gap, the gap must lead on
    // from the first chain (not back alongside it, as the other
    // carriageway's start would).
    if gap > MIN_ANCHOR_SPACING_M && dot(h_first, heading(p1, q0)) <= 0.0 {
        return None;
    }
    Some(gap)
}

/// The outcome of cleaning a chain's anchors (step 2).
struct Fit {
    profile: Option<StakeProfile>,
    kept: Vec<[f64; 2]>,
    /// Anchors that disagreed with the others (not counting merged twins).
    dropped: usize,
}

/// Keeps the longest strictly monotone run of anchors (by along), merges
/// anchors closer than [`MIN_ANCHOR_SPACING_M`], and builds a profile when
/// two or more remain.
fn fit_anchors(anchors: Vec<[f64; 2]>) -> Fit {
    let mut anchors = merge_equal_stakes(anchors);
    let total = anchors.len();
    anchors.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let stakes: Vec<f64> = anchors.iter().map(|a| a[1]).collect();
    let up = longest_increasing(&stakes);
    let negated: Vec<f64> = stakes.iter().map(|s| -s).collect();
    let down = longest_increasing(&negated);
    let chosen = if up.len() != down.len() {
        if up.len() > down.len() {
            up
        } else {
            down
        }
    } else if slope_misfit(&anchors, &up) <= slope_misfit(&anchors, &down) {
        up
    } else {
        down
    };
    let mut kept: Vec<[f64; 2]> = Vec::with_capacity(chosen.len());
    for i in chosen {
        let a = anchors[i];
        if kept
            .last()
            .is_some_and(|k| a[0] - k[0] < MIN_ANCHOR_SPACING_M)
        {
            continue;
        }
        kept.push(a);
    }
    let dropped = total - kept.len();
    let profile = if kept.len() >= 2 {
        StakeProfile::from_anchors(kept.clone())
    } else {
        None
    };
    Fit {
        profile,
        kept,
        dropped,
    }
}

/// Markers with the same stake on both sides of the road snap to one chain
/// a few metres apart: they are one anchor, at their mean position. (Equal
/// stakes far apart are a conflict for the monotone filter to settle.)
fn merge_equal_stakes(mut anchors: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    anchors.sort_by(|a, b| a[1].total_cmp(&b[1]).then(a[0].total_cmp(&b[0])));
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(anchors.len());
    let mut i = 0;
    while i < anchors.len() {
        let mut j = i + 1;
        while j < anchors.len() && anchors[j][1] == anchors[i][1] {
            j += 1;
        }
        let group = &anchors[i..j];
        let spread = group[group.len() - 1][0] - group[0][0];
        if spread <= EQUAL_STAKE_MERGE_M {
            let mean = group.iter().map(|a| a[0]).sum::<f64>() / group.len() as f64;
            out.push([mean, anchors[i][1]]);
        } else {
            out.extend_from_slice(group);
        }
        i = j;
    }
    out
}

/// How far the overall slope of the chosen anchors is from 1 m of stake per
/// metre of road (as |ln slope|); infinite when undefined.
fn slope_misfit(anchors: &[[f64; 2]], chosen: &[usize]) -> f64 {
    let (Some(&first), Some(&last)) = (chosen.first(), chosen.last()) else {
        return f64::INFINITY;
    };
    let (a, b) = (anchors[first], anchors[last]);
    let slope = ((b[1] - a[1]) / (b[0] - a[0])).abs();
    if slope.is_finite() && slope > 0.0 {
        slope.ln().abs()
    } else {
        f64::INFINITY
    }
}

/// Indices of a longest strictly increasing subsequence (patience sorting,
/// O(n log n): borrowed anchors can number in the thousands). The earliest
/// such subsequence wins ties, so the result is deterministic.
fn longest_increasing(values: &[f64]) -> Vec<usize> {
    let mut tails: Vec<usize> = Vec::new();
    let mut previous: Vec<Option<usize>> = vec![None; values.len()];
    for (i, &v) in values.iter().enumerate() {
        let pos = tails.partition_point(|&t| values[t] < v);
        previous[i] = pos.checked_sub(1).map(|p| tails[p]);
        if pos == tails.len() {
            tails.push(i);
        } else {
            tails[pos] = i;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied();
    while let Some(i) = at {
        out.push(i);
        at = previous[i];
    }
    out.reverse();
    out
}

/// Ties each OSM ramp chain to the carriageway it joins: the road id (when
/// the link has no `ref`), the direction, and stakes borrowed from that
/// carriageway. A link joining no motorway has no road id and is skipped.
pub(crate) fn attach_ramps(
    ramps: Vec<(LineDraft, bool)>,
    carriageways: &[Line],
    tree: &SegmentTree,
    issues: &mut Issues,
) -> Vec<Line> {
    let mut out = Vec::with_capacity(ramps.len());
    for (mut draft, oneway) in ramps {
        let along = draft.along();
        let own_road: Option<Arc<str>> = (!draft.road_id.is_empty()).then(|| draft.road_id.clone());
        let on_road = |j: u32| {
            let l = &carriageways[j as usize];
            l.kind == LineKind::Carriageway && own_road.as_ref().map_or(true, |r| *r == l.road_id)
        };
        let ends = [
            (draft.coords[0], 0.0),
            (draft.coords[draft.coords.len() - 1], along[along.len() - 1]),
        ];
        let attach = ends
            .iter()
            .filter_map(|&(p, at)| {
                nearest(tree, p[0], p[1], RAMP_ATTACH_M, on_road).map(|h| (h, at))
            })
            .min_by(|a, b| a.0.dist_m.total_cmp(&b.0.dist_m));
        let feature = draft.features.first().copied();
        let Some((hit, at_along)) = attach else {
            match own_road {
                Some(_) => {
                    issues.note(feature, "motorway_link joins no motorway of its ref: stakes unanchored, direction both");
                    out.push(draft.into_line(
                        along,
                        StakeProfile::length_only(),
                        StakeSource::Unanchored,
                    ));
                }
                None => {
                    if let Some(f) = feature {
                        issues.error(f, format!("motorway_link without `ref` more than {RAMP_ATTACH_M} m from any motorway: missing road id"));
                    }
                }
            }
            continue;
        };
        let main = &carriageways[hit.line as usize];
        draft.road_id = main.road_id.clone();
        draft.name = main.name.clone();
        draft.direction = if oneway {
            main.direction
        } else {
            Direction::Both
        };
        let road = main.road_id.clone();
        let mut anchors: Vec<[f64; 2]> = Vec::new();
        for (v, p) in draft.coords.iter().enumerate() {
            let near = nearest(tree, p[0], p[1], RAMP_BORROW_M, |j| {
                carriageways[j as usize].road_id == road
            });
            if let Some(h) = near {
                anchors.push([
                    along[v],
                    carriageways[h.line as usize].profile.stake_at(h.along_m),
                ]);
            }
        }
        let fit = fit_anchors(anchors);
        let span = match (fit.kept.first(), fit.kept.last()) {
            (Some(a), Some(b)) => b[0] - a[0],
            _ => 0.0,
        };
        let (profile, source) = match fit.profile {
            Some(p) if span >= MIN_BORROW_SPAN_M => (p, StakeSource::Borrowed),
            _ => {
                let stake = main.profile.stake_at(hit.along_m);
                let p = StakeProfile::single(at_along, stake, main.profile.is_increasing())
                    .unwrap_or_else(StakeProfile::length_only);
                (p, StakeSource::Continued)
            }
        };
        out.push(draft.into_line(along, profile, source));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lis_finds_the_longest_increasing_run() {
        assert_eq!(longest_increasing(&[]), Vec::<usize>::new());
        assert_eq!(
            longest_increasing(&[3.0, 1.0, 2.0, 5.0, 4.0, 6.0]),
            vec![1, 2, 4, 5]
        );
        // Strict: equal values do not extend a run.
        assert_eq!(longest_increasing(&[1.0, 1.0, 1.0]).len(), 1);
    }

    #[test]
    fn fit_drops_an_outlier_and_keeps_the_sense() {
        // Decreasing stakes along the chain, one foreign marker (25 km).
        let anchors = vec![
            [0.0, 560_000.0],
            [500.0, 559_500.0],
            [700.0, 25_000.0],
            [1000.0, 559_000.0],
        ];
        let fit = fit_anchors(anchors);
        assert_eq!(fit.dropped, 1);
        let p = fit.profile.expect("three anchors agree");
        assert!(!p.is_increasing());
        assert_eq!(p.stake_at(250.0), 559_750.0);
    }

    #[test]
    fn a_tie_goes_to_the_plausible_slope() {
        // Two anchors either way: (0,1000)->(500,1500) slope 1 beats
        // (0,1000)->(600,900) slope 1/6.
        let anchors = vec![[0.0, 1000.0], [500.0, 1500.0], [600.0, 900.0]];
        let fit = fit_anchors(anchors);
        assert!(fit.profile.expect("two agree").is_increasing());
        assert_eq!(fit.dropped, 1);
    }

    #[test]
    fn anchors_at_one_spot_merge() {
        let fit = fit_anchors(vec![[100.0, 5000.0], [100.4, 5001.0]]);
        assert!(fit.profile.is_none());
        assert_eq!(fit.kept.len(), 1);
    }
}
