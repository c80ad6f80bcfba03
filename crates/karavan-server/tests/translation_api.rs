//! Machine translation over the API (in process): read languages, glossaries and their checks,
//! `GET /v1/items/{id}?lang=` with the random NLLB fixture checkpoint (so the words are not a
//! translation, but they are exactly what the model makes): the head made at once, the body by the
//! worker's step with its status said meanwhile, jobs by part (heads first, a reader's body to the
//! front, urgency, age), the item page and its live update, the ninjs rendering of a translation,
//! visibility, and `model_not_installed` without a model. The workers and the queue through the
//! real binary are in `crates/karavan/tests/translate.rs`.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, assert_ninjs31, ninjs31};
use karavan_lang::translate::{Term, Translator};
use karavan_server::ServerConfig;
use karavan_server::translation::{TranslationConfig, translate_step};
use karavan_store::ClaimLimits;
use serde_json::{Value, json};

/// The fixture translator as the server's workers use it for the head part (`HEAD_BEAMS` beams).
fn heads() -> Translator {
    let mut translator = Translator::load(fixture()).unwrap();
    translator.options.num_beams = karavan_server::translation::HEAD_BEAMS;
    translator
}

fn fixture() -> &'static Path {
    Box::leak(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/tests/fixtures/m2m100/nllb-2x2").into_boxed_path(),
    )
}

/// A test app whose model directory holds the fixture checkpoint, imported as an operator would.
fn app_with_model() -> (tempfile::TempDir, TestApp) {
    app_with(TranslationConfig::default())
}

fn app_with(translation: TranslationConfig) -> (tempfile::TempDir, TestApp) {
    let models = tempfile::tempdir().unwrap();
    karavan_lang::ModelDir::new(models.path()).import(fixture()).unwrap();
    let app = TestApp::with_config(ServerConfig {
        models_dir: Some(models.path().to_path_buf()),
        translation,
        ..ServerConfig::default()
    });
    (models, app)
}

/// One round of a translation worker, as the engine runs it: how many jobs it did.
fn step(app: &TestApp) -> usize {
    translate_step(&app.state, "translator").expect("a model is installed").unwrap()
}

fn story(uri: &str, language: &str, headline: &str, body: &str) -> Value {
    let mut story = common::story(uri, language, headline, body);
    story["bodies"][0]["charCount"] = json!(10);
    story
}

