//! The embedded default backend: one SQLite database (`karavan.db`, WAL mode) in the data directory.
//!
//! Writes go through one writer thread that commits in groups: every job waiting when a transaction
//! starts joins it, each in its own savepoint, and all are answered after the single durable commit
//! (`synchronous = FULL`). Reads use a small pool of connections, each read in its own snapshot.
//! Other processes (the CLI) may write to the same file at the same time; SQLite's locking and the
//! busy timeout serialise them.

mod backup;
mod distribution;
mod feeds;
mod leases;
mod schema;
mod set_aside;
mod stories;

pub use backup::{
    BEFORE_RESTORE_FILE, BackupSummary, DATABASE_FILE, RestoreReport, SERVE_LOCK_FILE, ServeLock, sqlite_restore,
};
pub use set_aside::READ as READ_WORK;
mod translation;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use karavan_domain::{
    Agreement, AgreementId, ApiKey, EventKind, Grantee, ItemAccess, ItemId, KeyHash, KeyId, LanguageTag, Member,
    MemberId, PubStatus, Right, Role, SavedSearchId, SubscriptionId, Timestamp, UserId, Visibility, visibility_for,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;

pub(crate) use crate::common::*;
use crate::{
    AttemptRecord, Change, ChangesPage, Cursor, DeliveryRecord, DueDelivery, ItemRead, KeyInfo, ListEntry, ListPage,
    ListQuery, NewAgreement, NewDelivery, NewMember, NewUser, NewVersion, OutboxEvent, Page, Principal, PublishOutcome,
    Result, SavedSearch, Session, StoreError, StoredVersion, Subscription, SubscriptionSpec, User, VersionRead,
};
use writer::{Writer, WriterClock};

/// SQLite's errors as the store's: a full disk (or database size limit) is `StorageFull`, anything
/// else `Database` with SQLite's message.
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        match &error {
            rusqlite::Error::SqliteFailure(failure, _) if failure.code == rusqlite::ErrorCode::DiskFull => {
                StoreError::StorageFull(error.to_string())
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

/// How to open the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The data directory; the database is `karavan.db` inside it.
    pub data_dir: PathBuf,
    /// The most jobs one group commit takes.
    pub max_batch: usize,
    /// How long a connection waits for another process's lock before failing.
    pub busy_timeout: Duration,
}

impl SqliteConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig { data_dir: data_dir.into(), max_batch: 512, busy_timeout: Duration::from_secs(10) }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    config: SqliteConfig,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

fn open_connection(path: &Path, config: &SqliteConfig) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(config.busy_timeout)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // The writer runs each job in a savepoint, whose statement journal keeps the pages a job changes:
    // in memory rather than in a temporary file.
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // Every statement the server runs stays prepared (the default keeps 16: fewer than the writer's).
    connection.set_prepared_statement_cache_capacity(256);
    Ok(connection)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `config.data_dir` and migrates it.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore> {
        std::fs::create_dir_all(&config.data_dir)?;
        let path = config.data_dir.join(DATABASE_FILE);
        let mut connection = open_connection(&path, &config)?;
        schema::migrate(&mut connection)?;
        let last: Option<i64> = connection.query_row("SELECT MAX(committed_at) FROM versions", [], |r| r.get(0))?;
        let writer = Writer::start(connection, config.max_batch, last.unwrap_or(0));
        Ok(SqliteStore { path, config, writer, readers: Mutex::new(Vec::new()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Marks a live row revoked now; `update` binds ?1 the row's id, ?2 its owner, ?3 the time.
    fn revoke(&self, update: &'static str, id: &str, owner: &str) -> Result<bool> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.writer.run(move |connection, _| Ok(connection.execute(update, params![id, owner, now_micros()])? > 0))
    }

    /// Runs `work` on a pooled read connection inside one snapshot.
    fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().map_err(|_| StoreError::Closed)?.pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => open_connection(&self.path, &self.config)?,
        };
        let outcome = {
            let transaction = connection.transaction()?;
            let outcome = work(&transaction);
            transaction.finish()?;
            outcome
        };
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < 16
        {
            readers.push(connection);
        }
        outcome
    }
}

fn member_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, Option<String>, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

fn agreement_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, String, i64, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

/// Live agreements that let `viewer` see other members' content.
fn agreements_granted_to(connection: &Connection, viewer: &MemberId) -> Result<Vec<Agreement>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {AGREEMENT_COLUMNS} FROM agreements
         WHERE revoked_at IS NULL AND (grantee = ?1 OR grantee = '*') AND grantor != ?1"
    ))?;
    let rows = statement.query_map([viewer.as_str()], agreement_from_row)?;
    rows.map(|row| build_agreement(row?)).collect()
}

fn version_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawVersion> {
    RawVersion::from_row_at(row, 0)
}

impl RawVersion {
    /// The [`VERSION_COLUMNS`] of a row, starting at column `at`.
    fn from_row_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RawVersion> {
        Ok(RawVersion {
            seq: row.get(at)?,
            item_id: row.get(at + 1)?,
            owner: row.get(at + 2)?,
            uri: row.get(at + 3)?,
            version: row.get(at + 4)?,
            number: row.get(at + 5)?,
            document: row.get(at + 6)?,
            extensions: row.get(at + 7)?,
            original: row.get(at + 8)?,
            source_format: row.get(at + 9)?,
            pub_status: row.get(at + 10)?,
            committed_at: row.get(at + 11)?,
            available_at: row.get(at + 12)?,
        })
    }
}

fn load_version(connection: &Connection, seq: i64) -> Result<StoredVersion> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN items i ON i.id = v.item_id WHERE v.seq = ?1"
    ))?;
    statement.query_row([seq], version_from_row)?.build()
}

