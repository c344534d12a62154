//! The patrol registry: each unit's latest position (placed on the road once, when it
//! arrives), its reported status and whether it holds an assignment, plus an R-tree over
//! positions so that a dispatch looks at the nearest units first.
use std::collections::BTreeMap;
use std::sync::Arc;

use rstar::primitives::GeomWithData;
use rstar::RTree;

use super::eta::{OnRoad, Place};
use crate::model::{EventTime, PatrolPosition, UnitStatus};
use crate::roads::RoadNetwork;

/// Metres per degree of latitude, for the planar index (the exact distance is computed
/// with the road network's geodesy; the index only orders candidates).
const M_PER_DEG_LAT: f64 = 110_574.0;

pub type IndexPoint = GeomWithData<[f64; 2], u32>;

#[derive(Debug, Clone)]
pub struct Unit {
    pub unit_id: Arc<str>,
    pub ts: EventTime,
    pub place: Place,
    pub status: UnitStatus,
    /// The alert it is assigned to, if any: a unit holds one assignment at a time.
    pub assignment: Option<String>,
    indexed: [f64; 2],
}

pub struct Registry {
    units: Vec<Unit>,
    by_id: BTreeMap<Arc<str>, u32>,
    tree: RTree<IndexPoint>,
    /// Metres per degree of longitude at the network's latitude.
    m_per_deg_lon: f64,
    snap_m: f64,
}

impl Registry {
    pub fn new(reference_lat: f64, snap_m: f64) -> Self {
        Registry {
            units: Vec::new(),
            by_id: BTreeMap::new(),
            tree: RTree::new(),
            m_per_deg_lon: M_PER_DEG_LAT * reference_lat.to_radians().cos().max(0.01),
            snap_m,
        }
    }

    /// Planar metres around the reference latitude: good enough to order candidates.
    pub fn project(&self, lon: f64, lat: f64) -> [f64; 2] {
        [lon * self.m_per_deg_lon, lat * M_PER_DEG_LAT]
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    pub fn get(&self, idx: u32) -> &Unit {
        &self.units[idx as usize]
    }

    pub fn get_mut(&mut self, idx: u32) -> &mut Unit {
        &mut self.units[idx as usize]
    }

    pub fn index_of(&self, unit_id: &str) -> Option<u32> {
        self.by_id.get(unit_id).copied()
    }

    /// A position report. Older reports than the one held (per-key order is all Kafka
    /// promises, and late records are allowed) do not move the unit back in time.
    pub fn on_position(&mut self, p: &PatrolPosition, net: &RoadNetwork) {
        let road = net
            .locate_within(p.lon, p.lat, p.ts, self.snap_m)
            .map(|pos| OnRoad {
                road_id: pos.road_id,
                direction: pos.direction,
                stake_m: pos.stake_m,
            });
        let place = Place {
            lon: p.lon,
            lat: p.lat,
            road,
        };
        let indexed = self.project(p.lon, p.lat);
        match self.index_of(&p.unit_id) {
            Some(i) => {
                let unit = &mut self.units[i as usize];
                if p.ts < unit.ts {
                    return;
                }
                let old = IndexPoint::new(unit.indexed, i);
                self.tree.remove(&old);
                unit.ts = p.ts;
                unit.place = place;
                unit.status = p.status;
                unit.indexed = indexed;
                self.tree.insert(IndexPoint::new(indexed, i));
            }
            None => {
                let i = self.units.len() as u32;
                let unit_id: Arc<str> = Arc::from(p.unit_id.as_str());
                self.units.push(Unit {
                    unit_id: unit_id.clone(),
                    ts: p.ts,
                    place,
                    status: p.status,
                    assignment: None,
                    indexed,
                });
                self.by_id.insert(unit_id, i);
                self.tree.insert(IndexPoint::new(indexed, i));
            }
        }
    }

    /// Units by increasing planar distance from a point, with that distance in metres.
    pub fn nearest(&self, at: [f64; 2]) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.tree
            .nearest_neighbor_iter_with_distance_2(&at)
            .map(|(p, d2)| (p.data, d2.sqrt()))
    }

    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter()
    }
}
