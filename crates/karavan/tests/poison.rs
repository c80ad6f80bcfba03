//! A stored item that makes background work fail is set aside, never a crash or a restart loop
//! (issue 17, finding 1): a version whose stored row cannot be read any more is found while the
//! search index catches up at start-up; the server starts all the same, indexes everything else,
//! and records the item with the error for the operator (`karavan set-aside list`, and
//! `GET /v1/set-aside` for the member's admins). Once repaired and marked for retry, the next start
//! indexes it.

mod support;

use support::{Server, cli, member_with_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_item_is_set_aside_and_the_server_still_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (member, editor) = member_with_key(dir.path(), "Poison Test Agency", "editor");
    let admin = cli(dir.path(), &["key", "create", "--member", &member, "--role", "admin"]);
    let client = reqwest::Client::new();
    let publish = |base: String, uri: &'static str, headline: &'static str| {
        let (client, key) = (client.clone(), editor.clone());
        async move {
            let item = serde_json::json!({
                "uri": uri, "type": "text", "language": "en",
                "headlines": [{"value": headline}],
                "bodies": [{"contentType": "text/html", "value": format!("<p>{headline} today.</p>")}]
            });
            let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 201);
            response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }
    };
    let server = Server::start(dir.path(), &["--translation-workers", "0"]);
    publish(server.base.clone(), "urn:p:1", "Harvest record").await;
    let poisoned = publish(server.base.clone(), "urn:p:2", "Pipeline opened").await;
    publish(server.base.clone(), "urn:p:3", "Railway extended").await;
    drop(server);

    // The row goes bad (as after a faulty write or a manual edit), and the index is lost, so the next
    // start must read every row again.
    let database = rusqlite::Connection::open(dir.path().join("karavan.db")).unwrap();
    let changed =
        database.execute("UPDATE versions SET document = '{\"cut off' WHERE item_id = ?1", [&poisoned]).unwrap();
    assert_eq!(changed, 1);
    drop(database);
    std::fs::remove_dir_all(dir.path().join("search")).unwrap();

    let server = Server::start(dir.path(), &["--translation-workers", "0"]);
    let search = |base: String, q: &'static str| {
        let (client, key) = (client.clone(), editor.clone());
        async move {
            let response = client.get(format!("{base}/v1/search?q={q}")).bearer_auth(&key).send().await.unwrap();
            response.json::<serde_json::Value>().await.unwrap()["total"].as_u64().unwrap()
        }
    };
    assert_eq!(search(server.base.clone(), "harvest").await, 1, "items before the poisoned one are indexed");
    assert_eq!(search(server.base.clone(), "railway").await, 1, "items after it too");

    // The operator sees it, with the error; so do the member's admins, and only they.
    let listed = cli(dir.path(), &["set-aside", "list"]);
    let line = listed.lines().find(|l| l.contains(&poisoned)).unwrap_or_else(|| panic!("not listed: {listed}"));
    assert!(line.starts_with("read\t") && line.contains("held") && line.contains("corrupt"), "{line}");
    let response = client.get(format!("{}/v1/set-aside", server.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["setAside"][0]["item"], poisoned.as_str(), "{body}");
    let response = client.get(format!("{}/v1/set-aside", server.base)).bearer_auth(&editor).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // Restarting again does not fail on it either, and does not try it again by itself.
    drop(server);
    let server = Server::start(dir.path(), &["--translation-workers", "0"]);
    assert_eq!(search(server.base.clone(), "railway").await, 1);
    drop(server);

    // Repaired and marked for retry by hand: the next start indexes it and forgets the record.
    let database = rusqlite::Connection::open(dir.path().join("karavan.db")).unwrap();
    database
        .execute(
            "UPDATE versions SET document = ?1 WHERE item_id = ?2",
            [
                serde_json::json!({"uri": "urn:p:2", "type": "text", "language": "en", "headlines": [{"value": "Pipeline opened"}]})
                    .to_string(),
                poisoned.clone(),
            ],
        )
        .unwrap();
    drop(database);
    assert!(cli(dir.path(), &["set-aside", "retry", "--work", "read"]).contains("marked 1"));
    let server = Server::start(dir.path(), &["--translation-workers", "0"]);
    assert_eq!(search(server.base.clone(), "pipeline").await, 1, "indexed on the retry");
    assert!(!cli(dir.path(), &["set-aside", "list"]).contains(&poisoned));
}
