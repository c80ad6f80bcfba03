//! What normalisation produces for the suite's `should_pass` documents and IPTC's examples: valid
//! ninjs 3.1 by IPTC's 3.1 schema with `format` asserted, keeping the headline, body, subjects,
//! rights and copyright of the original, and dropping no value of the original without a trace.

mod common;

use common::{VERSION_FOLDERS, example_documents, oracle, suite_cases};
use karavan_ninjs::{NinjsVersion, Normalized, extension_schema, read};
use serde_json::{Map, Value};

#[test]
fn the_3_1_schema_has_no_references_but_geojson() {
    // The 3.1 output check must not silently skip a part of the schema it cannot resolve.
    let schema = common::iptc_schema(NinjsVersion::V3_1);
    let mut references = Vec::new();
    collect_references(&schema, &mut references);
    references.retain(|reference| !reference.starts_with("#/"));
    assert_eq!(references, vec!["https://geojson.org/schema/GeoJSON.json#".to_string(); 1]);
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                match (key.as_str(), member) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_references(member, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_references(item, out)),
        _ => {}
    }
}

#[test]
fn suite_and_examples_normalise_to_valid_ninjs_3_1() {
    let output_schema = oracle(NinjsVersion::V3_1, true);
    let mut corpus: Vec<(String, NinjsVersion, Value)> = Vec::new();
    for (folder, version) in VERSION_FOLDERS {
        for case in suite_cases(folder, "should_pass") {
            let doc = case.json.unwrap_or_else(|e| panic!("{} is not JSON: {e}", case.name));
            corpus.push((case.name, version, doc));
        }
    }
    let suite_count = corpus.len();
    corpus.extend(example_documents());

    let mut problems = Vec::new();
    let (mut converted, mut extensions_kept, mut refused_like_iptc) = (0, 0, Vec::new());
    for (name, version, doc) in &corpus {
        let iptc_accepts = oracle(*version, false).is_valid(doc);
        let is_extension = doc.as_object().and_then(extension_schema).is_some();
        match read(doc, Some(*version)) {
            Ok(normalized) => {
                if !iptc_accepts && !is_extension {
                    problems.push(format!("{name}: accepted, but IPTC's {} schema refuses it", version.as_str()));
                }
                converted += 1;
                if !normalized.extensions.is_empty() {
                    extensions_kept += 1;
                }
                let document = Value::Object(normalized.document.clone());
                let errors: Vec<String> =
                    output_schema.iter_errors(&document).map(|e| format!("{} at {}", e, e.instance_path)).collect();
                if !errors.is_empty() {
                    problems.push(format!("{name}: the 3.1 document is invalid: {errors:?}"));
                }
                problems.extend(lost_content(doc, &normalized).into_iter().map(|lost| format!("{name}: {lost}")));
                problems.extend(dropped_values(doc, &normalized).into_iter().map(|lost| format!("{name}: {lost}")));
            }
            Err(error) => {
                if iptc_accepts {
                    problems.push(format!("{name}: IPTC's schema accepts it but we refused: {error}"));
                } else {
                    refused_like_iptc.push(name.clone());
                }
            }
        }
    }
    println!(
        "normalised: {converted} of {} documents ({suite_count} suite should_pass, {} example documents) are valid 3.1 with formats; {extensions_kept} kept extensions",
        corpus.len(),
        corpus.len() - suite_count
    );
    println!("refused, as IPTC's own schema refuses them: {}: {refused_like_iptc:?}", refused_like_iptc.len());
    assert!(converted > 150, "the corpus shrank: {converted}");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

fn text_values(items: Option<&Value>) -> Vec<String> {
    match items {
        Some(Value::Array(items)) => {
            items.iter().filter_map(|item| item.get("value").and_then(Value::as_str)).map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

fn prefixed_strings(doc: &Map<String, Value>, exact: &str, prefix: &str) -> Vec<String> {
    doc.iter()
        .filter(|(key, _)| key.as_str() == exact || key.starts_with(prefix))
        .filter_map(|(_, value)| value.as_str().map(str::to_string))
        .collect()
}

/// The editorial content that must survive: headlines, bodies, subjects (names and codes), rights and
/// copyright. Written against the versions' property names independently of the crate's tables.
fn lost_content(original: &Value, normalized: &Normalized) -> Vec<String> {
    let Value::Object(source) = original else {
        return vec!["not an object".to_string()];
    };
    let out = &normalized.document;
    let line = normalized.source_version.line();
    let mut lost = Vec::new();

    let (headlines, bodies) = if line == 1 {
        (prefixed_strings(source, "headline", "headline_"), prefixed_strings(source, "body_", "body_"))
    } else {
        (text_values(source.get("headlines")), text_values(source.get("bodies")))
    };
    let (out_headlines, out_bodies) = (text_values(out.get("headlines")), text_values(out.get("bodies")));
    lost.extend(headlines.iter().filter(|h| !out_headlines.contains(h)).map(|h| format!("headline lost: {h:?}")));
    lost.extend(bodies.iter().filter(|b| !out_bodies.contains(b)).map(|b| format!("body lost: {b:.40?}")));

    let (subjects_key, code_key) = if line == 1 { ("subject", "code") } else { ("subjects", "literal") };
    let subjects = source.get(subjects_key).and_then(Value::as_array).cloned().unwrap_or_default();
    let out_subjects = out.get("subjects").and_then(Value::as_array).cloned().unwrap_or_default();
    if subjects.len() != out_subjects.len() {
        lost.push(format!("{} subjects became {}", subjects.len(), out_subjects.len()));
    }
    for (subject, out_subject) in subjects.iter().zip(&out_subjects) {
        if subject.get("name") != out_subject.get("name") || subject.get(code_key) != out_subject.get("literal") {
            lost.push(format!("subject {subject} became {out_subject}"));
        }
    }

    let (rights_key, members, copyright) = match line {
        3 => ("rightsInfo", ["linkedRights", "encodedRights"], ["copyrightHolder", "copyrightNotice"]),
        _ => ("rightsinfo", ["linkedrights", "encodedrights"], ["copyrightholder", "copyrightnotice"]),
    };
    if let Some(rights) = source.get(rights_key) {
        for (member, out_member) in members.iter().zip(["linkedRights", "encodedRights"]) {
            let kept = out.get("rightsInfo").and_then(|r| r.get(out_member));
            if rights.get(member) != kept {
                lost.push(format!("rights {member} {:?} became {kept:?}", rights.get(member)));
            }
        }
    }
    for (member, out_member) in copyright.iter().zip(["copyrightHolder", "copyrightNotice"]) {
        if source.get(*member) != out.get(out_member) {
            lost.push(format!("{member} {:?} became {:?}", source.get(*member), out.get(out_member)));
        }
    }
    lost
}

fn leaves<'v>(value: &'v Value, out: &mut Vec<(&'v Value, Option<&'v str>)>, key: Option<&'v str>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, member)| leaves(member, out, Some(k))),
        Value::Array(items) => items.iter().for_each(|item| leaves(item, out, key)),
        leaf => out.push((leaf, key)),
    }
}

/// Every value of the original (string, number, boolean, null) is somewhere in the 3.1 document or
/// the extensions — a string possibly inside a longer one (a scheme joined with its code). The one
/// exception is the documented value mapping of 1.x `representationtype` (`complete` → `full`).
fn dropped_values(original: &Value, normalized: &Normalized) -> Vec<String> {
    let mut source = Vec::new();
    leaves(original, &mut source, None);
    let document = Value::Object(normalized.document.clone());
    let extensions = Value::Object(normalized.extensions.clone());
    let mut kept = Vec::new();
    leaves(&document, &mut kept, None);
    leaves(&extensions, &mut kept, None);
    let mut dropped = Vec::new();
    for (leaf, key) in source {
        let found = match leaf {
            Value::String(text) => {
                key == Some("representationtype")
                    || kept.iter().any(|(other, _)| other.as_str().is_some_and(|other| other.contains(text.as_str())))
            }
            Value::Number(number) => kept.iter().any(|(other, _)| match other {
                Value::Number(other) => other.as_f64() == number.as_f64(),
                _ => false,
            }),
            other => kept.iter().any(|(kept, _)| *kept == other),
        };
        if !found {
            dropped.push(format!("value {leaf} of {key:?} is neither in the 3.1 document nor in the extensions"));
        }
    }
    dropped
}
