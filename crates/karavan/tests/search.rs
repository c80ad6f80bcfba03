//! Search through the real binary: a publish becomes searchable by itself (the committer), a deleted
//! index is rebuilt from the store at start-up, and `karavan reindex` rebuilds it on demand.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, cli, member_with_key, realistic_item};

async fn search_total(client: &reqwest::Client, base: &str, key: &str, query: &str) -> u64 {
    let body: Value =
        client.get(format!("{base}/v1/search?q={query}")).bearer_auth(key).send().await.unwrap().json().await.unwrap();
    body["total"].as_u64().unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_the_store_and_rebuilds_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Search Agency", "editor");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    for n in 0..5 {
        let response = client
            .post(format!("{}/v1/items", server.base))
            .bearer_auth(&key)
            .json(&realistic_item(&format!("urn:search:{n}"), n))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // Searchable without anyone asking for a commit: poll with a deadline.
    let published = Instant::now();
    let deadline = published + Duration::from_secs(10);
    while search_total(&client, &server.base, &key, "Khorgos").await < 5 {
        assert!(Instant::now() < deadline, "published items did not become searchable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("searchable {} ms after the last publish", published.elapsed().as_millis());

    // Lose the index entirely: the next start rebuilds it from the store.
    server.kill();
    std::fs::remove_dir_all(dir.path().join("search")).unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(search_total(&client, &server.base, &key, "Khorgos").await, 5);
    drop(server);

    assert_eq!(cli(dir.path(), &["reindex"]), "indexed 5 items");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(search_total(&client, &server.base, &key, "Tashkent").await, 5);
}

/// Every hit of a keyword search one page at a time, following `next`: (id, score, versionCreated).
async fn page_through(client: &reqwest::Client, base: &str, key: &str, query: &str) -> Vec<(String, f64, String)> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/search?{query}&limit=100");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = client.get(&url).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.unwrap();
        for hit in body["hits"].as_array().unwrap() {
            seen.push((
                hit["id"].as_str().unwrap().to_string(),
                hit["score"].as_f64().unwrap(),
                hit["item"]["versionCreated"].as_str().unwrap_or_default().to_string(),
            ));
        }
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return seen,
        }
    }
}

/// Issue 17, finding 14: paging used to stop at the 10,000th hit (an offset cursor). A keyword
/// search's cursor is now the last hit's place in the ranking, so following `next` reaches every
/// hit, by relevance and by date, each exactly once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_reaches_every_hit_beyond_ten_thousand() {
    const ITEMS: usize = 10_240;
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Deep Agency", "editor");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let started = Instant::now();
    // Short items; the word is repeated 1–4 times so that scores differ, and many tie (the sequence
    // number breaks ties).
    let publishers: Vec<_> = (0..8)
        .map(|worker| {
            let (client, base, key) = (client.clone(), server.base.clone(), key.clone());
            tokio::spawn(async move {
                for n in (worker..ITEMS).step_by(8) {
                    let words = vec!["Khorgos"; 1 + n % 4].join(" ");
                    let item = serde_json::json!({
                        "uri": format!("urn:deep:{n}"),
                        "type": "text",
                        "language": "en",
                        "headlines": [{ "value": format!("Dry port report {n}") }],
                        "bodies": [{ "contentType": "text/plain", "value": format!("{words} container yard, report {n}.") }],
                    });
                    let response =
                        client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await.unwrap();
                    assert_eq!(response.status(), 201);
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while search_total(&client, &server.base, &key, "Khorgos").await < ITEMS as u64 {
        assert!(Instant::now() < deadline, "the published items did not all become searchable");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("published and indexed {ITEMS} items in {:.1} s", started.elapsed().as_secs_f64());

    let by_relevance = page_through(&client, &server.base, &key, "q=Khorgos").await;
    let ids: std::collections::HashSet<&str> = by_relevance.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(by_relevance.len(), ITEMS, "every hit once");
    assert_eq!(ids.len(), ITEMS, "no hit twice");
    assert!(by_relevance.windows(2).all(|w| w[0].1 >= w[1].1), "scores never rise from one hit to the next");

    let by_date = page_through(&client, &server.base, &key, "q=Khorgos&sort=date").await;
    let ids: std::collections::HashSet<&str> = by_date.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!((by_date.len(), ids.len()), (ITEMS, ITEMS));
    // RFC 3339 times of one offset (Z) with 0–6 fraction digits: comparable once the fraction is padded.
    let sortable = |at: &str| {
        let (seconds, fraction) = at.trim_end_matches('Z').split_once('.').unwrap_or((at.trim_end_matches('Z'), ""));
        format!("{seconds}.{fraction:0<6}")
    };
    let out_of_order = by_date.windows(2).find(|w| sortable(&w[0].2) < sortable(&w[1].2));
    assert!(out_of_order.is_none(), "newest first throughout: {out_of_order:?}");

    // Cursors are checked: an offset past the limit, a date cursor on a relevance search, and a
    // keyword cursor in semantic mode are refused, naming the cursor.
    let first: Value = client
        .get(format!("{}/v1/search?q=Khorgos&sort=date&limit=5", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let date_cursor = first["next"].as_str().unwrap().to_string();
    for query in [
        "q=Khorgos&cursor=o10001".to_string(),
        format!("q=Khorgos&cursor={date_cursor}"),
        format!("q=Khorgos&sort=date&cursor=r{date_cursor}"),
        "q=Khorgos&cursor=r3f800000.x".to_string(),
        "q=Khorgos&mode=semantic&cursor=r3f800000.5".to_string(),
    ] {
        let response = client.get(format!("{}/v1/search?{query}", server.base)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("cursor"), "{query}: {body}");
    }
}
