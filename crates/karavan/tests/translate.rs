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
    // The queue counts the jobs of the caller's own items (never another member's, which could be
    // embargoed): a head and a body job for the one language read.
    let (_, _, queue) = get(&client, &format!("{base}/v1/translation/queue"), &xinhua_key).await;
    assert_eq!((queue["queued"].as_u64(), queue["model"].as_str()), (Some(2), Some("hf-nllb-2x2")), "{queue}");
    assert_eq!((&queue["head"]["queued"], &queue["body"]["queued"]), (&json!(1), &json!(1)), "{queue}");
    // Not yet translated: the glossary term is in no searchable text.
    let (_, _, found) = get(&client, &format!("{base}/v1/search?q=Тоқаев"), &kz_key).await;
    assert_eq!(found["total"], 0, "{found}");
    server.kill();

    // After a crash and a restart with workers, the job is done and the translation indexed.
    let server = support::Server::start(data.path(), &[]);
    let base = server.base.clone();
    let queue = wait_for_queue(&client, &base, &xinhua_key, 2).await;
    assert_eq!(queue["failed"], 0, "{queue}");
    // The head part is searched with the server's head beams (greedy by default).
    let mut translator = karavan_lang::translate::Translator::load(&fixture("nllb-2x2")).unwrap();
    translator.options.num_beams = karavan_server::translation::HEAD_BEAMS;
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
    assert_eq!(headers["karavan-translation-status"], "headline=done, body=done");
    // A correction queues two more jobs; the queue drains again.
    let mut corrected = item.clone();
    corrected["bodies"][0]["value"] = json!("<p>双方讨论了贸易。</p><p>公路运输增长。</p>");
    let (status, body) = send(client.post(format!("{base}/v1/items")).bearer_auth(&xinhua_key).json(&corrected)).await;
    assert_eq!((status, body["status"].as_str()), (201, Some("corrected")), "{body}");
    wait_for_queue(&client, &base, &xinhua_key, 4).await;
    // A member who reads nothing else still gets ?lang= on demand.
    let (status, _, on_demand) = get(&client, &format!("{base}/v1/items/{id}?lang=ru"), &other_key).await;
    assert_eq!((status, on_demand["language"].as_str()), (200, Some("ru")), "{on_demand}");
}

