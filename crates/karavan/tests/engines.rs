//! The background engines under their supervisor, through the real binary (issue 18): `/healthz`
//! lists every engine; one that panics (injected in this debug build with `KARAVAN_TEST_ENGINE_PANIC`)
//! is restarted and `/healthz` shows its restart and the panic; SIGTERM stops the server within 10 s,
//! with what was published stored and searchable after the restart.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, member_with_key, realistic_item};

async fn health(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_engine_is_restarted_and_healthz_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Engine Agency", "editor");
    let server = Server::start_with_env(dir.path(), &[], &[("KARAVAN_TEST_ENGINE_PANIC", "feed-poller")]);
    let client = reqwest::Client::new();
    // While the poller waits out its first backoff (1 s), /healthz says degraded and why; then it runs again.
    let (mut saw_restarting, deadline) = (false, Instant::now() + Duration::from_secs(20));
    let body = loop {
        let (status, body) = health(&client, &server.base).await;
        let poller = &body["engines"]["feed-poller"];
        if poller["status"] == "restarting" {
            assert_eq!((status, body["status"].as_str()), (503, Some("degraded")), "{body}");
            assert!(poller["lastError"].as_str().unwrap_or_default().contains("panicked: injected"), "{body}");
            saw_restarting = true;
        }
        if poller["restarts"] == 1 && poller["status"] == "running" {
            assert_eq!(status, 200, "{body}");
            break body;
        }
        assert!(Instant::now() < deadline, "the poller was not restarted: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(saw_restarting, "/healthz never showed the failed engine");
    assert_eq!(body["status"], "ok", "{body}");
    for engine in ["search-indexer", "search-committer", "fanout", "pusher", "feed-poller", "embedder", "translator"] {
        assert_eq!(body["engines"][engine]["status"], "running", "{engine}: {body}");
    }
    let poller = &body["engines"]["feed-poller"];
    assert!(poller["lastError"].as_str().unwrap_or_default().contains("panicked: injected"), "{body}");
    assert_eq!(body["engines"]["fanout"]["restarts"], 0);
    assert!(body["engines"]["fanout"]["lastError"].is_null());

    // The rest of the server was never disturbed: a publish is stored and searchable.
    let response =
        client.post(format!("{}/v1/items", server.base)).bearer_auth(&key).json(&realistic_item("urn:e:1", 1)).send();
    assert_eq!(response.await.unwrap().status().as_u16(), 201);
    // The engines that follow the store report their lag, and catch up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = health(&client, &server.base).await;
        let (index, fanout) = (&body["engines"]["search-indexer"]["lag"], &body["engines"]["fanout"]["lag"]);
        assert!(index.is_u64() && fanout.is_u64(), "{body}");
        if index == 0 && fanout == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the engines did not catch up: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_quickly_and_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Engine Agency", "editor");
    let mut server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    for n in 0..20 {
        let item = realistic_item(&format!("urn:term:{n}"), n);
        let response = client.post(format!("{}/v1/items", server.base)).bearer_auth(&key).json(&item).send();
        assert_eq!(response.await.unwrap().status().as_u16(), 201);
    }
    let (exit, stopped_in) = server.terminate(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    eprintln!("stopped {} ms after SIGTERM", stopped_in.as_millis());

    let server = Server::start(dir.path(), &[]);
    let body: Value = client
        .get(format!("{}/v1/search?q=Khorgos&limit=1", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"], 20, "{body}");
}
