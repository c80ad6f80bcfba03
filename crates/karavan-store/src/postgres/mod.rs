//! The cluster backend: one PostgreSQL database (or one schema in it) shared by every node.
//!
//! Each node's store has one writer thread that commits in groups (see `writer.rs`) and a few reader
//! threads, each read in its own repeatable-read snapshot. Several nodes write at once: sequence
//! numbers, commit times and outbox ids are handed out under the commit clock's advisory lock, so
//! they follow commit order across the cluster; work claimed by lease (deliveries, feed polls,
//! translation jobs, the fan-out) uses the same conditional updates as SQLite, which PostgreSQL
//! re-checks against the latest committed row when two nodes race for one.
//!
//! The SQL mirrors the SQLite backend statement for statement, so that both pass the same suite.

mod db;
mod distribution;
mod feeds;
mod leases;
mod schema;
mod set_aside;
mod stories;
mod translation;
mod users;
mod writer;

use karavan_domain::{
    ApiKey, EventKind, Grantee, ItemAccess, ItemId, KeyHash, KeyId, LanguageTag, Member, MemberId, PubStatus, Right,
    Role, SavedSearchId, SubscriptionId, Timestamp, UserId, Visibility, visibility_for,
};
use postgres::Row;
use postgres::types::ToSql;
use serde_json::Value;

use crate::common::*;
use crate::{
    AttemptRecord, Change, ChangesPage, Cursor, DeliveryRecord, DueDelivery, ItemRead, KeyInfo, ListEntry, ListPage,
    ListQuery, NewAgreement, NewDelivery, NewMember, NewUser, NewVersion, OutboxEvent, Page, Principal, PublishOutcome,
    Result, SavedSearch, Session, StoreError, StoredVersion, Subscription, SubscriptionSpec, User, VersionRead,
};
use db::{Connection, Db, Readers};
use writer::{Clock, Writer};

/// How to open the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// A connection URL (`postgres://user@host:port/database`); `options=-csearch_path%3Dname` puts the
    /// store in a schema of its own.
    pub url: String,
    /// Reader threads (connections) of this node.
    pub readers: usize,
    /// The most jobs one group commit takes.
    pub max_batch: usize,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig { url: url.into(), readers: 4, max_batch: 512 }
    }
}

pub struct PostgresStore {
    url: String,
    writer: Writer,
    readers: Readers,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("url", &redacted(&self.url)).finish()
    }
}

/// A connection URL without its password, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl PostgresStore {
    /// Connects, migrates the schema, and starts this node's writer and readers.
    pub fn open(config: PostgresConfig) -> Result<PostgresStore> {
        let mut connection = Connection::new(&config.url);
        schema::migrate(connection.client()?)?;
        let writer = Writer::start(connection, config.max_batch.max(1));
        let readers = Readers::start(&config.url, config.readers);
        Ok(PostgresStore { url: config.url, writer, readers })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `work` in one read-only snapshot.
    fn read<T: Send + 'static>(&self, work: impl FnOnce(&mut Db<'_, '_>) -> Result<T> + Send + 'static) -> Result<T> {
        self.readers.run(None, move |db, _| work(db))
    }

    /// Runs `work` in one read-only snapshot, with the horizon at `now`: every commit with an earlier
    /// commit time is in the snapshot, and none can come later.
    fn read_at_horizon<T: Send + 'static>(
        &self,
        now: Timestamp,
        work: impl FnOnce(&mut Db<'_, '_>, Timestamp) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.readers.run(Some(now.micros()), move |db, horizon| work(db, Timestamp(horizon)))
    }

    /// Marks a live row revoked now; `update` binds $1 the row's id, $2 its owner, $3 the time.
    fn revoke(&self, update: &'static str, id: &str, owner: &str) -> Result<bool> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.writer.run(move |db| Ok(db.execute(update, &[&id, &owner, &now_micros()])? > 0))
    }
}

fn member_of(row: &Row) -> Result<Member> {
    build_member((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, row.try_get(5)?))
}

fn agreement_of(row: &Row) -> Result<karavan_domain::Agreement> {
    build_agreement((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get(6)?,
    ))
}

