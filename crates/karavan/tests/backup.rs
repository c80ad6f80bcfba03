//! Backups through the real binary (issue 19): `karavan backup` copies the embedded store while a
//! server publishes into it, `karavan restore` puts it into a data directory (refused while a server
//! runs there) whose next server rebuilds its search index from the store; `backup` and `restore` point
//! a PostgreSQL store to its own tools; and the README's PostgreSQL backup (pg_dump, pg_restore) brings
//! back a store that keeps publishing after the restored sequence numbers and commit times.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use karavan_domain::{CountryCode, LanguageTag, MemberName, Role, Timestamp};
use karavan_store::prelude::*;
use karavan_store::{NewMember, NewVersion, PostgresConfig, PostgresStore};
use serde_json::{Value, json};
use support::{Server, binary, cli, member_with_key, run_with_input};

fn story(n: usize) -> Value {
    json!({
        "uri": format!("urn:backup:{n:04}"), "type": "text", "language": "kk",
        "headlines": [{ "value": format!("Қорғас терминалы туралы жаңалық {n}") }],
        "bodies": [{ "contentType": "text/plain", "value": "Қорғас құрғақ портында жаңа терминал жұмысын бастады." }]
    })
}

/// Every uri a keyword search finds, following `next`.
async fn search_uris(client: &reqwest::Client, base: &str, key: &str, query: &str) -> BTreeSet<String> {
    let mut uris = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/search?q={query}&limit=100");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = client.get(&url).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.unwrap();
        for hit in body["hits"].as_array().unwrap() {
            uris.insert(hit["item"]["uri"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return uris,
        }
    }
}

/// Waits until the server says it is ready (the store answers, the engines run, the index has caught up).
async fn wait_ready(client: &reqwest::Client, base: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.get(format!("{base}/readyz")).send().await.unwrap();
        let ready = response.status() == 200;
        let body: Value = response.json().await.unwrap();
        if ready {
            return body;
        }
        assert!(Instant::now() < deadline, "the server never became ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The numbers `karavan backup` and `restore` print: "(B bytes, I items, up to sequence number S)".
fn printed_counts(line: &str) -> (u64, u64, i64) {
    let inside = line.split_once('(').and_then(|(_, rest)| rest.split_once(')')).map(|(inside, _)| inside).unwrap();
    let parts: Vec<&str> = inside.split(", ").collect();
    let first_word = |part: &str| part.split(' ').next().unwrap().to_string();
    let last_word = |part: &str| part.rsplit(' ').next().unwrap().to_string();
    (first_word(parts[0]).parse().unwrap(), first_word(parts[1]).parse().unwrap(), last_word(parts[2]).parse().unwrap())
}

#[test]
fn printed_counts_reads_the_summary_line() {
    assert_eq!(printed_counts("wrote /tmp/b.db (290816 bytes, 12 items, up to sequence number 14)"), (290816, 12, 14));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_publishing_restores_into_a_fresh_directory_and_is_searchable() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(data.path(), "Kazinform", "editor");
    let server = Server::start(data.path(), &[]);
    let client = reqwest::Client::new();

    // A publisher that keeps going until told to stop, recording every publish acknowledged (201).
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, base, key) = (client.clone(), server.base.clone(), key.clone());
        let (acknowledged, stop) = (Arc::clone(&acknowledged), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let item = story(n);
                let response =
                    client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await.unwrap();
                assert_eq!(response.status(), 201);
                acknowledged.lock().unwrap().push(item["uri"].as_str().unwrap().to_string());
                n += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "the publisher does not get through");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The backup runs while the publisher keeps writing.
    let backup = out.path().join("karavan-backup.db");
    let before_backup: Vec<String> = acknowledged.lock().unwrap().clone();
    let written = {
        let (data, backup) = (data.path().to_path_buf(), backup.clone());
        tokio::task::spawn_blocking(move || cli(&data, &["backup", "--to", backup.to_str().unwrap()])).await.unwrap()
    };
    let during_backup = acknowledged.lock().unwrap().len() - before_backup.len();
    eprintln!(
        "{written}; {} publishes acknowledged before it started, {during_backup} while it ran",
        before_backup.len()
    );
    assert!(written.starts_with(&format!("wrote {}", backup.display())), "{written}");
    let (bytes, items, head_seq) = printed_counts(&written);
    assert_eq!(bytes, std::fs::metadata(&backup).unwrap().len());
    assert!(items >= before_backup.len() as u64 && head_seq >= items as i64, "{written}");
    // A second backup to the same file is refused; nothing is left half-written beside it.
    let (ok, _, stderr) = run_with_input(data.path(), &["backup", "--to", backup.to_str().unwrap()], "");
    assert!(!ok && stderr.contains("already exists (give --force to replace it)"), "{stderr}");
    let names: Vec<String> =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["karavan-backup.db"]);

    // Some time of publishing after the backup: these are not in it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let all: Vec<String> = acknowledged.lock().unwrap().clone();
    assert!(all.len() as u64 > items, "items were published after the backup");

    // No restore under a running server.
    let (ok, _, stderr) = run_with_input(data.path(), &["restore", "--from", backup.to_str().unwrap()], "");
    assert!(!ok, "restore ran beside a server");
    assert!(stderr.contains("is in use") && stderr.contains("stop the server before restoring"), "{stderr}");
    assert!(!data.path().join("karavan.db.before-restore").exists());
    let (status, _) = server_exit(server);
    assert!(status.success());

    // Restored into a fresh directory: every publish acknowledged before the backup began is there, and
    // found by search (the new server builds its index from the store).
    let fresh = tempfile::tempdir().unwrap();
    let restored = cli(fresh.path(), &["restore", "--from", backup.to_str().unwrap()]);
    assert!(restored.starts_with("restored "), "{restored}");
    assert_eq!(printed_counts(restored.lines().next().unwrap()), (bytes, items, head_seq));
    let server = Server::start(fresh.path(), &[]);
    let ready = wait_ready(&client, &server.base).await;
    assert_eq!(ready["searchLag"], 0, "{ready}");
    let found = search_uris(&client, &server.base, &key, "Қорғас").await;
    for uri in &before_backup {
        assert!(found.contains(uri), "{uri}, acknowledged before the backup, is not found after the restore");
    }
    assert_eq!(found.len() as u64, items, "the search finds exactly the backup's items");
    assert_eq!(found.iter().cloned().collect::<Vec<_>>(), all[..found.len()], "the backup is one moment's store");
    // The exchange goes on: publishing continues after the restored sequence numbers.
    let response = client.post(format!("{}/v1/items", server.base)).bearer_auth(&key).json(&story(9999)).send().await;
    assert_eq!(response.unwrap().status(), 201);
    drop(server);

    // Restored over the original directory: its database is kept, its indexes (which held the items
    // published after the backup) are rebuilt from the restored store.
    assert!(data.path().join("search").exists());
    let restored = cli(data.path(), &["restore", "--from", backup.to_str().unwrap()]);
    assert!(restored.contains("karavan.db.before-restore"), "{restored}");
    assert!(restored.contains(&format!("removed {}", data.path().join("search").display())), "{restored}");
    assert!(data.path().join("karavan.db.before-restore").exists());
    let server = Server::start(data.path(), &[]);
    wait_ready(&client, &server.base).await;
    let found_again = search_uris(&client, &server.base, &key, "Қорғас").await;
    assert_eq!(found_again, found, "the index holds the restored store, not what the old one had");
}

/// Stops a server with SIGTERM (a clean shutdown).
fn server_exit(mut server: Server) -> (std::process::ExitStatus, Duration) {
    server.terminate(Duration::from_secs(30))
}

#[test]
fn backup_and_restore_point_a_postgresql_store_to_its_own_tools() {
    let data = tempfile::tempdir().unwrap();
    for args in [&["backup", "--to", "x.db"][..], &["restore", "--from", "x.db"][..]] {
        let output = Command::new(binary())
            .args(["--database", "postgres://karavan:secret@127.0.0.1:1/karavan"])
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains("pg_dump") && stderr.contains("\"Backups\" in the README"), "{stderr}");
        assert!(!stderr.contains("secret"), "the password is not shown: {stderr}");
    }
    assert!(!data.path().join("x.db").exists() && !data.path().join("karavan.db").exists());
}

