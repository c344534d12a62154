//! Reading GeoJSON (RFC 7946) geometry and properties out of a parsed JSON
//! value, defensively.
//!
//! The file is operator input, so nothing here trusts its shape: every
//! accessor returns a `Result` whose error text becomes a [`LoadIssue`]
//! message, and nothing indexes or unwraps. (serde_json's recursion limit
//! already protects against absurdly nested input.)
//!
//! [`LoadIssue`]: super::LoadIssue

use serde_json::{Map, Value};

use super::geodesy::valid_position;

pub(crate) type Props = Map<String, Value>;

/// A geometry, reduced to what the road module uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Geometry {
    Point([f64; 2]),
    /// A LineString (one part) or MultiLineString (several).
    Lines(Vec<Vec<[f64; 2]>>),
    /// A Polygon (one) or MultiPolygon (several); each polygon is its rings,
    /// outer first, each closed.
    Polygons(Vec<Vec<Vec<[f64; 2]>>>),
}

impl Geometry {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Geometry::Point(_) => "Point",
            Geometry::Lines(_) => "LineString",
            Geometry::Polygons(_) => "Polygon",
        }
    }
}

/// The features of a FeatureCollection (or of a lone Feature).
pub(crate) fn features(doc: &Value) -> Result<&[Value], String> {
    let Some(obj) = doc.as_object() else {
        return Err("the top level is not a JSON object".into());
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => match obj.get("features") {
            Some(Value::Array(list)) => Ok(list.as_slice()),
            _ => Err("FeatureCollection without a `features` array".into()),
        },
        Some("Feature") => Ok(std::slice::from_ref(doc)),
        Some(other) => Err(format!(
            "top-level type is {other:?}, expected \"FeatureCollection\""
        )),
        None => Err("top-level object has no `type`".into()),
    }
}

