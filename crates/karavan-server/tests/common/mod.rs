//! Helpers for the HTTP tests: a fresh store and router, requests through `tower::ServiceExt::oneshot`,
//! and the IPTC material in `../shared`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use karavan_domain::{CountryCode, LanguageTag, MemberName, Role};
use karavan_server::{AppState, ServerConfig, router};
use karavan_store::{NewMember, SqliteConfig, SqliteStore, Store};
use serde_json::Value;
use tower::ServiceExt;

/// `../shared` beside the repository (or `$KARAVAN_SHARED`). Tests that need it fail without it.
pub fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("KARAVAN_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    assert!(dir.join("conformance").is_dir(), "the shared conformance material is missing at {}", dir.display());
    dir
}

/// A server's state over the SQLite store in `dir` and a keyword index in `dir/search_dir` (several
/// instances may share the store, each with its own index); no engine started.
pub fn app_state(dir: &std::path::Path, search_dir: &str, config: ServerConfig) -> AppState {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(SqliteConfig::new(dir)).unwrap());
    let search = Arc::new(karavan_search::SearchIndex::open(&dir.join(search_dir)).unwrap());
    AppState::new(store, search, config).unwrap()
}

pub struct TestApp {
    pub _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub search: Arc<karavan_search::SearchIndex>,
    pub router: Router,
    /// The router's state, for tests that drive the engines' steps.
    pub state: AppState,
}

pub struct Member {
    pub id: String,
    pub admin: String,
    pub editor: String,
    pub reader: String,
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_config(ServerConfig::default())
    }

    pub fn with_config(config: ServerConfig) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let state = app_state(dir.path(), "search", config);
        let (store, search) = (Arc::clone(state.store()), Arc::clone(state.search()));
        TestApp { _dir: dir, store, search, router: router(state.clone()), state }
    }

    pub fn member(&self, name: &str) -> Member {
        let member = self
            .store
            .add_member(NewMember {
                name: MemberName::parse(name).unwrap(),
                country: CountryCode::parse("KZ").unwrap(),
                languages: vec![LanguageTag::parse("kk").unwrap()],
                contact: None,
            })
            .unwrap();
        let key = |role| self.store.create_key(&member.id, role, None).unwrap().1.reveal().to_string();
        Member {
            id: member.id.to_string(),
            admin: key(Role::Admin),
            editor: key(Role::Editor),
            reader: key(Role::Reader),
        }
    }

    /// The keyword indexer's step, as the engine runs it: indexes what the store holds beyond the
    /// index and commits (tests drive it instead of waiting for the engine).
    pub fn index(&self) {
        let models = karavan_server::language::LanguageModels::new(None);
        karavan_server::search::catch_up(self.store.as_ref(), &self.search, &models).unwrap();
    }

    /// Sends a request; returns the status and the body parsed as JSON (Null when empty).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, body)
    }

    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.send(Request::get(path).header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_raw(key, path, body.to_string()).await
    }

    pub async fn post_raw(&self, key: &str, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        self.send(
            Request::post(path)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    /// A POST of `body` to `/v1/items` with a content type (ninjs, NewsML-G2, …).
    pub async fn post_typed(&self, key: &str, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        self.send(
            Request::post("/v1/items")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", content_type)
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    /// A GET answered as (status, content type, body text).
    pub async fn get_raw(&self, key: &str, path: &str) -> (StatusCode, String, String) {
        let (status, headers, text) = self.get_text(key, path).await;
        let kind = headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (status, kind, text)
    }

    /// A GET answered as (status, headers, body text).
    pub async fn get_text(&self, key: &str, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let request = Request::get(path).header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// A GET answered as (status, headers, JSON body).
    pub async fn get_full(&self, key: &str, path: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let (status, headers, text) = self.get_text(key, path).await;
        (status, headers, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
    }

    pub async fn put(&self, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(
            Request::put(path)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.send(Request::delete(path).header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap())
            .await
    }
}

/// A text item in ninjs 3.1 with one HTML body and an economy subject.
pub fn story(uri: &str, language: &str, headline: &str, body_html: &str) -> Value {
    serde_json::json!({
        "uri": uri,
        "type": "text",
        "language": language,
        "headlines": [{ "value": headline }],
        "bodies": [{ "contentType": "text/html", "value": body_html }],
        "subjects": [{ "name": "economy", "uri": "http://cv.iptc.org/newscodes/mediatopic/04000000" }]
    })
}

/// A validator for ninjs 3.1 with format checking, from IPTC's own schema file.
pub fn ninjs31() -> jsonschema::Validator {
    ninjs_schema("3.1")
}

/// A validator for one ninjs version (2.1 or later: draft 2020-12), from IPTC's own schema file.
pub fn ninjs_schema(version: &str) -> jsonschema::Validator {
    let path = shared_dir().join(format!("conformance/ninjs/specification/ninjs-schema_{version}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // The schema refers to GeoJSON's; IPTC ships a copy beside its test suite.
    let geojson_path = shared_dir().join("conformance/ninjs/validation/test_suite/GeoJSON-schema.json");
    let geojson: Value = serde_json::from_str(&std::fs::read_to_string(&geojson_path).unwrap()).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_resource("https://geojson.org/schema/GeoJSON.json", jsonschema::Resource::from_contents(geojson).unwrap())
        .build(&schema)
        .unwrap()
}

/// Panics with every violation when `item` is not valid ninjs 3.1.
pub fn assert_ninjs31(validator: &jsonschema::Validator, item: &Value, context: &str) {
    let errors: Vec<String> = validator.iter_errors(item).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{context}: not valid ninjs 3.1: {errors:#?}\n{item:#}");
}
