//! OpenStreetMap exports (Overpass / osmtogeojson GeoJSON): tags → road parts.
//!
//! Mapping (CONTRACT section 4, extended where OSM has more to say):
//!
//! | OSM | becomes |
//! | --- | --- |
//! | way `highway=motorway` | carriageway piece; `ref` → road_id (first of `a;b`, spaces removed: `A 5` → `A5`) |
//! | way `highway=motorway_link` | ramp piece; road from `ref` or from the motorway it joins |
//! | `highway=services` / `rest_area` (area or node) | service area zone |
//! | `barrier=toll_booth` (area or node) | toll plaza zone |
//! | area `man_made=bridge` | bridge polygon |
//! | node `highway=motorway_junction` | interchange (`name`, exit number from `ref`) |
//! | node `highway=milestone` + `distance` (km) | stake anchor |
//! | `tunnel=*` / `bridge=*` (not `no`) on a way | structure of its segments |
//!
//! Tags are read from `properties`, or from `properties.tags` when an
//! exporter nests them there. Ways are joined into chains in
//! `osm_chains.rs`; stakes and directions come from `osm_stakes.rs`.

use std::sync::Arc;

use serde_json::Value;

use super::geodesy::circle;
use super::geojson::{str_prop, Geometry, Props};
use super::issues::Issues;
use super::line::{Line, LineDraft};
use super::load_native::DEFAULT_WIDTH_M;
use super::network::{Interchange, Parts};
use super::osm_chains::chain_ways;
use super::osm_stakes::{attach_ramps, stake_carriageways};
use super::types::{LineKind, Structure, ZoneKind};
use super::zones::ZoneDraft;

/// Radius given to a service area mapped as a single node.
pub const SERVICE_NODE_RADIUS_M: f64 = 150.0;
/// Radius given to a toll booth mapped as a single node.
pub const TOLL_NODE_RADIUS_M: f64 = 60.0;
/// OSM `width` is the paved carriageway; the contract's `width_m` includes
/// shoulders. A German RQ 31 motorway adds a 2.5 m hard shoulder and about
/// 1 m of edge strips to its lanes.
pub const OSM_SHOULDERS_M: f64 = 3.5;
/// How far a motorway_junction node may be from its carriageway (they are
/// normally vertices of it).
pub const JUNCTION_SNAP_M: f64 = 50.0;

/// One OSM way that is part of the road.
#[derive(Debug, Clone)]
pub(crate) struct OsmWay {
    pub feature: usize,
    pub kind: LineKind,
    /// Normalised `ref`; ramps often have none.
    pub road_id: Option<Arc<str>>,
    /// `ref` as written, for the road's display name.
    pub ref_text: Option<Arc<str>>,
    pub name: Option<Arc<str>>,
    /// Travel is only along the geometry (after reversing `oneway=-1`).
    pub oneway: bool,
    pub coords: Vec<[f64; 2]>,
    pub structure: Option<Structure>,
    pub half_width_m: f32,
}

/// A `highway=milestone` node.
#[derive(Debug, Clone)]
pub(crate) struct Milestone {
    pub feature: usize,
    pub point: [f64; 2],
    pub stake_m: f64,
    /// Normalised `ref` when the milestone names its road (rare).
    pub road_id: Option<Arc<str>>,
}

/// A `highway=motorway_junction` node.
#[derive(Debug, Clone)]
pub(crate) struct Junction {
    pub feature: usize,
    pub point: [f64; 2],
    pub name: Option<Arc<str>>,
    pub exit_ref: Option<Arc<str>>,
}

/// Collects OSM features, then builds lines from them in [`Self::finish`].
#[derive(Default)]
pub(crate) struct OsmLoader {
    ways: Vec<OsmWay>,
    milestones: Vec<Milestone>,
    junctions: Vec<Junction>,
    zones: Vec<ZoneDraft>,
}

