//! Stored versions that background work could not use, set aside with the error (migration 9), and
//! the scan of current versions for derived data, which sets aside rows it cannot read instead of
//! failing for all of them.

use karavan_domain::{MemberId, Timestamp};
use rusqlite::params;

use super::{RawVersion, SqliteStore, VERSION_COLUMNS, corrupt, now_micros, version_from_row};
use crate::{Result, SetAside, StoredVersion, VersionsAfter};

/// A row as fetched: its sequence number, item, owner, and its columns (or why they could not be read).
type FetchedRow = (i64, String, Option<String>, Result<RawVersion>);

/// The work name under which unreadable rows are set aside.
pub const READ: &str = "read";

impl SqliteStore {
    pub(super) fn current_versions_after_in(&self, after: i64, limit: u32) -> Result<VersionsAfter> {
        let (rows, scanned_to) = self.read(|connection| {
            // `read` runs inside one snapshot, so the rows of both queries below line up.
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM items i JOIN versions v ON v.seq = i.current_seq
                 WHERE i.current_seq > ?1 ORDER BY i.current_seq LIMIT ?2"
            ))?;
            // The sequence numbers come first and alone, so a row whose other columns cannot even be
            // fetched is still known by its number.
            let mut seqs = connection.prepare_cached(
                "SELECT i.current_seq, i.id, i.owner FROM items i WHERE i.current_seq > ?1 ORDER BY i.current_seq LIMIT ?2",
            )?;
            let keys = seqs
                .query_map(params![after, limit], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut rows: Vec<FetchedRow> = Vec::with_capacity(keys.len());
            let mut fetched = statement.query(params![after, limit])?;
            let mut keys_left = keys.iter();
            loop {
                match fetched.next() {
                    Ok(Some(row)) => {
                        let Some((seq, item, owner)) = keys_left.next() else { break };
                        rows.push((*seq, item.clone(), Some(owner.clone()), version_from_row(row).map_err(Into::into)));
                    }
                    Ok(None) => break,
                    Err(error) => {
                        let Some((seq, item, owner)) = keys_left.next() else { break };
                        rows.push((*seq, item.clone(), Some(owner.clone()), Err(error.into())));
                        break;
                    }
                }
            }
            let scanned_to = keys.last().map(|(seq, _, _)| *seq);
            Ok((rows, scanned_to))
        })?;
        let versions = self.build_or_set_aside(READ, rows)?;
        Ok(VersionsAfter { versions, scanned_to })
    }

    pub(super) fn set_aside_to_retry_in(&self, work: &str) -> Result<Vec<StoredVersion>> {
        let work = work.to_string();
        let query_work = work.clone();
        let rows = self.read(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT s.seq, s.item_id, s.owner, {VERSION_COLUMNS} FROM set_aside s JOIN items i ON i.id = s.item_id
                 JOIN versions v ON v.seq = i.current_seq
                 WHERE s.work = ?1 AND s.state = 'retry' ORDER BY s.seq"
            ))?;
            let mut rows = Vec::new();
            let mut fetched = statement.query([query_work])?;
            while let Some(row) = fetched.next()? {
                let (seq, item, owner): (i64, String, Option<String>) = (row.get(0)?, row.get(1)?, row.get(2)?);
                let raw = RawVersion::from_row_at(row, 3).map_err(crate::StoreError::from);
                rows.push((seq, item, owner, raw));
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
        self.writer.run(move |connection, _| {
            connection.execute(
                "INSERT INTO set_aside (work, seq, item_id, owner, error, state, at) VALUES (?1, ?2, ?3, ?4, ?5, 'held', ?6)
                 ON CONFLICT (work, seq) DO UPDATE SET error = excluded.error, state = 'held', at = excluded.at",
                params![work, seq, item_id, owner, error, now_micros()],
            )?;
            Ok(())
        })
    }

    pub(super) fn clear_set_aside_in(&self, work: &str, seq: i64) -> Result<()> {
        let work = work.to_string();
        self.writer.run(move |connection, _| {
            connection.execute("DELETE FROM set_aside WHERE work = ?1 AND seq = ?2", params![work, seq])?;
            Ok(())
        })
    }

    pub(super) fn set_aside_list_in(&self, owner: Option<&MemberId>) -> Result<Vec<SetAside>> {
        let owner = owner.map(|o| o.to_string());
        let rows = self.read(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT work, seq, item_id, owner, error, state, at FROM set_aside
                 WHERE ?1 IS NULL OR owner = ?1 ORDER BY at DESC, work, seq",
            )?;
            let rows = statement
                .query_map([owner], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(work, seq, item_id, owner, error, state, at)| {
                Ok(SetAside {
                    work,
                    seq,
                    item_id,
                    owner: owner.map(|o| MemberId::parse(&o).map_err(|e| corrupt("set-aside owner", e))).transpose()?,
                    error,
                    retry: state == "retry",
                    at: Timestamp(at),
                })
            })
            .collect()
    }

    pub(super) fn retry_set_aside_in(&self, work: &str, seq: Option<i64>) -> Result<usize> {
        let work = work.to_string();
        self.writer.run(move |connection, _| {
            let changed = connection.execute(
                "UPDATE set_aside SET state = 'retry' WHERE work = ?1 AND (?2 IS NULL OR seq = ?2)",
                params![work, seq],
            )?;
            Ok(changed)
        })
    }
}
