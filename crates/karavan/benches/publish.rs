//! Publish throughput through the HTTP API of the real binary.
//!
//! Starts `karavan serve` on a fresh data directory, then publishes realistic items (about 2 KB of
//! ninjs each) from concurrent clients over keep-alive connections, and prints items/s and latency
//! percentiles; meanwhile a probe publishes an item every 100 ms and polls search until it is found
//! (publish → searchable under load); then a partner member lists its wire (the newest 50) and the
//! list latency is printed.
//! Settings: KARAVAN_BENCH_ITEMS (100000), KARAVAN_BENCH_CONCURRENCY (32), KARAVAN_BENCH_LISTS (200).
//! Run: `cargo bench -p karavan --bench publish`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use support::{Server, cli, member_with_key, peak_rss_mib, percentile, realistic_item, setting};

fn main() {
    let items = setting("KARAVAN_BENCH_ITEMS", 100_000);
    let concurrency = setting("KARAVAN_BENCH_CONCURRENCY", 32);
    let dir = tempfile::tempdir().unwrap();
    let (member, key) = member_with_key(dir.path(), "Bench Agency", "editor");
    // A second member reads everything through an agreement, as partners do.
    let (_reader_member, reader_key) = member_with_key(dir.path(), "Reading Agency", "reader");
    cli(dir.path(), &["agreement", "add", "--grantor", &member, "--grantee", "*", "--right", "view"]);
    let lists = setting("KARAVAN_BENCH_LISTS", 200);
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();

    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..items).map(|n| serde_json::to_vec(&realistic_item(&format!("urn:bench:{n}"), n)).unwrap()).collect(),
    );
    let mean_size = bodies.iter().map(Vec::len).sum::<usize>() / items.max(1);

    // One client thread, so that the server keeps most of the machine.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (elapsed, mut latencies, failures, mut list_latencies, mut freshness) = runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, base, key, next, bodies) =
                (client.clone(), base.clone(), key.clone(), Arc::clone(&next), Arc::clone(&bodies));
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0usize;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= bodies.len() {
                        return (latencies, failures);
                    }
                    let sent = Instant::now();
                    let response = client
                        .post(format!("{base}/v1/items"))
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(bodies[n].clone())
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let _ = r.bytes().await;
                            latencies.push(sent.elapsed().as_micros() as u64);
                        }
                        _ => failures += 1,
                    }
                }
            }));
        }
        // Meanwhile a probe publishes one item every 100 ms and polls search until it is found:
        // publish → searchable, measured under the load.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probe = {
            let (client, base, key, done) = (client.clone(), base.clone(), key.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let mut freshness = Vec::new();
                let mut n = 0usize;
                while !done.load(Ordering::Relaxed) {
                    // A word no other item has: letters only, so that every analyzer keeps it whole.
                    let word: String = format!("zq{n:08}")
                        .chars()
                        .map(|c| if c.is_ascii_digit() { (b'a' + c as u8 - b'0') as char } else { c })
                        .collect();
                    n += 1;
                    let item = serde_json::json!({
                        "uri": format!("urn:probe:{n}"), "type": "text", "language": "en",
                        "headlines": [{ "value": format!("Freshness probe {word}") }],
                    });
                    let sent = Instant::now();
                    let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await;
                    if !response.is_ok_and(|r| r.status().as_u16() == 201) {
                        continue;
                    }
                    loop {
                        let url = format!("{base}/v1/search?q={word}&limit=1");
                        let found = match client.get(&url).bearer_auth(&key).send().await {
                            Ok(r) => r.json::<serde_json::Value>().await.ok().and_then(|b| b["total"].as_u64()),
                            Err(_) => None,
                        };
                        if found.unwrap_or(0) >= 1 {
                            freshness.push(sent.elapsed().as_micros() as u64);
                            break;
                        }
                        if sent.elapsed() > std::time::Duration::from_secs(30) {
                            freshness.push(u64::MAX);
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                freshness
            })
        };
        let mut all = Vec::with_capacity(bodies.len());
        let mut failures = 0;
        for task in tasks {
            let (latencies, failed) = task.await.unwrap();
            all.extend(latencies);
            failures += failed;
        }
        let elapsed = started.elapsed();
        done.store(true, Ordering::Relaxed);
        let freshness = probe.await.unwrap();
        // Then the partner reads its wire: the first page, newest first, 50 items.
        let mut list_latencies = Vec::with_capacity(lists);
        for _ in 0..lists {
            let sent = Instant::now();
            let response =
                client.get(format!("{base}/v1/items?limit=50")).bearer_auth(&reader_key).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let _ = response.bytes().await;
            list_latencies.push(sent.elapsed().as_micros() as u64);
        }
        (elapsed, all, failures, list_latencies, freshness)
    });
    latencies.sort_unstable();
    let rss = peak_rss_mib(server.child.id());
    println!(
        "publish bench: {items} items of {mean_size} bytes, {concurrency} concurrent clients, SQLite synchronous=FULL"
    );
    println!(
        "  throughput  {:.0} items/s ({:.1} s)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "  latency     p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0)
    );
    println!("  failures    {failures}");
    freshness.sort_unstable();
    if !freshness.is_empty() {
        println!(
            "  publish → searchable ({} probes during the run, one every 100 ms): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            freshness.len(),
            percentile(&freshness, 0.50),
            percentile(&freshness, 0.99),
            percentile(&freshness, 1.0)
        );
    }
    list_latencies.sort_unstable();
    println!(
        "  then {lists} wire reads by a partner (newest 50 of {items}): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&list_latencies, 0.50),
        percentile(&list_latencies, 0.99)
    );
    if let Some(rss) = rss {
        println!("  server peak RSS {rss:.0} MiB");
    }
}