/// The tag map of an OSM feature: nested `tags` object or the properties.
pub(crate) fn tags(props: &Props) -> &Props {
    match props.get("tags") {
        Some(Value::Object(tags)) => tags,
        _ => props,
    }
}

/// `A 5;E 35` → `A5`: the first ref, without spaces, so it can go into
/// alert ids (CONTRACT section 1 identifier characters).
pub(crate) fn normalise_ref(text: &str) -> Option<Arc<str>> {
    let first = text.split(';').next().unwrap_or("");
    let id: String = first.chars().filter(|c| !c.is_whitespace()).collect();
    (!id.is_empty()).then(|| id.into())
}

fn first_ref(text: &str) -> Option<Arc<str>> {
    let first = text.split(';').next().unwrap_or("").trim();
    (!first.is_empty()).then(|| first.into())
}

/// `yes`-like tag value (anything but an explicit no).
fn tag_set(tags: &Props, key: &str) -> bool {
    str_prop(tags, key).is_some_and(|v| !matches!(v, "no" | "false" | "0"))
}

impl OsmLoader {
    /// Takes feature `index` if its tags map to something; `false` when they
    /// do not (the caller counts it as unmapped).
    pub(crate) fn add(
        &mut self,
        index: usize,
        tags: &Props,
        geometry: Result<Geometry, String>,
        issues: &mut Issues,
    ) -> bool {
        let highway = str_prop(tags, "highway");
        let what = match highway {
            Some("motorway") => "motorway",
            Some("motorway_link") => "motorway_link",
            Some("services" | "rest_area") => "service area",
            Some("motorway_junction") => "motorway_junction",
            Some("milestone") => "milestone",
            _ if str_prop(tags, "barrier") == Some("toll_booth") => "toll booth",
            _ if str_prop(tags, "man_made") == Some("bridge") => "bridge area",
            _ => return false,
        };
        let geometry = match geometry {
            Ok(g) => g,
            Err(e) => {
                issues.error(index, format!("OSM {what}: {e}"));
                return true;
            }
        };
        let result = match what {
            "motorway" => self.way(index, tags, LineKind::Carriageway, geometry),
            "motorway_link" => self.way(index, tags, LineKind::Ramp, geometry),
            "service area" => self.zone(
                index,
                tags,
                ZoneKind::ServiceArea,
                geometry,
                SERVICE_NODE_RADIUS_M,
            ),
            "toll booth" => self.zone(
                index,
                tags,
                ZoneKind::TollPlaza,
                geometry,
                TOLL_NODE_RADIUS_M,
            ),
            "bridge area" => match geometry {
                Geometry::Polygons(_) => self.zone(index, tags, ZoneKind::Bridge, geometry, 0.0),
                _ => return false,
            },
            "motorway_junction" => self.junction(index, tags, geometry),
            _ => self.milestone(index, tags, geometry),
        };
        if let Err(e) = result {
            issues.error(index, format!("OSM {what}: {e}"));
        }
        true
    }

