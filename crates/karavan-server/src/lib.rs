//! Karavan's HTTP API: the router, authentication, the wire types, the error table and the OpenAPI
//! document. Only this crate knows the wire; it converts explicitly from domain and store types.
//!
//! Architecture invariant: handlers never touch the store or do CPU-heavy work on the async threads;
//! they go through [`app::Core::blocking`] and [`app::Core::compute`] (an `AppState` dereferences to its core).
//! Architecture invariant: every route under `/v1/` takes a [`auth::Caller`]; only `/healthz`, `/readyz` and
//! the OpenAPI document are public, and `/feeds/{token}` authenticates by its feed token.

pub mod admin;
pub mod app;
pub mod atom;
pub mod auth;
pub mod bus;
pub mod cluster;
pub mod countries;
pub mod distribution;
pub mod engine;
pub mod error;
pub mod feeds;
pub mod import;
pub mod items;
pub mod language;
pub mod listen;
pub mod metrics;
pub mod outbound;
pub mod params;
pub mod password;
pub mod publish;
pub mod release;
pub mod search;
pub mod semantic;
pub mod stories;
pub mod stream;
pub mod subscriptions;
pub mod throttle;
pub mod translation;
pub mod translation_http;
pub mod web;
pub mod web_admin;
pub mod web_settings;
pub mod web_stories;
pub mod web_translation;
pub mod wire;
pub mod zones;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use karavan_domain::{Role, Timestamp};
use karavan_search::SearchIndex;
use karavan_store::Store;
use tokio::net::TcpListener;

use crate::distribution::{Distribution, DistributionConfig};
use crate::error::{ApiError, ErrorCode};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The server's address as clients see it (`https://karavan.example.org`), for the absolute URLs it
    /// hands out (feed URLs); `None`: relative URLs.
    pub public_url: Option<String>,
    pub distribution: DistributionConfig,
    /// The model directory (language identification, embeddings); `None`: no models, and the
    /// features that need them answer `model_not_installed`.
    pub models_dir: Option<std::path::PathBuf>,
    /// Where the vector index of item embeddings is saved; `None`: in memory only.
    pub vectors_dir: Option<std::path::PathBuf>,
    /// Machine translation workers.
    pub translation: translation::TranslationConfig,
    /// Connection caps and client timeouts.
    pub connections: listen::ConnectionLimits,
    /// The bearer token `GET /metrics` asks for; `None`: it answers loopback clients only.
    pub metrics_token: Option<String>,
    /// The least similarity (cosine) a meaning-based hit needs; `None`: the installed model's default
    /// (`semantic::DEFAULT_FLOOR` for the packaged model, none for others); 0 or less: no floor.
    pub semantic_floor: Option<f32>,
    /// This node's name among the nodes sharing the store (lease holders are named after it); `None`:
    /// the host name, process id and a random suffix.
    pub node: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_body_bytes: 4 * 1024 * 1024,
            public_url: None,
            distribution: DistributionConfig::default(),
            models_dir: None,
            vectors_dir: None,
            translation: translation::TranslationConfig::default(),
            connections: listen::ConnectionLimits::default(),
            semantic_floor: None,
            metrics_token: None,
            node: None,
        }
    }
}

/// What every handler shares: the use cases' [`app::Core`] (store, bus, metrics, this instance's name),
/// which it dereferences to, and what only a server has (the indexes, models, engines, pages).
#[derive(Clone)]
pub struct AppState {
    core: app::Core,
    search: Arc<SearchIndex>,
    config: Arc<ServerConfig>,
    distribution: Arc<Distribution>,
    pages: Arc<karavan_web::Pages>,
    language: Arc<language::LanguageModels>,
    vectors: Arc<semantic::Vectors>,
    translations: Arc<translation::Translations>,
    engines: Arc<engine::Supervisor>,
    /// Cluster mode's bus on NATS JetStream (`None`: the in-process bus of one node).
    cluster: Option<Arc<cluster::NatsBus>>,
}

impl std::ops::Deref for AppState {
    type Target = app::Core;

    fn deref(&self) -> &app::Core {
        &self.core
    }
}

