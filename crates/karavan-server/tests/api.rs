//! The HTTP API through its public boundary: the real router, a real SQLite store.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{TestApp, assert_ninjs31, ninjs31};
use karavan_domain::Role;
use karavan_server::ServerConfig;
use serde_json::{Value, json};

fn item(uri: &str, headline: &str) -> Value {
    json!({
        "uri": uri,
        "type": "text",
        "language": "kk",
        "urgency": 4,
        "headlines": [{ "value": headline }],
        "bodies": [{ "contentType": "text/plain", "value": format!("{headline}. Body text.") }],
        "subjects": [{ "name": "economy", "uri": "http://cv.iptc.org/newscodes/mediatopic/04000000" }],
        "copyrightHolder": "Test Agency"
    })
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test]
async fn health_is_public_and_everything_else_needs_a_key() {
    let app = TestApp::new();
    let (status, body) = app.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));

    let (status, body) = app.send(Request::get("/v1/items").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    for bad in
        ["Bearer nope", "Basic abc", "Bearer kvn_0000000000000000000000000000000000000000000000000000000000000000"]
    {
        let (status, _) =
            app.send(Request::get("/v1/items").header("authorization", bad).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let (status, body) = app.get("x", "/v1/nothing-here").await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "route_not_found"));
    let (status, body) = app.send(Request::put("/v1/items").body(Body::empty()).unwrap()).await;
    assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_served_routes() {
    let app = TestApp::new();
    let (status, document) = app.send(Request::get("/v1/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let mut documented = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        // Path items also hold shared `parameters` (and may hold a summary): those are not operations.
        for method in operations
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !["parameters", "summary", "description"].contains(&k.as_str()))
        {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> =
        karavan_server::ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served, "the OpenAPI document and the routes disagree");
    // Every listed route is really served: it does not answer route_not_found or method_not_allowed.
    for (method, path) in &served {
        let path = path.replace("{id}", "x");
        let request = Request::builder().method(method.as_str()).uri(&path).body(Body::empty()).unwrap();
        let (status, body) = app.send(request).await;
        assert!(
            !matches!(body["error"]["code"].as_str(), Some("route_not_found" | "method_not_allowed")),
            "{method} {path} is documented but not served ({status})"
        );
    }
}

#[tokio::test]
async fn publish_read_correct_and_kill() {
    let app = TestApp::new();
    let validator = ninjs31();
    let owner = app.member("Owner");
    let partner = app.member("Partner");
    let (status, _) =
        app.post(&owner.admin, "/v1/agreements", &json!({ "grantee": partner.id, "right": "republish" })).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, created) = app.post(&owner.editor, "/v1/items", &item("urn:test:1", "Rail record")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "created");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("itm_"));
    assert_ninjs31(&validator, &created["item"], "publish response");

    // The partner reads it as ninjs 3.1, with the Karavan id in altIds.
    let (status, read) = app.get(&partner.reader, &format!("/v1/items/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, wire) = app.get(&partner.reader, "/v1/items").await;
    assert_eq!(wire["meta"][0]["right"], "republish", "the partner may republish: {wire}");
    assert_ninjs31(&validator, &read, "get");
    assert_eq!(read["headlines"][0]["value"], "Rail record");
    assert_eq!(read["version"], "1");
    assert!(read["altIds"].as_array().unwrap().iter().any(|a| a["role"] == "karavan" && a["value"] == id.as_str()));

    // Resending is idempotent; a new version is a correction.
    let (status, again) = app.post(&owner.editor, "/v1/items", &item("urn:test:1", "Rail record")).await;
    assert_eq!(
        (status, again["status"].as_str(), again["id"].as_str()),
        (StatusCode::OK, Some("unchanged"), Some(id.as_str()))
    );
    let mut correction = item("urn:test:1", "Rail record, corrected");
    correction["version"] = json!("2");
    let (status, corrected) = app.post(&owner.editor, "/v1/items", &correction).await;
    assert_eq!((status, corrected["status"].as_str()), (StatusCode::CREATED, Some("corrected")));
    let mut clash = item("urn:test:1", "Something else");
    clash["version"] = json!("2");
    let (status, body) = app.post(&owner.editor, "/v1/items", &clash).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "version_conflict"));

    let (status, versions) = app.get(&partner.reader, &format!("/v1/items/{id}/versions")).await;
    assert_eq!(status, StatusCode::OK);
    let versions = versions["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["headlines"][0]["value"], "Rail record", "the old version stays readable");
    for v in versions {
        assert_ninjs31(&validator, v, "versions");
    }

    // Readers may not publish; other members may not kill.
    let (status, body) = app.post(&partner.reader, "/v1/items", &item("urn:test:2", "x")).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, _) = app.post(&partner.editor, &format!("/v1/items/{id}/kill"), &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A kill withdraws it; a kill notice remains for those who ask.
    let (status, killed) =
        app.post(&owner.editor, &format!("/v1/items/{id}/kill"), &json!({ "reason": "wrong figures" })).await;
    assert_eq!(status, StatusCode::CREATED, "{killed}");
    assert_eq!(killed["item"]["pubStatus"], "canceled");
    let (status, body) = app.get(&partner.reader, &format!("/v1/items/{id}")).await;
    assert_eq!((status, error_code(&body)), (StatusCode::GONE, "item_killed"));
    assert_eq!(body["notice"]["edNote"], "wrong figures");
    assert_ninjs31(&validator, &body["notice"], "kill notice");
    let (status, body) = app.get(&partner.reader, &format!("/v1/items/{id}/versions")).await;
    assert_eq!((status, error_code(&body)), (StatusCode::GONE, "item_killed"), "no old content via versions");
    assert!(!body.to_string().contains("Body text"), "the kill notice carries no content: {body}");
    let (status, history) = app.get(&owner.reader, &format!("/v1/items/{id}/versions")).await;
    assert_eq!((status, history["versions"].as_array().unwrap().len()), (StatusCode::OK, 3));
    let (_, list) = app.get(&partner.reader, "/v1/items").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "a killed item leaves the list");
    let (_, list) = app.get(&partner.reader, "/v1/items?include=kills").await;
    assert_eq!(list["items"][0]["pubStatus"], "canceled");
}