    fn way(
        &mut self,
        index: usize,
        tags: &Props,
        kind: LineKind,
        geometry: Geometry,
    ) -> Result<(), String> {
        let parts = match geometry {
            Geometry::Lines(parts) => parts,
            // A closed way some exporters turn into an area.
            Geometry::Polygons(polygons) => polygons
                .into_iter()
                .filter_map(|rings| rings.into_iter().next())
                .collect(),
            Geometry::Point(_) => return Err("a way mapped as a Point".into()),
        };
        let ref_text = str_prop(tags, "ref");
        let road_id = ref_text.and_then(normalise_ref);
        if kind == LineKind::Carriageway && road_id.is_none() {
            return Err("motorway way without `ref`: missing road id".into());
        }
        let (oneway, reverse) = match str_prop(tags, "oneway") {
            Some("-1" | "reverse") => (true, true),
            Some("no" | "false" | "0" | "alternating" | "reversible") => (false, false),
            // `oneway=yes` is implied on motorways and their links.
            _ => (true, false),
        };
        let structure = if tag_set(tags, "tunnel") {
            Some(Structure::Tunnel)
        } else if tag_set(tags, "bridge") {
            Some(Structure::Bridge)
        } else {
            None
        };
        let width_m = str_prop(tags, "width")
            .and_then(|w| {
                w.trim_end_matches('m')
                    .trim()
                    .replace(',', ".")
                    .parse::<f64>()
                    .ok()
            })
            .filter(|w| (2.0..=60.0).contains(w))
            .map_or(DEFAULT_WIDTH_M, |w| w + OSM_SHOULDERS_M);
        for mut coords in parts {
            if reverse {
                coords.reverse();
            }
            self.ways.push(OsmWay {
                feature: index,
                kind,
                road_id: road_id.clone(),
                ref_text: ref_text.and_then(first_ref),
                name: str_prop(tags, "name").map(Arc::from),
                oneway,
                coords,
                structure,
                half_width_m: (width_m / 2.0) as f32,
            });
        }
        Ok(())
    }

    fn zone(
        &mut self,
        index: usize,
        tags: &Props,
        kind: ZoneKind,
        geometry: Geometry,
        node_radius_m: f64,
    ) -> Result<(), String> {
        let polygons = match geometry {
            Geometry::Polygons(p) => p,
            Geometry::Point(p) => vec![vec![circle(p, node_radius_m, 16)]],
            // A closed way left as a LineString.
            Geometry::Lines(parts) => {
                let rings: Vec<Vec<[f64; 2]>> = parts
                    .into_iter()
                    .filter(|r| r.len() >= 4 && r.first() == r.last())
                    .collect();
                if rings.is_empty() {
                    return Err("an area mapped as an open line".into());
                }
                rings.into_iter().map(|r| vec![r]).collect()
            }
        };
        self.zones.push(ZoneDraft {
            kind,
            name: str_prop(tags, "name").unwrap_or(kind.as_str()).into(),
            polygons,
            active_from_ms: None,
            active_to_ms: None,
            declared_road: None,
            feature: index,
        });
        Ok(())
    }

    fn junction(&mut self, index: usize, tags: &Props, geometry: Geometry) -> Result<(), String> {
        let Geometry::Point(point) = geometry else {
            return Err("a junction that is not a node".into());
        };
        self.junctions.push(Junction {
            feature: index,
            point,
            name: str_prop(tags, "name").map(Arc::from),
            exit_ref: str_prop(tags, "ref").map(Arc::from),
        });
        Ok(())
    }

    fn milestone(&mut self, index: usize, tags: &Props, geometry: Geometry) -> Result<(), String> {
        let Geometry::Point(point) = geometry else {
            return Err("a milestone that is not a node".into());
        };
        let text = str_prop(tags, "distance").ok_or("no `distance`")?;
        let km =
            parse_km(text).ok_or_else(|| format!("distance {text:?} is not a number of km"))?;
        self.milestones.push(Milestone {
            feature: index,
            point,
            stake_m: km * 1000.0,
            road_id: str_prop(tags, "ref").and_then(normalise_ref),
        });
        Ok(())
    }

    /// Joins ways into chains, gives them stakes and directions, attaches
    /// ramps, junctions and zones, and adds it all to `parts`.
    pub(crate) fn finish(self, parts: &mut Parts, issues: &mut Issues) {
        let OsmLoader {
            ways,
            milestones,
            junctions,
            zones,
        } = self;
        parts.zones.extend(zones);
        if ways.is_empty() {
            if !milestones.is_empty() || !junctions.is_empty() {
                issues.note(
                    None,
                    "OSM milestones/junctions but no motorway ways: ignored",
                );
            }
            return;
        }
        let chains = chain_ways(&ways);
        let mut carriageways = Vec::new();
        let mut ramps = Vec::new();
        for chain in &chains {
            let draft = chain_draft(&ways, chain);
            match draft.kind {
                LineKind::Carriageway => carriageways.push((draft, ways[chain[0]].oneway)),
                LineKind::Ramp => ramps.push((draft, ways[chain[0]].oneway)),
            }
        }
        let (lines, tree) = stake_carriageways(carriageways, &milestones, issues);
        let ramp_lines = attach_ramps(ramps, &lines, &tree, issues);
        parts.interchanges.extend(
            junctions
                .iter()
                .filter_map(|j| junction_interchange(j, &lines, &tree, issues)),
        );
        parts.lines.extend(lines);
        parts.lines.extend(ramp_lines);
    }
}

