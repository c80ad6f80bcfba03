//! Distribution in PostgreSQL: subscriptions, the outbox, deliveries and their attempts.
//!
//! The same path as in SQLite (see `sqlite/distribution.rs`). What cluster mode adds: the fan-out's
//! transaction is clocked (its deliveries' `listed_at` and `n` follow commit order on every node, so
//! a changes feed read up to the horizon never misses one that commits later), and claims of
//! deliveries are serialised across nodes by an advisory lock, so that the per-subscription limit on
//! deliveries held at once holds whoever claims.

use karavan_domain::{DeliveryId, ItemId, MemberId, SubscriptionId, Timestamp};
use postgres::Row;

use super::db::Db;
use super::{PostgresStore, embargo_of, load_version, subjects_of};
use crate::common::{
    SUBSCRIPTION_COLUMNS, build_subscription, corrupt, delivery_id, event_kind, item_id, name_taken, new_ulid,
    now_micros, spec_columns,
};
use crate::{
    Attempt, AttemptOutcome, AttemptRecord, Change, ChangesPage, Cursor, DeliveryRecord, DeliveryState, DueDelivery,
    NewDelivery, OutboxEvent, Result, Subscription, SubscriptionSpec, Webhook,
};

fn subscription_of(row: &Row) -> Result<Subscription> {
    build_subscription((
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
    ))
}

