//! Named leases (work only one engine instance may do at a time) and configuration generations, in
//! SQLite.

use karavan_domain::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::Result;

/// Whether `holder` holds the lease `name` at `now` (inside a write transaction).
pub(super) fn holds(connection: &Connection, name: &str, holder: &str, now: i64) -> Result<bool> {
    let held: Option<(String, i64)> = connection
        .prepare_cached("SELECT holder, until FROM leases WHERE name = ?1")?
        .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(held.is_some_and(|(by, until)| by == holder && until > now))
}

impl SqliteStore {
    pub(super) fn acquire_lease_in(&self, name: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer.run(move |connection, _| {
            let changed = connection
                .prepare_cached(
                    "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.holder = excluded.holder OR leases.until <= ?3",
                )?
                .execute(params![name, holder, now.micros(), until.micros()])?;
            Ok(changed == 1)
        })
    }

    pub(super) fn release_lease_in(&self, name: &str, holder: &str) -> Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer.run(move |connection, _| {
            Ok(connection.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder])? == 1)
        })
    }

    pub(super) fn lease_in(&self, name: &str) -> Result<Option<(String, Timestamp)>> {
        self.read(|connection| {
            Ok(connection
                .prepare_cached("SELECT holder, until FROM leases WHERE name = ?1")?
                .query_row([name], |row| Ok((row.get(0)?, Timestamp(row.get(1)?))))
                .optional()?)
        })
    }

    pub(super) fn next_release_in(&self, after: Timestamp) -> Result<Option<Timestamp>> {
        self.read(|connection| {
            // An item's `available_at` is when its embargo ends (its commit otherwise).
            let embargo: Option<i64> = connection
                .prepare_cached(
                    "SELECT MIN(available_at) FROM items
                     WHERE available_at > ?1 AND available_at > committed_at AND pub_status != 'canceled'",
                )?
                .query_row([after.micros()], |row| row.get(0))?;
            let delayed: Option<i64> = connection
                .prepare_cached(
                    "SELECT MIN(i.available_at + a.delay_minutes * 60000000) FROM agreements a
                     JOIN items i ON i.owner = a.grantor
                     WHERE a.revoked_at IS NULL AND a.delay_minutes > 0 AND i.pub_status != 'canceled'
                        AND i.available_at > ?1 - a.delay_minutes * 60000000",
                )?
                .query_row([after.micros()], |row| row.get(0))?;
            Ok([embargo, delayed].into_iter().flatten().min().map(Timestamp))
        })
    }

    pub(super) fn generation_in(&self, name: &str) -> Result<i64> {
        self.read(|connection| {
            Ok(connection
                .prepare_cached("SELECT generation FROM generations WHERE name = ?1")?
                .query_row([name], |row| row.get(0))
                .optional()?
                .unwrap_or(0))
        })
    }
}
