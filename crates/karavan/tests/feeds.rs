//! RSS / Atom ingest through the real binary: a member registers feeds served by a little HTTP server
//! in the test; Karavan polls them with conditional GET, publishes new entries, takes changed entries
//! as corrections, skips duplicates, honours Retry-After, and pauses a feed that keeps failing.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use support::{Server, cli, member_with_key};

#[derive(Default)]
struct Source {
    feed: String,
    etag: String,
    /// Requests, and those answered 304.
    requests: usize,
    not_modified: usize,
    limited: usize,
}

type Shared = Arc<Mutex<Source>>;

async fn feed(State(source): State<Shared>, headers: HeaderMap) -> Response {
    let mut source = source.lock().unwrap();
    source.requests += 1;
    let tag = source.etag.clone();
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(tag.as_str()) {
        source.not_modified += 1;
        return (StatusCode::NOT_MODIFIED, [("etag", tag)]).into_response();
    }
    (StatusCode::OK, [("etag", tag), ("content-type", "application/rss+xml".to_string())], source.feed.clone())
        .into_response()
}

async fn limited(State(source): State<Shared>) -> Response {
    source.lock().unwrap().limited += 1;
    (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], "busy").into_response()
}

fn rss(items: &[(&str, &str, &str)]) -> String {
    let entries: String = items
        .iter()
        .map(|(guid, title, body)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><link>https://partner.example/{guid}</link>\
                 <description><![CDATA[{body}]]></description><pubDate>Sat, 21 Nov 2026 08:00:00 +0600</pubDate></item>"
            )
        })
        .collect();
    format!(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Partner</title>{entries}</channel></rss>"#)
}