fn query_subscriptions(
    db: &mut Db<'_, '_>,
    filter: &str,
    values: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<Subscription>> {
    let rows = db.query(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions {filter}"), values)?;
    rows.iter().map(subscription_of).collect()
}

impl PostgresStore {
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
        let hash = feed_token_hash.to_vec();
        self.writer.run(move |db| {
            let spec = &stored.spec;
            let inserted = db.execute(
                "INSERT INTO subscriptions (id, member_id, name, query, events, format, webhook_url, webhook_secret,
                    feed_token_hash, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                 ON CONFLICT (member_id, name) DO NOTHING",
                &[
                    &stored.id.as_str(),
                    &stored.member.as_str(),
                    &spec.name,
                    &query,
                    &events,
                    &spec.format,
                    &spec.webhook.as_ref().map(|w| w.url.clone()),
                    &spec.webhook.as_ref().map(|w| w.secret.clone()),
                    &hash,
                    &stored.created_at.micros(),
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
        let member = member.to_string();
        self.read(move |db| query_subscriptions(db, "WHERE member_id = $1 ORDER BY name", &[&member]))
    }

    pub(super) fn subscription_in(&self, member: &MemberId, id: &SubscriptionId) -> Result<Option<Subscription>> {
        let (member, id) = (member.to_string(), id.to_string());
        self.read(move |db| {
            Ok(query_subscriptions(db, "WHERE member_id = $1 AND id = $2", &[&member, &id])?.into_iter().next())
        })
    }

    pub(super) fn update_subscription_in(
        &self,
        member: &MemberId,
        id: &SubscriptionId,
        spec: SubscriptionSpec,
    ) -> Result<bool> {
        let (member, id) = (member.to_string(), id.to_string());
        let (query, events) = spec_columns(&spec)?;
        self.writer.run(move |db| {
            let clash: bool = db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE member_id = $1 AND name = $2 AND id != $3)",
                    &[&member, &spec.name, &id],
                )?
                .try_get(0)?;
            if clash {
                return Err(name_taken(&spec.name));
            }
            let updated = db.execute(
                "UPDATE subscriptions SET name = $3, query = $4, events = $5, format = $6, webhook_url = $7,
                    webhook_secret = $8, updated_at = $9
                 WHERE member_id = $1 AND id = $2",
                &[
                    &member,
                    &id,
                    &spec.name,
                    &query,
                    &events,
                    &spec.format,
                    &spec.webhook.as_ref().map(|w| w.url.clone()),
                    &spec.webhook.as_ref().map(|w| w.secret.clone()),
                    &now_micros(),
                ],
            )?;
            if updated > 0 && spec.webhook.is_none() {
                // Without a webhook nothing is pushed any more; what waited stays in the changes feed.
                db.execute(
                    "UPDATE deliveries SET state = 'feed', next_attempt_at = NULL
                     WHERE subscription_id = $1 AND state = 'pending'",
                    &[&id],
                )?;
            }
            Ok(updated > 0)
        })
    }

    pub(super) fn delete_subscription_in(&self, member: &MemberId, id: &SubscriptionId) -> Result<bool> {
        let (member, id) = (member.to_string(), id.to_string());
        self.writer.run(move |db| {
            Ok(db.execute("DELETE FROM subscriptions WHERE member_id = $1 AND id = $2", &[&member, &id])? > 0)
        })
    }

    pub(super) fn set_feed_token_in(&self, member: &MemberId, id: &SubscriptionId, hash: [u8; 32]) -> Result<bool> {
        let (member, id, hash) = (member.to_string(), id.to_string(), hash.to_vec());
        self.writer.run(move |db| {
            let updated = db.execute(
                "UPDATE subscriptions SET feed_token_hash = $3, updated_at = $4 WHERE member_id = $1 AND id = $2",
                &[&member, &id, &hash, &now_micros()],
            )?;
            Ok(updated > 0)
        })
    }

    pub(super) fn subscription_by_feed_token_in(&self, hash: [u8; 32]) -> Result<Option<Subscription>> {
        let hash = hash.to_vec();
        self.read(move |db| Ok(query_subscriptions(db, "WHERE feed_token_hash = $1", &[&hash])?.into_iter().next()))
    }

    pub(super) fn all_subscriptions_in(&self) -> Result<Vec<Subscription>> {
        self.read(|db| query_subscriptions(db, "ORDER BY id", &[]))
    }

    pub(super) fn outbox_after_in(&self, after: i64, limit: u32) -> Result<Vec<OutboxEvent>> {
        self.read(move |db| {
            let rows = db.query(
                "SELECT id, seq, kind, due_at FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &i64::from(limit)],
            )?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let (id, seq, kind, due_at): (i64, i64, String, i64) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
                events.push(OutboxEvent {
                    id,
                    kind: event_kind(&kind)?,
                    due_at: Timestamp(due_at),
                    version: load_version(db, seq)?,
                    subjects: subjects_of(db, seq)?,
                    embargoed_until: embargo_of(db, seq)?,
                });
            }
            Ok(events)
        })
    }

    pub(super) fn delivered_items_in(&self, items: &[ItemId]) -> Result<Vec<(SubscriptionId, ItemId)>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = items.iter().map(ItemId::to_string).collect();
        self.read(move |db| {
            let rows = db.query(
                "SELECT DISTINCT subscription_id, item_id FROM deliveries
                 WHERE item_id = ANY($1) AND state != 'withdrawn'",
                &[&ids],
            )?;
            rows.iter()
                .map(|row| {
                    let (subscription, item): (String, String) = (row.try_get(0)?, row.try_get(1)?);
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
        self.writer.run_clocked(move |db, clock| {
            if !super::leases::holds(db, crate::FANOUT_LEASE, &holder, now_micros())? {
                return Err(crate::common::lost("the fan-out"));
            }
            // Every delivery of this transaction is listed no earlier than its commit time.
            let floor = clock.next()?;
            let mut written = 0;
            for (delivery, id) in deliveries.iter().zip(&ids) {
                let listed_at = delivery.due_at.max(floor).micros();
                written += db.execute(
                    "INSERT INTO deliveries (id, subscription_id, event_id, seq, item_id, kind, listed_at, state,
                        next_attempt_at)
                     SELECT $1::text, s.id, $3::bigint, $4::bigint, $5::text, $6::text, $7::bigint,
                        CASE WHEN s.webhook_url IS NULL THEN 'feed' ELSE 'pending' END,
                        CASE WHEN s.webhook_url IS NULL THEN NULL ELSE $7::bigint END
                     FROM subscriptions s WHERE s.id = $2
                     ON CONFLICT (subscription_id, event_id) DO NOTHING",
                    &[
                        &id.as_str(),
                        &delivery.subscription.as_str(),
                        &delivery.event_id,
                        &delivery.seq,
                        &delivery.item_id.as_str(),
                        &delivery.kind.as_str(),
                        &listed_at,
                    ],
                )?;
            }
            db.execute(
                "UPDATE outbox_position SET position = GREATEST(position, $1) WHERE name = 'fanout'",
                &[&through],
            )?;
            // Events another reader (the stream relay) has not passed yet stay, while it is alive: a reader
            // whose lease lapsed more than an hour ago (a cluster that stopped using NATS) holds back
            // nothing.
            db.execute(
                "DELETE FROM outbox WHERE id <= LEAST($1, COALESCE(
                    (SELECT MIN(p.position) FROM outbox_position p JOIN leases l ON l.name = p.name
                     WHERE p.name <> 'fanout' AND l.until > $2), $1))",
                &[&through, &(now_micros() - crate::OUTBOX_READER_GRACE_MICROS)],
            )?;
            Ok(written)
        })
    }

    pub(super) fn open_outbox_reader_in(&self, name: &str) -> Result<i64> {
        let name = name.to_string();
        self.writer.run(move |db| {
            db.execute(
                "INSERT INTO outbox_position (name, position)
                 SELECT $1::text, position FROM outbox_position WHERE name = 'fanout'
                 ON CONFLICT (name) DO NOTHING",
                &[&name],
            )?;
            Ok(db.query_one("SELECT position FROM outbox_position WHERE name = $1", &[&name])?.try_get(0)?)
        })
    }

    pub(super) fn record_outbox_reader_in(&self, name: &str, holder: &str, through: i64) -> Result<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer.run(move |db| {
            if !super::leases::holds(db, &name, &holder, now_micros())? {
                return Err(crate::common::lost(&format!("the outbox reader {name}")));
            }
            let moved = db.execute(
                "UPDATE outbox_position SET position = GREATEST(position, $2) WHERE name = $1",
                &[&name, &through],
            )?;
            if moved == 0 {
                return Err(crate::StoreError::NotFound(format!("no outbox reader {name}")));
            }
            Ok(())
        })
    }

    pub(super) fn outbox_entries_after_in(&self, after: i64, limit: u32) -> Result<Vec<crate::OutboxEntry>> {
        self.read(move |db| {
            let rows = db.query(
                "SELECT id, seq, kind FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &i64::from(limit)],
            )?;
            rows.iter()
                .map(|row| {
                    let kind: String = row.try_get(2)?;
                    Ok(crate::OutboxEntry { id: row.try_get(0)?, seq: row.try_get(1)?, kind: event_kind(&kind)? })
                })
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
        let skip_subscriptions: Vec<String> = skip_subscriptions.iter().map(SubscriptionId::to_string).collect();
        let skip_deliveries = skip_deliveries.to_vec();
        self.read(move |db| {
            select_due(
                db,
                "deliveries d JOIN subscriptions s ON s.id = d.subscription_id",
                "AND d.subscription_id <> ALL($2) AND d.n <> ALL($3)",
                4,
                &[&now.micros(), &skip_subscriptions, &skip_deliveries, &i64::from(limit)],
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
        self.writer.run_alone(move |db| {
            // One claim at a time across the cluster (until this transaction ends): the count of what
            // every holder has in hand, below, stays true while this claim adds to it. The claim runs in a
            // transaction of its own, so that it holds that lock with no other rows of this node's.
            db.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('karavan-claim-deliveries:' || current_schema(), 0))",
                &[],
            )?;
            // What every holder has in hand now, per subscription: a subscription at its limit is left
            // out, whoever holds its deliveries.
            let mut held: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            let rows = db.query(
                "SELECT subscription_id FROM deliveries
                 WHERE lease_until > $1 AND lease_until IS NOT NULL AND state = 'pending'",
                &[&now.micros()],
            )?;
            for row in &rows {
                *held.entry(row.try_get::<_, String>(0)?).or_default() += 1;
            }
            let cap = i64::from(per_subscription.max(1));
            let full: Vec<String> = held.iter().filter(|(_, n)| **n >= cap).map(|(s, _)| s.clone()).collect();
            let candidates = claimable(db, now, &full, limit.saturating_mul(4).max(limit), cap)?;
            let mut claimed = Vec::new();
            for delivery in candidates {
                if claimed.len() >= limit as usize {
                    break;
                }
                let count = held.entry(delivery.subscription.as_str().to_string()).or_default();
                if *count >= cap {
                    continue;
                }
                let leased = db.execute(
                    "UPDATE deliveries SET lease_holder = $2, lease_until = $3
                     WHERE n = $1 AND state = 'pending' AND (lease_until IS NULL OR lease_until <= $4)",
                    &[&delivery.n, &holder, &lease_until.micros(), &now.micros()],
                )?;
                if leased == 1 {
                    *count += 1;
                    claimed.push(delivery);
                }
            }
            Ok(claimed)
        })
    }

    pub(super) fn release_deliveries_in(&self, holder: &str) -> Result<usize> {
        let holder = holder.to_string();
        self.writer.run(move |db| {
            db.execute(
                "UPDATE deliveries SET lease_holder = NULL, lease_until = NULL
                 WHERE lease_holder = $1 AND lease_until IS NOT NULL",
                &[&holder],
            )
        })
    }

    pub(super) fn record_attempts_in(&self, holder: &str, attempts: Vec<AttemptRecord>) -> Result<usize> {
        let holder = holder.to_string();
        self.writer.run(move |db| {
            // An attempt counts only while its delivery is the holder's (or no one's): a holder whose
            // lease ran out and was taken over records nothing.
            let mut recorded = 0;
            for record in &attempts {
                if record.outcome != AttemptOutcome::Withdrawn {
                    db.execute(
                        "INSERT INTO delivery_attempts (delivery_n, attempt, at, status, latency_us, error)
                         SELECT $1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::text WHERE EXISTS (SELECT 1 FROM deliveries WHERE n = $1
                            AND state = 'pending' AND (lease_holder IS NULL OR lease_holder = $7))
                         ON CONFLICT DO NOTHING",
                        &[
                            &record.n,
                            &i64::from(record.attempt),
                            &record.at.micros(),
                            &record.status.map(i64::from),
                            &record.latency_micros,
                            &record.error,
                            &holder,
                        ],
                    )?;
                }
                let (state, next, delivered) = match record.outcome {
                    AttemptOutcome::Delivered => (DeliveryState::Delivered, None, Some(record.at.micros())),
                    AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, Some(at.micros()), None),
                    AttemptOutcome::Dead => (DeliveryState::Dead, None, None),
                    AttemptOutcome::Withdrawn => (DeliveryState::Withdrawn, None, None),
                };
                let count = if record.outcome == AttemptOutcome::Withdrawn { 0 } else { i64::from(record.attempt) };
                recorded += db.execute(
                    "UPDATE deliveries SET attempts = GREATEST(attempts, $2), state = $3, next_attempt_at = $4,
                        delivered_at = COALESCE(delivered_at, $5), lease_holder = NULL, lease_until = NULL
                     WHERE n = $1 AND state = 'pending' AND (lease_holder IS NULL OR lease_holder = $6)",
                    &[&record.n, &count, &state.as_str(), &next, &delivered, &holder],
                )?;
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
        let subscription = subscription.to_string();
        self.read(move |db| {
            let rows = db.query(
                "SELECT n, id, kind, item_id, seq, state, listed_at, next_attempt_at, delivered_at FROM deliveries
                 WHERE subscription_id = $1 AND listed_at <= $2 AND n < $3 ORDER BY n DESC LIMIT $4",
                &[&subscription, &now.micros(), &before.unwrap_or(i64::MAX), &i64::from(limit)],
            )?;
            let mut records = Vec::with_capacity(rows.len());
            for row in &rows {
                let n: i64 = row.try_get(0)?;
                let attempts = db
                    .query(
                        "SELECT attempt, at, status, latency_us, error FROM delivery_attempts WHERE delivery_n = $1
                         ORDER BY attempt",
                        &[&n],
                    )?
                    .iter()
                    .map(|a| {
                        Ok(Attempt {
                            attempt: u32::try_from(a.try_get::<_, i64>(0)?).unwrap_or(u32::MAX),
                            at: Timestamp(a.try_get(1)?),
                            status: a.try_get::<_, Option<i64>>(2)?.and_then(|s| u16::try_from(s).ok()),
                            latency_micros: a.try_get(3)?,
                            error: a.try_get(4)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let (id, kind, item, state): (String, String, String, String) =
                    (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(5)?);
                records.push(DeliveryRecord {
                    n,
                    id: delivery_id(&id)?,
                    kind: event_kind(&kind)?,
                    item_id: item_id(&item)?,
                    seq: row.try_get(4)?,
                    state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
                    listed_at: Timestamp(row.try_get(6)?),
                    next_attempt_at: row.try_get::<_, Option<i64>>(7)?.map(Timestamp),
                    delivered_at: row.try_get::<_, Option<i64>>(8)?.map(Timestamp),
                    attempts,
                });
            }
            Ok(records)
        })
    }

    pub(super) fn changes_in(
        &self,
        subscription: &SubscriptionId,
        since: Option<Cursor>,
        limit: u32,
        now: Timestamp,
    ) -> Result<ChangesPage> {
        let subscription = subscription.to_string();
        let limit = limit.clamp(1, 1000);
        self.read_at_horizon(now, move |db, horizon| {
            let horizon = Cursor { at: horizon, seq: i64::MAX };
            let Some(since) = since else {
                return Ok(ChangesPage { changes: Vec::new(), next: horizon });
            };
            let rows = db.query(
                "SELECT n, id, kind, item_id, seq, listed_at FROM deliveries
                 WHERE subscription_id = $1 AND (listed_at, n) > ($2, $3) AND listed_at <= $4
                 ORDER BY listed_at, n LIMIT $5",
                &[&subscription, &since.at.micros(), &since.seq, &horizon.at.micros(), &i64::from(limit)],
            )?;
            let changes = rows.iter().map(change_of).collect::<Result<Vec<_>>>()?;
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
        let subscription = subscription.to_string();
        self.read_at_horizon(now, move |db, horizon| {
            let rows = db.query(
                "SELECT n, id, kind, item_id, seq, listed_at FROM deliveries
                 WHERE subscription_id = $1 AND listed_at <= $2 ORDER BY listed_at DESC, n DESC LIMIT $3",
                &[&subscription, &horizon.micros(), &i64::from(limit.clamp(1, 1000))],
            )?;
            rows.iter().map(change_of).collect()
        })
    }
}

/// Due deliveries no one holds, oldest first, at most `per_subscription` of each subscription (no
/// claim can take more of one) and none of the subscriptions in `full`. Each subscription's are read
/// through `deliveries_pending`, so one subscription's backlog costs the claim `per_subscription` rows,
/// not the whole backlog (a claim holds the cluster's claim lock while it reads).
fn claimable(
    db: &mut Db<'_, '_>,
    now: Timestamp,
    full: &[String],
    limit: u32,
    per_subscription: i64,
) -> Result<Vec<DueDelivery>> {
    select_due(
        db,
        "subscriptions s CROSS JOIN LATERAL (
            SELECT * FROM deliveries d
            WHERE d.subscription_id = s.id AND d.state = 'pending' AND d.next_attempt_at <= $1
              AND (d.lease_until IS NULL OR d.lease_until <= $1)
            ORDER BY d.next_attempt_at, d.n LIMIT $4) d",
        "AND s.id <> ALL($2)",
        3,
        &[&now.micros(), &full, &i64::from(limit), &per_subscription],
    )
}

/// Pending webhook deliveries `d` (of subscriptions `s`, joined in `from`) due at `$1`, oldest first,
/// narrowed by `filter` (which may use the parameters after `$1`); parameter `${limit_parameter}` is
/// the limit.
fn select_due(
    db: &mut Db<'_, '_>,
    from: &str,
    filter: &str,
    limit_parameter: usize,
    values: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<DueDelivery>> {
    let sql = format!(
        "SELECT d.n, d.id, d.subscription_id, s.member_id, d.kind, d.seq, d.item_id, d.attempts,
            s.webhook_url, s.webhook_secret, d.listed_at, s.format
         FROM {from}
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND s.webhook_url IS NOT NULL {filter}
         ORDER BY d.next_attempt_at, d.n LIMIT ${limit_parameter}"
    );
    let rows = db.query(&sql, values)?;
    rows.iter().map(due_of).collect()
}

/// A due delivery from a row of [`select_due`]'s columns.
fn due_of(row: &Row) -> Result<DueDelivery> {
    let (id, subscription, member, kind, item): (String, String, String, String, String) =
        (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, row.try_get(6)?);
    Ok(DueDelivery {
        n: row.try_get(0)?,
        id: delivery_id(&id)?,
        subscription: SubscriptionId::parse(&subscription).map_err(|e| corrupt("subscription id", e))?,
        member: MemberId::parse(&member).map_err(|e| corrupt("member id", e))?,
        kind: event_kind(&kind)?,
        seq: row.try_get(5)?,
        item_id: item_id(&item)?,
        attempts: u32::try_from(row.try_get::<_, i64>(7)?).unwrap_or(u32::MAX),
        webhook: Webhook { url: row.try_get(8)?, secret: row.try_get(9)? },
        listed_at: Timestamp(row.try_get(10)?),
        format: row.try_get(11)?,
    })
}

fn change_of(row: &Row) -> Result<Change> {
    let (id, kind, item): (String, String, String) = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
    Ok(Change {
        cursor: Cursor { at: Timestamp(row.try_get(5)?), seq: row.try_get(0)? },
        delivery: delivery_id(&id)?,
        kind: event_kind(&kind)?,
        item_id: item_id(&item)?,
        seq: row.try_get(4)?,
    })
}
