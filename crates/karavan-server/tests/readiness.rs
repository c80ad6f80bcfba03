//! `GET /readyz`: public, cheap, without item data; ready only when the store answers, the engines are
//! started and the keyword index is within `READY_MAX_LAG` of the store.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use karavan_domain::{CountryCode, LanguageTag, MemberName, Role};
use karavan_server::{AppState, READY_MAX_LAG, ServerConfig, router};
use karavan_store::NewMember;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// `/readyz` without credentials; checks that the answer holds nothing but its own fields.
async fn readyz(state: &AppState) -> (StatusCode, Value) {
    let (status, body) = send(state, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    for key in body.as_object().unwrap().keys() {
        assert!(["status", "reasons", "searchLag"].contains(&key.as_str()), "unexpected field {key}: {body}");
    }
    (status, body)
}

fn reasons(body: &Value) -> Vec<&str> {
    body["reasons"].as_array().map(|reasons| reasons.iter().map(|r| r.as_str().unwrap()).collect()).unwrap_or_default()
}

/// Publishes `count` items through the API, in batches.
async fn publish(state: &AppState, key: &str, count: usize) {
    let items: Vec<Value> = (0..count)
        .map(|n| {
            json!({
                "uri": format!("urn:ready:{n}"), "type": "text", "language": "kk",
                "headlines": [{ "value": format!("Жаңалық {n}") }],
                "bodies": [{ "contentType": "text/plain", "value": "Қысқа мәтін." }]
            })
        })
        .collect();
    for batch in items.chunks(karavan_server::items::MAX_BATCH) {
        let request = Request::post("/v1/items")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(Value::Array(batch.to_vec()).to_string()))
            .unwrap();
        let (status, body) = send(state, request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_once_the_engines_run_and_the_index_has_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let state = common::app_state(dir.path(), "search", ServerConfig::default());

    // Nothing started yet: the store answers, the engines do not run.
    let (status, body) = readyz(&state).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready")));
    assert_eq!(reasons(&body), ["the engines are not started"]);
    assert_eq!(body["searchLag"], 0);

    // More versions than the bound, none indexed yet: the index is too far behind.
    let member = state
        .store()
        .add_member(NewMember {
            name: MemberName::parse("Kazinform").unwrap(),
            country: CountryCode::parse("KZ").unwrap(),
            languages: vec![LanguageTag::parse("kk").unwrap()],
            contact: None,
        })
        .unwrap();
    let key = state.store().create_key(&member.id, Role::Editor, None).unwrap().1.reveal().to_string();
    let count = usize::try_from(READY_MAX_LAG).unwrap() + 1;
    publish(&state, &key, count).await;
    let (status, body) = readyz(&state).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reasons(&body),
        [
            format!("the search index is {count} versions behind the store (ready at {READY_MAX_LAG})").as_str(),
            "the engines are not started"
        ]
    );
    assert_eq!(body["searchLag"], count);

    // The engines start and the keyword indexer catches up: ready.
    state.start_engines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (status, body) = readyz(&state).await;
        if status == StatusCode::OK {
            break body;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["status"], "ready");
    assert!(body["searchLag"].as_u64().unwrap() <= READY_MAX_LAG, "{body}");
    let (_, health) = send(&state, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert!(health["engines"]["search-indexer"]["lag"].as_u64().unwrap() <= READY_MAX_LAG, "{health}");

    // A node shutting down stops its engines: no longer ready.
    state.engines().shutdown().await;
    let (status, body) = readyz(&state).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reasons(&body).contains(&"engine search-indexer is stopped"), "{body}");
}