#[tokio::test]
async fn agreements_embargo_and_delay_apply_to_every_read_path() {
    let app = TestApp::new();
    let owner = app.member("Owner");
    let partner = app.member("Partner");
    let late = app.member("Late");
    let stranger = app.member("Stranger");
    app.post(&owner.admin, "/v1/agreements", &json!({ "grantee": partner.id, "right": "view" })).await;
    let (status, agreement) = app
        .post(&owner.admin, "/v1/agreements", &json!({ "grantee": late.id, "right": "view", "delayMinutes": 60 }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agreement}");

    let (_, open) = app.post(&owner.editor, "/v1/items", &item("urn:open", "Open")).await;
    let mut embargoed = item("urn:embargoed", "Embargoed");
    embargoed["embargoedUntil"] = json!("2999-01-01T00:00:00Z");
    let (_, embargoed) = app.post(&owner.editor, "/v1/items", &embargoed).await;
    let open = open["id"].as_str().unwrap();
    let embargoed = embargoed["id"].as_str().unwrap();

    for (who, key, sees_open) in
        [("partner", &partner.reader, true), ("late", &late.reader, false), ("stranger", &stranger.reader, false)]
    {
        let (status, _) = app.get(key, &format!("/v1/items/{open}")).await;
        assert_eq!(status == StatusCode::OK, sees_open, "{who} get open");
        let (status, _) = app.get(key, &format!("/v1/items/{open}/versions")).await;
        assert_eq!(status == StatusCode::OK, sees_open, "{who} versions open");
        let (status, _) = app.get(key, &format!("/v1/items/{embargoed}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{who} never sees the embargoed item");
        let (status, _) = app.get(key, &format!("/v1/items/{embargoed}/versions")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{who} versions embargoed");
        let (_, list) = app.get(key, "/v1/items").await;
        let uris: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["uri"].as_str().unwrap()).collect();
        assert_eq!(uris, if sees_open { vec!["urn:open"] } else { vec![] }, "{who} list");
    }
    // The owner sees both, embargoed included.
    let (_, list) = app.get(&owner.reader, "/v1/items").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Agreements are listed for both sides and can be revoked by the grantor's admin only.
    let (_, mine) = app.get(&late.reader, "/v1/agreements").await;
    assert_eq!(mine["received"].as_array().unwrap().len(), 1);
    let agreement_id = agreement["id"].as_str().unwrap();
    let (status, _) = app.delete(&late.admin, &format!("/v1/agreements/{agreement_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only the grantor revokes");
    let (status, _) = app.delete(&owner.admin, &format!("/v1/agreements/{agreement_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn list_filters_and_cursors() {
    let app = TestApp::new();
    let owner = app.member("Owner");
    for (n, language) in ["kk", "ru", "uz-Latn", "uz-Cyrl", "zh"].iter().enumerate() {
        let mut doc = item(&format!("urn:l:{n}"), &format!("item {n}"));
        doc["language"] = json!(language);
        doc["urgency"] = json!(n + 1);
        app.post(&owner.editor, "/v1/items", &doc).await;
    }
    let uris = |list: &Value| -> Vec<String> {
        list["items"].as_array().unwrap().iter().map(|i| i["uri"].as_str().unwrap().to_string()).collect()
    };
    let (_, list) = app.get(&owner.reader, "/v1/items?lang=uz").await;
    assert_eq!(uris(&list), ["urn:l:3", "urn:l:2"]);
    let (_, list) = app.get(&owner.reader, "/v1/items?lang=kk,zh").await;
    assert_eq!(uris(&list), ["urn:l:4", "urn:l:0"]);
    let (_, list) = app.get(&owner.reader, "/v1/items?urgency=1-2").await;
    assert_eq!(uris(&list), ["urn:l:1", "urn:l:0"]);
    let (_, list) = app.get(&owner.reader, &format!("/v1/items?member={}&type=text&from=2000-01-01", owner.id)).await;
    assert_eq!(uris(&list).len(), 5);
    let (_, list) = app.get(&owner.reader, "/v1/items?to=2000-01-01").await;
    assert_eq!(uris(&list).len(), 0);

    // Paging newest first, then polling from `latest`.
    let (_, page1) = app.get(&owner.reader, "/v1/items?limit=2").await;
    let (_, page2) =
        app.get(&owner.reader, &format!("/v1/items?limit=2&after={}", page1["next"].as_str().unwrap())).await;
    let (_, page3) =
        app.get(&owner.reader, &format!("/v1/items?limit=2&after={}", page2["next"].as_str().unwrap())).await;
    let all: Vec<String> = [uris(&page1), uris(&page2), uris(&page3)].concat();
    assert_eq!(all, ["urn:l:4", "urn:l:3", "urn:l:2", "urn:l:1", "urn:l:0"]);
    assert!(page3["next"].is_null());
    let latest = page1["latest"].as_str().unwrap().to_string();
    app.post(&owner.editor, "/v1/items", &item("urn:l:new", "new")).await;
    let (_, polled) = app.get(&owner.reader, &format!("/v1/items?since={latest}")).await;
    assert_eq!(uris(&polled), ["urn:l:new"]);
    let (_, polled_again) =
        app.get(&owner.reader, &format!("/v1/items?since={}", polled["next"].as_str().unwrap())).await;
    assert_eq!(uris(&polled_again).len(), 0, "no repeats");
}

/// Bad input of every kind gets a 4xx naming what is wrong, and writes nothing.
#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let app = TestApp::with_config(ServerConfig { max_body_bytes: 64 * 1024, ..ServerConfig::default() });
    let owner = app.member("Owner");
    let check = |status: StatusCode, body: &Value, expected_status: StatusCode, code: &str, mentions: &str| {
        assert_eq!(status, expected_status, "{body}");
        assert_eq!(error_code(body), code, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "message {message:?} should mention {mentions:?}");
    };
    let (s, b) = app.post_raw(&owner.editor, "/v1/items", "{\"uri\": \"urn:x\",\n \"headlines\": [}").await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_json", "line 2");
    let (s, b) = app.post_raw(&owner.editor, "/v1/items", "").await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_json", "empty");
    let (s, b) = app.post(&owner.editor, "/v1/items", &json!({ "uri": "urn:x", "urgency": 12 })).await;
    check(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_ninjs", "urgency");
    let (s, b) = app.post(&owner.editor, "/v1/items", &json!({ "uri": "urn:x", "pubStatus": "cancelled" })).await;
    check(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_ninjs", "pubStatus");
    let (s, b) = app.post(&owner.editor, "/v1/items", &json!([1, 2])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let deep = format!(
        "{{\"uri\": \"urn:deep\", \"headlines\": [{{\"value\": \"x\", \"role\": {}1{}}}]}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let (s, b) = app.post_raw(&owner.editor, "/v1/items", deep).await;
    check(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_ninjs", "nested");
    let (s, b) = app.post(&owner.editor, "/v1/items?ninjs=9.9", &item("urn:x", "x")).await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request", "ninjs");
    let (s, b) = app.post(&owner.editor, "/v1/items?bogus=1", &item("urn:x", "x")).await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request", "bogus");
    let huge = json!({ "uri": "urn:big", "bodies": [{ "value": "x".repeat(100 * 1024) }] });
    let (s, b) = app.post(&owner.editor, "/v1/items", &huge).await;
    check(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "larger");
    let (s, b) = app
        .send(
            Request::post("/v1/items")
                .header("authorization", format!("Bearer {}", owner.editor))
                .header("content-type", "text/plain")
                .body(Body::from(item("urn:x", "x").to_string()))
                .unwrap(),
        )
        .await;
    check(s, &b, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "text/plain");

    for (path, mentions) in [
        ("/v1/items?limit=0", "limit"),
        ("/v1/items?since=zzz", "since"),
        ("/v1/items?lang=kazakh", "language"),
        ("/v1/items?urgency=0", "urgency"),
        ("/v1/items?from=yesterday", "from"),
        ("/v1/items?type=poem", "type"),
        ("/v1/items?include=everything", "include"),
        ("/v1/items/not-an-id", "item"),
    ] {
        let (s, b) = app.get(&owner.reader, path).await;
        check(s, &b, StatusCode::BAD_REQUEST, "invalid_request", mentions);
    }
    for (body, mentions) in [
        (json!({ "right": "view" }), "grantee"),
        (json!({ "grantee": "*", "right": "own" }), "right"),
        (json!({ "grantee": "*", "right": "view", "delayMinutes": -5 }), "delayMinutes"),
        (json!({ "grantee": "*", "right": "view", "subjects": "sport" }), "subjects"),
        (json!({ "grantee": "*", "right": "view", "extra": 1 }), "extra"),
        (json!({ "grantee": "mbr_nope", "right": "view" }), "grantee"),
    ] {
        let (s, b) = app.post(&owner.admin, "/v1/agreements", &body).await;
        check(s, &b, StatusCode::BAD_REQUEST, "invalid_request", mentions);
    }
    let (_, list) = app.get(&owner.reader, "/v1/items").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing was half-written");
}

#[tokio::test]
async fn keys_are_managed_by_admins_and_revocation_is_immediate() {
    let app = TestApp::new();
    let agency = app.member("Agency");
    let (status, _) = app.post(&agency.editor, "/v1/keys", &json!({ "role": "reader" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) =
        app.post(&agency.admin, "/v1/keys", &json!({ "role": "reader", "label": "night desk" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let key = created["key"].as_str().unwrap().to_string();
    let (status, me) = app.get(&key, "/v1/me").await;
    assert_eq!((status, me["role"].as_str()), (StatusCode::OK, Some("reader")));
    let (_, keys) = app.get(&agency.admin, "/v1/keys").await;
    assert!(keys["keys"].as_array().unwrap().iter().all(|k| k.get("key").is_none()), "secrets are never listed");
    let (status, _) = app.delete(&agency.admin, &format!("/v1/keys/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&key, "/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, members) = app.get(&agency.reader, "/v1/members").await;
    assert_eq!((status, members["members"].as_array().unwrap().len()), (StatusCode::OK, 1));
}

/// Every route that changes state, called with a key of every role: a role below the route's answers
/// 403 before anything happens, the route's own role gets past the check. A state-changing route open
/// to readers fails the test (only the read-only POST of language detection may be).
#[tokio::test]
async fn every_mutating_route_checks_the_role_of_every_key() {
    use karavan_server::Access;
    let app = TestApp::new();
    let member = app.member("Roles");
    let keys = [(Role::Reader, &member.reader), (Role::Editor, &member.editor), (Role::Admin, &member.admin)];
    let read_only_posts = ["/v1/language/detect"];
    let mut walked = 0;
    for (method, path, access) in karavan_server::ROUTES {
        if *method == Method::GET {
            continue;
        }
        let Access::Key(required) = access else { panic!("{method} {path} changes state without a key") };
        if read_only_posts.contains(path) {
            continue;
        }
        assert!(*required >= Role::Editor, "{method} {path} lets a reader change state");
        let uri = path.replace("{id}", "x").replace("{from}", "kk").replace("{to}", "ru");
        for (role, key) in keys {
            let request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, body) = app.send(request).await;
            if role < *required {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method} {uri}: {body}");
                assert_eq!(body["error"]["code"], "forbidden");
            } else {
                assert_ne!(status, StatusCode::FORBIDDEN, "{role} {method} {uri}: {body}");
            }
        }
        walked += 1;
    }
    assert!(walked >= 20, "walked {walked} routes");
}

#[tokio::test]
async fn a_reader_can_neither_save_nor_delete_searches() {
    let app = TestApp::new();
    let member = app.member("Searchers");
    let (status, saved) =
        app.post(&member.editor, "/v1/searches", &json!({"name": "rail", "query": {"q": "rail"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    let (status, _) = app.post(&member.reader, "/v1/searches", &json!({"name": "x", "query": {"q": "x"}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let path = format!("/v1/searches/{}", saved["id"].as_str().unwrap());
    let (status, _) = app.delete(&member.reader, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&member.reader, &path).await;
    assert_eq!(status, StatusCode::OK, "still there, and readers may read it");
    let (status, list) = app.get(&member.reader, "/v1/searches").await;
    assert_eq!((status, list["searches"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{list}");
}

#[test]
fn the_openapi_document_lists_every_error_code() {
    let document: Value = serde_json::from_str(karavan_server::OPENAPI).unwrap();
    let listed: Vec<&str> = document["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|schema| schema.pointer("/properties/error/properties/code/enum"))
        .flat_map(|codes| codes.as_array().unwrap().iter().map(|c| c.as_str().unwrap()))
        .collect();
    let served: Vec<&str> = karavan_server::error::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, served);
}
