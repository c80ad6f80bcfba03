//! Two instances of the server's engines on one store (as two processes would run them): every
//! delivery is sent once, whichever instance stored its item, and none is lost.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use karavan_domain::{CountryCode, EventKind, Grantee, LanguageTag, MemberName, Right};
use karavan_server::ServerConfig;
use karavan_store::{NewAgreement, NewMember, SubscriptionSpec, Webhook};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_store_send_each_delivery_once() {
    // A receiver that takes a moment per delivery, so that both instances' pushers have work in hand.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let receiver = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let recorded = Arc::clone(&recorded);
            async move {
                let id = headers.get("karavan-delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                tokio::time::sleep(Duration::from_millis(20)).await;
                recorded.lock().unwrap().push(id);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.distribution.outbound.allow_private = true;
    let instance = |name: &str| {
        let state = common::app_state(dir.path(), name, config.clone());
        state.start_engines();
        state
    };
    let (a, b) = (instance("search-a"), instance("search-b"));
    assert_ne!(a.instance(), b.instance());

    let member = |name: &str| {
        a.store()
            .add_member(NewMember {
                name: MemberName::parse(name).unwrap(),
                country: CountryCode::parse("KZ").unwrap(),
                languages: vec![LanguageTag::parse("kk").unwrap()],
                contact: None,
            })
            .unwrap()
            .id
    };
    let (publisher, reader) = (member("Publisher"), member("Reader"));
    a.store()
        .add_agreement(NewAgreement {
            grantor: publisher.clone(),
            grantee: Grantee::Everyone,
            right: Right::View,
            subjects: Vec::new(),
            delay_minutes: 0,
        })
        .unwrap();
    let spec = SubscriptionSpec {
        name: "everything".into(),
        query: Vec::new(),
        events: EventKind::ALL.to_vec(),
        format: "ninjs".into(),
        webhook: Some(Webhook { url, secret: "a-secret-of-sixteen-bytes".into() }),
    };
    // Written through one instance; the other learns of it from the store (its generation).
    b.store().add_subscription(&reader, spec, [7; 32]).unwrap();

    const ITEMS: usize = 60;
    for n in 0..ITEMS {
        let state = if n % 2 == 0 { &a } else { &b };
        let value = json!({
            "uri": format!("urn:two:{n}"),
            "language": "kk",
            "headlines": [{ "value": format!("Хабар {n}") }],
        });
        let version = karavan_server::publish::new_version(&publisher, &value, value.to_string(), None).unwrap();
        karavan_server::app::publishing::publish(state, version).await.unwrap();
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < ITEMS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a second sender, if there were one, time to send again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut ids = seen.lock().unwrap().clone();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((total, ids.len()), (ITEMS, ITEMS), "each delivery sent once, none lost");

    a.engines().shutdown().await;
    b.engines().shutdown().await;
}