#[tokio::test]
async fn read_languages_and_glossaries_are_checked_and_kept_per_member() {
    let app = TestApp::new();
    let a = app.member("Kazinform");
    let b = app.member("Xinhua");
    let (status, body) = app.get(&a.reader, "/v1/me/read-languages").await;
    assert_eq!((status, &body["languages"]), (StatusCode::OK, &json!([])));
    assert_eq!(body["model"], Value::Null, "no model installed");
    // Readers may not change them; bad tags and bad bodies are refused with what is wrong.
    let (status, _) = app.put(&a.reader, "/v1/me/read-languages", &json!({ "languages": ["ru"] })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, needle) in [
        (json!({ "languages": ["ru", "not a tag"] }), "languages[1]"),
        (json!({ "languages": "ru" }), "languages: must be an array"),
        (json!({ "languages": [7] }), "languages[0]: must be a string"),
        (json!({ "langs": ["ru"] }), "langs: unknown field"),
        (json!([]), "expected a JSON object"),
    ] {
        let (status, answer) = app.put(&a.editor, "/v1/me/read-languages", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(needle), "{answer}");
    }
    let (status, body) =
        app.put(&a.editor, "/v1/me/read-languages", &json!({ "languages": ["zh-hans", "RU", "ru"] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["languages"], json!(["ru", "zh-Hans"]), "normalised, deduplicated");
    assert_eq!(app.get(&b.reader, "/v1/me/read-languages").await.1["languages"], json!([]));

    // Glossaries: one per pair, replaced whole, per member.
    let terms = json!({ "terms": [
        { "source": "托卡耶夫", "target": "Тоқаев" },
        { "source": "上海合作组织", "target": "Шанхай ынтымақтастық ұйымы" },
    ] });
    let (status, body) = app.put(&a.editor, "/v1/glossaries/zh/kk", &terms).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["from"].as_str(), body["to"].as_str()), (Some("zh"), Some("kk")));
    assert_eq!(body["terms"][0], json!({ "source": "托卡耶夫", "target": "Тоқаев" }));
    let (status, body) = app.get(&a.reader, "/v1/glossaries/zh/kk").await;
    assert_eq!((status, body["terms"].as_array().unwrap().len()), (StatusCode::OK, 2));
    assert_eq!(app.get(&b.reader, "/v1/glossaries/zh/kk").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&a.reader, "/v1/glossaries").await.1["glossaries"].as_array().unwrap().len(), 1);
    assert_eq!(app.put(&a.reader, "/v1/glossaries/zh/kk", &terms).await.0, StatusCode::FORBIDDEN);
    for (path, body, needle) in [
        ("/v1/glossaries/zh/kk", json!({ "terms": [] }), "at least one term"),
        ("/v1/glossaries/zh/kk", json!({ "terms": [{ "source": "", "target": "x" }] }), "terms[0].source"),
        ("/v1/glossaries/zh/kk", json!({ "terms": [{ "source": "a" }] }), "terms[0].target: required"),
        ("/v1/glossaries/zh/kk", json!({ "terms": [{ "source": "a", "target": "b", "note": 1 }] }), "terms[0].note"),
        (
            "/v1/glossaries/zh/kk",
            json!({ "terms": [{ "source": "A", "target": "b" }, { "source": "a", "target": "c" }] }),
            "listed twice",
        ),
        ("/v1/glossaries/zh/kk", json!({ "terms": [{ "source": "a\u{0}", "target": "b" }] }), "control characters"),
        ("/v1/glossaries/zh/zh-CN", json!({ "terms": [{ "source": "a", "target": "b" }] }), "are one"),
        ("/v1/glossaries/zh/k", json!({ "terms": [{ "source": "a", "target": "b" }] }), "to:"),
    ] {
        let (status, answer) = app.put(&a.editor, path, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(needle), "{needle}: {answer}");
    }
    // Nothing half-written: the glossary is as it was.
    assert_eq!(app.get(&a.reader, "/v1/glossaries/zh/kk").await.1["terms"].as_array().unwrap().len(), 2);
    let (status, _) = app.delete(&a.editor, "/v1/glossaries/zh/kk").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&a.editor, "/v1/glossaries/zh/kk").await.0, StatusCode::NOT_FOUND);
    // Unauthenticated: 401.
    let (status, _) = app.send(Request::get("/v1/glossaries").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get(&a.reader, "/v1/translation/queue").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["queued"], 0);
}

