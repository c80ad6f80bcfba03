//! Connections to PostgreSQL: a statement cache per connection, the `Db` handle the queries run on,
//! and the pool of reader threads.
//!
//! Every connection lives on a thread of its own (the writer's, or one of the readers'): the
//! synchronous `postgres` client runs a small runtime of its own, which may not be started from a
//! thread that drives an async runtime, and the store's methods are called from both kinds.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};

use crate::{Result, StoreError};

/// PostgreSQL's errors as the store's: a full disk is `StorageFull`, anything else `Database` with the
/// server's code and message.
impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> StoreError {
        StoreError::from(&error)
    }
}

/// Whether an error is one PostgreSQL asks to retry (a deadlock, a serialization failure).
pub fn is_retryable(error: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    error
        .code()
        .is_some_and(|code| *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// Prepared statements of one connection, by SQL text.
#[derive(Default)]
pub struct Cache {
    statements: HashMap<String, Statement>,
}

impl Cache {
    fn clear(&mut self) {
        self.statements.clear();
    }
}

/// Parameters of one statement.
pub type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A transaction (or a savepoint in one) with its connection's statement cache.
pub struct Db<'t, 'c> {
    pub(super) transaction: &'t mut Transaction<'c>,
    pub(super) cache: &'t mut Cache,
    /// The last error PostgreSQL returned to this handle, to tell a retryable one apart.
    pub(super) last_error: Option<postgres::Error>,
}

impl Db<'_, '_> {
    fn statement(&mut self, sql: &str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(statement) = self.cache.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.transaction.prepare(sql)?;
        if self.cache.statements.len() >= 512 {
            self.cache.clear();
        }
        self.cache.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn note<T>(&mut self, outcome: std::result::Result<T, postgres::Error>) -> Result<T> {
        outcome.map_err(|error| {
            let mapped = StoreError::from(&error);
            self.last_error = Some(error);
            mapped
        })
    }

    pub fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let outcome = self.statement(sql).and_then(|statement| self.transaction.query(&statement, params));
        self.note(outcome)
    }

    pub fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row> {
        let outcome = self.statement(sql).and_then(|statement| self.transaction.query_one(&statement, params));
        self.note(outcome)
    }

    pub fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let outcome = self.statement(sql).and_then(|statement| self.transaction.query_opt(&statement, params));
        self.note(outcome)
    }

    /// Runs a statement; how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<usize> {
        let outcome = self.statement(sql).and_then(|statement| self.transaction.execute(&statement, params));
        self.note(outcome).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl From<&postgres::Error> for StoreError {
    fn from(error: &postgres::Error) -> StoreError {
        match error.as_db_error() {
            Some(db) if *db.code() == postgres::error::SqlState::DISK_FULL => {
                StoreError::StorageFull(db.message().to_string())
            }
            Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
            None => StoreError::Database(error.to_string()),
        }
    }
}

/// A connection that reconnects when it finds itself closed.
pub struct Connection {
    url: String,
    client: Option<Client>,
    pub cache: Cache,
}

impl Connection {
    pub fn new(url: &str) -> Connection {
        Connection { url: url.to_string(), client: None, cache: Cache::default() }
    }

    /// The open client, connecting (again) if there is none or it has closed.
    pub fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.cache.clear();
            let client = Client::connect(&self.url, NoTls)?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or(StoreError::Closed)
    }

    pub fn parts(&mut self) -> Result<(&mut Client, &mut Cache)> {
        self.client()?;
        match self.client.as_mut() {
            Some(client) => Ok((client, &mut self.cache)),
            None => Err(StoreError::Closed),
        }
    }
}

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// Reader threads, each with its connection; a read runs in one snapshot (repeatable read, read only).
pub struct Readers {
    jobs: Mutex<Option<mpsc::Sender<ReadJob>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Readers {
    pub fn start(url: &str, count: usize) -> Readers {
        let (sender, receiver) = mpsc::channel::<ReadJob>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = (0..count.max(1))
            .map(|index| {
                let receiver = Arc::clone(&receiver);
                let mut connection = Connection::new(url);
                thread::Builder::new()
                    .name(format!("karavan-pg-reader-{index}"))
                    .spawn(move || {
                        loop {
                            let job = match receiver.lock() {
                                Ok(receiver) => receiver.recv(),
                                Err(_) => return,
                            };
                            match job {
                                Ok(job) => job(&mut connection),
                                Err(_) => return,
                            }
                        }
                    })
                    .expect("a reader thread starts")
            })
            .collect();
        Readers { jobs: Mutex::new(Some(sender)), threads: Mutex::new(threads) }
    }

    /// Runs `work` in a read-only snapshot on a reader's connection. With `now`, it first asks the
    /// database for its horizon (before the snapshot is taken, so that every commit up to the horizon
    /// is in the snapshot) and hands `work` the horizon as of `now` (see [`horizon_at`]).
    pub fn run<T: Send + 'static>(
        &self,
        horizon: Option<i64>,
        work: impl FnOnce(&mut Db<'_, '_>, i64) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel::<Result<T>>(1);
        let job: ReadJob = Box::new(move |connection| {
            let _ = reply.send(read_once(connection, horizon, work));
        });
        {
            let jobs = self.jobs.lock().map_err(|_| StoreError::Closed)?;
            jobs.as_ref().ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)?;
        }
        answer.recv().map_err(|_| StoreError::Closed)?
    }
}

fn read_once<T>(
    connection: &mut Connection,
    horizon: Option<i64>,
    work: impl FnOnce(&mut Db<'_, '_>, i64) -> Result<T>,
) -> Result<T> {
    if connection.parts().is_err() {
        // The database may be restarting: one more try after a pause.
        thread::sleep(Duration::from_millis(200));
    }
    let (client, cache) = connection.parts()?;
    let at = match horizon {
        Some(now) => {
            let row = client.query_one("SELECT locked, at FROM karavan_horizon()", &[])?;
            horizon_at(now, row.try_get(0)?, row.try_get(1)?)
        }
        None => i64::MAX,
    };
    let mut transaction =
        client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
    let outcome = {
        let mut db = Db { transaction: &mut transaction, cache, last_error: None };
        work(&mut db, at)
    };
    transaction.commit()?;
    outcome
}

/// The horizon of a read at `now` (microseconds, the caller's clock), from what `karavan_horizon()`
/// said: while a writer holds the commit clock, no later than the last committed commit time; else
/// `now`, except that a `now` up to five seconds past the database's clock is taken to be this node's
/// clock running ahead, and the database's clock is used (a commit could still take a time in
/// between). A `now` further ahead is a view of a later moment, as the embedded store gives it.
pub fn horizon_at(now: i64, locked: bool, at: i64) -> i64 {
    const SKEW: i64 = 5_000_000;
    if locked || (now > at && now - at <= SKEW) { now.min(at) } else { now }
}

impl Drop for Readers {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut threads) = self.threads.lock() {
            for thread in threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}