impl AppState {
    /// The state of a server; fails only if the outbound HTTP client cannot be built.
    pub fn new(store: Arc<dyn Store>, search: Arc<SearchIndex>, config: ServerConfig) -> Result<AppState, String> {
        AppState::build(store, search, config, None)
    }

    /// The state of a cluster node: its events go through NATS JetStream (see [`cluster`]).
    pub fn in_cluster(
        store: Arc<dyn Store>,
        search: Arc<SearchIndex>,
        config: ServerConfig,
        bus: Arc<cluster::NatsBus>,
    ) -> Result<AppState, String> {
        AppState::build(store, search, config, Some(bus))
    }

    fn build(
        store: Arc<dyn Store>,
        search: Arc<SearchIndex>,
        config: ServerConfig,
        cluster: Option<Arc<cluster::NatsBus>>,
    ) -> Result<AppState, String> {
        let distribution = Arc::new(Distribution::new(config.distribution.clone())?);
        let pages = Arc::new(karavan_web::Pages::load()?);
        let language = Arc::new(language::LanguageModels::new(config.models_dir.clone()));
        let vectors = Arc::new(semantic::Vectors::new(config.vectors_dir.clone()));
        let translations =
            Arc::new(translation::Translations::new(config.models_dir.clone(), config.translation.clone()));
        let engines = Arc::new(engine::Supervisor::new());
        let bus: Arc<dyn bus::EventBus> = match &cluster {
            Some(nats) => Arc::clone(nats) as Arc<dyn bus::EventBus>,
            None => Arc::new(bus::LocalBus::new()),
        };
        let core = match &config.node {
            Some(node) => app::Core::named(store, bus, node),
            None => app::Core::new(store, bus),
        };
        Ok(AppState {
            core,
            search,
            config: Arc::new(config),
            distribution,
            pages,
            language,
            vectors,
            translations,
            engines,
            cluster,
        })
    }

    /// Cluster mode's bus, when this node is one of a cluster.
    pub fn cluster(&self) -> Option<&Arc<cluster::NatsBus>> {
        self.cluster.as_ref()
    }

    /// Starts the background engines under the supervisor (call once, inside the runtime): the keyword
    /// indexer that tails the store, the keyword index's committer, distribution's fan-out and pusher, the feed poller, the embedder that keeps the
    /// vector index in step, and the translation workers. [`engine::Supervisor::shutdown`] stops them.
    pub fn start_engines(&self) {
        use engine::factory;
        let state = self.clone();
        self.engines.start("search-indexer", factory(move |context| search::run_indexer(state.clone(), context)));
        let search = Arc::clone(&self.search);
        self.engines.start(
            "search-committer",
            factory(move |context| search::run_committer(Arc::clone(&search), search::COMMIT_INTERVAL, context)),
        );
        distribution::start(self);
        let state = self.clone();
        self.engines.start("feed-poller", factory(move |context| feeds::run_poller(state.clone(), context)));
        let state = self.clone();
        self.engines.start("embedder", factory(move |context| semantic::run_embedder(state.clone(), context)));
        let state = self.clone();
        self.engines.start("release", factory(move |context| release::run(state.clone(), context)));
        let state = self.clone();
        self.engines.start("stories", factory(move |context| stories::run(state.clone(), context)));
        if let Some(bus) = &self.cluster {
            let (state, bus) = (self.clone(), Arc::clone(bus));
            self.engines.start(
                "stream-relay",
                factory(move |context| cluster::run_relay(state.clone(), Arc::clone(&bus), context)),
            );
        }
        let workers = self.translations.config.workers;
        for n in 0..workers {
            // Engine names are static: one per worker, made once at start-up.
            let name: &'static str =
                if workers == 1 { "translator" } else { Box::leak(format!("translator-{}", n + 1).into_boxed_str()) };
            let state = self.clone();
            self.engines.start(name, factory(move |context| translation::run_worker(state.clone(), name, context)));
        }
    }