fn subjects_of(connection: &Connection, seq: i64) -> Result<Vec<String>> {
    let mut statement = connection.prepare_cached("SELECT key FROM version_subjects WHERE seq = ?1")?;
    let rows = statement.query_map([seq], |row| row.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `NotFound` ("{context}no member …") unless the member exists.
fn require_member(connection: &Connection, member: &MemberId, context: &str) -> Result<()> {
    let exists: bool =
        connection
            .query_row("SELECT EXISTS (SELECT 1 FROM members WHERE id = ?1)", [member.as_str()], |row| row.get(0))?;
    if exists { Ok(()) } else { Err(StoreError::NotFound(format!("{context}no member {member}"))) }
}

/// The visibility rule for one stored version, as `viewer` sees it at `now`.
fn visibility_of(
    connection: &Connection,
    viewer: &MemberId,
    version: &StoredVersion,
    now: Timestamp,
) -> Result<Visibility> {
    let agreements = agreements_granted_to(connection, viewer)?;
    let subjects = subjects_of(connection, version.seq)?;
    let access = ItemAccess {
        owner: &version.owner,
        pub_status: version.pub_status,
        committed_at: version.committed_at,
        embargoed_until: embargo_of(connection, version.seq)?,
        subjects: &subjects,
    };
    Ok(visibility_for(viewer, &access, &agreements, now))
}

fn embargo_of(connection: &Connection, seq: i64) -> Result<Option<Timestamp>> {
    let embargo: Option<i64> =
        connection.query_row("SELECT embargoed_until FROM versions WHERE seq = ?1", [seq], |row| row.get(0))?;
    Ok(embargo.map(Timestamp))
}

fn publish_in(
    connection: &Connection,
    clock: &mut WriterClock,
    new: NewVersion,
    hash: Vec<u8>,
) -> Result<PublishOutcome> {
    let existing: Option<(String, i64, i64, i64)> = connection
        .prepare_cached("SELECT id, current_seq, version_count, created_at FROM items WHERE owner = ?1 AND uri = ?2")?
        .query_row(params![new.owner.as_str(), new.uri], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .optional()?;

    let (item_id, number, version, created_at) = match existing {
        Some((item_id, current_seq, count, created_at)) => {
            let (current_version, current_hash): (String, Vec<u8>) = connection
                .prepare_cached("SELECT version, content_hash FROM versions WHERE seq = ?1")?
                .query_row([current_seq], |row| Ok((row.get(0)?, row.get(1)?)))?;
            match &new.version {
                Some(version) => {
                    let same: Option<(i64, Vec<u8>)> = connection
                        .prepare_cached("SELECT seq, content_hash FROM versions WHERE item_id = ?1 AND version = ?2")?
                        .query_row(params![item_id, version], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()?;
                    if let Some((seq, stored_hash)) = same {
                        if stored_hash == hash {
                            return Ok(PublishOutcome::Unchanged(load_version(connection, seq)?));
                        }
                        return Err(StoreError::Conflict {
                            code: "version_conflict",
                            message: format!(
                                "version {version:?} of {:?} is already stored with different content; \
                                 publish a correction with a new version",
                                new.uri
                            ),
                        });
                    }
                    if is_newer(version, &current_version) == Some(false) {
                        return Err(StoreError::Conflict {
                            code: "stale_version",
                            message: format!(
                                "version {version:?} of {:?} is older than the current version {current_version:?}",
                                new.uri
                            ),
                        });
                    }
                    (
                        ItemId::parse(&item_id).map_err(|e| corrupt("item id", e))?,
                        count + 1,
                        version.clone(),
                        created_at,
                    )
                }
                None => {
                    if current_hash == hash {
                        return Ok(PublishOutcome::Unchanged(load_version(connection, current_seq)?));
                    }
                    let next = match current_version.parse::<u64>() {
                        Ok(number) => (number + 1).to_string(),
                        Err(_) => (count + 1).to_string(),
                    };
                    (ItemId::parse(&item_id).map_err(|e| corrupt("item id", e))?, count + 1, next, created_at)
                }
            }
        }
        None => (ItemId::new(new_ulid()?), 1, new.version.clone().unwrap_or_else(|| "1".to_string()), -1),
    };

    let committed_at = clock.next();
    let created_at = if created_at < 0 { committed_at.micros() } else { created_at };
    let available_at = match new.embargoed_until {
        Some(until) if until > committed_at => until,
        _ => committed_at,
    };

    let mut document = new.document;
    document.insert("version".to_string(), Value::String(version.clone()));
    document.entry("versionCreated".to_string()).or_insert_with(|| Value::String(committed_at.to_rfc3339()));
    document.entry("firstCreated".to_string()).or_insert_with(|| Value::String(Timestamp(created_at).to_rfc3339()));
    let document_text = serde_json::to_string(&document).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let extensions_text = serde_json::to_string(&new.extensions).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let dated_at = new.version_created.unwrap_or(committed_at).micros();

    if number == 1 {
        // The version row refers to its item, so a new item's row comes first (its current_seq is
        // set by the upsert below).
        connection
            .prepare_cached(
                "INSERT INTO items (id, owner, uri, current_seq, version_count, pub_status, committed_at, available_at,
                dated_at, created_at)
             VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, ?6, ?5, ?7)",
            )?
            .execute(params![
                item_id.as_str(),
                new.owner.as_str(),
                new.uri,
                new.pub_status.as_str(),
                committed_at.micros(),
                available_at.micros(),
                created_at
            ])?;
    }
    connection
        .prepare_cached(
            "INSERT INTO versions (item_id, version, number, content_hash, document, extensions, original,
            source_format, pub_status, embargoed_until, committed_at, available_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            item_id.as_str(),
            version,
            number,
            hash,
            document_text,
            extensions_text,
            &new.original,
            &new.source_format,
            new.pub_status.as_str(),
            new.embargoed_until.map(Timestamp::micros),
            committed_at.micros(),
            available_at.micros(),
        ])?;
    let seq = connection.last_insert_rowid();
    // The outbox row is part of the same transaction: a stored version always has its event, and an
    // event never exists without its version (see `distribution.rs` for the fan-out).
    let kind = EventKind::of_version(number, new.pub_status, available_at > committed_at);
    connection
        .prepare_cached("INSERT INTO outbox (seq, item_id, kind, due_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![seq, item_id.as_str(), kind.as_str(), available_at.micros(), committed_at.micros()])?;
    // Translation jobs too: a stored version always has its jobs (head and body) for the languages its
    // readers want.
    translation::enqueue_for_version(
        connection,
        seq,
        &new.owner,
        new.language.as_deref(),
        new.pub_status,
        new.urgency.map(|u| i64::from(u.get())),
        committed_at.micros(),
    )?;
    {
        let mut insert =
            connection.prepare_cached("INSERT OR IGNORE INTO version_subjects (seq, key) VALUES (?1, ?2)")?;
        for subject in &new.subjects {
            insert.execute(params![seq, subject])?;
        }
    }
    connection
        .prepare_cached(
            "INSERT INTO items (id, owner, uri, current_seq, version_count, pub_status, committed_at, available_at,
            language, type, urgency, dated_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET current_seq = excluded.current_seq, version_count = excluded.version_count,
            pub_status = excluded.pub_status, committed_at = excluded.committed_at,
            available_at = excluded.available_at, language = excluded.language, type = excluded.type,
            urgency = excluded.urgency, dated_at = excluded.dated_at",
        )?
        .execute(params![
            item_id.as_str(),
            new.owner.as_str(),
            new.uri,
            seq,
            number,
            new.pub_status.as_str(),
            committed_at.micros(),
            available_at.micros(),
            new.language,
            new.item_type,
            new.urgency.map(|u| u.get()),
            dated_at,
            created_at,
        ])?;
    // What was just written, built from what is in hand rather than read back and parsed again.
    let stored = StoredVersion {
        item_id,
        seq,
        owner: new.owner,
        uri: new.uri,
        version,
        number,
        document,
        extensions: new.extensions,
        original: new.original,
        source_format: new.source_format,
        pub_status: new.pub_status,
        committed_at,
        available_at,
    };
    Ok(if number == 1 { PublishOutcome::Created(stored) } else { PublishOutcome::Corrected(stored) })
}

impl crate::ItemStore for SqliteStore {
    fn publish(&self, version: NewVersion) -> Result<PublishOutcome> {
        let hash = content_hash(&version);
        self.writer.run(move |connection, clock| publish_in(connection, clock, version, hash))
    }

    fn publish_all(&self, versions: Vec<NewVersion>) -> Result<Vec<PublishOutcome>> {
        let hashed: Vec<(NewVersion, Vec<u8>)> =
            versions.into_iter().map(|v| (content_hash(&v), v)).map(|(h, v)| (v, h)).collect();
        // One job, so one savepoint: a failure rolls the whole batch back.
        self.writer.run(move |connection, clock| {
            hashed.into_iter().map(|(version, hash)| publish_in(connection, clock, version, hash)).collect()
        })
    }

    fn item(&self, viewer: &MemberId, id: &ItemId, now: Timestamp) -> Result<ItemRead> {
        self.read(|connection| {
            let Some(current) = current_seq(connection, id)? else {
                return Ok(ItemRead::NotFound);
            };
            let version = load_version(connection, current)?;
            Ok(match visibility_of(connection, viewer, &version, now)? {
                Visibility::Visible { right, .. } => ItemRead::Visible(version, right),
                Visibility::Killed { .. } => ItemRead::Killed(version),
                Visibility::Hidden => ItemRead::NotFound,
            })
        })
    }

    fn versions(&self, viewer: &MemberId, id: &ItemId, now: Timestamp) -> Result<Option<Vec<StoredVersion>>> {
        self.read(|connection| {
            let Some(current) = current_seq(connection, id)? else {
                return Ok(None);
            };
            let agreements = agreements_granted_to(connection, viewer)?;
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions v JOIN items i ON i.id = v.item_id
                 WHERE v.item_id = ?1 ORDER BY v.seq"
            ))?;
            let rows = statement.query_map([id.as_str()], version_from_row)?;
            let mut visible = Vec::new();
            let mut current_visible = false;
            for row in rows {
                let version = row?.build()?;
                let subjects = subjects_of(connection, version.seq)?;
                let access = ItemAccess {
                    owner: &version.owner,
                    pub_status: version.pub_status,
                    committed_at: version.committed_at,
                    embargoed_until: embargo_of(connection, version.seq)?,
                    subjects: &subjects,
                };
                if visibility_for(viewer, &access, &agreements, now) != Visibility::Hidden {
                    current_visible |= version.seq == current;
                    visible.push(version);
                }
            }
            // A kill withdraws the content everywhere: others keep only the kill notice.
            let killed = visible.last().is_some_and(|v| v.pub_status == PubStatus::Canceled && &v.owner != viewer);
            if killed {
                visible.retain(|v| v.pub_status == PubStatus::Canceled);
            }
            Ok(current_visible.then_some(visible))
        })
    }

    fn version_for(&self, viewer: &MemberId, id: &ItemId, seq: i64, now: Timestamp) -> Result<VersionRead> {
        self.version_for_in(viewer, id, seq, now)
    }

    fn next_release(&self, after: Timestamp) -> Result<Option<Timestamp>> {
        self.next_release_in(after)
    }

    fn current_versions_after(&self, after: i64, limit: u32) -> Result<crate::VersionsAfter> {
        self.current_versions_after_in(after, limit)
    }

    fn set_aside_to_retry(&self, work: &str) -> Result<Vec<StoredVersion>> {
        self.set_aside_to_retry_in(work)
    }

    fn set_aside(&self, work: &str, seq: i64, item_id: &str, owner: Option<&MemberId>, error: &str) -> Result<()> {
        self.set_aside_in(work, seq, item_id, owner, error)
    }

    fn clear_set_aside(&self, work: &str, seq: i64) -> Result<()> {
        self.clear_set_aside_in(work, seq)
    }

    fn set_aside_list(&self, owner: Option<&MemberId>) -> Result<Vec<crate::SetAside>> {
        self.set_aside_list_in(owner)
    }

    fn retry_set_aside(&self, work: &str, seq: Option<i64>) -> Result<usize> {
        self.retry_set_aside_in(work, seq)
    }

    fn list(&self, viewer: &MemberId, query: &ListQuery, now: Timestamp) -> Result<ListPage> {
        let horizon = Timestamp(self.writer.horizon(now.micros()));
        self.read(|connection| list_in(connection, viewer, query, horizon))
    }
}