/// A stand-in for a LibreTranslate server and an OpenAI-compatible API (their request and answer
/// shapes), recording what it was sent; it "translates" by tagging the text with the target language.
async fn stand_in_endpoint() -> (String, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    use axum::routing::post;
    use serde_json::{Value, json};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let (libre, openai) = (std::sync::Arc::clone(&seen), std::sync::Arc::clone(&seen));
    let app = axum::Router::new()
        .route(
            "/translate",
            post(move |axum::Json(body): axum::Json<Value>| {
                let seen = std::sync::Arc::clone(&libre);
                async move {
                    seen.lock().unwrap().push(body.clone());
                    if body["target"] == "xx" {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            axum::Json(json!({ "error": "xx is not supported" })),
                        );
                    }
                    let text = format!("[{}] {}", body["target"].as_str().unwrap(), body["q"].as_str().unwrap());
                    (axum::http::StatusCode::OK, axum::Json(json!({ "translatedText": text })))
                }
            }),
        )
        .route(
            "/v1/chat/completions",
            post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let seen = std::sync::Arc::clone(&openai);
                async move {
                    let mut record = body.clone();
                    record["authorization"] = json!(headers.get("authorization").map(|v| v.to_str().unwrap()));
                    seen.lock().unwrap().push(record);
                    let text = format!("[llm] {}", body["messages"][1]["content"].as_str().unwrap());
                    axum::Json(json!({ "choices": [{ "message": { "role": "assistant", "content": text } }] }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_backend_translates_behind_the_same_interface() {
    use serde_json::json;
    let (endpoint, seen) = stand_in_endpoint().await;
    let data = tempfile::tempdir().unwrap();
    let (_member, key) = support::member_with_key(data.path(), "Xinhua", "editor");
    let client = reqwest::Client::new();
    let item = json!({
        "uri": "urn:xh:http", "type": "text", "language": "zh",
        "headlines": [{ "value": "托卡耶夫会见代表团" }],
        "bodies": [{ "contentType": "text/html", "value": "<p>双方讨论了<b>贸易</b>。</p>" }],
    });

    // LibreTranslate: no model installed, yet ?lang= works through the endpoint, glossary applied.
    let server = support::Server::start(data.path(), &["--translation-url", &endpoint]);
    let base = server.base.clone();
    let glossary = json!({ "terms": [{ "source": "托卡耶夫", "target": "Тоқаев" }] });
    let (status, _) = send(client.put(format!("{base}/v1/glossaries/zh/kk")).bearer_auth(&key).json(&glossary)).await;
    assert_eq!(status, 200);
    let (status, published) = send(client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item)).await;
    assert_eq!(status, 201, "{published}");
    let id = published["id"].as_str().unwrap().to_string();
    let (status, headers, translated) = get(&client, &format!("{base}/v1/items/{id}?lang=kk"), &key).await;
    assert_eq!(status, 200, "{translated}");
    assert_eq!(translated["headlines"][0]["value"], "[kk] Тоқаев会见代表团");
    assert!(headers["karavan-translation"].to_str().unwrap().contains("libretranslate"));
    // The body comes from the worker (its job made and moved to the front by this read).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let translated = loop {
        let (_, headers, translated) = get(&client, &format!("{base}/v1/items/{id}?lang=kk"), &key).await;
        if headers["karavan-translation-status"] == "headline=done, body=done" {
            break translated;
        }
        assert!(std::time::Instant::now() < deadline, "the body was not translated: {headers:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(translated["headlines"][0]["value"], "[kk] Тоқаев会见代表团");
    assert_eq!(translated["bodies"][0]["value"], "[kk] <p>双方讨论了<b>贸易</b>。</p>");
    {
        let seen = seen.lock().unwrap();
        let body = seen.iter().find(|b| b["format"] == "html").expect("the body was sent as HTML");
        assert_eq!((body["source"].as_str(), body["target"].as_str()), (Some("zh"), Some("kk")));
    }
    // Cached: reading again, or another member's plain rendering of the same text, asks nothing new
    // for what was already translated.
    let asked = seen.lock().unwrap().len();
    get(&client, &format!("{base}/v1/items/{id}?lang=kk"), &key).await;
    assert_eq!(seen.lock().unwrap().len(), asked);
    // The endpoint's refusal is the caller's answer, not a 500.
    let (status, _, body) = get(&client, &format!("{base}/v1/items/{id}?lang=xx"), &key).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("xx is not supported"), "{body}");
    drop(server);

    // OpenAI-compatible: the model named, the key from the environment.
    let output = std::process::Command::new(binary())
        .args(["serve", "--data-dir"])
        .arg(data.path())
        .args(["--translation-url", &format!("{endpoint}/v1"), "--translation-api", "openai"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--translation-model"));
    let server = support::Server::start_with_env(
        data.path(),
        &["--translation-url", &format!("{endpoint}/v1"), "--translation-api", "openai", "--translation-model", "qwen"],
        &[("KARAVAN_TRANSLATION_API_KEY", "secret-key")],
    );
    let (status, _, translated) = get(&client, &format!("{}/v1/items/{id}?lang=ru", server.base), &key).await;
    assert_eq!(status, 200, "{translated}");
    assert_eq!(translated["headlines"][0]["value"], "[llm] 托卡耶夫会见代表团");
    let seen = seen.lock().unwrap();
    let request = seen.iter().find(|b| b["model"] == "qwen").expect("the chat API was asked");
    assert_eq!(request["authorization"], "Bearer secret-key");
    assert!(request["messages"][0]["content"].as_str().unwrap().contains("into the language with tag ru"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_translation_model_is_loaded_in_the_precision_serve_is_given() {
    use serde_json::json;
    let data = tempfile::tempdir().unwrap();
    cli(data.path(), &["models", "import", fixture("nllb-2x2").to_str().unwrap()]);
    let (_member, key) = support::member_with_key(data.path(), "Xinhua", "editor");
    // A precision it does not know is refused before the server starts.
    let output = Command::new(binary())
        .args(["serve", "--data-dir"])
        .arg(data.path())
        .args(["--translation-precision", "int4"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("float32 or int8"), "{output:?}");
    // So is a head part searched with no beam at all.
    let output = Command::new(binary())
        .args(["serve", "--data-dir"])
        .arg(data.path())
        .args(["--translation-head-beams", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--translation-head-beams"), "{output:?}");

    let server =
        support::Server::start(data.path(), &["--translation-precision", "int8", "--translation-head-beams", "2"]);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let (_, _, models) = get(&client, &format!("{base}/v1/models"), &key).await;
    assert_eq!(
        models["translation"],
        json!({ "model": "hf-nllb-2x2", "precision": "int8", "headBeams": 2, "loaded": false })
    );
    let item = json!({
        "uri": "urn:xh:int8", "type": "text", "language": "zh",
        "headlines": [{ "value": "托卡耶夫会见代表团" }],
        "bodies": [{ "contentType": "text/html", "value": "<p>双方讨论了贸易。</p>" }],
    });
    let (status, published) = send(client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item)).await;
    assert_eq!(status, 201, "{published}");
    let id = published["id"].as_str().unwrap();
    // Its renderings say so (and are cached apart from float32's).
    let (status, headers, translated) = get(&client, &format!("{base}/v1/items/{id}?lang=kk"), &key).await;
    assert_eq!(status, 200, "{translated}");
    assert_eq!(headers["karavan-translation"], "machine; model=hf-nllb-2x2+int8");
    let (_, _, models) = get(&client, &format!("{base}/v1/models"), &key).await;
    assert_eq!(models["translation"]["loaded"], true);
    let (_, _, queue) = get(&client, &format!("{base}/v1/translation/queue"), &key).await;
    assert_eq!(queue["precision"], "int8", "{queue}");
}
