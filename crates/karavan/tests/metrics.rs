//! `GET /metrics` through the real binary, read by a real Prometheus parser (prometheus-client's,
//! installed by scripts/test-setup into .cache/schemathesis): what was published, requests by route
//! and status, the engines, the indexes; closed to others when a metrics token is set (issue 18).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::io::Write;

use serde_json::Value;
use support::{Server, member_with_key, realistic_item};

/// Parses the text format with prometheus_client and returns every sample as {name, labels, value}.
fn parse(text: &str) -> Vec<Value> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/schemathesis/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/test-setup", python.display());
    let script = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\n\
                  out = []\nfor family in text_string_to_metric_families(sys.stdin.read()):\n    \
                  for s in family.samples:\n        \
                  out.append({'family': family.name, 'type': family.type, 'name': s.name, 'labels': s.labels, 'value': s.value})\n\
                  print(json.dumps(out))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the parser refused the metrics: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .and_then(|s| s["value"].as_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_read_by_a_prometheus_parser() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Metric Agency", "editor");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    for n in 0..3 {
        let item = realistic_item(&format!("urn:metrics:{n}"), n);
        let response = client.post(format!("{}/v1/items", server.base)).bearer_auth(&key).json(&item).send();
        assert_eq!(response.await.unwrap().status().as_u16(), 201);
    }
    // A re-sent identical item stores nothing; a missing one is a 404 under its route template.
    let again =
        client.post(format!("{}/v1/items", server.base)).bearer_auth(&key).json(&realistic_item("urn:metrics:0", 0));
    assert!(again.send().await.unwrap().status().is_success());
    let missing = client.get(format!("{}/v1/items/itm_01M8XSEDR1ARN5WC8F1DNB1GEF", server.base)).bearer_auth(&key);
    assert_eq!(missing.send().await.unwrap().status().as_u16(), 404);

    let deadline = Instant::now() + Duration::from_secs(10);
    let samples = loop {
        let response = client.get(format!("{}/metrics", server.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let samples = parse(&response.text().await.unwrap());
        if sample(&samples, "karavan_index_documents", &[("index", "keyword")]) == Some(3.0) {
            break samples;
        }
        assert!(Instant::now() < deadline, "the keyword index never counted 3 documents");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sample(&samples, "karavan_items_published_total", &[]), Some(3.0));
    let created = [("route", "/v1/items"), ("method", "POST"), ("status", "201")];
    assert_eq!(sample(&samples, "karavan_http_requests_total", &created), Some(3.0));
    let not_found = [("route", "/v1/items/{id}"), ("method", "GET"), ("status", "404")];
    assert_eq!(sample(&samples, "karavan_http_requests_total", &not_found), Some(1.0));
    assert_eq!(sample(&samples, "karavan_publish_duration_seconds_count", &[]), Some(4.0));
    assert_eq!(sample(&samples, "karavan_publish_duration_seconds_bucket", &[("le", "+Inf")]), Some(4.0));
    for engine in ["search-indexer", "search-committer", "fanout", "pusher", "feed-poller", "embedder", "translator"] {
        assert_eq!(sample(&samples, "karavan_engine_up", &[("engine", engine)]), Some(1.0), "{engine}");
        assert_eq!(sample(&samples, "karavan_engine_restarts_total", &[("engine", engine)]), Some(0.0), "{engine}");
    }
    assert_eq!(sample(&samples, "karavan_engine_lag", &[("engine", "search-indexer")]), Some(0.0));
    assert_eq!(sample(&samples, "karavan_store_head_sequence", &[]), Some(3.0));
    assert_eq!(sample(&samples, "karavan_deliveries", &[("state", "pending")]), Some(0.0));
    assert_eq!(sample(&samples, "karavan_translation_jobs", &[("state", "queued")]), Some(0.0));
    let types: std::collections::HashMap<&str, &str> =
        samples.iter().map(|s| (s["family"].as_str().unwrap(), s["type"].as_str().unwrap())).collect();
    assert_eq!(types["karavan_publish_duration_seconds"], "histogram");
    assert_eq!(types["karavan_http_requests"], "counter");
    assert_eq!(types["karavan_engine_up"], "gauge");
    drop(server);

    // With a metrics token, only its bearer reads them (an API key does not).
    let server = Server::start_with_env(dir.path(), &[], &[("KARAVAN_METRICS_TOKEN", "scrape-secret-1")]);
    let url = format!("{}/metrics", server.base);
    assert_eq!(client.get(&url).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(client.get(&url).bearer_auth(&key).send().await.unwrap().status().as_u16(), 401);
    let scraped = client.get(&url).bearer_auth("scrape-secret-1").send().await.unwrap();
    assert_eq!(scraped.status().as_u16(), 200);
    assert!(!parse(&scraped.text().await.unwrap()).is_empty());
}
