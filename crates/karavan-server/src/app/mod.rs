//! The use cases: the operations Karavan offers, once, for every edge. The HTTP API (`/v1/…`
//! handlers), the web newsroom (`web*.rs`), the CLI and the engines call these; they take typed
//! inputs, check them, write through the store and tell the event bus what changed, and return typed
//! results or the one error type ([`crate::error::ApiError`], whose stable codes each edge maps to
//! its own form: an HTTP status and JSON body, a newsroom page, a CLI message).
//!
//! Every use case takes the [`Core`] it needs: the store, the event bus, the metrics and this
//! instance's name. A server's `AppState` dereferences to its core; the CLI builds a core of its own
//! (its store, a bus of its process), so a command and a request run the same checks and writes.
//!
//! Boundaries: an edge parses its input (JSON, a form, arguments) into the use case's input and
//! renders its result; it never writes to the store or the bus for an operation a use case offers,
//! and it never goes through another edge (the newsroom does not build API JSON). Use cases never
//! see HTTP types.

pub mod access;
pub mod agreements;
pub mod feeds;
pub mod publishing;
pub mod saved_searches;
pub mod subscriptions;
pub mod translation;

use std::sync::Arc;

use karavan_store::{Store, StoreError};

use crate::bus::EventBus;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// What every use case works with: the store (the truth), the bus (wake-ups), the metrics and this
/// process's name among the instances sharing the store.
#[derive(Clone)]
pub struct Core {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    metrics: Arc<Metrics>,
    instance: Arc<str>,
}

impl Core {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn EventBus>) -> Core {
        Core { store, bus, metrics: Arc::default(), instance: instance_name().into() }
    }

    /// A core with the name its operator gave this node (`--node`), which must be unique in the
    /// cluster: lease holders are named after it, so a node restarted under its name takes back its
    /// own leases at once.
    pub fn named(store: Arc<dyn Store>, bus: Arc<dyn EventBus>, node: &str) -> Core {
        Core { store, bus, metrics: Arc::default(), instance: node.into() }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The event bus.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// What the server counts for `GET /metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// This process's name among the instances sharing the store.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The lease holder name of one of this process's engines.
    pub fn holder(&self, engine: &str) -> String {
        format!("{}/{engine}", self.instance)
    }

    /// Runs a store call on the blocking pool, keeping the current tracing span.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(store.as_ref())))
            .await
            .map_err(|error| ApiError::internal("blocking task", error))?
            .map_err(ApiError::from)
    }

    /// Runs CPU work (parsing, validation, hashing) on the blocking pool.
    pub async fn compute<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|error| ApiError::internal("blocking task", error))
    }
}

/// A name for this process unique among the instances that share a store: host, process id and a
/// random part (a restarted process is a new instance; what the old one held comes back when its
/// leases end).
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "karavan".to_string());
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    format!("{host}/{}/{:08x}", std::process::id(), u32::from_le_bytes(random))
}
