//! Feed ingest providers and the entries they have seen, in SQLite.

use karavan_domain::{FeedId, ItemId, MemberId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, corrupt, new_ulid, now_micros};
use crate::{FeedProvider, FeedSpec, PollRecord, Result, SeenEntry, StoreError};

const COLUMNS: &str = "id, member_id, name, url, language, subjects, interval_seconds, paused, etag, last_modified, \
     next_poll_at, last_polled_at, last_success_at, last_error, last_error_at, consecutive_failures, items_published, \
     created_at";

fn provider(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<FeedProvider>> {
    let id: String = row.get(0)?;
    let member: String = row.get(1)?;
    let subjects: String = row.get(5)?;
    let interval: i64 = row.get(6)?;
    let failures: i64 = row.get(15)?;
    let published: i64 = row.get(16)?;
    let build = || -> Result<FeedProvider> {
        Ok(FeedProvider {
            id: FeedId::parse(&id).map_err(|e| corrupt("feed id", e))?,
            member: MemberId::parse(&member).map_err(|e| corrupt("feed member", e))?,
            spec: FeedSpec {
                name: row.get(2)?,
                url: row.get(3)?,
                language: row.get(4)?,
                subjects: serde_json::from_str(&subjects).map_err(|e| corrupt("feed subjects", e))?,
                interval_seconds: u32::try_from(interval).unwrap_or(u32::MAX),
            },
            paused: row.get(7)?,
            etag: row.get(8)?,
            last_modified: row.get(9)?,
            next_poll_at: Timestamp(row.get(10)?),
            last_polled_at: row.get::<_, Option<i64>>(11)?.map(Timestamp),
            last_success_at: row.get::<_, Option<i64>>(12)?.map(Timestamp),
            last_error: row.get(13)?,
            last_error_at: row.get::<_, Option<i64>>(14)?.map(Timestamp),
            consecutive_failures: u32::try_from(failures).unwrap_or(u32::MAX),
            items_published: u64::try_from(published).unwrap_or(0),
            created_at: Timestamp(row.get(17)?),
        })
    };
    Ok(build())
}

fn query(connection: &Connection, filter: &str, values: &[&dyn rusqlite::ToSql]) -> Result<Vec<FeedProvider>> {
    let mut statement = connection.prepare_cached(&format!("SELECT {COLUMNS} FROM feed_providers {filter}"))?;
    let rows = statement.query_map(values, provider)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().collect()
}

fn one(connection: &Connection, member: &MemberId, id: &FeedId) -> Result<FeedProvider> {
    query(connection, "WHERE id = ?1 AND member_id = ?2", &[&id.as_str(), &member.as_str()])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("no feed provider {id}")))
}

fn taken(url: &str) -> StoreError {
    StoreError::Conflict { code: "conflict", message: format!("url: your member already polls {url}") }
}

