//! `GET /metrics`: the operator's view in the Prometheus text exposition format (version 0.0.4):
//! HTTP requests by route, method and status; publishes and their latency; the engines' state,
//! restarts and lag behind the store; deliveries by state; queue depths; the indexes' sizes.
//!
//! The figures are exchange-wide, so they are not a member's to read: `/metrics` answers a client on
//! the loopback interface (a scraper on the same host), or one that sends `Authorization: Bearer` with
//! the token of `--metrics-token` / `KARAVAN_METRICS_TOKEN`; anyone else gets 401.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// One route's request counts, by method, then status.
type ByMethod = BTreeMap<String, BTreeMap<u16, u64>>;

/// What the server counts as it runs.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by route template, then method, then status (nested so that counting a request
    /// allocates nothing once its route, method and status have been seen).
    requests: Mutex<BTreeMap<String, ByMethod>>,
    /// `POST /v1/items` answered with success, from the request's arrival to the answer.
    publish_latency: Histogram,
    /// Versions stored by publishes (API, newsroom, feeds), unchanged re-sends not counted.
    published: AtomicU64,
}

impl Metrics {
    /// Counts versions a publish stored.
    pub fn published(&self, versions: usize) {
        self.published.fetch_add(versions as u64, Ordering::Relaxed);
    }
}

/// Middleware: counts every request by its route template (never the raw path: ids would make
/// unbounded label sets), method and status, and times publishes.
pub async fn count_requests(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let metrics = state.metrics();
    if method == Method::POST && route == "/v1/items" && status.is_success() {
        metrics.publish_latency.observe(started.elapsed());
    }
    if let Ok(mut requests) = metrics.requests.lock() {
        if !requests.contains_key(route) {
            requests.insert(route.to_string(), BTreeMap::new());
        }
        let Some(methods) = requests.get_mut(route) else { return response };
        if !methods.contains_key(method.as_str()) {
            methods.insert(method.as_str().to_string(), BTreeMap::new());
        }
        if let Some(statuses) = methods.get_mut(method.as_str()) {
            *statuses.entry(status.as_u16()).or_default() += 1;
        }
    }
    response
}

