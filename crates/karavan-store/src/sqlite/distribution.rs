//! Distribution in SQLite: subscriptions, the outbox, deliveries and their attempts.
//!
//! The path of an item event: `publish_in` writes an `outbox` row in the publish's own transaction; the
//! fan-out reads the outbox in order and, in one transaction, writes a `deliveries` row per matching
//! subscription and moves its position past those events (deleting them); the pusher sends pending
//! deliveries and records each attempt. A crash at any point leaves either the event in the outbox or
//! its deliveries pending, so nothing is lost; a delivery may be sent twice (after a crash between the
//! send and its record), always under its one id.
//!
//! A delivery's `listed_at` (when it enters the changes feed and falls due) is never earlier than the
//! commit time of the transaction that wrote it, which the writer clock guards like item commit times:
//! so a feed read up to the writer's horizon never misses a delivery that commits later.

use crate::common::*;
use karavan_domain::{Agreement, DeliveryId, ItemId, MemberId, SubscriptionId, Timestamp, Visibility};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AGREEMENT_COLUMNS, SqliteStore, agreement_from_row, build_agreement, corrupt, embargo_of, load_version, new_ulid,
    now_micros, subjects_of,
};
use crate::ItemStore;
use crate::{
    Attempt, AttemptOutcome, AttemptRecord, Change, ChangesPage, Cursor, DeliveryRecord, DeliveryState, DueDelivery,
    ItemRead, NewDelivery, OutboxEvent, Result, StoreError, Subscription, SubscriptionSpec, VersionRead, Webhook,
};

fn subscription_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSubscription> {
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
    ))
}

fn query_subscriptions(
    connection: &Connection,
    filter: &str,
    values: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Subscription>> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions {filter}"))?;
    let rows = statement.query_map(values, subscription_row)?;
    rows.map(|row| build_subscription(row?)).collect()
}

impl SqliteStore {
    pub(super) fn version_for_in(
        &self,
        viewer: &MemberId,
        id: &ItemId,
        seq: i64,
        now: Timestamp,
    ) -> Result<VersionRead> {
        let current = match self.item(viewer, id, now)? {
            ItemRead::NotFound => return Ok(VersionRead::NotFound),
            ItemRead::Killed(notice) => return Ok(VersionRead::Killed(notice)),
            ItemRead::Visible(current, right) if current.seq == seq => return Ok(VersionRead::Visible(current, right)),
            ItemRead::Visible(current, _) => current,
        };
        self.read(|connection| {
            let owner: Option<String> = connection
                .query_row("SELECT item_id FROM versions WHERE seq = ?1", [seq], |row| row.get(0))
                .optional()?;
            if owner.as_deref() != Some(current.item_id.as_str()) {
                return Ok(VersionRead::NotFound);
            }
            let version = load_version(connection, seq)?;
            Ok(match super::visibility_of(connection, viewer, &version, now)? {
                Visibility::Visible { right, .. } => VersionRead::Visible(version, right),
                Visibility::Killed { .. } => VersionRead::Killed(version),
                Visibility::Hidden => VersionRead::NotFound,
            })
        })
    }

    pub(super) fn add_subscription_in(
        &self,
        member: &MemberId,
        spec: SubscriptionSpec,
        feed_token_hash: [u8; 32],
    ) -> Result<Subscription> {
        let now = Timestamp(now_micros());
        let record = Subscription {
            id: SubscriptionId::new(new_ulid()?),
            member: member.clone(),
            spec,
            created_at: now,
            updated_at: now,
        };
        let stored = record.clone();
        let (query, events) = spec_columns(&stored.spec)?;
        self.writer.run(move |connection, _| {
            let spec = &stored.spec;
            let inserted = connection.execute(
                "INSERT INTO subscriptions (id, member_id, name, query, events, format, webhook_url, webhook_secret,
                    feed_token_hash, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                 ON CONFLICT (member_id, name) DO NOTHING",
                params![
                    stored.id.as_str(),
                    stored.member.as_str(),
                    spec.name,
                    query,
                    events,
                    spec.format,
                    spec.webhook.as_ref().map(|w| w.url.clone()),
                    spec.webhook.as_ref().map(|w| w.secret.clone()),
                    feed_token_hash.to_vec(),
                    stored.created_at.micros(),
                ],
            )?;
            if inserted == 0 {
                return Err(name_taken(&spec.name));
            }
            Ok(())
        })?;
        Ok(record)
    }

