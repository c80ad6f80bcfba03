//! The GeoJSON schema that ninjs 2.0 and later reference for a place's `geojson` / `geoJSON`
//! (`https://geojson.org/schema/GeoJSON.json`), written as code.
//!
//! The schema is a `oneOf` of nine object types told apart by their `type` member, so checking the
//! alternative that `type` names is equivalent to the `oneOf`. Members other than the ones below are
//! allowed, as in the schema.

use serde_json::{Map, Value};

use crate::validate::describe;

/// The first reason a value is not GeoJSON: where (a JSON pointer relative to the value) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GeoProblem {
    pub pointer: String,
    pub message: String,
}

const GEOMETRIES: &[&str] = &["Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"];
const GEOMETRIES_AND_COLLECTION: &[&str] =
    &["Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection"];
const ALL_TYPES: &[&str] = &[
    "Point",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
    "Feature",
    "FeatureCollection",
];

type Checked = Result<(), GeoProblem>;

fn problem(pointer: &str, message: String) -> Checked {
    Err(GeoProblem { pointer: pointer.to_string(), message })
}

/// Checks a GeoJSON object of any of the nine types.
pub(crate) fn check(value: &Value) -> Checked {
    check_typed(value, "", ALL_TYPES)
}

fn check_typed(value: &Value, at: &str, allowed: &[&str]) -> Checked {
    let Value::Object(map) = value else {
        return problem(at, format!("must be a geojson object, got {}", describe(value)));
    };
    let kind = match map.get("type") {
        None => return problem(&format!("{at}/type"), "type is required".to_string()),
        Some(Value::String(kind)) if allowed.contains(&kind.as_str()) => kind.as_str(),
        Some(other) => {
            return problem(
                &format!("{at}/type"),
                format!("type must be one of {}, got {}", allowed.join(", "), describe(other)),
            );
        }
    };
    match kind {
        "Point" => coordinates(map, at, &[2]),
        "LineString" => coordinates(map, at, &[2, 2]),
        "Polygon" => coordinates(map, at, &[0, 4, 2]),
        "MultiPoint" => coordinates(map, at, &[0, 2]),
        "MultiLineString" => coordinates(map, at, &[0, 2, 2]),
        "MultiPolygon" => coordinates(map, at, &[0, 0, 4, 2]),
        "GeometryCollection" => {
            let geometries = required_array(map, at, "geometries")?;
            for (index, geometry) in geometries.iter().enumerate() {
                check_typed(geometry, &format!("{at}/geometries/{index}"), GEOMETRIES)?;
            }
            Ok(())
        }
        "Feature" => feature(map, at),
        _ => {
            let features = required_array(map, at, "features")?;
            for (index, feature_value) in features.iter().enumerate() {
                let feature_at = format!("{at}/features/{index}");
                let Value::Object(feature_map) = feature_value else {
                    return problem(
                        &feature_at,
                        format!("a feature must be an object, got {}", describe(feature_value)),
                    );
                };
                match feature_map.get("type") {
                    Some(Value::String(kind)) if kind == "Feature" => {}
                    None => {
                        return problem(&format!("{feature_at}/type"), "type is required".to_string());
                    }
                    Some(other) => {
                        return problem(
                            &format!("{feature_at}/type"),
                            format!("type must be Feature, got {}", describe(other)),
                        );
                    }
                }
                feature(feature_map, &feature_at)?;
            }
            Ok(())
        }
    }?;
    bbox(map, at)
}

fn required_array<'v>(map: &'v Map<String, Value>, at: &str, name: &str) -> Result<&'v Vec<Value>, GeoProblem> {
    match map.get(name) {
        Some(Value::Array(items)) => Ok(items),
        None => Err(GeoProblem { pointer: format!("{at}/{name}"), message: format!("{name} is required") }),
        Some(other) => Err(GeoProblem {
            pointer: format!("{at}/{name}"),
            message: format!("{name} must be an array, got {}", describe(other)),
        }),
    }
}

