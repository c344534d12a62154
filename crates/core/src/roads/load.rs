//! Loading a network from a file's bytes: native features and OSM features
//! (the two may be mixed in one file), then assembly.

use serde_json::Value;

use super::geojson::{features, geometry, Props};
use super::issues::{IssueLevel, Issues, LoadError, LoadOptions};
use super::load_native::NativeLoader;
use super::load_osm::{tags, OsmLoader};
use super::network::{Parts, RoadNetwork};

impl RoadNetwork {
    /// Builds a network from the bytes of a GeoJSON file.
    ///
    /// A feature with a `kind` property is read as the native schema; any
    /// other is read as OSM tags. Bad features are skipped and listed in
    /// [`RoadNetwork::issues`]; with `opts.strict`, any bad feature rejects
    /// the load with all of them listed. Never panics, whatever the bytes.
    pub fn from_geojson(bytes: &[u8], opts: &LoadOptions) -> Result<RoadNetwork, LoadError> {
        if !(opts.max_snap_m.is_finite() && opts.max_snap_m > 0.0) {
            return Err(LoadError::Options(format!(
                "max_snap_m must be a positive number of metres, not {}",
                opts.max_snap_m
            )));
        }
        let doc: Value = serde_json::from_slice(bytes)?;
        let list = features(&doc).map_err(LoadError::NotGeoJson)?;

        let mut issues = Issues::default();
        let mut parts = Parts::default();
        let mut native = NativeLoader::default();
        let mut osm = OsmLoader::default();
        let empty = Props::new();
        let mut unmapped: Vec<usize> = Vec::new();
        for (index, feature) in list.iter().enumerate() {
            let Some(feature) = feature.as_object() else {
                issues.error(index, "not a JSON object");
                continue;
            };
            if feature.get("type").and_then(Value::as_str) != Some("Feature") {
                issues.error(index, "`type` is not \"Feature\"");
                continue;
            }
            let props = match feature.get("properties") {
                Some(Value::Object(p)) => p,
                None | Some(Value::Null) => &empty,
                Some(_) => {
                    issues.error(index, "`properties` is not an object");
                    continue;
                }
            };
            if props.contains_key("kind") {
                native.add(index, props, geometry(feature), &mut parts, &mut issues);
            } else if !osm.add(index, tags(props), geometry(feature), &mut issues) {
                unmapped.push(index);
            }
        }
        if !unmapped.is_empty() {
            // One note, not one per feature: OSM exports carry hundreds of
            // untagged or irrelevant nodes (traffic signs, TMC points).
            let shown: Vec<String> = unmapped.iter().take(10).map(usize::to_string).collect();
            issues.note(
                None,
                format!(
                    "{} feature(s) with neither a `kind` nor a mapped OSM tag were skipped (features {}{})",
                    unmapped.len(),
                    shown.join(", "),
                    if unmapped.len() > 10 { ", …" } else { "" }
                ),
            );
        }
        osm.finish(&mut parts, &mut issues);

        if opts.strict && parts.lines.is_empty() {
            issues.general_error("no road lines in the file");
        }
        if opts.strict && issues.has_errors() {
            let errors = issues
                .into_vec()
                .into_iter()
                .filter(|i| i.level == IssueLevel::Error)
                .collect();
            return Err(LoadError::Rejected(errors));
        }
        Ok(RoadNetwork::assemble(parts, opts, issues))
    }
}
