//! The native road schema (CONTRACT.md section 4): features with a `kind`.
//!
//! | geometry | kind | properties |
//! | --- | --- | --- |
//! | (Multi)LineString | carriageway, ramp | road_id, name, direction, stake_start_m, stake_end_m, width_m, structure, `stakes_m` (extension) |
//! | (Multi)Polygon | service_area, toll_plaza, work_zone, tunnel, bridge | name, active_from, active_to, `road_id` (extension) |
//! | Point | interchange | road_id, name, stake_m |
//! | Point | weather_station | station_id, name |
//!
//! Every check that fails skips the feature with an [`IssueLevel::Error`]
//! naming it; an unknown `kind` is only a note (files may carry features for
//! other tools). See docs/ROADS.md for each rule.
//!
//! [`IssueLevel::Error`]: super::IssueLevel::Error

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::geojson::{num_prop, str_prop, Geometry, Props};
use super::issues::Issues;
use super::line::{LineDraft, SegmentAttr};
use super::network::{Interchange, Parts, Station};
use super::stake::{Stake, StakeProfile};
use super::types::{Direction, LineKind, StakeSource, Structure, ZoneKind};
use super::zones::ZoneDraft;
use crate::model::EventTime;

/// Default paved width including shoulders (CONTRACT section 4).
pub const DEFAULT_WIDTH_M: f64 = 15.0;
/// Widths outside this range are typos (a width in km, or in lanes).
const PLAUSIBLE_WIDTH_M: std::ops::RangeInclusive<f64> = 2.0..=200.0;

/// Collects native features into [`Parts`].
#[derive(Default)]
pub(crate) struct NativeLoader {
    station_ids: HashSet<Arc<str>>,
}

impl NativeLoader {
    /// Adds feature `index` (which has a `kind` property).
    pub(crate) fn add(
        &mut self,
        index: usize,
        props: &Props,
        geometry: Result<Geometry, String>,
        parts: &mut Parts,
        issues: &mut Issues,
    ) {
        let kind = match props.get("kind") {
            Some(Value::String(k)) => k.trim(),
            _ => {
                issues.error(index, "`kind` is not a string");
                return;
            }
        };
        let expects = match kind {
            "carriageway" | "ramp" => "LineString",
            "interchange" | "weather_station" => "Point",
            k if ZoneKind::parse(k).is_some() => "Polygon",
            other => {
                issues.note(Some(index), format!("unknown kind {other:?}: skipped"));
                return;
            }
        };
        let geometry = match geometry {
            Ok(g) => g,
            Err(e) => {
                issues.error(index, format!("{kind}: {e}"));
                return;
            }
        };
        if geometry.type_name() != expects {
            issues.error(
                index,
                format!(
                    "{kind} must be a {expects} (or its Multi form), not a {}",
                    geometry.type_name()
                ),
            );
            return;
        }
        let result = match (kind, geometry) {
            ("carriageway", Geometry::Lines(l)) => {
                line(index, props, LineKind::Carriageway, l, parts, issues)
            }
            ("ramp", Geometry::Lines(l)) => line(index, props, LineKind::Ramp, l, parts, issues),
            ("interchange", Geometry::Point(p)) => interchange(index, props, p, parts),
            ("weather_station", Geometry::Point(p)) => self.station(index, props, p, parts),
            (k, Geometry::Polygons(polygons)) => zone(index, props, k, polygons, parts),
            // The type check above makes this unreachable; say so rather than panic.
            (k, g) => Err(format!("{k} with a {} geometry", g.type_name())),
        };
        if let Err(e) = result {
            issues.error(index, format!("{kind}: {e}"));
        }
    }

    fn station(
        &mut self,
        index: usize,
        props: &Props,
        p: [f64; 2],
        parts: &mut Parts,
    ) -> Result<(), String> {
        let id = str_prop(props, "station_id").ok_or("missing `station_id`")?;
        if !valid_identifier(id) {
            return Err(format!(
                "station_id {id:?} is not 1-64 characters of [A-Za-z0-9._-]"
            ));
        }
        let id: Arc<str> = id.into();
        if !self.station_ids.insert(id.clone()) {
            return Err(format!("duplicate station_id {:?}", &*id));
        }
        parts.stations.push(Station {
            name: str_prop(props, "name").map_or_else(|| id.clone(), Arc::from),
            station_id: id,
            lon: p[0],
            lat: p[1],
            road: None,
            feature: index,
        });
        Ok(())
    }
}

