//! Shared by the integration tests: where IPTC's conformance material is, reading its files, and the
//! "oracle" — IPTC's own JSON Schemas run by the `jsonschema` crate — that the hand-written rules are
//! compared with. The schemas are read from the shared folder at test time; the crate never embeds them.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use karavan_ninjs::NinjsVersion;
use serde_json::Value;

/// The shared folder: `$KARAVAN_SHARED`, else `shared/` beside the repository. Panics when the
/// conformance material is not there, so that a test can never pass without it.
pub fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("KARAVAN_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    assert!(
        dir.join("conformance/ninjs/validation/test_suite").is_dir(),
        "IPTC's ninjs conformance material is missing: expected {}/conformance/ninjs/validation/test_suite \
         (set KARAVAN_SHARED to the shared folder)",
        dir.display()
    );
    dir
}

pub fn ninjs_dir() -> PathBuf {
    shared_dir().join("conformance/ninjs")
}

/// The suite's folders for published versions.
pub const VERSION_FOLDERS: [(&str, NinjsVersion); 12] = [
    ("1.0", NinjsVersion::V1_0),
    ("1.1", NinjsVersion::V1_1),
    ("1.2", NinjsVersion::V1_2),
    ("1.3", NinjsVersion::V1_3),
    ("1.4", NinjsVersion::V1_4),
    ("1.5", NinjsVersion::V1_5),
    ("1.6", NinjsVersion::V1_6),
    ("2.0", NinjsVersion::V2_0),
    ("2.1", NinjsVersion::V2_1),
    ("2.2", NinjsVersion::V2_2),
    ("3.0", NinjsVersion::V3_0),
    ("3.1", NinjsVersion::V3_1),
];

/// One file of the suite or the examples.
pub struct Case {
    /// Path relative to the conformance folder.
    pub name: String,
    /// The document, or why `serde_json` refused the file.
    pub json: Result<Value, String>,
}

fn read_case(path: &Path) -> Case {
    let name = path.strip_prefix(ninjs_dir()).unwrap_or(path).display().to_string();
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Case { name, json: serde_json::from_str(&text).map_err(|e| e.to_string()) }
}

/// The `*.json` files of a folder, sorted; with `recursive`, of its subfolders too.
pub fn json_files(dir: &Path, recursive: bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if recursive {
                files.extend(json_files(&path, true));
            }
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `validation/test_suite/<folder>/<kind>/*.json`.
pub fn suite_cases(folder: &str, kind: &str) -> Vec<Case> {
    let dir = ninjs_dir().join("validation/test_suite").join(folder).join(kind);
    json_files(&dir, false).iter().map(|path| read_case(path)).collect()
}

/// Every document of `examples/1.4`, `examples/2.1` and `examples/3.0` (subfolders included), with the
/// version its folder is for. A file holding an array of documents yields each of them.
pub fn example_documents() -> Vec<(String, NinjsVersion, Value)> {
    let mut documents = Vec::new();
    for (folder, version) in [("1.4", NinjsVersion::V1_4), ("2.1", NinjsVersion::V2_1), ("3.0", NinjsVersion::V3_0)] {
        for path in json_files(&ninjs_dir().join("examples").join(folder), true) {
            let case = read_case(&path);
            let value = case.json.unwrap_or_else(|e| panic!("{} is not JSON: {e}", case.name));
            match value {
                Value::Array(items) => {
                    for (index, item) in items.into_iter().enumerate() {
                        documents.push((format!("{}[{index}]", case.name), version, item));
                    }
                }
                other => documents.push((case.name, version, other)),
            }
        }
    }
    documents
}

fn load(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// IPTC's schema for `version`, as the oracle runs it. The 1.0 schema is draft-03, which the
/// `jsonschema` crate does not run; its only draft-03 feature is `"required": true` on `uri`, which
/// becomes the draft-04 `"required": ["uri"]`.
pub fn iptc_schema(version: NinjsVersion) -> Value {
    let path = ninjs_dir().join(format!("specification/ninjs-schema_{}.json", version.as_str()));
    let mut schema = load(&path);
    if version == NinjsVersion::V1_0 {
        draft3_to_draft4(&mut schema);
        schema["$schema"] = Value::from("http://json-schema.org/draft-04/schema#");
    }
    schema
}

fn draft3_to_draft4(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    let mut required = Vec::new();
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            if let Value::Object(property) = property
                && property.remove("required") == Some(Value::Bool(true))
            {
                required.push(Value::from(name.as_str()));
            }
        }
    }
    if !required.is_empty() {
        map.insert("required".to_string(), Value::Array(required));
    }
    for value in map.values_mut() {
        match value {
            Value::Object(_) => draft3_to_draft4(value),
            Value::Array(items) => items.iter_mut().for_each(draft3_to_draft4),
            _ => {}
        }
    }
}

/// The GeoJSON schema the 2.0 and later schemas reference, kept locally beside the suite.
pub fn geojson_schema() -> Value {
    load(&ninjs_dir().join("validation/test_suite/GeoJSON-schema.json"))
}

/// IPTC's schema for `version` compiled by the `jsonschema` crate, with GeoJSON resolved locally;
/// `formats` turns `format` assertion on.
pub fn oracle(version: NinjsVersion, formats: bool) -> jsonschema::Validator {
    let geojson = jsonschema::Resource::from_contents(geojson_schema()).expect("GeoJSON schema resource");
    jsonschema::options()
        .should_validate_formats(formats)
        .with_resource("https://geojson.org/schema/GeoJSON.json", geojson)
        .build(&iptc_schema(version))
        .unwrap_or_else(|e| panic!("the jsonschema crate cannot compile the IPTC {} schema: {e}", version.as_str()))
}

/// The places the oracle blames for a document's invalidity: each error's instance path and, for
/// unknown or missing properties, the property's own pointer.
pub fn oracle_blames(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    use jsonschema::error::ValidationErrorKind;
    let mut blamed = Vec::new();
    for error in validator.iter_errors(doc) {
        let base = error.instance_path.as_str().to_string();
        match &error.kind {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                blamed.extend(unexpected.iter().map(|name| format!("{base}/{}", escape(name))));
            }
            ValidationErrorKind::Required { property } => {
                blamed.push(format!("{base}/{}", escape(property.as_str().unwrap_or_default())));
            }
            _ => {}
        }
        blamed.push(base);
    }
    blamed
}

/// Whether our violation at `pointer` names the same place as one the oracle blames: the same
/// pointer, or one inside the other (an `anyOf` failure is blamed on the object, our violation on the
/// member). The document root blames nothing in particular and matches only itself.
pub fn names_a_blamed_place(pointer: &str, blamed: &[String]) -> bool {
    let ours = if pointer == "/" { "" } else { pointer };
    blamed.iter().any(|theirs| {
        ours == theirs
            || (!theirs.is_empty() && ours.starts_with(&format!("{theirs}/")))
            || (!ours.is_empty() && theirs.starts_with(&format!("{ours}/")))
    })
}

pub fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}
