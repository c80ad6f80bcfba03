//! Cluster mode through the real binary: three nodes on loopback ports share one PostgreSQL database
//! (a fresh one, dropped afterwards) and the NATS JetStream server. Ten thousand items are published
//! across the nodes while a webhook subscription, a feed and translation are at work; one node is
//! killed with SIGKILL in the middle and started again. Then:
//!
//! - every acknowledged publish is stored once;
//! - every node's keyword index gives the same answers;
//! - every item reached the webhook at least once, a repeat always under the same `Karavan-Delivery`;
//! - every translation job was done, never by two nodes at once; the feed was polled by one node at a
//!   time, about once per interval, not once per node;
//! - a live-wire client on node A saw what was published on node C.
//!
//! The translation service is a LibreTranslate-compatible stand-in served by the test (no real
//! service runs here); the PostgreSQL server (`KARAVAN_TEST_POSTGRES`, default 127.0.0.1:5432) and
//! NATS (`KARAVAN_TEST_NATS`, default 127.0.0.1:4222) are real. `KARAVAN_CLUSTER_ITEMS` makes the run
//! smaller for a quick local check.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};
use support::receiver::Receiver;
use support::{Database, Server, cli, nats_server};

const SECRET: &str = "cluster-webhook-secret";
/// Words the items are about, one per item in turn: what the nodes are asked to find.
const WORDS: [&str; 7] = ["wheat", "railway", "summit", "copper", "festival", "pipeline", "harvest"];

/// What the stand-in services saw.
#[derive(Default)]
struct Seen {
    /// Translation requests by text, and the texts being translated right now.
    translations: HashMap<String, usize>,
    translating: HashSet<String>,
    /// A text asked for while a request for it was still being answered: two nodes on one job.
    overlapping: Vec<String>,
    feed_polls: usize,
    polling: usize,
    most_polling: usize,
}

/// A translation being answered; it is over when this is dropped, also when the asking node was
/// killed and its connection dropped the request.
struct Translating(Arc<Mutex<Seen>>, String);

impl Drop for Translating {
    fn drop(&mut self) {
        self.0.lock().unwrap().translating.remove(&self.1);
    }
}

async fn translate(State(seen): State<Arc<Mutex<Seen>>>, Json(request): Json<Value>) -> Json<Value> {
    let text = request["q"].as_str().unwrap_or_default().to_string();
    {
        let mut seen = seen.lock().unwrap();
        *seen.translations.entry(text.clone()).or_default() += 1;
        if !seen.translating.insert(text.clone()) {
            seen.overlapping.push(text.clone());
        }
    }
    let _translating = Translating(Arc::clone(&seen), text.clone());
    // A translation takes a moment, so that two nodes on one job would overlap.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Json(json!({ "translatedText": format!("[ru] {text}") }))
}

