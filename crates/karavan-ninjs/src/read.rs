//! The publish path's entry point: decide which version a document is, then normalise it.

use serde_json::Value;

use crate::detect::{declared_version, guessed_versions};
use crate::{NinjsError, NinjsVersion, Normalized, Violation, normalize};

/// The deepest JSON nesting a document may have. Real ninjs documents nest about ten levels (a
/// package of items with renditions); the limit keeps recursion far from any thread's stack end.
pub const MAX_JSON_DEPTH: usize = 64;

/// The nesting depth of a value, computed without recursion.
pub fn json_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// Reads `doc` as ninjs and normalises it to 3.1. The version is `client_says` if given, else what the
/// document declares ([`declared_version`]); either is held to strictly. A document that says nothing
/// is tried as each version its property names suggest, most plausible first (camelCase such as
/// `versionCreated` suggests 3.x, lowercase plurals such as `headlines` 2.x, singulars such as
/// `headline` and `body_text` 1.x; newest version of a line first), and the first version it is valid
/// ninjs of wins. If none fits, the violations reported are those of the most plausible version.
pub fn read(doc: &Value, client_says: Option<NinjsVersion>) -> Result<Normalized, NinjsError> {
    let Value::Object(map) = doc else {
        return Err(NinjsError::NotAnObject);
    };
    // Validation and normalisation recurse; refuse pathological nesting first, without recursing.
    if json_depth(doc) > MAX_JSON_DEPTH {
        return Err(NinjsError::Invalid {
            version: client_says.map_or("3.1", NinjsVersion::as_str),
            violations: vec![Violation {
                pointer: "/".to_string(),
                message: format!("the document is nested more than {MAX_JSON_DEPTH} levels deep"),
            }],
        });
    }
    if let Some(version) = client_says.or_else(|| declared_version(map)) {
        return normalize(doc, version);
    }
    let mut most_plausible_failure = None;
    for version in guessed_versions(map) {
        match normalize(doc, version) {
            Ok(normalized) => return Ok(normalized),
            Err(error) => {
                most_plausible_failure.get_or_insert(error);
            }
        }
    }
    Err(most_plausible_failure.unwrap_or(NinjsError::NotAnObject))
}