#[tokio::test]
async fn without_a_model_lang_answers_model_not_installed() {
    let app = TestApp::new();
    let owner = app.member("Owner");
    let (status, body) = app.post(&owner.editor, "/v1/items", &story("urn:t:1", "kk", "Сәлем", "<p>Сәлем</p>")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (status, body) = app.get(&owner.reader, &format!("/v1/items/{id}?lang=zh")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "model_not_installed");
    assert!(body["error"]["message"].as_str().unwrap().contains("karavan models import"), "{body}");
    // Already in that language: the original, no model needed.
    let (status, body) = app.get(&owner.reader, &format!("/v1/items/{id}?lang=kk")).await;
    assert_eq!((status, body["headlines"][0]["value"].as_str()), (StatusCode::OK, Some("Сәлем")));
    let (status, body) = app.get(&owner.reader, &format!("/v1/items/{id}?lang=not_a_tag!")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("lang:"), "{body}");
}

#[tokio::test]
async fn lang_serves_the_translation_as_a_separate_rendering_with_the_readers_glossary() {
    let (_models, app) = app_with_model();
    let validator = ninjs31();
    let owner = app.member("Xinhua");
    let reader = app.member("Kazinform");
    let stranger = app.member("Stranger");
    app.post(&owner.admin, "/v1/agreements", &json!({ "grantee": reader.id, "right": "view" })).await;
    let headline = "托卡耶夫会见上海合作组织代表团";
    let body = "<p>双方讨论了贸易。<b>铁路</b>运输增长。</p><p>下次会议在塔什干举行。</p>";
    let (status, published) = app.post(&owner.editor, "/v1/items", &story("urn:xh:1", "zh", headline, body)).await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    let id = published["id"].as_str().unwrap().to_string();
    let glossary = json!({ "terms": [{ "source": "托卡耶夫", "target": "Тоқаев" }] });
    assert_eq!(app.put(&reader.editor, "/v1/glossaries/zh/kk", &glossary).await.0, StatusCode::OK);

    let (status, headers, translated) = app.get_full(&reader.reader, &format!("/v1/items/{id}?lang=kk")).await;
    assert_eq!(status, StatusCode::OK, "{translated}");
    assert_ninjs31(&validator, &translated, "a translation");
    assert_eq!(headers["content-language"], "kk");
    assert!(headers["karavan-translation"].to_str().unwrap().starts_with("machine; model=hf-nllb-2x2"));
    assert_eq!(headers["karavan-translated-from"], "zh");
    assert_eq!(headers["link"].to_str().unwrap(), format!("</v1/items/{id}>; rel=\"original\""));

    // Exactly what the model makes, with the reader's glossary term as the glossary says: the head at
    // once; the body is the original's until a worker has translated it, and the answer says so (no
    // body was measured yet, so no estimate).
    let translator = Translator::load(fixture()).unwrap();
    let terms = [Term { source: "托卡耶夫".into(), target: "Тоқаев".into() }];
    let expected_headline = heads().translate(&[headline], "zh", "kk", &terms).unwrap().remove(0);
    let expected_body = translator.translate_html(body, "zh", "kk", &terms).unwrap();
    assert_ne!(expected_body, body);
    assert_eq!(translated["headlines"][0]["value"], expected_headline.as_str());
    assert!(expected_headline.contains("Тоқаев"), "{expected_headline}");
    assert_eq!(translated["bodies"][0]["value"], body, "the original body while its translation is queued");
    assert_eq!(headers["karavan-translation-status"], "headline=done, body=queued, position=1");
    assert!(headers["etag"].to_str().unwrap().ends_with("-head\""), "{:?}", headers["etag"]);
    assert!(translated["digitalSourceType"]["name"].as_str().unwrap().contains("the body is the original"));
    let (status, progress) = app.get(&reader.reader, &format!("/v1/items/{id}/translation?lang=kk")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        progress,
        json!({ "language": "kk", "headline": "done", "body": "queued", "position": 1, "estimatedSeconds": null })
    );

    // The worker's round: the head job, then the body job, for every glossary variant.
    assert_eq!(step(&app), 2);
    let (status, headers, translated) = app.get_full(&reader.reader, &format!("/v1/items/{id}?lang=kk")).await;
    assert_eq!(status, StatusCode::OK, "{translated}");
    assert_ninjs31(&validator, &translated, "a whole translation");
    assert_eq!(headers["karavan-translation-status"], "headline=done, body=done");
    assert_eq!(translated["headlines"][0]["value"], expected_headline.as_str(), "the head is not lost");
    assert_eq!(translated["bodies"][0]["value"], expected_body.as_str());
    assert_eq!(translated["bodies"][0]["contentType"], "text/html");
    assert!(translated["bodies"][0].get("charCount").is_none(), "counts of the original are dropped");
    assert_eq!(translated["language"], "kk");
    assert_eq!(
        translated["digitalSourceType"]["uri"],
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    );
    assert!(translated["digitalSourceType"]["name"].as_str().unwrap().contains("hf-nllb-2x2"));
    let original = &translated["associations"][0];
    assert_eq!((original["name"].as_str(), original["uri"].as_str()), (Some("original"), Some("urn:xh:1")));
    assert_eq!(original["language"], "zh");
    assert_eq!(original["headlines"][0]["value"], headline);
    assert!(original.get("renditions").is_none(), "no public URL: the Link header says where the original is");
    assert_ne!(translated["uri"], "urn:xh:1", "the translation is its own news object");
    let (_, progress) = app.get(&reader.reader, &format!("/v1/items/{id}/translation?lang=kk")).await;
    assert_eq!((&progress["body"], &progress["position"]), (&json!("done"), &Value::Null));
    // The queue counts the owner's jobs by part, and the bodies' measured time.
    let (_, queue) = app.get(&owner.reader, "/v1/translation/queue").await;
    assert_eq!((&queue["done"], &queue["head"]["done"], &queue["body"]["done"]), (&json!(2), &json!(1), &json!(1)));
    assert!(queue["averageSeconds"]["body"].is_number(), "{queue}");
    assert_eq!(queue["precision"], "float32");
    assert_eq!(app.get(&reader.reader, "/v1/translation/queue").await.1["queued"], 0, "not the reader's items");

    // The owner has no glossary: the plain rendering, which the worker made too.
    let (status, headers, plain) = app.get_full(&owner.reader, &format!("/v1/items/{id}?lang=kk")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["karavan-translation-status"], "headline=done, body=done");
    let expected_plain = heads().translate(&[headline], "zh", "kk", &[]).unwrap().remove(0);
    assert_eq!(plain["headlines"][0]["value"], expected_plain.as_str());
    // The first version stored in this store has sequence number 1.
    let stored = app.store.translations(&[1]).unwrap();
    assert_eq!(stored.len(), 2, "one rendering per glossary variant: {stored:?}");
    // Reading again serves what is stored.
    assert_eq!(app.get(&reader.reader, &format!("/v1/items/{id}?lang=kk")).await.1, translated);

    // Visibility first: a member who may not see the item gets 404, translated or not.
    assert_eq!(app.get(&stranger.reader, &format!("/v1/items/{id}?lang=kk")).await.0, StatusCode::NOT_FOUND);
    // A language the model does not have; NewsML-G2 of a translation.
    let (status, body) = app.get(&owner.reader, &format!("/v1/items/{id}?lang=tlh")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("does not translate"), "{body}");
    let (status, headers, xml) = app.get_text(&owner.reader, &format!("/v1/items/{id}?lang=kk&format=newsml")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().contains("xml"));
    assert!(xml.contains("xml:lang=\"kk\"") || xml.contains("<language tag=\"kk\""), "{xml}");
}

/// `GET /v1/items/{id}/translation?lang=kk` for a reader.
async fn progress(app: &TestApp, key: &str, id: &str) -> Value {
    let (status, body) = app.get(key, &format!("/v1/items/{id}/translation?lang=kk")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn heads_go_first_and_a_reader_moves_a_body_to_the_front() {
    // Workers that take one job of each part at a time, to watch the order.
    let batch = ClaimLimits { heads: 1, bodies: 1 };
    let (_models, app) = app_with(TranslationConfig { batch, ..TranslationConfig::default() });
    let owner = app.member("Xinhua");
    let languages = json!({ "languages": ["kk"] });
    assert_eq!(app.put(&owner.editor, "/v1/me/read-languages", &languages).await.0, StatusCode::OK);
    let body = "<p>双方讨论了贸易。铁路运输增长。</p><p>下次会议在塔什干举行。</p>";
    let mut ids = Vec::new();
    for (uri, headline, urgency) in
        [("urn:q:a", "代表团会见", 5), ("urn:q:b", "铁路运输增长", 5), ("urn:q:c", "紧急新闻", 1)]
    {
        let mut item = story(uri, "zh", headline, body);
        item["urgency"] = json!(urgency);
        let (status, published) = app.post(&owner.editor, "/v1/items", &item).await;
        assert_eq!(status, StatusCode::CREATED, "{published}");
        ids.push(published["id"].as_str().unwrap().to_string());
    }
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    // Published: a head and a body job each, and the bodies in the order they will be taken: most
    // urgent first, then oldest first.
    let (_, queue) = app.get(&owner.reader, "/v1/translation/queue").await;
    assert_eq!(
        (&queue["queued"], &queue["head"]["queued"], &queue["body"]["queued"]),
        (&json!(6), &json!(3), &json!(3))
    );
    for (id, position) in [(c, 1), (a, 2), (b, 3)] {
        let status = progress(&app, &owner.reader, id).await;
        assert_eq!((&status["headline"], &status["body"]), (&json!("queued"), &json!("queued")), "{status}");
        assert_eq!(status["position"], position, "{id}: {status}");
    }

    // Heads first: a round takes the most urgent head, and no body while a head waits.
    assert_eq!(step(&app), 1);
    let status = progress(&app, &owner.reader, c).await;
    assert_eq!((&status["headline"], &status["body"]), (&json!("done"), &json!("queued")), "{status}");
    assert_eq!(progress(&app, &owner.reader, a).await["headline"], "queued");
    assert_eq!(step(&app), 1);
    let (_, queue) = app.get(&owner.reader, "/v1/translation/queue").await;
    assert_eq!((&queue["head"]["done"], &queue["head"]["queued"]), (&json!(2), &json!(1)), "{queue}");

    // A reader opens b before its head job ran: its headline is translated now, its body is still the
    // original's, and its body job goes to the front, before the more urgent c's.
    let translator = Translator::load(fixture()).unwrap();
    let (status, headers, read) = app.get_full(&owner.reader, &format!("/v1/items/{b}?lang=kk")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["headlines"][0]["value"], heads().translate(&["铁路运输增长"], "zh", "kk", &[]).unwrap()[0]);
    assert_eq!(read["bodies"][0]["value"], body);
    assert_eq!(headers["karavan-translation-status"], "headline=done, body=queued, position=1");
    assert_eq!(progress(&app, &owner.reader, c).await["position"], 2);
    assert_eq!(progress(&app, &owner.reader, a).await["position"], 3);
    // The last head, and then, no head being left, the body b's reader waits for.
    assert_eq!(step(&app), 2);
    let (_, headers, read) = app.get_full(&owner.reader, &format!("/v1/items/{b}?lang=kk")).await;
    assert_eq!(headers["karavan-translation-status"], "headline=done, body=done");
    assert_eq!(read["bodies"][0]["value"], translator.translate_html(body, "zh", "kk", &[]).unwrap());
    // A body has been measured: the others now come with an estimate.
    let status = progress(&app, &owner.reader, a).await;
    assert_eq!((&status["body"], &status["position"]), (&json!("queued"), &json!(2)), "{status}");
    assert!(status["estimatedSeconds"].as_u64().is_some_and(|s| s >= 1), "{status}");
    assert_eq!(step(&app), 1);
    assert_eq!(progress(&app, &owner.reader, c).await["body"], "done", "c before a");
    assert_eq!(progress(&app, &owner.reader, a).await["position"], 1);
    assert_eq!(step(&app), 1);
    assert_eq!(step(&app), 0);
    let (_, queue) = app.get(&owner.reader, "/v1/translation/queue").await;
    assert_eq!((&queue["head"]["done"], &queue["body"]["done"], &queue["queued"]), (&json!(3), &json!(3), &json!(0)));
    // The model is described with the precision it is loaded in.
    let (_, models) = app.get(&owner.reader, "/v1/models").await;
    assert_eq!(
        models["translation"],
        json!({ "model": "hf-nllb-2x2", "precision": "float32", "headBeams": 1, "loaded": true })
    );
    // A status for a language the item is in, and bad requests.
    let (status, own) = app.get(&owner.reader, &format!("/v1/items/{a}/translation?lang=zh")).await;
    assert_eq!((status, &own["body"]), (StatusCode::OK, &json!("done")));
    assert_eq!(app.get(&owner.reader, &format!("/v1/items/{a}/translation")).await.0, StatusCode::BAD_REQUEST);
    let stranger = app.member("Stranger");
    assert_eq!(app.get(&stranger.reader, &format!("/v1/items/{a}/translation?lang=kk")).await.0, StatusCode::NOT_FOUND);
}

/// Reads server-sent events from a response body until one of `kind` arrives (or the deadline).
async fn next_event(body: &mut axum::body::Body, kind: &str) -> String {
    use http_body_util::BodyExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let frame =
            tokio::time::timeout(left, body.frame()).await.unwrap_or_else(|_| panic!("no {kind} event: {seen}"));
        let frame = frame.expect("the stream is open").unwrap();
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
            if let Some(at) = seen.find(&format!("event: {kind}\n")) {
                return seen[at..].to_string();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_item_page_says_the_body_is_queued_and_takes_it_when_it_arrives() {
    use sha2::Digest;
    let (_models, app) = app_with_model();
    let owner = app.member("Xinhua");
    let member = karavan_domain::MemberId::parse(&owner.id).unwrap();
    let user = app
        .store
        .add_user(karavan_store::NewUser {
            member: member.clone(),
            email: "editor@xinhua.example".into(),
            display_name: "Editor".into(),
            role: karavan_domain::Role::Editor,
            password_hash: "$argon2id$unused".into(),
            operator: false,
        })
        .unwrap();
    let token = "5e55104c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0ab";
    let expires = karavan_domain::Timestamp(karavan_server::now().micros() + 3_600_000_000);
    app.store.create_session(&user.id, sha2::Sha256::digest(token).into(), "csrf", expires).unwrap();
    let languages = json!({ "languages": ["kk"] });
    assert_eq!(app.put(&owner.editor, "/v1/me/read-languages", &languages).await.0, StatusCode::OK);
    let body = "<p>双方讨论了贸易。铁路运输增长。</p>";
    let (_, published) = app.post(&owner.editor, "/v1/items", &story("urn:web:tr", "zh", "铁路运输增长", body)).await;
    let id = published["id"].as_str().unwrap().to_string();
    let page = |path: String| {
        Request::get(path)
            .header("cookie", format!("karavan_session={token}"))
            .header("accept-language", "en")
            .body(Body::empty())
            .unwrap()
    };
    let html = |response: axum::response::Response| async move {
        use http_body_util::BodyExt;
        String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };
    let router = app.router.clone();
    use tower::ServiceExt;

    // The original, with a link to read it in the member's language.
    let original = html(router.clone().oneshot(page(format!("/items/{id}"))).await.unwrap()).await;
    assert!(original.contains(&format!("href=\"/items/{id}?lang=kk\"")), "{original}");
    // Translated: the head now, the body's translation queued, and the page follows it.
    let response = router.clone().oneshot(page(format!("/items/{id}?lang=kk"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let translated = html(response).await;
    let headline = heads().translate(&["铁路运输增长"], "zh", "kk", &[]).unwrap().remove(0);
    assert!(translated.contains(&format!(">{headline}</h1>")), "{translated}");
    assert!(translated.contains("Body translation queued"), "{translated}");
    assert!(translated.contains(&format!("data-translation-stream=\"/items/{id}/translation-events?lang=kk\"")));
    assert!(translated.contains("<div class=\"body\" lang=\"zh\">"), "the original body, in its language");
    assert!(translated.contains("Machine translation from zh by hf-nllb-2x2"), "{translated}");

    // Its events: the status, then done once a worker has stored the body.
    let events = router.clone().oneshot(page(format!("/items/{id}/translation-events?lang=kk"))).await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut events = events.into_body();
    let status = next_event(&mut events, "status").await;
    assert!(status.contains("Body translation queued"), "{status}");
    let state = app.state.clone();
    let done = tokio::task::spawn_blocking(move || translate_step(&state, "translator").unwrap().unwrap());
    assert_eq!(done.await.unwrap(), 2);
    next_event(&mut events, "done").await;
    let translated = html(router.clone().oneshot(page(format!("/items/{id}?lang=kk"))).await.unwrap()).await;
    assert!(!translated.contains("translation-pending") && !translated.contains("data-translation-stream"));
    assert!(translated.contains("<div class=\"body\" lang=\"kk\">"), "{translated}");
    // Without a session: no events.
    let anonymous = Request::get(format!("/items/{id}/translation-events?lang=kk")).body(Body::empty()).unwrap();
    assert_eq!(router.oneshot(anonymous).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