/// A database of its own on the test PostgreSQL server, dropped at the end.
struct Database {
    name: String,
}

impl Database {
    fn fresh(purpose: &str) -> Database {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap();
        let name =
            format!("karavan_backup_test_{purpose}_{}", random.iter().map(|b| format!("{b:02x}")).collect::<String>());
        psql(&format!("CREATE DATABASE {name}"));
        Database { name }
    }

    fn url(&self) -> String {
        let server = postgres_server();
        let (base, _) = server.rsplit_once('/').unwrap();
        format!("{base}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(postgres_server())
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

/// The test PostgreSQL server's maintenance database (as the store suite's).
fn postgres_server() -> String {
    std::env::var("KARAVAN_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn psql(sql: &str) {
    run("psql", &[&postgres_server(), "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]);
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn version(owner: &karavan_domain::MemberId, uri: &str, headline: &str) -> NewVersion {
    NewVersion::headline_only(owner, uri, headline)
}

fn now() -> Timestamp {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Timestamp(i64::try_from(elapsed.as_micros()).unwrap())
}

/// Every current version of the store: (seq, uri, version, committed_at).
fn current_versions(store: &dyn Store) -> Vec<(i64, String, String, Timestamp)> {
    let page = store.current_versions_after(0, 10_000).unwrap();
    page.versions.into_iter().map(|v| (v.seq, v.uri, v.version, v.committed_at)).collect()
}

#[test]
fn a_postgresql_store_comes_back_from_pg_dump_and_keeps_publishing() {
    let source = Database::fresh("source");
    let (member, key, before, history) = {
        let store = PostgresStore::open(PostgresConfig::new(source.url())).unwrap();
        let member = store
            .add_member(NewMember {
                name: MemberName::parse("Kazinform").unwrap(),
                country: CountryCode::parse("KZ").unwrap(),
                languages: vec![LanguageTag::parse("kk").unwrap()],
                contact: None,
            })
            .unwrap();
        let (_, key) = store.create_key(&member.id, Role::Editor, Some("wire".into())).unwrap();
        for n in 0..20 {
            store.publish(version(&member.id, &format!("urn:pg:{n}"), &format!("story {n}"))).unwrap();
        }
        // A correction: the item's history must come back too.
        let corrected = store.publish(version(&member.id, "urn:pg:3", "story 3, corrected")).unwrap();
        let history = store.versions(&member.id, &corrected.stored().item_id, now()).unwrap().unwrap().len();
        (member, key.reveal().to_string(), current_versions(&store), history)
    };
    assert_eq!((before.len(), history), (20, 2));

    // The README's commands: a custom-format dump, restored into an empty database.
    let dump_dir = tempfile::tempdir().unwrap();
    let dump = dump_dir.path().join("karavan.dump");
    run("pg_dump", &["--format=custom", "--file", dump.to_str().unwrap(), &source.url()]);
    let restored = Database::fresh("restored");
    run("pg_restore", &["--dbname", &restored.url(), dump.to_str().unwrap()]);

    let store = PostgresStore::open(PostgresConfig::new(restored.url())).unwrap();
    assert_eq!(current_versions(&store), before, "every item comes back with its sequence number and commit time");
    let members = store.members().unwrap();
    assert_eq!(members.iter().map(|m| &m.id).collect::<Vec<_>>(), [&member.id]);
    assert!(
        store.authenticate(&karavan_domain::ApiKey::parse(&key).unwrap().hash()).unwrap().is_some(),
        "the key works"
    );
    let item =
        store.current_versions_after(0, 100).unwrap().versions.into_iter().find(|v| v.uri == "urn:pg:3").unwrap();
    assert_eq!(store.versions(&member.id, &item.item_id, now()).unwrap().unwrap().len(), 2);

    // Publishing continues after the restored sequence numbers and commit times.
    let (last_seq, last_at) = before.iter().map(|(seq, _, _, at)| (*seq, *at)).max().unwrap();
    let new = store.publish(version(&member.id, "urn:pg:new", "after the restore")).unwrap();
    assert!(new.stored().seq > last_seq, "{} after {last_seq}", new.stored().seq);
    assert!(new.stored().committed_at > last_at);
    let correction = store.publish(version(&member.id, "urn:pg:0", "story 0, corrected after the restore")).unwrap();
    assert_eq!(correction.stored().version, "2");
    assert!(correction.stored().seq > new.stored().seq);
    drop(store);

    // The CLI reads the restored database as any other.
    let data = tempfile::tempdir().unwrap();
    let listed = cli(data.path(), &["--database", &restored.url(), "member", "list"]);
    assert!(listed.starts_with(&format!("{}\tKZ\tkk\tKazinform", member.id)), "{listed}");
}