    pub(super) fn subscriptions_in(&self, member: &MemberId) -> Result<Vec<Subscription>> {
        self.read(|connection| {
            query_subscriptions(connection, "WHERE member_id = ?1 ORDER BY name", &[&member.as_str()])
        })
    }

    pub(super) fn subscription_in(&self, member: &MemberId, id: &SubscriptionId) -> Result<Option<Subscription>> {
        self.read(|connection| {
            let found =
                query_subscriptions(connection, "WHERE member_id = ?1 AND id = ?2", &[&member.as_str(), &id.as_str()])?;
            Ok(found.into_iter().next())
        })
    }

    pub(super) fn update_subscription_in(
        &self,
        member: &MemberId,
        id: &SubscriptionId,
        spec: SubscriptionSpec,
    ) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        let (query, events) = spec_columns(&spec)?;
        self.writer.run(move |connection, _| {
            let clash: bool = connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE member_id = ?1 AND name = ?2 AND id != ?3)",
                params![member.as_str(), spec.name, id.as_str()],
                |row| row.get(0),
            )?;
            if clash {
                return Err(name_taken(&spec.name));
            }
            let updated = connection.execute(
                "UPDATE subscriptions SET name = ?3, query = ?4, events = ?5, format = ?6, webhook_url = ?7,
                    webhook_secret = ?8, updated_at = ?9
                 WHERE member_id = ?1 AND id = ?2",
                params![
                    member.as_str(),
                    id.as_str(),
                    spec.name,
                    query,
                    events,
                    spec.format,
                    spec.webhook.as_ref().map(|w| w.url.clone()),
                    spec.webhook.as_ref().map(|w| w.secret.clone()),
                    now_micros(),
                ],
            )?;
            if updated > 0 && spec.webhook.is_none() {
                // Without a webhook nothing is pushed any more; what waited stays in the changes feed.
                connection.execute(
                    "UPDATE deliveries SET state = 'feed', next_attempt_at = NULL
                     WHERE subscription_id = ?1 AND state = 'pending'",
                    [id.as_str()],
                )?;
            }
            Ok(updated > 0)
        })
    }

    pub(super) fn delete_subscription_in(&self, member: &MemberId, id: &SubscriptionId) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |connection, _| {
            let deleted = connection.execute(
                "DELETE FROM subscriptions WHERE member_id = ?1 AND id = ?2",
                [member.as_str(), id.as_str()],
            )?;
            Ok(deleted > 0)
        })
    }

    pub(super) fn set_feed_token_in(&self, member: &MemberId, id: &SubscriptionId, hash: [u8; 32]) -> Result<bool> {
        let (member, id) = (member.clone(), id.clone());
        self.writer.run(move |connection, _| {
            let updated = connection.execute(
                "UPDATE subscriptions SET feed_token_hash = ?3, updated_at = ?4 WHERE member_id = ?1 AND id = ?2",
                params![member.as_str(), id.as_str(), hash.to_vec(), now_micros()],
            )?;
            Ok(updated > 0)
        })
    }

    pub(super) fn subscription_by_feed_token_in(&self, hash: [u8; 32]) -> Result<Option<Subscription>> {
        self.read(|connection| {
            let found = query_subscriptions(connection, "WHERE feed_token_hash = ?1", &[&hash.to_vec()])?;
            Ok(found.into_iter().next())
        })
    }

    pub(super) fn all_subscriptions_in(&self) -> Result<Vec<Subscription>> {
        self.read(|connection| query_subscriptions(connection, "ORDER BY id", &[]))
    }

    pub(super) fn live_agreements_in(&self) -> Result<Vec<Agreement>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE revoked_at IS NULL ORDER BY id"
            ))?;
            let rows = statement.query_map([], agreement_from_row)?;
            rows.map(|row| build_agreement(row?)).collect()
        })
    }

    pub(super) fn outbox_position_in(&self) -> Result<i64> {
        self.read(|connection| {
            Ok(connection
                .query_row("SELECT position FROM outbox_position WHERE name = 'fanout'", [], |row| row.get(0))?)
        })
    }

    pub(super) fn outbox_after_in(&self, after: i64, limit: u32) -> Result<Vec<OutboxEvent>> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, seq, kind, due_at FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            let rows = statement
                .query_map(params![after, limit], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(id, seq, kind, due_at)| {
                    Ok(OutboxEvent {
                        id,
                        kind: event_kind(&kind)?,
                        due_at: Timestamp(due_at),
                        version: load_version(connection, seq)?,
                        subjects: subjects_of(connection, seq)?,
                        embargoed_until: embargo_of(connection, seq)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn delivered_items_in(&self, items: &[ItemId]) -> Result<Vec<(SubscriptionId, ItemId)>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = items.iter().map(ItemId::as_str).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT DISTINCT subscription_id, item_id FROM deliveries
                 WHERE item_id IN (SELECT value FROM json_each(?1)) AND state != 'withdrawn'",
            )?;
            let rows = statement
                .query_map([ids], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(subscription, item)| {
                    Ok((
                        SubscriptionId::parse(&subscription).map_err(|e| corrupt("subscription id", e))?,
                        item_id(&item)?,
                    ))
                })
                .collect()
        })
    }

    pub(super) fn record_fanout_in(&self, holder: &str, through: i64, deliveries: Vec<NewDelivery>) -> Result<usize> {
        let ids = deliveries.iter().map(|_| new_ulid().map(DeliveryId::new)).collect::<Result<Vec<_>>>()?;
        let holder = holder.to_string();
        self.writer.run(move |connection, clock| {
            if !super::leases::holds(connection, crate::FANOUT_LEASE, &holder, now_micros())? {
                return Err(crate::common::lost("the fan-out"));
            }
            // Every delivery of this transaction is listed no earlier than its commit time.
            let floor = clock.next();
            let mut written = 0;
            {
                let mut insert = connection.prepare_cached(
                    "INSERT INTO deliveries (id, subscription_id, event_id, seq, item_id, kind, listed_at, state,
                        next_attempt_at)
                     SELECT ?1, s.id, ?3, ?4, ?5, ?6, ?7,
                        CASE WHEN s.webhook_url IS NULL THEN 'feed' ELSE 'pending' END,
                        CASE WHEN s.webhook_url IS NULL THEN NULL ELSE ?7 END
                     FROM subscriptions s WHERE s.id = ?2
                     ON CONFLICT (subscription_id, event_id) DO NOTHING",
                )?;
                for (delivery, id) in deliveries.iter().zip(&ids) {
                    let listed_at = delivery.due_at.max(floor);
                    written += insert.execute(params![
                        id.as_str(),
                        delivery.subscription.as_str(),
                        delivery.event_id,
                        delivery.seq,
                        delivery.item_id.as_str(),
                        delivery.kind.as_str(),
                        listed_at.micros(),
                    ])?;
                }
            }
            connection
                .execute("UPDATE outbox_position SET position = MAX(position, ?1) WHERE name = 'fanout'", [through])?;
            // Events another reader (the stream relay) has not passed yet stay, while it is alive: a reader
            // whose lease lapsed more than an hour ago (a cluster that stopped using NATS) holds back
            // nothing.
            connection.execute(
                "DELETE FROM outbox WHERE id <= MIN(?1, COALESCE(
                    (SELECT MIN(p.position) FROM outbox_position p JOIN leases l ON l.name = p.name
                     WHERE p.name != 'fanout' AND l.until > ?2), ?1))",
                params![through, now_micros() - crate::OUTBOX_READER_GRACE_MICROS],
            )?;
            Ok(written)
        })
    }

    pub(super) fn open_outbox_reader_in(&self, name: &str) -> Result<i64> {
        let name = name.to_string();
        self.writer.run(move |connection, _| {
            connection.execute(
                "INSERT INTO outbox_position (name, position)
                 SELECT ?1, position FROM outbox_position WHERE name = 'fanout'
                 ON CONFLICT (name) DO NOTHING",
                [&name],
            )?;
            Ok(connection
                .query_row("SELECT position FROM outbox_position WHERE name = ?1", [&name], |row| row.get(0))?)
        })
    }

    pub(super) fn record_outbox_reader_in(&self, name: &str, holder: &str, through: i64) -> Result<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer.run(move |connection, _| {
            if !super::leases::holds(connection, &name, &holder, now_micros())? {
                return Err(crate::common::lost(&format!("the outbox reader {name}")));
            }
            let moved = connection.execute(
                "UPDATE outbox_position SET position = MAX(position, ?2) WHERE name = ?1",
                params![name, through],
            )?;
            if moved == 0 {
                return Err(StoreError::NotFound(format!("no outbox reader {name}")));
            }
            Ok(())
        })
    }

    pub(super) fn outbox_entries_after_in(&self, after: i64, limit: u32) -> Result<Vec<crate::OutboxEntry>> {
        self.read(|connection| {
            let mut statement =
                connection.prepare_cached("SELECT id, seq, kind FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            let rows = statement
                .query_map(params![after, limit], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(id, seq, kind)| Ok(crate::OutboxEntry { id, seq, kind: event_kind(&kind)? }))
                .collect()
        })
    }

    pub(super) fn due_deliveries_in(
        &self,
        now: Timestamp,
        limit: u32,
        skip_subscriptions: &[SubscriptionId],
        skip_deliveries: &[i64],
    ) -> Result<Vec<DueDelivery>> {
        let skip_subscriptions: Vec<&str> = skip_subscriptions.iter().map(SubscriptionId::as_str).collect();
        let skip_subscriptions =
            serde_json::to_string(&skip_subscriptions).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let skip_deliveries = serde_json::to_string(skip_deliveries).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.read(|connection| {
            select_due(
                connection,
                "AND d.subscription_id NOT IN (SELECT value FROM json_each(?2))
                 AND d.n NOT IN (SELECT value FROM json_each(?3))",
                4,
                params![now.micros(), skip_subscriptions, skip_deliveries, limit],
            )
        })
    }

    pub(super) fn claim_deliveries_in(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        per_subscription: u32,
    ) -> Result<Vec<DueDelivery>> {
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            // What every holder has in hand now, per subscription: a subscription at its limit is left
            // out, whoever holds its deliveries.
            // Counted here rather than with GROUP BY, which SQLite answered by walking every
            // delivery ever made in subscription order (the index on subscription_id spares it a
            // sort): this reads only the leased rows, through `deliveries_leased`.
            let mut held: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            let mut leased = connection.prepare_cached(
                "SELECT subscription_id FROM deliveries INDEXED BY deliveries_leased
                 WHERE lease_until > ?1 AND lease_until IS NOT NULL AND state = 'pending'",
            )?;
            let mut rows = leased.query([now.micros()])?;
            while let Some(row) = rows.next()? {
                *held.entry(row.get::<_, String>(0)?).or_default() += 1;
            }
            drop(rows);
            let cap = i64::from(per_subscription.max(1));
            let full: Vec<&str> = held.iter().filter(|(_, n)| **n >= cap).map(|(s, _)| s.as_str()).collect();
            let full = serde_json::to_string(&full).map_err(|e| StoreError::Invalid(e.to_string()))?;
            // The candidates are read in claim order and only those a subscription has room for are
            // read whole: one subscription's backlog costs a look at its subscription id per row, not
            // a delivery built and dropped. Picked first, leased after the read.
            let mut statement = connection.prepare_cached(&due_sql(
                "AND (d.lease_until IS NULL OR d.lease_until <= ?1)
                 AND d.subscription_id NOT IN (SELECT value FROM json_each(?2))",
                3,
            ))?;
            let mut rows = statement.query(params![now.micros(), full, limit.saturating_mul(4).max(limit)])?;
            let mut picked = Vec::new();
            while picked.len() < limit as usize
                && let Some(row) = rows.next()?
            {
                let count = held.entry(row.get::<_, String>(2)?).or_default();
                if *count < cap {
                    *count += 1;
                    picked.push(due_of(row)?);
                }
            }
            drop(rows);
            let mut lease = connection.prepare_cached(
                "UPDATE deliveries SET lease_holder = ?2, lease_until = ?3
                 WHERE n = ?1 AND state = 'pending' AND (lease_until IS NULL OR lease_until <= ?4)",
            )?;
            let mut claimed = Vec::with_capacity(picked.len());
            for delivery in picked {
                if lease.execute(params![delivery.n, holder, lease_until.micros(), now.micros()])? == 1 {
                    claimed.push(delivery);
                }
            }
            Ok(claimed)
        })
    }

    pub(super) fn release_deliveries_in(&self, holder: &str) -> Result<usize> {
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            Ok(connection.execute(
                "UPDATE deliveries SET lease_holder = NULL, lease_until = NULL
                 WHERE lease_holder = ?1 AND lease_until IS NOT NULL",
                [holder],
            )?)
        })
    }

    pub(super) fn next_due_in(&self) -> Result<Option<Timestamp>> {
        self.read(|connection| {
            let next: Option<i64> = connection.query_row(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'",
                [],
                |row| row.get(0),
            )?;
            Ok(next.map(Timestamp))
        })
    }

    pub(super) fn record_attempts_in(&self, holder: &str, attempts: Vec<AttemptRecord>) -> Result<usize> {
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            // An attempt counts only while its delivery is the holder's (or no one's): a holder whose
            // lease ran out and was taken over records nothing.
            let mut insert = connection.prepare_cached(
                "INSERT OR IGNORE INTO delivery_attempts (delivery_n, attempt, at, status, latency_us, error)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM deliveries WHERE n = ?1
                    AND state = 'pending' AND (lease_holder IS NULL OR lease_holder = ?7))",
            )?;
            let mut update = connection.prepare_cached(
                "UPDATE deliveries SET attempts = MAX(attempts, ?2), state = ?3, next_attempt_at = ?4,
                    delivered_at = COALESCE(delivered_at, ?5), lease_holder = NULL, lease_until = NULL
                 WHERE n = ?1 AND state = 'pending' AND (lease_holder IS NULL OR lease_holder = ?6)",
            )?;
            let mut recorded = 0;
            for record in attempts {
                if record.outcome != AttemptOutcome::Withdrawn {
                    insert.execute(params![
                        record.n,
                        record.attempt,
                        record.at.micros(),
                        record.status,
                        record.latency_micros,
                        record.error,
                        holder,
                    ])?;
                }
                let (state, next, delivered) = match record.outcome {
                    AttemptOutcome::Delivered => (DeliveryState::Delivered, None, Some(record.at.micros())),
                    AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, Some(at.micros()), None),
                    AttemptOutcome::Dead => (DeliveryState::Dead, None, None),
                    AttemptOutcome::Withdrawn => (DeliveryState::Withdrawn, None, None),
                };
                let attempts = if record.outcome == AttemptOutcome::Withdrawn { 0 } else { record.attempt };
                recorded += update.execute(params![record.n, attempts, state.as_str(), next, delivered, holder])?;
            }
            Ok(recorded)
        })
    }

    pub(super) fn deliveries_in(
        &self,
        subscription: &SubscriptionId,
        now: Timestamp,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT n, id, kind, item_id, seq, state, listed_at, next_attempt_at, delivered_at FROM deliveries
                 WHERE subscription_id = ?1 AND listed_at <= ?2 AND n < ?3 ORDER BY n DESC LIMIT ?4",
            )?;
            type Raw = (i64, String, String, String, i64, String, i64, Option<i64>, Option<i64>);
            let rows = statement
                .query_map(params![subscription.as_str(), now.micros(), before.unwrap_or(i64::MAX), limit], |row| {
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
                    ))
                })?
                .collect::<rusqlite::Result<Vec<Raw>>>()?;
            let mut attempts_of = connection.prepare_cached(
                "SELECT attempt, at, status, latency_us, error FROM delivery_attempts WHERE delivery_n = ?1
                 ORDER BY attempt",
            )?;
            rows.into_iter()
                .map(|(n, id, kind, item, seq, state, listed_at, next, delivered)| {
                    let attempts = attempts_of
                        .query_map([n], |row| {
                            Ok(Attempt {
                                attempt: row.get(0)?,
                                at: Timestamp(row.get(1)?),
                                status: row.get(2)?,
                                latency_micros: row.get(3)?,
                                error: row.get(4)?,
                            })
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(DeliveryRecord {
                        n,
                        id: delivery_id(&id)?,
                        kind: event_kind(&kind)?,
                        item_id: item_id(&item)?,
                        seq,
                        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
                        listed_at: Timestamp(listed_at),
                        next_attempt_at: next.map(Timestamp),
                        delivered_at: delivered.map(Timestamp),
                        attempts,
                    })
                })
                .collect()
        })
    }

    pub(super) fn changes_in(
        &self,
        subscription: &SubscriptionId,
        since: Option<Cursor>,
        limit: u32,
        now: Timestamp,
    ) -> Result<ChangesPage> {
        let horizon = Cursor { at: Timestamp(self.writer.horizon(now.micros())), seq: i64::MAX };
        let Some(since) = since else {
            return Ok(ChangesPage { changes: Vec::new(), next: horizon });
        };
        let limit = limit.clamp(1, 1000);
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT n, id, kind, item_id, seq, listed_at FROM deliveries
                 WHERE subscription_id = ?1 AND (listed_at, n) > (?2, ?3) AND listed_at <= ?4
                 ORDER BY listed_at, n LIMIT ?5",
            )?;
            let changes = change_rows(
                &mut statement,
                params![subscription.as_str(), since.at.micros(), since.seq, horizon.at.micros(), limit],
            )?;
            let full = changes.len() as u32 >= limit;
            let next = match changes.last() {
                Some(last) if full => last.cursor,
                _ => horizon.max(since),
            };
            Ok(ChangesPage { changes, next })
        })
    }

    pub(super) fn recent_changes_in(
        &self,
        subscription: &SubscriptionId,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Change>> {
        let horizon = self.writer.horizon(now.micros());
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT n, id, kind, item_id, seq, listed_at FROM deliveries
                 WHERE subscription_id = ?1 AND listed_at <= ?2 ORDER BY listed_at DESC, n DESC LIMIT ?3",
            )?;
            change_rows(&mut statement, params![subscription.as_str(), horizon, limit.clamp(1, 1000)])
        })
    }
}

