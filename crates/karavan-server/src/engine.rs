//! Supervised background engines: every long-running loop of the server (fan-out, webhook pusher, feed
//! poller, translation workers, keyword committer, vector embedder) runs under one [`Supervisor`], which
//! starts them together, restarts one that panics or returns (with a backoff that doubles from 1 s to
//! 60 s and resets after a minute of healthy running), records each one's state, restarts and last
//! error for `GET /healthz`, and stops them together.
//!
//! Architecture invariant: an engine is a factory of futures, not a future: the supervisor calls it
//! again for every restart, so nothing an engine holds in memory (a channel, a busy list, a cache)
//! outlives a crash. What must survive lives in the store.
//!
//! Architecture invariant: a panic inside an engine never reaches the process: the engine's task is
//! its own tokio task, whose panic the supervisor receives as a `JoinError`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use karavan_domain::Timestamp;
use tokio::sync::watch;

/// What the supervisor runs: called once per start, it returns the engine's loop.
pub type EngineFactory = Arc<dyn Fn(EngineContext) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The first wait before restarting an engine that failed, doubled for each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// An engine that ran this long before failing starts again from the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Where an engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Failed; starts again at `until`.
    Restarting,
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Restarting => "restarting",
            Phase::Stopped => "stopped",
        }
    }
}

/// What `/healthz` and the metrics say about one engine.
#[derive(Debug, Clone)]
pub struct EngineStatus {
    pub phase: Phase,
    /// When it last started (or stopped).
    pub since: Timestamp,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// Given to each start of an engine: whether the server is stopping.
#[derive(Clone)]
pub struct EngineContext {
    stop: watch::Receiver<bool>,
}

impl EngineContext {
    /// Whether the supervisor has asked the engines to stop.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the supervisor asks the engines to stop (at once if it already has).
    pub async fn stopped(&mut self) {
        stopped(&mut self.stop).await;
    }
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Runs the engines and knows their state.
pub struct Supervisor {
    statuses: Arc<Mutex<BTreeMap<&'static str, EngineStatus>>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Default for Supervisor {
    fn default() -> Supervisor {
        Supervisor::new()
    }
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("engines", &self.statuses()).finish()
    }
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor { statuses: Arc::default(), stop: watch::channel(false).0, tasks: Mutex::default() }
    }

    /// Starts `factory` as the engine `name` and keeps it running until [`Supervisor::shutdown`].
    /// Call inside the runtime.
    pub fn start(&self, name: &'static str, factory: EngineFactory) {
        let factory = inject_panic(name, factory);
        let statuses = Arc::clone(&self.statuses);
        let set = move |update: &dyn Fn(&mut EngineStatus)| {
            if let Ok(mut statuses) = statuses.lock() {
                let status = statuses.entry(name).or_insert_with(|| EngineStatus {
                    phase: Phase::Running,
                    since: crate::now(),
                    restarts: 0,
                    last_error: None,
                    last_error_at: None,
                });
                update(status);
            }
        };
        set(&|status| {
            status.phase = Phase::Running;
            status.since = crate::now();
        });
        let mut stop = self.stop.subscribe();
        let task = tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let started = tokio::time::Instant::now();
                let mut run = tokio::spawn(factory(EngineContext { stop: stop.clone() }));
                let ended = tokio::select! {
                    ended = &mut run => ended,
                    _ = stopped(&mut stop) => {
                        // Asked to stop: give the engine a moment to finish what it holds, then end it.
                        if tokio::time::timeout(Duration::from_secs(5), &mut run).await.is_err() {
                            run.abort();
                        }
                        break;
                    }
                };
                if *stop.borrow() {
                    break;
                }
                let error = match ended {
                    Ok(()) => "the engine's loop returned".to_string(),
                    Err(error) if error.is_panic() => {
                        format!("panicked: {}", crate::panic_message(error.into_panic().as_ref()))
                    }
                    Err(error) => format!("ended: {error}"),
                };
                tracing::error!(engine = name, %error, restart_in_ms = backoff.as_millis() as u64, "engine failed; restarting");
                set(&|status| {
                    status.phase = Phase::Restarting;
                    status.last_error = Some(error.clone());
                    status.last_error_at = Some(crate::now());
                });
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut stop) => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                set(&|status| {
                    status.phase = Phase::Running;
                    status.since = crate::now();
                    status.restarts += 1;
                });
            }
            set(&|status| {
                status.phase = Phase::Stopped;
                status.since = crate::now();
            });
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    /// Every engine's status, by name.
    pub fn statuses(&self) -> BTreeMap<&'static str, EngineStatus> {
        self.statuses.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Asks every engine to stop and waits for them (each gets 5 s to finish what it holds).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = self.tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// In debug builds (tests), `KARAVAN_TEST_ENGINE_PANIC=<name>` makes that engine panic 2 s into its
/// first start, to prove that the supervisor restarts it and `/healthz` shows it.
fn inject_panic(name: &'static str, factory: EngineFactory) -> EngineFactory {
    if !cfg!(debug_assertions) || std::env::var("KARAVAN_TEST_ENGINE_PANIC").ok().as_deref() != Some(name) {
        return factory;
    }
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    Arc::new(move |context| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                panic!("injected by KARAVAN_TEST_ENGINE_PANIC for {name}")
            })
        } else {
            factory(context)
        }
    })
}

/// Wraps an async closure as an [`EngineFactory`].
pub fn factory<F, Fut>(make: F) -> EngineFactory
where
    F: Fn(EngineContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |context| Box::pin(make(context)))
}
