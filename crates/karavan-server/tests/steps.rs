//! Every background engine has a deterministic step that a test drives without starting the engines
//! or sleeping: the keyword indexer (`search::catch_up`), the fan-out (`FanoutStep`), the pusher
//! (`push_step`), the feed poller (`poll_step`), the translation worker (`translate_step`), the
//! embedder (`embed_step`) and the release engine (`release::step`, tested in its module). Each step
//! is one round of its engine's work (the pusher and the poller finish their batch before returning,
//! where the engines keep several in flight), so what it leaves in the store is what a test checks.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use karavan_domain::{CountryCode, EventKind, LanguageTag, MemberId, MemberName, Role};
use karavan_server::distribution::{FanoutStep, push_step};
use karavan_server::{AppState, ServerConfig};
use karavan_store::{DeliveryState, NewMember, SubscriptionSpec, Webhook};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Setup {
    _dir: tempfile::TempDir,
    state: AppState,
    member: MemberId,
    origin: String,
    received: Arc<Mutex<Vec<(String, String)>>>,
}

/// A server's state (no engine started) and a local HTTP server that takes webhooks (`/hook`,
/// recording the delivery id and event) and serves an RSS feed (`/feed.rss`).
async fn setup() -> Setup {
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let recorded = Arc::clone(&received);
    let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Partner</title>
        <item><guid>urn:partner:1</guid><title>Grain exports rise</title><description>Exports of grain rose.</description></item>
        <item><guid>urn:partner:2</guid><title>New rail link opens</title><description>A rail link opened.</description></item>
        </channel></rss>"#;
    let app = Router::new()
        .route(
            "/hook",
            post(move |headers: HeaderMap| {
                let recorded = Arc::clone(&recorded);
                async move {
                    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    recorded.lock().unwrap().push((text("karavan-delivery"), text("karavan-event")));
                    StatusCode::OK
                }
            }),
        )
        .route("/feed.rss", get(move || async move { ([(header::CONTENT_TYPE, "application/rss+xml")], rss) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.distribution.outbound.allow_private = true;
    let state = common::app_state(dir.path(), "search", config);
    let member = karavan_server::app::access::add_member(
        &state,
        NewMember {
            name: MemberName::parse("Kabar").unwrap(),
            country: CountryCode::parse("KG").unwrap(),
            languages: vec![LanguageTag::parse("ky").unwrap()],
            contact: None,
        },
    )
    .await
    .unwrap()
    .id;
    Setup { _dir: dir, state, member, origin, received }
}

async fn publish(state: &AppState, member: &MemberId, uri: &str, headline: &str) {
    let value = json!({ "uri": uri, "language": "en", "headlines": [{ "value": headline }] });
    let (owner, original) = (member.clone(), value.to_string());
    karavan_server::app::publishing::read_and_publish(state, move || {
        karavan_server::publish::new_version(&owner, &value, original, None)
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_pusher_steps_deliver_each_publish_once_and_record_it() {
    let Setup { _dir, state, member, origin, received } = setup().await;
    let spec = SubscriptionSpec {
        name: "rail".into(),
        query: vec![("q".into(), "rail".into())],
        events: EventKind::ALL.to_vec(),
        format: "ninjs".into(),
        webhook: Some(Webhook { url: format!("{origin}/hook"), secret: "a-secret-of-sixteen-bytes".into() }),
    };
    let subscription = state.store().add_subscription(&member, spec, [3; 32]).unwrap();
    publish(&state, &member, "urn:steps:1", "A new rail link opens").await;
    publish(&state, &member, "urn:steps:2", "Grain harvest is early").await;

    // Nothing moves until a step runs: no engine was started.
    let holder = state.holder("pusher");
    assert_eq!(push_step(&state, &holder, 100).await.unwrap(), 0, "nothing is due before the fan-out");
    let mut fanout = FanoutStep::new(&state);
    let (_, read, written) = fanout.step(&state).unwrap().expect("this instance takes the fan-out lease");
    assert_eq!((read, written), (2, 1), "two events read, one matches the subscription");
    assert_eq!(fanout.step(&state).unwrap().map(|(_, read, written)| (read, written)), Some((0, 0)));

    assert_eq!(push_step(&state, &holder, 100).await.unwrap(), 1);
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "publish");
    let log = state.store().deliveries(&subscription.id, karavan_server::now(), None, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].state, DeliveryState::Delivered, "the attempt is recorded before the step returns");
    assert_eq!(log[0].id.to_string(), got[0].0, "sent under its delivery id");
    assert_eq!(push_step(&state, &holder, 100).await.unwrap(), 0, "a delivered delivery is not sent again");
    assert_eq!(received.lock().unwrap().len(), 1);

    // A correction follows the item to the subscription that received it.
    publish(&state, &member, "urn:steps:1", "A new rail link opens on Monday").await;
    assert_eq!(fanout.step(&state).unwrap().map(|(_, read, written)| (read, written)), Some((1, 1)));
    assert_eq!(push_step(&state, &holder, 100).await.unwrap(), 1);
    assert_eq!(received.lock().unwrap().last().unwrap().1, "correction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_poller_and_indexer_steps_ingest_a_feed_and_make_it_searchable() {
    let Setup { _dir, state, member, origin, .. } = setup().await;
    let input = karavan_server::app::feeds::FeedInput {
        name: "Partner".into(),
        url: format!("{origin}/feed.rss"),
        language: Some("en".into()),
        ..Default::default()
    };
    karavan_server::app::feeds::add(&state, &member, input).await.unwrap();
    let holder = state.holder("feed-poller");
    assert_eq!(karavan_server::feeds::poll_step(&state, &holder, 4).await.unwrap(), 1, "the new feed is due");
    assert_eq!(karavan_server::feeds::poll_step(&state, &holder, 4).await.unwrap(), 0, "and not again at once");

    // Stored, but not searchable until the indexer's step has run.
    let (_, key) = karavan_server::app::access::create_key(&state, &member, Role::Reader, None).await.unwrap();
    let router = karavan_server::router(state.clone());
    let search = |q: &'static str| {
        let request = Request::get(format!("/v1/search?q={q}"))
            .header("authorization", format!("Bearer {}", key.reveal()))
            .body(Body::empty())
            .unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value =
                serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
            body["total"].as_u64().unwrap()
        }
    };
    assert_eq!(search("grain").await, 0);
    let models = karavan_server::language::LanguageModels::new(None);
    assert_eq!(karavan_server::search::catch_up(state.store().as_ref(), state.search(), &models).unwrap(), 2);
    assert_eq!(search("grain").await, 1);
    assert_eq!(search("rail").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_steps_without_models_claim_nothing() {
    let Setup { _dir, state, member, .. } = setup().await;
    karavan_server::app::translation::set_read_languages(&state, &member, vec!["ru".into()]).await.unwrap();
    publish(&state, &member, "urn:steps:model", "Grain harvest is early").await;
    // No translation model: the jobs (head and body) stay queued, unclaimed, for when one is installed.
    assert!(karavan_server::translation::translate_step(&state, "translator").is_none());
    let stats = state.store().stats().unwrap();
    assert_eq!(stats.translation_jobs.queued, 2, "{:?}", stats.translation_jobs);
    // No embedding model: the embedder's step says so and embeds nothing.
    let error = karavan_server::semantic::embed_step(&state).unwrap_err();
    assert!(!error.is_empty());
    assert!(state.vectors().status().is_none());
}
