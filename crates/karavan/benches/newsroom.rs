//! The web newsroom's pages with a full store: server time (measured at the client over loopback, one
//! request at a time, keep-alive) and size of every page of the newsroom.
//!
//! Starts `karavan serve` on a fresh data directory, publishes KARAVAN_BENCH_ITEMS realistic items
//! (100,000 by default; about 2 KB of ninjs each, five languages, nine urgencies, two subjects)
//! through the API, waits until search has indexed them, signs an editor in through the form, then
//! requests each page KARAVAN_BENCH_REQUESTS times (200) and prints p50 / p99 / max latency and the
//! page's size; the stylesheet and the script are added to each page's weight, as a browser loads
//! them. No language models are installed (the item page's similar stories and translations are off),
//! as in the embedded default before `karavan models install`.
//! Run: `cargo bench -p karavan --bench newsroom`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Server, add_web_user, member_with_key, percentile, realistic_item, setting, sign_in};

fn main() {
    let items = setting("KARAVAN_BENCH_ITEMS", 100_000);
    let requests = setting("KARAVAN_BENCH_REQUESTS", 200);
    let dir = tempfile::tempdir().unwrap();
    let (member, key) = member_with_key(dir.path(), "Bench Agency", "editor");
    add_web_user(dir.path(), &member, "desk@bench.kz");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(32)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // The store: items published through the API, 32 at a time.
        let started = Instant::now();
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (client, base, key, next) = (client.clone(), base.clone(), key.clone(), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= items {
                        return;
                    }
                    let mut item = realistic_item(&format!("urn:bench:{n}"), n);
                    if n % 3 == 0 {
                        item["subjects"] = serde_json::json!([{ "name": "sport", "uri": "http://cv.iptc.org/newscodes/mediatopic/15000000" }]);
                    }
                    let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await;
                    assert!(response.is_ok_and(|r| r.status().as_u16() == 201), "publishing item {n}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        println!("published {items} items in {:.1} s", started.elapsed().as_secs_f64());
        // Searchable: every item (the search page reads the index).
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let url = format!("{base}/v1/search?q=Khorgos&limit=1");
            let answer: serde_json::Value = client.get(&url).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
            if answer["total"].as_u64().unwrap_or(0) >= items as u64 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let session = sign_in(&base, "desk@bench.kz").await;
        let get = |path: String| {
            let (client, cookie) = (client.clone(), session.cookie.clone());
            let url = format!("{base}{path}");
            async move {
                let response = client.get(&url).header("cookie", cookie).send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap();
                (status, body)
            }
        };
        // A few things to point pages at: an item, page two of the wire, a saved search.
        let (_, wire) = get("/".to_string()).await;
        let wire = String::from_utf8_lossy(&wire).to_string();
        let item = wire.split("data-id=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
        let older = wire
            .split("rel=\"next\"")
            .next()
            .and_then(|head| head.rsplit("href=\"").next())
            .and_then(|href| href.split('"').next())
            .map(|href| href.replace("&#x2f;", "/").replace("&amp;", "&"))
            .unwrap();
        let mut assets = 0;
        for asset in ["/assets/newsroom.css", "/assets/newsroom.js"] {
            assets += get(asset.to_string()).await.1.len();
        }
        let pages: Vec<(&str, String)> = vec![
            ("wire", "/".into()),
            ("wire, filtered (kk, sport, urgency 1-3)", "/?lang=kk&subject=medtop%3A15000000&urgency=1-3".into()),
            ("wire, page 2", older),
            ("wire, one day (today: every item)", format!("/?day={}&tz=0", utc_day(0))),
            ("wire, one day (last year: none)", format!("/?day={}&tz=-300", utc_day(365))),
            ("wire, kill notices", "/?kills=only".into()),
            ("item", format!("/items/{item}")),
            ("search (a word in every item)", "/search?q=Khorgos".into()),
            ("search (a rarer word)", "/search?q=gantry+cranes&lang=en".into()),
            ("search, browse by filters", "/search?q=&lang=ru&subject=medtop%3A15000000".into()),
            ("publish form", "/publish".into()),
            ("correction form", format!("/publish?correct={item}")),
            ("subscriptions", "/subscriptions".into()),
        ];
        println!("\n{requests} requests per page, one at a time; KiB with the stylesheet and script ({:.1} KiB)", assets as f64 / 1024.0);
        println!("| page | p50 ms | p99 ms | max ms | KiB (page + assets) |");
        println!("|---|---|---|---|---|");
        for (name, path) in pages {
            let mut latencies = Vec::with_capacity(requests);
            let mut size = 0;
            for _ in 0..requests {
                let sent = Instant::now();
                let (status, body) = get(path.clone()).await;
                latencies.push(sent.elapsed().as_micros() as u64);
                assert_eq!(status, 200, "{name}: {path}");
                size = body.len();
            }
            latencies.sort_unstable();
            println!(
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} ({:.1}) |",
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                percentile(&latencies, 1.0),
                size as f64 / 1024.0,
                (size + assets) as f64 / 1024.0
            );
        }
    });
}

/// The UTC date `days_ago` days before now, as `YYYY-MM-DD` (Howard Hinnant's civil calendar).
fn utc_day(days_ago: i64) -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let z = seconds.div_euclid(86_400) - days_ago + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{month:02}-{day:02}", yoe + era * 400 + i64::from(month <= 2))
}
