//! `validate` and `read` on hostile input: every suite and example document mutated member by member
//! (each value replaced by values of every JSON type, each member removed, an unknown member added),
//! deep nesting, huge numbers and non-objects. Nothing may panic, and `validate`'s verdict must equal
//! that of IPTC's own schema run by the `jsonschema` crate, which makes this a differential test of the
//! hand-written rules as well.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{VERSION_FOLDERS, example_documents, oracle, suite_cases};
use karavan_ninjs::{MAX_ASSOCIATION_DEPTH, NinjsError, NinjsVersion, read, validate};
use serde_json::{Value, json};

/// Values every member is replaced with in turn.
fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(1),
        json!(9),
        json!(10),
        json!(101),
        json!(-3),
        json!(2.5),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("text"),
        json!("2024-02-29"),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"uri": "urn:x", "name": "n", "value": "v"}),
    ]
}

/// JSON pointers of every member and item of `value`, the root excluded.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                let pointer = format!("{at}/{}", common::escape(key));
                out.push(pointer.clone());
                pointers(member, &pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let pointer = format!("{at}/{index}");
                out.push(pointer.clone());
                pointers(item, &pointer, out);
            }
        }
        _ => {}
    }
}

/// The mutated variants of `doc`.
fn mutations(doc: &Value) -> Vec<Value> {
    let mut places = Vec::new();
    pointers(doc, "", &mut places);
    let mut variants = Vec::new();
    for pointer in &places {
        for replacement in replacements() {
            let mut variant = doc.clone();
            if let Some(slot) = variant.pointer_mut(pointer) {
                *slot = replacement;
                variants.push(variant);
            }
        }
        let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        let mut without = doc.clone();
        match without.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(&last.replace("~1", "/").replace("~0", "~"));
                variants.push(without);
            }
            Some(Value::Array(items)) => {
                if let Ok(index) = last.parse::<usize>()
                    && index < items.len()
                {
                    items.remove(index);
                    variants.push(without);
                }
            }
            _ => {}
        }
    }
    // Names on either side of the schemas' name patterns (`^headline_[a-zA-Z0-9_]+`, `^[a-zA-Z0-9]+`),
    // with a string and with a copy of a sibling (so that a map of renditions gets a rendition).
    let names = ["zz_unknown", "_x", "x-y", "headline_", "headline_a", "body_é", "description_x", "geometry_x"];
    for pointer in std::iter::once(String::new()).chain(places) {
        let sibling = match doc.pointer(&pointer) {
            Some(Value::Object(map)) => map.values().next().cloned(),
            _ => continue,
        };
        for name in names {
            for value in std::iter::once(json!("x")).chain(sibling.clone()) {
                let mut with_member = doc.clone();
                if let Some(Value::Object(map)) = with_member.pointer_mut(&pointer)
                    && !map.contains_key(name)
                {
                    map.insert(name.to_string(), value);
                    variants.push(with_member);
                }
            }
        }
    }
    variants
}

/// Every valid-JSON document of the suite and the examples, with the version of its folder.
fn corpus() -> Vec<(String, NinjsVersion, Value)> {
    let mut documents = Vec::new();
    for (folder, version) in VERSION_FOLDERS {
        for kind in ["should_pass", "should_fail"] {
            for case in suite_cases(folder, kind) {
                if let Ok(doc) = case.json {
                    documents.push((case.name, version, doc));
                }
            }
        }
    }
    documents.extend(example_documents());
    documents
}

fn guarded<T>(what: &str, input: &Value, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(_) => panic!("{what} panicked on {input}"),
    }
}

