//! Which ninjs version a document follows: what it declares (`standard`, `$standard`, `$schema`),
//! whether it declares a non-IPTC extension schema, and, when it declares nothing, a ranking of the
//! versions its property names suggest.

use serde_json::{Map, Value};

use crate::rules::rules;
use crate::{NinjsVersion, formats};

/// The version a document says it follows: the `standard` (2.x, 3.x) or `$standard` (1.3 and later)
/// object's `schema` when it names an IPTC ninjs schema, else that object's `version` when the object
/// names ninjs (or names nothing), else a `$standard` or `$schema` string naming an IPTC ninjs schema
/// such as `http://www.iptc.org/std/ninjs/ninjs-schema_1.3.json`. `None` when it says nothing usable.
///
/// The schema URL wins over `version` because it is what the document asks to be validated against;
/// the suite has documents whose `version` is not a version ("2.0-dev", "1.-x-dev").
pub fn declared_version(doc: &Map<String, Value>) -> Option<NinjsVersion> {
    for key in ["standard", "$standard"] {
        match doc.get(key) {
            Some(Value::Object(standard)) => {
                if let Some(Value::String(schema)) = standard.get("schema")
                    && let Some(SchemaUrl::Iptc(Some(version))) = classify(schema)
                {
                    return Some(version);
                }
                let names_ninjs = match standard.get("name") {
                    None => true,
                    Some(Value::String(name)) => name.to_ascii_lowercase().contains("ninjs"),
                    Some(_) => false,
                };
                if names_ninjs
                    && let Some(Value::String(version)) = standard.get("version")
                    && let Ok(version) = NinjsVersion::parse(version)
                {
                    return Some(version);
                }
            }
            Some(Value::String(schema)) => {
                if let Some(SchemaUrl::Iptc(Some(version))) = classify(schema) {
                    return Some(version);
                }
            }
            _ => {}
        }
    }
    match doc.get("$schema") {
        Some(Value::String(schema)) => match classify(schema) {
            Some(SchemaUrl::Iptc(version)) => version,
            _ => None,
        },
        _ => None,
    }
}

/// The non-IPTC schema a document declares (`standard.schema`, `$standard.schema`, or a `$standard` /
/// `$schema` string that is an absolute URI not at iptc.org), which makes it an extension of the ninjs
/// version it is based on: its unknown top-level properties are accepted and kept as extensions.
pub fn extension_schema(doc: &Map<String, Value>) -> Option<&str> {
    let nested = |key: &str| match doc.get(key) {
        Some(Value::Object(standard)) => standard.get("schema").and_then(Value::as_str),
        Some(Value::String(schema)) => Some(schema.as_str()),
        _ => None,
    };
    let claims = [nested("standard"), nested("$standard"), doc.get("$schema").and_then(Value::as_str)];
    claims.into_iter().flatten().find(|schema| matches!(classify(schema), Some(SchemaUrl::Other)))
}

/// What a schema URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemaUrl {
    /// A schema published at iptc.org, and the ninjs version it is for when that can be read from
    /// its name (`ninjs-schema_1.3.json`, or the base version of a draft, `ninjs-schema-dev_0.2_v1.4.json`).
    Iptc(Option<NinjsVersion>),
    /// Any other absolute URI.
    Other,
}

fn classify(url: &str) -> Option<SchemaUrl> {
    if !formats::is_uri(url) {
        return None;
    }
    let lower = url.to_ascii_lowercase();
    let without_scheme = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    let Some(without_scheme) = without_scheme else {
        return Some(SchemaUrl::Other);
    };
    let host_and_path = without_scheme.strip_prefix("www.").unwrap_or(without_scheme);
    let Some(path) = host_and_path.strip_prefix("iptc.org/") else {
        return Some(SchemaUrl::Other);
    };
    let path = path.split('#').next().unwrap_or(path);
    let file = path.strip_suffix(".json");
    let version = file.and_then(|file| {
        if let Some(version) = file.strip_prefix("std/ninjs/ninjs-schema_") {
            NinjsVersion::parse(version).ok()
        } else if let Some(draft) = file.strip_prefix("std-dev/ninjs/ninjs-schema-dev_") {
            draft.rsplit_once("_v").and_then(|(_, version)| NinjsVersion::parse(version).ok())
        } else {
            None
        }
    });
    Some(SchemaUrl::Iptc(version))
}

