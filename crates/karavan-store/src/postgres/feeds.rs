//! Feed ingest providers and the entries they have seen, in PostgreSQL.

use karavan_domain::{FeedId, ItemId, MemberId, Timestamp};
use postgres::Row;

use super::PostgresStore;
use super::db::{Db, Params};
use crate::common::{corrupt, lost, new_ulid, now_micros};
use crate::{FeedProvider, FeedSpec, PollRecord, Result, SeenEntry, StoreError};

const COLUMNS: &str = "id, member_id, name, url, language, subjects, interval_seconds, paused, etag, last_modified, \
     next_poll_at, last_polled_at, last_success_at, last_error, last_error_at, consecutive_failures, items_published, \
     created_at";

fn provider(row: &Row) -> Result<FeedProvider> {
    let id: String = row.try_get(0)?;
    let member: String = row.try_get(1)?;
    let subjects: String = row.try_get(5)?;
    let interval: i64 = row.try_get(6)?;
    let failures: i64 = row.try_get(15)?;
    let published: i64 = row.try_get(16)?;
    Ok(FeedProvider {
        id: FeedId::parse(&id).map_err(|e| corrupt("feed id", e))?,
        member: MemberId::parse(&member).map_err(|e| corrupt("feed member", e))?,
        spec: FeedSpec {
            name: row.try_get(2)?,
            url: row.try_get(3)?,
            language: row.try_get(4)?,
            subjects: serde_json::from_str(&subjects).map_err(|e| corrupt("feed subjects", e))?,
            interval_seconds: u32::try_from(interval).unwrap_or(u32::MAX),
        },
        paused: row.try_get(7)?,
        etag: row.try_get(8)?,
        last_modified: row.try_get(9)?,
        next_poll_at: Timestamp(row.try_get(10)?),
        last_polled_at: row.try_get::<_, Option<i64>>(11)?.map(Timestamp),
        last_success_at: row.try_get::<_, Option<i64>>(12)?.map(Timestamp),
        last_error: row.try_get(13)?,
        last_error_at: row.try_get::<_, Option<i64>>(14)?.map(Timestamp),
        consecutive_failures: u32::try_from(failures).unwrap_or(u32::MAX),
        items_published: u64::try_from(published).unwrap_or(0),
        created_at: Timestamp(row.try_get(17)?),
    })
}

fn query(db: &mut Db<'_, '_>, filter: &str, values: &Params<'_>) -> Result<Vec<FeedProvider>> {
    let rows = db.query(&format!("SELECT {COLUMNS} FROM feed_providers {filter}"), values)?;
    rows.iter().map(provider).collect()
}

fn one(db: &mut Db<'_, '_>, member: &MemberId, id: &FeedId) -> Result<FeedProvider> {
    query(db, "WHERE id = $1 AND member_id = $2", &[&id.as_str(), &member.as_str()])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("no feed provider {id}")))
}

fn taken(url: &str) -> StoreError {
    StoreError::Conflict { code: "conflict", message: format!("url: your member already polls {url}") }
}

