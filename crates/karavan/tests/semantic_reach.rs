//! Meaning-based search reaches the whole corpus and honours selective filters (issue 17, finding
//! 12), through the real binary with the real embedding model: the dev set's 40 stories in nine
//! language forms (360 items) are published; a Kazakh query paged to the end reaches every item (the
//! graph search alone reached about half of them: a multilingual graph holds clusters its walk
//! barely enters), and a Kazakh query limited to Russian finds the Russian rendering of the same
//! story, however few Russian items the nearest overall would hold. And "more like this" prefers the
//! same story in other languages (issue 17, finding 13).

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, devset, member_with_key, urlencoding};

const LANGUAGES: [&str; 9] = ["en", "zh", "ru", "kk", "ky", "tg", "tk", "uz", "uz-Cyrl"];

async fn get(client: &reqwest::Client, url: &str, key: &str) -> Value {
    let response = client.get(url).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_search_reaches_every_item_and_honours_selective_filters() {
    let models = karavan_lang::testing::models();
    let models_dir = models.root().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Multilingual Wire", "editor");
    // First without a similarity floor: every item must be reachable.
    let server = Server::start(
        dir.path(),
        &["--models-dir", &models_dir, "--translation-workers", "0", "--semantic-floor", "0"],
    );
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let stories = devset();
    assert_eq!(stories.len(), 40);
    let mut ids = HashSet::new();
    for (row, story) in stories.iter().enumerate() {
        for (language, text) in LANGUAGES.iter().zip(story) {
            let item = json!({
                "uri": format!("urn:dev:{row}:{language}"), "type": "text", "language": language,
                "headlines": [{"value": text}],
            });
            let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 201);
            ids.insert(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
        }
    }
    let query = urlencoding(&stories[1][3]);
    // Wait until every item is embedded (the meaning-based modes then see all 360).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let body = get(&client, &format!("{base}/v1/search?mode=semantic&q={query}&limit=1&cursor=o359"), &key).await;
        if body["hits"].as_array().is_some_and(|hits| !hits.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "items were not embedded in time");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Paged to the end, a Kazakh query reaches every item, each once.
    let mut seen = HashSet::new();
    for offset in [0, 100, 200, 300] {
        let body =
            get(&client, &format!("{base}/v1/search?mode=semantic&q={query}&limit=100&cursor=o{offset}"), &key).await;
        for hit in body["hits"].as_array().unwrap() {
            assert!(seen.insert(hit["id"].as_str().unwrap().to_string()), "a hit came twice");
        }
    }
    assert_eq!(seen.len(), ids.len(), "the pages reached {} of {} items", seen.len(), ids.len());

    // A Kazakh query limited to Russian finds Russian items, the same story first for most stories.
    let mut right = 0;
    for (row, story) in stories.iter().enumerate().take(10) {
        let url = format!("{base}/v1/search?mode=semantic&lang=ru&limit=5&q={}", urlencoding(&story[3]));
        let body = get(&client, &url, &key).await;
        let hits = body["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 5, "row {row}: {body}");
        assert!(hits.iter().all(|h| h["item"]["language"] == "ru"), "row {row}: {body}");
        right += usize::from(hits[0]["item"]["uri"] == format!("urn:dev:{row}:ru"));
    }
    assert!(right >= 8, "the Russian rendering came first for {right} of 10 stories");

    // More like a Chinese story: the same story in other languages first, not other Chinese stories
    // (which the model scores close to any Chinese text). Without the same-language penalty this
    // held for 3 of the dev set's 40 Chinese items.
    let listed = get(&client, &format!("{base}/v1/items?lang=zh&limit=100"), &key).await;
    let id_of = |uri: String| {
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["uri"] == uri)
            .and_then(|item| item["altIds"].as_array()?.iter().find(|a| a["role"] == "karavan")?["value"].as_str())
            .map(str::to_string)
            .unwrap()
    };
    let mut translations_first = 0;
    for row in 0..10 {
        let id = id_of(format!("urn:dev:{row}:zh"));
        let similar = get(&client, &format!("{base}/v1/items/{id}/similar?limit=3"), &key).await;
        let first = &similar["hits"][0]["item"];
        let same_story = first["uri"].as_str().unwrap().starts_with(&format!("urn:dev:{row}:"));
        translations_first += usize::from(same_story && first["language"] != "zh");
    }
    assert!(translations_first >= 8, "the same story in another language came first for {translations_first} of 10");

    // With the default similarity floor (0.78), meaning-based search no longer returns every item
    // for any query: off-topic queries in every language find little or nothing, queries about a
    // story still find it, and a sentence still finds its translations.
    // The vector index is saved within 10 s of a change; let it be, so the restart need not embed again.
    let saved_by = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("vectors/items.kvix").exists() {
        assert!(Instant::now() < saved_by, "the vector index was never saved");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    server.kill();
    let server = Server::start(dir.path(), &["--models-dir", &models_dir, "--translation-workers", "0"]);
    let base = server.base.clone();
    let deadline = Instant::now() + Duration::from_secs(300);
    let row_ids = |hits: &Value| -> Vec<(usize, String)> {
        hits.as_array()
            .unwrap()
            .iter()
            .filter_map(|hit| {
                let uri = hit["item"]["uri"].as_str()?;
                let mut parts = uri.strip_prefix("urn:dev:")?.split(':');
                Some((parts.next()?.parse().ok()?, parts.next()?.to_string()))
            })
            .collect()
    };
    loop {
        let body = get(&client, &format!("{base}/v1/search?mode=semantic&q={query}&limit=100"), &key).await;
        if row_ids(&body["hits"]).iter().filter(|(row, _)| *row == 1).count() >= 8 {
            break;
        }
        assert!(Instant::now() < deadline, "items were not embedded again in time: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let typed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/devset/queries.tsv"),
    )
    .unwrap();
    let (mut off_topic, mut off_topic_hits, mut found_nothing, mut about, mut found_story) = (0, 0, 0, 0, 0);
    for line in typed.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let url = format!("{base}/v1/search?mode=semantic&limit=100&q={}", urlencoding(fields[2]));
        let body = get(&client, &url, &key).await;
        let found = row_ids(&body["hits"]);
        if fields[1] == "-" {
            off_topic += 1;
            off_topic_hits += body["total"].as_u64().unwrap();
            found_nothing += usize::from(found.is_empty());
        } else {
            about += 1;
            let relevant: Vec<usize> = fields[1].split(',').map(|id| id.parse::<usize>().unwrap() - 1).collect();
            found_story += usize::from(found.iter().any(|(row, _)| relevant.contains(row)));
        }
    }
    eprintln!(
        "floor: {off_topic} off-topic queries found {:.1} items each ({found_nothing} nothing); {found_story} of \
         {about} queries about a story found it",
        off_topic_hits as f64 / off_topic as f64
    );
    // Measured on the same set (BENCHMARKS.md): 40.7 items each, 5 with nothing, 36 of 36.
    assert!(off_topic_hits as f64 / (off_topic as f64) < 60.0, "off-topic queries found {off_topic_hits} items");
    assert!(found_nothing >= 3, "only {found_nothing} off-topic queries found nothing");
    assert_eq!(found_story, about, "a query about a story must still find it");
    let mut translations = 0;
    for (row, story) in stories.iter().enumerate().take(10) {
        let body =
            get(&client, &format!("{base}/v1/search?mode=semantic&limit=100&q={}", urlencoding(&story[0])), &key).await;
        translations += row_ids(&body["hits"]).iter().filter(|(r, language)| *r == row && language != "en").count();
    }
    assert!(translations >= 78, "{translations} of the 80 translations of 10 English sentences were found");
}