/// OSM `distance` in km: `12.5`, `12,5`, `12.5 km`.
fn parse_km(text: &str) -> Option<f64> {
    let t = text.trim().trim_end_matches("km").trim().replace(',', ".");
    t.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// The line draft of a chain of ways (indices into `ways`, in travel order).
fn chain_draft(ways: &[OsmWay], chain: &[usize]) -> LineDraft {
    let first = &ways[chain[0]];
    let mut coords: Vec<[f64; 2]> = Vec::new();
    let mut segments = Vec::new();
    let mut features = Vec::new();
    for &w in chain {
        let way = &ways[w];
        let attr = super::line::SegmentAttr {
            structure: way.structure,
            half_width_m: way.half_width_m,
            gap: false,
        };
        // Consecutive ways share their joining node.
        let skip = usize::from(!coords.is_empty());
        coords.extend_from_slice(&way.coords[skip..]);
        segments.extend(std::iter::repeat(attr).take(way.coords.len() - 1));
        if features.last() != Some(&way.feature) {
            features.push(way.feature);
        }
    }
    let road_id = first.road_id.clone().unwrap_or_else(|| "".into());
    let name = chain
        .iter()
        .find_map(|&w| ways[w].name.clone())
        .or_else(|| first.ref_text.clone())
        .unwrap_or_else(|| road_id.clone());
    LineDraft {
        road_id,
        name,
        direction: super::types::Direction::Both,
        kind: first.kind,
        coords,
        segments,
        features,
    }
}

fn junction_interchange(
    j: &Junction,
    lines: &[Line],
    tree: &super::index::SegmentTree,
    issues: &mut Issues,
) -> Option<Interchange> {
    let hit = super::locate::nearest(tree, j.point[0], j.point[1], JUNCTION_SNAP_M, |_| true);
    let Some(hit) = hit else {
        issues.note(
            Some(j.feature),
            format!("motorway_junction more than {JUNCTION_SNAP_M} m from any motorway: skipped"),
        );
        return None;
    };
    let line = &lines[hit.line as usize];
    let name = j.name.clone().unwrap_or_else(|| match &j.exit_ref {
        Some(r) => format!("exit {r}").into(),
        None => "junction".into(),
    });
    Some(Interchange {
        road_id: line.road_id.clone(),
        name,
        stake_m: line.profile.stake_at(hit.along_m),
        lon: j.point[0],
        lat: j.point[1],
        direction: line.direction,
        exit_ref: j.exit_ref.clone(),
        feature: j.feature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_normalised() {
        assert_eq!(normalise_ref("A 5").as_deref(), Some("A5"));
        assert_eq!(normalise_ref("A 5;A 6").as_deref(), Some("A5"));
        assert_eq!(normalise_ref(" ;A 6"), None);
        assert_eq!(first_ref("A 5;A 6").as_deref(), Some("A 5"));
    }

    #[test]
    fn km_parsing() {
        assert_eq!(parse_km("331.0"), Some(331.0));
        assert_eq!(parse_km("12,5"), Some(12.5));
        assert_eq!(parse_km("12.5 km"), Some(12.5));
        assert_eq!(parse_km("-1"), None);
        assert_eq!(parse_km("NaN"), None);
        assert_eq!(parse_km("twelve"), None);
    }
}
