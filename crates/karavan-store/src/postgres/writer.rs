//! The writer thread of a PostgreSQL store (one per node), with group commit, and the commit clock
//! shared by every node.
//!
//! Like the SQLite writer, it takes every job waiting when a transaction starts, runs each in its own
//! savepoint and answers them all after the one commit. A job that PostgreSQL aborts for a deadlock
//! or a serialization failure is rolled back to its savepoint and run again.
//!
//! The ordering guarantee across nodes: a group that stores versions or deliveries (a "clocked" job)
//! first takes the clock's advisory lock, then reads `store_clock` and the database's clock, and keeps
//! the lock until its transaction has ended. Its commit times, and the sequence numbers it draws, are
//! therefore later than those of every transaction that committed before it, on any node, and no
//! other clocked transaction runs meanwhile: numbers and times are handed out in commit order, so a
//! reader that has seen `seq` N has seen every smaller one, and `karavan_horizon()` (see `schema.rs`)
//! can say up to when every commit is visible.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use karavan_domain::Timestamp;

use super::db::{Connection, Db, is_retryable};
use super::schema::CLOCK_KEY;
use crate::{Result, StoreError};

/// Commit times of one group, while it holds the clock's lock.
pub struct Clock {
    locked: bool,
    last: i64,
    /// The database's clock when the lock was taken, and when that was here.
    base: i64,
    taken: Instant,
    used: bool,
}

impl Clock {
    fn unlocked() -> Clock {
        Clock { locked: false, last: 0, base: 0, taken: Instant::now(), used: false }
    }

    /// A commit time later than every one before it, on any node, and than the database's clock when
    /// the group took the lock. Only a clocked job may ask.
    pub fn next(&mut self) -> Result<Timestamp> {
        if !self.locked {
            return Err(StoreError::Database("internal: a commit time was asked for outside a clocked job".into()));
        }
        let elapsed = i64::try_from(self.taken.elapsed().as_micros()).unwrap_or(i64::MAX);
        let now = self.base.saturating_add(elapsed).saturating_add(1);
        self.last = now.max(self.last + 1);
        self.used = true;
        Ok(Timestamp(self.last))
    }
}

type Finish = Box<dyn FnOnce(std::result::Result<(), StoreError>) + Send>;
/// What a job is given: the group's open transaction and clock, or why there is none.
type Opened<'a, 't, 'c> = std::result::Result<(&'a mut Db<'t, 'c>, &'a mut Clock), StoreError>;

/// How a job joins a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// With the other plain jobs waiting, in one transaction.
    Plain,
    /// With the other clocked jobs, in one transaction that holds the commit clock.
    Clocked,
    /// In a transaction of its own: a row every node takes in turn (a named lease), held for one
    /// statement instead of for a whole group, where it would wait behind (and be waited on by) other
    /// nodes' groups taking other rows in another order.
    Alone,
}

struct Job {
    kind: Kind,
    run: Box<dyn FnOnce(Opened<'_, '_, '_>) -> Finish + Send>,
}

pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    storage_full_since: AtomicI64,
    thread: Option<thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(connection: Connection, max_batch: usize) -> Writer {
        let (sender, receiver) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("karavan-pg-writer".to_string())
            .spawn(move || write_loop(connection, receiver, max_batch))
            .expect("the writer thread starts");
        Writer { jobs: Some(sender), storage_full_since: AtomicI64::new(0), thread: Some(thread) }
    }

    /// Runs `work` in the next group's transaction, in its own savepoint, and returns its result once
    /// the group has committed.
    pub fn run<T: Send + 'static>(&self, work: impl FnMut(&mut Db<'_, '_>) -> Result<T> + Send + 'static) -> Result<T> {
        let mut work = work;
        self.submit(Kind::Plain, move |db, _| work(db))
    }

    /// Like [`Writer::run`], in a transaction of its own (see [`Kind::Alone`]).
    pub fn run_alone<T: Send + 'static>(
        &self,
        work: impl FnMut(&mut Db<'_, '_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut work = work;
        self.submit(Kind::Alone, move |db, _| work(db))
    }

    /// Like [`Writer::run`], for work that stores versions or deliveries: its group holds the commit
    /// clock, and `work` may ask it for commit times.
    pub fn run_clocked<T: Send + 'static>(
        &self,
        work: impl FnMut(&mut Db<'_, '_>, &mut Clock) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.submit(Kind::Clocked, work)
    }

    fn submit<T: Send + 'static>(
        &self,
        kind: Kind,
        mut work: impl FnMut(&mut Db<'_, '_>, &mut Clock) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel::<Result<T>>(1);
        let run = Box::new(move |open: Opened<'_, '_, '_>| -> Finish {
            let (db, clock) = match open {
                Ok(open) => open,
                Err(error) => {
                    let _ = reply.send(Err(error));
                    return Box::new(|_| ());
                }
            };
            let outcome = run_in_savepoint(db, clock, &mut work);
            Box::new(move |committed| {
                let _ = reply.send(match committed {
                    Ok(()) => outcome,
                    Err(error) => Err(error),
                });
            })
        });
        self.jobs.as_ref().ok_or(StoreError::Closed)?.send(Job { kind, run }).map_err(|_| StoreError::Closed)?;
        let outcome = answer.recv().map_err(|_| StoreError::Closed)?;
        match &outcome {
            Err(error) if error.is_storage_full() => {
                let now = super::now_micros();
                let _ = self.storage_full_since.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
            }
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
}