/// Live agreements that let `viewer` see other members' content.
fn agreements_granted_to(db: &mut Db<'_, '_>, viewer: &MemberId) -> Result<Vec<karavan_domain::Agreement>> {
    let rows = db.query(
        &format!(
            "SELECT {AGREEMENT_COLUMNS} FROM agreements
             WHERE revoked_at IS NULL AND (grantee = $1 OR grantee = '*') AND grantor != $1"
        ),
        &[&viewer.as_str()],
    )?;
    rows.iter().map(agreement_of).collect()
}

/// The [`VERSION_COLUMNS`] of a row, starting at column `at`.
fn raw_version(row: &Row, at: usize) -> Result<RawVersion> {
    Ok(RawVersion {
        seq: row.try_get(at)?,
        item_id: row.try_get(at + 1)?,
        owner: row.try_get(at + 2)?,
        uri: row.try_get(at + 3)?,
        version: row.try_get(at + 4)?,
        number: row.try_get(at + 5)?,
        document: row.try_get(at + 6)?,
        extensions: row.try_get(at + 7)?,
        original: row.try_get(at + 8)?,
        source_format: row.try_get(at + 9)?,
        pub_status: row.try_get(at + 10)?,
        committed_at: row.try_get(at + 11)?,
        available_at: row.try_get(at + 12)?,
    })
}

fn load_version(db: &mut Db<'_, '_>, seq: i64) -> Result<StoredVersion> {
    let row = db.query_one(
        &format!("SELECT {VERSION_COLUMNS} FROM versions v JOIN items i ON i.id = v.item_id WHERE v.seq = $1"),
        &[&seq],
    )?;
    raw_version(&row, 0)?.build()
}

