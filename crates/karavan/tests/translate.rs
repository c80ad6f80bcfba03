//! Machine translation through the real binary: `karavan models import` installs an NLLB-200
//! checkpoint (here the random-weight fixture with NLLB's exact architecture, so the words are not
//! a translation) and `karavan translate` translates standard input with it, as the library does.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{binary, cli};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/tests/fixtures/m2m100").join(name)
}

/// `karavan translate ARGS` with `input` on standard input: (exit success, stdout, stderr).
fn translate(data_dir: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let args: Vec<&str> = std::iter::once("translate").chain(args.iter().copied()).collect();
    support::run_with_input(data_dir, &args, input)
}

#[test]
fn models_import_then_translate_from_stdin() {
    let data = tempfile::tempdir().unwrap();
    // Before any import: a clear error naming the way to install one.
    let (ok, _, stderr) = translate(data.path(), &["--from", "kk", "--to", "zh"], "Сәлем");
    assert!(!ok && stderr.contains("karavan models import"), "{stderr}");

    // A directory that is not a checkpoint is refused and nothing is recorded.
    let broken = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("nllb-2x2").join("config.json"), broken.path().join("config.json")).unwrap();
    let output = Command::new(binary())
        .args(["models", "import", "--data-dir"])
        .arg(data.path())
        .arg(broken.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(!cli(data.path(), &["models", "list"]).contains("translation"));

    let imported = cli(data.path(), &["models", "import", fixture("nllb-2x2").to_str().unwrap()]);
    assert!(imported.contains("as the translation model"), "{imported}");
    assert!(cli(data.path(), &["models", "list"]).starts_with("translation\thf-nllb-2x2"));

    let input = "Тоқаев Астанада делегацияны қабылдады. Сауда өсті.\n\nКелесі кездесу Ташкентте өтеді.\n";
    let (ok, stdout, stderr) = translate(data.path(), &["--from", "kk", "--to", "zh", "--beams", "2"], input);
    assert!(ok, "{stderr}");
    let mut translator = karavan_lang::translate::Translator::load(&fixture("nllb-2x2")).unwrap();
    translator.options.num_beams = 2;
    let expected = translator.translate(&[input], "kk", "zh", &[]).unwrap().remove(0);
    assert_eq!(stdout, expected);
    assert_eq!(stdout.matches('\n').count(), 3, "line breaks are kept: {stdout:?}");

    let (ok, stdout, _) =
        translate(data.path(), &["--from", "en", "--to", "ru", "--html"], "<p>Trade <b>grew</b>.</p>");
    assert!(
        ok && stdout.starts_with("<p>") && stdout.contains("<b>") && stdout.trim_end().ends_with("</p>"),
        "{stdout}"
    );

    let (ok, _, stderr) = translate(data.path(), &["--from", "kk", "--to", "tlh"], "x");
    assert!(!ok && stderr.contains("does not translate \"tlh\""), "{stderr}");
}