fn subjects_json(spec: &FeedSpec) -> Result<String> {
    serde_json::to_string(&spec.subjects).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl PostgresStore {
    pub(super) fn add_feed_in(&self, member: &MemberId, spec: FeedSpec) -> Result<FeedProvider> {
        let id = FeedId::new(new_ulid()?);
        let member = member.clone();
        let subjects = subjects_json(&spec)?;
        let now = now_micros();
        self.writer.run(move |db| {
            super::require_member(db, &member, "")?;
            let inserted = db.execute(
                "INSERT INTO feed_providers (id, member_id, name, url, language, subjects, interval_seconds,
                    next_poll_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (member_id, url) DO NOTHING",
                &[
                    &id.as_str(),
                    &member.as_str(),
                    &spec.name,
                    &spec.url,
                    &spec.language,
                    &subjects,
                    &i64::from(spec.interval_seconds),
                    &now,
                ],
            )?;
            if inserted == 0 {
                return Err(taken(&spec.url));
            }
            one(db, &member, &id)
        })
    }

    pub(super) fn feeds_in(&self, member: &MemberId) -> Result<Vec<FeedProvider>> {
        let member = member.clone();
        self.read(move |db| query(db, "WHERE member_id = $1 ORDER BY created_at, id", &[&member.as_str()]))
    }

    pub(super) fn feed_in(&self, member: &MemberId, id: &FeedId) -> Result<Option<FeedProvider>> {
        let (member, id) = (member.clone(), id.clone());
        self.read(move |db| match one(db, &member, &id) {
            Ok(found) => Ok(Some(found)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        })
    }

    pub(super) fn update_feed_in(&self, member: &MemberId, id: &FeedId, spec: FeedSpec) -> Result<FeedProvider> {
        let (member, id) = (member.clone(), id.clone());
        let subjects = subjects_json(&spec)?;
        self.writer.run(move |db| {
            let current = one(db, &member, &id)?;
            let clash = db.query_opt(
                "SELECT id FROM feed_providers WHERE member_id = $1 AND url = $2 AND id != $3",
                &[&member.as_str(), &spec.url, &id.as_str()],
            )?;
            if clash.is_some() {
                return Err(taken(&spec.url));
            }
            // Validators belong to the old URL.
            let forget = current.spec.url != spec.url;
            db.execute(
                "UPDATE feed_providers SET name = $3, url = $4, language = $5, subjects = $6, interval_seconds = $7,
                    etag = CASE WHEN $8::boolean THEN NULL ELSE etag END,
                    last_modified = CASE WHEN $8::boolean THEN NULL ELSE last_modified END
                 WHERE id = $1 AND member_id = $2",
                &[
                    &id.as_str(),
                    &member.as_str(),
                    &spec.name,
                    &spec.url,
                    &spec.language,
                    &subjects,
                    &i64::from(spec.interval_seconds),
                    &forget,
                ],
            )?;
            one(db, &member, &id)
        })
    }

    pub(super) fn delete_feed_in(&self, member: &MemberId, id: &FeedId) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |db| {
            let deleted = db.execute(
                "DELETE FROM feed_providers WHERE id = $1 AND member_id = $2",
                &[&id.as_str(), &member.as_str()],
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
        self.writer.run(move |db| {
            one(db, &member, &id)?;
            if paused {
                db.execute("UPDATE feed_providers SET paused = TRUE WHERE id = $1", &[&id.as_str()])?;
            } else {
                db.execute(
                    "UPDATE feed_providers SET paused = FALSE, consecutive_failures = 0, next_poll_at = $2
                     WHERE id = $1",
                    &[&id.as_str(), &now.micros()],
                )?;
            }
            one(db, &member, &id)
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
        self.writer.run(move |db| {
            // Two nodes may claim at once: the picking select skips rows another claim has locked, and
            // the update checks the lease again against the latest committed row, so no provider is
            // claimed twice. The pick is materialised, so that it runs once (a `WHERE id IN (… LIMIT)`
            // may be evaluated more than once and claim more than the limit).
            let rows = db.query(
                "WITH picked AS MATERIALIZED (
                    SELECT id FROM feed_providers WHERE NOT paused AND next_poll_at <= $1
                        AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_poll_at, id LIMIT $4
                        FOR UPDATE SKIP LOCKED)
                 UPDATE feed_providers f SET lease_holder = $2, lease_until = $3 FROM picked
                 WHERE f.id = picked.id AND NOT f.paused AND f.next_poll_at <= $1
                    AND (f.lease_until IS NULL OR f.lease_until <= $1)
                 RETURNING f.id",
                &[&now.micros(), &holder, &lease_until.micros(), &i64::from(limit)],
            )?;
            let ids = rows.iter().map(|row| row.try_get::<_, String>(0)).collect::<std::result::Result<Vec<_>, _>>()?;
            // `RETURNING` has no order: the providers are read back in the claim's.
            query(db, "WHERE id = ANY($1) ORDER BY next_poll_at, id", &[&ids])
        })
    }

    pub(super) fn release_feeds_in(&self, holder: &str) -> Result<usize> {
        let holder = holder.to_string();
        self.writer.run(move |db| {
            db.execute(
                "UPDATE feed_providers SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = $1",
                &[&holder],
            )
        })
    }

    pub(super) fn next_feed_due_in(&self) -> Result<Option<Timestamp>> {
        self.read(|db| {
            // A provider being polled falls due again when its lease ends (if its poll is never recorded).
            let next: Option<i64> = db
                .query_one(
                    "SELECT MIN(GREATEST(next_poll_at, COALESCE(lease_until, 0))) FROM feed_providers WHERE NOT paused",
                    &[],
                )?
                .try_get(0)?;
            Ok(next.map(Timestamp))
        })
    }

    pub(super) fn seen_entries_in(&self, id: &FeedId, keys: &[String], hashes: &[String]) -> Result<Vec<SeenEntry>> {
        let (id, keys, hashes) = (id.clone(), keys.to_vec(), hashes.to_vec());
        self.read(move |db| {
            let rows = db.query(
                "SELECT entry_key, content_hash, item_id FROM feed_entries WHERE provider_id = $1
                    AND (entry_key = ANY($2) OR content_hash = ANY($3))",
                &[&id.as_str(), &keys, &hashes],
            )?;
            rows.iter()
                .map(|row| {
                    let (key, hash, item): (String, String, Option<String>) =
                        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                    let item_id =
                        item.map(|i| ItemId::parse(&i).map_err(|e| corrupt("feed entry item", e))).transpose()?;
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
        self.writer.run(move |db| {
            // Only the holder of the poll's lease (or anyone, if none is held) records it, and the
            // record ends the lease.
            let released = db.execute(
                "UPDATE feed_providers SET lease_holder = NULL, lease_until = NULL
                 WHERE id = $1 AND (lease_holder IS NULL OR lease_holder = $2)",
                &[&id.as_str(), &holder],
            )?;
            if released == 0 {
                let exists = db.query_opt("SELECT 1 FROM feed_providers WHERE id = $1", &[&id.as_str()])?;
                return match exists {
                    Some(_) => Err(lost("the feed poll")),
                    None => Err(StoreError::NotFound(format!("no feed provider {id}"))),
                };
            }
            match &record {
                PollRecord::Fetched { etag, last_modified, entries, published, next_poll_at } => {
                    db.execute(
                        "UPDATE feed_providers SET etag = $2, last_modified = $3, next_poll_at = $4, last_polled_at = $5,
                            last_success_at = $5, consecutive_failures = 0, items_published = items_published + $6
                         WHERE id = $1",
                        &[
                            &id.as_str(),
                            etag,
                            last_modified,
                            &next_poll_at.micros(),
                            &at.micros(),
                            &i64::from(*published),
                        ],
                    )?;
                    for entry in entries {
                        db.execute(
                            "INSERT INTO feed_entries (provider_id, entry_key, content_hash, item_id, seen_at)
                             VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (provider_id, entry_key) DO UPDATE SET content_hash = excluded.content_hash,
                                item_id = COALESCE(excluded.item_id, feed_entries.item_id), seen_at = excluded.seen_at",
                            &[
                                &id.as_str(),
                                &entry.key,
                                &entry.hash,
                                &entry.item_id.as_ref().map(ItemId::as_str),
                                &at.micros(),
                            ],
                        )?;
                    }
                }
                PollRecord::Failed { error, next_poll_at, pause_after } => {
                    db.execute(
                        "UPDATE feed_providers SET last_polled_at = $2, last_error = $3, last_error_at = $2,
                            next_poll_at = $4, consecutive_failures = consecutive_failures + 1,
                            paused = CASE WHEN consecutive_failures + 1 >= $5 THEN TRUE ELSE paused END
                         WHERE id = $1",
                        &[&id.as_str(), &at.micros(), error, &next_poll_at.micros(), &i64::from(*pause_after)],
                    )?;
                }
            }
            Ok(())
        })
    }
}