    /// Cluster mode, a node started under its name (`--node`) again: hands back the work its previous
    /// run held by lease when it stopped (killed, its leases still running), so that it is taken at
    /// once instead of when the leases end (a translation's lasts 15 minutes). Names are unique in a
    /// cluster, so what this name holds is nobody else's. Blocking; how many were handed back.
    pub fn hand_back_previous_work(&self) -> Result<usize, karavan_store::StoreError> {
        if self.config.node.is_none() {
            return Ok(0);
        }
        let store = self.store();
        let mut handed = store.release_deliveries(&self.holder("pusher"))?;
        handed += store.release_feeds(&self.holder("feed-poller"))?;
        let workers = self.translations.config.workers;
        for n in 0..workers {
            let name = if workers == 1 { "translator".to_string() } else { format!("translator-{}", n + 1) };
            handed += store.release_translation_jobs(&self.holder(&name))?;
        }
        Ok(handed)
    }

    /// The supervisor of the background engines.
    pub fn engines(&self) -> &Arc<engine::Supervisor> {
        &self.engines
    }

    /// What reading an item needs beside the store.
    pub fn read_context(&self) -> wire::ReadContext {
        wire::ReadContext {
            models: Arc::clone(&self.language),
            translations: Arc::clone(&self.translations),
            search: Arc::clone(&self.search),
            bus: Arc::clone(self.bus()),
            public_url: self.config.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
        }
    }

    /// Machine translation: the model and its workers' settings.
    pub fn translations(&self) -> &Arc<translation::Translations> {
        &self.translations
    }

    /// The web newsroom's templates and messages.
    pub fn pages(&self) -> &karavan_web::Pages {
        &self.pages
    }

    pub fn distribution(&self) -> &Arc<Distribution> {
        &self.distribution
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn search(&self) -> &Arc<SearchIndex> {
        &self.search
    }

    /// The vector index of item embeddings.
    pub fn vectors(&self) -> &Arc<semantic::Vectors> {
        &self.vectors
    }

    /// The local language models.
    pub fn language(&self) -> &Arc<language::LanguageModels> {
        &self.language
    }
}

/// The message of a caught panic, for the record of what was set aside.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// The wall clock, read at the edge and passed into the store's visibility rule.
pub fn now() -> Timestamp {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the health check, the OpenAPI document).
    Public,
    /// The holder of a subscription's feed token, which is part of the path.
    FeedToken,
    /// An API key of at least this role.
    Key(Role),
}

