//! The single writer thread with group commit, and the commit clock that makes wire cursors safe.
//!
//! The clock hands out strictly increasing commit times. While a group is being written, `floor`
//! holds a time no greater than any commit time the group will use; readers cap what they list at
//! `min(now, floor - 1)` (the horizon), so a list never shows a later item while an earlier one is
//! still uncommitted, and a cursor never skips an item.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::thread;

use karavan_domain::Timestamp;
use rusqlite::Connection;

use crate::{Result, StoreError};

const IDLE: i64 = i64::MAX;

/// Assigns commit times inside the writer thread.
pub struct WriterClock {
    last: i64,
}

impl WriterClock {
    /// A commit time later than every one before it and than the wall clock when it was read.
    pub fn next(&mut self) -> Timestamp {
        let now = super::now_micros().saturating_add(1);
        self.last = now.max(self.last + 1);
        Timestamp(self.last)
    }
}

/// Why a group's transaction could not be begun or committed.
#[derive(Debug, Clone)]
struct TransactionFailure {
    storage_full: bool,
    message: String,
}

impl TransactionFailure {
    fn of(error: &rusqlite::Error) -> TransactionFailure {
        let storage_full =
            matches!(error, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull);
        TransactionFailure { storage_full, message: error.to_string() }
    }

    fn into_error(self, doing: &str) -> StoreError {
        if self.storage_full {
            StoreError::StorageFull(format!("{doing}: {}", self.message))
        } else {
            StoreError::CommitFailed(format!("{doing}: {}", self.message))
        }
    }
}

type Finish = Box<dyn FnOnce(std::result::Result<(), TransactionFailure>) + Send>;
/// A job gets the open transaction, or the reason none could be begun.
type Job = Box<dyn FnOnce(std::result::Result<(&Connection, &mut WriterClock), TransactionFailure>) -> Finish + Send>;

pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    floor: Arc<AtomicI64>,
    /// Since when (microseconds) writes have been failing for lack of space; 0 while they are not.
    storage_full_since: AtomicI64,
    thread: Option<thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(connection: Connection, max_batch: usize, last_commit: i64) -> Writer {
        let (sender, receiver) = mpsc::channel::<Job>();
        let floor = Arc::new(AtomicI64::new(IDLE));
        let thread_floor = Arc::clone(&floor);
        let thread = thread::Builder::new()
            .name("karavan-sqlite-writer".to_string())
            .spawn(move || write_loop(connection, receiver, thread_floor, max_batch, last_commit))
            .expect("the writer thread starts");
        Writer { jobs: Some(sender), floor, storage_full_since: AtomicI64::new(0), thread: Some(thread) }
    }

    /// Runs `work` inside the next group's transaction (in its own savepoint, so that its failure does
    /// not undo the others) and returns its result once the group is durably committed.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &mut WriterClock) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel::<Result<T>>(1);
        let job: Job = Box::new(move |transaction| {
            let (connection, clock) = match transaction {
                Ok(open) => open,
                Err(failure) => {
                    let _ = reply.send(Err(failure.into_error("could not begin a transaction")));
                    return Box::new(|_| ());
                }
            };
            // The savepoint statements stay prepared instead of being parsed again for every job.
            let run = |sql: &str| connection.prepare_cached(sql).and_then(|mut statement| statement.execute([]));
            let outcome = match run("SAVEPOINT job") {
                Ok(_) => {
                    let outcome = work(connection, clock);
                    let ended = if outcome.is_ok() {
                        run("RELEASE job")
                    } else {
                        run("ROLLBACK TO job").and_then(|_| run("RELEASE job"))
                    };
                    match ended {
                        Ok(_) => outcome,
                        Err(error) => Err(StoreError::from(error)),
                    }
                }
                Err(error) => Err(StoreError::from(error)),
            };
            Box::new(move |committed| {
                let outcome = match committed {
                    Ok(()) => outcome,
                    Err(failure) => Err(failure.into_error("commit failed")),
                };
                let _ = reply.send(outcome);
            })
        });
        self.jobs.as_ref().ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)?;
        let outcome = answer.recv().map_err(|_| StoreError::Closed)?;
        match &outcome {
            Err(error) if error.is_storage_full() => {
                let _ = self.storage_full_since.compare_exchange(
                    0,
                    super::now_micros(),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
            // A committed write: there is space.
            Ok(_) => self.storage_full_since.store(0, Ordering::SeqCst),
            Err(_) => {}
        }
        outcome
    }

    /// Since when writes have been failing for lack of space, if they are.
    pub fn storage_full_since(&self) -> Option<Timestamp> {
        let since = self.storage_full_since.load(Ordering::SeqCst);
        (since != 0).then_some(Timestamp(since))
    }

    /// Says that space has come back (a probe could write).
    pub fn storage_recovered(&self) {
        self.storage_full_since.store(0, Ordering::SeqCst);
    }

    /// The latest instant up to which every commit is visible to a reader that starts now.
    pub fn horizon(&self, now: i64) -> i64 {
        let floor = self.floor.load(Ordering::SeqCst);
        now.min(floor.saturating_sub(1))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(connection: Connection, jobs: mpsc::Receiver<Job>, floor: Arc<AtomicI64>, max_batch: usize, last: i64) {
    let mut clock = WriterClock { last };
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Publish the floor before any commit time of this group is taken (see the module comment).
        floor.store(clock.last + 1, Ordering::SeqCst);
        let finishes: Vec<Finish>;
        let committed = match connection.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                finishes = batch.into_iter().map(|job| job(Ok((&connection, &mut clock)))).collect();
                match connection.execute_batch("COMMIT") {
                    Ok(()) => Ok(()),
                    Err(error) => {
                        tracing::error!(%error, "group commit failed");
                        let _ = connection.execute_batch("ROLLBACK");
                        Err(TransactionFailure::of(&error))
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "could not begin a write transaction");
                let failure = TransactionFailure::of(&error);
                finishes = batch.into_iter().map(|job| job(Err(failure.clone()))).collect();
                Err(failure)
            }
        };
        floor.store(IDLE, Ordering::SeqCst);
        for finish in finishes {
            finish(committed.clone());
        }
    }
}