fn subjects_json(spec: &FeedSpec) -> Result<String> {
    serde_json::to_string(&spec.subjects).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl SqliteStore {
    pub(super) fn add_feed_in(&self, member: &MemberId, spec: FeedSpec) -> Result<FeedProvider> {
        let id = FeedId::new(new_ulid()?);
        let member = member.clone();
        let subjects = subjects_json(&spec)?;
        let now = now_micros();
        self.writer.run(move |connection, _| {
            super::require_member(connection, &member, "")?;
            let inserted = connection.execute(
                "INSERT INTO feed_providers (id, member_id, name, url, language, subjects, interval_seconds,
                    next_poll_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT (member_id, url) DO NOTHING",
                params![
                    id.as_str(),
                    member.as_str(),
                    spec.name,
                    spec.url,
                    spec.language,
                    subjects,
                    spec.interval_seconds,
                    now
                ],
            )?;
            if inserted == 0 {
                return Err(taken(&spec.url));
            }
            one(connection, &member, &id)
        })
    }

    pub(super) fn feeds_in(&self, member: &MemberId) -> Result<Vec<FeedProvider>> {
        self.read(|connection| query(connection, "WHERE member_id = ?1 ORDER BY created_at, id", &[&member.as_str()]))
    }

    pub(super) fn feed_in(&self, member: &MemberId, id: &FeedId) -> Result<Option<FeedProvider>> {
        self.read(|connection| match one(connection, member, id) {
            Ok(found) => Ok(Some(found)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        })
    }

    pub(super) fn update_feed_in(&self, member: &MemberId, id: &FeedId, spec: FeedSpec) -> Result<FeedProvider> {
        let (member, id) = (member.clone(), id.clone());
        let subjects = subjects_json(&spec)?;
        self.writer.run(move |connection, _| {
            let current = one(connection, &member, &id)?;
            let clash: Option<String> = connection
                .query_row(
                    "SELECT id FROM feed_providers WHERE member_id = ?1 AND url = ?2 AND id != ?3",
                    params![member.as_str(), spec.url, id.as_str()],
                    |row| row.get(0),
                )
                .optional()?;
            if clash.is_some() {
                return Err(taken(&spec.url));
            }
            // Validators belong to the old URL.
            let forget = current.spec.url != spec.url;
            connection.execute(
                "UPDATE feed_providers SET name = ?3, url = ?4, language = ?5, subjects = ?6, interval_seconds = ?7,
                    etag = CASE WHEN ?8 THEN NULL ELSE etag END,
                    last_modified = CASE WHEN ?8 THEN NULL ELSE last_modified END
                 WHERE id = ?1 AND member_id = ?2",
                params![
                    id.as_str(),
                    member.as_str(),
                    spec.name,
                    spec.url,
                    spec.language,
                    subjects,
                    spec.interval_seconds,
                    forget
                ],
            )?;
            one(connection, &member, &id)
        })
    }

    pub(super) fn delete_feed_in(&self, member: &MemberId, id: &FeedId) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |connection, _| {
            let deleted = connection.execute(
                "DELETE FROM feed_providers WHERE id = ?1 AND member_id = ?2",
                params![id.as_str(), member.as_str()],
            )?;
            Ok(deleted > 0)
        })
    }

    pub(super) fn set_feed_paused_in(
        &self,
        member: &MemberId,
        id: &FeedId,
        paused: bool,
        now: Timestamp,
    ) -> Result<FeedProvider> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |connection, _| {
            one(connection, &member, &id)?;
            if paused {
                connection.execute("UPDATE feed_providers SET paused = 1 WHERE id = ?1", [id.as_str()])?;
            } else {
                connection.execute(
                    "UPDATE feed_providers SET paused = 0, consecutive_failures = 0, next_poll_at = ?2 WHERE id = ?1",
                    params![id.as_str(), now.micros()],
                )?;
            }
            one(connection, &member, &id)
        })
    }

    pub(super) fn claim_feeds_in(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<FeedProvider>> {
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            let ids: Vec<String> = connection
                .prepare_cached(
                    "UPDATE feed_providers SET lease_holder = ?2, lease_until = ?3
                     WHERE id IN (SELECT id FROM feed_providers WHERE paused = 0 AND next_poll_at <= ?1
                        AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY next_poll_at, id LIMIT ?4)
                     RETURNING id",
                )?
                .query_map(params![now.micros(), holder, lease_until.micros(), limit], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
            query(connection, "WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY next_poll_at, id", &[&ids])
        })
    }

    pub(super) fn release_feeds_in(&self, holder: &str) -> Result<usize> {
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            Ok(connection.execute(
                "UPDATE feed_providers SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ?1",
                [holder],
            )?)
        })
    }

    pub(super) fn next_feed_due_in(&self) -> Result<Option<Timestamp>> {
        self.read(|connection| {
            // A provider being polled falls due again when its lease ends (if its poll is never recorded).
            let next: Option<i64> = connection.query_row(
                "SELECT MIN(MAX(next_poll_at, COALESCE(lease_until, 0))) FROM feed_providers WHERE paused = 0",
                [],
                |row| row.get(0),
            )?;
            Ok(next.map(Timestamp))
        })
    }

    pub(super) fn seen_entries_in(&self, id: &FeedId, keys: &[String], hashes: &[String]) -> Result<Vec<SeenEntry>> {
        let keys = serde_json::to_string(keys).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let hashes = serde_json::to_string(hashes).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT entry_key, content_hash, item_id FROM feed_entries WHERE provider_id = ?1
                    AND (entry_key IN (SELECT value FROM json_each(?2)) OR content_hash IN (SELECT value FROM json_each(?3)))",
            )?;
            let rows = statement
                .query_map(params![id.as_str(), keys, hashes], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(key, hash, item)| {
                    let item_id = item.map(|i| ItemId::parse(&i).map_err(|e| corrupt("feed entry item", e))).transpose()?;
                    Ok(SeenEntry { key, hash, item_id })
                })
                .collect()
        })
    }

    pub(super) fn record_feed_poll_in(
        &self,
        holder: &str,
        id: &FeedId,
        at: Timestamp,
        record: PollRecord,
    ) -> Result<()> {
        let (id, holder) = (id.clone(), holder.to_string());
        self.writer.run(move |connection, _| {
            // Only the holder of the poll's lease (or anyone, if none is held) records it, and the
            // record ends the lease.
            let released = connection.execute(
                "UPDATE feed_providers SET lease_holder = NULL, lease_until = NULL
                 WHERE id = ?1 AND (lease_holder IS NULL OR lease_holder = ?2)",
                params![id.as_str(), holder],
            )?;
            if released == 0 {
                let exists: Option<i64> = connection
                    .query_row("SELECT 1 FROM feed_providers WHERE id = ?1", [id.as_str()], |row| row.get(0))
                    .optional()?;
                return match exists {
                    Some(_) => Err(crate::common::lost("the feed poll")),
                    None => Err(StoreError::NotFound(format!("no feed provider {id}"))),
                };
            }
            match record {
                PollRecord::Fetched { etag, last_modified, entries, published, next_poll_at } => {
                    connection.execute(
                        "UPDATE feed_providers SET etag = ?2, last_modified = ?3, next_poll_at = ?4, last_polled_at = ?5,
                            last_success_at = ?5, consecutive_failures = 0, items_published = items_published + ?6
                         WHERE id = ?1",
                        params![id.as_str(), etag, last_modified, next_poll_at.micros(), at.micros(), published],
                    )?;
                    let mut insert = connection.prepare_cached(
                        "INSERT INTO feed_entries (provider_id, entry_key, content_hash, item_id, seen_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (provider_id, entry_key) DO UPDATE SET content_hash = excluded.content_hash,
                            item_id = COALESCE(excluded.item_id, item_id), seen_at = excluded.seen_at",
                    )?;
                    for entry in entries {
                        insert.execute(params![
                            id.as_str(),
                            entry.key,
                            entry.hash,
                            entry.item_id.as_ref().map(ItemId::as_str),
                            at.micros()
                        ])?;
                    }
                }
                PollRecord::Failed { error, next_poll_at, pause_after } => {
                    connection.execute(
                        "UPDATE feed_providers SET last_polled_at = ?2, last_error = ?3, last_error_at = ?2,
                            next_poll_at = ?4, consecutive_failures = consecutive_failures + 1,
                            paused = CASE WHEN consecutive_failures + 1 >= ?5 THEN 1 ELSE paused END
                         WHERE id = ?1",
                        params![id.as_str(), at.micros(), error, next_poll_at.micros(), pause_after],
                    )?;
                }
            }
            Ok(())
        })
    }
}
