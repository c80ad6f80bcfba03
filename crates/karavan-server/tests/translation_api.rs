//! Machine translation over the API (in process): read languages, glossaries and their checks,
//! `GET /v1/items/{id}?lang=` translated on demand with the random NLLB fixture checkpoint (so the
//! words are not a translation, but they are exactly what the model makes), the ninjs rendering of
//! a translation, visibility, and `model_not_installed` without a model. The workers and the queue
//! through the real binary are in `crates/karavan/tests/translate.rs`.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, assert_ninjs31, ninjs31};
use karavan_lang::translate::{Term, Translator};
use karavan_server::ServerConfig;
use serde_json::{Value, json};

fn fixture() -> &'static Path {
    Box::leak(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/tests/fixtures/m2m100/nllb-2x2").into_boxed_path(),
    )
}

/// A test app whose model directory holds the fixture checkpoint, imported as an operator would.
fn app_with_model() -> (tempfile::TempDir, TestApp) {
    let models = tempfile::tempdir().unwrap();
    karavan_lang::ModelDir::new(models.path()).import(fixture()).unwrap();
    let app =
        TestApp::with_config(ServerConfig { models_dir: Some(models.path().to_path_buf()), ..ServerConfig::default() });
    (models, app)
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

    // Exactly what the model makes, with the reader's glossary term as the glossary says.
    let translator = Translator::load(fixture()).unwrap();
    let terms = [Term { source: "托卡耶夫".into(), target: "Тоқаев".into() }];
    let expected_headline = translator.translate(&[headline], "zh", "kk", &terms).unwrap().remove(0);
    let expected_body = translator.translate_html(body, "zh", "kk", &terms).unwrap();
    assert_eq!(translated["headlines"][0]["value"], expected_headline.as_str());
    assert!(expected_headline.contains("Тоқаев"), "{expected_headline}");
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

    // The owner has no glossary: the plain rendering, made once and kept.
    let (status, plain) = app.get(&owner.reader, &format!("/v1/items/{id}?lang=kk")).await;
    assert_eq!(status, StatusCode::OK);
    let expected_plain = translator.translate(&[headline], "zh", "kk", &[]).unwrap().remove(0);
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
