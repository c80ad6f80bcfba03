//! Backups of the SQLite store: a consistent copy of the database taken while a server keeps writing,
//! the checks a file passes before it is restored, its restore into a data directory, and the lock by
//! which a running server keeps a restore out.
//!
//! A copy is made with SQLite's `VACUUM INTO` on a read-only connection: it reads one snapshot in one
//! read transaction, which in WAL mode neither blocks the server's writer nor sees half of a commit.
//! Every file is written under a temporary name beside its destination, synced, and renamed into place
//! only when complete, so a failure (a full disk, a kill) never leaves a half-written backup or store.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{SqliteStore, schema};
use crate::{Result, StoreError};

/// The database's file name in the data directory.
pub const DATABASE_FILE: &str = "karavan.db";
/// What a restore renames the database it replaces to, so that a mistaken restore can be undone.
pub const BEFORE_RESTORE_FILE: &str = "karavan.db.before-restore";
/// The file in the data directory that a running `karavan serve` holds an exclusive lock on.
pub const SERVE_LOCK_FILE: &str = ".serve.lock";

/// How long reading the database waits for another connection's lock (a checkpoint, a migration).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A database file a backup or restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub bytes: u64,
    /// The highest store sequence number in it (0: no versions).
    pub head_seq: i64,
    pub items: u64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The data directory's database, now the backup's content.
    pub restored: BackupSummary,
    /// Where the database it replaced was kept (none when the directory had none).
    pub replaced: Option<PathBuf>,
    /// The derived indexes removed (those that existed), to be rebuilt from the store.
    pub removed: Vec<PathBuf>,
}

/// An exclusive advisory lock on the data directory's [`SERVE_LOCK_FILE`], held by `karavan serve` for
/// its whole life (and by a restore while it runs); released when dropped or when the process ends,
/// however it ends.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

impl ServeLock {
    /// Takes the lock (creating the directory and the file if needed); `Conflict` when another process
    /// holds it.
    pub fn acquire(data_dir: &Path) -> Result<ServeLock> {
        std::fs::create_dir_all(data_dir).map_err(|error| io_at(data_dir, error))?;
        let path = data_dir.join(SERVE_LOCK_FILE);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| io_at(&path, error))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { String::new() } else { format!(" (process {holder})") };
                return Err(StoreError::Conflict {
                    code: "data_dir_in_use",
                    message: format!(
                        "{} is in use: a running `karavan serve` or `karavan restore`{holder} holds {}",
                        data_dir.display(),
                        path.display()
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io_at(&path, error)),
        }
        // The holder's process id, for the message above; only informative (the lock is what counts).
        let written = file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id()));
        if let Err(error) = written {
            tracing::warn!(%error, path = %path.display(), "could not write the process id into the lock file");
        }
        Ok(ServeLock { _file: file })
    }
}

impl SqliteStore {
    /// Writes a consistent copy of the store to `to` while the store (and other processes) may keep
    /// writing: the database as of one moment, every acknowledged publish before it included. Refuses an
    /// existing `to` unless `overwrite`. The copy is a single file (no write-ahead log beside it).
    pub fn backup_to(&self, to: &Path, overwrite: bool) -> Result<BackupSummary> {
        if !overwrite && to.exists() {
            return Err(exists(to));
        }
        let partial = partial_beside(to)?;
        let outcome = open_read_only(&self.path)
            .and_then(|source| copy_into(&source, &partial))
            .and_then(|summary| install(&partial, to, overwrite).map(|()| summary));
        if outcome.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        let summary = outcome?;
        Ok(BackupSummary { path: to.to_path_buf(), ..summary })
    }
}