impl crate::AccessStore for SqliteStore {
    fn add_member(&self, member: NewMember) -> Result<Member> {
        let id = MemberId::new(new_ulid()?);
        let languages: Vec<&str> = member.languages.iter().map(LanguageTag::as_str).collect();
        let languages = serde_json::to_string(&languages).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let created_at = Timestamp(now_micros());
        let record = Member {
            id: id.clone(),
            name: member.name.clone(),
            country: member.country.clone(),
            languages: member.languages.clone(),
            contact: member.contact.clone(),
            created_at,
        };
        self.writer.run(move |connection, _| {
            connection.execute(
                "INSERT INTO members (id, name, country, languages, contact, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id.as_str(),
                    member.name.as_str(),
                    member.country.as_str(),
                    languages,
                    member.contact,
                    created_at.micros()
                ],
            )?;
            Ok(())
        })?;
        Ok(record)
    }

    fn members(&self) -> Result<Vec<Member>> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, name, country, languages, contact, created_at FROM members ORDER BY id")?;
            let rows = statement.query_map([], member_from_row)?;
            rows.map(|row| build_member(row?)).collect()
        })
    }

    fn member(&self, id: &MemberId) -> Result<Option<Member>> {
        self.read(|connection| {
            let raw = connection
                .query_row(
                    "SELECT id, name, country, languages, contact, created_at FROM members WHERE id = ?1",
                    [id.as_str()],
                    member_from_row,
                )
                .optional()?;
            raw.map(build_member).transpose()
        })
    }

    fn create_key(&self, member: &MemberId, role: Role, label: Option<String>) -> Result<(KeyInfo, ApiKey)> {
        let key = ApiKey::from_random(random_bytes()?);
        let info = KeyInfo {
            id: KeyId::new(new_ulid()?),
            member: member.clone(),
            role,
            label,
            created_at: Timestamp(now_micros()),
            revoked_at: None,
        };
        let hash = key.hash();
        let record = info.clone();
        self.writer.run(move |connection, _| {
            require_member(connection, &record.member, "")?;
            connection.execute(
                "INSERT INTO api_keys (id, member_id, role, hash, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.id.as_str(),
                    record.member.as_str(),
                    record.role.as_str(),
                    hash.0.to_vec(),
                    record.label,
                    record.created_at.micros()
                ],
            )?;
            Ok(())
        })?;
        Ok((info, key))
    }

    fn keys(&self, member: &MemberId) -> Result<Vec<KeyInfo>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, role, label, created_at, revoked_at FROM api_keys WHERE member_id = ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([member.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            })?;
            rows.map(|row| {
                let (id, role, label, created_at, revoked_at) = row?;
                Ok(KeyInfo {
                    id: KeyId::parse(&id).map_err(|e| corrupt("key id", e))?,
                    member: member.clone(),
                    role: Role::parse(&role).map_err(|e| corrupt("key role", e))?,
                    label,
                    created_at: Timestamp(created_at),
                    revoked_at: revoked_at.map(Timestamp),
                })
            })
            .collect()
        })
    }

    fn revoke_key(&self, member: &MemberId, key: &KeyId) -> Result<bool> {
        self.revoke(
            "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND member_id = ?2 AND revoked_at IS NULL",
            key.as_str(),
            member.as_str(),
        )
    }

    fn authenticate(&self, key: &KeyHash) -> Result<Option<Principal>> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, member_id, role FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL")?;
            let raw = statement
                .query_row([key.0.to_vec()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
                })
                .optional()?;
            raw.map(|(id, member, role)| {
                Ok(Principal {
                    key: KeyId::parse(&id).map_err(|e| corrupt("key id", e))?,
                    member: MemberId::parse(&member).map_err(|e| corrupt("key member", e))?,
                    role: Role::parse(&role).map_err(|e| corrupt("key role", e))?,
                })
            })
            .transpose()
        })
    }

    fn add_agreement(&self, agreement: NewAgreement) -> Result<Agreement> {
        if agreement.grantee == Grantee::Member(agreement.grantor.clone()) {
            return Err(StoreError::Invalid("grantee: a member cannot grant an agreement to itself".to_string()));
        }
        let record = Agreement {
            id: AgreementId::new(new_ulid()?),
            grantor: agreement.grantor,
            grantee: agreement.grantee,
            right: agreement.right,
            subjects: agreement.subjects,
            delay_minutes: agreement.delay_minutes,
            created_at: Timestamp(now_micros()),
        };
        let stored = record.clone();
        self.writer.run(move |connection, _| {
            if let Grantee::Member(grantee) = &stored.grantee {
                require_member(connection, grantee, "grantee: ")?;
            }
            let subjects = serde_json::to_string(&stored.subjects).map_err(|e| StoreError::Invalid(e.to_string()))?;
            connection.execute(
                "INSERT INTO agreements (id, grantor, grantee, right, subjects, delay_minutes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    stored.id.as_str(),
                    stored.grantor.as_str(),
                    stored.grantee.to_string(),
                    stored.right.as_str(),
                    subjects,
                    stored.delay_minutes,
                    stored.created_at.micros()
                ],
            )?;
            Ok(())
        })?;
        Ok(record)
    }

    fn agreements_of(&self, member: &MemberId) -> Result<Vec<Agreement>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {AGREEMENT_COLUMNS} FROM agreements
                 WHERE revoked_at IS NULL AND (grantor = ?1 OR grantee = ?1 OR grantee = '*') ORDER BY id"
            ))?;
            let rows = statement.query_map([member.as_str()], agreement_from_row)?;
            rows.map(|row| build_agreement(row?)).collect()
        })
    }

    fn revoke_agreement(&self, grantor: &MemberId, id: &AgreementId) -> Result<bool> {
        self.revoke(
            "UPDATE agreements SET revoked_at = ?3 WHERE id = ?1 AND grantor = ?2 AND revoked_at IS NULL",
            id.as_str(),
            grantor.as_str(),
        )
    }

    fn live_agreements(&self) -> Result<Vec<Agreement>> {
        self.live_agreements_in()
    }
}

