//! `karavan import` and NewsML-G2 through the real binary: a bulk import with a report line per
//! document, the imported items read back over HTTP as NewsML-G2 that IPTC's schema accepts, and a
//! subscription in the newsml format receiving signed NewsML-G2 webhooks.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::receiver::Receiver;
use support::{Server, binary, cli, member_with_key};

fn shared() -> PathBuf {
    match std::env::var_os("KARAVAN_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn g2_listing(name: &str) -> PathBuf {
    shared().join("conformance/newsml-g2/examples").join(name)
}

/// Runs `karavan import`; returns (exit code, stdout lines).
fn import(data_dir: &Path, member: &str, paths: &[&Path]) -> (i32, Vec<String>) {
    let output = Command::new(binary())
        .args(["import", "--data-dir"])
        .arg(data_dir)
        .args(["--member", member])
        .args(paths)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let lines = String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect();
    (output.status.code().unwrap_or(-1), lines)
}

fn xmllint_validates(xml: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let schema = shared().join("conformance/newsml-g2/specification/NewsML-G2_2.35-spec-All-Power.xsd");
    let output = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema)
        .arg(file.path())
        .output()
        .expect("xmllint is missing: install Debian's libxml2-utils (scripts/test-setup does)");
    if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
}

#[tokio::test]
async fn bulk_import_reports_each_document_and_items_read_back_as_newsml() {
    let dir = tempfile::tempdir().unwrap();
    let (member, key) = member_with_key(dir.path(), "Kabar", "reader");
    let inbox = tempfile::tempdir().unwrap();
    let nested = inbox.path().join("wire/2026");
    std::fs::create_dir_all(&nested).unwrap();
    for name in ["LISTING_2_NewsML-G2_Text_Document.xml", "LISTING_6_Simple_NewsML-G2_Package.xml"] {
        std::fs::copy(g2_listing(name), nested.join(name)).unwrap();
    }
    std::fs::write(
        inbox.path().join("a-ninjs.json"),
        json!({ "uri": "urn:kabar:1", "headlines": [{ "value": "Бишкек" }] }).to_string(),
    )
    .unwrap();
    std::fs::write(
        inbox.path().join("b-feed.rss"),
        r#"<rss version="2.0"><channel><title>Partner</title><language>ky</language>
        <item><title>Жаңылык</title><guid>urn:partner:1</guid><description>&lt;p&gt;Текст&lt;/p&gt;</description></item>
        <item><title>Экинчи</title><guid>urn:partner:2</guid><description>Дагы</description></item></channel></rss>"#,
    )
    .unwrap();
    std::fs::write(inbox.path().join("c-bomb.xml"), r#"<!DOCTYPE x [<!ENTITY a "a">]><newsItem>&a;</newsItem>"#)
        .unwrap();
    std::fs::write(inbox.path().join("d-notes.txt"), "shopping list").unwrap();
    std::fs::write(inbox.path().join(".hidden.json"), "{}").unwrap();
    let skeleton = g2_listing("LISTING_24_News_Message_conveying_a_complete_News_Package.xml");

    let (code, lines) = import(dir.path(), &member, &[inbox.path(), &skeleton]);
    assert_eq!(code, 1, "some documents were refused: {lines:#?}");
    assert_eq!(lines.len(), 7, "{lines:#?}");
    let line =
        |needle: &str| lines.iter().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}: {lines:#?}"));
    assert!(line("a-ninjs.json").starts_with("accepted "), "{lines:#?}");
    let feed = line("b-feed.rss");
    assert!(feed.starts_with("accepted ") && feed.contains("(2 new,"), "{feed}");
    assert!(line("c-bomb.xml").starts_with("refused ") && line("c-bomb.xml").contains("DOCTYPE"));
    assert!(line("d-notes.txt").starts_with("refused ") && line("d-notes.txt").contains("not a format"));
    assert!(line("LISTING_24").starts_with("refused ") && line("LISTING_24").contains("guid"));
    let text_id = line("LISTING_2_").split_whitespace().nth(2).unwrap().to_string();
    let package_id = line("LISTING_6_").split_whitespace().nth(2).unwrap().to_string();
    assert!(text_id.starts_with("itm_") && package_id.starts_with("itm_"));

    // Importing the same files again changes nothing.
    let (code, again) = import(dir.path(), &member, &[&nested]);
    assert_eq!(code, 0);
    assert!(again.iter().all(|l| l.contains("(0 new, 0 corrected, 1 unchanged)")), "{again:#?}");
    // A member that does not exist is refused before anything is read.
    let (code, _) = import(dir.path(), "mbr_01M7YZ4TAEHYG7WS09RPSC9VX4", &[&nested]);
    assert_eq!(code, 1);

    let server = Server::start(dir.path(), &[]);
    // While the server runs, the import refuses to share its data directory.
    let (code, _) = import(dir.path(), &member, &[&nested]);
    assert_ne!(code, 0);
    let client = reqwest::Client::new();
    for (id, root) in [(&text_id, "<newsItem"), (&package_id, "<packageItem")] {
        let response =
            client.get(format!("{}/v1/items/{id}?format=newsml", server.base)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let xml = response.text().await.unwrap();
        assert!(xml.contains(root), "{xml}");
        xmllint_validates(&xml).unwrap_or_else(|e| panic!("{id}: {e}\n{xml}"));
    }
    // The imported items are searchable.
    let response = client.get(format!("{}/v1/search?q=Жаңылык", server.base)).bearer_auth(&key).send().await.unwrap();
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(1), "{found}");
}

#[tokio::test]
async fn newsml_subscriptions_receive_signed_newsml_g2() {
    const SECRET: &str = "a webhook secret for newsml";
    let dir = tempfile::tempdir().unwrap();
    let (publisher, publisher_key) = member_with_key(dir.path(), "Publishing Agency", "editor");
    let (subscriber, subscriber_key) = member_with_key(dir.path(), "Subscribing Agency", "editor");
    cli(dir.path(), &["agreement", "add", "--grantor", &publisher, "--grantee", &subscriber]);
    let receiver = Receiver::start(SECRET).await;
    let server = Server::start(dir.path(), &["--allow-private-webhooks"]);
    let client = reqwest::Client::new();
    let spec = json!({
        "name": "economy in NewsML-G2",
        "query": { "q": "bubble" },
        "format": "newsml",
        "webhook": { "url": format!("{}/ok", receiver.base), "secret": SECRET },
    });
    let response = client
        .post(format!("{}/v1/subscriptions", server.base))
        .bearer_auth(&subscriber_key)
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let bad = json!({ "name": "x", "query": {}, "format": "nitf" });
    let response = client
        .post(format!("{}/v1/subscriptions", server.base))
        .bearer_auth(&subscriber_key)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let xml = std::fs::read(g2_listing("LISTING_1_A_NewsML-G2_News_Item.xml")).unwrap();
    // The listing is embargoed until 2018: long past, so it is delivered at once.
    let response = client
        .post(format!("{}/v1/items", server.base))
        .bearer_auth(&publisher_key)
        .header("content-type", "application/vnd.iptc.g2.newsitem+xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.received().is_empty() {
        assert!(Instant::now() < deadline, "no NewsML-G2 delivery arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivery = &receiver.received()[0];
    assert!(delivery.signature_ok, "the signature covers the XML body");
    assert_eq!(delivery.event, "publish");
    assert!(delivery.content_type.starts_with("application/vnd.iptc.g2.newsitem+xml"), "{}", delivery.content_type);
    assert!(delivery.raw.contains("urn:newsml:acmenews.com:20161018:US-FINANCE-FED"), "{}", delivery.raw);
    assert!(delivery.raw.contains("<embargoed>2018-10-23T12:00:00Z</embargoed>"), "{}", delivery.raw);
    xmllint_validates(&delivery.raw).unwrap();
}