/// Runs one job in a savepoint, again (up to a few times) when PostgreSQL aborted it for a deadlock or
/// a serialization failure.
fn run_in_savepoint<T>(
    db: &mut Db<'_, '_>,
    clock: &mut Clock,
    work: &mut impl FnMut(&mut Db<'_, '_>, &mut Clock) -> Result<T>,
) -> Result<T> {
    let mut tries = 0;
    loop {
        tries += 1;
        let mut savepoint = db.transaction.savepoint("job")?;
        let mut inner = Db { transaction: &mut savepoint, cache: db.cache, last_error: None };
        let outcome = work(&mut inner, clock);
        let retry = inner.last_error.as_ref().is_some_and(is_retryable);
        match outcome {
            Ok(value) => {
                savepoint.commit()?;
                return Ok(value);
            }
            Err(error) => {
                savepoint.rollback()?;
                db.transaction.batch_execute("RELEASE job")?;
                if !(retry && tries < 5) {
                    return Err(error);
                }
                thread::sleep(Duration::from_millis(5 * tries));
            }
        }
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

/// The tables whose statistics decide the plans of the publish path and the engines' reads.
const ANALYZED: &str = "ANALYZE items, versions, version_subjects, outbox, deliveries, translation_jobs";

/// Keeps the planner's statistics in step with a growing store, whether or not the server's autovacuum
/// runs (it may be off, or slower than a burst of publishes): prepared statements keep the plan made
/// for the table as it was (a sequential scan of a nearly empty `items` table stays one at a million
/// rows, and a publish then costs a scan of every item), and an `ANALYZE` makes them plan again. The
/// writer analyses after a number of stored versions that doubles each time, up to every 100,000.
struct Statistics {
    since: usize,
    next: usize,
}

impl Statistics {
    fn new() -> Statistics {
        Statistics { since: 0, next: 500 }
    }

    fn count(&mut self, connection: &mut Connection, written: usize) {
        self.since += written;
        if self.since < self.next {
            return;
        }
        self.since = 0;
        self.next = (self.next * 2).min(100_000);
        let started = Instant::now();
        match connection.client().and_then(|client| Ok(client.batch_execute(ANALYZED)?)) {
            Ok(()) => tracing::debug!(elapsed = ?started.elapsed(), "statistics of the store's tables updated"),
            Err(error) => tracing::warn!(%error, "could not update the statistics of the store's tables"),
        }
    }
}

fn write_loop(mut connection: Connection, jobs: mpsc::Receiver<Job>, max_batch: usize) {
    let mut statistics = Statistics::new();
    // Statistics as they are at start-up (a store opened after a restore or a bulk load).
    statistics.count(&mut connection, statistics.next);
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Work that needs no commit time commits on its own, so that the clock's lock (which serialises
        // every node's clocked groups) is held only for the groups that store versions or deliveries.
        let mut groups: Vec<(bool, Vec<Job>)> = Vec::new();
        let (mut plain, mut clocked) = (Vec::new(), Vec::new());
        for job in batch {
            match job.kind {
                Kind::Alone => groups.push((false, vec![job])),
                Kind::Plain => plain.push(job),
                Kind::Clocked => clocked.push(job),
            }
        }
        groups.push((false, plain));
        groups.push((true, clocked));
        for (is_clocked, mut group) in groups {
            if group.is_empty() {
                continue;
            }
            let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
            let committed = write_group(&mut connection, is_clocked, &mut group, &mut finishes);
            if let Err(error) = &committed {
                tracing::error!(%error, "a PostgreSQL write transaction failed");
            }
            // Jobs that never ran (the transaction could not begin) are told why.
            for job in group.drain(..) {
                let error = match &committed {
                    Err(error) => clone_error(error),
                    Ok(()) => StoreError::CommitFailed("the transaction ended before the job ran".into()),
                };
                (job.run)(Err(error))(Ok(()));
            }
            let written = if is_clocked && committed.is_ok() { finishes.len() } else { 0 };
            for finish in finishes {
                finish(committed.as_ref().map(|_| ()).map_err(clone_error));
            }
            if written > 0 {
                statistics.count(&mut connection, written);
            }
        }
    }
}

fn clone_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::StorageFull(message) => StoreError::StorageFull(message.clone()),
        other => StoreError::CommitFailed(other.to_string()),
    }
}

/// Begins a transaction (taking the clock for a clocked group), runs the jobs, commits.
fn write_group(
    connection: &mut Connection,
    clocked: bool,
    batch: &mut Vec<Job>,
    finishes: &mut Vec<Finish>,
) -> Result<()> {
    if connection.parts().is_err() {
        thread::sleep(Duration::from_millis(200));
    }
    let (client, cache) = connection.parts()?;
    let mut transaction = client.transaction()?;
    let mut clock = Clock::unlocked();
    if clocked {
        transaction.execute(&format!("SELECT pg_advisory_xact_lock({CLOCK_KEY})"), &[])?;
        let row = transaction.query_one(
            "SELECT last_at, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint FROM store_clock",
            &[],
        )?;
        clock = Clock { locked: true, last: row.get(0), base: row.get(1), taken: Instant::now(), used: false };
    }
    {
        let mut db = Db { transaction: &mut transaction, cache, last_error: None };
        for job in batch.drain(..) {
            finishes.push((job.run)(Ok((&mut db, &mut clock))));
        }
    }
    if clock.used {
        transaction.execute("UPDATE store_clock SET last_at = $1", &[&clock.last])?;
    }
    transaction.commit()?;
    Ok(())
}
