//! Polygons: service areas, toll plazas, work zones, tunnel and bridge areas.

use std::sync::Arc;

use geo::{Contains, Coord, LineString, MultiPolygon, Polygon};

use super::types::{ZoneId, ZoneKind};
use crate::model::EventTime;

/// Where a zone sits on a road: the nearest carriageway point to its centre.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneRoad {
    pub road_id: Arc<str>,
    pub stake_m: f64,
}

/// A polygon of the network.
#[derive(Debug, Clone)]
pub struct Zone {
    pub(crate) id: ZoneId,
    pub(crate) kind: ZoneKind,
    pub(crate) name: Arc<str>,
    pub(crate) shape: MultiPolygon<f64>,
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub(crate) bbox: [f64; 4],
    /// Epoch milliseconds; `None` = open-ended.
    pub(crate) active_from_ms: Option<EventTime>,
    pub(crate) active_to_ms: Option<EventTime>,
    /// A `road_id` property on the zone, which pins it to that road.
    pub(crate) declared_road: Option<Arc<str>>,
    pub(crate) road: Option<ZoneRoad>,
    pub(crate) feature: usize,
}

/// What a loader hands over to become a [`Zone`].
#[derive(Debug, Clone)]
pub(crate) struct ZoneDraft {
    pub kind: ZoneKind,
    pub name: Arc<str>,
    /// Polygons as rings of `[lon, lat]`, outer ring first, each closed.
    pub polygons: Vec<Vec<Vec<[f64; 2]>>>,
    pub active_from_ms: Option<EventTime>,
    pub active_to_ms: Option<EventTime>,
    pub declared_road: Option<Arc<str>>,
    pub feature: usize,
}

impl ZoneDraft {
    pub(crate) fn into_zone(self, id: ZoneId) -> Zone {
        let mut bbox = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        let polygons = self
            .polygons
            .into_iter()
            .map(|rings| {
                let mut rings = rings.into_iter().map(|ring| {
                    for p in &ring {
                        bbox[0] = bbox[0].min(p[0]);
                        bbox[1] = bbox[1].min(p[1]);
                        bbox[2] = bbox[2].max(p[0]);
                        bbox[3] = bbox[3].max(p[1]);
                    }
                    LineString::new(
                        ring.into_iter()
                            .map(|p| Coord { x: p[0], y: p[1] })
                            .collect(),
                    )
                });
                // The parser guarantees at least one ring per polygon.
                let exterior = rings.next().unwrap_or_else(|| LineString::new(Vec::new()));
                Polygon::new(exterior, rings.collect())
            })
            .collect();
        Zone {
            id,
            kind: self.kind,
            name: self.name,
            shape: MultiPolygon::new(polygons),
            bbox,
            active_from_ms: self.active_from_ms,
            active_to_ms: self.active_to_ms,
            declared_road: self.declared_road,
            road: None,
            feature: self.feature,
        }
    }
}

impl Zone {
    pub fn id(&self) -> ZoneId {
        self.id
    }
    pub fn kind(&self) -> ZoneKind {
        self.kind
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn shape(&self) -> &MultiPolygon<f64> {
        &self.shape
    }
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }
    pub fn active_from_ms(&self) -> Option<EventTime> {
        self.active_from_ms
    }
    pub fn active_to_ms(&self) -> Option<EventTime> {
        self.active_to_ms
    }
    /// The road and stake nearest the zone's centre (within 1 km), if any.
    pub fn road(&self) -> Option<&ZoneRoad> {
        self.road.as_ref()
    }
    /// Index of the feature in the file.
    pub fn feature(&self) -> usize {
        self.feature
    }

    /// Active at `at_ms` (epoch milliseconds): from `active_from`
    /// inclusive to `active_to` exclusive, so back-to-back work shifts never
    /// overlap or leave a gap. Zones without bounds are always active.
    pub fn is_active(&self, at_ms: EventTime) -> bool {
        // `map_or(true, ..)` rather than `is_none_or`: the crate's MSRV is 1.80.
        self.active_from_ms.map_or(true, |from| at_ms >= from)
            && self.active_to_ms.map_or(true, |to| at_ms < to)
    }

    /// Whether the point is inside (boundary excluded, holes respected).
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        lon >= self.bbox[0]
            && lon <= self.bbox[2]
            && lat >= self.bbox[1]
            && lat <= self.bbox[3]
            && self.shape.contains(&Coord { x: lon, y: lat })
    }

    /// Centroid of the bounding box: good enough to find the road a service
    /// area belongs to.
    pub(crate) fn centre(&self) -> [f64; 2] {
        [
            (self.bbox[0] + self.bbox[2]) * 0.5,
            (self.bbox[1] + self.bbox[3]) * 0.5,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(kind: ZoneKind, from: Option<i64>, to: Option<i64>) -> Zone {
        let (from, to) = (from.map(EventTime::from_ms), to.map(EventTime::from_ms));
        ZoneDraft {
            kind,
            name: "z".into(),
            polygons: vec![vec![
                vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]],
                vec![[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]],
            ]],
            active_from_ms: from,
            active_to_ms: to,
            declared_road: None,
            feature: 0,
        }
        .into_zone(ZoneId(0))
    }

    #[test]
    fn contains_respects_holes() {
        let z = square(ZoneKind::ServiceArea, None, None);
        assert!(z.contains(0.2, 0.2));
        assert!(!z.contains(0.5, 0.5));
        assert!(!z.contains(1.5, 0.5));
        assert_eq!(z.bbox(), [0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn activity_window_is_half_open() {
        let z = square(ZoneKind::WorkZone, Some(1000), Some(2000));
        assert!(!z.is_active(EventTime::from_ms(999)));
        assert!(z.is_active(EventTime::from_ms(1000)));
        assert!(z.is_active(EventTime::from_ms(1999)));
        assert!(!z.is_active(EventTime::from_ms(2000)));
        assert!(square(ZoneKind::WorkZone, None, Some(5)).is_active(EventTime::MIN));
        assert!(square(ZoneKind::WorkZone, Some(5), None).is_active(EventTime::MAX));
    }
}