/// `coordinates`: nested arrays, one level per entry of `minimum_lengths` (each with that many items
/// at least), with numbers at the bottom.
fn coordinates(map: &Map<String, Value>, at: &str, minimum_lengths: &[usize]) -> Checked {
    let items = required_array(map, at, "coordinates")?;
    nested(items, &format!("{at}/coordinates"), minimum_lengths)
}

fn nested(items: &[Value], at: &str, minimum_lengths: &[usize]) -> Checked {
    let [minimum, inner @ ..] = minimum_lengths else {
        return Ok(());
    };
    if items.len() < *minimum {
        return problem(at, format!("coordinates need at least {minimum} entries here, got {}", items.len()));
    }
    for (index, item) in items.iter().enumerate() {
        let item_at = format!("{at}/{index}");
        match (inner.is_empty(), item) {
            (true, Value::Number(_)) => {}
            (true, other) => {
                return problem(&item_at, format!("a coordinate must be a number, got {}", describe(other)));
            }
            (false, Value::Array(children)) => nested(children, &item_at, inner)?,
            (false, other) => {
                return problem(&item_at, format!("coordinates must nest arrays here, got {}", describe(other)));
            }
        }
    }
    Ok(())
}

fn feature(map: &Map<String, Value>, at: &str) -> Checked {
    for name in ["properties", "geometry"] {
        if !map.contains_key(name) {
            return problem(&format!("{at}/{name}"), format!("{name} is required"));
        }
    }
    match map.get("id") {
        None | Some(Value::Number(_) | Value::String(_)) => {}
        Some(other) => {
            return problem(&format!("{at}/id"), format!("id must be a number or a string, got {}", describe(other)));
        }
    }
    match map.get("properties") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(other) => {
            return problem(
                &format!("{at}/properties"),
                format!("properties must be null or an object, got {}", describe(other)),
            );
        }
    }
    match map.get("geometry") {
        None | Some(Value::Null) => {}
        Some(geometry) => check_typed(geometry, &format!("{at}/geometry"), GEOMETRIES_AND_COLLECTION)?,
    }
    bbox(map, at)
}

fn bbox(map: &Map<String, Value>, at: &str) -> Checked {
    match map.get("bbox") {
        None => Ok(()),
        Some(Value::Array(items)) if items.len() >= 4 && items.iter().all(Value::is_number) => Ok(()),
        Some(other) => problem(
            &format!("{at}/bbox"),
            format!("bbox must be an array of at least 4 numbers, got {}", describe(other)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn geojson_shapes() {
        let good = [
            json!({"type": "Point", "coordinates": [35, 39]}),
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [46.05108, 14.50513]}, "properties": null}),
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
            json!({"type": "MultiPolygon", "coordinates": []}),
            json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]}),
            json!({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": null, "id": 3}]}),
        ];
        for value in good {
            assert_eq!(check(&value), Ok(()), "{value}");
        }
        let bad = [
            (json!({"coordinates": [35, 39]}), "/type"),
            (json!({"type": "Foo", "co-ordinates": ["dog", "cat"]}), "/type"),
            (json!({"type": "Point", "coordinates": [35]}), "/coordinates"),
            (json!({"type": "Point", "coordinates": ["35", 39]}), "/coordinates/0"),
            (json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}), "/coordinates/0"),
            (json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}), "/properties"),
            (
                json!({"type": "GeometryCollection", "geometries": [{"type": "GeometryCollection", "geometries": []}]}),
                "/geometries/0/type",
            ),
            (json!({"type": "Point", "coordinates": [1, 2], "bbox": [1, 2, 3]}), "/bbox"),
            (json!([1, 2]), ""),
        ];
        for (value, pointer) in bad {
            assert_eq!(check(&value).map_err(|p| p.pointer), Err(pointer.to_string()), "{value}");
        }
    }
}