/// Escapes a label value for the text format.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    if !allowed(&state, peer, request.headers()) {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "metrics: from the loopback interface, or with the bearer token of --metrics-token",
        )
        .into_response();
    }
    let stats = match state.blocking(|store| store.stats()).await {
        Ok(stats) => stats,
        Err(error) => return error.into_response(),
    };
    let metrics = state.metrics();
    let mut out = String::with_capacity(8 * 1024);
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };

    family(&mut out, "karavan_http_requests_total", "counter", "HTTP requests by route template, method and status.");
    if let Ok(requests) = metrics.requests.lock() {
        for (route, methods) in requests.iter() {
            for (method, statuses) in methods {
                for (status, count) in statuses {
                    let _ = writeln!(
                        out,
                        "karavan_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                        label(route)
                    );
                }
            }
        }
    }
    family(&mut out, "karavan_items_published_total", "counter", "Item versions stored by publishes.");
    let _ = writeln!(out, "karavan_items_published_total {}", metrics.published.load(Ordering::Relaxed));
    family(
        &mut out,
        "karavan_publish_duration_seconds",
        "histogram",
        "Time from a POST /v1/items request's arrival to its successful answer.",
    );
    metrics.publish_latency.render(&mut out, "karavan_publish_duration_seconds");

    let engines = state.engines().statuses();
    family(
        &mut out,
        "karavan_engine_up",
        "gauge",
        "1 while a background engine runs, 0 while it waits to restart or has stopped.",
    );
    for (name, status) in &engines {
        let up = u8::from(status.phase == crate::engine::Phase::Running);
        let _ = writeln!(out, "karavan_engine_up{{engine=\"{name}\"}} {up}");
    }
    family(&mut out, "karavan_engine_restarts_total", "counter", "Restarts of a background engine after a failure.");
    for (name, status) in &engines {
        let _ = writeln!(out, "karavan_engine_restarts_total{{engine=\"{name}\"}} {}", status.restarts);
    }
    // Lag: how far behind the store's head a derived index or the fan-out is.
    family(
        &mut out,
        "karavan_engine_lag",
        "gauge",
        "Store sequence numbers (or outbox events, for the fan-out) an engine has still to process.",
    );
    for (name, lag) in engine_lags(&state, stats.head_seq, stats.outbox_behind) {
        let _ = writeln!(out, "karavan_engine_lag{{engine=\"{name}\"}} {lag}");
    }
    if let Some(bus) = state.cluster() {
        render_stream(&mut out, &state, bus.stats());
    }
    family(&mut out, "karavan_store_head_sequence", "gauge", "The highest store sequence number written.");
    let _ = writeln!(out, "karavan_store_head_sequence {}", stats.head_seq);

    family(&mut out, "karavan_deliveries", "gauge", "Webhook and feed deliveries by state.");
    for state_name in ["pending", "delivered", "dead", "withdrawn", "feed"] {
        let count = stats.deliveries.iter().find(|(s, _)| s == state_name).map_or(0, |(_, c)| *c);
        let _ = writeln!(out, "karavan_deliveries{{state=\"{state_name}\"}} {count}");
    }
    family(
        &mut out,
        "karavan_translation_jobs",
        "gauge",
        "Translation jobs by state (queued and running are the queue).",
    );
    let jobs = &stats.translation_jobs;
    for (name, count) in
        [("queued", jobs.queued), ("running", jobs.running), ("done", jobs.done), ("failed", jobs.failed)]
    {
        let _ = writeln!(out, "karavan_translation_jobs{{state=\"{name}\"}} {count}");
    }
    family(
        &mut out,
        "karavan_index_documents",
        "gauge",
        "Documents in the keyword index and vectors in the vector index.",
    );
    let _ = writeln!(out, "karavan_index_documents{{index=\"keyword\"}} {}", state.search().num_docs());
    if let Some((vectors, _)) = state.vectors().status() {
        let _ = writeln!(out, "karavan_index_documents{{index=\"vector\"}} {vectors}");
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

/// How far each engine that follows the store is behind its head: the keyword index's committed
/// sequence and the vector index's (store sequence numbers), the fan-out's outbox position (events).
pub(crate) fn engine_lags(state: &AppState, head_seq: i64, outbox_behind: u64) -> Vec<(&'static str, u64)> {
    let behind = |seq: i64| u64::try_from((head_seq - seq).max(0)).unwrap_or(0);
    let mut lags = vec![("search-indexer", behind(state.search().indexed_seq().unwrap_or(0)))];
    if let Some((_, vector_seq)) = state.vectors().status() {
        lags.push(("embedder", behind(vector_seq)));
    }
    lags.push(("fanout", outbox_behind));
    lags
}

/// Cluster mode: where this node stands in the event stream, and how far its keyword index is behind
/// the newest version the stream has told it of.
fn render_stream(out: &mut String, state: &AppState, stats: &crate::cluster::StreamStats) {
    let mut family = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    family(
        "karavan_stream_pending_messages",
        "gauge",
        "Messages in the cluster's event stream not yet delivered to this node.",
        stats.pending.load(Ordering::Relaxed).to_string(),
    );
    let newest = stats.newest_seq.load(Ordering::Relaxed);
    family(
        "karavan_stream_newest_sequence",
        "gauge",
        "The newest store sequence number this node has seen on the event stream.",
        newest.to_string(),
    );
    let indexed = state.search().indexed_seq().unwrap_or(0);
    family(
        "karavan_stream_index_lag",
        "gauge",
        "Store sequence numbers between the newest the stream told this node of and its keyword index.",
        (newest - indexed).max(0).to_string(),
    );
    family(
        "karavan_stream_received_total",
        "counter",
        "Event stream messages this node has received.",
        stats.received.load(Ordering::Relaxed).to_string(),
    );
    family(
        "karavan_stream_relayed_total",
        "counter",
        "Outbox events this node's relay published to the event stream.",
        stats.relayed.load(Ordering::Relaxed).to_string(),
    );
    family(
        "karavan_stream_connected",
        "gauge",
        "1 while this node is connected to NATS.",
        u8::from(stats.connected.load(Ordering::Relaxed)).to_string(),
    );
}

/// Whether a client may read the metrics: the configured bearer token, else the loopback interface.
fn allowed(state: &AppState, peer: Option<std::net::IpAddr>, headers: &HeaderMap) -> bool {
    let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match state.config().metrics_token.as_deref() {
        Some(token) => sent.is_some_and(|sent| constant_time_eq(sent.as_bytes(), token.as_bytes())),
        None => peer.is_some_and(|ip| ip.is_loopback()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