/// Every route the server answers, as (method, OpenAPI path, who may call it). The OpenAPI document
/// must list exactly these (a test checks both ways). The role is enforced for every route by
/// [`enforce_access`] before the handler runs, so a handler that forgets its own check still cannot
/// let a reader change anything (a test walks every route with every role).
pub const ROUTES: &[(Method, &str, Access)] = &[
    (Method::GET, "/healthz", Access::Public),
    (Method::GET, "/readyz", Access::Public),
    (Method::GET, "/metrics", Access::Public),
    (Method::GET, "/v1/openapi.json", Access::Public),
    (Method::GET, "/v1/me", Access::Key(Role::Reader)),
    (Method::GET, "/v1/members", Access::Key(Role::Reader)),
    (Method::GET, "/v1/members/{id}", Access::Key(Role::Reader)),
    (Method::GET, "/v1/keys", Access::Key(Role::Admin)),
    (Method::GET, "/v1/set-aside", Access::Key(Role::Admin)),
    (Method::POST, "/v1/keys", Access::Key(Role::Admin)),
    (Method::DELETE, "/v1/keys/{id}", Access::Key(Role::Admin)),
    (Method::GET, "/v1/agreements", Access::Key(Role::Reader)),
    (Method::POST, "/v1/agreements", Access::Key(Role::Admin)),
    (Method::DELETE, "/v1/agreements/{id}", Access::Key(Role::Admin)),
    (Method::GET, "/v1/items", Access::Key(Role::Reader)),
    (Method::POST, "/v1/items", Access::Key(Role::Editor)),
    (Method::GET, "/v1/items/{id}", Access::Key(Role::Reader)),
    (Method::GET, "/v1/items/{id}/versions", Access::Key(Role::Reader)),
    (Method::POST, "/v1/items/{id}/kill", Access::Key(Role::Editor)),
    (Method::GET, "/v1/items/{id}/language", Access::Key(Role::Reader)),
    (Method::GET, "/v1/items/{id}/similar", Access::Key(Role::Reader)),
    (Method::GET, "/v1/items/{id}/translation", Access::Key(Role::Reader)),
    (Method::GET, "/v1/items/{id}/story", Access::Key(Role::Reader)),
    (Method::GET, "/v1/stories", Access::Key(Role::Reader)),
    (Method::GET, "/v1/stories/{id}", Access::Key(Role::Reader)),
    (Method::GET, "/v1/analytics/coverage", Access::Key(Role::Reader)),
    (Method::POST, "/v1/language/detect", Access::Key(Role::Reader)),
    (Method::GET, "/v1/models", Access::Key(Role::Reader)),
    (Method::GET, "/v1/me/read-languages", Access::Key(Role::Reader)),
    (Method::PUT, "/v1/me/read-languages", Access::Key(Role::Editor)),
    (Method::GET, "/v1/glossaries", Access::Key(Role::Reader)),
    (Method::GET, "/v1/glossaries/{from}/{to}", Access::Key(Role::Reader)),
    (Method::PUT, "/v1/glossaries/{from}/{to}", Access::Key(Role::Editor)),
    (Method::DELETE, "/v1/glossaries/{from}/{to}", Access::Key(Role::Editor)),
    (Method::GET, "/v1/translation/queue", Access::Key(Role::Reader)),
    (Method::GET, "/v1/search", Access::Key(Role::Reader)),
    (Method::GET, "/v1/searches", Access::Key(Role::Reader)),
    (Method::POST, "/v1/searches", Access::Key(Role::Editor)),
    (Method::GET, "/v1/searches/{id}", Access::Key(Role::Reader)),
    (Method::DELETE, "/v1/searches/{id}", Access::Key(Role::Editor)),
    (Method::GET, "/v1/searches/{id}/results", Access::Key(Role::Reader)),
    (Method::GET, "/v1/subscriptions", Access::Key(Role::Reader)),
    (Method::POST, "/v1/subscriptions", Access::Key(Role::Editor)),
    (Method::GET, "/v1/subscriptions/{id}", Access::Key(Role::Reader)),
    (Method::PUT, "/v1/subscriptions/{id}", Access::Key(Role::Editor)),
    (Method::DELETE, "/v1/subscriptions/{id}", Access::Key(Role::Editor)),
    (Method::POST, "/v1/subscriptions/{id}/feed-token", Access::Key(Role::Editor)),
    (Method::POST, "/v1/subscriptions/{id}/test", Access::Key(Role::Editor)),
    (Method::GET, "/v1/subscriptions/{id}/deliveries", Access::Key(Role::Reader)),
    (Method::GET, "/v1/subscriptions/{id}/changes", Access::Key(Role::Reader)),
    (Method::GET, "/v1/wire/stream", Access::Key(Role::Reader)),
    (Method::GET, "/v1/ingest/feeds", Access::Key(Role::Reader)),
    (Method::POST, "/v1/ingest/feeds", Access::Key(Role::Editor)),
    (Method::GET, "/v1/ingest/feeds/{id}", Access::Key(Role::Reader)),
    (Method::PUT, "/v1/ingest/feeds/{id}", Access::Key(Role::Editor)),
    (Method::DELETE, "/v1/ingest/feeds/{id}", Access::Key(Role::Editor)),
    (Method::POST, "/v1/ingest/feeds/{id}/pause", Access::Key(Role::Editor)),
    (Method::POST, "/v1/ingest/feeds/{id}/resume", Access::Key(Role::Editor)),
    (Method::GET, "/feeds/{token}", Access::FeedToken),
];

