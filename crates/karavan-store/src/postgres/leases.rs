//! Named leases (work only one engine instance may do at a time) and configuration generations, in
//! PostgreSQL.

use karavan_domain::Timestamp;

use super::PostgresStore;
use super::db::Db;
use crate::Result;

/// Whether `holder` holds the lease `name` at `now` (inside a write transaction).
pub(super) fn holds(db: &mut Db<'_, '_>, name: &str, holder: &str, now: i64) -> Result<bool> {
    let held = db.query_opt("SELECT holder, until FROM leases WHERE name = $1", &[&name])?;
    let held: Option<(String, i64)> = match held {
        Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
        None => None,
    };
    Ok(held.is_some_and(|(by, until)| by == holder && until > now))
}

impl PostgresStore {
    pub(super) fn acquire_lease_in(&self, name: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer.run_alone(move |db| {
            // PostgreSQL takes the conflicting row's lock before it evaluates the `WHERE`, so of two
            // nodes racing for an expired lease, the second sees the first's row and changes nothing.
            let changed = db.execute(
                "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.holder = excluded.holder OR leases.until <= $3",
                &[&name, &holder, &now.micros(), &until.micros()],
            )?;
            Ok(changed == 1)
        })
    }

    pub(super) fn release_lease_in(&self, name: &str, holder: &str) -> Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer.run_alone(move |db| {
            Ok(db.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder])? == 1)
        })
    }

    pub(super) fn lease_in(&self, name: &str) -> Result<Option<(String, Timestamp)>> {
        let name = name.to_string();
        self.read(move |db| {
            let row = db.query_opt("SELECT holder, until FROM leases WHERE name = $1", &[&name])?;
            match row {
                Some(row) => Ok(Some((row.try_get(0)?, Timestamp(row.try_get(1)?)))),
                None => Ok(None),
            }
        })
    }

    pub(super) fn next_release_in(&self, after: Timestamp) -> Result<Option<Timestamp>> {
        self.read(move |db| {
            // An item's `available_at` is when its embargo ends (its commit otherwise).
            let embargo: Option<i64> = db
                .query_one(
                    "SELECT MIN(available_at) FROM items
                     WHERE available_at > $1 AND available_at > committed_at AND pub_status != 'canceled'",
                    &[&after.micros()],
                )?
                .try_get(0)?;
            let delayed: Option<i64> = db
                .query_one(
                    "SELECT MIN(i.available_at + a.delay_minutes * 60000000) FROM agreements a
                     JOIN items i ON i.owner = a.grantor
                     WHERE a.revoked_at IS NULL AND a.delay_minutes > 0 AND i.pub_status != 'canceled'
                        AND i.available_at > $1::bigint - a.delay_minutes * 60000000",
                    &[&after.micros()],
                )?
                .try_get(0)?;
            Ok([embargo, delayed].into_iter().flatten().min().map(Timestamp))
        })
    }

    pub(super) fn generation_in(&self, name: &str) -> Result<i64> {
        let name = name.to_string();
        self.read(move |db| {
            let row = db.query_opt("SELECT generation FROM generations WHERE name = $1", &[&name])?;
            Ok(row.map(|row| row.try_get(0)).transpose()?.unwrap_or(0))
        })
    }
}