/// CONTRACT section 1 identifiers: 1–64 chars of `[A-Za-z0-9._-]`.
fn valid_identifier(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn line(
    index: usize,
    props: &Props,
    kind: LineKind,
    parts_coords: Vec<Vec<[f64; 2]>>,
    parts: &mut Parts,
    issues: &mut Issues,
) -> Result<(), String> {
    let road_id: Arc<str> = str_prop(props, "road_id")
        .ok_or("missing `road_id`")?
        .into();
    let name: Arc<str> = str_prop(props, "name").map_or_else(|| road_id.clone(), Arc::from);
    let direction = match props.get("direction") {
        None | Some(Value::Null) => {
            issues.note(Some(index), "no `direction`: taken as \"both\"");
            Direction::Both
        }
        Some(Value::String(d)) => {
            Direction::parse(d).ok_or_else(|| format!("direction {d:?} is not up/down/both"))?
        }
        Some(_) => return Err("`direction` is not a string".into()),
    };
    let width_m = match num_prop(props, "width_m") {
        Ok(None) => DEFAULT_WIDTH_M,
        Ok(Some(w)) if PLAUSIBLE_WIDTH_M.contains(&w) => w,
        Ok(Some(w)) => {
            issues.note(
                Some(index),
                format!("width_m {w} is implausible: using {DEFAULT_WIDTH_M}"),
            );
            DEFAULT_WIDTH_M
        }
        Err(e) => {
            issues.note(Some(index), format!("{e}: using width {DEFAULT_WIDTH_M}"));
            DEFAULT_WIDTH_M
        }
    };
    let structure = match props.get("structure") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Structure::parse(s) {
            Some(s) => Some(s),
            None => {
                issues.note(
                    Some(index),
                    format!("structure {s:?} is not tunnel/bridge: ignored"),
                );
                None
            }
        },
        Some(_) => {
            issues.note(Some(index), "`structure` is not a string: ignored");
            None
        }
    };
    let attr = SegmentAttr {
        structure,
        half_width_m: (width_m / 2.0) as f32,
        gap: false,
    };
    let mut coords = Vec::new();
    let mut segments = Vec::new();
    for part in parts_coords {
        if !coords.is_empty() {
            segments.push(SegmentAttr { gap: true, ..attr });
        }
        segments.extend(std::iter::repeat(attr).take(part.len() - 1));
        coords.extend(part);
    }
    let draft = LineDraft {
        road_id,
        name,
        direction,
        kind,
        coords,
        segments,
        features: vec![index],
    };
    let along = draft.along();
    let profile = profile(props, &along)?;
    parts
        .lines
        .push(draft.into_line(along, profile, StakeSource::Given));
    Ok(())
}

/// Stakes from `stake_start_m`/`stake_end_m`, plus the optional per-vertex
/// `stakes_m` array (`null` = interpolate) for lines with chain breaks.
fn profile(props: &Props, along: &[f64]) -> Result<StakeProfile, String> {
    let start = num_prop(props, "stake_start_m")?;
    let end = num_prop(props, "stake_end_m")?;
    let length = along.last().copied().unwrap_or(0.0);
    let per_vertex = match props.get("stakes_m") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items),
        Some(_) => return Err("`stakes_m` is not an array".into()),
    };
    let Some(items) = per_vertex else {
        let start = start.ok_or("missing `stake_start_m`")?;
        let end = end.ok_or("missing `stake_end_m`")?;
        return StakeProfile::between_ends(length, start, end).ok_or_else(|| {
            format!("stake_start_m equals stake_end_m ({start}): stakes must run along the line")
        });
    };
    if items.len() != along.len() {
        return Err(format!(
            "`stakes_m` has {} entries for {} vertices",
            items.len(),
            along.len()
        ));
    }
    let mut anchors: Vec<[f64; 2]> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let stake = match item {
            Value::Null => continue,
            Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
            Value::String(s) => Stake::parse(s).map(Stake::metres),
            _ => None,
        }
        .ok_or_else(|| format!("stakes_m[{i}] is not a number, stake text or null"))?;
        anchors.push([along[i], stake]);
    }
    let first_given = items.first().is_some_and(|v| !v.is_null());
    let last_given = items.last().is_some_and(|v| !v.is_null());
    if let (Some(s), false) = (start, first_given) {
        anchors.insert(0, [0.0, s]);
    }
    if let (Some(e), false) = (end, last_given) {
        anchors.push([length, e]);
    }
    StakeProfile::from_anchors(anchors)
        .ok_or_else(|| "stakes must be given at two or more vertices and strictly increase or decrease along the line".to_string())
}