/// Parses a feature's `geometry` member.
pub(crate) fn geometry(feature: &Map<String, Value>) -> Result<Geometry, String> {
    let geometry = match feature.get("geometry") {
        Some(Value::Object(g)) => g,
        Some(Value::Null) | None => return Err("feature has no geometry".into()),
        Some(_) => return Err("`geometry` is not an object".into()),
    };
    let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
    let coords = geometry
        .get("coordinates")
        .ok_or_else(|| format!("{kind} without coordinates"))?;
    match kind {
        "Point" => Ok(Geometry::Point(position(coords)?)),
        "LineString" => Ok(Geometry::Lines(vec![line(coords)?])),
        "MultiLineString" => {
            let parts = array(coords, "MultiLineString coordinates")?;
            if parts.is_empty() {
                return Err("MultiLineString has no parts".into());
            }
            let lines = parts
                .iter()
                .enumerate()
                .map(|(i, part)| line(part).map_err(|e| format!("part {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Geometry::Lines(lines))
        }
        "Polygon" => Ok(Geometry::Polygons(vec![polygon(coords)?])),
        "MultiPolygon" => {
            let parts = array(coords, "MultiPolygon coordinates")?;
            if parts.is_empty() {
                return Err("MultiPolygon has no polygons".into());
            }
            let polygons = parts
                .iter()
                .enumerate()
                .map(|(i, part)| polygon(part).map_err(|e| format!("polygon {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Geometry::Polygons(polygons))
        }
        "" => Err("geometry has no `type`".into()),
        other => Err(format!("unsupported geometry type {other:?}")),
    }
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], String> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| format!("{what} is not an array"))
}

/// `[lon, lat]` or `[lon, lat, alt]`, finite and in range.
fn position(v: &Value) -> Result<[f64; 2], String> {
    let items = array(v, "position")?;
    if items.len() < 2 {
        return Err("position has fewer than 2 numbers".into());
    }
    let (Some(lon), Some(lat)) = (items[0].as_f64(), items[1].as_f64()) else {
        return Err("position holds a non-number".into());
    };
    if !valid_position(lon, lat) {
        return Err(format!(
            "position [{lon}, {lat}] is not a valid lon/lat (NaN or out of range)"
        ));
    }
    Ok([lon, lat])
}

/// A line with at least two distinct points; repeated consecutive vertices
/// are dropped (they add nothing and would make zero-length segments).
fn line(v: &Value) -> Result<Vec<[f64; 2]>, String> {
    let items = array(v, "line coordinates")?;
    let mut points: Vec<[f64; 2]> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = position(item).map_err(|e| format!("vertex {i}: {e}"))?;
        if points.last() != Some(&p) {
            points.push(p);
        }
    }
    if points.len() < 2 {
        return Err(format!(
            "line has fewer than 2 distinct points ({} given)",
            items.len()
        ));
    }
    Ok(points)
}

/// A polygon: rings of at least 4 positions whose last equals the first.
fn polygon(v: &Value) -> Result<Vec<Vec<[f64; 2]>>, String> {
    let rings = array(v, "polygon coordinates")?;
    if rings.is_empty() {
        return Err("polygon has no rings".into());
    }
    rings
        .iter()
        .enumerate()
        .map(|(r, ring)| {
            let items = array(ring, "ring")?;
            let points = items
                .iter()
                .enumerate()
                .map(|(i, item)| position(item).map_err(|e| format!("ring {r} vertex {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            if points.len() < 4 {
                return Err(format!(
                    "ring {r} has {} positions, a closed ring needs at least 4",
                    points.len()
                ));
            }
            if points.first() != points.last() {
                return Err(format!(
                    "ring {r} is not closed (last position differs from the first)"
                ));
            }
            Ok(points)
        })
        .collect()
}

/// A string property, trimmed; `None` when absent, not a string, or empty.
pub(crate) fn str_prop<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A numeric property. Numbers written as strings are accepted (OSM tags and
/// spreadsheets export them that way); `Ok(None)` when absent or null.
pub(crate) fn num_prop(props: &Props, key: &str) -> Result<Option<f64>, String> {
    let value = match props.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("`{key}` is not a finite number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn geom(v: Value) -> Result<Geometry, String> {
        geometry(
            json!({ "type": "Feature", "geometry": v })
                .as_object()
                .unwrap(),
        )
    }

    #[test]
    fn reads_lines_and_drops_repeated_vertices() {
        let g = geom(json!({"type":"LineString","coordinates":[[1,2],[1,2],[3,4,100]]})).unwrap();
        assert_eq!(g, Geometry::Lines(vec![vec![[1.0, 2.0], [3.0, 4.0]]]));
    }

    #[test]
    fn rejects_bad_geometry_with_a_reason() {
        let cases = [
            (
                json!({"type":"LineString","coordinates":[[1,2]]}),
                "fewer than 2",
            ),
            (
                json!({"type":"LineString","coordinates":[[1,2],[1,2]]}),
                "fewer than 2",
            ),
            (
                json!({"type":"LineString","coordinates":[[1,2],["a",3]]}),
                "non-number",
            ),
            (
                json!({"type":"LineString","coordinates":[[1,2],[200,3]]}),
                "out of range",
            ),
            (
                json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}),
                "not closed",
            ),
            (
                json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}),
                "at least 4",
            ),
            (
                json!({"type":"GeometryCollection","geometries":[]}),
                "without coordinates",
            ),
            (json!({"type":"Curve","coordinates":[]}), "unsupported"),
            (Value::Null, "no geometry"),
        ];
        for (g, expected) in cases {
            let err = geom(g.clone()).unwrap_err();
            assert!(err.contains(expected), "{g}: {err}");
        }
    }

    #[test]
    fn numbers_may_be_strings() {
        let props = json!({"a": "12.5", "b": 3, "c": "x", "d": null});
        let props = props.as_object().unwrap();
        assert_eq!(num_prop(props, "a"), Ok(Some(12.5)));
        assert_eq!(num_prop(props, "b"), Ok(Some(3.0)));
        assert!(num_prop(props, "c").is_err());
        assert_eq!(num_prop(props, "d"), Ok(None));
        assert_eq!(num_prop(props, "e"), Ok(None));
    }
}