crate::forward::forward_to_backend!(SqliteStore);

impl crate::SavedSearchStore for SqliteStore {
    fn add_saved_search(&self, member: &MemberId, name: &str, query: Vec<(String, String)>) -> Result<SavedSearch> {
        let record = SavedSearch {
            id: SavedSearchId::new(new_ulid()?),
            member: member.clone(),
            name: name.to_string(),
            query,
            created_at: Timestamp(now_micros()),
        };
        let stored = record.clone();
        self.writer.run(move |connection, _| {
            let query = serde_json::to_string(&stored.query).map_err(|e| StoreError::Invalid(e.to_string()))?;
            let inserted = connection.execute(
                "INSERT INTO saved_searches (id, member_id, name, query, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (member_id, name) DO NOTHING",
                params![stored.id.as_str(), stored.member.as_str(), stored.name, query, stored.created_at.micros()],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict {
                    code: "name_taken",
                    message: format!("name: your member already has a saved search called {:?}", stored.name),
                });
            }
            Ok(())
        })?;
        Ok(record)
    }

    fn saved_searches(&self, member: &MemberId) -> Result<Vec<SavedSearch>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, name, query, created_at FROM saved_searches WHERE member_id = ?1 ORDER BY name",
            )?;
            let rows = statement.query_map([member.as_str()], saved_search_row)?;
            rows.map(|row| build_saved_search(member, row?)).collect()
        })
    }

    fn saved_search(&self, member: &MemberId, id: &SavedSearchId) -> Result<Option<SavedSearch>> {
        self.read(|connection| {
            let raw = connection
                .query_row(
                    "SELECT id, name, query, created_at FROM saved_searches WHERE member_id = ?1 AND id = ?2",
                    [member.as_str(), id.as_str()],
                    saved_search_row,
                )
                .optional()?;
            raw.map(|raw| build_saved_search(member, raw)).transpose()
        })
    }

    fn delete_saved_search(&self, member: &MemberId, id: &SavedSearchId) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |connection, _| {
            let deleted = connection.execute(
                "DELETE FROM saved_searches WHERE member_id = ?1 AND id = ?2",
                [member.as_str(), id.as_str()],
            )?;
            Ok(deleted > 0)
        })
    }
}