fn subjects_of(db: &mut Db<'_, '_>, seq: i64) -> Result<Vec<String>> {
    let rows = db.query("SELECT key FROM version_subjects WHERE seq = $1", &[&seq])?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

fn embargo_of(db: &mut Db<'_, '_>, seq: i64) -> Result<Option<Timestamp>> {
    let row = db.query_one("SELECT embargoed_until FROM versions WHERE seq = $1", &[&seq])?;
    Ok(row.try_get::<_, Option<i64>>(0)?.map(Timestamp))
}

fn current_seq(db: &mut Db<'_, '_>, id: &ItemId) -> Result<Option<i64>> {
    let row = db.query_opt("SELECT current_seq FROM items WHERE id = $1", &[&id.as_str()])?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// `NotFound` ("{context}no member …") unless the member exists.
fn require_member(db: &mut Db<'_, '_>, member: &MemberId, context: &str) -> Result<()> {
    let exists: bool =
        db.query_one("SELECT EXISTS (SELECT 1 FROM members WHERE id = $1)", &[&member.as_str()])?.try_get(0)?;
    if exists { Ok(()) } else { Err(StoreError::NotFound(format!("{context}no member {member}"))) }
}

/// The visibility rule for one stored version, as `viewer` sees it at `now`.
fn visibility_of(
    db: &mut Db<'_, '_>,
    viewer: &MemberId,
    version: &StoredVersion,
    now: Timestamp,
) -> Result<Visibility> {
    let agreements = agreements_granted_to(db, viewer)?;
    let subjects = subjects_of(db, version.seq)?;
    let access = ItemAccess {
        owner: &version.owner,
        pub_status: version.pub_status,
        committed_at: version.committed_at,
        embargoed_until: embargo_of(db, version.seq)?,
        subjects: &subjects,
    };
    Ok(visibility_for(viewer, &access, &agreements, now))
}

fn publish_in(db: &mut Db<'_, '_>, clock: &mut Clock, new: NewVersion, hash: Vec<u8>) -> Result<PublishOutcome> {
    let existing = db.query_opt(
        "SELECT id, current_seq, version_count, created_at FROM items WHERE owner = $1 AND uri = $2",
        &[&new.owner.as_str(), &new.uri],
    )?;
    let existing: Option<(String, i64, i64, i64)> = match existing {
        Some(row) => Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?)),
        None => None,
    };

    let (item_id, number, version, created_at) = match existing {
        Some((item_id, current_seq, count, created_at)) => {
            let row = db.query_one("SELECT version, content_hash FROM versions WHERE seq = $1", &[&current_seq])?;
            let (current_version, current_hash): (String, Vec<u8>) = (row.try_get(0)?, row.try_get(1)?);
            match &new.version {
                Some(version) => {
                    let same = db.query_opt(
                        "SELECT seq, content_hash FROM versions WHERE item_id = $1 AND version = $2",
                        &[&item_id, version],
                    )?;
                    if let Some(row) = same {
                        let (seq, stored_hash): (i64, Vec<u8>) = (row.try_get(0)?, row.try_get(1)?);
                        if stored_hash == hash {
                            return Ok(PublishOutcome::Unchanged(load_version(db, seq)?));
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
                        return Ok(PublishOutcome::Unchanged(load_version(db, current_seq)?));
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

    let committed_at = clock.next()?;
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
    let (committed, available) = (committed_at.micros(), available_at.micros());
    let status = new.pub_status.as_str();

    if number == 1 {
        // The version row refers to its item, so a new item's row comes first (its current_seq is
        // set by the upsert below).
        db.execute(
            "INSERT INTO items (id, owner, uri, current_seq, version_count, pub_status, committed_at, available_at,
                dated_at, created_at)
             VALUES ($1, $2, $3, 0, 0, $4, $5, $6, $5, $7)",
            &[&item_id.as_str(), &new.owner.as_str(), &new.uri, &status, &committed, &available, &created_at],
        )?;
    }
    let embargo = new.embargoed_until.map(Timestamp::micros);
    let seq: i64 = db
        .query_one(
            "INSERT INTO versions (item_id, version, number, content_hash, document, extensions, original,
                source_format, pub_status, embargoed_until, committed_at, available_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING seq",
            &[
                &item_id.as_str(),
                &version,
                &number,
                &hash,
                &document_text,
                &extensions_text,
                &new.original,
                &new.source_format,
                &status,
                &embargo,
                &committed,
                &available,
            ],
        )?
        .try_get(0)?;
    // The outbox row is part of the same transaction: a stored version always has its event, and an
    // event never exists without its version.
    let kind = EventKind::of_version(number, new.pub_status, available_at > committed_at);
    db.execute(
        "INSERT INTO outbox (seq, item_id, kind, due_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&seq, &item_id.as_str(), &kind.as_str(), &available, &committed],
    )?;
    // Translation jobs too: a stored version always has its jobs (head and body) for the languages its
    // readers want.
    let urgency = new.urgency.map(|u| i64::from(u.get()));
    translation::enqueue_for_version(db, seq, &new.owner, new.language.as_deref(), new.pub_status, urgency, committed)?;
    for subject in &new.subjects {
        db.execute("INSERT INTO version_subjects (seq, key) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&seq, subject])?;
    }
    db.execute(
        "INSERT INTO items (id, owner, uri, current_seq, version_count, pub_status, committed_at, available_at,
            language, type, urgency, dated_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET current_seq = excluded.current_seq, version_count = excluded.version_count,
            pub_status = excluded.pub_status, committed_at = excluded.committed_at,
            available_at = excluded.available_at, language = excluded.language, type = excluded.type,
            urgency = excluded.urgency, dated_at = excluded.dated_at",
        &[
            &item_id.as_str(),
            &new.owner.as_str(),
            &new.uri,
            &seq,
            &number,
            &status,
            &committed,
            &available,
            &new.language,
            &new.item_type,
            &urgency,
            &dated_at,
            &created_at,
        ],
    )?;
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

impl crate::ItemStore for PostgresStore {
    fn publish(&self, version: NewVersion) -> Result<PublishOutcome> {
        let hash = content_hash(&version);
        self.writer.run_clocked(move |db, clock| publish_in(db, clock, version.clone(), hash.clone()))
    }

    fn publish_all(&self, versions: Vec<NewVersion>) -> Result<Vec<PublishOutcome>> {
        let hashed: Vec<(NewVersion, Vec<u8>)> = versions.into_iter().map(|v| (v.clone(), content_hash(&v))).collect();
        // One job, so one savepoint: a failure rolls the whole batch back.
        self.writer.run_clocked(move |db, clock| {
            hashed.iter().map(|(version, hash)| publish_in(db, clock, version.clone(), hash.clone())).collect()
        })
    }

    fn item(&self, viewer: &MemberId, id: &ItemId, now: Timestamp) -> Result<ItemRead> {
        let (viewer, id) = (viewer.clone(), id.clone());
        self.read(move |db| item_in(db, &viewer, &id, now))
    }

    fn versions(&self, viewer: &MemberId, id: &ItemId, now: Timestamp) -> Result<Option<Vec<StoredVersion>>> {
        let (viewer, id) = (viewer.clone(), id.clone());
        self.read(move |db| {
            let Some(current) = current_seq(db, &id)? else {
                return Ok(None);
            };
            let agreements = agreements_granted_to(db, &viewer)?;
            let rows = db.query(
                &format!(
                    "SELECT {VERSION_COLUMNS} FROM versions v JOIN items i ON i.id = v.item_id
                     WHERE v.item_id = $1 ORDER BY v.seq"
                ),
                &[&id.as_str()],
            )?;
            let mut visible = Vec::new();
            let mut current_visible = false;
            for row in &rows {
                let version = raw_version(row, 0)?.build()?;
                let subjects = subjects_of(db, version.seq)?;
                let access = ItemAccess {
                    owner: &version.owner,
                    pub_status: version.pub_status,
                    committed_at: version.committed_at,
                    embargoed_until: embargo_of(db, version.seq)?,
                    subjects: &subjects,
                };
                if visibility_for(&viewer, &access, &agreements, now) != Visibility::Hidden {
                    current_visible |= version.seq == current;
                    visible.push(version);
                }
            }
            // A kill withdraws the content everywhere: others keep only the kill notice.
            let killed = visible.last().is_some_and(|v| v.pub_status == PubStatus::Canceled && v.owner != viewer);
            if killed {
                visible.retain(|v| v.pub_status == PubStatus::Canceled);
            }
            Ok(current_visible.then_some(visible))
        })
    }

    fn version_for(&self, viewer: &MemberId, id: &ItemId, seq: i64, now: Timestamp) -> Result<VersionRead> {
        let (viewer, id) = (viewer.clone(), id.clone());
        self.read(move |db| {
            let current = match item_in(db, &viewer, &id, now)? {
                ItemRead::NotFound => return Ok(VersionRead::NotFound),
                ItemRead::Killed(notice) => return Ok(VersionRead::Killed(notice)),
                ItemRead::Visible(current, right) if current.seq == seq => {
                    return Ok(VersionRead::Visible(current, right));
                }
                ItemRead::Visible(current, _) => current,
            };
            let item: Option<String> =
                db.query_opt("SELECT item_id FROM versions WHERE seq = $1", &[&seq])?.map(|r| r.get(0));
            if item.as_deref() != Some(current.item_id.as_str()) {
                return Ok(VersionRead::NotFound);
            }
            let version = load_version(db, seq)?;
            Ok(match visibility_of(db, &viewer, &version, now)? {
                Visibility::Visible { right, .. } => VersionRead::Visible(version, right),
                Visibility::Killed { .. } => VersionRead::Killed(version),
                Visibility::Hidden => VersionRead::NotFound,
            })
        })
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
        let (viewer, query) = (viewer.clone(), query.clone());
        self.read_at_horizon(now, move |db, horizon| list_in(db, &viewer, &query, horizon))
    }
}

fn item_in(db: &mut Db<'_, '_>, viewer: &MemberId, id: &ItemId, now: Timestamp) -> Result<ItemRead> {
    let Some(current) = current_seq(db, id)? else {
        return Ok(ItemRead::NotFound);
    };
    let version = load_version(db, current)?;
    Ok(match visibility_of(db, viewer, &version, now)? {
        Visibility::Visible { right, .. } => ItemRead::Visible(version, right),
        Visibility::Killed { .. } => ItemRead::Killed(version),
        Visibility::Hidden => ItemRead::NotFound,
    })
}

impl crate::AccessStore for PostgresStore {
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
        self.writer.run(move |db| {
            db.execute(
                "INSERT INTO members (id, name, country, languages, contact, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &id.as_str(),
                    &member.name.as_str(),
                    &member.country.as_str(),
                    &languages,
                    &member.contact,
                    &created_at.micros(),
                ],
            )?;
            Ok(())
        })?;
        Ok(record)
    }

    fn members(&self) -> Result<Vec<Member>> {
        self.read(|db| {
            let rows =
                db.query("SELECT id, name, country, languages, contact, created_at FROM members ORDER BY id", &[])?;
            rows.iter().map(member_of).collect()
        })
    }

    fn member(&self, id: &MemberId) -> Result<Option<Member>> {
        let id = id.clone();
        self.read(move |db| {
            let row = db.query_opt(
                "SELECT id, name, country, languages, contact, created_at FROM members WHERE id = $1",
                &[&id.as_str()],
            )?;
            row.as_ref().map(member_of).transpose()
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
        let hash = key.hash().0.to_vec();
        let record = info.clone();
        self.writer.run(move |db| {
            require_member(db, &record.member, "")?;
            db.execute(
                "INSERT INTO api_keys (id, member_id, role, hash, label, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &record.id.as_str(),
                    &record.member.as_str(),
                    &record.role.as_str(),
                    &hash,
                    &record.label,
                    &record.created_at.micros(),
                ],
            )?;
            Ok(())
        })?;
        Ok((info, key))
    }

    fn keys(&self, member: &MemberId) -> Result<Vec<KeyInfo>> {
        let member = member.clone();
        self.read(move |db| {
            let rows = db.query(
                "SELECT id, role, label, created_at, revoked_at FROM api_keys WHERE member_id = $1 ORDER BY id",
                &[&member.as_str()],
            )?;
            rows.iter()
                .map(|row| {
                    let (id, role): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                    Ok(KeyInfo {
                        id: KeyId::parse(&id).map_err(|e| corrupt("key id", e))?,
                        member: member.clone(),
                        role: Role::parse(&role).map_err(|e| corrupt("key role", e))?,
                        label: row.try_get(2)?,
                        created_at: Timestamp(row.try_get(3)?),
                        revoked_at: row.try_get::<_, Option<i64>>(4)?.map(Timestamp),
                    })
                })
                .collect()
        })
    }

    fn revoke_key(&self, member: &MemberId, key: &KeyId) -> Result<bool> {
        self.revoke(
            "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND member_id = $2 AND revoked_at IS NULL",
            key.as_str(),
            member.as_str(),
        )
    }

    fn authenticate(&self, key: &KeyHash) -> Result<Option<Principal>> {
        let hash = key.0.to_vec();
        self.read(move |db| {
            let row = db.query_opt(
                "SELECT id, member_id, role FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
                &[&hash],
            )?;
            row.map(|row| {
                let (id, member, role): (String, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                Ok(Principal {
                    key: KeyId::parse(&id).map_err(|e| corrupt("key id", e))?,
                    member: MemberId::parse(&member).map_err(|e| corrupt("key member", e))?,
                    role: Role::parse(&role).map_err(|e| corrupt("key role", e))?,
                })
            })
            .transpose()
        })
    }

    fn add_agreement(&self, agreement: NewAgreement) -> Result<karavan_domain::Agreement> {
        if agreement.grantee == Grantee::Member(agreement.grantor.clone()) {
            return Err(StoreError::Invalid("grantee: a member cannot grant an agreement to itself".to_string()));
        }
        let record = karavan_domain::Agreement {
            id: karavan_domain::AgreementId::new(new_ulid()?),
            grantor: agreement.grantor,
            grantee: agreement.grantee,
            right: agreement.right,
            subjects: agreement.subjects,
            delay_minutes: agreement.delay_minutes,
            created_at: Timestamp(now_micros()),
        };
        let stored = record.clone();
        self.writer.run(move |db| {
            if let Grantee::Member(grantee) = &stored.grantee {
                require_member(db, grantee, "grantee: ")?;
            }
            let subjects = serde_json::to_string(&stored.subjects).map_err(|e| StoreError::Invalid(e.to_string()))?;
            db.execute(
                "INSERT INTO agreements (id, grantor, grantee, \"right\", subjects, delay_minutes, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &stored.id.as_str(),
                    &stored.grantor.as_str(),
                    &stored.grantee.to_string(),
                    &stored.right.as_str(),
                    &subjects,
                    &i64::from(stored.delay_minutes),
                    &stored.created_at.micros(),
                ],
            )?;
            Ok(())
        })?;
        Ok(record)
    }

    fn agreements_of(&self, member: &MemberId) -> Result<Vec<karavan_domain::Agreement>> {
        let member = member.clone();
        self.read(move |db| {
            let rows = db.query(
                &format!(
                    "SELECT {AGREEMENT_COLUMNS} FROM agreements
                     WHERE revoked_at IS NULL AND (grantor = $1 OR grantee = $1 OR grantee = '*') ORDER BY id"
                ),
                &[&member.as_str()],
            )?;
            rows.iter().map(agreement_of).collect()
        })
    }

    fn revoke_agreement(&self, grantor: &MemberId, id: &karavan_domain::AgreementId) -> Result<bool> {
        self.revoke(
            "UPDATE agreements SET revoked_at = $3 WHERE id = $1 AND grantor = $2 AND revoked_at IS NULL",
            id.as_str(),
            grantor.as_str(),
        )
    }

    fn live_agreements(&self) -> Result<Vec<karavan_domain::Agreement>> {
        self.read(|db| {
            let rows = db.query(
                &format!("SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE revoked_at IS NULL ORDER BY id"),
                &[],
            )?;
            rows.iter().map(agreement_of).collect()
        })
    }
}

fn saved_search_of(member: &MemberId, row: &Row) -> Result<SavedSearch> {
    build_saved_search(member, (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?))
}

crate::forward::forward_to_backend!(PostgresStore);

impl crate::SavedSearchStore for PostgresStore {
    fn add_saved_search(&self, member: &MemberId, name: &str, query: Vec<(String, String)>) -> Result<SavedSearch> {
        let record = SavedSearch {
            id: SavedSearchId::new(new_ulid()?),
            member: member.clone(),
            name: name.to_string(),
            query,
            created_at: Timestamp(now_micros()),
        };
        let stored = record.clone();
        let query = serde_json::to_string(&stored.query).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.writer.run(move |db| {
            let inserted = db.execute(
                "INSERT INTO saved_searches (id, member_id, name, query, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (member_id, name) DO NOTHING",
                &[&stored.id.as_str(), &stored.member.as_str(), &stored.name, &query, &stored.created_at.micros()],
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
        let member = member.clone();
        self.read(move |db| {
            let rows = db.query(
                "SELECT id, name, query, created_at FROM saved_searches WHERE member_id = $1 ORDER BY name",
                &[&member.as_str()],
            )?;
            rows.iter().map(|row| saved_search_of(&member, row)).collect()
        })
    }

    fn saved_search(&self, member: &MemberId, id: &SavedSearchId) -> Result<Option<SavedSearch>> {
        let (member, id) = (member.clone(), id.clone());
        self.read(move |db| {
            let row = db.query_opt(
                "SELECT id, name, query, created_at FROM saved_searches WHERE member_id = $1 AND id = $2",
                &[&member.as_str(), &id.as_str()],
            )?;
            row.map(|row| saved_search_of(&member, &row)).transpose()
        })
    }

    fn delete_saved_search(&self, member: &MemberId, id: &SavedSearchId) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |db| {
            let deleted = db.execute(
                "DELETE FROM saved_searches WHERE member_id = $1 AND id = $2",
                &[&member.as_str(), &id.as_str()],
            )?;
            Ok(deleted > 0)
        })
    }
}

impl crate::DistributionStore for PostgresStore {
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
        self.read(|db| {
            Ok(db.query_one("SELECT position FROM outbox_position WHERE name = 'fanout'", &[])?.try_get(0)?)
        })
    }

    fn outbox_head(&self) -> Result<i64> {
        self.read(|db| Ok(db.query_one("SELECT COALESCE(MAX(id), 0)::bigint FROM outbox", &[])?.try_get(0)?))
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
        self.read(|db| {
            let next: Option<i64> =
                db.query_one("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'", &[])?.try_get(0)?;
            Ok(next.map(Timestamp))
        })
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

impl crate::Store for PostgresStore {
    fn identity(&self) -> Result<String> {
        self.read(|db| Ok(db.query_one("SELECT id FROM store_identity", &[])?.try_get(0)?))
    }

    fn health(&self) -> crate::StoreHealth {
        // The database's disk is the database server's to watch; a write that succeeds clears this.
        crate::StoreHealth { storage_full_since: self.writer.storage_full_since() }
    }

    fn head_positions(&self) -> Result<(i64, u64)> {
        self.read(|db| {
            let head_seq: i64 = db.query_one("SELECT COALESCE(MAX(seq), 0)::bigint FROM versions", &[])?.try_get(0)?;
            let behind: i64 = db
                .query_one(
                    "SELECT COUNT(*) FROM outbox WHERE id > (SELECT position FROM outbox_position WHERE name = 'fanout')",
                    &[],
                )?
                .try_get(0)?;
            Ok((head_seq, u64::try_from(behind).unwrap_or(0)))
        })
    }

    fn queue_depths(&self) -> Result<crate::QueueDepths> {
        self.read(|db| {
            let cap = crate::QUEUE_DEPTH_CAP as i64;
            let mut count = |sql: &str| -> Result<u64> {
                let n: i64 = db.query_one(sql, &[&cap])?.try_get(0)?;
                Ok(u64::try_from(n).unwrap_or(0))
            };
            Ok(crate::QueueDepths {
                deliveries_pending: count(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE state = 'pending' LIMIT $1) pending",
                )?,
                translation_jobs_queued: count(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM translation_jobs WHERE state = 'queued' LIMIT $1) queued",
                )?,
            })
        })
    }

    fn stats(&self) -> Result<crate::StoreStats> {
        let (head_seq, outbox_behind) = self.head_positions()?;
        self.read(move |db| {
            let mut by_state = |sql: &str| -> Result<Vec<(String, u64)>> {
                let rows = db.query(sql, &[])?;
                rows.iter()
                    .map(|row| {
                        Ok((row.try_get::<_, String>(0)?, u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0)))
                    })
                    .collect()
            };
            let deliveries = by_state("SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state")?;
            let jobs = by_state("SELECT state, COUNT(*) FROM translation_jobs GROUP BY state")?;
            let translation_jobs = queue_counts(jobs.into_iter())?;
            Ok(crate::StoreStats { head_seq, deliveries, translation_jobs, outbox_behind })
        })
    }
}

/// Lists a viewer's wire. The SQL mirrors `visibility_for`, like the SQLite backend's.
fn list_in(db: &mut Db<'_, '_>, viewer: &MemberId, query: &ListQuery, horizon: Timestamp) -> Result<ListPage> {
    let agreements = agreements_granted_to(db, viewer)?;
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |value: Box<dyn ToSql + Sync + Send>| {
        values.push(value);
        format!("${}", values.len())
    };

    let mut grants = Vec::new();
    for agreement in &agreements {
        let grantor = push(Box::new(agreement.grantor.to_string()));
        let delay = push(Box::new(i64::from(agreement.delay_minutes)));
        let republish = i64::from(agreement.right == Right::Republish);
        if agreement.subjects.is_empty() {
            grants.push(format!("({grantor}::text, {delay}::bigint, NULL::text, {republish}::bigint)"));
        }
        for subject in &agreement.subjects {
            let subject = push(Box::new(subject.clone()));
            grants.push(format!("({grantor}::text, {delay}::bigint, {subject}::text, {republish}::bigint)"));
        }
    }
    let grants_cte = if grants.is_empty() {
        "g(grantor, delay, subject, republish) AS (SELECT NULL::text, NULL::bigint, NULL::text, NULL::bigint WHERE FALSE)"
            .to_string()
    } else {
        format!("g(grantor, delay, subject, republish) AS (VALUES {})", grants.join(", "))
    };
    let viewer_param = push(Box::new(viewer.to_string()));

    let mut filters = Vec::new();
    if let Some(owner) = &query.owner {
        filters.push(format!("i.owner = {}", push(Box::new(owner.to_string()))));
    }
    if !query.languages.is_empty() {
        let mut alternatives = Vec::new();
        for language in &query.languages {
            let exact = push(Box::new(language.to_ascii_lowercase()));
            let prefix = push(Box::new(format!("{}-%", language.to_ascii_lowercase())));
            alternatives.push(format!("lower(i.language) = {exact} OR lower(i.language) LIKE {prefix}"));
        }
        filters.push(format!("({})", alternatives.join(" OR ")));
    }
    if let Some(item_type) = &query.item_type {
        filters.push(format!("i.type = {}", push(Box::new(item_type.clone()))));
    }
    if let Some((low, high)) = query.urgency {
        let low = push(Box::new(i64::from(low)));
        let high = push(Box::new(i64::from(high)));
        filters.push(format!("i.urgency BETWEEN {low} AND {high}"));
    }
    if let Some(from) = query.from {
        filters.push(format!("i.dated_at >= {}", push(Box::new(from.micros()))));
    }
    if let Some(to) = query.to {
        filters.push(format!("i.dated_at <= {}", push(Box::new(to.micros()))));
    }
    // Kill notices only: said here too, so that the item scan can use the index of canceled items.
    if query.include_kills && query.only_kills {
        filters.push("i.pub_status = 'canceled'".to_string());
    }
    if !query.subjects.is_empty() {
        let keys: Vec<String> = query.subjects.iter().map(|subject| push(Box::new(subject.clone()))).collect();
        filters.push(format!(
            "EXISTS (SELECT 1 FROM version_subjects s WHERE s.seq = i.current_seq AND s.key IN ({}))",
            keys.join(", ")
        ));
    }
    if let Some(items) = &query.items {
        let ids: Vec<String> = items.iter().map(|item| item.to_string()).collect();
        filters.push(format!("i.id = ANY({}::text[])", push(Box::new(ids))));
    }
    let filter_sql = filters.iter().map(|f| format!(" AND {f}")).collect::<String>();

    let horizon_param = push(Box::new(horizon.micros()));
    let mut outer = vec![format!("vt IS NOT NULL AND vt <= {horizon_param}")];
    if !query.include_kills {
        outer.push("pub_status != 'canceled'".to_string());
    } else if query.only_kills {
        outer.push("pub_status = 'canceled'".to_string());
    }
    let order = match query.page {
        Page::NewestFirst(None) => "vt DESC, seq DESC",
        Page::NewestFirst(Some(cursor)) => {
            let at = push(Box::new(cursor.at.micros()));
            let seq = push(Box::new(cursor.seq));
            outer.push(format!("(vt, seq) < ({at}, {seq})"));
            "vt DESC, seq DESC"
        }
        Page::Since(cursor) => {
            let at = push(Box::new(cursor.at.micros()));
            let seq = push(Box::new(cursor.seq));
            outer.push(format!("(vt, seq) > ({at}, {seq})"));
            "vt ASC, seq ASC"
        }
    };
    let limit = push(Box::new(i64::from(query.limit.clamp(1, 1000))));
    // Every query below ends with one more parameter: a bound on `available_at` that keeps the scan to
    // a narrow range of the `items_available` index.
    let bound = format!("${}", values.len() + 1);
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
                FROM items i
                WHERE (i.owner = {viewer_param} OR i.owner IN (SELECT grantor FROM g)){filter_sql}{range}
             )"
        )
    };
    let outer_sql = outer.join(" AND ");
    let max_delay = agreements.iter().map(|a| i64::from(a.delay_minutes) * 60_000_000).max().unwrap_or(0);
    let run = |db: &mut Db<'_, '_>, sql: &str, bound_value: i64| -> Result<Vec<(i64, i64, bool)>> {
        let mut parameters: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
        parameters.push(&bound_value);
        let rows = db.query(sql, &parameters)?;
        rows.iter()
            .map(|row| {
                Ok((row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?, row.try_get::<_, Option<i64>>(2)? == Some(1)))
            })
            .collect()
    };
    let main_sql = format!(
        "{} SELECT seq, vt, republish FROM candidates WHERE {outer_sql} ORDER BY {order} LIMIT {limit}",
        candidates(&format!(" AND i.available_at >= {bound}"))
    );
    let lower_bound = match query.page {
        Page::Since(cursor) => cursor.at.micros().saturating_sub(max_delay),
        Page::NewestFirst(cursor) => {
            let ceiling = cursor.map_or(horizon.micros().saturating_add(1), |c| c.at.micros().saturating_add(1));
            let probe_sql = format!(
                "{} SELECT seq, vt, republish FROM candidates WHERE {outer_sql} ORDER BY available_at DESC LIMIT {limit}",
                candidates(&format!(" AND i.available_at < {bound}"))
            );
            let probe = run(db, &probe_sql, ceiling)?;
            if probe.len() as u32 >= query.limit.clamp(1, 1000) {
                probe.iter().map(|(_, vt, _)| *vt).min().unwrap_or(i64::MIN).saturating_sub(max_delay)
            } else {
                i64::MIN
            }
        }
    };
    let positions = run(db, &main_sql, lower_bound)?;
    let mut entries = Vec::with_capacity(positions.len());
    for (seq, at, republish) in positions {
        let right = if republish { Right::Republish } else { Right::View };
        entries.push(ListEntry { cursor: Cursor { at: Timestamp(at), seq }, version: load_version(db, seq)?, right });
    }
    let full = entries.len() as u32 >= query.limit.clamp(1, 1000);
    let horizon_cursor = Cursor { at: horizon, seq: i64::MAX };
    let next = match query.page {
        Page::NewestFirst(_) => full.then(|| entries.last().map(|e| e.cursor)).flatten(),
        Page::Since(cursor) => {
            Some(if full { entries.last().map_or(cursor, |e| e.cursor) } else { horizon_cursor.max(cursor) })
        }
    };
    Ok(ListPage { entries, next, horizon: horizon_cursor })
}