/// Replaces the store in `data_dir` with the backup `from`, refusing while a server runs on the
/// directory (it holds [`SERVE_LOCK_FILE`]). `from` must be a sound Karavan store (SQLite's integrity
/// check, a schema version this build knows, a `versions` table). The database it replaces is kept as
/// [`BEFORE_RESTORE_FILE`]; the `derived` paths (indexes built from the store, files or directories)
/// are removed, so that the next server start rebuilds them from the restored store.
pub fn sqlite_restore(data_dir: &Path, from: &Path, derived: &[PathBuf]) -> Result<RestoreReport> {
    let _lock = ServeLock::acquire(data_dir)?;
    if !from.is_file() {
        return Err(StoreError::NotFound(format!("no file {}", from.display())));
    }
    let source = open_read_only(from).map_err(|error| not_a_store(from, &error.to_string()))?;
    check_store(&source, from)?;
    let database = data_dir.join(DATABASE_FILE);
    let partial = partial_beside(&database)?;
    let copied = copy_into(&source, &partial);
    drop(source);
    let restored = match copied {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    // The indexes go before the database is swapped: stopped in between, the old store is left without
    // indexes (rebuilt at the next start), never the restored one with indexes of the old.
    let swapped = remove_derived(derived).and_then(|removed| Ok((removed, set_aside_database(data_dir)?)));
    let (removed, replaced) = match swapped {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    std::fs::rename(&partial, &database).map_err(|error| io_at(&database, error))?;
    sync_dir(data_dir)?;
    Ok(RestoreReport { restored: BackupSummary { path: database, ..restored }, replaced, removed })
}

/// Removes each of `paths` (a directory with all it holds) that exists; returns those removed.
fn remove_derived(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for path in paths {
        let outcome = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
            Ok(_) => std::fs::remove_file(path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => Err(error),
        };
        outcome.map_err(|error| io_at(path, error))?;
        removed.push(path.clone());
    }
    Ok(removed)
}

/// Checks that `connection` holds a Karavan store this build can open, and that SQLite finds it sound.
fn check_store(connection: &Connection, path: &Path) -> Result<()> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|error| not_a_store(path, &error.to_string()))?;
    let newest = i64::try_from(schema::MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version < 1 {
        return Err(not_a_store(path, "it has no Karavan schema (user_version 0)"));
    }
    if version > newest {
        return Err(StoreError::Invalid(format!(
            "{} has schema version {version}, newer than this karavan's {newest}: restore it with the karavan that \
             made it (or a newer one)",
            path.display()
        )));
    }
    let has_versions: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'versions')",
            [],
            |row| row.get(0),
        )
        .map_err(|error| not_a_store(path, &error.to_string()))?;
    if !has_versions {
        return Err(not_a_store(path, "it has no versions table"));
    }
    let mut statement = connection.prepare("PRAGMA integrity_check")?;
    let problems: Vec<String> = statement.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
    if problems != ["ok"] {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        return Err(StoreError::Invalid(format!(
            "{} fails SQLite's integrity check: {}",
            path.display(),
            shown.join("; ")
        )));
    }
    Ok(())
}

/// Writes the database `source` reads (one snapshot) into the new file `to`, as a single file without a
/// write-ahead log, synced to disk.
fn copy_into(source: &Connection, to: &Path) -> Result<BackupSummary> {
    let text = to.to_str().ok_or_else(|| StoreError::Invalid(format!("{} is not a UTF-8 path", to.display())))?;
    source.execute("VACUUM INTO ?1", [text])?;
    let (head_seq, items) = {
        let copy =
            Connection::open_with_flags(to, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        // A backup is one self-contained file: the rollback journal, not WAL (the store turns WAL on
        // again when it opens the restored file).
        let _: String = copy.pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))?;
        copy.query_row("SELECT COALESCE(MAX(seq), 0), (SELECT COUNT(*) FROM items) FROM versions", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })?
    };
    // VACUUM INTO does not sync what it wrote.
    let file = File::open(to).map_err(|error| io_at(to, error))?;
    file.sync_all().map_err(|error| io_at(to, error))?;
    let bytes = file.metadata().map_err(|error| io_at(to, error))?.len();
    Ok(BackupSummary { path: to.to_path_buf(), bytes, head_seq, items: u64::try_from(items).unwrap_or(0) })
}

/// Moves the complete file `partial` to `to` (replacing it only when `overwrite`) and syncs the directory.
fn install(partial: &Path, to: &Path, overwrite: bool) -> Result<()> {
    if overwrite {
        std::fs::rename(partial, to).map_err(|error| io_at(to, error))?;
    } else {
        // A hard link fails if `to` exists, where a rename would replace a file made since the check.
        match std::fs::hard_link(partial, to) {
            Ok(()) => std::fs::remove_file(partial).map_err(|error| io_at(partial, error))?,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(to)),
            // A file system without hard links: checked above, renamed now.
            Err(_) => std::fs::rename(partial, to).map_err(|error| io_at(to, error))?,
        }
    }
    sync_dir(parent_of(to))
}