/// `GET url` with a key: (status, headers, JSON body).
async fn get(client: &reqwest::Client, url: &str, key: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let response = client.get(url).bearer_auth(key).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

async fn send(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// Polls the queue until nothing is queued or running and `done` jobs are finished.
async fn wait_for_queue(client: &reqwest::Client, base: &str, key: &str, done: u64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, _, queue) = get(client, &format!("{base}/v1/translation/queue"), key).await;
        if queue["done"].as_u64() >= Some(done) && queue["queued"] == 0 && queue["running"] == 0 {
            return queue;
        }
        assert!(std::time::Instant::now() < deadline, "the queue did not drain: {queue}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_items_are_translated_into_readers_languages_through_a_restart() {
    use serde_json::json;
    let data = tempfile::tempdir().unwrap();
    cli(data.path(), &["models", "import", fixture("nllb-2x2").to_str().unwrap()]);
    let (xinhua, xinhua_key) = support::member_with_key(data.path(), "Xinhua", "editor");
    let (_kazinform, kz_key) = support::member_with_key(data.path(), "Kazinform", "editor");
    let (_other, other_key) = support::member_with_key(data.path(), "Other", "editor");
    cli(data.path(), &["agreement", "add", "--grantor", &xinhua, "--grantee", "*"]);
    let client = reqwest::Client::new();

    // Workers off: jobs wait in the queue.
    let server = support::Server::start(data.path(), &["--translation-workers", "0"]);
    let base = server.base.clone();
    let (status, body) = send(
        client.put(format!("{base}/v1/me/read-languages")).bearer_auth(&kz_key).json(&json!({ "languages": ["kk"] })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let glossary = json!({ "terms": [{ "source": "托卡耶夫", "target": "Тоқаев" }] });
    let (status, body) =
        send(client.put(format!("{base}/v1/glossaries/zh/kk")).bearer_auth(&kz_key).json(&glossary)).await;
    assert_eq!(status, 200, "{body}");
    let headline = "托卡耶夫会见代表团";
    let item = json!({
        "uri": "urn:xh:visit", "type": "text", "language": "zh",
        "headlines": [{ "value": headline }],
        "bodies": [{ "contentType": "text/html", "value": "<p>双方讨论了贸易。</p><p>铁路运输增长。</p>" }],
    });
    let (status, published) = send(client.post(format!("{base}/v1/items")).bearer_auth(&xinhua_key).json(&item)).await;
    assert_eq!(status, 201, "{published}");
    let id = published["id"].as_str().unwrap().to_string();
    let (_, _, queue) = get(&client, &format!("{base}/v1/translation/queue"), &kz_key).await;
    assert_eq!((queue["queued"].as_u64(), queue["model"].as_str()), (Some(1), Some("hf-nllb-2x2")), "{queue}");
    // Not yet translated: the glossary term is in no searchable text.
    let (_, _, found) = get(&client, &format!("{base}/v1/search?q=Тоқаев"), &kz_key).await;
    assert_eq!(found["total"], 0, "{found}");
    server.kill();

    // After a crash and a restart with workers, the job is done and the translation indexed.
    let server = support::Server::start(data.path(), &[]);
    let base = server.base.clone();
    let queue = wait_for_queue(&client, &base, &kz_key, 1).await;
    assert_eq!(queue["failed"], 0, "{queue}");
    let mut translator = karavan_lang::translate::Translator::load(&fixture("nllb-2x2")).unwrap();
    translator.options.num_beams = 4;
    let terms = [karavan_lang::translate::Term { source: "托卡耶夫".into(), target: "Тоқаев".into() }];
    let expected = translator.translate(&[headline], "zh", "kk", &terms).unwrap().remove(0);
    let (status, headers, translated) = get(&client, &format!("{base}/v1/items/{id}?lang=kk"), &kz_key).await;
    assert_eq!(status, 200, "{translated}");
    assert_eq!(translated["headlines"][0]["value"], expected.as_str());
    assert_eq!(headers["karavan-translation"], "machine; model=hf-nllb-2x2");
    let href = translated["associations"][0]["renditions"][0]["href"].as_str().unwrap();
    assert_eq!(href, format!("{base}/v1/items/{id}"), "the original is linked");
    // Search finds the item through its translation (committed within a second or so).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, _, found) = get(&client, &format!("{base}/v1/search?q=Тоқаев"), &kz_key).await;
        if found["total"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the translation was not searchable: {found}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A correction queues one more job; the queue drains again.
    let mut corrected = item.clone();
    corrected["bodies"][0]["value"] = json!("<p>双方讨论了贸易。</p><p>公路运输增长。</p>");
    let (status, body) = send(client.post(format!("{base}/v1/items")).bearer_auth(&xinhua_key).json(&corrected)).await;
    assert_eq!((status, body["status"].as_str()), (201, Some("corrected")), "{body}");
    wait_for_queue(&client, &base, &kz_key, 2).await;
    // A member who reads nothing else still gets ?lang= on demand.
    let (status, _, on_demand) = get(&client, &format!("{base}/v1/items/{id}?lang=ru"), &other_key).await;
    assert_eq!((status, on_demand["language"].as_str()), (200, Some("ru")), "{on_demand}");
}
