//! Per road and travel direction, the stake ranges of its carriageways, sorted, so that
//! "which carriageways cover stakes lo..hi" is a binary search instead of a walk over
//! every line of the road computing each one's stake range (the ride-hailing detector
//! asks this for every plate read of a tracked car).
use super::line::Line;
use super::types::{Direction, LineId, LineKind};

#[derive(Debug, Clone, Copy)]
struct Span {
    lo: f64,
    hi: f64,
    line: LineId,
}

/// The carriageway spans of one road as seen from one query direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spans {
    /// Sorted by `lo`.
    spans: Vec<Span>,
    /// `max_hi[i]` = the highest `hi` of `spans[..=i]`: non-decreasing, so the first
    /// span that can reach above a stake is found by binary search.
    max_hi: Vec<f64>,
}

impl Spans {
    fn build(lines: &[Line], ids: &[LineId], direction: Direction) -> Spans {
        let mut spans: Vec<Span> = ids
            .iter()
            .map(|id| &lines[id.index()])
            .filter(|l| {
                l.kind == LineKind::Carriageway
                    && (l.direction == direction || l.direction == Direction::Both)
            })
            .map(|l| {
                let (lo, hi) = l.stake_range();
                Span { lo, hi, line: l.id }
            })
            .collect();
        spans.sort_by(|a, b| a.lo.total_cmp(&b.lo).then(a.line.cmp(&b.line)));
        let mut running = f64::NEG_INFINITY;
        let max_hi = spans
            .iter()
            .map(|s| {
                running = running.max(s.hi);
                running
            })
            .collect();
        Spans { spans, max_hi }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each carriageway's share of `[lo, hi]` that is not empty: `(from, to, line)`, in
    /// no particular order.
    pub(crate) fn overlapping(
        &self,
        lo: f64,
        hi: f64,
    ) -> impl Iterator<Item = (f64, f64, LineId)> + '_ {
        // Spans before `start` end at or below `lo`; spans from the first `lo >= hi` on
        // start at or above `hi`: neither can have a non-empty share.
        let start = self.max_hi.partition_point(|&m| m <= lo);
        self.spans[start..]
            .iter()
            .take_while(move |s| s.lo < hi)
            .filter_map(move |s| {
                let (a, b) = (s.lo.max(lo), s.hi.min(hi));
                (b > a).then_some((a, b, s.line))
            })
    }
}

/// A road's spans for the three query directions: `up` and `down` include two-way
/// lines, `both` has only them (as `RoadNetwork::carriageways` selects).
#[derive(Debug, Clone, Default)]
pub(crate) struct RoadSpans {
    up: Spans,
    down: Spans,
    both: Spans,
}

impl RoadSpans {
    pub(crate) fn build(lines: &[Line], ids: &[LineId]) -> RoadSpans {
        RoadSpans {
            up: Spans::build(lines, ids, Direction::Up),
            down: Spans::build(lines, ids, Direction::Down),
            both: Spans::build(lines, ids, Direction::Both),
        }
    }

    pub(crate) fn get(&self, direction: Direction) -> &Spans {
        match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
            Direction::Both => &self.both,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roads::{LoadOptions, RoadNetwork};

    /// The straightforward walk the index replaces: every carriageway of the road in that
    /// direction, its stake range computed on the spot.
    fn walk(
        net: &RoadNetwork,
        road: &str,
        dir: Direction,
        lo: f64,
        hi: f64,
    ) -> Vec<(f64, f64, LineId)> {
        let mut v: Vec<_> = net
            .carriageways(road, dir)
            .filter_map(|l| {
                let (s0, s1) = l.stake_range();
                let (a, b) = (s0.max(lo), s1.min(hi));
                (b > a).then_some((a, b, l.id))
            })
            .collect();
        v.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.2.cmp(&y.2)));
        v
    }

    fn same_as_the_walk(net: &RoadNetwork) -> usize {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut compared = 0;
        for road in net.roads() {
            let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
            for l in net
                .carriageways(road.road_id(), Direction::Up)
                .chain(net.carriageways(road.road_id(), Direction::Down))
            {
                let (a, b) = l.stake_range();
                min = min.min(a);
                max = max.max(b);
            }
            if !min.is_finite() {
                continue;
            }
            let span = (max - min).max(1.0);
            for dir in [Direction::Up, Direction::Down, Direction::Both] {
                for _ in 0..300 {
                    // From 10% before the road to 10% beyond it; short and long ranges.
                    let a = min - 0.1 * span + 1.2 * span * next();
                    let len = span * next().powi(3);
                    let (lo, hi) = (a, a + len);
                    let mut got: Vec<_> = road.spans.get(dir).overlapping(lo, hi).collect();
                    got.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.2.cmp(&y.2)));
                    assert_eq!(
                        got,
                        walk(net, road.road_id(), dir, lo, hi),
                        "{} {dir:?} {lo}..{hi}",
                        road.road_id()
                    );
                    assert_eq!(
                        road.spans.get(dir).is_empty(),
                        net.carriageways(road.road_id(), dir).next().is_none()
                    );
                    compared += 1;
                }
            }
        }
        compared
    }

    #[test]
    fn the_index_finds_exactly_what_walking_every_carriageway_finds() {
        for bytes in [
            &include_bytes!("../../../../config/roads/bijie.geojson")[..],
            &include_bytes!("../../../../tests/fixtures/osm/motorways-rhine-neckar.geojson")[..],
        ] {
            let net = RoadNetwork::from_geojson(bytes, &LoadOptions::default()).expect("loads");
            assert!(same_as_the_walk(&net) > 1000);
        }
    }
}