/// Renames the data directory's database (and a write-ahead log that could not be folded into it) to
/// [`BEFORE_RESTORE_FILE`], replacing an earlier one; removes its shared-memory file.
fn set_aside_database(data_dir: &Path) -> Result<Option<PathBuf>> {
    let database = data_dir.join(DATABASE_FILE);
    let before = data_dir.join(BEFORE_RESTORE_FILE);
    // A log left beside the kept name would be read as part of the database renamed to it.
    for stale in [with_suffix(&before, "-wal"), with_suffix(&before, "-shm"), before.clone()] {
        remove_if_exists(&stale)?;
    }
    let exists = database.exists();
    if exists {
        // Fold the write-ahead log into the file, so that the copy kept is one file. The last connection
        // to close removes the log; if it cannot be opened, its log moves with it below.
        let folded = Connection::open_with_flags(&database, OpenFlags::SQLITE_OPEN_READ_WRITE).and_then(|connection| {
            connection.busy_timeout(BUSY_TIMEOUT)?;
            connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        });
        if let Err(error) = folded {
            tracing::warn!(%error, "could not fold the replaced database's write-ahead log; it is kept beside it");
        }
        std::fs::rename(&database, &before).map_err(|error| io_at(&database, error))?;
    }
    let wal = with_suffix(&database, "-wal");
    if exists && wal.exists() {
        std::fs::rename(&wal, with_suffix(&before, "-wal")).map_err(|error| io_at(&wal, error))?;
    }
    // Neither file may stay beside the restored database: SQLite would read them as its own.
    remove_if_exists(&wal)?;
    remove_if_exists(&with_suffix(&database, "-shm"))?;
    Ok(exists.then_some(before))
}

fn open_read_only(path: &Path) -> Result<Connection> {
    let connection =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}

/// A new temporary name in `to`'s directory (absolute, so that SQLite never reads it as a URI).
fn partial_beside(to: &Path) -> Result<PathBuf> {
    let name = to
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| StoreError::Invalid(format!("{} does not name a file", to.display())))?;
    let dir = std::path::absolute(parent_of(to)).map_err(|error| io_at(to, error))?;
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).map_err(|error| StoreError::Io(std::io::Error::other(error.to_string())))?;
    let random: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(dir.join(format!(".{name}.partial-{random}")))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io_at(path, error)),
        _ => Ok(()),
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(|error| io_at(dir, error))
}

fn exists(path: &Path) -> StoreError {
    StoreError::Conflict {
        code: "exists",
        message: format!("{} already exists (give --force to replace it)", path.display()),
    }
}

fn not_a_store(path: &Path, why: &str) -> StoreError {
    StoreError::Invalid(format!("{} is not a Karavan store: {why}", path.display()))
}