impl crate::DistributionStore for SqliteStore {
    fn add_subscription(
        &self,
        member: &MemberId,
        spec: SubscriptionSpec,
        feed_token_hash: [u8; 32],
    ) -> Result<Subscription> {
        self.add_subscription_in(member, spec, feed_token_hash)
    }

    fn subscriptions(&self, member: &MemberId) -> Result<Vec<Subscription>> {
        self.subscriptions_in(member)
    }

    fn subscription(&self, member: &MemberId, id: &SubscriptionId) -> Result<Option<Subscription>> {
        self.subscription_in(member, id)
    }

    fn update_subscription(&self, member: &MemberId, id: &SubscriptionId, spec: SubscriptionSpec) -> Result<bool> {
        self.update_subscription_in(member, id, spec)
    }

    fn delete_subscription(&self, member: &MemberId, id: &SubscriptionId) -> Result<bool> {
        self.delete_subscription_in(member, id)
    }

    fn set_feed_token(&self, member: &MemberId, id: &SubscriptionId, feed_token_hash: [u8; 32]) -> Result<bool> {
        self.set_feed_token_in(member, id, feed_token_hash)
    }

    fn subscription_by_feed_token(&self, feed_token_hash: [u8; 32]) -> Result<Option<Subscription>> {
        self.subscription_by_feed_token_in(feed_token_hash)
    }

    fn all_subscriptions(&self) -> Result<Vec<Subscription>> {
        self.all_subscriptions_in()
    }

    fn outbox_position(&self) -> Result<i64> {
        self.outbox_position_in()
    }