/// Pending webhook deliveries due at `?1`, oldest first, narrowed by `filter` (which may use the
/// parameters after `?1`); parameter `?{limit_parameter}` is the limit.
fn select_due(
    connection: &Connection,
    filter: &str,
    limit_parameter: usize,
    values: impl rusqlite::Params,
) -> Result<Vec<DueDelivery>> {
    let mut statement = connection.prepare_cached(&due_sql(filter, limit_parameter))?;
    let mut rows = statement.query(values)?;
    let mut due = Vec::new();
    while let Some(row) = rows.next()? {
        due.push(due_of(row)?);
    }
    Ok(due)
}

/// The query of [`select_due`].
fn due_sql(filter: &str, limit_parameter: usize) -> String {
    format!(
        "SELECT d.n, d.id, d.subscription_id, s.member_id, d.kind, d.seq, d.item_id, d.attempts,
            s.webhook_url, s.webhook_secret, d.listed_at, s.format
         FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 AND s.webhook_url IS NOT NULL {filter}
         ORDER BY d.next_attempt_at, d.n LIMIT ?{limit_parameter}"
    )
}

/// A due delivery from a row of [`due_sql`]'s columns.
fn due_of(row: &rusqlite::Row<'_>) -> Result<DueDelivery> {
    let (id, subscription, member, kind, item): (String, String, String, String, String) =
        (row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(6)?);
    Ok(DueDelivery {
        n: row.get(0)?,
        id: delivery_id(&id)?,
        subscription: SubscriptionId::parse(&subscription).map_err(|e| corrupt("subscription id", e))?,
        member: MemberId::parse(&member).map_err(|e| corrupt("member id", e))?,
        kind: event_kind(&kind)?,
        seq: row.get(5)?,
        item_id: item_id(&item)?,
        attempts: u32::try_from(row.get::<_, i64>(7)?).unwrap_or(u32::MAX),
        webhook: Webhook { url: row.get(8)?, secret: row.get(9)? },
        listed_at: Timestamp(row.get(10)?),
        format: row.get(11)?,
    })
}

fn change_rows(statement: &mut rusqlite::CachedStatement<'_>, values: impl rusqlite::Params) -> Result<Vec<Change>> {
    let rows = statement
        .query_map(values, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(n, id, kind, item, seq, listed_at)| {
            Ok(Change {
                cursor: Cursor { at: Timestamp(listed_at), seq: n },
                delivery: delivery_id(&id)?,
                kind: event_kind(&kind)?,
                item_id: item_id(&item)?,
                seq,
            })
        })
        .collect()
}
