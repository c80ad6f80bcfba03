//! `GET /v1/search` through the real router: items published through the API are found in their
//! languages, filters and facets work, and nothing the caller may not see shows in hits, snippets or
//! facet counts.

mod common;

use axum::http::StatusCode;
use common::{TestApp, assert_ninjs31, ninjs31};
use serde_json::{Value, json};

fn story(uri: &str, language: &str, headline: &str, body: &str) -> Value {
    common::story(uri, language, headline, &format!("<p>{body}</p>"))
}

fn hit_uris(body: &Value) -> Vec<String> {
    let mut uris: Vec<String> =
        body["hits"].as_array().unwrap().iter().map(|h| h["item"]["uri"].as_str().unwrap().to_string()).collect();
    uris.sort();
    uris
}

#[tokio::test]
async fn published_items_are_found_in_their_languages() {
    let app = TestApp::new();
    let validator = ninjs31();
    let owner = app.member("Owner");
    let reader = app.member("Reader");
    app.post(&owner.admin, "/v1/agreements", &json!({ "grantee": "*", "right": "view" })).await;
    for (uri, language, headline, body) in [
        ("urn:s:zh", "zh", "中吉乌铁路项目正式开工", "连接三国的铁路今天开工建设。"),
        ("urn:s:ru", "ru", "Новая железная дорога", "Строительство железной дороги началось."),
        ("urn:s:uz", "uz-Cyrl", "Тошкентда янги бекат", "Тошкент шаҳрида янги бекат очилди."),
        ("urn:s:kk", "kk", "Қазақстанда жаңа теміржол", "Қазақстанның оңтүстігінде жаңа жол ашылды."),
    ] {
        let (status, _) = app.post(&owner.editor, "/v1/items", &story(uri, language, headline, body)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    app.index();

    for (query, expected) in [
        ("铁路", vec!["urn:s:zh"]),
        ("железная%20дорога", vec!["urn:s:ru"]),
        ("Toshkent", vec!["urn:s:uz"]),
        ("Qazaqstan", vec!["urn:s:kk"]),
    ] {
        let (status, body) = app.get(&reader.reader, &format!("/v1/search?q={query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(hit_uris(&body), expected, "q={query}");
        for hit in body["hits"].as_array().unwrap() {
            assert_ninjs31(&validator, &hit["item"], "search hit");
            assert!(hit["snippet"].as_str().unwrap().contains("<b>"), "{hit}");
        }
    }
    let (_, body) = app.get(&reader.reader, "/v1/search?lang=uz,kk").await;
    assert_eq!(hit_uris(&body), ["urn:s:kk", "urn:s:uz"]);
    assert_eq!(body["facets"]["language"]["kk"], 1);
    assert_eq!(body["facets"]["member"][owner.id.as_str()], 2);
    assert_eq!(body["facets"]["subject"]["medtop:04000000"], 2);
    let (_, page) = app.get(&reader.reader, "/v1/search?limit=3&sort=date").await;
    assert_eq!(page["hits"].as_array().unwrap().len(), 3);
    let (_, rest) = app
        .get(&reader.reader, &format!("/v1/search?limit=3&sort=date&cursor={}", page["next"].as_str().unwrap()))
        .await;
    assert_eq!(rest["hits"].as_array().unwrap().len(), 1);
    assert!(rest["next"].is_null());

    // A correction replaces what is found; a kill removes it.
    let mut corrected = story("urn:s:ru", "ru", "Новый мост", "Строительство моста началось.");
    corrected["version"] = json!("2");
    app.post(&owner.editor, "/v1/items", &corrected).await;
    app.index();
    let (_, body) = app.get(&reader.reader, "/v1/search?q=дорога").await;
    assert!(hit_uris(&body).is_empty(), "the old version is no longer found");
    let (_, body) = app.get(&reader.reader, "/v1/search?q=мост").await;
    let id = body["hits"][0]["id"].as_str().unwrap().to_string();
    app.post(&owner.editor, &format!("/v1/items/{id}/kill"), &json!({})).await;
    app.index();
    let (_, body) = app.get(&reader.reader, "/v1/search?q=мост").await;
    assert_eq!(body["total"], 0, "a killed item is not found");
}

#[tokio::test]
async fn search_never_reveals_what_the_caller_may_not_see() {
    let app = TestApp::new();
    let owner = app.member("Owner");
    let partner = app.member("Partner");
    let stranger = app.member("Stranger");
    app.post(&owner.admin, "/v1/agreements", &json!({ "grantee": partner.id, "right": "view" })).await;
    app.post(&owner.editor, "/v1/items", &story("urn:v:open", "en", "Open railway news", "An open railway story."))
        .await;
    let mut embargoed = story("urn:v:secret", "en", "Secret railway budget", "Embargoed railway figures.");
    embargoed["embargoedUntil"] = json!("2999-01-01T00:00:00Z");
    app.post(&owner.editor, "/v1/items", &embargoed).await;
    app.index();

    let (_, body) = app.get(&partner.reader, "/v1/search?q=railway").await;
    assert_eq!(hit_uris(&body), ["urn:v:open"]);
    assert_eq!(body["total"], 1);
    assert!(!body.to_string().contains("Secret") && !body.to_string().contains("Embargoed"), "{body}");
    assert_eq!(body["facets"]["member"][owner.id.as_str()], 1, "facets count only the visible");
    let (_, body) = app.get(&stranger.reader, "/v1/search?q=railway").await;
    assert_eq!(body["total"], 0);
    assert!(body["facets"]["member"].as_object().unwrap().is_empty());
    let (_, body) = app.get(&owner.reader, "/v1/search?q=railway").await;
    assert_eq!(hit_uris(&body), ["urn:v:open", "urn:v:secret"], "the owner finds its embargoed item");
}

#[tokio::test]
async fn bad_search_requests_are_refused_clearly() {
    let app = TestApp::new();
    let member = app.member("Member");
    for (path, mentions) in [
        // (An unclosed quote is no longer refused: syntax that does not parse is read as words.)
        (
            "/v1/search?q=a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+q+r+s+t+u+v+w+x+y+z+a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+q+r+s+t+u+v+w+x+y+z+a+b+c+d+e+f+g+h+i+j+k+l+m",
            "q",
        ),
        ("/v1/search?sort=alphabet", "sort"),
        ("/v1/search?limit=1000", "limit"),
        ("/v1/search?cursor=abc", "cursor"),
        ("/v1/search?lang=klingon", "language"),
        ("/v1/search?member=nobody", "member"),
        ("/v1/search?qlang=x", "qlang"),
        ("/v1/search?colour=red", "colour"),
    ] {
        let (status, body) = app.get(&member.reader, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{path}: {message}");
    }
    let (status, _) =
        app.send(axum::http::Request::get("/v1/search?q=x").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn saved_searches_are_checked_kept_per_member_and_run() {
    let app = TestApp::new();
    let owner = app.member("Owner");
    let other = app.member("Other");
    app.post(&owner.editor, "/v1/items", &story("urn:ss:1", "uz-Latn", "Toshkentda yangi bekat", "Toshkent shahrida."))
        .await;
    app.post(&owner.editor, "/v1/items", &story("urn:ss:2", "ru", "Ташкент", "Новый вокзал.")).await;
    app.index();

    let (status, saved) = app
        .post(
            &owner.editor,
            "/v1/searches",
            &json!({ "name": "Tashkent rail", "query": { "q": "Toshkent", "lang": ["uz"] } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    assert_eq!(saved["query"]["lang"], "uz");
    let (status, body) =
        app.post(&owner.editor, "/v1/searches", &json!({ "name": "Tashkent rail", "query": {} })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
    for (body, mentions) in [
        (json!({ "name": "x", "query": { "lang": "klingon" } }), "query.language"),
        (json!({ "name": "x", "query": { "cursor": "o5" } }), "query.cursor"),
        (json!({ "name": "x", "query": { "q": { "a": 1 } } }), "query.q"),
        (json!({ "name": "", "query": {} }), "name"),
        (json!({ "query": {} }), "name"),
        (json!({ "name": "x" }), "query"),
    ] {
        let (status, response) = app.post(&owner.editor, "/v1/searches", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        assert!(response["error"]["message"].as_str().unwrap().starts_with(mentions), "{body}: {response}");
    }

    let (_, results) = app.get(&owner.reader, &format!("/v1/searches/{id}/results")).await;
    assert_eq!(hit_uris(&results), ["urn:ss:1"], "the saved filters apply");
    let (_, list) = app.get(&owner.reader, "/v1/searches").await;
    assert_eq!(list["searches"].as_array().unwrap().len(), 1);
    let (status, _) = app.get(&other.reader, &format!("/v1/searches/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another member cannot see it");
    let (status, _) = app.get(&other.reader, &format!("/v1/searches/{id}/results")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&owner.editor, &format!("/v1/searches/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&owner.reader, &format!("/v1/searches/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