    fn outbox_head(&self) -> Result<i64> {
        self.read(|connection| {
            Ok(connection.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM outbox")?.query_row([], |row| row.get(0))?)
        })
    }

    fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEvent>> {
        self.outbox_after_in(after, limit)
    }

    fn open_outbox_reader(&self, name: &str) -> Result<i64> {
        self.open_outbox_reader_in(name)
    }

    fn record_outbox_reader(&self, name: &str, holder: &str, through: i64) -> Result<()> {
        self.record_outbox_reader_in(name, holder, through)
    }

    fn outbox_entries_after(&self, after: i64, limit: u32) -> Result<Vec<crate::OutboxEntry>> {
        self.outbox_entries_after_in(after, limit)
    }

    fn delivered_items(&self, items: &[ItemId]) -> Result<Vec<(SubscriptionId, ItemId)>> {
        self.delivered_items_in(items)
    }

    fn record_fanout(&self, holder: &str, through: i64, deliveries: Vec<NewDelivery>) -> Result<usize> {
        self.record_fanout_in(holder, through, deliveries)
    }

    fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        per_subscription: u32,
    ) -> Result<Vec<DueDelivery>> {
        self.claim_deliveries_in(holder, now, lease_until, limit, per_subscription)
    }

    fn release_deliveries(&self, holder: &str) -> Result<usize> {
        self.release_deliveries_in(holder)
    }

    fn due_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        skip_subscriptions: &[SubscriptionId],
        skip_deliveries: &[i64],
    ) -> Result<Vec<DueDelivery>> {
        self.due_deliveries_in(now, limit, skip_subscriptions, skip_deliveries)
    }

    fn next_due(&self) -> Result<Option<Timestamp>> {
        self.next_due_in()
    }

    fn record_attempts(&self, holder: &str, attempts: Vec<AttemptRecord>) -> Result<usize> {
        self.record_attempts_in(holder, attempts)
    }

    fn deliveries(
        &self,
        subscription: &SubscriptionId,
        now: Timestamp,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        self.deliveries_in(subscription, now, before, limit)
    }

    fn changes(
        &self,
        subscription: &SubscriptionId,
        since: Option<Cursor>,
        limit: u32,
        now: Timestamp,
    ) -> Result<ChangesPage> {
        self.changes_in(subscription, since, limit, now)
    }

    fn recent_changes(&self, subscription: &SubscriptionId, limit: u32, now: Timestamp) -> Result<Vec<Change>> {
        self.recent_changes_in(subscription, limit, now)
    }
}

impl crate::Store for SqliteStore {
    fn identity(&self) -> Result<String> {
        self.read(|connection| Ok(connection.query_row("SELECT id FROM store_identity", [], |row| row.get(0))?))
    }

    fn health(&self) -> crate::StoreHealth {
        let Some(since) = self.writer.storage_full_since() else { return crate::StoreHealth::default() };
        // Has space come back? Write (and remove) a small file beside the database to find out.
        let probe = self.config.data_dir.join(".karavan-space-probe");
        let written = std::fs::File::create(&probe).and_then(|mut file| {
            std::io::Write::write_all(&mut file, &[0u8; 64 * 1024])?;
            file.sync_all()
        });
        let _ = std::fs::remove_file(&probe);
        match written {
            Ok(()) => {
                tracing::info!("storage has space again");
                self.writer.storage_recovered();
                crate::StoreHealth::default()
            }
            Err(_) => crate::StoreHealth { storage_full_since: Some(since) },
        }
    }

    fn head_positions(&self) -> Result<(i64, u64)> {
        self.read(|connection| {
            let head_seq: i64 =
                connection.query_row("SELECT COALESCE(MAX(seq), 0) FROM versions", [], |row| row.get(0))?;
            let outbox_behind: i64 = connection.query_row(
                "SELECT COUNT(*) FROM outbox WHERE id > (SELECT position FROM outbox_position WHERE name = 'fanout')",
                [],
                |row| row.get(0),
            )?;
            Ok((head_seq, u64::try_from(outbox_behind).unwrap_or(0)))
        })
    }

    fn queue_depths(&self) -> Result<crate::QueueDepths> {
        self.read(|connection| {
            let count = |sql: &str| -> Result<u64> {
                let n: i64 = connection.prepare_cached(sql)?.query_row([], |row| row.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            };
            // Counted up to QUEUE_DEPTH_CAP, so that a health check costs the same however long a
            // queue has grown (jobs wait for ever while no translation model is installed).
            let cap = crate::QUEUE_DEPTH_CAP;
            Ok(crate::QueueDepths {
                deliveries_pending: count(&format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE state = 'pending' LIMIT {cap})"
                ))?,
                translation_jobs_queued: count(&format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM translation_jobs WHERE state = 'queued' LIMIT {cap})"
                ))?,
            })
        })
    }

    fn stats(&self) -> Result<crate::StoreStats> {
        let (head_seq, outbox_behind) = self.head_positions()?;
        self.read(|connection| {
            let by_state = |sql: &str| -> Result<Vec<(String, u64)>> {
                let mut statement = connection.prepare_cached(sql)?;
                let rows = statement
                    .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows.into_iter().map(|(state, count)| (state, u64::try_from(count).unwrap_or(0))).collect())
            };
            let deliveries = by_state("SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state")?;
            let jobs = by_state("SELECT state, COUNT(*) FROM translation_jobs GROUP BY state")?;
            let translation_jobs = crate::common::queue_counts(jobs.into_iter())?;
            Ok(crate::StoreStats { head_seq, deliveries, translation_jobs, outbox_behind })
        })
    }
}

