//! Joining OSM ways into chains: one chain = one stretch of one carriageway.
//!
//! OSM splits a carriageway into many ways (at every tag change: lanes,
//! speed limit, bridge). Ways of the same kind, `ref` and one-wayness are
//! joined end to start where the join is unambiguous:
//!
//! * the first way's last node is the second's first node (same coordinates —
//!   an Overpass GeoJSON export has no node ids, and a shared node has
//!   bit-identical coordinates in both ways);
//! * exactly one way of the group ends there and exactly one starts there
//!   (a fork or a merge ends the chain, so a chain never branches);
//! * the heading turns by less than [`MAX_JOIN_TURN_DEG`] (a road that ends
//!   at a turning loop must not run back on itself as one chain).
//!
//! A ring with no free end is cut at its lowest-numbered way.

use std::collections::HashMap;

use super::geodesy::Scale;
use super::load_osm::OsmWay;
use super::types::LineKind;

/// Largest heading change accepted at a join, degrees.
pub const MAX_JOIN_TURN_DEG: f64 = 120.0;

/// Bit pattern of a coordinate, usable as a hash key.
fn node_key(p: [f64; 2]) -> [u64; 2] {
    [p[0].to_bits(), p[1].to_bits()]
}

#[derive(Hash, PartialEq, Eq, Clone)]
struct GroupKey {
    kind: LineKind,
    road_id: Option<std::sync::Arc<str>>,
    oneway: bool,
}

/// Chains of way indices, each in travel order; chains are ordered by their
/// first way, so the result depends only on the file.
pub(crate) fn chain_ways(ways: &[OsmWay]) -> Vec<Vec<usize>> {
    let group_of = |w: &OsmWay| GroupKey {
        kind: w.kind,
        road_id: w.road_id.clone(),
        oneway: w.oneway,
    };
    let mut starts: HashMap<(GroupKey, [u64; 2]), Vec<usize>> = HashMap::new();
    let mut ends: HashMap<(GroupKey, [u64; 2]), Vec<usize>> = HashMap::new();
    for (i, w) in ways.iter().enumerate() {
        starts
            .entry((group_of(w), node_key(w.coords[0])))
            .or_default()
            .push(i);
        ends.entry((group_of(w), node_key(w.coords[w.coords.len() - 1])))
            .or_default()
            .push(i);
    }
    let successor = |i: usize| -> Option<usize> {
        let w = &ways[i];
        let key = (group_of(w), node_key(w.coords[w.coords.len() - 1]));
        let next = match (starts.get(&key), ends.get(&key)) {
            (Some(s), Some(e)) if s.len() == 1 && e.len() == 1 => s[0],
            _ => return None,
        };
        (next != i && turn_is_gentle(&ways[i], &ways[next])).then_some(next)
    };
    let next: Vec<Option<usize>> = (0..ways.len()).map(successor).collect();
    let mut has_predecessor = vec![false; ways.len()];
    for n in next.iter().flatten() {
        has_predecessor[*n] = true;
    }

    let mut used = vec![false; ways.len()];
    let mut chains = Vec::new();
    let walk = |start: usize, used: &mut Vec<bool>| {
        let mut chain = vec![start];
        used[start] = true;
        let mut at = start;
        while let Some(n) = next[at] {
            if used[n] {
                break;
            }
            used[n] = true;
            chain.push(n);
            at = n;
        }
        chain
    };
    // Chains with a free start first, then what is left: rings.
    for i in 0..ways.len() {
        if !has_predecessor[i] && !used[i] {
            chains.push(walk(i, &mut used));
        }
    }
    for i in 0..ways.len() {
        if !used[i] {
            chains.push(walk(i, &mut used));
        }
    }
    chains.sort_by_key(|c| c[0]);
    chains
}

/// Heading change from the last segment of `a` to the first of `b` is
/// below [`MAX_JOIN_TURN_DEG`].
fn turn_is_gentle(a: &OsmWay, b: &OsmWay) -> bool {
    let n = a.coords.len();
    let (p0, p1) = (a.coords[n - 2], a.coords[n - 1]);
    let (q0, q1) = (b.coords[0], b.coords[1]);
    let scale = Scale::at(p1[1]);
    let u = [(p1[0] - p0[0]) * scale.kx, (p1[1] - p0[1]) * scale.ky];
    let v = [(q1[0] - q0[0]) * scale.kx, (q1[1] - q0[1]) * scale.ky];
    let norms = u[0].hypot(u[1]) * v[0].hypot(v[1]);
    if norms == 0.0 {
        return true;
    }
    let cos = (u[0] * v[0] + u[1] * v[1]) / norms;
    cos > MAX_JOIN_TURN_DEG.to_radians().cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn way(feature: usize, road: &str, coords: &[[f64; 2]]) -> OsmWay {
        OsmWay {
            feature,
            kind: LineKind::Carriageway,
            road_id: Some(road.into()),
            ref_text: Some(road.into()),
            name: None,
            oneway: true,
            coords: coords.to_vec(),
            structure: None,
            half_width_m: 7.5,
        }
    }

    #[test]
    fn joins_in_travel_order_whatever_the_file_order() {
        let ways = [
            way(0, "A1", &[[0.02, 0.0], [0.03, 0.0]]),
            way(1, "A1", &[[0.0, 0.0], [0.01, 0.0]]),
            way(2, "A1", &[[0.01, 0.0], [0.02, 0.0]]),
        ];
        assert_eq!(chain_ways(&ways), vec![vec![1, 2, 0]]);
    }

    #[test]
    fn forks_refs_and_u_turns_break_chains() {
        let ways = [
            way(0, "A1", &[[0.0, 0.0], [0.01, 0.0]]),
            // Fork: two ways start where way 0 ends.
            way(1, "A1", &[[0.01, 0.0], [0.02, 0.0]]),
            way(2, "A1", &[[0.01, 0.0], [0.02, 0.01]]),
            // Different ref continuing way 1.
            way(3, "A2", &[[0.02, 0.0], [0.03, 0.0]]),
            // Same ref turning back on itself at the end of way 2.
            way(4, "A1", &[[0.02, 0.01], [0.01, 0.0101]]),
        ];
        assert_eq!(
            chain_ways(&ways),
            vec![vec![0], vec![1], vec![2], vec![3], vec![4]]
        );
    }

    #[test]
    fn a_ring_is_cut_once() {
        let ways = [
            way(0, "R", &[[0.0, 0.0], [0.01, 0.0], [0.01, 0.01]]),
            way(1, "R", &[[0.01, 0.01], [0.0, 0.01], [0.0, 0.0]]),
        ];
        assert_eq!(chain_ways(&ways), vec![vec![0, 1]]);
    }
}
