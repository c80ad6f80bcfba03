//! Stored versions that background work could not use, set aside with the error, and the scan of
//! current versions for derived data, which sets aside rows it cannot read instead of failing for all
//! of them.

use std::collections::HashMap;

use karavan_domain::{MemberId, Timestamp};

use super::db::Db;
use super::{PostgresStore, raw_version};
use crate::common::{RawVersion, VERSION_COLUMNS, corrupt, now_micros};
use crate::{READ_WORK, Result, SetAside, StoredVersion, VersionsAfter};

/// A row as fetched: its sequence number, item, owner, and its columns (or why they could not be read).
type FetchedRow = (i64, String, Option<String>, Result<RawVersion>);

/// The current versions after `after`, as in [`PostgresStore::current_versions_after_in`]; the rows
/// of the page are fetched together, or (if that fails) one by one.
fn fetch_current_after(db: &mut Db<'_, '_>, after: i64, limit: i64) -> Result<(Vec<FetchedRow>, Option<i64>)> {
    // The sequence numbers come first and alone, so a row whose other columns cannot even be
    // fetched is still known by its number.
    let keys = db.query(
        "SELECT i.current_seq, i.id, i.owner FROM items i WHERE i.current_seq > $1 ORDER BY i.current_seq LIMIT $2",
        &[&after, &limit],
    )?;
    let keys = keys
        .iter()
        .map(|row| -> Result<(i64, String, String)> { Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)) })
        .collect::<Result<Vec<_>>>()?;
    let scanned_to = keys.last().map(|(seq, _, _)| *seq);
    if keys.is_empty() {
        return Ok((Vec::new(), scanned_to));
    }

    // All the page's rows in one query, in a savepoint: a row the server cannot even send (a damaged
    // value) fails the whole query, and the rows are then fetched one at a time.
    let all = format!(
        "SELECT i.current_seq, {VERSION_COLUMNS} FROM items i JOIN versions v ON v.seq = i.current_seq
         WHERE i.current_seq > $1 ORDER BY i.current_seq LIMIT $2"
    );
    let fetched = {
        let mut savepoint = db.transaction.savepoint("scan")?;
        let mut inner = Db { transaction: &mut savepoint, cache: &mut *db.cache, last_error: None };
        let outcome = inner.query(&all, &[&after, &limit]);
        match outcome {
            Ok(rows) => {
                savepoint.commit()?;
                Some(rows)
            }
            Err(error) => {
                tracing::warn!(after, %error, "the scan of current versions failed; reading its rows one by one");
                savepoint.rollback()?;
                db.transaction.batch_execute("RELEASE scan")?;
                None
            }
        }
    };

    let mut rows: Vec<FetchedRow> = Vec::with_capacity(keys.len());
    match fetched {
        Some(fetched) => {
            // Matched by sequence number: the page's two queries ran in one snapshot.
            let mut by_seq: HashMap<i64, Result<RawVersion>> = HashMap::with_capacity(fetched.len());
            for row in &fetched {
                let seq: i64 = row.try_get(0)?;
                by_seq.insert(seq, raw_version(row, 1));
            }
            for (seq, item, owner) in keys {
                let raw = by_seq
                    .remove(&seq)
                    .unwrap_or_else(|| Err(corrupt("item", format!("its current version {seq} is missing"))));
                rows.push((seq, item, Some(owner), raw));
            }
        }
        None => {
            let one = format!(
                "SELECT {VERSION_COLUMNS} FROM items i JOIN versions v ON v.seq = i.current_seq WHERE i.current_seq = $1"
            );
            for (seq, item, owner) in keys {
                let mut savepoint = db.transaction.savepoint("scan_row")?;
                let mut inner = Db { transaction: &mut savepoint, cache: &mut *db.cache, last_error: None };
                let raw = match inner.query_opt(&one, &[&seq]) {
                    Ok(Some(row)) => raw_version(&row, 0),
                    Ok(None) => Err(corrupt("item", format!("its current version {seq} is missing"))),
                    Err(error) => Err(error),
                };
                if raw.is_ok() {
                    savepoint.commit()?;
                } else {
                    savepoint.rollback()?;
                    db.transaction.batch_execute("RELEASE scan_row")?;
                }
                rows.push((seq, item, Some(owner), raw));
            }
        }
    }
    Ok((rows, scanned_to))
}

impl PostgresStore {
    pub(super) fn current_versions_after_in(&self, after: i64, limit: u32) -> Result<VersionsAfter> {
        // `read` runs inside one snapshot, so the rows of the queries below line up.
        let (rows, scanned_to) = self.read(move |db| fetch_current_after(db, after, i64::from(limit)))?;
        let versions = self.build_or_set_aside(READ_WORK, rows)?;
        Ok(VersionsAfter { versions, scanned_to })
    }