#[test]
fn mutated_documents_never_panic_and_get_iptc_schemas_verdict() {
    let output_oracle = oracle(NinjsVersion::V3_1, true);
    let oracles: Vec<_> = VERSION_FOLDERS.iter().map(|(_, version)| (*version, oracle(*version, false))).collect();
    let oracle_for = |version: NinjsVersion| &oracles.iter().find(|(v, _)| *v == version).expect("oracle").1;

    let mut disagreements = Vec::new();
    let mut unconvertible = Vec::new();
    let (mut variants_checked, mut valid_variants) = (0usize, 0usize);
    for (name, version, doc) in corpus() {
        let iptc = oracle_for(version);
        for variant in mutations(&doc) {
            variants_checked += 1;
            let ours = guarded("validate", &variant, || validate(&variant, version));
            let theirs = iptc.is_valid(&variant);
            if ours.is_ok() != theirs {
                disagreements
                    .push(format!("{name} as {}: ours {ours:?}, IPTC's schema {theirs}: {variant}", version.as_str()));
                continue;
            }
            let normalized = guarded("read", &variant, || read(&variant, Some(version)));
            guarded("read without a version", &variant, || read(&variant, None)).ok();
            match (ours.is_ok(), normalized) {
                (true, Ok(normalized)) => {
                    valid_variants += 1;
                    let document = Value::Object(normalized.document);
                    if !output_oracle.is_valid(&document) {
                        let errors: Vec<String> = output_oracle.iter_errors(&document).map(|e| e.to_string()).collect();
                        unconvertible.push(format!("{name}: 3.1 output invalid {errors:?} for {variant}"));
                    }
                }
                (true, Err(error)) => {
                    unconvertible.push(format!("{name}: valid but not converted: {error} for {variant}"))
                }
                (false, Ok(_)) => {
                    // `read` accepts unknown top-level members of extension documents, which
                    // `validate` (strict) refuses; nothing else may pass `read` and fail `validate`.
                    let is_extension = variant.as_object().and_then(karavan_ninjs::extension_schema).is_some();
                    if !is_extension {
                        disagreements.push(format!("{name}: read accepted what validate refused: {variant}"));
                    }
                }
                (false, Err(_)) => {}
            }
        }
    }
    println!(
        "mutations: {variants_checked} variants checked, {valid_variants} valid ones converted and checked against the 3.1 schema with formats"
    );
    assert!(
        variants_checked > 10_000 && valid_variants > 1_000,
        "the corpus shrank: {variants_checked} / {valid_variants}"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first ones:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(20)].join("\n")
    );
    assert!(
        unconvertible.is_empty(),
        "{} conversion failures:\n{}",
        unconvertible.len(),
        unconvertible[..unconvertible.len().min(20)].join("\n")
    );
}

