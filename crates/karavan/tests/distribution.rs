//! Distribution through the real binary: subscriptions, signed webhooks with retries and a delivery
//! log, the changes feed with long-poll, the Atom feed, the live wire (SSE), outbound URL safety, a
//! receiver that hangs, and a SIGKILL during a burst that loses no delivery.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::receiver::Receiver;
use support::{Server, cli, member_with_key, realistic_item};

const SECRET: &str = "test-secret-0123456789";

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn publish(client: &reqwest::Client, base: &str, key: &str, item: &Value) -> Value {
    let (status, body) = send(client.post(format!("{base}/v1/items")).bearer_auth(key).json(item)).await;
    assert!(status.is_success(), "publish failed: {status} {body}");
    body
}

async fn subscribe(client: &reqwest::Client, base: &str, key: &str, spec: Value) -> Value {
    let (status, body) = send(client.post(format!("{base}/v1/subscriptions")).bearer_auth(key).json(&spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Waits until `done` holds for what the receiver got, or fails after `limit`.
async fn wait_for(
    receiver: &Receiver,
    limit: Duration,
    what: &str,
    done: impl Fn(&[support::receiver::Received]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        if done(&receiver.received()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; got {:#?}",
            receiver.received().iter().map(|r| (&r.path, &r.event, r.uri().to_string())).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn small_item(uri: &str, headline: &str, language: &str) -> Value {
    json!({
        "uri": uri,
        "type": "text",
        "language": language,
        "headlines": [{ "value": headline }],
        "bodies": [{ "contentType": "text/plain", "value": format!("{headline}. More text follows.") }],
    })
}

/// Reads server-sent events from a streaming response until `count` events arrived or time ran out.
async fn read_events(response: &mut reqwest::Response, count: usize, limit: Duration) -> Vec<(String, String, Value)> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    while events.len() < count {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => break,
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            if !event.is_empty() {
                events.push((id, event, serde_json::from_str(&data).unwrap_or_default()));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_feeds_and_the_live_wire_deliver_what_members_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, publisher_key) = member_with_key(dir.path(), "Publishing Agency", "editor");
    let (subscriber, subscriber_key) = member_with_key(dir.path(), "Subscribing Agency", "editor");
    let (_outsider, outsider_key) = member_with_key(dir.path(), "Outside Agency", "editor");
    let reader_key = cli(dir.path(), &["key", "create", "--member", &subscriber, "--role", "reader"]);
    cli(dir.path(), &["agreement", "add", "--grantor", &publisher, "--grantee", &subscriber]);
    let receiver = Receiver::start(SECRET).await;
    let server = Server::start(
        dir.path(),
        &["--allow-private-webhooks", "--webhook-retry-base-ms", "200", "--webhook-timeout-ms", "5000"],
    );
    let (base, client) = (server.base.clone(), reqwest::Client::new());

    let pushed = subscribe(
        &client,
        &base,
        &subscriber_key,
        json!({
            "name": "Khorgos pushed",
            "query": { "q": "Khorgos" },
            "webhook": { "url": format!("{}/ok", receiver.base), "secret": SECRET },
        }),
    )
    .await;
    let flaky = subscribe(
        &client,
        &base,
        &subscriber_key,
        json!({
            "name": "wheat, flaky",
            "query": { "q": "wheat" },
            "events": ["publish"],
            "webhook": { "url": format!("{}/flaky", receiver.base), "secret": SECRET },
        }),
    )
    .await;
    let pulled =
        subscribe(&client, &base, &subscriber_key, json!({ "name": "Kazakh", "query": { "lang": "kk" } })).await;
    let generated = subscribe(
        &client,
        &base,
        &subscriber_key,
        json!({
            "name": "secret made up",
            "query": { "q": "nothing-matches-this" },
            "webhook": { "url": format!("{}/ok", receiver.base) },
        }),
    )
    .await;
    assert!(generated["webhook"]["secret"].as_str().unwrap().starts_with("whsec_"), "a generated secret is shown once");
    let (_, fetched) = send(
        client
            .get(format!("{base}/v1/subscriptions/{}", generated["id"].as_str().unwrap()))
            .bearer_auth(&subscriber_key),
    )
    .await;
    assert!(fetched["webhook"].get("secret").is_none() && fetched["webhook"]["secretSet"] == json!(true), "{fetched}");
    let (_, listed) = send(client.get(format!("{base}/v1/subscriptions")).bearer_auth(&subscriber_key)).await;
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 4);
    let (_, others) = send(client.get(format!("{base}/v1/subscriptions")).bearer_auth(&outsider_key)).await;
    assert!(others["subscriptions"].as_array().unwrap().is_empty(), "subscriptions are per member");

    // The live wire of the subscriber, opened before anything is published.
    let mut wire = client.get(format!("{base}/v1/wire/stream")).bearer_auth(&subscriber_key).send().await.unwrap();
    assert_eq!(wire.status(), StatusCode::OK);
    assert!(wire.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));

    // Publish, an unrelated item, a correction and a kill; the live wire shows each as it happens.
    let first = publish(&client, &base, &publisher_key, &realistic_item("urn:dist:1", 0)).await;
    let first_id = first["id"].as_str().unwrap().to_string();
    let mut events = read_events(&mut wire, 1, Duration::from_secs(10)).await;
    publish(&client, &base, &publisher_key, &small_item("urn:dist:wheat", "Wheat harvest sets a record", "en")).await;
    events.extend(read_events(&mut wire, 1, Duration::from_secs(10)).await);
    let mut corrected = realistic_item("urn:dist:1", 0);
    corrected["version"] = json!("2");
    corrected["headlines"] =
        json!([{ "value": "Freight trains between Khorgos and Tashkent hit a record (corrected)" }]);
    publish(&client, &base, &publisher_key, &corrected).await;
    events.extend(read_events(&mut wire, 1, Duration::from_secs(10)).await);
    // (A correction still waiting to be pushed when the item is killed is withdrawn, not sent: wait.)
    wait_for(&receiver, Duration::from_secs(30), "the correction", |got| got.iter().any(|r| r.event == "correction"))
        .await;
    let (status, _) = send(
        client
            .post(format!("{base}/v1/items/{first_id}/kill"))
            .bearer_auth(&publisher_key)
            .json(&json!({ "reason": "wrong figures" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    events.extend(read_events(&mut wire, 1, Duration::from_secs(10)).await);
    let kinds: Vec<&str> = events.iter().map(|(_, kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["publish", "publish", "correction", "kill"], "{events:#?}");
    assert_eq!(events[3].2["item"]["pubStatus"], json!("canceled"));
    // Resuming after the first event: what changed since, each item at its latest version.
    let mut resumed = client
        .get(format!("{base}/v1/wire/stream"))
        .bearer_auth(&subscriber_key)
        .header("last-event-id", &events[0].0)
        .send()
        .await
        .unwrap();
    let replayed = read_events(&mut resumed, 2, Duration::from_secs(10)).await;
    let replayed_ids: Vec<&str> = replayed.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(replayed_ids, [events[1].0.as_str(), events[3].0.as_str()]);
    drop(resumed);
    drop(wire);

    let pushed_id = pushed["id"].as_str().unwrap().to_string();
    wait_for(&receiver, Duration::from_secs(30), "publish, correction and kill", |got| {
        let events: Vec<&str> = got.iter().filter(|r| r.subscription == pushed_id).map(|r| r.event.as_str()).collect();
        events.contains(&"publish") && events.contains(&"correction") && events.contains(&"kill")
    })
    .await;
    let got: Vec<_> = receiver.received().into_iter().filter(|r| r.subscription == pushed_id).collect();
    assert_eq!(got.len(), 3, "one delivery per event, nothing for the unrelated item: {got:#?}");
    for received in &got {
        assert!(received.signature_ok, "the signature verifies");
        assert!(received.delivery.starts_with("dlv_"));
        assert_eq!(received.body["delivery"], json!(received.delivery), "the body names its delivery");
        assert_eq!(received.body["event"], json!(received.event));
        assert_eq!(received.body["meta"]["id"], json!(first_id));
    }
    let kill = got.iter().find(|r| r.event == "kill").unwrap();
    assert_eq!(kill.body["item"]["pubStatus"], json!("canceled"));
    assert!(kill.body["item"].get("bodies").is_none(), "a kill notice carries no content");

    // The flaky receiver failed once, then got the item; the log shows both attempts.
    let flaky_id = flaky["id"].as_str().unwrap().to_string();
    wait_for(&receiver, Duration::from_secs(30), "the retry", |got| {
        got.iter().any(|r| r.subscription == flaky_id && r.attempt == 2)
    })
    .await;
    let flaky_got: Vec<_> = receiver.received().into_iter().filter(|r| r.subscription == flaky_id).collect();
    assert_eq!(flaky_got.len(), 2);
    assert_eq!(flaky_got[0].delivery, flaky_got[1].delivery, "a retry carries the same idempotency key");
    let log_deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let (status, log) =
            send(client.get(format!("{base}/v1/subscriptions/{flaky_id}/deliveries")).bearer_auth(&subscriber_key))
                .await;
        assert_eq!(status, StatusCode::OK);
        if log["deliveries"][0]["state"] == json!("delivered") || Instant::now() > log_deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["state"], json!("delivered"), "{log}");
    let statuses: Vec<&Value> = delivery["attempts"].as_array().unwrap().iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, [&json!(503), &json!(200)]);
    assert!(delivery["attempts"][0]["error"].as_str().unwrap().contains("503"));
    assert!(delivery["attempts"][1]["latencyMs"].as_f64().unwrap() >= 0.0);

    // The pull feed: a long-poll waits for news and returns as soon as it comes.
    let pulled_id = pulled["id"].as_str().unwrap().to_string();
    let (_, empty) =
        send(client.get(format!("{base}/v1/subscriptions/{pulled_id}/changes")).bearer_auth(&reader_key)).await;
    let start = empty["next"].as_str().unwrap().to_string();
    let poll = {
        let (client, url, key) = (
            client.clone(),
            format!("{base}/v1/subscriptions/{pulled_id}/changes?since={start}&wait=20"),
            reader_key.clone(),
        );
        tokio::spawn(async move {
            let begun = Instant::now();
            let (status, body) = send(client.get(url).bearer_auth(key)).await;
            (status, body, begun.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish(&client, &base, &publisher_key, &small_item("urn:dist:kk", "Қорғаста жаңа терминал ашылды", "kk")).await;
    let (status, changes, waited) = poll.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(waited < Duration::from_secs(15), "the long-poll returned with the news, not at its timeout ({waited:?})");
    let entries = changes["changes"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{changes}");
    assert_eq!(entries[0]["event"], json!("publish"));
    assert_eq!(entries[0]["item"]["uri"], json!("urn:dist:kk"));
    let (_, after) = send(
        client
            .get(format!("{base}/v1/subscriptions/{pulled_id}/changes?since={}", changes["next"].as_str().unwrap()))
            .bearer_auth(&reader_key),
    )
    .await;
    assert!(after["changes"].as_array().unwrap().is_empty(), "a cursor does not repeat entries");

    // Embargo: nothing reaches the subscriber before it ends; then the release does.
    let mut embargoed = realistic_item("urn:dist:embargo", 1);
    let until = time_in(Duration::from_secs(3));
    embargoed["embargoedUntil"] = json!(until);
    let published_at = Instant::now();
    publish(&client, &base, &publisher_key, &embargoed).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!receiver.received().iter().any(|r| r.uri() == "urn:dist:embargo"), "nothing before the embargo ends");
    let (_, log) =
        send(client.get(format!("{base}/v1/subscriptions/{pushed_id}/deliveries")).bearer_auth(&subscriber_key)).await;
    assert!(!log.to_string().contains("embargo_release"), "the log does not reveal an embargoed item: {log}");
    wait_for(&receiver, Duration::from_secs(20), "the embargo release", |got| {
        got.iter().any(|r| r.uri() == "urn:dist:embargo")
    })
    .await;
    let release = receiver.received().into_iter().find(|r| r.uri() == "urn:dist:embargo").unwrap();
    assert_eq!(release.event, "embargo_release");
    assert!(release.at.duration_since(published_at) >= Duration::from_millis(2500), "released at the embargo's end");

    // The Atom feed: no API key, the token is the credential; a standard feed parser reads it.
    let feed_url = pushed["feed_url"].as_str().unwrap();
    let response = client.get(feed_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/atom+xml"));
    let xml = response.bytes().await.unwrap();
    let feed = feed_rs::parser::parse(&xml[..]).expect("a feed parser reads the Atom feed");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    let titles: Vec<String> = feed.entries.iter().filter_map(|e| e.title.as_ref().map(|t| t.content.clone())).collect();
    assert!(titles.iter().any(|t| t.starts_with("KILL: ")), "{titles:?}");
    assert!(titles.iter().any(|t| t.contains("Khorgos")), "{titles:?}");
    assert!(feed.entries.iter().all(|e| e.updated.is_some()));
    let (status, _) = send(client.get(format!("{base}/feeds/kft_{}", "0".repeat(64)))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a wrong token opens nothing");
    let (_, rotated) =
        send(client.post(format!("{base}/v1/subscriptions/{pushed_id}/feed-token")).bearer_auth(&subscriber_key)).await;
    assert_eq!(
        client.get(feed_url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "the old token stops working"
    );
    assert_eq!(client.get(rotated["feed_url"].as_str().unwrap()).send().await.unwrap().status(), StatusCode::OK);

    // Bad requests are refused with a message naming what is wrong; nothing is created.
    let subscriptions = format!("{base}/v1/subscriptions");
    for (spec, needle) in [
        (json!({ "query": {} }), "name"),
        (json!({ "name": "x", "events": ["nope"] }), "events"),
        (json!({ "name": "x", "events": [] }), "events"),
        (json!({ "name": "x", "query": { "q": vec!["word"; 65].join(" ") } }), "query.q"),
        (json!({ "name": "x", "query": { "colour": "red" } }), "query.colour"),
        (json!({ "name": "x", "format": "nitf" }), "format"),
        (json!({ "name": "x", "webhook": { "url": "ftp://example.com/" } }), "webhook.url"),
        (json!({ "name": "x", "webhook": { "url": "https://example.com/", "secret": "short" } }), "webhook.secret"),
        (json!({ "name": "x", "extra": true }), "extra"),
        (json!("not an object"), "body"),
    ] {
        let (status, body) = send(client.post(&subscriptions).bearer_auth(&subscriber_key).json(&spec)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spec}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{spec}: {body}");
    }
    let (status, body) = send(
        client
            .post(&subscriptions)
            .bearer_auth(&subscriber_key)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
    let (status, _) =
        send(client.post(&subscriptions).bearer_auth(&subscriber_key).json(&json!({ "name": "Kazakh" }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "names are unique per member");
    let (status, _) =
        send(client.post(&subscriptions).bearer_auth(&reader_key).json(&json!({ "name": "by a reader" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        send(client.get(format!("{subscriptions}/{pushed_id}/deliveries")).bearer_auth(&outsider_key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another member's subscription does not exist for you");
    for query in ["since=nonsense", "wait=61", "limit=0", "colour=red"] {
        let (status, body) =
            send(client.get(format!("{subscriptions}/{pulled_id}/changes?{query}")).bearer_auth(&reader_key)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let (status, _) =
        send(client.get(format!("{base}/v1/wire/stream")).header("last-event-id", "garbage").bearer_auth(&reader_key))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, listed) = send(client.get(&subscriptions).bearer_auth(&subscriber_key)).await;
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 4, "no refused request created anything");

    // Editing and deleting.
    let (status, edited) = send(
        client
            .put(format!("{subscriptions}/{pulled_id}"))
            .bearer_auth(&subscriber_key)
            .json(&json!({ "name": "Kazakh and Russian", "query": { "lang": ["kk", "ru"] } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["query"]["lang"], json!(["kk", "ru"]));
    let (status, _) = send(client.delete(format!("{subscriptions}/{pulled_id}")).bearer_auth(&subscriber_key)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        send(client.get(format!("{subscriptions}/{pulled_id}/changes")).bearer_auth(&subscriber_key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// RFC 3339 for now plus `offset`.
fn time_in(offset: Duration) -> String {
    let at = std::time::SystemTime::now() + offset;
    let micros = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    karavan_domain::Timestamp(micros).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhook_addresses_need_the_operator_to_allow_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Careful Agency", "editor");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
    ] {
        let (status, body) = send(
            client
                .post(format!("{}/v1/subscriptions", server.base))
                .bearer_auth(&key)
                .json(&json!({ "name": "x", "webhook": { "url": url, "secret": SECRET } })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("--allow-private-webhooks"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_slows_neither_publishing_nor_other_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Busy Agency", "editor");
    let receiver = Receiver::start(SECRET).await;
    let server = Server::start(
        dir.path(),
        &["--allow-private-webhooks", "--webhook-timeout-ms", "60000", "--webhook-concurrency", "2"],
    );
    let (base, client) = (server.base.clone(), reqwest::Client::new());
    for (name, path) in [("hangs", "/hang"), ("answers", "/ok")] {
        subscribe(&client, &base, &key, json!({ "name": name, "query": { "q": "Khorgos" }, "webhook": { "url": format!("{}{path}", receiver.base), "secret": SECRET } })).await;
    }
    let count = 40;
    for n in 0..count {
        publish(&client, &base, &key, &realistic_item(&format!("urn:hang:{n}"), n)).await;
    }
    // Every item reaches the healthy receiver while the hanging one holds its two slots.
    wait_for(&receiver, Duration::from_secs(60), "every item at the healthy receiver", |got| {
        got.iter().filter(|r| r.path == "/ok").map(|r| r.uri().to_string()).collect::<HashSet<_>>().len() == count
    })
    .await;
    let log = receiver.log.lock().unwrap();
    assert_eq!(log.most_hanging, 2, "the hanging receiver gets at most its concurrency limit of requests at once");
    assert_eq!(log.hanging, 2);
}

/// Four clients publishing realistic items (`urn:PREFIX:worker:n`) as fast as they can until a request
/// fails to connect; every acknowledged uri goes into `acknowledged`. A refusal (an answer other than
/// success) panics when `refusal_panics`, else ends that client.
fn burst(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    prefix: &'static str,
    acknowledged: &Arc<Mutex<Vec<String>>>,
    refusal_panics: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|worker| {
            let (client, base, key, acknowledged) =
                (client.clone(), base.to_string(), key.to_string(), Arc::clone(acknowledged));
            tokio::spawn(async move {
                for n in 0.. {
                    let uri = format!("urn:{prefix}:{worker}:{n}");
                    let sent = client
                        .post(format!("{base}/v1/items"))
                        .bearer_auth(&key)
                        .json(&realistic_item(&uri, n))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => acknowledged.lock().unwrap().push(uri),
                        Ok(response) if refusal_panics => {
                            panic!("publish refused before the kill: {}", response.status())
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Crashing Agency", "editor");
    let receiver = Receiver::start(SECRET).await;
    let flags = ["--allow-private-webhooks", "--webhook-retry-base-ms", "200"];
    let server = Server::start(dir.path(), &flags);
    let (base, client) = (server.base.clone(), reqwest::Client::new());
    subscribe(&client, &base, &key, json!({ "name": "everything", "query": {}, "webhook": { "url": format!("{}/ok", receiver.base), "secret": SECRET } })).await;

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let publishers = burst(&client, &base, &key, "burst", &acknowledged, true);
    // Kill while publishes, fan-outs and pushes are all under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < 300 || receiver.received().len() < 50 {
        assert!(Instant::now() < deadline, "the burst is too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();
    let before_restart = receiver.received().len();
    assert!(before_restart < acknowledged.len(), "the kill came before everything was delivered");

    let _restarted = Server::start(dir.path(), &flags);
    wait_for(&receiver, Duration::from_secs(120), "every acknowledged item after the restart", |got| {
        let uris: HashSet<&str> = got.iter().map(|r| r.uri()).collect();
        acknowledged.iter().all(|uri| uris.contains(uri.as_str()))
    })
    .await;
    // Duplicates (a push sent just before the kill, sent again after) carry the same key.
    let mut keys: HashMap<String, HashSet<String>> = HashMap::new();
    for received in receiver.received() {
        assert!(received.signature_ok);
        keys.entry(received.uri().to_string()).or_default().insert(received.delivery.clone());
    }
    let split: Vec<_> = keys.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(split.is_empty(), "an item was delivered under two keys: {split:?}");
    eprintln!(
        "acknowledged {}, received {} deliveries ({} before the kill, {} duplicates)",
        acknowledged.len(),
        receiver.received().len(),
        before_restart,
        receiver.received().len() - keys.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_keeps_failing_ends_dead_with_every_attempt_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Failing Agency", "editor");
    let receiver = Receiver::start(SECRET).await;
    let flags = ["--allow-private-webhooks", "--webhook-retry-base-ms", "100", "--webhook-max-attempts", "3"];
    let server = Server::start(dir.path(), &flags);
    let (base, client) = (server.base.clone(), reqwest::Client::new());
    let failing = subscribe(
        &client,
        &base,
        &key,
        json!({ "name": "fails", "webhook": { "url": format!("{}/fail", receiver.base), "secret": SECRET } }),
    )
    .await;
    // Nothing listens on port 9 of loopback: the connection is refused.
    let refused = subscribe(
        &client,
        &base,
        &key,
        json!({ "name": "refused", "webhook": { "url": "http://127.0.0.1:9/hook", "secret": SECRET } }),
    )
    .await;
    publish(&client, &base, &key, &small_item("urn:dead:1", "Nobody takes this", "en")).await;
    for (subscription, error) in [(&failing, "HTTP 500"), (&refused, "")] {
        let id = subscription["id"].as_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let log = loop {
            let (_, log) = send(client.get(format!("{base}/v1/subscriptions/{id}/deliveries")).bearer_auth(&key)).await;
            if log["deliveries"][0]["state"] == json!("dead") {
                break log;
            }
            assert!(Instant::now() < deadline, "the delivery never went dead: {log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let attempts = log["deliveries"][0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 3, "{log}");
        assert!(log["deliveries"][0]["nextAttemptAt"].is_null());
        for attempt in attempts {
            assert!(attempt["error"].as_str().unwrap().contains(error), "{attempt}");
        }
    }
    assert_eq!(
        receiver.received().iter().filter(|r| r.path == "/fail").count(),
        3,
        "three attempts reached the receiver"
    );
}

/// Issue 18: SIGTERM during a publish burst, with one subscriber that never answers (its pushes are in
/// flight when the signal comes): the server stops within 10 s, and after the restart every
/// acknowledged publish is stored and delivered to the subscriber that answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_with_a_hanging_receiver_stops_quickly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Stopping Agency", "editor");
    let receiver = Receiver::start(SECRET).await;
    let flags = ["--allow-private-webhooks", "--webhook-retry-base-ms", "200"];
    let mut server = Server::start(dir.path(), &flags);
    let (base, client) = (server.base.clone(), reqwest::Client::new());
    subscribe(&client, &base, &key, json!({ "name": "answers", "query": {}, "webhook": { "url": format!("{}/ok", receiver.base), "secret": SECRET } })).await;
    subscribe(&client, &base, &key, json!({ "name": "hangs", "query": {}, "webhook": { "url": format!("{}/hang", receiver.base), "secret": SECRET } })).await;

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    // Refused or cut off while the server stops: not acknowledged, so not owed.
    let publishers = burst(&client, &base, &key, "term", &acknowledged, false);
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < 200 || receiver.received().len() < 20 {
        assert!(Instant::now() < deadline, "the burst is too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (exit, stopped_in) = server.terminate(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();
    let before_restart = receiver.received().len();

    let _restarted = Server::start(dir.path(), &flags);
    wait_for(&receiver, Duration::from_secs(120), "every acknowledged item after the restart", |got| {
        let uris: HashSet<&str> = got.iter().filter(|r| r.path == "/ok").map(|r| r.uri()).collect();
        acknowledged.iter().all(|uri| uris.contains(uri.as_str()))
    })
    .await;
    eprintln!(
        "stopped {} ms after SIGTERM; acknowledged {}, {} delivered before the stop",
        stopped_in.as_millis(),
        acknowledged.len(),
        before_restart
    );
}

/// A test delivery: a signed `test` event reaches the webhook at once and the answer says what
/// happened (a receiver that fails is reported with its status); nothing enters the delivery log; a
/// subscription without a webhook has nothing to test. The newsroom's button says the same on the
/// subscription's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_delivery_reaches_the_webhook_signed_and_says_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let (member, key) = member_with_key(dir.path(), "Testing Agency", "editor");
    let reader = cli(dir.path(), &["key", "create", "--member", &member, "--role", "reader"]);
    support::add_web_user(dir.path(), &member, "tester@example.kz");
    let receiver = Receiver::start(SECRET).await;
    let server = Server::start(dir.path(), &["--allow-private-webhooks", "--webhook-timeout-ms", "5000"]);
    let (base, client) = (server.base.clone(), reqwest::Client::new());
    let webhook = |path: &str| json!({ "url": format!("{}{path}", receiver.base), "secret": SECRET });
    let ok = subscribe(&client, &base, &key, json!({ "name": "ok", "query": { "q": "x" }, "webhook": webhook("/ok") }))
        .await;
    let ok_id = ok["id"].as_str().unwrap().to_string();
    let (status, body) = send(client.post(format!("{base}/v1/subscriptions/{ok_id}/test")).bearer_auth(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["delivered"].clone(), body["status"].clone()), (json!(true), json!(200)), "{body}");
    assert!(body["latencyMs"].as_f64().unwrap() >= 0.0 && body["error"].is_null(), "{body}");
    wait_for(&receiver, Duration::from_secs(5), "the test event", |got| {
        got.iter().any(|r| r.event == "test" && r.signature_ok && r.body["subscription"] == json!(ok_id.as_str()))
    })
    .await;
    let (_, log) = send(client.get(format!("{base}/v1/subscriptions/{ok_id}/deliveries")).bearer_auth(&key)).await;
    assert_eq!(log["deliveries"], json!([]), "a test is not a delivery");

    let failing = subscribe(
        &client,
        &base,
        &key,
        json!({ "name": "failing", "query": { "q": "x" }, "webhook": webhook("/fail") }),
    )
    .await;
    let failing_id = failing["id"].as_str().unwrap();
    let (status, body) =
        send(client.post(format!("{base}/v1/subscriptions/{failing_id}/test")).bearer_auth(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["delivered"].clone(), body["status"].clone()), (json!(false), json!(500)), "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("HTTP 500"), "{body}");

    let pulled = subscribe(&client, &base, &key, json!({ "name": "pulled", "query": { "q": "x" } })).await;
    let pulled_id = pulled["id"].as_str().unwrap();
    let (status, body) = send(client.post(format!("{base}/v1/subscriptions/{pulled_id}/test")).bearer_auth(&key)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = send(client.post(format!("{base}/v1/subscriptions/{ok_id}/test")).bearer_auth(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "readers may not test");

    // The newsroom: the button on the subscription's page, and its outcome in the UI language.
    let session = support::sign_in(&base, "tester@example.kz").await;
    let page = client.get(format!("{base}/subscriptions/{failing_id}")).header("cookie", &session.cookie).send().await;
    let html = page.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("action=\"/subscriptions/{failing_id}/test\"")), "{html}");
    assert!(html.contains(&format!("{failing_id}&#x2f;changes?since=")), "the changes feed is named: {html}");
    let tested = client
        .post(format!("{base}/subscriptions/{failing_id}/test"))
        .header("cookie", &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-language", "ru")
        .body(format!("csrf={}", session.csrf))
        .send()
        .await
        .unwrap();
    let html = tested.text().await.unwrap();
    assert!(html.contains("Тест не доставлен (HTTP 500"), "{html}");
}