    pub(super) fn set_aside_to_retry_in(&self, work: &str) -> Result<Vec<StoredVersion>> {
        let work = work.to_string();
        let query_work = work.clone();
        let rows = self.read(move |db| {
            let fetched = db.query(
                &format!(
                    "SELECT s.seq, s.item_id, s.owner, {VERSION_COLUMNS} FROM set_aside s JOIN items i ON i.id = s.item_id
                     JOIN versions v ON v.seq = i.current_seq
                     WHERE s.work = $1 AND s.state = 'retry' ORDER BY s.seq"
                ),
                &[&query_work],
            )?;
            let mut rows: Vec<FetchedRow> = Vec::with_capacity(fetched.len());
            for row in &fetched {
                let (seq, item, owner): (i64, String, Option<String>) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                rows.push((seq, item, owner, raw_version(row, 3)));
            }
            Ok(rows)
        })?;
        // Still unreadable: held again, with the error as it is now.
        self.build_or_set_aside(&work, rows)
    }

    /// The versions of rows that build; each that does not is set aside for `work` with its error.
    fn build_or_set_aside(&self, work: &str, rows: Vec<FetchedRow>) -> Result<Vec<StoredVersion>> {
        let mut versions = Vec::with_capacity(rows.len());
        for (seq, item, owner, raw) in rows {
            match raw.and_then(RawVersion::build) {
                Ok(version) => versions.push(version),
                Err(error) => {
                    tracing::error!(seq, item = %item, work, %error, "a stored version cannot be used; set aside");
                    let owner = owner.and_then(|o| MemberId::parse(&o).ok());
                    self.set_aside_in(work, seq, &item, owner.as_ref(), &error.to_string())?;
                }
            }
        }
        Ok(versions)
    }

    pub(super) fn set_aside_in(
        &self,
        work: &str,
        seq: i64,
        item_id: &str,
        owner: Option<&MemberId>,
        error: &str,
    ) -> Result<()> {
        let (work, item_id, owner) = (work.to_string(), item_id.to_string(), owner.map(|o| o.to_string()));
        // Bounded: an error message is for a person to read.
        let error: String = error.chars().take(2000).collect();
        self.writer.run(move |db| {
            db.execute(
                "INSERT INTO set_aside (work, seq, item_id, owner, error, state, at) VALUES ($1, $2, $3, $4, $5, 'held', $6)
                 ON CONFLICT (work, seq) DO UPDATE SET error = excluded.error, state = 'held', at = excluded.at",
                &[&work, &seq, &item_id, &owner, &error, &now_micros()],
            )?;
            Ok(())
        })
    }

    pub(super) fn clear_set_aside_in(&self, work: &str, seq: i64) -> Result<()> {
        let work = work.to_string();
        self.writer.run(move |db| {
            db.execute("DELETE FROM set_aside WHERE work = $1 AND seq = $2", &[&work, &seq])?;
            Ok(())
        })
    }

    pub(super) fn set_aside_list_in(&self, owner: Option<&MemberId>) -> Result<Vec<SetAside>> {
        let owner = owner.map(|o| o.to_string());
        self.read(move |db| {
            let rows = db.query(
                "SELECT work, seq, item_id, owner, error, state, at FROM set_aside
                 WHERE $1::text IS NULL OR owner = $1 ORDER BY at DESC, work, seq",
                &[&owner],
            )?;
            rows.iter()
                .map(|row| {
                    let owner: Option<String> = row.try_get(3)?;
                    let state: String = row.try_get(5)?;
                    Ok(SetAside {
                        work: row.try_get(0)?,
                        seq: row.try_get(1)?,
                        item_id: row.try_get(2)?,
                        owner: owner
                            .map(|o| MemberId::parse(&o).map_err(|e| corrupt("set-aside owner", e)))
                            .transpose()?,
                        error: row.try_get(4)?,
                        retry: state == "retry",
                        at: Timestamp(row.try_get(6)?),
                    })
                })
                .collect()
        })
    }

    pub(super) fn retry_set_aside_in(&self, work: &str, seq: Option<i64>) -> Result<usize> {
        let work = work.to_string();
        self.writer.run(move |db| {
            let changed = db.execute(
                "UPDATE set_aside SET state = 'retry' WHERE work = $1 AND ($2::bigint IS NULL OR seq = $2)",
                &[&work, &seq],
            )?;
            Ok(changed)
        })
    }
}