async fn feed(State(seen): State<Arc<Mutex<Seen>>>) -> ([(&'static str, &'static str); 1], String) {
    {
        let mut seen = seen.lock().unwrap();
        seen.feed_polls += 1;
        seen.polling += 1;
        seen.most_polling = seen.most_polling.max(seen.polling);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    seen.lock().unwrap().polling -= 1;
    let items: String = (0..3)
        .map(|n| {
            format!(
                "<item><title>Partner bulletin {n}</title><link>https://partner.example/{n}</link>\
                 <guid>partner-{n}</guid><description>Bulletin {n} from the partner feed.</description></item>"
            )
        })
        .collect();
    (
        [("content-type", "application/rss+xml")],
        format!(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Partner</title>{items}</channel></rss>"#),
    )
}

fn item(n: usize) -> Value {
    let word = WORDS[n % WORDS.len()];
    // Every tenth item is in Kazakh (translated into the subscriber's Russian); the rest in Russian.
    let language = if n.is_multiple_of(10) { "kk" } else { "ru" };
    json!({
        "uri": format!("urn:cluster:{n}"),
        "headlines": [{ "value": format!("Cluster item {n} about {word}") }],
        "bodies": [{ "contentType": "text/plain", "value": format!("Item {n} of the cluster run, on {word}.") }],
        "language": language,
    })
}

/// Publishes an item on the node `preferred` points to, going to the next node while one does not
/// answer (killed); the node that acknowledged it.
async fn publish(client: &reqwest::Client, bases: &Mutex<Vec<String>>, key: &str, n: usize, preferred: usize) -> usize {
    let body = item(n);
    for attempt in 0..60 {
        let node = (preferred + attempt) % 3;
        let base = bases.lock().unwrap()[node].clone();
        match client.post(format!("{base}/v1/items")).bearer_auth(key).json(&body).send().await {
            Ok(response) if response.status().is_success() => return node,
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                assert!(status.is_server_error(), "publish {n} on node {node}: {status} {text}");
            }
            // Killed, or restarting: the same publish again elsewhere is safe (same uri and content).
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("publish {n} was never acknowledged");
}

async fn search_total(client: &reqwest::Client, base: &str, key: &str, q: &str) -> Option<u64> {
    let response = client
        .get(format!("{base}/v1/search?q={}&limit=1", support::urlencoding(q)))
        .bearer_auth(key)
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["total"].as_u64()
}

async fn wait_until(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        match done().await {
            Ok(()) => return,
            Err(state) if Instant::now() >= deadline => panic!("timed out waiting for {what}: {state}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn node_args<'a>(database: &'a str, nats: &'a str, name: &'a str, services: &'a str) -> Vec<String> {
    vec![
        "--database".into(),
        database.into(),
        "--nats".into(),
        nats.into(),
        "--node".into(),
        name.into(),
        "--allow-private-webhooks".into(),
        "--webhook-retry-base-ms".into(),
        "200".into(),
        "--feed-min-interval-seconds".into(),
        "1".into(),
        "--translation-url".into(),
        services.into(),
    ]
}

fn start_node(dir: &std::path::Path, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(dir, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_survive_a_killed_node() {
    let items: usize = std::env::var("KARAVAN_CLUSTER_ITEMS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let database = Database::create("cluster");
    let nats = nats_server();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let db = ["--database", database.url.as_str()];

    // Members, keys, an agreement and the subscriber's reading language, from the CLI on the store.
    let on = |args: &[&str]| cli(dirs[0].path(), &[&db[..], args].concat());
    let publisher = on(&["member", "add", "--name", "Publishing Agency", "--country", "KZ", "--languages", "kk,ru"]);
    let publisher_key = on(&["key", "create", "--member", &publisher, "--role", "editor"]);
    let subscriber = on(&["member", "add", "--name", "Subscribing Agency", "--country", "CN", "--languages", "zh"]);
    let subscriber_key = on(&["key", "create", "--member", &subscriber, "--role", "editor"]);
    on(&["agreement", "add", "--grantor", &publisher, "--grantee", &subscriber]);

    // The stand-in services: translation and a partner's RSS feed.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let services = axum::Router::new()
        .route("/translate", post(translate))
        .route("/feed.rss", get(feed))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let services_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, services).await });
    let receiver = Receiver::start(SECRET).await;

    let names = ["node-a", "node-b", "node-c"];
    let args: Vec<Vec<String>> =
        names.iter().map(|name| node_args(&database.url, &nats, name, &services_base)).collect();
    let mut nodes: Vec<Option<Server>> =
        dirs.iter().zip(&args).map(|(dir, args)| Some(start_node(dir.path(), args))).collect();
    let bases = Arc::new(Mutex::new(nodes.iter().map(|n| n.as_ref().unwrap().base.clone()).collect::<Vec<_>>()));
    let base = |n: usize| bases.lock().unwrap()[n].clone();
    let client = reqwest::Client::new();

    // Configuration on different nodes: it reaches every node's engines.
    let response = client
        .put(format!("{}/v1/me/read-languages", base(1)))
        .bearer_auth(&subscriber_key)
        .json(&json!({ "languages": ["ru"] }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let response = client
        .post(format!("{}/v1/subscriptions", base(2)))
        .bearer_auth(&subscriber_key)
        .json(&json!({
            "name": "Everything from the cluster",
            "query": { "q": "cluster" },
            "events": ["publish"],
            "webhook": { "url": format!("{}/ok", receiver.base), "secret": SECRET },
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let response = client
        .post(format!("{}/v1/ingest/feeds", base(0)))
        .bearer_auth(&publisher_key)
        .json(&json!({ "name": "Partner", "url": format!("{services_base}/feed.rss"), "language": "ru", "interval_seconds": 1 }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());

    // A live-wire client on node A, reading the subscriber's wire.
    let wire = Arc::new(Mutex::new(String::new()));
    {
        let (wire, url, key) = (Arc::clone(&wire), format!("{}/v1/wire/stream", base(0)), subscriber_key.clone());
        tokio::spawn(async move {
            let mut response = reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap();
            while let Ok(Some(chunk)) = response.chunk().await {
                wire.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk));
            }
        });
    }

    // Publish across the nodes, 8 at a time; kill node B at 40 % and start it again at 70 %.
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(vec![usize::MAX; items]));
    let publishers: Vec<_> = (0..8)
        .map(|_| {
            let (client, bases, key) = (client.clone(), Arc::clone(&bases), publisher_key.clone());
            let (next, acknowledged) = (Arc::clone(&next), Arc::clone(&acknowledged));
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= items {
                        return;
                    }
                    let node = publish(&client, &bases, &key, n, n % 3).await;
                    acknowledged.lock().unwrap()[n] = node;
                }
            })
        })
        .collect();
    while next.load(Ordering::SeqCst) < items * 2 / 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[1].take().unwrap().kill();
    let killed_at = next.load(Ordering::SeqCst);
    while next.load(Ordering::SeqCst) < items * 7 / 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir_b = dirs[1].path().to_path_buf();
    let args_b = args[1].clone();
    let restarted = tokio::task::spawn_blocking(move || start_node(&dir_b, &args_b)).await.unwrap();
    bases.lock().unwrap()[1] = restarted.base.clone();
    nodes[1] = Some(restarted);
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let published_in = started.elapsed();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.iter().all(|node| *node < 3), "every publish was acknowledged");
    let on_c: Vec<usize> = (0..items).filter(|n| acknowledged[*n] == 2).collect();
    eprintln!(
        "published {items} items in {published_in:?} ({:.0}/s); node B killed after {killed_at}; {} acknowledged by C",
        items as f64 / published_in.as_secs_f64(),
        on_c.len()
    );

    // Every acknowledged publish is stored once (one item, one version).
    let mut pg = database.client();
    let stored = pg.count("SELECT COUNT(*) FROM items WHERE uri LIKE 'urn:cluster:%'");
    let versions =
        pg.count("SELECT COUNT(*) FROM versions v JOIN items i ON i.id = v.item_id WHERE i.uri LIKE 'urn:cluster:%'");
    assert_eq!((stored, versions), (items as i64, items as i64), "each publish stored once");

    // Every node's index converges on the same answers.
    let queries: Vec<(String, u64)> = WORDS
        .iter()
        .enumerate()
        .map(|(i, word)| (word.to_string(), (0..items).filter(|n| n % WORDS.len() == i).count() as u64))
        .chain([("cluster".to_string(), items as u64)])
        .collect();
    wait_until(Duration::from_secs(180), "every node's index to converge", async || {
        for node in 0..3 {
            for (q, expected) in &queries {
                let total = search_total(&client, &base(node), &subscriber_key, q).await;
                if total != Some(*expected) {
                    return Err(format!("node {node}: {q:?} gives {total:?}, not {expected}"));
                }
            }
        }
        Ok(())
    })
    .await;

    // Every item reached the webhook at least once, repeats under the same delivery id.
    wait_until(Duration::from_secs(300), "every webhook delivery", async || {
        let got: HashSet<String> = receiver.received().iter().map(|r| r.uri().to_string()).collect();
        let missing = (0..items).filter(|n| !got.contains(&format!("urn:cluster:{n}"))).count();
        if missing == 0 { Ok(()) } else { Err(format!("{missing} items not delivered yet")) }
    })
    .await;
    let received = receiver.received();
    let mut ids_by_item: HashMap<String, HashSet<String>> = HashMap::new();
    for delivery in &received {
        assert!(delivery.signature_ok, "signed with the subscription's secret");
        ids_by_item.entry(delivery.uri().to_string()).or_default().insert(delivery.delivery.clone());
    }
    let repeats = received.len() - ids_by_item.len();
    assert!(ids_by_item.values().all(|ids| ids.len() == 1), "a repeat carries the same Karavan-Delivery");

    // Every translation job (a head and a body per Kazakh item) is done (none lost with the killed
    // node), never by two nodes at once.
    let jobs = 2 * (0..items).filter(|n| n.is_multiple_of(10)).count() as i64;
    wait_until(Duration::from_secs(300), "every translation job", async || {
        let rows = pg.query("SELECT state, COUNT(*) FROM translation_jobs GROUP BY state");
        let done = rows.iter().find(|r| r.get::<_, String>(0) == "done").map_or(0, |r| r.get::<_, i64>(1));
        if done >= jobs { Ok(()) } else { Err(format!("{done} of {jobs} done: {rows:?}")) }
    })
    .await;
    let (overlapping, feed_polls, most_polling) = {
        let seen = seen.lock().unwrap();
        (seen.overlapping.clone(), seen.feed_polls, seen.most_polling)
    };
    assert!(overlapping.is_empty(), "a job was translated by two nodes at once: {overlapping:?}");
    // The feed: one node at a time, about once per second over the run, not once per node; its
    // entries became items once.
    let elapsed = started.elapsed().as_secs() as usize;
    assert_eq!(most_polling, 1, "two nodes polled the feed at once");
    assert!(feed_polls <= elapsed + 10, "{feed_polls} polls in {elapsed} s: polled by several nodes");
    let feed_items = pg.count("SELECT COUNT(*) FROM items WHERE uri LIKE '%partner.example%' OR uri LIKE 'partner-%'");
    assert!(feed_items <= 3, "feed entries stored once each: {feed_items}");

    // The live wire on node A saw what node C acknowledged.
    wait_until(Duration::from_secs(60), "the live wire on node A", async || {
        let on_wire: HashSet<String> = {
            let wire = wire.lock().unwrap();
            wire.split("\"uri\":\"").skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_string).collect()
        };
        let missing = on_c.iter().filter(|n| !on_wire.contains(&format!("urn:cluster:{n}"))).count();
        if missing == 0 { Ok(()) } else { Err(format!("{missing} of node C's items not on node A's live wire")) }
    })
    .await;
    eprintln!(
        "converged: {} deliveries ({repeats} repeats), {jobs} translation jobs, {feed_polls} feed polls in {elapsed} s",
        received.len()
    );
    drop(nodes);
    // The cluster's stream goes with its database.
    let identity: String = pg.query("SELECT id FROM store_identity")[0].get(0);
    if let Ok(bus) = karavan_server::cluster::NatsBus::connect(&nats, &identity, "cleanup").await {
        let _ = bus.delete_stream().await;
    }
}