fn saved_search_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSavedSearch> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn current_seq(connection: &Connection, id: &ItemId) -> Result<Option<i64>> {
    Ok(connection
        .query_row("SELECT current_seq FROM items WHERE id = ?1", [id.as_str()], |row| row.get(0))
        .optional()?)
}

/// The most items a `versionCreated` range may hold for the wire to read it through its own index
/// (about 1 µs per item read and sorted; measured in `benches/newsroom.rs`).
const NARROW_DATED_RANGE: i64 = 20_000;

/// Lists a viewer's wire. The SQL mirrors `visibility_for`: the owner's items from their commit,
/// others' from `available_at` plus the smallest delay of the agreements that cover them.
fn list_in(connection: &Connection, viewer: &MemberId, query: &ListQuery, horizon: Timestamp) -> Result<ListPage> {
    let agreements = agreements_granted_to(connection, viewer)?;
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut push = |value: rusqlite::types::Value| {
        values.push(value);
        format!("?{}", values.len())
    };
    use rusqlite::types::Value as Sql;

    let mut grants = Vec::new();
    for agreement in &agreements {
        let grantor = push(Sql::Text(agreement.grantor.to_string()));
        let delay = push(Sql::Integer(i64::from(agreement.delay_minutes)));
        let republish = i64::from(agreement.right == Right::Republish);
        if agreement.subjects.is_empty() {
            grants.push(format!("({grantor}, {delay}, NULL, {republish})"));
        }
        for subject in &agreement.subjects {
            let subject = push(Sql::Text(subject.clone()));
            grants.push(format!("({grantor}, {delay}, {subject}, {republish})"));
        }
    }
    let grants_cte = if grants.is_empty() {
        "g(grantor, delay, subject, republish) AS (SELECT NULL, NULL, NULL, NULL WHERE 0)".to_string()
    } else {
        format!("g(grantor, delay, subject, republish) AS (VALUES {})", grants.join(", "))
    };
    let viewer_param = push(Sql::Text(viewer.to_string()));

    let mut filters = Vec::new();
    if let Some(owner) = &query.owner {
        filters.push(format!("i.owner = {}", push(Sql::Text(owner.to_string()))));
    }
    if !query.languages.is_empty() {
        let mut alternatives = Vec::new();
        for language in &query.languages {
            let exact = push(Sql::Text(language.to_ascii_lowercase()));
            let prefix = push(Sql::Text(format!("{}-%", language.to_ascii_lowercase())));
            alternatives.push(format!("lower(i.language) = {exact} OR lower(i.language) LIKE {prefix}"));
        }
        filters.push(format!("({})", alternatives.join(" OR ")));
    }
    if let Some(item_type) = &query.item_type {
        filters.push(format!("i.type = {}", push(Sql::Text(item_type.clone()))));
    }
    if let Some((low, high)) = query.urgency {
        let low = push(Sql::Integer(i64::from(low)));
        let high = push(Sql::Integer(i64::from(high)));
        filters.push(format!("i.urgency BETWEEN {low} AND {high}"));
    }
    if let Some(from) = query.from {
        filters.push(format!("i.dated_at >= {}", push(Sql::Integer(from.micros()))));
    }
    if let Some(to) = query.to {
        filters.push(format!("i.dated_at <= {}", push(Sql::Integer(to.micros()))));
    }
    // Kill notices only: said here too, so that the item scan can use the index of canceled items.
    if query.include_kills && query.only_kills {
        filters.push("i.pub_status = 'canceled'".to_string());
    }
    if !query.subjects.is_empty() {
        let keys: Vec<String> = query.subjects.iter().map(|subject| push(Sql::Text(subject.clone()))).collect();
        filters.push(format!(
            "EXISTS (SELECT 1 FROM version_subjects s WHERE s.seq = i.current_seq AND s.key IN ({}))",
            keys.join(", ")
        ));
    }
    if let Some(items) = &query.items {
        if items.is_empty() {
            filters.push("0".to_string());
        } else {
            let ids: Vec<String> = items.iter().map(|item| push(Sql::Text(item.to_string()))).collect();
            filters.push(format!("i.id IN ({})", ids.join(", ")));
        }
    }
    let filter_sql = filters.iter().map(|f| format!(" AND {f}")).collect::<String>();

    let horizon_param = push(Sql::Integer(horizon.micros()));
    let mut outer = vec![format!("vt IS NOT NULL AND vt <= {horizon_param}")];
    if !query.include_kills {
        outer.push("pub_status != 'canceled'".to_string());
    } else if query.only_kills {
        outer.push("pub_status = 'canceled'".to_string());
    }
    let order = match query.page {
        Page::NewestFirst(None) => "vt DESC, seq DESC",
        Page::NewestFirst(Some(cursor)) => {
            let at = push(Sql::Integer(cursor.at.micros()));
            let seq = push(Sql::Integer(cursor.seq));
            outer.push(format!("(vt, seq) < ({at}, {seq})"));
            "vt DESC, seq DESC"
        }
        Page::Since(cursor) => {
            let at = push(Sql::Integer(cursor.at.micros()));
            let seq = push(Sql::Integer(cursor.seq));
            outer.push(format!("(vt, seq) > ({at}, {seq})"));
            "vt ASC, seq ASC"
        }
    };
    let limit = push(Sql::Integer(i64::from(query.limit.clamp(1, 1000))));
    // Every query below ends with one more parameter: a bound on `available_at` that keeps the scan to
    // a narrow range of the `items_available` index. The index is named because SQLite's planner
    // otherwise prefers `items_owner` for the owner test and then sorts every row of those owners.
    let bound = format!("?{}", values.len() + 1);
    // The index the item scan walks: newest by `available_at` as a rule; a selective filter's own
    // where one applies (kill notices; a `versionCreated` range), so that few matches among many items
    // do not mean reading them all.
    // A `versionCreated` range takes its own index while it holds few items (reading and sorting them
    // is then cheaper than walking the newest items until enough match); a range as dense as the wire
    // itself is walked newest first, where the matches come soon.
    let dated_range_is_narrow = || -> Result<bool> {
        let (from, to) = (query.from.map_or(i64::MIN, |t| t.micros()), query.to.map_or(i64::MAX, |t| t.micros()));
        let counted: i64 = connection.query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM items INDEXED BY items_dated WHERE dated_at BETWEEN ?1 AND ?2 LIMIT ?3)",
            params![from, to, NARROW_DATED_RANGE + 1],
            |row| row.get(0),
        )?;
        Ok(counted <= NARROW_DATED_RANGE)
    };
    // A few named items (a story's) are read by their ids, whatever else filters them.
    let index = if query.items.is_some() {
        String::new()
    } else if query.include_kills && query.only_kills {
        "INDEXED BY items_canceled".to_string()
    } else if (query.from.is_some() || query.to.is_some()) && dated_range_is_narrow()? {
        "INDEXED BY items_dated".to_string()
    } else {
        "INDEXED BY items_available".to_string()
    };
    let candidates = |range: &str| {
        format!(
            "WITH {grants_cte},
             candidates AS (
                SELECT i.current_seq AS seq, i.pub_status AS pub_status, i.available_at AS available_at,
                    CASE WHEN i.owner = {viewer_param} THEN i.committed_at
                         ELSE i.available_at + 60000000 * (
                            SELECT MIN(g.delay) FROM g WHERE g.grantor = i.owner AND (g.subject IS NULL OR EXISTS (
                                SELECT 1 FROM version_subjects s WHERE s.seq = i.current_seq AND s.key = g.subject)))
                    END AS vt,
                    CASE WHEN i.owner = {viewer_param} THEN 1
                         ELSE (SELECT MAX(g.republish) FROM g WHERE g.grantor = i.owner AND (g.subject IS NULL OR EXISTS (
                                SELECT 1 FROM version_subjects s WHERE s.seq = i.current_seq AND s.key = g.subject)))
                    END AS republish
                FROM items i {index}
                WHERE (i.owner = {viewer_param} OR i.owner IN (SELECT grantor FROM g)){filter_sql}{range}
             )"
        )
    };
    let outer_sql = outer.join(" AND ");
    let max_delay = agreements.iter().map(|a| i64::from(a.delay_minutes) * 60_000_000).max().unwrap_or(0);
    let run = |sql: &str, bound_value: i64| -> Result<Vec<(i64, i64, bool)>> {
        let mut statement = connection.prepare_cached(sql)?;
        let parameters = values.iter().cloned().chain(std::iter::once(Sql::Integer(bound_value)));
        let rows = statement
            .query_map(rusqlite::params_from_iter(parameters), |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Option<i64>>(2)? == Some(1)))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    };
    let main_sql = format!(
        "{} SELECT seq, vt, republish FROM candidates WHERE {outer_sql} ORDER BY {order} LIMIT {limit}",
        candidates(&format!(" AND i.available_at >= {bound}"))
    );
    // A version's visibility time `vt` is at least its `available_at` for its owner (who sees it from
    // its commit, which comes first) and at most `available_at + max_delay` for anyone else. So:
    let lower_bound = match query.page {
        // Polling: every row with vt > the cursor has available_at >= cursor - max_delay.
        Page::Since(cursor) => cursor.at.micros().saturating_sub(max_delay),
        // Newest first: probe the index for `limit` visible rows, newest by available_at; the smallest
        // vt among them, T, is a floor for the answer (at least `limit` rows reach it), and every row
        // with vt >= T has available_at >= T - max_delay. Too few rows found: scan everything.
        Page::NewestFirst(cursor) => {
            let ceiling = cursor.map_or(horizon.micros().saturating_add(1), |c| c.at.micros().saturating_add(1));
            let probe_sql = format!(
                "{} SELECT seq, vt, republish FROM candidates WHERE {outer_sql} ORDER BY available_at DESC LIMIT {limit}",
                candidates(&format!(" AND i.available_at < {bound}"))
            );
            let probe = run(&probe_sql, ceiling)?;
            if probe.len() as u32 >= query.limit.clamp(1, 1000) {
                probe.iter().map(|(_, vt, _)| *vt).min().unwrap_or(i64::MIN).saturating_sub(max_delay)
            } else {
                i64::MIN
            }
        }
    };
    let positions = run(&main_sql, lower_bound)?;
    let mut entries = Vec::with_capacity(positions.len());
    for (seq, at, republish) in positions {
        let right = if republish { Right::Republish } else { Right::View };
        entries.push(ListEntry {
            cursor: Cursor { at: Timestamp(at), seq },
            version: load_version(connection, seq)?,
            right,
        });
    }
    let full = entries.len() as u32 >= query.limit.clamp(1, 1000);
    let horizon_cursor = Cursor { at: horizon, seq: i64::MAX };
    let next = match query.page {
        Page::NewestFirst(_) => full.then(|| entries.last().map(|e| e.cursor)).flatten(),
        // Everything at or before the horizon has been seen when the page is not full, so the next poll
        // may start at the horizon; a full page continues after its last entry.
        Page::Since(cursor) => {
            Some(if full { entries.last().map_or(cursor, |e| e.cursor) } else { horizon_cursor.max(cursor) })
        }
    };
    Ok(ListPage { entries, next, horizon: horizon_cursor })
}
