//! Users of the web newsroom and their sessions, in SQLite.
//!
//! A disabled user's sessions stop working at once (every session read joins its user); disabling a
//! user also deletes its sessions.

use crate::common::*;
use karavan_domain::{MemberId, Timestamp, UserId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, corrupt, new_ulid, now_micros};
use crate::{LoginFailures, NewUser, Result, Session, StoreError, User};

fn user_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawUser> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
    ))
}

fn query_users(connection: &Connection, filter: &str, values: &[&dyn rusqlite::ToSql]) -> Result<Vec<User>> {
    let mut statement = connection.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users u {filter}"))?;
    let rows = statement.query_map(values, user_row)?;
    rows.map(|row| build_user(row?)).collect()
}

impl SqliteStore {
    pub(super) fn add_user_in(&self, new: NewUser) -> Result<User> {
        let user = User {
            id: UserId::new(new_ulid()?),
            member: new.member,
            email: new.email.trim().to_lowercase(),
            display_name: new.display_name,
            role: new.role,
            password_hash: new.password_hash,
            locale: None,
            time_zone: None,
            created_at: Timestamp(now_micros()),
            disabled_at: None,
            operator: new.operator,
        };
        let stored = user.clone();
        self.writer.run(move |connection, _| {
            super::require_member(connection, &stored.member, "")?;
            let inserted = connection.execute(
                "INSERT INTO users (id, member_id, email, display_name, role, password_hash, created_at, operator)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (email) DO NOTHING",
                params![
                    stored.id.as_str(),
                    stored.member.as_str(),
                    stored.email,
                    stored.display_name,
                    stored.role.as_str(),
                    stored.password_hash,
                    stored.created_at.micros(),
                    stored.operator,
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict {
                    code: "email_taken",
                    message: format!("email: {:?} already has a user", stored.email),
                });
            }
            Ok(())
        })?;
        Ok(user)
    }

    pub(super) fn users_in(&self, member: &MemberId) -> Result<Vec<User>> {
        self.read(|connection| query_users(connection, "WHERE u.member_id = ?1 ORDER BY u.email", &[&member.as_str()]))
    }

    pub(super) fn user_by_email_in(&self, email: &str) -> Result<Option<User>> {
        let email = email.trim().to_lowercase();
        self.read(|connection| Ok(query_users(connection, "WHERE u.email = ?1", &[&email])?.into_iter().next()))
    }

    pub(super) fn update_user_in(
        &self,
        member: &MemberId,
        id: &UserId,
        password_hash: Option<String>,
        locale: Option<Option<String>>,
        disabled: Option<bool>,
    ) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |connection, _| {
            let exists: bool = connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND member_id = ?2)",
                [id.as_str(), member.as_str()],
                |row| row.get(0),
            )?;
            if !exists {
                return Ok(false);
            }
            if let Some(hash) = password_hash {
                connection.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", [id.as_str(), &hash])?;
                // A new password ends every session.
                connection.execute("DELETE FROM sessions WHERE user_id = ?1", [id.as_str()])?;
            }
            if let Some(locale) = locale {
                connection.execute("UPDATE users SET locale = ?2 WHERE id = ?1", params![id.as_str(), locale])?;
            }
            match disabled {
                Some(true) => {
                    connection.execute(
                        "UPDATE users SET disabled_at = COALESCE(disabled_at, ?2) WHERE id = ?1",
                        params![id.as_str(), now_micros()],
                    )?;
                    connection.execute("DELETE FROM sessions WHERE user_id = ?1", [id.as_str()])?;
                }
                Some(false) => {
                    connection.execute("UPDATE users SET disabled_at = NULL WHERE id = ?1", [id.as_str()])?;
                }
                None => {}
            }
            Ok(true)
        })
    }

    pub(super) fn set_user_time_zone_in(
        &self,
        member: &MemberId,
        id: &UserId,
        time_zone: Option<String>,
    ) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |connection, _| {
            let changed = connection.execute(
                "UPDATE users SET time_zone = ?3 WHERE id = ?1 AND member_id = ?2",
                params![id.as_str(), member.as_str(), time_zone],
            )?;
            Ok(changed > 0)
        })
    }

    pub(super) fn create_session_in(
        &self,
        user: &UserId,
        token_hash: [u8; 32],
        csrf: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        let (user, csrf) = (user.clone(), csrf.to_string());
        self.writer.run(move |connection, _| {
            connection.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token_hash.to_vec(), user.as_str(), csrf, now_micros(), expires_at.micros()],
            )?;
            // Expired sessions are cleared as new ones start.
            connection.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_micros()])?;
            Ok(())
        })
    }

    pub(super) fn session_in(&self, token_hash: [u8; 32], now: Timestamp) -> Result<Option<Session>> {
        self.read(|connection| {
            let found: Option<(String, i64)> = connection
                .query_row(
                    "SELECT s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
                    params![token_hash.to_vec(), now.micros()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((csrf, expires_at)) = found else {
                return Ok(None);
            };
            let user = query_users(
                connection,
                "JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = ?1",
                &[&token_hash.to_vec()],
            )?
            .into_iter()
            .next()
            .ok_or_else(|| corrupt("session", "its user vanished"))?;
            Ok(Some(Session { user, csrf, expires_at: Timestamp(expires_at) }))
        })
    }

    pub(super) fn end_session_in(&self, token_hash: [u8; 32]) -> Result<()> {
        self.writer.run(move |connection, _| {
            connection.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash.to_vec()])?;
            Ok(())
        })
    }

    pub(super) fn login_failures_in(&self, keys: &[String], since: Timestamp) -> Result<Vec<LoginFailures>> {
        let keys = serde_json::to_string(keys).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT key, failures, last_at FROM login_failures
                 WHERE key IN (SELECT value FROM json_each(?1)) AND last_at >= ?2",
            )?;
            let rows = statement
                .query_map(params![keys, since.micros()], |row| {
                    Ok(LoginFailures {
                        key: row.get(0)?,
                        failures: row.get::<_, i64>(1)?.clamp(0, i64::from(u32::MAX)) as u32,
                        last_at: Timestamp(row.get(2)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub(super) fn record_login_failure_in(
        &self,
        keys: Vec<String>,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<()> {
        self.writer.run(move |connection, _| {
            // Failures older than the window start the count again; old rows are pruned as we go.
            connection.execute("DELETE FROM login_failures WHERE last_at < ?1", [forget_before.micros()])?;
            let mut upsert = connection.prepare_cached(
                "INSERT INTO login_failures (key, failures, last_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (key) DO UPDATE SET failures = failures + 1, last_at = MAX(last_at, excluded.last_at)",
            )?;
            for key in &keys {
                upsert.execute(params![key, at.micros()])?;
            }
            Ok(())
        })
    }

    pub(super) fn clear_login_failures_in(&self, keys: Vec<String>) -> Result<()> {
        self.writer.run(move |connection, _| {
            let mut delete = connection.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?;
            for key in &keys {
                delete.execute([key])?;
            }
            Ok(())
        })
    }
}
