//! Reliability of the real binary: a SIGKILL in the middle of a stream of publishes loses no publish
//! that was acknowledged with a 2xx, and concurrent publishers neither lose nor duplicate anything.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, member_with_key, realistic_item};

/// Every item the member can list, following `after=` cursors.
async fn all_uris(client: &reqwest::Client, base: &str, key: &str) -> Vec<String> {
    let mut uris = Vec::new();
    let mut url = format!("{base}/v1/items?limit=500");
    loop {
        let page: Value = client.get(&url).bearer_auth(key).send().await.unwrap().json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            uris.push(item["uri"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => url = format!("{base}/v1/items?limit=500&after={next}"),
            None => return uris,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_publishing_loses_no_acknowledged_item() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Crash Test Agency", "editor");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));

    // Eight publishers stream items until the server dies under them.
    let mut publishers = Vec::new();
    for worker in 0..8 {
        let (client, base, key, acknowledged) = (client.clone(), base.clone(), key.clone(), Arc::clone(&acknowledged));
        publishers.push(tokio::spawn(async move {
            for n in 0.. {
                let uri = format!("urn:crash:{worker}:{n}");
                let sent = client
                    .post(format!("{base}/v1/items"))
                    .bearer_auth(&key)
                    .json(&realistic_item(&uri, n))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => acknowledged.lock().unwrap().push(uri),
                    Ok(response) => {
                        panic!("publish refused before the kill: {}", response.status())
                    }
                    Err(_) => return n,
                }
            }
            unreachable!()
        }));
    }
    // Kill once a good number of publishes were acknowledged, while more are in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < 400 {
        assert!(Instant::now() < deadline, "publishing is too slow to reach 400 acknowledgements");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();

    let restarted = Server::start(dir.path(), &[]);
    let stored = all_uris(&client, &restarted.base, &key).await;
    let stored_set: HashSet<&str> = stored.iter().map(String::as_str).collect();
    assert_eq!(stored.len(), stored_set.len(), "no item is stored twice");
    let lost: Vec<&String> = acknowledged.iter().filter(|uri| !stored_set.contains(uri.as_str())).collect();
    assert!(lost.is_empty(), "{} acknowledged publishes were lost, e.g. {:?}", lost.len(), lost.first());
    eprintln!("acknowledged {} before SIGKILL; {} stored after restart", acknowledged.len(), stored.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_publishers_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Busy Agency", "editor");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let mut publishers = Vec::new();
    for worker in 0..16 {
        let (client, base, key) = (client.clone(), server.base.clone(), key.clone());
        publishers.push(tokio::spawn(async move {
            for n in 0..50 {
                let uri = format!("urn:busy:{worker}:{n}");
                let response = client
                    .post(format!("{base}/v1/items"))
                    .bearer_auth(&key)
                    .json(&realistic_item(&uri, n))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201, "publish {uri}");
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let stored = all_uris(&client, &server.base, &key).await;
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), 16 * 50);
    assert_eq!(unique.len(), 16 * 50);
}
