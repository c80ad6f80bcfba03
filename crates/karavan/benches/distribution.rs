//! Distribution end to end through the real binary: publish → fan-out → signed webhook → receiver.
//!
//! One member holds KARAVAN_BENCH_SUBSCRIPTIONS (1000) webhook subscriptions, each following one of 50
//! topics, so every item matches SUBSCRIPTIONS / 50 of them (20). A fast local receiver (in this
//! process) answers 200 at once and records when each delivery arrived.
//!
//! 1. Latency: items are published at KARAVAN_BENCH_RATE (100) per second for KARAVAN_BENCH_SECONDS (20);
//!    prints end-to-end latency from the start of the publish request to the webhook's receipt (p50,
//!    p99, max) and the deliveries/s sustained.
//! 2. Throughput: KARAVAN_BENCH_BURST (2000) items are published as fast as possible; prints
//!    deliveries/s from the first publish to the last delivery received.
//!
//! Run: `cargo bench -p karavan --bench distribution`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::receiver::Receiver;
use support::{Server, cli, member_with_key, realistic_item};

const SECRET: &str = "bench-secret-0123456789";
const TOPICS: usize = 50;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// An item about topic `n % TOPICS`: the topic word is in its headline.
fn item(uri: &str, n: usize) -> serde_json::Value {
    let mut item = realistic_item(uri, n);
    item["headlines"] = json!([{ "value": format!("Corridor{:02} freight record, report {n}", n % TOPICS) }]);
    item
}

/// Waits until the receiver holds `expected` deliveries or `limit` passes; returns how many it holds.
async fn wait_deliveries(receiver: &Receiver, expected: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let count = receiver.log.lock().unwrap().received.len();
        if count >= expected || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let subscriptions = setting("KARAVAN_BENCH_SUBSCRIPTIONS", 1000);
    let rate = setting("KARAVAN_BENCH_RATE", 100);
    let seconds = setting("KARAVAN_BENCH_SECONDS", 20);
    let burst = setting("KARAVAN_BENCH_BURST", 2000);
    let per_item = subscriptions / TOPICS;

    let dir = tempfile::tempdir().unwrap();
    let (publisher, publisher_key) = member_with_key(dir.path(), "Publishing Agency", "editor");
    let (_subscriber, subscriber_key) = member_with_key(dir.path(), "Subscribing Agency", "editor");
    cli(dir.path(), &["agreement", "add", "--grantor", &publisher, "--grantee", "*"]);
    let server = Server::start(dir.path(), &["--allow-private-webhooks"]);
    let base = server.base.clone();

    // Two threads for the bench (publisher and receiver); the server has the rest of the machine.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let receiver = Receiver::start(SECRET).await;
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        for n in 0..subscriptions {
            let spec = json!({
                "name": format!("corridor {n}"),
                "query": { "q": format!("corridor{:02}", n % TOPICS) },
                "events": ["publish", "correction", "kill"],
                "webhook": { "url": format!("{}/ok", receiver.base), "secret": SECRET },
            });
            let response =
                client.post(format!("{base}/v1/subscriptions")).bearer_auth(&subscriber_key).json(&spec).send().await.unwrap();
            assert!(response.status().is_success(), "creating subscription {n}: {}", response.status());
        }
        println!("distribution bench: {subscriptions} subscriptions, {per_item} per item, receiver {}", receiver.base);

        // 1. Latency at a steady rate.
        let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let total = rate * seconds;
        let started = Instant::now();
        let mut publishes = Vec::new();
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for n in 0..total {
            ticks.tick().await;
            let (client, base, key, sent_at) = (client.clone(), base.clone(), publisher_key.clone(), Arc::clone(&sent_at));
            publishes.push(tokio::spawn(async move {
                let uri = format!("urn:steady:{n}");
                let body = item(&uri, n);
                let at = Instant::now();
                sent_at.lock().unwrap().insert(uri, at);
                let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&body).send().await.unwrap();
                assert!(response.status().is_success());
                at.elapsed()
            }));
        }
        let mut publish_latencies = Vec::new();
        for publish in publishes {
            publish_latencies.push(publish.await.unwrap().as_secs_f64() * 1000.0);
        }
        let expected = total * per_item;
        let got = wait_deliveries(&receiver, expected, Duration::from_secs(120)).await;
        let elapsed = started.elapsed();
        let received = receiver.log.lock().unwrap().received.clone();
        let mut latencies: Vec<f64> = {
            let sent_at = sent_at.lock().unwrap();
            received
                .iter()
                .filter_map(|r| Some(r.at.duration_since(*sent_at.get(r.uri())?).as_secs_f64() * 1000.0))
                .collect()
        };
        latencies.sort_by(f64::total_cmp);
        publish_latencies.sort_by(f64::total_cmp);
        let last = received.iter().map(|r| r.at).max().unwrap_or(started);
        println!(
            "steady: {total} items at {rate}/s over {seconds} s -> {got}/{expected} deliveries, {:.0} deliveries/s",
            got as f64 / last.duration_since(started).as_secs_f64()
        );
        println!(
            "  publish to webhook receipt: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "  publish request itself: p50 {:.1} ms, p99 {:.1} ms (run took {:.1} s)",
            percentile(&publish_latencies, 0.5),
            percentile(&publish_latencies, 0.99),
            elapsed.as_secs_f64()
        );
        assert!(received.iter().all(|r| r.signature_ok), "every delivery is signed correctly");
        receiver.log.lock().unwrap().received.clear();

        // 2. Throughput: a burst, then wait for every delivery.
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..8 {
            let (client, base, key, next) = (client.clone(), base.clone(), publisher_key.clone(), Arc::clone(&next));
            workers.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= burst {
                        return;
                    }
                    let body = item(&format!("urn:burst:{n}"), n);
                    let response =
                        client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&body).send().await.unwrap();
                    assert!(response.status().is_success());
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
        let published = started.elapsed();
        let expected = burst * per_item;
        let got = wait_deliveries(&receiver, expected, Duration::from_secs(300)).await;
        let last = receiver.log.lock().unwrap().received.iter().map(|r| r.at).max().unwrap_or(started);
        let span = last.duration_since(started).as_secs_f64();
        println!(
            "burst: {burst} items published in {:.1} s ({:.0}/s) -> {got}/{expected} deliveries in {span:.1} s: {:.0} deliveries/s",
            published.as_secs_f64(),
            burst as f64 / published.as_secs_f64(),
            got as f64 / span
        );
        if let Some(rss) = peak_rss_mib(server.child.id()) {
            println!("server peak RSS: {rss:.0} MiB");
        }
    });
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
