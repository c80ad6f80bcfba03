//! IPTC's own ninjs material, through the publish path: the validation test suite (every should_pass
//! accepted as its version, every should_fail refused with a 4xx naming the property) and the example
//! items (accepted, and read back as valid ninjs 3.1 that keeps headline, body, subjects and rights).
//! Then every read path's output over all of it validates against the 3.1 schema.

mod common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use common::{TestApp, assert_ninjs31, ninjs31, shared_dir};
use serde_json::{Value, json};

const VERSIONS: [&str; 12] = ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "2.0", "2.1", "2.2", "3.0", "3.1"];

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(json_files(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Each document gets its own member: suite files reuse uris with different content.
async fn publish_as_new_member(app: &TestApp, path: &Path, version: Option<&str>) -> (StatusCode, Value, String) {
    let member = app.member(&format!("Member {}", path.display()).chars().take(190).collect::<String>());
    let (status, _) = app.post(&member.admin, "/v1/agreements", &json!({ "grantee": "*", "right": "view" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let body = std::fs::read(path).unwrap();
    let route = match version {
        Some(version) => format!("/v1/items?ninjs={version}"),
        None => "/v1/items".to_string(),
    };
    let (status, response) = app.post_raw(&member.editor, &route, body).await;
    (status, response, member.reader)
}

fn top_level_keys(path: &Path) -> Option<Vec<String>> {
    let value: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(value.as_object()?.keys().cloned().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iptc_validation_suite_through_the_publish_path() {
    let app = TestApp::new();
    let suite = shared_dir().join("conformance/ninjs/validation/test_suite");
    let (mut passed, mut refused) = (0, 0);
    for version in VERSIONS {
        for path in json_files(&suite.join(version).join("should_pass")) {
            let (status, body, _) = publish_as_new_member(&app, &path, Some(version)).await;
            // ninjs does not assert formats, so an embargo that is no date-time is valid ninjs; Karavan
            // refuses it all the same, since a visibility rule that cannot be read must fail closed.
            if path.file_name().is_some_and(|name| name.to_string_lossy().contains("embargoed_bad_datetime")) {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {body}", path.display());
                assert!(body["error"]["message"].as_str().unwrap().contains("controls who may see"), "{body}");
                refused += 1;
                continue;
            }
            assert!(status.is_success(), "{} as {version} should be accepted, got {status}: {body}", path.display());
            passed += 1;
        }
        for path in json_files(&suite.join(version).join("should_fail")) {
            let (status, body, _) = publish_as_new_member(&app, &path, Some(version)).await;
            assert!(
                status.is_client_error(),
                "{} as {version} should be refused, got {status}: {body}",
                path.display()
            );
            let message = body["error"]["message"].as_str().unwrap_or_default().to_string();
            match top_level_keys(&path) {
                // Not even JSON: the parser's error says where.
                None => assert_eq!(body["error"]["code"], "invalid_json", "{}", path.display()),
                Some(keys) => {
                    // The refusal names a property of the document (or uri, when it is missing).
                    let pointer = body["violations"][0]["pointer"].as_str().unwrap_or_default();
                    let first =
                        pointer.trim_start_matches('/').split('/').next().unwrap_or_default().replace("~1", "/");
                    let named = keys.iter().any(|k| *k == first || message.contains(k.as_str()))
                        || (!keys.contains(&"uri".to_string()) && message.contains("uri"));
                    assert!(
                        named,
                        "{}: the refusal {message:?} (at {pointer:?}) names no property of {keys:?}",
                        path.display()
                    );
                }
            }
            refused += 1;
        }
    }
    eprintln!("IPTC suite through POST /v1/items: {passed} should_pass accepted, {refused} should_fail refused");
    assert!(passed > 100 && refused > 40, "the suite was not found whole ({passed}, {refused})");
}

/// Every string under the properties a publisher cares about most.
fn strings_under(value: &Value, wanted: &[&str], inside: bool, out: &mut Vec<String>) {
    match value {
        Value::String(text) if inside => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, wanted, inside, out)),
        Value::Object(map) => {
            for (key, v) in map {
                let lower = key.to_ascii_lowercase();
                let hit = inside || wanted.iter().any(|w| lower.starts_with(w));
                // uri-like values are identifiers that may be rewritten; texts and codes must survive.
                if lower == "uri" || lower == "href" {
                    continue;
                }
                strings_under(v, wanted, hit, out);
            }
        }
        _ => {}
    }
}

fn all_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| all_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| all_strings(v, out)),
        _ => {}
    }
}

/// Whether a document declares a schema other than IPTC's (a ninjs extension, like TT's ttninjs).
fn declares_extension_schema(document: &Value) -> bool {
    let schema = document["standard"]["schema"].as_str().or(document["$schema"].as_str()).unwrap_or_default();
    !schema.is_empty() && !schema.contains("iptc.org")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iptc_examples_are_accepted_and_read_back_as_valid_ninjs_31() {
    let app = TestApp::new();
    let validator = ninjs31();
    let examples = shared_dir().join("conformance/ninjs/examples");
    let wanted = ["headline", "bod", "subject", "rights", "copyright", "usageterms"];
    let (mut items, mut files, mut invalid_upstream) = (0, 0, 0);
    for version in ["2.1", "3.0"] {
        // The verdict of IPTC's own schema for the folder's version decides what we must do: accept
        // what it accepts, refuse what it refuses (one published example, a 3.0 "collection", is not
        // valid against IPTC's own 3.0 schema). Extension documents are accepted by design.
        let upstream = common::ninjs_schema(version);
        let mut paths = json_files(&examples.join(version));
        // The extension *schema* is a JSON Schema, not an item.
        paths.retain(|p| !p.ends_with("extension-schema.json"));
        for path in &paths {
            files += 1;
            let original: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let elements = match &original {
                Value::Array(elements) => elements.clone(),
                single => vec![single.clone()],
            };
            let valid_upstream = elements.iter().all(|e| upstream.is_valid(e) || declares_extension_schema(e));
            let (status, body, reader) = publish_as_new_member(&app, path, None).await;
            if !valid_upstream {
                assert_eq!(
                    status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{}: IPTC's {version} schema refuses it, so must we: {body}",
                    path.display()
                );
                invalid_upstream += 1;
                continue;
            }
            assert!(status.is_success(), "{}: {status} {body}", path.display());
            // A collection (a JSON array of items) is published as a batch.
            let results = match body.get("items") {
                Some(Value::Array(results)) => results.clone(),
                _ => vec![body.clone()],
            };
            assert_eq!(elements.len(), results.len(), "{}", path.display());
            for (original, result) in elements.iter().zip(&results) {
                let id = result["id"].as_str().unwrap();
                let (status, read) = app.get(&reader, &format!("/v1/items/{id}")).await;
                assert_eq!(status, StatusCode::OK, "{}", path.display());
                assert_ninjs31(&validator, &read, &path.display().to_string());
                let mut must_keep = Vec::new();
                strings_under(original, &wanted, false, &mut must_keep);
                let mut kept = Vec::new();
                all_strings(&read, &mut kept);
                for text in must_keep {
                    // HTML is kept as the sanitiser writes it (the same rule for every format).
                    let sanitised = karavan_formats::html::clean(&text);
                    assert!(kept.contains(&text) || kept.contains(&sanitised), "{}: {text:?} was lost", path.display());
                }
                items += 1;
            }
        }
    }
    eprintln!(
        "{files} IPTC example files: {items} items accepted and read back as valid ninjs 3.1; \
         {invalid_upstream} files refused as IPTC's own schema refuses them"
    );
    assert!(files >= 25 && invalid_upstream <= 1, "{files} files, {invalid_upstream} invalid upstream");

    // Every read path over all of it returns valid ninjs 3.1.
    let reader = app.member("Reader");
    let mut url = "/v1/items?limit=7&include=kills".to_string();
    let mut count = 0;
    loop {
        let (status, page) = app.get(&reader.reader, &url).await;
        assert_eq!(status, StatusCode::OK);
        for item in page["items"].as_array().unwrap() {
            assert_ninjs31(&validator, item, "list");
            let id = item["altIds"].as_array().unwrap().iter().find(|a| a["role"] == "karavan").unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string();
            let (_, versions) = app.get(&reader.reader, &format!("/v1/items/{id}/versions")).await;
            for version in versions["versions"].as_array().unwrap() {
                assert_ninjs31(&validator, version, "versions");
            }
            count += 1;
        }
        match page["next"].as_str() {
            Some(next) => url = format!("/v1/items?limit=7&include=kills&after={next}"),
            None => break,
        }
    }
    assert_eq!(count, items, "the reader sees every example through the list");
}

/// Byte-level mutations of real documents sent to the publish path: every answer is a 2xx or a 4xx
/// with an error code (never a 5xx or a panic), and whatever is accepted reads back as valid 3.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_bodies_never_break_the_publish_path() {
    let app = TestApp::new();
    let validator = ninjs31();
    let member = app.member("Fuzz");
    let examples = shared_dir().join("conformance/ninjs/examples");
    let seeds: Vec<Vec<u8>> =
        ["3.0/ntb_text.json", "2.1/dpa_text.json", "3.0/ap_video.json", "1.4/ninjsExComplex1.json"]
            .iter()
            .map(|name| std::fs::read(examples.join(name)).unwrap())
            .collect();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let tokens: [&[u8]; 10] = [b"\"", b"{", b"}", b"[", b"]", b",", b":", b"null", b"-1e999", b"\"\\u0000\""];
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..1500 {
        let mut body = seeds[round % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % body.len().max(1);
            match next() % 4 {
                0 => body[at] = next() as u8,
                1 => {
                    body.remove(at);
                }
                2 => body.splice(at..at, tokens[(next() % 10) as usize].iter().copied()).for_each(drop),
                _ => body.truncate(at),
            }
        }
        let (status, response) = app.post_raw(&member.editor, "/v1/items", body).await;
        assert!(status.as_u16() < 500, "round {round}: {status} {response}");
        if status.is_success() {
            accepted += 1;
            let id = response["id"].as_str().unwrap_or_else(|| response["items"][0]["id"].as_str().unwrap());
            let (status, read) = app.get(&member.reader, &format!("/v1/items/{id}")).await;
            assert!(status == StatusCode::OK || status == StatusCode::GONE, "round {round}: {status}");
            if status == StatusCode::OK {
                assert_ninjs31(&validator, &read, &format!("round {round}"));
            }
        } else {
            assert!(response["error"]["code"].is_string(), "round {round}: {response}");
            refused += 1;
        }
    }
    eprintln!("mutated bodies: {accepted} accepted, {refused} refused with a 4xx");
    assert!(accepted > 0 && refused > 0);
}