fn io_at(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io(std::io::Error::new(error.kind(), format!("{}: {error}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use karavan_domain::{CountryCode, LanguageTag, MemberId, MemberName};

    use super::*;
    use crate::prelude::*;
    use crate::{NewMember, NewVersion, SqliteConfig};

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(SqliteConfig::new(dir)).unwrap()
    }

    fn member(store: &SqliteStore) -> MemberId {
        store
            .add_member(NewMember {
                name: MemberName::parse("Kazinform").unwrap(),
                country: CountryCode::parse("KZ").unwrap(),
                languages: vec![LanguageTag::parse("kk").unwrap()],
                contact: None,
            })
            .unwrap()
            .id
    }

    fn story(owner: &MemberId, uri: &str) -> NewVersion {
        NewVersion::headline_only(owner, uri, &format!("headline of {uri}"))
    }

    /// The uris of the items stored in `database`, read straight from the file.
    fn uris(database: &Path) -> Vec<String> {
        let connection = open_read_only(database).unwrap();
        let mut statement = connection.prepare("SELECT uri FROM items ORDER BY uri").unwrap();
        statement.query_map([], |row| row.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_backup_taken_while_the_store_writes_holds_everything_acknowledged_before_it() {
        let data = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let store = Arc::new(open(data.path()));
        let owner = member(&store);
        for n in 0..50 {
            store.publish(story(&owner, &format!("urn:before:{n:03}"))).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (store, owner, stop) = (Arc::clone(&store), owner.clone(), Arc::clone(&stop));
            let acknowledged = Arc::clone(&acknowledged);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    store.publish(story(&owner, &format!("urn:during:{n:05}"))).unwrap();
                    n += 1;
                    acknowledged.store(n, Ordering::Release);
                }
                n
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while acknowledged.load(Ordering::Acquire) < 3 {
            assert!(std::time::Instant::now() < deadline, "the writer publishes");
            std::thread::yield_now();
        }
        let target = out.path().join("karavan-backup.db");
        let before_backup = acknowledged.load(Ordering::Acquire);
        let summary = store.backup_to(&target, false).unwrap();
        stop.store(true, Ordering::Relaxed);
        let during = writer.join().unwrap();

        assert_eq!(summary.path, target);
        assert_eq!(summary.bytes, std::fs::metadata(&target).unwrap().len());
        let copied = uris(&target);
        assert_eq!(summary.items, copied.len() as u64);
        assert!(copied.len() >= 50 + before_backup, "every item acknowledged before the backup is in it");
        for n in 0..50 {
            assert!(copied.contains(&format!("urn:before:{n:03}")));
        }
        // One snapshot: the items written during the backup that it holds are a prefix of them.
        let during_copied: Vec<&String> = copied.iter().filter(|uri| uri.starts_with("urn:during:")).collect();
        for (n, uri) in during_copied.iter().enumerate() {
            assert_eq!(**uri, format!("urn:during:{n:05}"));
        }
        assert!(during_copied.len() <= during);
        let head: i64 =
            open_read_only(&target).unwrap().query_row("SELECT MAX(seq) FROM versions", [], |r| r.get(0)).unwrap();
        assert_eq!(summary.head_seq, head);
        // A single file: no log, no partial file left beside it.
        assert_eq!(listing(out.path()), ["karavan-backup.db"]);
        let mode: String =
            open_read_only(&target).unwrap().query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "delete");
    }

    #[test]
    fn a_backup_never_replaces_a_file_unless_told_to() {
        let data = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let store = open(data.path());
        let owner = member(&store);
        store.publish(story(&owner, "urn:one")).unwrap();
        let target = out.path().join("backup.db");
        std::fs::write(&target, "precious").unwrap();

        let error = store.backup_to(&target, false).unwrap_err();
        assert!(matches!(error, StoreError::Conflict { code: "exists", .. }), "{error}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert_eq!(listing(out.path()), ["backup.db"]);

        let summary = store.backup_to(&target, true).unwrap();
        assert_eq!((summary.items, uris(&target)), (1, vec!["urn:one".to_string()]));
        assert_eq!(listing(out.path()), ["backup.db"]);
    }

    #[test]
    fn a_failed_backup_leaves_nothing_behind() {
        let data = tempfile::tempdir().unwrap();
        let store = open(data.path());
        let missing = data.path().join("no-such-dir").join("backup.db");
        assert!(store.backup_to(&missing, false).is_err());
        assert!(!missing.exists());
        assert_eq!(listing(data.path()).iter().filter(|name| name.contains("partial")).count(), 0);
    }

    #[test]
    fn a_restore_replaces_the_database_keeps_the_old_one_and_removes_derived_indexes() {
        let old = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let backup = out.path().join("backup.db");
        {
            let store = open(old.path());
            let owner = member(&store);
            store.publish(story(&owner, "urn:backed-up")).unwrap();
            store.backup_to(&backup, false).unwrap();
        }
        // The directory restored into has a database of its own (with writes still in its log, as after
        // a crash) and derived indexes.
        let live = tempfile::tempdir().unwrap();
        let store = open(live.path());
        let owner = member(&store);
        store.publish(story(&owner, "urn:replaced")).unwrap();
        let data = tempfile::tempdir().unwrap();
        for name in [DATABASE_FILE, "karavan.db-wal"] {
            std::fs::copy(live.path().join(name), data.path().join(name)).unwrap();
        }
        drop(store);
        assert!(std::fs::metadata(data.path().join("karavan.db-wal")).unwrap().len() > 0);
        let search = data.path().join("search");
        std::fs::create_dir_all(search.join("segments")).unwrap();
        std::fs::write(search.join("segments").join("meta.json"), "{}").unwrap();
        let vectors = data.path().join("vectors");
        std::fs::create_dir_all(&vectors).unwrap();
        // A server holds the data directory through the serve lock.
        let lock = ServeLock::acquire(data.path()).unwrap();
        let error = sqlite_restore(data.path(), &backup, &[search.clone(), vectors.clone()]).unwrap_err();
        assert!(matches!(error, StoreError::Conflict { code: "data_dir_in_use", .. }), "{error}");
        assert!(error.to_string().contains(&std::process::id().to_string()), "{error}");
        assert!(search.exists());
        drop(lock);

        let missing = data.path().join("never-made");
        let report = sqlite_restore(data.path(), &backup, &[search.clone(), vectors.clone(), missing]).unwrap();
        let database = data.path().join(DATABASE_FILE);
        assert_eq!(report.restored.path, database);
        assert_eq!((report.restored.items, report.restored.head_seq), (1, 1));
        assert_eq!(report.replaced, Some(data.path().join(BEFORE_RESTORE_FILE)));
        assert_eq!(report.removed, [search.clone(), vectors.clone()]);
        assert!(!search.exists() && !vectors.exists());
        // The replaced database's log was folded into it: two single files, nothing else left over.
        assert_eq!(listing(data.path()), [SERVE_LOCK_FILE, DATABASE_FILE, BEFORE_RESTORE_FILE]);
        assert_eq!(uris(&database), ["urn:backed-up"]);
        assert_eq!(uris(&data.path().join(BEFORE_RESTORE_FILE)), ["urn:replaced"]);

        // The restored store opens, and publishing continues after the restored sequence numbers.
        let store = open(data.path());
        let owner = store.members().unwrap()[0].id.clone();
        let stored = store.publish(story(&owner, "urn:after")).unwrap();
        assert_eq!(stored.stored().seq, 2);
    }

    #[test]
    fn a_restore_refuses_what_is_not_a_sound_karavan_store() {
        let data = tempfile::tempdir().unwrap();
        let files = tempfile::tempdir().unwrap();
        let check = |path: &Path, expected: &str| {
            let error = sqlite_restore(data.path(), path, &[]).unwrap_err();
            assert!(error.to_string().contains(expected), "{}: {error}", path.display());
            assert!(!data.path().join(DATABASE_FILE).exists(), "nothing was restored from {}", path.display());
        };
        let text = files.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, but long enough to be read as one............").unwrap();
        check(&text, "is not a Karavan store");
        check(&files.path().join("missing.db"), "no file");

        let other = files.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE versions (seq INTEGER)").unwrap();
        check(&other, "no Karavan schema");

        let no_versions = files.path().join("no-versions.db");
        Connection::open(&no_versions).unwrap().execute_batch("CREATE TABLE t (x); PRAGMA user_version = 3").unwrap();
        check(&no_versions, "no versions table");

        let newer = files.path().join("newer.db");
        open(files.path()).backup_to(&newer, false).unwrap();
        Connection::open(&newer).unwrap().pragma_update(None, "user_version", 1000).unwrap();
        check(&newer, "newer than this karavan's");
    }

    #[test]
    fn a_corrupt_backup_fails_the_integrity_check() {
        let data = tempfile::tempdir().unwrap();
        let files = tempfile::tempdir().unwrap();
        let backup = files.path().join("backup.db");
        {
            let store = open(files.path().join("source").as_path());
            let owner = member(&store);
            for n in 0..200 {
                store.publish(story(&owner, &format!("urn:{n}:{}", "x".repeat(200)))).unwrap();
            }
            store.backup_to(&backup, false).unwrap();
        }
        // Overwrite a page in the middle (not the header) with garbage.
        let mut bytes = std::fs::read(&backup).unwrap();
        let page = 4096;
        let middle = (bytes.len() / page / 2) * page;
        for byte in &mut bytes[middle + 8..middle + page] {
            *byte = 0x5a;
        }
        std::fs::write(&backup, bytes).unwrap();
        let error = sqlite_restore(data.path(), &backup, &[]).unwrap_err();
        assert!(
            matches!(&error, StoreError::Invalid(message) if message.contains("fails SQLite's integrity check")),
            "{error}"
        );
        assert!(!data.path().join(DATABASE_FILE).exists());
    }

    #[test]
    fn the_serve_lock_is_exclusive_until_dropped() {
        let data = tempfile::tempdir().unwrap();
        let held = ServeLock::acquire(&data.path().join("new")).unwrap();
        let error = ServeLock::acquire(&data.path().join("new")).unwrap_err();
        assert!(matches!(error, StoreError::Conflict { code: "data_dir_in_use", .. }), "{error}");
        drop(held);
        ServeLock::acquire(&data.path().join("new")).unwrap();
    }
}