/// The OpenAPI 3.1 document, kept beside the routes it describes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /healthz`: `{"status": "ok" | "degraded", "engines": {name: {status, since, restarts, lastError,
/// lastErrorAt}}, "checks": {…}}`; 503 `degraded` while the storage is full (writes are refused with
/// `storage_full` meanwhile; the check itself notices when space has come back) or an engine is not
/// running (it failed and waits to be restarted, or has stopped).
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let (health, positions, queues) =
        match state.blocking(|store| Ok((store.health(), store.head_positions(), store.queue_depths()))).await {
            Ok(answer) => answer,
            Err(error) => return error.into_response(),
        };
    // Lag is reported when the store can say where its head is (a full disk does not stop reads).
    let lags: std::collections::HashMap<&str, u64> = match positions {
        Ok((head_seq, outbox_behind)) => metrics::engine_lags(&state, head_seq, outbox_behind).into_iter().collect(),
        Err(_) => Default::default(),
    };
    let mut degraded = false;
    let mut checks = serde_json::Map::new();
    if let Some(since) = health.storage_full_since {
        degraded = true;
        checks.insert("storage".into(), serde_json::json!({ "status": "full", "since": since.to_rfc3339() }));
    }
    let mut engines = serde_json::Map::new();
    for (name, status) in state.engines.statuses() {
        degraded |= status.phase != engine::Phase::Running;
        let mut entry = serde_json::json!({
            "status": status.phase.as_str(),
            "since": status.since.to_rfc3339(),
            "restarts": status.restarts,
            "lastError": status.last_error,
            "lastErrorAt": status.last_error_at.map(|at| at.to_rfc3339()),
        });
        if let Some(lag) = lags.get(name) {
            entry["lag"] = serde_json::json!(lag);
        }
        // Queue depth: the work waiting in the store for the engines that take it by lease.
        if let Ok(queues) = &queues {
            if name == "pusher" {
                entry["queue"] = serde_json::json!(queues.deliveries_pending);
            } else if name.starts_with("translator") {
                entry["queue"] = serde_json::json!(queues.translation_jobs_queued);
            }
        }
        engines.insert(name.to_string(), entry);
    }
    let body = serde_json::json!({
        "status": if degraded { "degraded" } else { "ok" },
        "engines": engines,
        "checks": checks,
    });
    let code = if degraded { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK };
    (code, axum::Json(body)).into_response()
}

/// How far the keyword index may be behind the store (store sequence numbers) for `/readyz` to say ready:
/// a node whose index has fallen behind (a burst, other nodes publishing faster than it indexes, an
/// indexer that keeps failing) would answer searches without the newest items.
pub const READY_MAX_LAG: u64 = 1_000;

/// `GET /readyz`: whether a load balancer should send this node requests. 200 `{"status": "ready",
/// "searchLag": N}` when the store answers a cheap read, the engines are started (none stopped) and the
/// keyword index is at most [`READY_MAX_LAG`] versions behind the store (the lag `/healthz` shows);
/// else 503 `{"status": "not_ready", "reasons": [...]}`, one reason for each. An engine that is
/// restarting after a failure does not make the node unready (`/healthz` reports it); a keyword indexer
/// that keeps failing does, once its lag passes the bound.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let lag_state = state.clone();
    // The index's position is read from its files: on the blocking pool too.
    let lag = state
        .blocking(move |store| {
            let (head_seq, outbox_behind) = store.head_positions()?;
            let lags = metrics::engine_lags(&lag_state, head_seq, outbox_behind);
            Ok(lags.into_iter().find(|(name, _)| *name == "search-indexer").map_or(0, |(_, lag)| lag))
        })
        .await;
    let mut reasons = Vec::new();
    match &lag {
        Ok(lag) if *lag > READY_MAX_LAG => {
            reasons.push(format!("the search index is {lag} versions behind the store (ready at {READY_MAX_LAG})"))
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "readyz: the store did not answer");
            reasons.push("the store does not answer".to_string());
        }
    }
    let engines = state.engines.statuses();
    if engines.is_empty() {
        reasons.push("the engines are not started".to_string());
    }
    for (name, status) in &engines {
        if status.phase == engine::Phase::Stopped {
            reasons.push(format!("engine {name} is stopped"));
        }
    }
    let ready = reasons.is_empty();
    let mut body = if ready {
        serde_json::json!({ "status": "ready" })
    } else {
        serde_json::json!({ "status": "not_ready", "reasons": reasons })
    };
    if let Ok(lag) = lag {
        body["searchLag"] = serde_json::json!(lag);
    }
    let code = if ready { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body)).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn route_not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/v1/") || uri.path() == "/v1" {
        return ApiError::new(ErrorCode::RouteNotFound, "no such route; see /v1/openapi.json").into_response();
    }
    // A person in a browser: a page, not JSON.
    web::page(
        axum::http::StatusCode::NOT_FOUND,
        "<!doctype html><title>Not found</title><p>Not found. <a href=\"/\">Karavan</a></p>".to_string(),
        vec![],
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take that method; see /v1/openapi.json")
}

