//! The publish path's entry point: decide which version a document is, then normalise it.

use serde_json::Value;

use crate::detect::{declared_version, guessed_versions};
use crate::{NinjsError, NinjsVersion, Normalized, normalize};

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
