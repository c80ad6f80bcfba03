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

type Finish = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A job gets the open transaction, or the reason none could be begun.
type Job = Box<dyn FnOnce(std::result::Result<(&Connection, &mut WriterClock), String>) -> Finish + Send>;

pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    floor: Arc<AtomicI64>,
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
        Writer { jobs: Some(sender), floor, thread: Some(thread) }
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
                Err(message) => {
                    let _ = reply.send(Err(StoreError::Corrupt(format!("could not begin a transaction: {message}"))));
                    return Box::new(|_| ());
                }
            };
            let outcome = match connection.execute_batch("SAVEPOINT job") {
                Ok(()) => {
                    let outcome = work(connection, clock);
                    let end = if outcome.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
                    match connection.execute_batch(end) {
                        Ok(()) => outcome,
                        Err(error) => Err(StoreError::Database(error)),
                    }
                }
                Err(error) => Err(StoreError::Database(error)),
            };
            Box::new(move |committed| {
                let outcome = match committed {
                    Ok(()) => outcome,
                    Err(message) => Err(StoreError::Corrupt(format!("commit failed: {message}"))),
                };
                let _ = reply.send(outcome);
            })
        });
        self.jobs.as_ref().ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
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
                        Err(error.to_string())
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "could not begin a write transaction");
                let message = error.to_string();
                finishes = batch.into_iter().map(|job| job(Err(message.clone()))).collect();
                Err(message)
            }
        };
        floor.store(IDLE, Ordering::SeqCst);
        for finish in finishes {
            finish(committed.clone());
        }
    }
}