async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn feeds_are_polled_deduplicated_corrected_and_paused_when_failing() {
    let source: Shared = Arc::default();
    {
        let mut s = source.lock().unwrap();
        s.feed = rss(&[
            ("p-2", "Second story", "<p>Two</p>"),
            ("p-1", "First story", "<p onclick=\"steal()\">One</p><script>alert(1)</script>"),
        ]);
        s.etag = "\"v1\"".into();
    }
    let app = axum::Router::new()
        .route("/feed.rss", get(feed))
        .route("/limited.rss", get(limited))
        .route(
            "/broken.rss",
            get(|| async {
                (StatusCode::OK, "<rss><channel><item><title>x</title><pubDate>soon</pubDate></item></channel></rss>")
            }),
        )
        .with_state(Arc::clone(&source));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let (member, editor) = member_with_key(dir.path(), "Kabar", "editor");
    let reader = cli(dir.path(), &["key", "create", "--member", &member, "--role", "reader"]);
    let (_, outsider) = member_with_key(dir.path(), "Other", "editor");
    let server = Server::start(
        dir.path(),
        &["--allow-private-webhooks", "--feed-min-interval-seconds", "1", "--feed-pause-after", "3"],
    );
    let base = format!("{}/v1/ingest/feeds", server.base);
    let client = reqwest::Client::new();

    // Bad registrations get 400s naming the field; readers may not register.
    for (body, field) in [
        (json!({ "name": "x" }), "url"),
        (json!({ "name": "x", "url": "ftp://partner.example/f" }), "url"),
        (json!({ "name": "x", "url": format!("{origin}/feed.rss"), "interval_seconds": 0 }), "interval_seconds"),
        (json!({ "name": "x", "url": format!("{origin}/feed.rss"), "language": "not a tag!" }), "language"),
        (json!({ "name": "x", "url": format!("{origin}/feed.rss"), "colour": "red" }), "colour"),
    ] {
        let (status, answer) = call(client.post(&base).bearer_auth(&editor).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().starts_with(field), "{answer}");
    }
    let spec = json!({
        "name": "Partner news", "url": format!("{origin}/feed.rss"), "language": "ky",
        "subjects": ["medtop:04000000"], "interval_seconds": 1,
    });
    let (status, _) = call(client.post(&base).bearer_auth(&reader).json(&spec)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, provider) = call(client.post(&base).bearer_auth(&editor).json(&spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{provider}");
    let id = provider["id"].as_str().unwrap().to_string();
    let (status, _) = call(client.post(&base).bearer_auth(&editor).json(&spec)).await;
    assert_eq!(status, StatusCode::CONFLICT, "the same URL twice");
    let (status, _) = call(client.get(format!("{base}/{id}")).bearer_auth(&outsider)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "other members do not see it");

    // Both entries arrive as items, oldest first, cleaned, with the provider's language and subjects.
    let items = || async {
        let (_, wire) = call(client.get(format!("{}/v1/items", server.base)).bearer_auth(&reader)).await;
        wire["items"].as_array().cloned().unwrap_or_default()
    };
    wait_until("two items from the feed", || async { items().await.len() == 2 }).await;
    let listed = items().await;
    let first = listed.iter().find(|i| i["uri"] == "https://partner.example/p-1").expect("p-1 is an item");
    assert_eq!(first["headlines"][0]["value"], "First story");
    assert_eq!(first["language"], "ky");
    assert_eq!(first["subjects"][0]["uri"], "http://cv.iptc.org/newscodes/mediatopic/04000000");
    let body = first["bodies"][0]["value"].as_str().unwrap();
    assert!(body.contains("One") && !body.contains("script") && !body.contains("onclick"), "{body}");
    let first_id = first["altIds"].as_array().unwrap().iter().find(|a| a["role"] == "karavan").unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();

    // The next polls are conditional and change nothing.
    wait_until("a 304", || async { source.lock().unwrap().not_modified >= 1 }).await;
    let (_, health) = call(client.get(format!("{base}/{id}")).bearer_auth(&reader)).await;
    assert_eq!(health["status"], "active", "{health}");
    assert_eq!(health["health"]["items_published"], 2, "{health}");
    assert!(health["health"]["last_success_at"].is_string(), "{health}");

    // An updated entry is a correction; the same story under a new guid is a duplicate.
    {
        let mut s = source.lock().unwrap();
        s.feed = rss(&[
            ("p-3", "Second story", "<p>Two</p>"),
            ("p-2", "Second story", "<p>Two</p>"),
            ("p-1", "First story, updated", "<p>One, with more</p>"),
        ]);
        s.etag = "\"v2\"".into();
    }
    let versions_url = format!("{}/v1/items/{first_id}/versions", server.base);
    wait_until("the correction", || async {
        let (_, versions) = call(client.get(&versions_url).bearer_auth(&reader)).await;
        versions["versions"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    let (_, versions) = call(client.get(&versions_url).bearer_auth(&reader)).await;
    assert_eq!(versions["versions"][1]["headlines"][0]["value"], "First story, updated");
    let requests = source.lock().unwrap().requests;
    wait_until("another poll", || async { source.lock().unwrap().requests > requests + 1 }).await;
    assert_eq!(items().await.len(), 2, "the duplicate under p-3 was not published");

    // Retry-After is honoured; a feed that cannot be read keeps failing and is paused after 3 failures.
    let limited_spec = json!({ "name": "Busy", "url": format!("{origin}/limited.rss"), "interval_seconds": 1 });
    let (_, busy) = call(client.post(&base).bearer_auth(&editor).json(&limited_spec)).await;
    let broken_spec = json!({ "name": "Broken", "url": format!("{origin}/broken.rss"), "interval_seconds": 1 });
    let (_, broken) = call(client.post(&base).bearer_auth(&editor).json(&broken_spec)).await;
    let broken_url = format!("{base}/{}", broken["id"].as_str().unwrap());
    wait_until("the broken feed to be paused", || async {
        let (_, state) = call(client.get(&broken_url).bearer_auth(&reader)).await;
        state["status"] == "paused"
    })
    .await;
    let (_, state) = call(client.get(&broken_url).bearer_auth(&reader)).await;
    assert_eq!(state["health"]["consecutive_failures"], 3, "{state}");
    assert!(state["health"]["last_error"].as_str().unwrap().contains("pubDate"), "{state}");
    assert!(state["health"]["next_poll_at"].is_null(), "{state}");
    let busy_url = format!("{base}/{}", busy["id"].as_str().unwrap());
    let (_, state) = call(client.get(&busy_url).bearer_auth(&reader)).await;
    assert!(state["health"]["last_error"].as_str().unwrap_or_default().contains("HTTP 503"), "{state}");
    // Resuming clears the failures; deleting stops the polling.
    let (status, state) = call(client.post(format!("{broken_url}/resume")).bearer_auth(&editor)).await;
    assert_eq!((status, state["status"].as_str()), (StatusCode::OK, Some("active")), "{state}");
    let (status, _) = call(client.delete(&busy_url).bearer_auth(&editor)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let limited_count = source.lock().unwrap().limited;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(source.lock().unwrap().limited, limited_count, "a deleted feed is not polled");
    let (_, listed) = call(client.get(&base).bearer_auth(&reader)).await;
    assert_eq!(listed["feeds"].as_array().unwrap().len(), 2, "{listed}");
}

/// Found from outside: a partner RSS feed of 70 KB nesting 10,000 elements aborted the process at the
/// poll, and again after each restart. Now the poll records the error and the server goes on, also
/// after a restart; a deep body inside an entry's description is kept as text.
#[tokio::test]
async fn a_deeply_nested_feed_is_an_error_of_its_poll_not_a_crash() {
    let deep_feed = format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Deep</title>{}{}</channel></rss>"#,
        "<x>".repeat(10_000),
        "</x>".repeat(10_000)
    );
    assert!(deep_feed.len() > 70_000);
    let deep_body = format!("{}Deep words{}", "<div>".repeat(10_000), "</div>".repeat(10_000));
    let deep_entry = rss(&[("d-1", "Deep entry", &deep_body)]);
    let app = axum::Router::new()
        .route("/deep.rss", get(move || async move { (StatusCode::OK, deep_feed.clone()) }))
        .route("/entry.rss", get(move || async move { (StatusCode::OK, deep_entry.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let (_member, editor) = member_with_key(dir.path(), "Deep Partner", "editor");
    let flags = ["--allow-private-webhooks", "--feed-min-interval-seconds", "1", "--translation-workers", "0"];
    let server = Server::start(dir.path(), &flags);
    let base = format!("{}/v1/ingest/feeds", server.base);
    let client = reqwest::Client::new();
    let mut urls = Vec::new();
    for path in ["deep.rss", "entry.rss"] {
        let spec = json!({ "name": path, "url": format!("{origin}/{path}"), "interval_seconds": 1 });
        let (status, provider) = call(client.post(&base).bearer_auth(&editor).json(&spec)).await;
        assert_eq!(status, StatusCode::CREATED, "{provider}");
        urls.push(format!("{base}/{}", provider["id"].as_str().unwrap()));
    }
    let deep_url = urls[0].clone();
    wait_until("the deep feed's poll to fail", || async {
        let (_, state) = call(client.get(&deep_url).bearer_auth(&editor)).await;
        state["health"]["last_error"].as_str().is_some_and(|e| e.contains("nested more than"))
    })
    .await;
    wait_until("the deep entry to arrive as text", || async {
        let (_, wire) = call(client.get(format!("{}/v1/items", server.base)).bearer_auth(&editor)).await;
        wire["items"][0]["bodies"][0]["value"].as_str() == Some("<p>Deep words</p>")
    })
    .await;
    let health = client.get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // A restart polls the deep feed again, and lives.
    drop(server);
    let server = Server::start(dir.path(), &flags);
    let deep_url = deep_url.replace(&base, &format!("{}/v1/ingest/feeds", server.base));
    let (_, before) = call(client.get(&deep_url).bearer_auth(&editor)).await;
    let failures = before["health"]["consecutive_failures"].as_u64().unwrap();
    wait_until("another failed poll after the restart", || async {
        let (_, state) = call(client.get(&deep_url).bearer_auth(&editor)).await;
        state["health"]["consecutive_failures"].as_u64() > Some(failures)
    })
    .await;
    let health = client.get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}