/// Versions to try for a document that declares none, most plausible first: the major lines ranked by
/// how many of the document's top-level names they define (1.x `headline`, `body_text`,
/// `versioncreated`; 2.x `headlines`, `versioncreated`; 3.x `headlines`, `versionCreated`), newer line
/// first on a tie, and within a line the newest version first.
///
/// A document whose every name is a ninjs 3.x name is read as 3.x only: 3.1 is the exchange's
/// language, and such a document with a bad value (`urgency: 12`) must be refused as invalid 3.1
/// rather than slip through as an older version that happens to allow the value.
pub(crate) fn guessed_versions(doc: &Map<String, Value>) -> Vec<NinjsVersion> {
    let line_three: Vec<NinjsVersion> = NinjsVersion::ALL.into_iter().rev().filter(|v| v.line() == 3).collect();
    let (older_names, camel_names) = nested_name_evidence(doc);
    // Top-level names alone cannot tell 2.x from 3.x when both lines know them all (`uri`, `headlines`,
    // `renditions`); the names inside nested objects can (2.x `contenttype`, 3.x `contentType`).
    let nested_says_older = older_names > camel_names;
    if !nested_says_older && doc.keys().all(|key| line_three.iter().any(|v| rules(*v).document.knows(key))) {
        return line_three;
    }
    let mut lines: Vec<(u8, usize)> = [1u8, 2, 3]
        .into_iter()
        .map(|line| {
            let versions: Vec<NinjsVersion> = NinjsVersion::ALL.into_iter().filter(|v| v.line() == line).collect();
            let known = doc.keys().filter(|key| versions.iter().any(|v| rules(*v).document.knows(key))).count();
            let nested = if line == 3 { camel_names } else { older_names };
            (line, known + nested)
        })
        .collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    lines
        .into_iter()
        .flat_map(|(line, _)| NinjsVersion::ALL.into_iter().rev().filter(move |v| v.line() == line))
        .collect()
}

/// Names 1.x and 2.x write in lower case where 3.x writes them in camelCase (`contenttype`,
/// `contentType`).
const OLDER_SPELLINGS: [&str; 25] = [
    "altids",
    "charcount",
    "contactinfo",
    "contentcreated",
    "contenttype",
    "copyrightholder",
    "copyrightnotice",
    "digitalsourcetype",
    "ednote",
    "encodedrights",
    "firstcreated",
    "geojson",
    "infosources",
    "langid",
    "linkedrights",
    "postalcode",
    "pubstatus",
    "representationtype",
    "rightsinfo",
    "sizeinbytes",
    "symboltype",
    "trustindicators",
    "usageterms",
    "versioncreated",
    "wordcount",
];

/// How many names inside nested objects (not the top level) are older spellings, and how many are
/// camelCase. Walks with a stack; the caller has bounded the depth.
fn nested_name_evidence(doc: &Map<String, Value>) -> (usize, usize) {
    let (mut older, mut camel) = (0, 0);
    let mut stack: Vec<&Value> = doc.values().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, member) in map {
                    if OLDER_SPELLINGS.contains(&key.as_str()) {
                        older += 1;
                    } else if key.chars().skip(1).any(|c| c.is_ascii_uppercase()) {
                        camel += 1;
                    }
                    stack.push(member);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    (older, camel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_urls() {
        let cases = [
            ("http://www.iptc.org/std/ninjs/ninjs-schema_1.3.json", Some(SchemaUrl::Iptc(Some(NinjsVersion::V1_3)))),
            ("https://iptc.org/std/ninjs/ninjs-schema_2.1.json#", Some(SchemaUrl::Iptc(Some(NinjsVersion::V2_1)))),
            (
                "http://www.iptc.org/std-dev/ninjs/ninjs-schema-dev_0.2_v1.4.json",
                Some(SchemaUrl::Iptc(Some(NinjsVersion::V1_4))),
            ),
            ("http://www.iptc.org/std/ninjs/ninjs-schema_9.9.json", Some(SchemaUrl::Iptc(None))),
            ("https://tt.se/spec/ttninjs/ttninjs-schema_2.1.json", Some(SchemaUrl::Other)),
            ("https://iptc.org.evil.example/std/ninjs/ninjs-schema_2.1.json", Some(SchemaUrl::Other)),
            ("not a url", None),
        ];
        for (url, expected) in cases {
            assert_eq!(classify(url), expected, "{url}");
        }
    }
}
