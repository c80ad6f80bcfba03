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