fn interchange(index: usize, props: &Props, p: [f64; 2], parts: &mut Parts) -> Result<(), String> {
    let road_id: Arc<str> = str_prop(props, "road_id")
        .ok_or("missing `road_id`")?
        .into();
    let stake_m = match props.get("stake_m") {
        Some(Value::String(s)) if Stake::parse(s).is_some() => Stake::parse(s).map(Stake::metres),
        _ => num_prop(props, "stake_m")?,
    }
    .ok_or("missing `stake_m`")?;
    parts.interchanges.push(Interchange {
        road_id,
        name: str_prop(props, "name").unwrap_or("interchange").into(),
        stake_m,
        lon: p[0],
        lat: p[1],
        direction: Direction::Both,
        exit_ref: str_prop(props, "exit_ref").map(Arc::from),
        feature: index,
    });
    Ok(())
}

fn zone(
    index: usize,
    props: &Props,
    kind: &str,
    polygons: Vec<Vec<Vec<[f64; 2]>>>,
    parts: &mut Parts,
) -> Result<(), String> {
    let kind = ZoneKind::parse(kind).ok_or_else(|| format!("unknown zone kind {kind:?}"))?;
    let active_from_ms = time_prop(props, "active_from")?;
    let active_to_ms = time_prop(props, "active_to")?;
    if let (Some(from), Some(to)) = (active_from_ms, active_to_ms) {
        if from >= to {
            return Err("active_from is not before active_to".into());
        }
    }
    parts.zones.push(ZoneDraft {
        kind,
        name: str_prop(props, "name").unwrap_or(kind.as_str()).into(),
        polygons,
        active_from_ms,
        active_to_ms,
        declared_road: str_prop(props, "road_id").map(Arc::from),
        feature: index,
    });
    Ok(())
}

/// RFC 3339 text or integer epoch milliseconds (the contract's two `ts` forms).
pub(crate) fn time_prop(props: &Props, key: &str) -> Result<Option<EventTime>, String> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|ms| Some(EventTime::from_ms(ms)))
            .ok_or_else(|| format!("`{key}` is not integer milliseconds")),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Some(EventTime::from_ms(t.timestamp_millis())))
            .map_err(|e| format!("`{key}` {s:?} is not RFC 3339: {e}")),
        Some(_) => Err(format!(
            "`{key}` is neither RFC 3339 text nor epoch milliseconds"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers() {
        assert!(valid_identifier("wx-07"));
        assert!(valid_identifier("a.b_c-9"));
        assert!(!valid_identifier(""));
        assert!(!valid_identifier("wx 07"));
        assert!(!valid_identifier("气象站"));
        assert!(!valid_identifier(&"a".repeat(65)));
    }

    #[test]
    fn times_in_both_contract_forms() {
        let props = json!({"a": "2026-11-28T21:15:30.120+08:00", "b": 1_795_871_730_120_i64, "c": "yesterday", "d": 1.5});
        let props = props.as_object().unwrap();
        assert_eq!(
            time_prop(props, "a"),
            Ok(Some(EventTime::from_ms(1_795_871_730_120)))
        );
        assert_eq!(
            time_prop(props, "b"),
            Ok(Some(EventTime::from_ms(1_795_871_730_120)))
        );
        assert!(time_prop(props, "c").is_err());
        assert!(time_prop(props, "d").is_err());
        assert_eq!(time_prop(props, "e"), Ok(None));
    }
}
