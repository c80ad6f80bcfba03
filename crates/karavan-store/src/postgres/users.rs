//! Users of the web newsroom and their sessions, in PostgreSQL.
//!
//! A disabled user's sessions stop working at once (every session read joins its user); disabling a
//! user also deletes its sessions.

use karavan_domain::{MemberId, Timestamp, UserId};
use postgres::Row;

use super::PostgresStore;
use super::db::{Db, Params};
use crate::common::{USER_COLUMNS, build_user, corrupt, new_ulid, now_micros};
use crate::{LoginFailures, NewUser, Result, Session, StoreError, User};

fn user_of(row: &Row) -> Result<User> {
    build_user((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get(6)?,
        row.try_get(7)?,
        row.try_get(8)?,
        row.try_get(9)?,
        row.try_get(10)?,
    ))
}

fn query_users(db: &mut Db<'_, '_>, filter: &str, values: &Params<'_>) -> Result<Vec<User>> {
    let rows = db.query(&format!("SELECT {USER_COLUMNS} FROM users u {filter}"), values)?;
    rows.iter().map(user_of).collect()
}

impl PostgresStore {
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
        self.writer.run(move |db| {
            super::require_member(db, &stored.member, "")?;
            let inserted = db.execute(
                "INSERT INTO users (id, member_id, email, display_name, role, password_hash, created_at, operator)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email) DO NOTHING",
                &[
                    &stored.id.as_str(),
                    &stored.member.as_str(),
                    &stored.email,
                    &stored.display_name,
                    &stored.role.as_str(),
                    &stored.password_hash,
                    &stored.created_at.micros(),
                    &stored.operator,
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
        let member = member.clone();
        self.read(move |db| query_users(db, "WHERE u.member_id = $1 ORDER BY u.email", &[&member.as_str()]))
    }

    pub(super) fn user_by_email_in(&self, email: &str) -> Result<Option<User>> {
        let email = email.trim().to_lowercase();
        self.read(move |db| Ok(query_users(db, "WHERE u.email = $1", &[&email])?.into_iter().next()))
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
        self.writer.run(move |db| {
            let exists: bool = db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND member_id = $2)",
                    &[&id.as_str(), &member.as_str()],
                )?
                .try_get(0)?;
            if !exists {
                return Ok(false);
            }
            if let Some(hash) = &password_hash {
                db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", &[&id.as_str(), hash])?;
                // A new password ends every session.
                db.execute("DELETE FROM sessions WHERE user_id = $1", &[&id.as_str()])?;
            }
            if let Some(locale) = &locale {
                db.execute("UPDATE users SET locale = $2 WHERE id = $1", &[&id.as_str(), locale])?;
            }
            match disabled {
                Some(true) => {
                    db.execute(
                        "UPDATE users SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1",
                        &[&id.as_str(), &now_micros()],
                    )?;
                    db.execute("DELETE FROM sessions WHERE user_id = $1", &[&id.as_str()])?;
                }
                Some(false) => {
                    db.execute("UPDATE users SET disabled_at = NULL WHERE id = $1", &[&id.as_str()])?;
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
        self.writer.run(move |db| {
            let changed = db.execute(
                "UPDATE users SET time_zone = $3 WHERE id = $1 AND member_id = $2",
                &[&id.as_str(), &member.as_str(), &time_zone],
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
        self.writer.run(move |db| {
            let hash: &[u8] = &token_hash;
            db.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&hash, &user.as_str(), &csrf, &now_micros(), &expires_at.micros()],
            )?;
            // Expired sessions are cleared as new ones start.
            db.execute("DELETE FROM sessions WHERE expires_at < $1", &[&now_micros()])?;
            Ok(())
        })
    }

    pub(super) fn session_in(&self, token_hash: [u8; 32], now: Timestamp) -> Result<Option<Session>> {
        self.read(move |db| {
            let hash: &[u8] = &token_hash;
            let found = db.query_opt(
                "SELECT s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                &[&hash, &now.micros()],
            )?;
            let Some(found) = found else {
                return Ok(None);
            };
            let (csrf, expires_at): (String, i64) = (found.try_get(0)?, found.try_get(1)?);
            let user = query_users(db, "JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = $1", &[&hash])?
                .into_iter()
                .next()
                .ok_or_else(|| corrupt("session", "its user vanished"))?;
            Ok(Some(Session { user, csrf, expires_at: Timestamp(expires_at) }))
        })
    }

    pub(super) fn end_session_in(&self, token_hash: [u8; 32]) -> Result<()> {
        self.writer.run(move |db| {
            let hash: &[u8] = &token_hash;
            db.execute("DELETE FROM sessions WHERE token_hash = $1", &[&hash])?;
            Ok(())
        })
    }

    pub(super) fn login_failures_in(&self, keys: &[String], since: Timestamp) -> Result<Vec<LoginFailures>> {
        let keys = keys.to_vec();
        self.read(move |db| {
            let rows = db.query(
                "SELECT key, failures, last_at FROM login_failures WHERE key = ANY($1) AND last_at >= $2",
                &[&keys, &since.micros()],
            )?;
            rows.iter()
                .map(|row| {
                    Ok(LoginFailures {
                        key: row.try_get(0)?,
                        failures: row.try_get::<_, i64>(1)?.clamp(0, i64::from(u32::MAX)) as u32,
                        last_at: Timestamp(row.try_get(2)?),
                    })
                })
                .collect()
        })
    }

    pub(super) fn record_login_failure_in(
        &self,
        keys: Vec<String>,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<()> {
        self.writer.run(move |db| {
            // Failures older than the window start the count again; old rows are pruned as we go.
            db.execute("DELETE FROM login_failures WHERE last_at < $1", &[&forget_before.micros()])?;
            for key in &keys {
                db.execute(
                    "INSERT INTO login_failures (key, failures, last_at) VALUES ($1, 1, $2)
                     ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures + 1,
                        last_at = GREATEST(login_failures.last_at, excluded.last_at)",
                    &[key, &at.micros()],
                )?;
            }
            Ok(())
        })
    }

    pub(super) fn clear_login_failures_in(&self, keys: Vec<String>) -> Result<()> {
        self.writer.run(move |db| {
            for key in &keys {
                db.execute("DELETE FROM login_failures WHERE key = $1", &[key])?;
            }
            Ok(())
        })
    }
}