/// Every document of the corpus, as every version (not only its folder's), gets the verdict of that
/// version's IPTC schema.
#[test]
fn every_document_gets_iptc_schemas_verdict_in_every_version() {
    let oracles: Vec<_> = VERSION_FOLDERS.iter().map(|(_, version)| (*version, oracle(*version, false))).collect();
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for (name, _, doc) in corpus() {
        for (version, iptc) in &oracles {
            checked += 1;
            let ours = validate(&doc, *version).is_ok();
            if ours != iptc.is_valid(&doc) {
                disagreements.push(format!("{name} as {}: ours {ours}", version.as_str()));
            }
        }
    }
    println!("cross-version verdicts: {checked} checked");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Builds `{key: value, …}` by moving values in: `json!` would re-serialise the nested value at every
/// level, recursing as deep as the document and overflowing the test's own stack.
fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn nested_associations_2(depth: usize) -> Value {
    let mut doc = object(vec![("name", json!("leaf")), ("uri", json!(format!("urn:level:{depth}")))]);
    for level in (0..depth).rev() {
        doc = object(vec![
            ("name", json!(format!("level{level}"))),
            ("uri", json!(format!("urn:level:{level}"))),
            ("associations", Value::Array(vec![doc])),
        ]);
    }
    doc.as_object_mut().expect("object").remove("name");
    doc
}

fn nested_associations_1(depth: usize) -> Value {
    let mut doc = object(vec![("uri", json!(format!("urn:level:{depth}")))]);
    for level in (0..depth).rev() {
        doc =
            object(vec![("uri", json!(format!("urn:level:{level}"))), ("associations", object(vec![("inner", doc)]))]);
    }
    doc
}

#[test]
fn deep_nesting_is_refused_past_the_limit_and_never_overflows() {
    for (version, build) in
        [(NinjsVersion::V2_2, nested_associations_2 as fn(usize) -> Value), (NinjsVersion::V1_6, nested_associations_1)]
    {
        let shallow = build(MAX_ASSOCIATION_DEPTH - 1);
        assert_eq!(
            validate(&shallow, version),
            Ok(()),
            "{} levels are fine in {}",
            MAX_ASSOCIATION_DEPTH - 1,
            version.as_str()
        );
        let normalized = read(&shallow, Some(version)).expect("shallow nesting converts");
        assert_eq!(normalized.document.get("associations").map(Value::is_array), Some(true));
        // The jsonschema crate's work grows quickly with nested `unevaluatedProperties`, so the
        // oracle only looks at a few levels.
        let few_levels = read(&build(6), Some(version)).expect("converts");
        assert!(oracle(NinjsVersion::V3_1, true).is_valid(&Value::Object(few_levels.document)));

        let deep = build(MAX_ASSOCIATION_DEPTH * 3);
        match validate(&deep, version) {
            Err(NinjsError::Invalid { violations, .. }) => {
                assert!(violations.iter().any(|v| v.message.contains("nested more than")), "{violations:?}");
            }
            other => panic!("deep nesting must be refused, got {other:?}"),
        }
        assert!(read(&deep, Some(version)).is_err());
        match read(&deep, None) {
            Err(_) => {}
            // Only 2.0 accepts it: there, an association with a name may hold anything. What lies
            // deeper than the limit is kept in extensions, not walked.
            Ok(normalized) => {
                assert_eq!(normalized.source_version, NinjsVersion::V2_0);
                assert!(normalized.extensions.keys().any(|key| key.starts_with("/associations/0/associations/0")));
            }
        }
    }

    // Deep values where the rules accept any object (1.x altids): `validate` never walks them, and
    // `read` refuses any document nested deeper than MAX_JSON_DEPTH before recursing at all.
    let mut deep_array = json!("bottom");
    for _ in 0..2_000 {
        deep_array = Value::Array(vec![deep_array]);
    }
    let doc = object(vec![("uri", json!("urn:deep")), ("altids", object(vec![("deep", deep_array)]))]);
    assert_eq!(validate(&doc, NinjsVersion::V1_3), Ok(()));
    match read(&doc, Some(NinjsVersion::V1_3)) {
        Err(NinjsError::Invalid { violations, .. }) => {
            assert!(violations[0].message.contains("nested more than"), "{violations:?}")
        }
        other => panic!("a 2,000-level document must be refused, got {other:?}"),
    }

    // As deep as serde_json parses by default: refused too, while 60 levels are fine.
    for (levels, accepted) in [(120, false), (60, true)] {
        let text =
            format!("{{\"uri\": \"urn:x\", \"altids\": {{\"a\": {}1{}}}}}", "[".repeat(levels), "]".repeat(levels));
        let parsed: Value = serde_json::from_str(&text).expect("within serde_json's recursion limit");
        assert_eq!(read(&parsed, None).is_ok(), accepted, "{levels} levels");
        assert_eq!(karavan_ninjs::json_depth(&parsed), levels + 3);
    }
}

#[test]
fn non_objects_and_huge_numbers_are_refused_not_panicked_on() {
    for value in [Value::Null, json!(1), json!("uri"), json!([{"uri": "urn:x"}]), json!(true)] {
        for version in NinjsVersion::ALL {
            assert_eq!(validate(&value, version), Err(NinjsError::NotAnObject));
            assert_eq!(read(&value, Some(version)), Err(NinjsError::NotAnObject));
        }
        assert_eq!(read(&value, None), Err(NinjsError::NotAnObject));
    }
    for urgency in
        [json!(1e308), json!(-1e308), json!(u64::MAX), json!(i64::MIN), json!(-0.0), json!(9.000000000000002)]
    {
        let doc = json!({"uri": "urn:x", "urgency": urgency});
        assert!(validate(&doc, NinjsVersion::V3_1).is_err(), "{urgency} is not an urgency of 3.1");
        // 2.x urgency is any number: accepted, and moved to extensions because 3.1 wants 1–9.
        let normalized = read(&doc, Some(NinjsVersion::V2_2)).expect("any number is a 2.2 urgency");
        assert_eq!(normalized.extensions.get("urgency"), Some(&urgency));
        assert!(!normalized.document.contains_key("urgency"));
    }
}