/// The access a route needs, from [`ROUTES`].
pub fn route_access(method: &Method, path: &str) -> Option<Access> {
    ROUTES.iter().find(|(m, p, _)| m == method && *p == path).map(|(_, _, access)| *access)
}

/// Checks the key's role against [`ROUTES`] for every route that needs more than a reader, before the
/// handler sees the request; the caller found is handed on in the request's extensions, so the key is
/// looked up once. Routes missing from the table (the newsroom's pages) are left to their handlers.
async fn enforce_access(
    axum::extract::State(state): axum::extract::State<AppState>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let access = matched.and_then(|path| route_access(request.method(), path.as_str()));
    let Some(Access::Key(role)) = access else { return next.run(request).await };
    if role == Role::Reader {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let caller =
        match <auth::Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await
        {
            Ok(caller) => caller,
            Err(error) => return error.into_response(),
        };
    let action = format!("{} {}", parts.method, parts.uri.path());
    if let Err(error) = caller.require(role, &action) {
        return error.into_response();
    }
    parts.extensions.insert(caller);
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let access_state = state.clone();
    let limits_state = state.clone();
    let metrics_state = state.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/me", get(admin::me))
        .route("/v1/members", get(admin::list_members))
        .route("/v1/members/{id}", get(admin::get_member))
        .route("/v1/keys", get(admin::list_keys).post(admin::create_key))
        .route("/v1/keys/{id}", delete(admin::revoke_key))
        .route("/v1/set-aside", get(admin::list_set_aside))
        .route("/v1/agreements", get(admin::list_agreements).post(admin::create_agreement))
        .route("/v1/agreements/{id}", delete(admin::revoke_agreement))
        .route("/v1/items", get(items::list_items).post(items::publish))
        .route("/v1/items/{id}", get(items::get_item))
        .route("/v1/items/{id}/story", get(stories::http::item_story))
        .route("/v1/stories", get(stories::http::list_stories))
        .route("/v1/stories/{id}", get(stories::http::get_story))
        .route("/v1/analytics/coverage", get(stories::http::coverage))
        .route("/v1/items/{id}/versions", get(items::get_versions))
        .route("/v1/items/{id}/kill", post(items::kill_item))
        .route("/v1/items/{id}/language", get(language::item_language))
        .route("/v1/items/{id}/similar", get(semantic::similar))
        .route("/v1/items/{id}/translation", get(translation::item_status))
        .route("/v1/language/detect", post(language::detect))
        .route("/v1/models", get(language::list_models))
        .route("/v1/me/read-languages", get(translation::get_read_languages).put(translation::put_read_languages))
        .route("/v1/glossaries", get(translation::list_glossaries))
        .route(
            "/v1/glossaries/{from}/{to}",
            get(translation::get_glossary).put(translation::put_glossary).delete(translation::delete_glossary),
        )
        .route("/v1/translation/queue", get(translation::queue))
        .route("/v1/search", get(search::search))
        .route("/v1/searches", get(search::list_saved).post(search::create_saved))
        .route("/v1/searches/{id}", get(search::get_saved).delete(search::delete_saved))
        .route("/v1/searches/{id}/results", get(search::run_saved))
        .route("/v1/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::get).put(subscriptions::update).delete(subscriptions::delete),
        )
        .route("/v1/subscriptions/{id}/feed-token", post(subscriptions::rotate_feed_token))
        .route("/v1/subscriptions/{id}/test", post(subscriptions::test_delivery))
        .route("/v1/subscriptions/{id}/deliveries", get(subscriptions::deliveries))
        .route("/v1/subscriptions/{id}/changes", get(subscriptions::changes))
        .route("/v1/wire/stream", get(stream::stream))
        .route("/v1/ingest/feeds", get(feeds::list).post(feeds::create))
        .route("/v1/ingest/feeds/{id}", get(feeds::get_one).put(feeds::update).delete(feeds::delete))
        .route("/v1/ingest/feeds/{id}/pause", post(feeds::pause))
        .route("/v1/ingest/feeds/{id}/resume", post(feeds::resume))
        .route("/feeds/{token}", get(subscriptions::atom))
        .route_layer(axum::middleware::from_fn_with_state(access_state, enforce_access))
        // The web newsroom (pages, not API: not in ROUTES or the OpenAPI document).
        .route("/", get(web::home))
        .route("/login", get(web::login_form).post(web::login))
        .route("/logout", post(web::logout))
        .route("/wire/stream", get(web::wire_stream))
        .route("/wire/headlines", get(web::wire_headlines))
        .route("/settings", get(web_settings::settings).post(web_settings::save))
        .route("/stories", get(web_stories::stories_page))
        .route("/stories/{id}", get(web_stories::story_page))
        .route("/translation", get(web_translation::settings))
        .route("/translation/languages", post(web_translation::set_languages))
        .route("/translation/glossaries", post(web_translation::set_glossary))
        .route("/translation/glossaries/{from}/{to}/delete", post(web_translation::delete_glossary))
        .route("/search", get(web::search_page))
        .route("/search/save", post(web::search_save))
        .route("/search/saved/{id}/delete", post(web::search_saved_delete))
        .route("/subscriptions", get(web::subscriptions_list).post(web::subscriptions_create))
        .route("/subscriptions/{id}", get(web::subscription_detail).post(web::subscription_update))
        .route("/subscriptions/{id}/delete", post(web::subscription_delete))
        .route("/subscriptions/{id}/feed-token", post(web::subscription_rotate))
        .route("/subscriptions/{id}/test", post(web::subscription_test))
        .route("/items/{id}", get(web::item_page))
        .route("/items/{id}/translation-events", get(web::translation_events))
        .route("/items/{id}/ninjs", get(web::item_ninjs))
        .route("/items/{id}/newsml", get(web::item_newsml))
        .route("/items/{id}/kill", post(web::item_kill))
        .route("/publish", get(web::publish_form).post(web::publish_submit))
        .route("/publish/upload", post(web::publish_upload))
        .route("/admin", get(web_admin::admin))
        .route("/admin/users", post(web_admin::add_user))
        .route("/admin/members", post(web_admin::add_member))
        .route("/admin/users/{id}/{action}", post(web_admin::set_user_enabled))
        .route("/admin/keys", post(web_admin::create_key))
        .route("/admin/keys/{id}/revoke", post(web_admin::revoke_key))
        .route("/admin/feeds", post(web_admin::add_feed))
        .route("/admin/feeds/{id}/{action}", post(web_admin::feed_action))
        .route("/admin/agreements", post(web_admin::add_agreement))
        .route("/admin/agreements/{id}/revoke", post(web_admin::revoke_agreement))
        .route("/assets/{file}", get(web::assets))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(metrics_state, metrics::count_requests))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(limits_state, limit_request_body))
        .with_state(state)
}

/// Before anything else runs: a declared `Content-Length` over the limit is answered 413 at once (not
/// after the body has been read), and the body gets its deadline ([`listen::DeadlineBody`]).
async fn limit_request_body(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let max = state.config.max_body_bytes;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        let mut response = if web::is_newsroom_path(request.uri().path()) {
            web::too_large_page(&state, request.headers()).await
        } else {
            ApiError::new(ErrorCode::PayloadTooLarge, format!("content-length: the body is larger than {max} bytes"))
                .into_response()
        };
        // The body will not be read: the connection cannot be used again.
        response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return response;
    }
    let within = state.config.connections.body_timeout;
    let request = request.map(|body| axum::body::Body::new(listen::DeadlineBody::new(body, within)));
    next.run(request).await
}

/// Serves until `shutdown` resolves, then finishes the requests in flight (at most `grace`).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = state.config.connections.clone();
    let app = router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = listen::serve_connections(listener, app, limits, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut stop_rx = stop_rx;
    tokio::select! {
        () = server => Ok(()),
        _ = async {
            let _ = stop_rx.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("requests still running after the grace period; stopping anyway");
            Ok(())
        }
    }
}
